//! Why something failed, as a machine reads it: workflow retry policies and
//! branches, activities and the module registry all speak this vocabulary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A machine-readable failure class. Retry policies and branches match on it, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A service was unreachable or overloaded; trying later may work.
    Unavailable,
    /// The attempt or the wait ran out of time.
    Timeout,
    /// A concurrent change got in the way.
    Conflict,
    /// A command was refused by the state machine.
    Rejected,
    /// Something named does not exist.
    NotFound,
    /// The input was wrong; trying again cannot help.
    Invalid,
    /// The activity declined on purpose (e.g. an upgrade that would drop state).
    Refused,
    /// The deployment restarted or failed while it was watched.
    Unhealthy,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Rejected => "rejected",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Refused => "refused",
            ErrorClass::Unhealthy => "unhealthy",
            ErrorClass::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
