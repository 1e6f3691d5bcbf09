//! The documents people write (job specs, workflow files) and what is wrong
//! with them: each [`Problem`] names the field and, for YAML text, its line.
//!
//! A YAML document is read twice. serde-saphyr deserializes it, and the first
//! mistake it meets stops it with the field's path and line. The YAML parser's
//! events then give the line of every field written ([`Lines`]), so the checks
//! that run on the typed value afterwards point at lines too. JSON is YAML, so
//! JSON text takes the same path; an already-decoded JSON value has no lines.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Parser};
use serde_saphyr::{ExternalMessageSource, MessageFormatter, UserMessageFormatter};

/// The field of a problem that belongs to no field (a syntax error, a duplicate key).
pub const DOCUMENT: &str = "(document)";

/// One thing wrong with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, e.g. `steps[2].retry.max_attempts`.
    pub field: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub problem: String,
}

impl Problem {
    /// A problem whose line is not known yet (see [`Lines::locate`]).
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            line: None,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Problems as people read them: one line each, `file:line: field: problem`
/// (`file: field: problem` when the line is not known).
pub fn render(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(l) => format!("{file}:{l}: {p}"),
            None => format!("{file}: {p}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Deeper than this, [`Lines`] stops indexing.
const MAX_DEPTH: usize = 64;

/// The line of every field written in a YAML document, by path
/// (`steps[2].retry`): for a mapping entry the line of its key, for a
/// sequence item the line it starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lines(HashMap<String, usize>);

impl Lines {
    /// Indexes `text`; a syntax error, or nesting deeper than any document
    /// of ours needs, ends the index where it stands.
    pub fn of(text: &str) -> Self {
        let mut events = Parser::new_from_str(text)
            .map_while(Result::ok)
            .map(|(event, span)| (event, span.start.line()));
        let mut lines = Lines::default();
        while let Some((event, _)) = events.next() {
            if lines.node(&mut events, "", event, 0).is_break() {
                break;
            }
        }
        lines
    }

    /// Records the node that starts with `event` and its children, under `path`.
    fn node<'a>(
        &mut self,
        events: &mut impl Iterator<Item = (Event<'a>, usize)>,
        path: &str,
        event: Event<'a>,
        depth: usize,
    ) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        // The recursion follows the document's nesting, which its author controls.
        if depth > MAX_DEPTH {
            return Break(());
        }
        match event {
            Event::MappingStart(..) => loop {
                let Some((key, line)) = events.next() else {
                    return Break(());
                };
                let key = match key {
                    Event::MappingEnd => return Continue(()),
                    Event::Scalar(k, ..) => k.into_owned(),
                    // A complex key (a mapping or a sequence) names no field.
                    other => {
                        self.node(events, "?", other, depth + 1)?;
                        "?".to_owned()
                    }
                };
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                self.0.entry(child.clone()).or_insert(line);
                let Some((value, _)) = events.next() else {
                    return Break(());
                };
                self.node(events, &child, value, depth + 1)?;
            },
            Event::SequenceStart(..) => {
                let mut i = 0;
                loop {
                    let Some((item, line)) = events.next() else {
                        return Break(());
                    };
                    if matches!(item, Event::SequenceEnd) {
                        return Continue(());
                    }
                    let child = format!("{path}[{i}]");
                    self.0.entry(child.clone()).or_insert(line);
                    self.node(events, &child, item, depth + 1)?;
                    i += 1;
                }
            }
            Event::StreamEnd => Break(()),
            // Scalars, aliases and stream or document markers hold no fields.
            _ => Continue(()),
        }
    }

    /// The line where `path` is written, or failing that the nearest
    /// enclosing field that is (a default that was not written has no line).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut at = path;
        loop {
            if let Some(l) = self.0.get(at) {
                return Some(*l);
            }
            at = &at[..at.rfind(['.', '['])?];
        }
    }

    /// Gives every problem the line of its field, and puts them in the
    /// order of the file (those without a line last), as people read it.
    pub fn locate(&self, mut problems: Vec<Problem>) -> Vec<Problem> {
        for p in &mut problems {
            p.line = self.line_of(&p.field);
        }
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        problems
    }
}

/// Deserializes YAML (or JSON) text, returning the value with the lines of its
/// fields; the first mistake is reported with its field and line.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<(T, Lines), Problem> {
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    let lines = Lines::of(text);
    match parsed {
        Ok(value) => Ok((value, lines)),
        Err(e) => {
            let e = e.without_snippet();
            let syntax = matches!(
                e,
                serde_saphyr::Error::ExternalMessage { source, .. }
                    if matches!(**source, ExternalMessageSource::Parser(_))
            );
            let field = field_of(path);
            let at = e.location().map(|l| l.line() as usize);
            // Where the parser stopped is the place of a syntax error; for the
            // rest, the field's own line is exact (a missing field's location
            // may point inside a nested value).
            let line = if syntax || field == DOCUMENT {
                at
            } else {
                lines.0.get(&field).copied().or(at)
            };
            Err(Problem {
                field,
                line,
                problem: printable(&UserMessageFormatter.format_message(e)),
            })
        }
    }
}

