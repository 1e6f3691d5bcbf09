//! Finds the line of a field path (`steps[2].retry.max_attempts`) in YAML text.
//!
//! serde_yaml reports locations for syntax and type errors but not for the
//! semantic checks that come after deserializing; this scanner maps a path
//! back to a line by following block indentation. Flow collections (`{…}`)
//! are not entered: a path inside one resolves to the line it starts on.

#[derive(Debug)]
enum Kind<'a> {
    Item,
    Key(&'a str),
}

#[derive(Debug)]
struct Entry<'a> {
    line: usize,
    indent: usize,
    kind: Kind<'a>,
}

fn entries(text: &str) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut indent = raw.len() - raw.trim_start_matches(' ').len();
        let mut rest = &raw[indent..];
        if rest.starts_with('#') || rest.trim().is_empty() {
            continue;
        }
        loop {
            if rest == "-" || rest.starts_with("- ") {
                out.push(Entry {
                    line: i + 1,
                    indent,
                    kind: Kind::Item,
                });
                let after = &rest[1..];
                let skip = after.len() - after.trim_start_matches(' ').len();
                indent += 1 + skip;
                rest = &after[skip..];
                continue;
            }
            break;
        }
        if let Some(colon) = rest.find(':') {
            let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
            let after = &rest[colon + 1..];
            let is_key = !key.is_empty()
                && !key.starts_with(['{', '[', '"', '\''])
                && (after.is_empty() || after.starts_with(' '));
            if is_key {
                out.push(Entry {
                    line: i + 1,
                    indent,
                    kind: Kind::Key(key),
                });
            }
        }
    }
    out
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// Splits `steps[2].retry` into segments.
pub fn split_path(path: &str) -> Vec<PathSeg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut p = part;
        if let Some(b) = p.find('[') {
            if b > 0 {
                out.push(PathSeg::Key(p[..b].to_owned()));
            }
            p = &p[b..];
            while let Some(rest) = p.strip_prefix('[') {
                let Some(end) = rest.find(']') else { break };
                if let Ok(n) = rest[..end].parse() {
                    out.push(PathSeg::Index(n));
                }
                p = &rest[end + 1..];
            }
        } else if !p.is_empty() {
            out.push(PathSeg::Key(p.to_owned()));
        }
    }
    out
}

/// The 1-based line where `path` is written, or the nearest enclosing field that is.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let all = entries(text);
    let mut range: &[Entry<'_>] = &all;
    let mut best = None;
    for seg in split_path(path) {
        let Some(min) = range.iter().map(|e| e.indent).min() else {
            break;
        };
        let found = match &seg {
            PathSeg::Key(k) => range
                .iter()
                .position(|e| e.indent == min && matches!(e.kind, Kind::Key(x) if x == k)),
            PathSeg::Index(n) => range
                .iter()
                .enumerate()
                .filter(|(_, e)| e.indent == min && matches!(e.kind, Kind::Item))
                .nth(*n)
                .map(|(i, _)| i),
        };
        let Some(at) = found else { break };
        let e = &range[at];
        best = Some(e.line);
        let after = &range[at + 1..];
        let end = after
            .iter()
            .position(|x| x.indent <= e.indent && x.line != e.line)
            .unwrap_or(after.len());
        range = &after[..end];
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

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
outputs:
  x: $.steps.first.output
";

    #[test]
    fn finds_nested_fields() {
        assert_eq!(line_of(TEXT, "name"), Some(1));
        assert_eq!(line_of(TEXT, "steps"), Some(3));
        assert_eq!(line_of(TEXT, "steps[0]"), Some(4));
        assert_eq!(line_of(TEXT, "steps[0].id"), Some(4));
        assert_eq!(line_of(TEXT, "steps[0].retry.max_attempts"), Some(7));
        assert_eq!(line_of(TEXT, "steps[1].input.job"), Some(11));
        assert_eq!(line_of(TEXT, "outputs.x"), Some(13));
    }

    #[test]
    fn falls_back_to_the_nearest_enclosing_field() {
        assert_eq!(line_of(TEXT, "steps[1].wait.for"), Some(9));
        assert_eq!(line_of(TEXT, "steps[1].timeout"), Some(8));
        assert_eq!(line_of(TEXT, "steps[7]"), Some(3));
    }
}
