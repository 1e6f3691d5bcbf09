//! The outbox relay: publishes committed events to `weir.evt.<tenant>.<stream>`
//! in position order, at least once. Each message carries `Nats-Msg-Id`, so
//! JetStream drops the duplicates a crash between publish and cursor update causes.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Subjects;
use crate::domain::BackoffPolicy;
use crate::store::{EventStore, ReadFilter};
use crate::telemetry::names;

const RELAY: &str = "nats-events";
const PAGE: i64 = 500;
/// Between attempts while NATS or PostgreSQL is unavailable.
const BACKOFF: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(100), Duration::from_secs(5));

/// Runs until `shutdown`. `committed` wakes it early after each commit.
pub async fn run_relay<S: EventStore>(
    store: Arc<S>,
    js: jetstream::Context,
    subjects: Subjects,
    committed: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = BACKOFF.start(fastrand::u64(..));
    while !shutdown.is_cancelled() {
        match relay_once(store.as_ref(), &js, &subjects).await {
            Ok(0) => {
                backoff.reset();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = committed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Ok(_) => backoff.reset(),
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay failed; retrying");
                let wait = tokio::time::sleep(backoff.next_delay());
                if shutdown.run_until_cancelled(wait).await.is_none() {
                    return;
                }
            }
        }
    }
}

/// Publishes one page; returns how many events went out.
async fn relay_once<S: EventStore>(
    store: &S,
    js: &jetstream::Context,
    subjects: &Subjects,
) -> Result<usize, String> {
    let cursor = store.cursor(RELAY).await.map_err(|e| e.to_string())?;
    let events = store
        .read_all(ReadFilter::default(), cursor, PAGE)
        .await
        .map_err(|e| e.to_string())?;
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(0);
    };
    let mut pending = Vec::with_capacity(events.len());
    for e in &events {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}-{}", subjects.prefix(), e.position).as_str(),
        );
        headers.insert("Weir-Event-Type", e.event_type.as_str());
        let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
        let f = js
            .publish_with_headers(subjects.event(&e.tenant, &e.stream), headers, body.into())
            .await
            .map_err(|e| e.to_string())?;
        pending.push(f);
    }
    for f in futures::future::join_all(
        pending
            .into_iter()
            .map(std::future::IntoFuture::into_future),
    )
    .await
    {
        f.map_err(|e| e.to_string())?;
    }
    store
        .set_cursor(RELAY, last)
        .await
        .map_err(|e| e.to_string())?;
    metrics::counter!(names::EVENTS_RELAYED).increment(events.len() as u64);
    Ok(events.len())
}
