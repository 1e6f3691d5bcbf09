//! Event storage: the [`EventStore`] trait, its PostgreSQL implementation and
//! an in-memory one for unit tests, and [`load`]: an aggregate's state from
//! its snapshot or its events.
//!
//! A write is one group commit: many commands' decisions land in one
//! transaction (dedupe rows, expected-version checks, events with gap-free
//! positions, outcomes), so throughput does not stop at one fsync per command.

mod load;
pub mod memory;
pub mod postgres;

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Outcome, Rejection, StreamId};
pub use load::{load, load_at, restore, Loaded};

/// Identifies a stream across tenants.
pub type StreamKey = (String, StreamId);

/// What a stream looks like before a decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamState {
    /// 0 when the stream does not exist yet.
    pub version: u64,
    pub snapshot: Option<serde_json::Value>,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub payload: serde_json::Value,
}

/// An event as stored: what the API lists and the outbox relay publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredEvent {
    /// Global, gap-free, increasing in commit order across all tenants.
    pub position: i64,
    pub tenant: String,
    /// `<kind>.<name>`: `job.<job>`, `module.<module>` or `run.<run id>`.
    pub stream: String,
    /// The stream's version after this event (its first event is 1).
    pub stream_version: u64,
    /// The event type, the same as the payload's own `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[schemars(schema_with = "event_payload")]
    pub payload: serde_json::Value,
    /// The command that caused it.
    pub command_id: Option<Uuid>,
    /// Who sent that command.
    pub actor: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The payload is the stream kind's own event, tagged by `type`; naming the
/// three lets a schema reader decode it without guessing.
fn event_payload(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The event: a job event on `job.*` streams, a module event on `module.*`, a run event on `run.*`.",
        "anyOf": [
            g.subschema_for::<crate::domain::job::JobEvent>(),
            g.subschema_for::<crate::domain::module::ModuleEvent>(),
            g.subschema_for::<crate::domain::workflow::RunEvent>(),
        ]
    })
}

/// Who asked, for dedupe rows and the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMeta {
    pub tenant: String,
    pub command_id: Uuid,
    pub kind: String,
    pub target: String,
    pub actor: String,
}

/// One command's decided result, ready to commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Accepted {
        meta: CommandMeta,
        stream: StreamId,
        /// The stream version the decision was made against.
        expected_version: u64,
        events: Vec<NewEvent>,
        /// The folded state after the events.
        snapshot: serde_json::Value,
    },
    Rejected {
        meta: CommandMeta,
        rejection: Rejection,
    },
}

impl Decision {
    pub fn meta(&self) -> &CommandMeta {
        match self {
            Decision::Accepted { meta, .. } | Decision::Rejected { meta, .. } => meta,
        }
    }
}

/// A stream's summary for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSummary {
    pub stream: String,
    pub version: u64,
    pub snapshot: Option<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
}

/// Storage failures, typed so callers can decide to retry or give up.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the stream since it was read. Re-read and decide again.
    #[error("stream {stream} changed concurrently (expected version {expected})")]
    Conflict { stream: String, expected: u64 },
    /// Another writer recorded this command id first. Re-read its outcome.
    #[error("command {0} was already recorded")]
    DuplicateCommand(Uuid),
    /// The database could not be reached or failed; the whole batch was rolled back.
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored row could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether re-reading and deciding again can succeed at once.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict { .. } | StoreError::DuplicateCommand(_)
        )
    }
}

/// Event storage. Implementations must make `commit` atomic.
pub trait EventStore: Send + Sync + 'static {
    /// Outcomes already recorded for these commands.
    fn stored_outcomes(
        &self,
        ids: &[(String, Uuid)],
    ) -> impl Future<Output = Result<HashMap<(String, Uuid), Outcome>, StoreError>> + Send;

    /// Current version and snapshot of each stream (absent streams are version 0).
    fn load_streams(
        &self,
        keys: &[StreamKey],
    ) -> impl Future<Output = Result<HashMap<StreamKey, StreamState>, StoreError>> + Send;

    /// Commits all decisions atomically, in order, and returns their outcomes.
    fn commit(
        &self,
        decisions: Vec<Decision>,
    ) -> impl Future<Output = Result<Vec<Outcome>, StoreError>> + Send;

    /// One stream's events with `stream_version > after_version`, oldest first.
    fn read_stream(
        &self,
        tenant: &str,
        stream: &StreamId,
        after_version: u64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Events with `position > after`, oldest first, optionally for one tenant or stream.
    fn read_all(
        &self,
        filter: ReadFilter<'_>,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// One stream's summary, if it exists.
    fn stream_summary(
        &self,
        tenant: &str,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Option<StreamSummary>, StoreError>> + Send;

    /// Streams of one kind in one tenant.
    fn list_streams(
        &self,
        tenant: &str,
        kind: &str,
    ) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send;

    /// How many streams of `kind` `tenant` has.
    fn count_streams(
        &self,
        tenant: &str,
        kind: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move { Ok(self.list_streams(tenant, kind).await?.len() as u64) }
    }

    /// How many of `tenant`'s streams of `kind` have a snapshot whose
    /// `phase` is not `phase` (streams without one count).
    fn count_streams_not_in_phase(
        &self,
        tenant: &str,
        kind: &str,
        phase: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            let all = self.list_streams(tenant, kind).await?;
            Ok(all.iter().filter(|s| phase_of(s) != Some(phase)).count() as u64)
        }
    }

    /// `tenant`'s streams of `kind` whose snapshot's `phase` is one of `phases`.
    fn streams_in_phases(
        &self,
        tenant: &str,
        kind: &str,
        phases: &[&str],
    ) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send {
        async move {
            let all = self.list_streams(tenant, kind).await?;
            Ok(all
                .into_iter()
                .filter(|s| phase_of(s).is_some_and(|p| phases.contains(&p)))
                .collect())
        }
    }

    /// A relay's published-up-to position (0 if it never ran).
    fn cursor(&self, relay: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;
    fn set_cursor(
        &self,
        relay: &str,
        position: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The `phase` field of a stream's snapshot, if it has one.
fn phase_of(s: &StreamSummary) -> Option<&str> {
    s.snapshot.as_ref()?.get("phase")?.as_str()
}

/// Restricts [`EventStore::read_all`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadFilter<'a> {
    pub tenant: Option<&'a str>,
    pub stream: Option<&'a str>,
}

/// Builds outcomes for a batch once positions are known. Shared by both stores
/// so they cannot disagree about what an outcome says.
pub(crate) fn outcome_for(decision: &Decision, first_position: i64, new_version: u64) -> Outcome {
    use crate::domain::envelope::{EventRef, OutcomeStatus};
    match decision {
        Decision::Rejected { meta, rejection } => {
            Outcome::rejected(Some(meta.command_id), &meta.tenant, rejection.clone())
        }
        Decision::Accepted {
            meta,
            stream,
            expected_version,
            events,
            ..
        } => Outcome {
            command_id: Some(meta.command_id),
            tenant: meta.tenant.clone(),
            status: OutcomeStatus::Accepted,
            rejection: None,
            stream: Some(stream.to_string()),
            stream_version: Some(new_version),
            events: events
                .iter()
                .enumerate()
                .map(|(i, e)| EventRef {
                    position: first_position + i as i64,
                    stream_version: expected_version + 1 + i as u64,
                    event_type: e.event_type.clone(),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests;
