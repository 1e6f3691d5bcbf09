//! What workers and the control plane say to each other over NATS: the
//! heartbeat value in the `<prefix>-workers` key-value bucket, and the JSON
//! bodies of the control requests on `<prefix>.worker.<id>.<op>`.

use serde::{Deserialize, Serialize};

use crate::runtime::control::{
    CheckpointInfo, DeploymentKey, DeploymentRequest, DeploymentStatus, RuntimeError,
};

/// A worker's heartbeat: written every interval under its id; the bucket's
/// `max_age` makes it vanish when the worker stops writing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub worker: String,
    /// Deployments it accepts.
    pub capacity: u32,
    /// What it runs now, and under which placement epoch.
    pub deployments: Vec<Held>,
}

/// A deployment a worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub key: DeploymentKey,
    pub generation: u64,
    pub epoch: u64,
}

/// `start`: run `request` under placement `epoch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartBody {
    pub request: DeploymentRequest,
    pub epoch: u64,
    /// Resuming a placement (restart or failover) rather than a new start:
    /// restore the newest checkpoint of this generation if there is one.
    #[serde(default)]
    pub resume: bool,
}

/// `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopBody {
    pub key: DeploymentKey,
    pub generation: u64,
    pub final_checkpoint: bool,
}

/// `checkpoint` and `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBody {
    pub key: DeploymentKey,
}

/// The reply to every request: a value or a runtime error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply<T> {
    Ok { value: T },
    Err { error: WireError },
}

pub type StartReply = Reply<()>;
pub type StopReply = Reply<Option<CheckpointInfo>>;
pub type CheckpointReply = Reply<CheckpointInfo>;
pub type StatusReply = Reply<DeploymentStatus>;

/// [`RuntimeError`] on the wire, so the caller gets the same variant back
/// (workflows decide retry or fail by variant, not by message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireError {
    NotDeployed { key: DeploymentKey },
    StaleGeneration { requested: u64, current: u64 },
    CheckpointNotFound { id: String },
    Invalid { message: String },
    Unavailable { what: String, reason: String },
    Internal { message: String },
}

impl From<&RuntimeError> for WireError {
    fn from(e: &RuntimeError) -> Self {
        match e {
            RuntimeError::NotDeployed(key) => WireError::NotDeployed { key: key.clone() },
            RuntimeError::StaleGeneration { requested, current } => WireError::StaleGeneration {
                requested: *requested,
                current: *current,
            },
            RuntimeError::CheckpointNotFound(id) => {
                WireError::CheckpointNotFound { id: id.clone() }
            }
            RuntimeError::Invalid(m) => WireError::Invalid { message: m.clone() },
            RuntimeError::Unavailable { what, reason } => WireError::Unavailable {
                what: (*what).to_owned(),
                reason: reason.clone(),
            },
            RuntimeError::Internal(m) => WireError::Internal { message: m.clone() },
        }
    }
}

impl From<WireError> for RuntimeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NotDeployed { key } => RuntimeError::NotDeployed(key),
            WireError::StaleGeneration { requested, current } => {
                RuntimeError::StaleGeneration { requested, current }
            }
            WireError::CheckpointNotFound { id } => RuntimeError::CheckpointNotFound(id),
            WireError::Invalid { message } => RuntimeError::Invalid(message),
            // `what` is a static label in RuntimeError; keep the worker's in the reason.
            WireError::Unavailable { what, reason } => RuntimeError::Unavailable {
                what: "worker",
                reason: format!("{what}: {reason}"),
            },
            WireError::Internal { message } => RuntimeError::Internal(message),
        }
    }
}

impl<T> Reply<T> {
    pub fn from_result(r: Result<T, RuntimeError>) -> Self {
        match r {
            Ok(value) => Reply::Ok { value },
            Err(e) => Reply::Err {
                error: WireError::from(&e),
            },
        }
    }

    pub fn into_result(self) -> Result<T, RuntimeError> {
        match self {
            Reply::Ok { value } => Ok(value),
            Reply::Err { error } => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(e: &RuntimeError) -> &'static str {
        match e {
            RuntimeError::NotDeployed(_) => "not_deployed",
            RuntimeError::StaleGeneration { .. } => "stale",
            RuntimeError::CheckpointNotFound(_) => "no_checkpoint",
            RuntimeError::Invalid(_) => "invalid",
            RuntimeError::Unavailable { .. } => "unavailable",
            RuntimeError::Internal(_) => "internal",
        }
    }

    #[test]
    fn runtime_errors_keep_their_variant_across_the_wire() {
        let key = DeploymentKey {
            tenant: "acme".into(),
            job: "j".into(),
        };
        let cases = [
            RuntimeError::NotDeployed(key),
            RuntimeError::StaleGeneration {
                requested: 1,
                current: 2,
            },
            RuntimeError::CheckpointNotFound("ck".into()),
            RuntimeError::Invalid("bad".into()),
            RuntimeError::Unavailable {
                what: "kafka",
                reason: "down".into(),
            },
            RuntimeError::Internal("boom".into()),
        ];
        for e in cases {
            let want = label(&e);
            let json = serde_json::to_string(&StartReply::from_result(Err(e))).unwrap();
            let back: StartReply = serde_json::from_str(&json).unwrap();
            assert_eq!(label(&back.into_result().unwrap_err()), want, "{json}");
        }
        let ok: StartReply = serde_json::from_str(r#"{"result":"ok","value":null}"#).unwrap();
        assert!(ok.into_result().is_ok());
    }
}
