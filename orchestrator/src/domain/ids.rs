//! Validated names. Every identifier that reaches a NATS subject or a SQL row
//! passes through here, so a bad name is rejected once, with a precise reason.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` is invalid: {problem}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub problem: &'static str,
}

fn check(what: &'static str, value: &str, max: usize) -> Result<(), NameError> {
    let err = |problem| NameError {
        what,
        value: value.chars().take(80).collect(),
        problem,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.len() > max {
        return Err(err("is too long"));
    }
    // Names become NATS subject tokens and stream ids: no dots, spaces or wildcards.
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(err("may only contain a-z, 0-9, '-' and '_'"));
    }
    if !value.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(err("must start with a letter or digit"));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[a-z0-9][a-z0-9_-]*$",
                    "minLength": 1,
                    "maxLength": $max,
                })
            }
        }

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                check($what, &value, $max)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// The namespace every object lives in (`[a-z0-9][a-z0-9_-]*`, at most 63 bytes).
    Tenant,
    "tenant",
    63
);
name_type!(
    /// A job's name, unique within its tenant.
    JobName,
    "job name",
    64
);
name_type!(
    /// A module's name, unique within its tenant.
    ModuleName,
    "module name",
    64
);

/// Identifies one event stream: the aggregate kind plus its name, e.g. `job.orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamId(String);

impl StreamId {
    /// `kind` is a fixed aggregate kind (`job`, `module`, `run`); `name` is already validated.
    pub fn new(kind: &str, name: &str) -> Self {
        Self(format!("{kind}.{name}"))
    }
    pub fn from_raw(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The aggregate kind: the part before the first dot.
    pub fn kind(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(Tenant::new("acme-1").is_ok());
        assert!(Tenant::new("").is_err());
        assert!(Tenant::new("a.b").is_err());
        assert!(Tenant::new("A").is_err());
        assert!(Tenant::new("-a").is_err());
        assert!(Tenant::new("a".repeat(64)).is_err());
        let err = JobName::new("bad name").unwrap_err();
        assert_eq!(
            err.to_string(),
            "job name `bad name` is invalid: may only contain a-z, 0-9, '-' and '_'"
        );
    }

    #[test]
    fn names_deserialize_through_validation() {
        let ok: Result<Tenant, _> = serde_json::from_str("\"acme\"");
        assert!(ok.is_ok());
        let bad: Result<Tenant, _> = serde_json::from_str("\"a>b\"");
        assert!(bad.is_err());
    }
}
