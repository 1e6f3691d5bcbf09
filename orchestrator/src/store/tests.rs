//! Store semantics, checked against the in-memory store. The same properties
//! are checked against PostgreSQL by the integration tests.

use uuid::Uuid;

use super::memory::MemoryStore;
use super::*;
use crate::domain::{Rejection, RejectionCode};

fn meta(tenant: &str) -> CommandMeta {
    CommandMeta {
        tenant: tenant.into(),
        command_id: Uuid::now_v7(),
        kind: "job.create".into(),
        target: "a".into(),
        actor: "t".into(),
    }
}

fn accepted(tenant: &str, stream: &str, expected: u64, n: usize) -> Decision {
    Decision::Accepted {
        meta: meta(tenant),
        stream: StreamId::from_raw(stream),
        expected_version: expected,
        events: (0..n)
            .map(|i| NewEvent {
                event_type: format!("e{i}"),
                payload: serde_json::json!({ "i": i }),
            })
            .collect(),
        snapshot: serde_json::json!({}),
    }
}

#[tokio::test]
async fn positions_are_gap_free_across_batches_and_streams() {
    let store = MemoryStore::new();
    store
        .commit(vec![
            accepted("t", "job.a", 0, 2),
            accepted("t", "job.b", 0, 1),
        ])
        .await
        .unwrap();
    store
        .commit(vec![accepted("t", "job.a", 2, 3)])
        .await
        .unwrap();
    let all = store.read_all(ReadFilter::default(), 0, 100).await.unwrap();
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4, 5, 6]);
    let a = store
        .read_stream("t", &StreamId::from_raw("job.a"), 0)
        .await
        .unwrap();
    assert_eq!(
        a.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
}

#[tokio::test]
async fn a_conflict_rolls_back_the_whole_batch() {
    let store = MemoryStore::new();
    store
        .commit(vec![accepted("t", "job.a", 0, 1)])
        .await
        .unwrap();
    let err = store
        .commit(vec![
            accepted("t", "job.b", 0, 1),
            accepted("t", "job.a", 0, 1),
        ])
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(
        store
            .read_all(ReadFilter::default(), 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn outcomes_are_stored_and_deduplicated() {
    let store = MemoryStore::new();
    let rejected = Decision::Rejected {
        meta: meta("t"),
        rejection: Rejection::new(RejectionCode::NotFound, "nope"),
    };
    let id = rejected.meta().command_id;
    let out = store.commit(vec![rejected.clone()]).await.unwrap();
    let stored = store.stored_outcomes(&[("t".into(), id)]).await.unwrap();
    assert_eq!(stored[&("t".to_string(), id)], out[0]);
    // Another tenant cannot see it.
    assert!(store
        .stored_outcomes(&[("u".into(), id)])
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.commit(vec![rejected]).await,
        Err(StoreError::DuplicateCommand(_))
    ));
}
