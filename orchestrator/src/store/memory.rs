//! An in-memory [`EventStore`] for unit tests. Same semantics as PostgreSQL:
//! atomic batches, expected-version conflicts, dedupe, gap-free positions.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;
use uuid::Uuid;

use super::{
    outcome_for, Decision, EventStore, ReadFilter, StoreError, StoredEvent, StreamKey, StreamState,
    StreamSummary,
};
use crate::domain::{Outcome, StreamId};

#[derive(Default)]
struct Inner {
    streams: HashMap<StreamKey, (StreamState, chrono::DateTime<Utc>)>,
    events: Vec<StoredEvent>,
    commands: HashMap<(String, Uuid), Outcome>,
    cursors: HashMap<String, i64>,
}

/// In-memory store; cheap to create per test.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a test panicked mid-call; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EventStore for MemoryStore {
    async fn stored_outcomes(
        &self,
        ids: &[(String, Uuid)],
    ) -> Result<HashMap<(String, Uuid), Outcome>, StoreError> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .filter_map(|k| inner.commands.get(k).map(|o| (k.clone(), o.clone())))
            .collect())
    }

    async fn load_streams(
        &self,
        keys: &[StreamKey],
    ) -> Result<HashMap<StreamKey, StreamState>, StoreError> {
        let inner = self.lock();
        Ok(keys
            .iter()
            .filter_map(|k| inner.streams.get(k).map(|(s, _)| (k.clone(), s.clone())))
            .collect())
    }

    async fn commit(&self, decisions: Vec<Decision>) -> Result<Vec<Outcome>, StoreError> {
        let mut inner = self.lock();
        // Validate everything before changing anything, so a failure leaves no trace.
        let mut versions: HashMap<StreamKey, u64> = HashMap::new();
        for d in &decisions {
            let meta = d.meta();
            if inner
                .commands
                .contains_key(&(meta.tenant.clone(), meta.command_id))
            {
                return Err(StoreError::DuplicateCommand(meta.command_id));
            }
            if let Decision::Accepted {
                stream,
                expected_version,
                events,
                ..
            } = d
            {
                let key = (meta.tenant.clone(), stream.clone());
                let current = versions.get(&key).copied().unwrap_or_else(|| {
                    inner.streams.get(&key).map(|(s, _)| s.version).unwrap_or(0)
                });
                if current != *expected_version {
                    return Err(StoreError::Conflict {
                        stream: stream.to_string(),
                        expected: *expected_version,
                    });
                }
                versions.insert(key, expected_version + events.len() as u64);
            }
        }
        let mut outcomes = Vec::with_capacity(decisions.len());
        let now = Utc::now();
        for d in &decisions {
            let meta = d.meta();
            let outcome = match d {
                Decision::Accepted {
                    stream,
                    expected_version,
                    events,
                    snapshot,
                    ..
                } => {
                    let first = inner.events.len() as i64 + 1;
                    for (i, e) in events.iter().enumerate() {
                        inner.events.push(StoredEvent {
                            position: first + i as i64,
                            tenant: meta.tenant.clone(),
                            stream: stream.to_string(),
                            stream_version: expected_version + 1 + i as u64,
                            event_type: e.event_type.clone(),
                            payload: e.payload.clone(),
                            command_id: Some(meta.command_id),
                            actor: Some(meta.actor.clone()),
                            recorded_at: now,
                        });
                    }
                    let version = expected_version + events.len() as u64;
                    inner.streams.insert(
                        (meta.tenant.clone(), stream.clone()),
                        (
                            StreamState {
                                version,
                                snapshot: Some(snapshot.clone()),
                            },
                            now,
                        ),
                    );
                    outcome_for(d, first, version)
                }
                Decision::Rejected { .. } => outcome_for(d, 0, 0),
            };
            inner
                .commands
                .insert((meta.tenant.clone(), meta.command_id), outcome.clone());
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn read_stream(
        &self,
        tenant: &str,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .events
            .iter()
            .filter(|e| {
                e.tenant == tenant
                    && e.stream == stream.as_str()
                    && e.stream_version > after_version
            })
            .cloned()
            .collect())
    }

    async fn read_all(
        &self,
        filter: ReadFilter<'_>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .events
            .iter()
            .filter(|e| e.position > after)
            .filter(|e| filter.tenant.is_none_or(|t| t == e.tenant))
            .filter(|e| filter.stream.is_none_or(|s| s == e.stream))
            .take(limit.max(0) as usize)
            .cloned()
            .collect())
    }

    async fn stream_summary(
        &self,
        tenant: &str,
        stream: &StreamId,
    ) -> Result<Option<StreamSummary>, StoreError> {
        let key = (tenant.to_owned(), stream.clone());
        Ok(self
            .lock()
            .streams
            .get(&key)
            .map(|(state, at)| StreamSummary {
                stream: stream.to_string(),
                version: state.version,
                snapshot: state.snapshot.clone(),
                updated_at: *at,
            }))
    }

    async fn list_streams(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<StreamSummary> = inner
            .streams
            .iter()
            .filter(|((t, s), _)| t == tenant && s.kind() == kind)
            .map(|((_, s), (state, at))| StreamSummary {
                stream: s.to_string(),
                version: state.version,
                snapshot: state.snapshot.clone(),
                updated_at: *at,
            })
            .collect();
        out.sort_by(|a, b| a.stream.cmp(&b.stream));
        Ok(out)
    }

    async fn cursor(&self, relay: &str) -> Result<i64, StoreError> {
        Ok(self.lock().cursors.get(relay).copied().unwrap_or(0))
    }

    async fn set_cursor(&self, relay: &str, position: i64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let c = inner.cursors.entry(relay.to_owned()).or_insert(0);
        *c = (*c).max(position);
        Ok(())
    }
}
