//! `${secret:NAME}` references in a job spec. Pure: finding them (with the
//! path of the field that holds each), checking names, and substituting
//! values into a copy of the spec.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const OPEN: &str = "${secret:";

/// Whether `name` may name a secret: 1-64 of `A-Z a-z 0-9 _ -`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The pieces of one string: literal text and secret names, in order.
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str),
}

fn pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find(OPEN) {
        out.push(Piece::Text(&rest[..at]));
        let after = &rest[at + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err("`${secret:` without its closing `}`".to_owned());
        };
        let name = &after[..end];
        if !valid_name(name) {
            return Err(format!(
                "`${{secret:{}}}` is not a secret name (1-64 of A-Z a-z 0-9 _ -)",
                name.chars().take(80).collect::<String>()
            ));
        }
        out.push(Piece::Secret(name));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

fn walk<'a>(v: &'a Value, path: &mut String, f: &mut dyn FnMut(&str, &'a str)) {
    match v {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, f);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(item, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Every reference in `spec`, as (the field that holds it, the secret's
/// name), or each malformed reference with its field.
pub fn references(spec: &Value) -> Result<Vec<(String, String)>, Vec<String>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    walk(spec, &mut String::new(), &mut |path, s| match pieces(s) {
        Ok(ps) => {
            for p in ps {
                if let Piece::Secret(n) = p {
                    found.push((path.to_owned(), n.to_owned()));
                }
            }
        }
        Err(e) => problems.push(format!("{path}: {e}")),
    });
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

/// The names of the secrets `spec` refers to.
pub fn names(spec: &Value) -> Result<BTreeSet<String>, Vec<String>> {
    references(spec).map(|r| r.into_iter().map(|(_, n)| n).collect())
}

/// Whether a reference at `path` is resolved: only an HTTP sink's headers are.
fn resolved_at(path: &str) -> bool {
    path.strip_prefix("sinks[")
        .and_then(|rest| rest.split_once("].headers."))
        .is_some_and(|(i, name)| i.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
}

/// What is wrong with `refs` for a tenant that has the secrets `have`:
/// references outside HTTP sink headers, and secrets it does not have.
pub fn problems(refs: &[(String, String)], have: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, name) in refs {
        if !resolved_at(path) {
            out.push(format!(
                "{path}: `${{secret:{name}}}` is put only into HTTP sink headers (sinks[N].headers)"
            ));
        } else if !have.contains(name) {
            out.push(format!(
                "{path}: no secret `{name}` (set it with `weir secret set {name}`)"
            ));
        }
    }
    out
}

/// A copy of `spec` with every reference replaced by its value from
/// `values`; a name without a value is an error naming its field.
pub fn substitute(spec: &Value, values: &BTreeMap<String, String>) -> Result<Value, Vec<String>> {
    fn go(
        v: &Value,
        path: &mut String,
        values: &BTreeMap<String, String>,
        problems: &mut Vec<String>,
    ) -> Value {
        match v {
            Value::String(s) => match pieces(s) {
                Ok(ps) => {
                    let mut out = String::with_capacity(s.len());
                    for p in ps {
                        match p {
                            Piece::Text(t) => out.push_str(t),
                            Piece::Secret(n) => match values.get(n) {
                                Some(value) => out.push_str(value),
                                None => problems.push(format!("{path}: no secret `{n}`")),
                            },
                        }
                    }
                    Value::String(out)
                }
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    v.clone()
                }
            },
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        let out = go(item, path, values, problems);
                        path.truncate(len);
                        out
                    })
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, item)| {
                        let len = path.len();
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(k);
                        let out = go(item, path, values, problems);
                        path.truncate(len);
                        (k.clone(), out)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut problems = Vec::new();
    let out = go(spec, &mut String::new(), values, &mut problems);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> Value {
        json!({
            "sources": [{"topic": "alice.in"}],
            "sinks": [{"type": "http", "url": "https://hooks.example.com/x",
                       "headers": {"Authorization": "Bearer ${secret:hook-token}",
                                   "X-Both": "${secret:a}:${secret:b}"}}]
        })
    }

    #[test]
    fn references_are_found_and_replaced_in_place() {
        let s = spec();
        assert_eq!(
            names(&s).unwrap().into_iter().collect::<Vec<_>>(),
            ["a", "b", "hook-token"]
        );
        let values: BTreeMap<String, String> = [("hook-token", "t0k"), ("a", "1"), ("b", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let out = substitute(&s, &values).unwrap();
        assert_eq!(out["sinks"][0]["headers"]["Authorization"], "Bearer t0k");
        assert_eq!(out["sinks"][0]["headers"]["X-Both"], "1:2");
        assert_eq!(out["sources"], s["sources"], "the rest is untouched");
    }

    #[test]
    fn only_header_references_to_existing_secrets_pass() {
        let spec = json!({
            "sinks": [{"type": "http", "url": "https://x/${secret:u}",
                       "headers": {"Authorization": "${secret:hook}"}}],
        });
        let refs = references(&spec).unwrap();
        let have = BTreeSet::from(["hook".to_owned(), "u".to_owned()]);
        let p = problems(&refs, &have);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("sinks[0].url: "), "{p:?}");
        let p = problems(&refs, &BTreeSet::new());
        assert!(
            p.contains(&"sinks[0].headers.Authorization: no secret `hook` (set it with `weir secret set hook`)".to_owned()),
            "{p:?}"
        );
        assert!(resolved_at("sinks[12].headers.X-Key"));
        assert!(!resolved_at("sinks[x].headers.A"));
        assert!(!resolved_at("sinks[0].headers."));
        assert!(!resolved_at("operators[0].headers.A"));
    }

    #[test]
    fn a_missing_or_malformed_reference_names_its_field() {
        let e = substitute(&spec(), &BTreeMap::new()).unwrap_err();
        assert!(
            e.contains(&"sinks[0].headers.Authorization: no secret `hook-token`".to_owned()),
            "{e:?}"
        );
        let bad =
            json!({"sinks": [{"headers": {"A": "${secret:no spaces}", "B": "${secret:open"}}]});
        let e = names(&bad).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("sinks[0].headers.A: "), "{e:?}");
        assert!(e[1].contains("closing"), "{e:?}");
        // A value that merely looks like a reference is not re-expanded.
        let values = BTreeMap::from([("x".to_owned(), "${secret:y}".to_owned())]);
        let out = substitute(&json!({"h": "${secret:x}"}), &values).unwrap();
        assert_eq!(out["h"], "${secret:y}");
    }
}
