//! Command intake: JetStream → parse → [`CommandHandler`] → outcome → ack.
//!
//! A message is acknowledged only after its batch has committed and its
//! outcome has been published, so a crash anywhere before the ack means a
//! redelivery, which deduplication turns into the same outcome again.

pub mod auth;
mod relay;
mod streams;
mod subjects;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use chrono::Utc;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::domain::envelope::{parse_message, parse_on_subject, refuse_internal};
use crate::domain::{BackoffPolicy, Outcome, Rejection, RejectionCode};
use crate::lifecycle::{CommandHandler, Incoming};
use crate::store::EventStore;
use crate::telemetry::names;
pub use relay::run_relay;
pub use streams::{command_consumer, ensure_streams, MAX_DELIVER};
pub use subjects::Subjects;

/// Largest number of commands decided in one group commit.
pub const MAX_BATCH: usize = 512;

/// Batches whose outcomes may be awaiting confirmation while the next one commits.
const MAX_FINISHING: usize = 4;

/// Dead-lettered payloads are cut to this size (with a header saying so).
const DEAD_LETTER_MAX_BYTES: usize = 64 * 1024;

/// Between attempts to (re)subscribe to the command stream.
const RESUBSCRIBE_BACKOFF: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(100), Duration::from_secs(5));
/// Between attempts to commit a batch while PostgreSQL is unavailable.
const COMMIT_BACKOFF: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(100), Duration::from_secs(2));

/// Intake failures that stop setup. Runtime errors are retried, not returned.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("JetStream setup failed: {0}")]
    Setup(String),
}

/// Fault injection for the crash tests, chosen by `WEIR_FAULT` in builds
/// with the `test-util` feature. A build without it has no faults and never
/// reads the variable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Abort the process right after a batch commits, before outcomes and acks.
    #[cfg(feature = "test-util")]
    CrashAfterCommit,
}

impl Fault {
    #[cfg(feature = "test-util")]
    pub fn from_env() -> Self {
        match std::env::var("WEIR_FAULT").as_deref() {
            Ok("crash_after_commit") => Fault::CrashAfterCommit,
            _ => Fault::None,
        }
    }

    #[cfg(not(feature = "test-util"))]
    pub fn from_env() -> Self {
        Fault::None
    }
}

/// The intake loop's dependencies.
pub struct Intake<S> {
    pub js: jetstream::Context,
    pub subjects: Subjects,
    pub handler: CommandHandler<S>,
    /// Woken after every commit so the outbox relay publishes at once.
    pub committed: Arc<Notify>,
    pub fault: Fault,
    /// Accept internal command kinds (`job.mark_*`, `job.compile_*`,
    /// `job.record_*`, workflow step reports) from clients: only for
    /// setups that drive the lifecycle by hand without workflows.
    pub accept_internal: bool,
    /// Authentication, authorization and quotas.
    pub gate: auth::Gate,
}

impl<S: EventStore> Intake<S> {
    /// Consumes commands until `shutdown` is cancelled. Survives NATS and
    /// PostgreSQL outages by reconnecting and retrying.
    pub async fn run(self, shutdown: CancellationToken) {
        let finishing = Arc::new(Semaphore::new(MAX_FINISHING));
        self.consume(&shutdown, &finishing).await;
        // Let in-flight outcome confirmations and acks finish before exiting.
        let _ = finishing.acquire_many(MAX_FINISHING as u32).await;
    }

