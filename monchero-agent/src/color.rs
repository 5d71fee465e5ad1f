//! Whether and how to colour output, decided once per invocation.
//!
//! The decision follows the conventions operators expect: `--color`, then
//! NO_COLOR (<https://no-color.org>) and CLICOLOR_FORCE, then whether stdout
//! is a terminal. owo-colors' own detection is not used so the rules stay
//! in one place and testable.

use std::io::IsTerminal;

use monchero_core::State;
use owo_colors::Style;

use crate::cli::ColorChoice;

/// The styles to use; all plain when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// Decides from the flag, the environment and stdout.
    pub fn detect(choice: ColorChoice) -> Palette {
        let env = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let enabled =
            decide(choice, env("NO_COLOR"), env("CLICOLOR_FORCE"), std::io::stdout().is_terminal());
        Palette { enabled }
    }

    fn style(self, style: Style) -> Style {
        if self.enabled { style } else { Style::new() }
    }

    /// The colour of a state: green, yellow, red, magenta.
    pub fn state(self, state: State) -> Style {
        let style = Style::new().bold();
        self.style(match state {
            State::Ok => style.green(),
            State::Warning => style.yellow(),
            State::Critical => style.red(),
            State::Unknown => style.magenta(),
        })
    }

    /// No styling, for places that are styled only in some cases.
    pub fn plain(self) -> Style {
        Style::new()
    }

    /// Names that anchor a line.
    pub fn strong(self) -> Style {
        self.style(Style::new().bold())
    }

    /// Secondary information (durations, headings).
    pub fn dim(self) -> Style {
        self.style(Style::new().dimmed())
    }
}

fn decide(choice: ColorChoice, no_color: bool, force: bool, tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if no_color => false,
        ColorChoice::Auto => force || tty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_beats_a_terminal_and_force_beats_a_pipe() {
        assert!(decide(ColorChoice::Auto, false, false, true));
        assert!(!decide(ColorChoice::Auto, true, false, true));
        assert!(!decide(ColorChoice::Auto, false, false, false));
        assert!(decide(ColorChoice::Auto, false, true, false));
        assert!(!decide(ColorChoice::Auto, true, true, true));
        assert!(decide(ColorChoice::Always, true, false, false));
        assert!(!decide(ColorChoice::Never, false, true, true));
    }
}
