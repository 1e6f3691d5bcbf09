//! The alert evaluator on the real PostgreSQL, with the workflow engine
//! telling a webhook: two evaluator replicas record one change once, a
//! webhook hears each change once, a failed job fires `not_running`, and a
//! spec with a bad rule is refused naming the field. Evaluation time is a
//! manual clock; reports are written where the recorder keeps them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use weir::alerts::{AlertStore, Evaluator};
use weir::autotune::TunerStore;
use weir::domain::autotune::Sample;
use weir::domain::job::Phase;
use weir::domain::workflow::RunStatus;
use weir::workflow::clock::{Clock, ManualClock};

use crate::support::eventually;
use crate::support::workflow::{fast_spec, Rig, TENANT};

const T: Duration = Duration::from_secs(60);

fn alerting_spec(url: &str) -> Value {
    let mut spec = fast_spec(1, json!([]));
    spec["alerts"] = json!([
        {"name": "behind", "when": {"lag_above": 1000}, "for": "10s", "severity": "critical",
         "notify": {"webhook": url}},
        {"name": "down", "when": "not_running", "notify": {"webhook": url}}
    ]);
    spec
}

/// Reports every 2 s over the 20 s before `end`, all with `lag` records behind.
async fn keep_reports(rig: &Rig, job: &str, generation: u64, end: DateTime<Utc>, lag: i64) {
    let tuner = TunerStore::new(rig.store.pool().clone());
    for i in 0..=10i64 {
        let body = json!({
            "tenant": TENANT, "job": job, "version": 1, "generation": generation,
            "parallelism": 1, "at": end - chrono::Duration::seconds(20 - 2 * i),
            "tasks": [{
                "task": 0, "records_in": 100 * i, "records_out": 100 * i, "bytes_in": 0,
                "bytes_out": 0, "dead_lettered": 0, "errors": 0, "busy_ms": 0,
                "idle_ms": 0, "operator_ns_per_record": 0.0, "restarts": 0,
                "lag": {"in/0": lag}
            }]
        });
        let sample: Sample = serde_json::from_value(body.clone()).unwrap();
        tuner.record(TENANT, job, &sample, &body).await.unwrap();
    }
}

fn evaluator(rig: &Rig, clock: &Arc<ManualClock>) -> Evaluator<weir::store::postgres::PgStore> {
    Evaluator::new(
        AlertStore::new(rig.store.pool().clone()),
        rig.handler.clone(),
        clock.clone(),
    )
}

async fn alert_events(rig: &Rig, job: &str) -> Vec<String> {
    rig.job_events(job)
        .await
        .into_iter()
        .filter(|e| e.starts_with("alert_"))
        .collect()
}

async fn settled_alert_runs(rig: &Rig, job: &str) -> usize {
    rig.runs()
        .await
        .into_iter()
        .filter(|(_, r)| {
            r.job.as_deref() == Some(job)
                && r.workflow == "alert"
                && r.status == RunStatus::Completed
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_record_each_change_once_and_the_webhook_hears_it_once() {
    let (url, seen) = crate::support::webhook::receiver(vec![503]).await;
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", None);
    rig.ok("job.create", "orders", json!({"spec": alerting_spec(&url)}))
        .await;
    rig.ok("job.deploy", "orders", json!({})).await;
    rig.stable("orders", 1, 1, T).await;
    let generation = rig.job("orders").await.generation;

    let clock = Arc::new(ManualClock::new(Utc::now()));
    let (a, b) = (evaluator(&rig, &clock), evaluator(&rig, &clock));
    // Below the threshold: nothing.
    keep_reports(&rig, "orders", generation, clock.now(), 10).await;
    assert_eq!(a.pass().await.unwrap(), 0);

    // Above it for 20 s (more than `for`): both replicas judge at once.
    clock.advance(chrono::Duration::seconds(30));
    keep_reports(&rig, "orders", generation, clock.now(), 5000).await;
    let (ra, rb) = tokio::join!(a.pass(), b.pass());
    assert!(ra.unwrap() + rb.unwrap() >= 1);
    assert_eq!(
        alert_events(&rig, "orders").await,
        ["alert_fired"],
        "both replicas judged; the change is recorded once"
    );
    // Later passes over reports that still hold change nothing.
    clock.advance(chrono::Duration::seconds(2));
    keep_reports(&rig, "orders", generation, clock.now(), 6000).await;
    assert_eq!(a.pass().await.unwrap(), 0);
    assert_eq!(b.pass().await.unwrap(), 0);
    let job = rig.job("orders").await;
    let status = &job.alerts["behind"];
    assert!(status.firing && status.fired == 1, "{status:?}");
    assert!(status.message.contains("5000"), "{status:?}");

    // The webhook is told once (after one 503, retried under one key).
    eventually(T, "the fired notification delivered", || async {
        (settled_alert_runs(&rig, "orders").await == 1).then_some(())
    })
    .await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "a 503, then delivered: {seen:?}");
        assert_eq!(seen[0].0, seen[1].0, "one idempotency key");
        let body = &seen[1].1["body"];
        assert_eq!(body["event"], "alert_fired");
        assert_eq!(body["rule"], "behind");
        assert_eq!(body["severity"], "critical");
        assert_eq!(body["value"], 5000.0);
    }

    // The job fails: `down` fires with the reason; the backlog rule resolves.
    rig.ok(
        "job.mark_failed",
        "orders",
        json!({"generation": generation, "reason": "worker lost"}),
    )
    .await;
    assert_eq!(rig.job("orders").await.phase, Phase::Failed);
    assert_eq!(a.pass().await.unwrap(), 2);
    assert_eq!(b.pass().await.unwrap(), 0);
    assert_eq!(
        alert_events(&rig, "orders").await,
        ["alert_fired", "alert_resolved", "alert_fired"]
    );
    let job = rig.job("orders").await;
    assert!(job.alerts["down"].firing);
    assert!(job.alerts["down"].message.contains("worker lost"));
    assert!(!job.alerts["behind"].firing);
    eventually(T, "every notification delivered", || async {
        (settled_alert_runs(&rig, "orders").await == 3).then_some(())
    })
    .await;
    let keys: std::collections::BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(keys.len(), 3, "one key per notification");
}

#[tokio::test]
async fn a_bad_rule_is_refused_naming_its_field() {
    let rig = Rig::new().await;
    let mut spec = fast_spec(1, json!([]));
    spec["alerts"] = json!([
        {"name": "x", "when": {"restarts": {"at_least": 0, "within": "10m"}},
         "notify": {"subject": "weir.cmd.victim.job.delete"}}
    ]);
    let o = rig
        .command("job.create", "bad", json!({ "spec": spec }))
        .await;
    let message = o.rejection.expect("refused").message;
    assert!(
        message.contains("alerts[0].when.restarts.at_least"),
        "{message}"
    );
    assert!(message.contains("alerts[0].notify.subject"), "{message}");

    let mut spec = fast_spec(1, json!([]));
    spec["alerts"] = json!([{"name": "x", "when": "sometimes"}]);
    let o = rig
        .command("job.create", "bad", json!({ "spec": spec }))
        .await;
    let message = o.rejection.expect("refused").message;
    assert!(message.contains("alerts[0].when"), "{message}");
}
