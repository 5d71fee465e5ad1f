//! A check's command line: split with shell quoting rules and executed
//! directly, or handed to `/bin/sh -c` only when the config asks for a shell.

use std::fmt;

/// What to execute for a check or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// A program and its arguments, executed without a shell.
    Exec {
        /// The program: a path, or a name looked up on `PATH`.
        program: String,
        /// Its arguments, already unquoted.
        args: Vec<String>,
    },
    /// A script for `/bin/sh -c`, for pipes, redirections and variables.
    Shell(String),
}

/// A command line that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandLineError {
    /// Nothing to run.
    #[error("the command is empty")]
    Empty,
    /// Quoting that does not close, or a trailing backslash.
    #[error("the command {0:?} has an unterminated quote or a trailing backslash")]
    BadQuoting(String),
}

impl CommandLine {
    /// Splits `text` with POSIX shell quoting rules (`'…'`, `"…"`, `\`)
    /// into a program and arguments. No expansion of any kind happens.
    pub fn parse(text: &str) -> Result<CommandLine, CommandLineError> {
        let argv =
            shlex::split(text).ok_or_else(|| CommandLineError::BadQuoting(text.to_owned()))?;
        CommandLine::from_argv(argv)
    }

    /// A command from an argument vector, as given on our own command line.
    pub fn from_argv(argv: Vec<String>) -> Result<CommandLine, CommandLineError> {
        let mut argv = argv.into_iter();
        let program = argv.next().filter(|p| !p.is_empty()).ok_or(CommandLineError::Empty)?;
        Ok(CommandLine::Exec { program, args: argv.collect() })
    }

    /// A script run by `/bin/sh -c`.
    pub fn shell(script: &str) -> Result<CommandLine, CommandLineError> {
        if script.trim().is_empty() {
            return Err(CommandLineError::Empty);
        }
        Ok(CommandLine::Shell(script.to_owned()))
    }

    /// The program that will be executed (`/bin/sh` for a shell command).
    pub fn program(&self) -> &str {
        match self {
            CommandLine::Exec { program, .. } => program,
            CommandLine::Shell(_) => "/bin/sh",
        }
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandLine::Exec { program, args } => {
                let words = std::iter::once(program).chain(args).map(String::as_str);
                match shlex::try_join(words) {
                    Ok(joined) => f.write_str(&joined),
                    // Only NUL bytes cannot be quoted; show them rather than fail.
                    Err(_) => write!(f, "{program} {args:?}"),
                }
            }
            CommandLine::Shell(script) => write!(f, "/bin/sh -c {script:?}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_shell_quoting_and_no_expansion() {
        let cmd =
            CommandLine::parse(r#"check_http -H 'my host' -u "/a b" --expect=\$HOME *"#).unwrap();
        assert_eq!(
            cmd,
            CommandLine::Exec {
                program: "check_http".into(),
                args: vec!["-H", "my host", "-u", "/a b", "--expect=$HOME", "*"]
                    .into_iter()
                    .map(String::from)
                    .collect(),
            }
        );
    }

    #[test]
    fn rejects_empty_and_badly_quoted_commands() {
        assert_eq!(CommandLine::parse("   "), Err(CommandLineError::Empty));
        assert_eq!(CommandLine::parse("''"), Err(CommandLineError::Empty));
        assert!(matches!(
            CommandLine::parse("check_x 'oops"),
            Err(CommandLineError::BadQuoting(_))
        ));
        assert_eq!(CommandLine::shell(" "), Err(CommandLineError::Empty));
    }

    #[test]
    fn displays_as_a_command_that_splits_back() {
        let cmd = CommandLine::parse("check_disk -p '/mnt/my disk' -w 10%").unwrap();
        assert_eq!(cmd.to_string(), "check_disk -p '/mnt/my disk' -w '10%'");
        assert_eq!(CommandLine::parse(&cmd.to_string()).unwrap(), cmd);
    }
}
