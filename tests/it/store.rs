//! The PostgreSQL event store under concurrent writers.

use std::sync::Arc;

use uuid::Uuid;
use weir::domain::StreamId;
use weir::store::postgres::PgStore;
use weir::store::{CommandMeta, Decision, EventStore, NewEvent, ReadFilter, StoreError};

use crate::support::{unique, DATABASE_URL};

fn decision(stream: &str, expected: u64, n: usize) -> Decision {
    Decision::Accepted {
        meta: CommandMeta {
            tenant: "t".into(),
            command_id: Uuid::now_v7(),
            kind: "job.create".into(),
            target: stream.into(),
            actor: "test".into(),
        },
        stream: StreamId::new("job", stream),
        expected_version: expected,
        events: (0..n)
            .map(|i| NewEvent {
                event_type: "e".into(),
                payload: serde_json::json!({ "i": i }),
            })
            .collect(),
        snapshot: serde_json::json!({}),
    }
}

#[tokio::test]
async fn concurrent_writers_get_gap_free_positions_and_typed_conflicts() {
    let store = Arc::new(PgStore::connect(DATABASE_URL, &unique("t")).await.unwrap());
    // 8 writers, each appending to its own stream 25 times, 2 events a time.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for v in 0..25u64 {
                store
                    .commit(vec![decision(&format!("w{w}"), v * 2, 2)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store
        .read_all(ReadFilter::default(), 0, 10_000)
        .await
        .unwrap();
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=400).collect::<Vec<_>>(),
        "gap-free, in order"
    );

    // Two writers racing on one stream version: exactly one wins, the other gets a typed conflict.
    for round in 0..10u64 {
        let (a, b) = tokio::join!(
            store.commit(vec![decision("race", round, 1)]),
            store.commit(vec![decision("race", round, 1)]),
        );
        let conflicts = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
            .count();
        assert_eq!(
            (a.is_ok() as u8 + b.is_ok() as u8, conflicts),
            (1, 1),
            "round {round}: {a:?} {b:?}"
        );
    }

    // A command id recorded twice is a typed duplicate, and nothing of the second batch lands.
    let d = decision("dup", 0, 1);
    store.commit(vec![d.clone()]).await.unwrap();
    let before = store
        .read_all(ReadFilter::default(), 0, 10_000)
        .await
        .unwrap()
        .len();
    let replay = Decision::Rejected {
        meta: d.meta().clone(),
        rejection: weir::domain::Rejection::new(weir::domain::RejectionCode::Conflict, "x"),
    };
    let again = store.commit(vec![decision("other", 0, 1), replay]).await;
    assert!(
        matches!(again, Err(StoreError::DuplicateCommand(_))),
        "{again:?}"
    );
    assert_eq!(
        store
            .read_all(ReadFilter::default(), 0, 10_000)
            .await
            .unwrap()
            .len(),
        before
    );
}

/// `sslmode=require` in the database URL encrypts Weir's connections (the
/// Debian PostgreSQL the suite runs on serves TLS with its own certificate);
/// `sslmode=disable` does not, so the check can tell them apart.
#[tokio::test]
async fn a_database_url_asking_for_tls_gets_an_encrypted_connection() {
    let schema = unique("tls");
    for (mode, encrypted) in [("require", true), ("disable", false)] {
        let url = format!("{DATABASE_URL}?sslmode={mode}");
        let store = PgStore::connect(&url, &schema)
            .await
            .unwrap_or_else(|e| panic!("connect with sslmode={mode}: {e}"));
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(ssl, encrypted, "sslmode={mode}");
    }
}
