//! Handler behaviour on the in-memory store.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::envelope::parse_message;
use crate::store::memory::MemoryStore;

fn cmd(id: Uuid, kind: &str, payload: serde_json::Value, expected: Option<u64>) -> Incoming {
    let body = json!({
        "id": id, "tenant": "acme", "kind": kind, "target": "orders", "actor": "t",
        "issued_at": Utc::now(), "payload": payload, "expected_version": expected,
    });
    Incoming::Parsed(parse_message("acme", &serde_json::to_vec(&body).unwrap()).unwrap())
}

fn spec() -> serde_json::Value {
    json!({"sources": [{"topic": "in"}], "sinks": [{"type": "kafka", "topic": "out"}]})
}

#[tokio::test]
async fn a_batch_decides_in_order_against_evolving_state() {
    let h = CommandHandler::new(Arc::new(MemoryStore::new()));
    let create = Uuid::now_v7();
    let batch = vec![
        cmd(create, "job.create", json!({"spec": spec()}), None),
        cmd(Uuid::now_v7(), "job.deploy", json!({}), None),
        cmd(create, "job.create", json!({"spec": spec()}), None),
        cmd(Uuid::now_v7(), "job.stop", json!({}), Some(1)),
    ];
    let out = h.handle(&batch, Utc::now()).await.unwrap();
    assert!(out[0].is_accepted());
    assert!(out[1].is_accepted());
    assert_eq!(
        out[2], out[0],
        "an in-batch duplicate gets the same outcome"
    );
    let r = out[3].rejection.as_ref().unwrap();
    assert_eq!(r.code, RejectionCode::Conflict, "{r:?}");
    // Redelivery of the whole batch changes nothing and answers the same.
    let again = h.handle(&batch, Utc::now()).await.unwrap();
    assert_eq!(again, out);
    let events = h
        .store()
        .read_all(Default::default(), 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
}
