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

mod load {
    use chrono::DateTime;

    use super::*;
    use crate::domain::module::{ModuleEvent, ModuleState, UdfKind};
    use crate::store::{load, load_at};

    fn uploaded(version: &str) -> NewEvent {
        let event = ModuleEvent::ModuleUploaded {
            version: version.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 1,
            interface: "weir:udf/guest@0.1.0".into(),
            module_kind: UdfKind::Map,
            sdk_version: "0.1.0".into(),
            uploader: "alice".into(),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
        };
        NewEvent {
            event_type: event.type_name().into(),
            payload: serde_json::to_value(&event).unwrap(),
        }
    }

    /// Commits two uploads with `snapshot` as the stored snapshot.
    async fn module_stream(snapshot: serde_json::Value) -> (MemoryStore, StreamId) {
        let store = MemoryStore::new();
        let stream = StreamId::from_raw("module.upper");
        store
            .commit(vec![Decision::Accepted {
                meta: meta("t"),
                stream: stream.clone(),
                expected_version: 0,
                events: vec![uploaded("1"), uploaded("2")],
                snapshot,
            }])
            .await
            .unwrap();
        (store, stream)
    }

    #[tokio::test]
    async fn a_readable_snapshot_is_used_as_is() {
        // The snapshot deliberately disagrees with the events, to show which one was read.
        let snap = ModuleState {
            latest: Some("from-snapshot".into()),
            ..Default::default()
        };
        let (store, stream) = module_stream(serde_json::to_value(&snap).unwrap()).await;
        let loaded = load::<ModuleState, _>(&store, "t", &stream).await.unwrap();
        assert_eq!(loaded.version, 2);
        assert_eq!(loaded.state, snap);
    }

    #[tokio::test]
    async fn an_unreadable_snapshot_falls_back_to_replaying_the_events() {
        let (store, stream) = module_stream(serde_json::json!({ "versions": 42 })).await;
        let loaded = load::<ModuleState, _>(&store, "t", &stream).await.unwrap();
        assert_eq!(loaded.version, 2);
        assert_eq!(loaded.state.latest.as_deref(), Some("2"));
        assert_eq!(loaded.state.versions.len(), 2);
    }

    #[tokio::test]
    async fn an_absent_stream_is_the_default_state_at_version_zero() {
        let store = MemoryStore::new();
        let loaded = load::<ModuleState, _>(&store, "t", &StreamId::from_raw("module.none"))
            .await
            .unwrap();
        assert_eq!(loaded, Loaded::default());
    }

    #[tokio::test]
    async fn load_at_replays_up_to_a_version() {
        let (store, stream) = module_stream(serde_json::json!(null)).await;
        let at_1: ModuleState = load_at(&store, "t", &stream, 1).await.unwrap();
        assert_eq!(at_1.latest.as_deref(), Some("1"));
        assert_eq!(at_1.versions.len(), 1);
    }

    #[tokio::test]
    async fn an_undecodable_event_is_corrupt_data() {
        let store = MemoryStore::new();
        let stream = StreamId::from_raw("module.bad");
        store
            .commit(vec![accepted("t", "module.bad", 0, 1)])
            .await
            .unwrap();
        let err = load_at::<ModuleState, _>(&store, "t", &stream, u64::MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }
}
