//! What changed between two versions of a job: every spec field that was
//! added, removed or changed (by its path, `operators[1].module`), and
//! whether an upgrade from one to the other keeps operator state, read from
//! their compiled state fingerprints (the check the upgrade workflow makes).
//! Pure: `weir job diff` renders it.

use serde::Serialize;
use serde_json::Value;

use super::state::{CompileStatus, VersionInfo};

/// One difference, by path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `parallelism`, `operators[1].module`, `autotune.mode`, …
    pub path: String,
    /// The value in the first version (`null` if absent there).
    pub from: Value,
    /// The value in the second version (`null` if absent there).
    pub to: Value,
}

/// Whether operator state survives an upgrade from one version to the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StateCompat {
    /// Same state fingerprint: state is restored.
    Kept,
    /// Different fingerprints: the upgrade is refused unless state loss is allowed.
    Dropped { from: String, to: String },
    /// A version is not compiled yet (`weir job compile` it).
    Unknown { not_compiled: Vec<u32> },
}

/// Two versions compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDiff {
    pub from: u32,
    pub to: u32,
    pub changes: Vec<Change>,
    pub state: StateCompat,
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    // A block present on one side only is compared field by field against
    // nothing, so each of its fields shows as added or removed.
    let empty_object = Value::Object(Default::default());
    let empty_array = Value::Array(Vec::new());
    let (a, b) = match (a, b) {
        (Value::Null, Value::Object(_)) => (&empty_object, b),
        (Value::Object(_), Value::Null) => (a, &empty_object),
        (Value::Null, Value::Array(_)) => (&empty_array, b),
        (Value::Array(_), Value::Null) => (a, &empty_array),
        _ => (a, b),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                walk(
                    &format!("{path}[{i}]"),
                    x.get(i).unwrap_or(&Value::Null),
                    y.get(i).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(Change {
            path: path.to_owned(),
            from: a.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

fn fingerprint(v: &VersionInfo) -> Option<&str> {
    match &v.compile {
        CompileStatus::Compiled {
            state_fingerprint, ..
        } => Some(state_fingerprint),
        _ => None,
    }
}

/// Compares version `a` with version `b`.
pub fn diff(a: &VersionInfo, b: &VersionInfo) -> VersionDiff {
    let mut changes = Vec::new();
    walk("", &a.spec, &b.spec, &mut changes);
    let state = match (fingerprint(a), fingerprint(b)) {
        (Some(x), Some(y)) if x == y => StateCompat::Kept,
        (Some(x), Some(y)) => StateCompat::Dropped {
            from: x.to_owned(),
            to: y.to_owned(),
        },
        (x, y) => StateCompat::Unknown {
            not_compiled: [(x, a.version), (y, b.version)]
                .into_iter()
                .filter(|(f, _)| f.is_none())
                .map(|(_, v)| v)
                .collect(),
        },
    };
    VersionDiff {
        from: a.version,
        to: b.version,
        changes,
        state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(n: u32, spec: Value, fp: Option<&str>) -> VersionInfo {
        VersionInfo {
            version: n,
            spec,
            submitted_at: chrono::Utc::now(),
            compile: match fp {
                Some(f) => CompileStatus::Compiled {
                    plan_digest: format!("plan-{n}"),
                    state_fingerprint: f.into(),
                },
                None => CompileStatus::NotCompiled,
            },
        }
    }

    #[test]
    fn names_each_changed_field_by_path() {
        let a = version(
            1,
            json!({"parallelism": 2, "operators": [{"id": "u", "module": "up@1"}], "sinks": [{"topic": "o"}]}),
            Some("fp"),
        );
        let b = version(
            2,
            json!({"parallelism": 4, "operators": [{"id": "u", "module": "up@2"}, {"id": "k"}], "sinks": [{"topic": "o"}], "autotune": {"mode": "apply"}}),
            Some("fp"),
        );
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "autotune.mode",
                "operators[0].module",
                "operators[1].id",
                "parallelism"
            ]
        );
        assert_eq!(d.changes[1].from, json!("up@1"));
        assert_eq!(d.changes[1].to, json!("up@2"));
        assert_eq!(d.changes[0].from, Value::Null);
        assert_eq!(d.state, StateCompat::Kept);
    }

    #[test]
    fn state_follows_the_fingerprints() {
        let s = json!({});
        let d = diff(
            &version(1, s.clone(), Some("a")),
            &version(2, s.clone(), Some("b")),
        );
        assert!(matches!(d.state, StateCompat::Dropped { .. }));
        let d = diff(&version(1, s.clone(), Some("a")), &version(3, s, None));
        assert_eq!(
            d.state,
            StateCompat::Unknown {
                not_compiled: vec![3]
            }
        );
        assert!(d.changes.is_empty());
    }
}
