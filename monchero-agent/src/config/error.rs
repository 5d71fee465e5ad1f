//! Config problems with the place they were found: `FILE:LINE:COLUMN: MESSAGE`.
//!
//! Positions are computed from the byte offsets the TOML parser reports, so
//! every problem, from a syntax error to an action that is not defined, points
//! at the key or value a person has to edit.

use std::fmt;

/// One problem in the configuration, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user named it, or `<embedded>` for the built-in default.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (not bytes) from the start of the line.
    pub column: usize,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in file and position order.
///
/// Loading reports all it can find at once, so a person fixes a config in
/// one pass instead of one error per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The text of one config file, kept to turn byte offsets into positions.
#[derive(Debug)]
pub(super) struct SourceFile {
    /// How errors name the file.
    pub name: String,
    pub text: String,
}

impl SourceFile {
    /// The problem `message` at byte `offset` of this file.
    pub fn error_at(&self, offset: usize, message: String) -> ConfigError {
        let (line, column) = line_column(&self.text, offset);
        ConfigError { file: self.name.clone(), line, column, message }
    }

    /// The 1-based line of byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_column(&self.text, offset).0
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// An offset past the end, or inside a multi-byte character, is clamped to
/// the nearest preceding character so a position is always printable.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Problems and warnings as they are found, each with a sort key (file
/// index, byte offset) so the final list reads top to bottom.
#[derive(Debug, Default)]
pub(super) struct Diagnostics {
    errors: Vec<((usize, usize), ConfigError)>,
    warnings: Vec<((usize, usize), ConfigError)>,
}

impl Diagnostics {
    pub fn error(&mut self, files: &[SourceFile], file: usize, offset: usize, message: String) {
        self.errors.push(((file, offset), files[file].error_at(offset, message)));
    }

    pub fn warning(&mut self, files: &[SourceFile], file: usize, offset: usize, message: String) {
        self.warnings.push(((file, offset), files[file].error_at(offset, message)));
    }

    /// The errors and the warnings, each sorted by place.
    pub fn finish(self) -> (Vec<ConfigError>, Vec<ConfigError>) {
        (sorted(self.errors), sorted(self.warnings))
    }
}

fn sorted(mut found: Vec<((usize, usize), ConfigError)>) -> Vec<ConfigError> {
    // Stable, so two problems at one place keep the order they were found in.
    found.sort_by_key(|(place, _)| *place);
    found.into_iter().map(|(_, error)| error).collect()
}

/// The candidate closest to `word` if it is at most two edits away (and
/// not a complete rewrite of a short word): the "did you mean" of a misspelt
/// key or name.
pub(super) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = 2.min(word.chars().count().saturating_sub(1));
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance over characters, case-insensitive, where swapping two
/// neighbours counts as one edit (the commonest typo: "nmae").
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // d[i][j]: distance between the first i characters of a and j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nnäme = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // "näme" has a two-byte character: the `=` is byte 12, column 6.
        assert_eq!(line_column(text, 12), (2, 6));
        assert_eq!(line_column(text, 8), (2, 2), "inside a character: clamped");
        assert_eq!(line_column(text, 999), (3, 1), "past the end: the end");
    }

    #[test]
    fn errors_display_as_file_line_column_message() {
        let file = SourceFile { name: "agent.toml".into(), text: "\n\n  x = 1".into() };
        let error = file.error_at(4, "bad".into());
        assert_eq!(error.to_string(), "agent.toml:3:3: bad");
        let errors = ConfigErrors(vec![error.clone(), error]);
        assert_eq!(errors.to_string(), "agent.toml:3:3: bad\nagent.toml:3:3: bad");
    }

    #[test]
    fn suggests_only_close_candidates() {
        let keys = ["interval", "retry_interval", "timeout"];
        assert_eq!(closest("intervall", &keys), Some("interval"));
        assert_eq!(closest("Interval", &keys), Some("interval"));
        assert_eq!(closest("timout", &keys), Some("timeout"));
        assert_eq!(closest("frequency", &keys), None);
        assert_eq!(closest("nmae", &["name", "command"]), Some("name"));
        assert_eq!(closest("zz", &["on", "name"]), None, "two edits rewrite a two-letter word");
        assert_eq!(closest("onn", &["on", "name"]), Some("on"));
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
