//! Workers and placement: the stream runtime across processes.
//!
//! - A **worker** ([`worker::Worker`]) wraps an [`EmbeddedRuntime`](super::EmbeddedRuntime)
//!   under a stable id: the one inside `weir serve` is `serve`, and each
//!   `weir worker` process adds another. It heartbeats into the JetStream
//!   key-value bucket `<prefix>-workers` ([`liveness`]) and answers control
//!   requests on `<prefix>.worker.<id>.{start,stop,checkpoint,status}`
//!   ([`wire`], JSON).
//! - **Placement** is durable ([`store`], `runtime_placements`): which worker
//!   runs each job's deployment, the request, the generation, the desired
//!   state and a fencing **epoch**. A worker that starts claims its running
//!   placements (epoch + 1) and starts them from their latest checkpoint, so
//!   a process killed with `kill -9` gets its jobs back when it returns.
//! - [`control::ClusterRuntime`] is the control plane's
//!   [`DeploymentControl`](super::control::DeploymentControl): it places,
//!   then asks the placed worker. [`control::failover`] moves placements of
//!   workers whose heartbeat expired to live ones (epoch + 1); checkpoint
//!   writes check the epoch ([`CheckpointStore::hold`](super::checkpoint::store::CheckpointStore::hold)),
//!   so a worker presumed dead but alive can no longer checkpoint and stops.
//! - The decisions themselves are pure ([`placement`]).

pub mod control;
pub mod liveness;
pub mod placement;
pub mod store;
pub mod wire;
pub mod worker;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::control::RuntimeError;

pub use control::ClusterRuntime;
pub use worker::Worker;

/// Timing shared by workers and the control plane.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// NATS subject prefix (`<prefix>.worker.<id>.<op>`, bucket `<prefix>-workers`).
    pub prefix: String,
    /// A worker whose heartbeat is older than this is dead.
    pub ttl: Duration,
    /// How long a start (module compile, start checkpoint) or a stop (final
    /// checkpoint) may take on the worker; below the workflow activity timeout.
    pub start_timeout: Duration,
    /// How long stop, checkpoint and status requests may take.
    pub request_timeout: Duration,
    /// How long a worker's final checkpoints may take when it shuts down.
    pub shutdown_grace: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            prefix: "weir".into(),
            ttl: Duration::from_secs(10),
            start_timeout: Duration::from_secs(25),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

impl ClusterConfig {
    /// How often a worker heartbeats and reconciles: a third of the TTL,
    /// so one lost heartbeat does not make it look dead.
    pub fn heartbeat_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(200))
    }

    /// The subject of `op` on `worker`.
    pub fn subject(&self, worker: &str, op: &str) -> String {
        format!("{}.worker.{worker}.{op}", self.prefix)
    }
}

/// Whether `id` can name a worker (it becomes a subject token and a key).
pub fn valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A worker id from this machine's host name: `worker-<host>`, with
/// characters a subject cannot hold replaced by `-`.
pub fn host_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into());
    let clean: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    format!("worker-{clean}")
}

/// One control request to a worker: JSON in, JSON [`wire::Reply`] out. No
/// responder or no answer in time is [`RuntimeError::Unavailable`], which
/// workflows retry.
pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
    nats: &async_nats::Client,
    subject: String,
    body: &B,
    timeout: Duration,
) -> Result<T, RuntimeError> {
    use async_nats::RequestErrorKind;
    let payload = serde_json::to_vec(body).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    let req = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(timeout));
    let msg = nats.send_request(subject.clone(), req).await.map_err(|e| {
        let reason = match e.kind() {
            RequestErrorKind::NoResponders => format!("no worker answers on {subject}"),
            RequestErrorKind::TimedOut => {
                format!("no answer on {subject} within {timeout:?}")
            }
            _ => format!("{subject}: {e}"),
        };
        RuntimeError::Unavailable {
            what: "worker",
            reason,
        }
    })?;
    let reply: wire::Reply<T> = serde_json::from_slice(&msg.payload)
        .map_err(|e| RuntimeError::Internal(format!("bad reply on {subject}: {e}")))?;
    reply.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_are_subject_tokens() {
        assert!(valid_worker_id("serve"));
        assert!(valid_worker_id("worker-host_1"));
        assert!(!valid_worker_id(""));
        assert!(!valid_worker_id("a.b"));
        assert!(!valid_worker_id("a*"));
        assert!(valid_worker_id(&host_worker_id()));
    }

    #[test]
    fn heartbeats_come_several_times_per_ttl() {
        let c = ClusterConfig {
            ttl: Duration::from_secs(3),
            ..Default::default()
        };
        assert_eq!(c.heartbeat_every(), Duration::from_secs(1));
        assert_eq!(c.subject("w1", "start"), "weir.worker.w1.start");
    }
}
