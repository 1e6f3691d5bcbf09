//! Rebuilding an aggregate's state: from the stream's snapshot when it is
//! readable, else by folding the stream's events from the start. The one
//! place that does this, for every [`Aggregate`] (jobs, runs, modules).
//!
//! A snapshot can become unreadable when the state type changes shape; the
//! events are the truth, so that is a warning and a replay, never an error.

use serde::Deserialize;

use super::{EventStore, StoreError, StoredEvent, StreamKey, StreamState};
use crate::domain::{Aggregate, StreamId};

/// A stream's folded state and the version it was folded up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded<A> {
    /// 0 when the stream does not exist yet (then `state` is the default).
    pub version: u64,
    pub state: A,
}

/// Loads one stream and folds it into `A`.
pub async fn load<A: Aggregate, S: EventStore>(
    store: &S,
    tenant: &str,
    stream: &StreamId,
) -> Result<Loaded<A>, StoreError> {
    let key: StreamKey = (tenant.to_owned(), stream.clone());
    let st = store
        .load_streams(std::slice::from_ref(&key))
        .await?
        .remove(&key)
        .unwrap_or_default();
    let state = restore(store, &key, &st).await?;
    Ok(Loaded {
        version: st.version,
        state,
    })
}

/// Folds a stream whose version and snapshot are already loaded (e.g. with
/// a whole batch's streams at once).
pub async fn restore<A: Aggregate, S: EventStore>(
    store: &S,
    key: &StreamKey,
    st: &StreamState,
) -> Result<A, StoreError> {
    if let Some(snapshot) = &st.snapshot {
        match A::deserialize(snapshot) {
            Ok(state) => return Ok(state),
            Err(e) => {
                tracing::warn!(stream = %key.1, error = %e, "snapshot unreadable; replaying events")
            }
        }
    }
    if st.version == 0 {
        return Ok(A::default());
    }
    fold(store.read_stream(&key.0, &key.1, 0).await?, u64::MAX)
}

/// A stream's state as it was at stream version `version`, by replay (the
/// snapshot only holds the latest state).
pub async fn load_at<A: Aggregate, S: EventStore>(
    store: &S,
    tenant: &str,
    stream: &StreamId,
    version: u64,
) -> Result<A, StoreError> {
    fold(store.read_stream(tenant, stream, 0).await?, version)
}

/// Applies stored events, oldest first, up to stream version `until`.
fn fold<A: Aggregate>(events: Vec<StoredEvent>, until: u64) -> Result<A, StoreError> {
    let mut state = A::default();
    for e in events.iter().take_while(|e| e.stream_version <= until) {
        let event = A::Event::deserialize(&e.payload).map_err(|err| {
            StoreError::Corrupt(format!(
                "{} event {} (version {}): {err}",
                e.stream, e.event_type, e.stream_version
            ))
        })?;
        state.apply(&event);
    }
    Ok(state)
}