    async fn consume(&self, shutdown: &CancellationToken, finishing: &Arc<Semaphore>) {
        let mut backoff = RESUBSCRIBE_BACKOFF.start(fastrand::u64(..));
        while !shutdown.is_cancelled() {
            let consumer = match command_consumer(&self.js, &self.subjects).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "command consumer unavailable; retrying");
                    shutdown
                        .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                        .await;
                    continue;
                }
            };
            let messages = consumer
                .stream()
                .max_messages_per_batch(MAX_BATCH)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull commands; retrying");
                    shutdown
                        .run_until_cancelled(tokio::time::sleep(backoff.next_delay()))
                        .await;
                    continue;
                }
            };
            backoff.reset();
            loop {
                let first = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    m = messages.next() => m,
                };
                let first = match first {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "command pull interrupted; re-subscribing");
                        shutdown
                            .run_until_cancelled(tokio::time::sleep(Duration::from_millis(200)))
                            .await;
                        break;
                    }
                    None => break,
                };
                // Group commit: take whatever else is already buffered.
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match messages.next().now_or_never() {
                        Some(Some(Ok(m))) => batch.push(m),
                        _ => break,
                    }
                }
                if !self.process(batch, shutdown, finishing).await {
                    return;
                }
            }
        }
    }

    /// Returns false when shutdown interrupted the batch (nothing was acked).
    async fn process(
        &self,
        batch: Vec<jetstream::Message>,
        shutdown: &CancellationToken,
        finishing: &Arc<Semaphore>,
    ) -> bool {
        let mut arrivals = Vec::with_capacity(batch.len());
        let mut live = Vec::with_capacity(batch.len());
        for m in batch {
            let tenant = self
                .subjects
                .tenant_of_command(m.subject.as_str())
                .unwrap_or("unknown")
                .to_owned();
            let delivered = m.info().map(|i| i.delivered).unwrap_or(1);
            if delivered >= MAX_DELIVER {
                let reason =
                    format!("delivered {delivered} times without being processed; dead-lettered");
                self.dead_letter(&tenant, &m, &reason).await;
                let id = parse_message(&tenant, &m.payload).ok().map(|c| c.id);
                let outcome = Outcome::rejected(
                    id,
                    &tenant,
                    Rejection::new(RejectionCode::DeadLettered, reason),
                );
                self.publish_outcome(&outcome).await;
                ack(&m, AckKind::Term).await;
                continue;
            }
            let kind = self
                .subjects
                .kind_of_command(m.subject.as_str())
                .unwrap_or("");
            let parsed = parse_on_subject(&tenant, kind, &m.payload).and_then(|c| {
                if self.accept_internal {
                    Ok(c)
                } else {
                    refuse_internal(c)
                }
            });
            let token = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Authorization"))
                .and_then(|v| auth::bearer(Some(v.as_str())))
                .map(str::to_owned);
            arrivals.push((tenant, auth::Arrival { parsed, token }));
            live.push(m);
        }
        if live.is_empty() {
            return true;
        }

        let mut backoff = COMMIT_BACKOFF.start(fastrand::u64(..));
        let (tenants, arrivals): (Vec<String>, Vec<auth::Arrival>) = arrivals.into_iter().unzip();
        let admitted = loop {
            match self
                .gate
                .admit(
                    self.handler.store().as_ref(),
                    &arrivals,
                    std::time::Instant::now(),
                )
                .await
            {
                Ok(a) => break a,
                Err(e) => {
                    tracing::error!(error = %e, batch = live.len(), "cannot read tenants; holding the commands and retrying");
                    metrics::counter!(names::STORE_ERRORS).increment(1);
                    for m in &live {
                        ack(m, AckKind::Progress).await;
                    }
                    let wait = tokio::time::sleep(backoff.next_delay());
                    if shutdown.run_until_cancelled(wait).await.is_none() {
                        return false;
                    }
                }
            }
        };
        let incoming: Vec<Incoming> = tenants
            .into_iter()
            .zip(admitted)
            .map(|(tenant, a)| match a {
                Ok(c) => Incoming::Parsed(c),
                Err(error) => Incoming::Unparsed { tenant, error },
            })
            .collect();
        let outcomes = loop {
            match self.handler.handle(&incoming, Utc::now()).await {
                Ok(o) => break o,
                Err(e) => {
                    tracing::error!(error = %e, batch = live.len(), "cannot commit commands; holding them and retrying");
                    metrics::counter!(names::STORE_ERRORS).increment(1);
                    // Keep the messages ours while we wait, instead of letting them redeliver.
                    for m in &live {
                        ack(m, AckKind::Progress).await;
                    }
                    let wait = tokio::time::sleep(backoff.next_delay());
                    if shutdown.run_until_cancelled(wait).await.is_none() {
                        return false;
                    }
                }
            }
        };
        self.committed.notify_one();
        #[cfg(feature = "test-util")]
        if self.fault == Fault::CrashAfterCommit {
            tracing::error!("fault injection: aborting after commit, before outcome and ack");
            std::process::abort();
        }

        let mut confirmations = Vec::with_capacity(outcomes.len());
        for (i, outcome) in outcomes.iter().enumerate() {
            if let Incoming::Unparsed { tenant, error } = &incoming[i] {
                self.dead_letter(tenant, &live[i], &error.rejection.to_string())
                    .await;
            }
            if let Some(f) = self.publish_outcome_pending(outcome).await {
                confirmations.push(f);
            }
        }
        let kinds: Vec<AckKind> = incoming
            .iter()
            .map(|i| match i {
                Incoming::Parsed(_) => AckKind::Ack,
                // Malformed input will never succeed: terminate, do not redeliver.
                Incoming::Unparsed { .. } => AckKind::Term,
            })
            .collect();
        // Confirm outcomes and ack in the background so the next batch's commit
        // overlaps this round trip. Acks still follow their outcome's confirmation.
        let Ok(permit) = finishing.clone().acquire_owned().await else {
            return false;
        };
        tokio::spawn(async move {
            let confirmed = futures::future::join_all(
                confirmations
                    .into_iter()
                    .map(std::future::IntoFuture::into_future),
            )
            .await;
            for c in confirmed {
                if let Err(e) = c {
                    tracing::warn!(error = %e, "outcome publish not confirmed");
                }
            }
            for (m, kind) in live.iter().zip(kinds) {
                ack(m, kind).await;
            }
            drop(permit);
        });
        true
    }

    async fn publish_outcome_pending(
        &self,
        outcome: &Outcome,
    ) -> Option<jetstream::context::PublishAckFuture> {
        let id = outcome
            .command_id
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
        let subject = self.subjects.outcome(&outcome.tenant, &id);
        let body = match serde_json::to_vec(outcome) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode outcome");
                return None;
            }
        };
        match self.js.publish(subject, body.into()).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish outcome");
                None
            }
        }
    }

    async fn publish_outcome(&self, outcome: &Outcome) {
        if let Some(f) = self.publish_outcome_pending(outcome).await {
            if let Err(e) = f.await {
                tracing::warn!(error = %e, "outcome publish not confirmed");
            }
        }
    }

    async fn dead_letter(&self, tenant: &str, m: &jetstream::Message, reason: &str) {
        metrics::counter!(names::COMMANDS_DEAD_LETTERED).increment(1);
        let mut headers = HeaderMap::new();
        headers.insert("Weir-Reason", header_safe(reason).as_str());
        headers.insert("Weir-Original-Subject", m.subject.as_str());
        // Keep dead letters publishable: a payload near NATS's limit plus headers would not be.
        let mut payload = m.payload.clone();
        if payload.len() > DEAD_LETTER_MAX_BYTES {
            headers.insert("Weir-Truncated-From", payload.len().to_string().as_str());
            payload.truncate(DEAD_LETTER_MAX_BYTES);
        }
        if let Err(e) = self
            .js
            .publish_with_headers(self.subjects.dead_letter(tenant), headers, payload)
            .await
        {
            tracing::warn!(error = %e, "cannot dead-letter command");
        }
    }
}

/// NATS headers are single-line ASCII.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .take(1000)
        .collect()
}

async fn ack(m: &jetstream::Message, kind: AckKind) {
    if let Err(e) = m.ack_with(kind).await {
        tracing::warn!(error = %e, "ack failed; the command will be redelivered and deduplicated");
    }
}
