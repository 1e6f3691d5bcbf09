//! Durations as people write them everywhere in Weir (CLI flags, job specs,
//! workflow files): `250ms`, `30s`, `10m`, `1h`.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration written as a number and a unit (`ms`, `s`, `m` or `h`), e.g. `30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dur(Duration);

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^[0-9]+(ms|s|m|h)$",
            "description": "A duration: a whole number and a unit, ms, s, m or h (e.g. `30s`).",
            "examples": ["500ms", "30s", "2m"]
        })
    }
}

impl Dur {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub fn get(self) -> Duration {
        self.0
    }
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
    /// As a chrono duration, saturating at about 292 million years.
    pub fn to_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration like 500ms, 30s, 2m or 1h")]
pub struct DurError(String);

impl std::str::FromStr for Dur {
    type Err = DurError;
    fn from_str(s: &str) -> Result<Self, DurError> {
        let bad = || DurError(s.chars().take(40).collect());
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => None,
        };
        ms.map(Dur::from_millis).ok_or_else(bad)
    }
}

impl TryFrom<String> for Dur {
    type Error = DurError;
    fn try_from(s: String) -> Result<Self, DurError> {
        s.parse()
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for (s, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
        ] {
            let d: Dur = s.parse().unwrap();
            assert_eq!(d.as_millis(), ms);
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(Dur::from_millis(1500).to_string(), "1500ms");
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for s in ["", "10", "s", "1.5s", "-1s", "3 days", "5d"] {
            assert!(s.parse::<Dur>().is_err(), "{s}");
        }
    }
}
