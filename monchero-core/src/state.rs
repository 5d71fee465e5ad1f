//! The four check states of the Nagios plugin API and their severity order.

use std::cmp::Ordering;
use std::fmt;

/// The state a check reports: the plugin's exit code, in the plugin API's words.
///
/// States are ordered by *severity*, not by exit code: `Critical > Warning >
/// Unknown > Ok`. An unknown result means "we could not tell", which an
/// operator ranks below a confirmed warning, as Nagios Core does when it
/// computes the worst state of a host's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum State {
    /// Exit code 0: the service works as expected.
    Ok,
    /// Exit code 1: above a warning threshold, or otherwise degraded.
    Warning,
    /// Exit code 2: above a critical threshold, or not working.
    Critical,
    /// Exit code 3, or anything the agent could not interpret.
    Unknown,
}

impl State {
    /// Every state, in exit-code order.
    pub const ALL: [State; 4] = [State::Ok, State::Warning, State::Critical, State::Unknown];

    /// The state for a plugin exit code; `None` outside 0-3.
    pub fn from_exit_code(code: i32) -> Option<State> {
        match code {
            0 => Some(State::Ok),
            1 => Some(State::Warning),
            2 => Some(State::Critical),
            3 => Some(State::Unknown),
            _ => None,
        }
    }

    /// The plugin exit code of this state (0-3).
    pub fn exit_code(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }

    /// Rank for comparison: higher is worse.
    pub fn severity(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Unknown => 1,
            State::Warning => 2,
            State::Critical => 3,
        }
    }

    /// The worse of two states.
    #[must_use]
    pub fn worst(self, other: State) -> State {
        self.max(other)
    }

    /// Lower-case name, as used in JSON and config (`"warning"`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Critical => "critical",
            State::Unknown => "unknown",
        }
    }

    /// Upper-case name, as plugins and Nagios print it (`"WARNING"`).
    pub fn label(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// Whether this is anything but OK.
    pub fn is_problem(self) -> bool {
        self != State::Ok
    }
}

impl Ord for State {
    fn cmp(&self, other: &Self) -> Ordering {
        self.severity().cmp(&other.severity())
    }
}

impl PartialOrd for State {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The error for a state name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}: expected ok, warning, critical or unknown")]
pub struct ParseStateError(String);

impl std::str::FromStr for State {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseStateError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip() {
        for state in State::ALL {
            assert_eq!(State::from_exit_code(i32::from(state.exit_code())), Some(state));
        }
        assert_eq!(State::from_exit_code(4), None);
        assert_eq!(State::from_exit_code(-1), None);
        assert_eq!(State::from_exit_code(255), None);
    }

    #[test]
    fn severity_orders_critical_warning_unknown_ok() {
        let mut states = State::ALL.to_vec();
        states.sort();
        assert_eq!(states, [State::Ok, State::Unknown, State::Warning, State::Critical]);
        assert_eq!(State::Unknown.worst(State::Warning), State::Warning);
        assert_eq!(State::Ok.worst(State::Unknown), State::Unknown);
        assert_eq!(State::Critical.worst(State::Ok), State::Critical);
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!("WARNING".parse::<State>(), Ok(State::Warning));
        assert_eq!("ok".parse::<State>(), Ok(State::Ok));
        assert!("warn".parse::<State>().is_err());
    }
}
