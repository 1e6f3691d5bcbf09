//! The command handler: load → decide → commit, for a whole batch at once.
//!
//! Decisions are pure ([`crate::domain`]); this module only gathers the state
//! they need and hands the results to the store in one group commit. A
//! concurrent writer (another replica) shows up as a typed conflict, and the
//! batch is simply decided again against fresh state.

mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::envelope::{ParsedCommand, Unparsed};
use crate::domain::{Outcome, Rejection, RejectionCode};
use crate::store::{CommandMeta, Decision, EventStore, NewEvent, StoreError, StreamKey};
use crate::telemetry::names;
pub use state::AnyState;

/// How often a batch is re-decided after conflicts before giving up.
const MAX_CONFLICT_RETRIES: usize = 8;

/// One message's parse result, with the tenant taken from its subject.
#[derive(Debug, Clone)]
pub enum Incoming {
    Parsed(ParsedCommand),
    Unparsed { tenant: String, error: Unparsed },
}

/// Handles batches of commands against an [`EventStore`].
pub struct CommandHandler<S> {
    store: Arc<S>,
}

impl<S> Clone for CommandHandler<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<S: EventStore> CommandHandler<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Decides and commits a batch. Returns one outcome per input, in order.
    /// Errors only when the store is unavailable; then nothing was committed.
    pub async fn handle(
        &self,
        batch: &[Incoming],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            match self.try_handle(batch, now).await {
                Ok(outcomes) => {
                    metrics::histogram!(names::COMMAND_BATCH_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!(names::COMMAND_BATCH_SIZE).record(batch.len() as f64);
                    for o in &outcomes {
                        let status = if o.is_accepted() {
                            "accepted"
                        } else {
                            "rejected"
                        };
                        metrics::counter!(names::COMMANDS, "status" => status).increment(1);
                    }
                    return Ok(outcomes);
                }
                Err(e) if e.is_conflict() && attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    metrics::counter!(names::COMMAND_CONFLICTS).increment(1);
                    tracing::debug!(error = %e, attempt, "concurrent write; deciding the batch again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_handle(
        &self,
        batch: &[Incoming],
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let ids: Vec<(String, Uuid)> = batch
            .iter()
            .filter_map(|i| match i {
                Incoming::Parsed(c) => Some((c.tenant.to_string(), c.id)),
                Incoming::Unparsed { tenant, error } => error.id.map(|id| (tenant.clone(), id)),
            })
            .collect();
        // Load every stream the batch touches, in parallel with the dedupe lookup
        // (one round trip instead of two). Streams of duplicates are loaded for nothing; that is rare.
        let mut keys: Vec<StreamKey> = batch
            .iter()
            .filter_map(|i| match i {
                Incoming::Parsed(c) => Some((c.tenant.to_string(), c.stream.clone())),
                _ => None,
            })
            .collect();
        keys.sort();
        keys.dedup();
        let (stored, loaded) = futures::future::try_join(
            self.store.stored_outcomes(&ids),
            self.store.load_streams(&keys),
        )
        .await?;

        let mut working: HashMap<StreamKey, (u64, AnyState)> = HashMap::new();
        for key in keys {
            let st = loaded.get(&key).cloned().unwrap_or_default();
            let state = state::restore(self.store.as_ref(), &key, &st).await?;
            working.insert(key, (st.version, state));
        }

        // Per input: a stored outcome, an index into `decisions`, or an unrecordable rejection.
        enum Slot {
            Stored(Outcome),
            Decided(usize),
            Unrecorded(Outcome),
        }
        let mut slots = Vec::with_capacity(batch.len());
        let mut decisions: Vec<Decision> = Vec::new();
        let mut in_batch: HashMap<(String, Uuid), usize> = HashMap::new();
        let mut last_for_stream: HashMap<StreamKey, usize> = HashMap::new();

        for item in batch {
            let (tenant, id) = match item {
                Incoming::Parsed(c) => (c.tenant.to_string(), Some(c.id)),
                Incoming::Unparsed { tenant, error } => (tenant.clone(), error.id),
            };
            if let Some(id) = id {
                let k = (tenant.clone(), id);
                if let Some(o) = stored.get(&k) {
                    slots.push(Slot::Stored(o.clone()));
                    continue;
                }
                if let Some(&i) = in_batch.get(&k) {
                    // The same command twice in one batch (a redelivery): one decision, same answer.
                    slots.push(Slot::Decided(i));
                    continue;
                }
            }
            match item {
                Incoming::Unparsed { error, .. } => match error.id {
                    // Not recorded: a forged message must not take the id of
                    // the owner's command, and a refused rate may pass later.
                    Some(id) if !error.rejection.code.is_recorded() => {
                        slots.push(Slot::Unrecorded(Outcome::rejected(
                            Some(id),
                            &tenant,
                            error.rejection.clone(),
                        )))
                    }
                    Some(id) => {
                        in_batch.insert((tenant.clone(), id), decisions.len());
                        slots.push(Slot::Decided(decisions.len()));
                        decisions.push(Decision::Rejected {
                            meta: CommandMeta {
                                tenant,
                                command_id: id,
                                kind: String::new(),
                                target: String::new(),
                                actor: String::new(),
                            },
                            rejection: error.rejection.clone(),
                        });
                    }
                    None => slots.push(Slot::Unrecorded(Outcome::rejected(
                        None,
                        &tenant,
                        error.rejection.clone(),
                    ))),
                },
                Incoming::Parsed(cmd) => {
                    let span = tracing::info_span!(
                        "command",
                        command_id = %cmd.id,
                        tenant = %cmd.tenant,
                        kind = cmd.command.kind(),
                        target = %cmd.target,
                    );
                    let _g = span.enter();
                    let key = (tenant.clone(), cmd.stream.clone());
                    let meta = CommandMeta {
                        tenant: tenant.clone(),
                        command_id: cmd.id,
                        kind: cmd.command.kind().to_owned(),
                        target: cmd.target.clone(),
                        actor: cmd.actor.clone(),
                    };
                    in_batch.insert((tenant.clone(), cmd.id), decisions.len());
                    slots.push(Slot::Decided(decisions.len()));
                    let Some((version, state)) = working.get_mut(&key) else {
                        return Err(StoreError::Corrupt(format!(
                            "stream {} was not loaded",
                            key.1
                        )));
                    };
                    let decision = match decide_one(cmd, *version, state, now) {
                        Ok((events, next_state)) => {
                            let expected = *version;
                            *version += events.len() as u64;
                            *state = next_state;
                            last_for_stream.insert(key.clone(), decisions.len());
                            tracing::debug!(events = events.len(), "accepted");
                            Decision::Accepted {
                                meta,
                                stream: cmd.stream.clone(),
                                expected_version: expected,
                                events,
                                snapshot: serde_json::Value::Null,
                            }
                        }
                        Err(rejection) => {
                            tracing::debug!(%rejection, "rejected");
                            Decision::Rejected { meta, rejection }
                        }
                    };
                    decisions.push(decision);
                }
            }
        }

        // Only the last decision per stream carries the snapshot the store keeps.
        for (key, idx) in &last_for_stream {
            if let (Some(Decision::Accepted { snapshot, .. }), Some((_, state))) =
                (decisions.get_mut(*idx), working.get(key))
            {
                *snapshot = state.to_snapshot()?;
            }
        }

        let committed = if decisions.is_empty() {
            Vec::new()
        } else {
            self.store.commit(decisions).await?
        };
        Ok(slots
            .into_iter()
            .map(|s| match s {
                Slot::Stored(o) | Slot::Unrecorded(o) => o,
                Slot::Decided(i) => committed[i].clone(),
            })
            .collect())
    }
}

/// Runs one command against its stream's working state.
fn decide_one(
    cmd: &ParsedCommand,
    version: u64,
    state: &AnyState,
    now: DateTime<Utc>,
) -> Result<(Vec<NewEvent>, AnyState), Rejection> {
    if let Some(expected) = cmd.expected_version {
        if expected != version {
            return Err(Rejection::new(
                RejectionCode::Conflict,
                format!(
                    "expected {} at version {expected}, but it is at version {version}",
                    cmd.stream
                ),
            ));
        }
    }
    state.decide(cmd, now)
}

#[cfg(test)]
mod tests;
