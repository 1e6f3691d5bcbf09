//! Worker liveness through a JetStream key-value bucket `<prefix>-workers`:
//! each worker puts its [`Heartbeat`] under its id every interval, and the
//! bucket's `max_age` (the TTL) drops the entry once it stops. Expiry is
//! decided by the NATS server's clock alone, so worker clocks may differ.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;

use super::wire::Heartbeat;
use crate::runtime::control::RuntimeError;

fn nats(what: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Unavailable {
        what: "nats",
        reason: what.to_string(),
    }
}

/// The workers bucket.
#[derive(Clone)]
pub struct Liveness {
    kv: kv::Store,
}

/// The bucket name for a subject prefix.
pub fn bucket(prefix: &str) -> String {
    format!("{prefix}-workers")
}

impl Liveness {
    /// Opens the bucket, creating it with `ttl` as its `max_age` if needed.
    /// Every process of a deployment should use the same TTL: the first one
    /// to create the bucket sets it.
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Self, RuntimeError> {
        let name = bucket(prefix);
        if let Ok(kv) = js.get_key_value(&name).await {
            return Ok(Self { kv });
        }
        // The bucket's stream, as `create_key_value` would make it; that call
        // first queries the account, whose answer from nats-server 2.9 this
        // client cannot parse.
        let created = js
            .get_or_create_stream(jetstream::stream::Config {
                name: format!("KV_{name}"),
                description: Some("weir workers: heartbeats, dropped after max_age".into()),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                max_age: ttl,
                // File storage: the bucket outlives a NATS restart, so
                // heartbeats resume instead of failing until a TTL passes.
                storage: jetstream::stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await;
        if let Err(e) = created {
            return Err(nats(format!("workers bucket {name}: {e}")));
        }
        js.get_key_value(&name)
            .await
            .map(|kv| Self { kv })
            .map_err(|e| nats(format!("workers bucket {name}: {e}")))
    }

    /// Records that `hb.worker` is alive.
    pub async fn beat(&self, hb: &Heartbeat) -> Result<(), RuntimeError> {
        let body = serde_json::to_vec(hb).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        self.kv
            .put(&hb.worker, body.into())
            .await
            .map(|_| ())
            .map_err(nats)
    }

    /// Removes `worker` at once (graceful shutdown), so its placements fail
    /// over without waiting for the TTL.
    pub async fn leave(&self, worker: &str) -> Result<(), RuntimeError> {
        self.kv.delete(worker).await.map_err(nats)
    }

    /// The heartbeats of every live worker.
    ///
    /// The keys come from the stream's stored subjects, not from `keys()`:
    /// that one runs an ordered consumer which, when an entry expires (the
    /// TTL) between its creation and its delivery, waits on idle heartbeats
    /// for seconds, stalling failover and reconcile passes.
    pub async fn live(&self) -> Result<Vec<Heartbeat>, RuntimeError> {
        let subjects: Vec<(String, usize)> = self
            .kv
            .stream
            .info_with_subjects(format!("{}>", self.kv.prefix))
            .await
            .map_err(nats)?
            .try_collect()
            .await
            .map_err(nats)?;
        let mut keys: Vec<&str> = subjects
            .iter()
            .filter_map(|(s, _)| s.strip_prefix(self.kv.prefix.as_str()))
            .collect();
        keys.sort_unstable();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = self.kv.get(k).await.map_err(nats)? {
                match serde_json::from_slice::<Heartbeat>(&v) {
                    Ok(hb) => out.push(hb),
                    Err(e) => tracing::warn!(worker = %k, error = %e, "unreadable heartbeat"),
                }
            }
        }
        Ok(out)
    }

    /// `worker`'s heartbeat, if it is alive.
    pub async fn get(&self, worker: &str) -> Result<Option<Heartbeat>, RuntimeError> {
        Ok(self
            .kv
            .get(worker)
            .await
            .map_err(nats)?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }
}