/// The YAML 1.2 core schema, which is what people mean: only `true` and
/// `false` are booleans (a `key_by` on the field `y` means that field), and in
/// untyped values (activity inputs) numbers written with leading zeros or
/// underscores stay as written.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// Deserializes an already-decoded JSON value; the first mistake is reported
/// with its field.
pub fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = field_of(e.path().to_string());
        Problem::new(field, e.into_inner().to_string())
    })
}

/// serde_path_to_error writes `.` for the root and `?` for an unknown place.
fn field_of(path: String) -> String {
    match path.as_str() {
        "" | "." | "?" => DOCUMENT.to_owned(),
        _ => path,
    }
}

/// Messages may quote the document; control characters in it must not reach a terminal.
fn printable(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for c in msg.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const TEXT: &str = "name: demo
# a comment
steps:
  - id: first
    activity: start
    retry:
      max_attempts: 0
  - id: second
    wait: { for: 10s }
    input:
      job: $.input.job
      list: [a, {b: c}]
outputs:
  x: $.steps.first.output
";

    #[test]
    fn finds_nested_fields() {
        let lines = Lines::of(TEXT);
        assert_eq!(lines.line_of("name"), Some(1));
        assert_eq!(lines.line_of("steps"), Some(3));
        assert_eq!(lines.line_of("steps[0]"), Some(4));
        assert_eq!(lines.line_of("steps[0].id"), Some(4));
        assert_eq!(lines.line_of("steps[0].retry.max_attempts"), Some(7));
        assert_eq!(lines.line_of("steps[1].wait.for"), Some(9));
        assert_eq!(lines.line_of("steps[1].input.job"), Some(11));
        assert_eq!(lines.line_of("steps[1].input.list[1].b"), Some(12));
        assert_eq!(lines.line_of("outputs.x"), Some(14));
    }

    #[test]
    fn deep_nesting_ends_the_index_instead_of_the_stack() {
        let deep = format!("a: {}1{}\nb: 2\n", "[".repeat(100_000), "]".repeat(100_000));
        let lines = Lines::of(&deep);
        assert_eq!(lines.line_of("a[0][0]"), Some(1));
        assert_eq!(lines.line_of("b"), None);
        assert!(from_yaml::<serde_json::Value>(&deep).is_err());
    }

    #[test]
    fn falls_back_to_the_nearest_enclosing_field() {
        let lines = Lines::of(TEXT);
        assert_eq!(lines.line_of("steps[1].wait.within"), Some(9));
        assert_eq!(lines.line_of("steps[1].timeout"), Some(8));
        assert_eq!(lines.line_of("steps[7]"), Some(3));
        assert_eq!(lines.line_of("defaults.timeout"), None);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn the_first_mistake_names_its_field_and_line() {
        let p =
            from_yaml::<Doc>("name: x\nitems:\n  - id: a\n  - id: b\n    cuont: 2\n").unwrap_err();
        assert_eq!(
            (p.field.as_str(), p.line),
            ("items[1].cuont", Some(5)),
            "{p:?}"
        );
        assert!(p.problem.contains("unknown field `cuont`"), "{p:?}");
        let p = from_yaml::<Doc>("name: x\nitems:\n  - id: a\n  - count: 2\n    \n").unwrap_err();
        assert_eq!((p.field.as_str(), p.line), ("items[1]", Some(4)), "{p:?}");
        assert!(p.problem.contains("missing field `id`"), "{p:?}");
        let p = from_yaml::<Doc>("name: x\nitems: [\n  - id: a\n").unwrap_err();
        assert_eq!(
            p.line,
            Some(3),
            "a syntax error is where the parser stopped: {p:?}"
        );
        let p = from_yaml::<Doc>("name: x\nname: y\n").unwrap_err();
        assert_eq!((p.field.as_str(), p.line), (DOCUMENT, Some(2)), "{p:?}");
    }

    #[test]
    fn only_true_and_false_are_booleans() {
        let (v, _) =
            from_yaml::<serde_json::Value>("[y, n, on, off, yes, no, true, False, 007, 1_000, 5]")
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!(["y", "n", "on", "off", "yes", "no", true, false, "007", "1_000", 5])
        );
    }

    #[test]
    fn json_text_and_values_are_documents_too() {
        let (doc, lines) = from_yaml::<Doc>(r#"{"name": "x", "items": [{"id": "a"}]}"#).unwrap();
        assert_eq!(doc.items.len(), 1);
        assert_eq!(lines.line_of("items[0].id"), Some(1));
        let p =
            from_json::<Doc>(serde_json::json!({"name": "x", "items": [{"id": 1}]})).unwrap_err();
        assert_eq!((p.field.as_str(), p.line), ("items[0].id", None), "{p:?}");
    }

    #[test]
    fn renders_one_line_per_problem() {
        let ps = vec![
            Problem {
                line: Some(3),
                ..Problem::new("a.b", "is wrong")
            },
            Problem::new("c", "is missing"),
        ];
        assert_eq!(
            render("f.yaml", &ps),
            "f.yaml:3: a.b: is wrong\nf.yaml: c: is missing"
        );
    }
}
