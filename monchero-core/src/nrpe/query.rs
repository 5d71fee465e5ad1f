//! What a query's text asks for: `command` or `command!arg1!arg2...`, with
//! NRPE's own refusals (`validate_request` in NRPE's `src/nrpe.c`): an empty
//! query, any of its "nasty" shell metacharacters anywhere in the text,
//! arguments when they are not allowed (NRPE's `dont_blame_nrpe = 0`), an
//! empty argument, and `$(` in an argument.
//!
//! Monchero never hands arguments to a shell, so these characters would do
//! no harm here; refusing them anyway keeps a query that NRPE refuses
//! refused, so moving a host to Monchero widens nothing.

use thiserror::Error;

/// The characters NRPE refuses anywhere in a query (`NASTY_METACHARS`).
pub const NASTY_METACHARS: &str = "|`&><'\\[]{};\r\n";

/// The most arguments a query may carry (`$ARG1$` to `$ARG16$`).
pub const MAX_ARGUMENTS: usize = 16;

/// The command name `check_nrpe` sends when no `-c` is given: it asks for
/// the daemon's version.
pub const HELLO_COMMAND: &str = "_NRPE_CHECK";

/// A query taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The command (or check) name.
    pub command: String,
    /// `$ARG1$`, `$ARG2$`, ...; empty unless arguments are allowed.
    pub arguments: Vec<String>,
}

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// Nothing was asked.
    #[error("the query is empty")]
    Empty,
    /// A character NRPE refuses.
    #[error("the query contains {0:?}, one of the shell metacharacters NRPE refuses")]
    Metachar(char),
    /// Arguments while `allow_arguments` is off.
    #[error("the query carries arguments, and allow_arguments is off")]
    ArgumentsNotAllowed,
    /// `a!!b` or a trailing `!`.
    #[error("argument {0} is empty")]
    EmptyArgument(usize),
    /// `$(` in an argument.
    #[error("argument {0} contains a command substitution \"$(\"")]
    Substitution(usize),
    /// More than [`MAX_ARGUMENTS`].
    #[error("the query carries {0} arguments; at most {MAX_ARGUMENTS} are allowed")]
    TooManyArguments(usize),
}

impl Query {
    /// Takes `text` apart; arguments are refused unless `allow_arguments`.
    pub fn parse(text: &str, allow_arguments: bool) -> Result<Query, QueryError> {
        if text.is_empty() {
            return Err(QueryError::Empty);
        }
        if let Some(bad) = text.chars().find(|c| NASTY_METACHARS.contains(*c)) {
            return Err(QueryError::Metachar(bad));
        }
        let mut parts = text.split('!');
        let command = parts.next().unwrap_or_default().to_owned();
        if command.is_empty() {
            return Err(QueryError::Empty);
        }
        let arguments: Vec<String> = parts.map(str::to_owned).collect();
        if arguments.is_empty() {
            return Ok(Query { command, arguments });
        }
        if !allow_arguments {
            return Err(QueryError::ArgumentsNotAllowed);
        }
        if arguments.len() > MAX_ARGUMENTS {
            return Err(QueryError::TooManyArguments(arguments.len()));
        }
        for (i, argument) in arguments.iter().enumerate() {
            if argument.is_empty() {
                return Err(QueryError::EmptyArgument(i + 1));
            }
            if argument.contains("$(") {
                return Err(QueryError::Substitution(i + 1));
            }
        }
        Ok(Query { command, arguments })
    }

    /// `argv` with `$ARG1$`..`$ARG16$` replaced by this query's arguments
    /// (an argument not given is empty). Each element stays one element
    /// whatever the argument holds: nothing is split or run through a
    /// shell. An element that was only a macro and came out empty is left
    /// out, as NRPE's shell would drop an empty unquoted word.
    pub fn substitute(&self, argv: &[String]) -> Vec<String> {
        argv.iter()
            .filter_map(|element| {
                let mut out = element.clone();
                // Highest first, so $ARG1$ never matches inside $ARG10$.
                for n in (1..=MAX_ARGUMENTS).rev() {
                    let macro_name = format!("$ARG{n}$");
                    if out.contains(&macro_name) {
                        let value = self.arguments.get(n - 1).map_or("", String::as_str);
                        out = out.replace(&macro_name, value);
                    }
                }
                let only_macros = out.is_empty() && !element.is_empty();
                (!only_macros).then_some(out)
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|&word| word.to_owned()).collect()
    }

    #[test]
    fn a_bare_command_needs_no_permission() {
        assert_eq!(
            Query::parse("check_load", false),
            Ok(Query { command: "check_load".into(), arguments: vec![] })
        );
    }

    #[test]
    fn arguments_are_refused_unless_allowed() {
        assert_eq!(Query::parse("check_disk!20%", false), Err(QueryError::ArgumentsNotAllowed));
        let query = Query::parse("check_disk!20%!10% free!/", true).unwrap();
        assert_eq!(query.arguments, ["20%", "10% free", "/"]);
    }

    #[test]
    fn what_nrpe_refuses_is_refused() {
        assert_eq!(Query::parse("", true), Err(QueryError::Empty));
        assert_eq!(Query::parse("!x", true), Err(QueryError::Empty));
        assert_eq!(Query::parse("check;reboot", true), Err(QueryError::Metachar(';')));
        assert_eq!(Query::parse("c!a|b", true), Err(QueryError::Metachar('|')));
        assert_eq!(Query::parse("c!`id`", true), Err(QueryError::Metachar('`')));
        assert_eq!(Query::parse("c!a!!b", true), Err(QueryError::EmptyArgument(2)));
        assert_eq!(Query::parse("c!$(id)", true), Err(QueryError::Substitution(1)));
        let many = format!("c{}", "!a".repeat(17));
        assert_eq!(Query::parse(&many, true), Err(QueryError::TooManyArguments(17)));
    }

    #[test]
    fn arguments_replace_whole_macros_inside_one_element() {
        let query = Query::parse("c!1!two words", true).unwrap();
        let command = argv(&["check_x", "-w", "$ARG1$", "--label=$ARG2$", "$ARG3$", "$ARG10$"]);
        assert_eq!(
            query.substitute(&command),
            argv(&["check_x", "-w", "1", "--label=two words"]),
            "missing arguments are empty and a lone empty macro is dropped"
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}", allow in any::<bool>()) {
            let _ = Query::parse(&text, allow);
        }

        #[test]
        fn an_argument_never_becomes_two(arg in "[^!\0|`&><'\\\\\\[\\]{};\r\n]{1,40}") {
            prop_assume!(!arg.contains("$("));
            let query = Query::parse(&format!("c!{arg}"), true).unwrap();
            prop_assert_eq!(query.substitute(&argv(&["p", "$ARG1$"])), vec!["p".to_owned(), arg]);
        }
    }
}
