//! Why a command was refused. Rejections are outcomes, not errors: they are
//! stored with the command id so a redelivered command gets the same answer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A machine-readable reason class. Clients branch on this, never on the message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The message was not valid UTF-8.
    InvalidUtf8,
    /// The message was not valid JSON.
    InvalidJson,
    /// The message exceeded the size limit.
    TooLarge,
    /// The envelope or payload did not match the schema.
    InvalidCommand,
    /// `kind` names no known command.
    UnknownKind,
    /// The subject's tenant differs from the envelope's.
    TenantMismatch,
    /// The subject's command kind differs from the envelope's.
    KindMismatch,
    /// The message carries no token, or one that is not valid for its tenant.
    Unauthorized,
    /// The sender may not send this command (an internal kind from a client,
    /// an admin kind with a tenant's token).
    Forbidden,
    /// The tenant's quota does not allow it (commands per second, jobs, module bytes).
    QuotaExceeded,
    /// The target does not exist.
    NotFound,
    /// The target already exists.
    AlreadyExists,
    /// The command is not allowed in the target's current state.
    InvalidTransition,
    /// `expected_version` did not match the stream's version.
    Conflict,
    /// Delivered too many times without being processed.
    DeadLettered,
}

impl RejectionCode {
    /// Whether a command refused so is remembered under its id (deduplicated
    /// forever). Refusals of who sent it, or of when, are not: the same id
    /// from its rightful sender, or later, is decided afresh.
    pub fn is_recorded(self) -> bool {
        !matches!(
            self,
            RejectionCode::Unauthorized | RejectionCode::QuotaExceeded
        )
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
