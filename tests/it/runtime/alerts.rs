//! Alert rules on the real services: a job whose PostgreSQL sink stalls
//! fires `no_output` and a lag rule once each (not once per metrics
//! report), tells the rule's NATS subject once, keeps firing without a
//! second notification across a SIGKILL and restart of `weir serve`, and
//! resolves, once, when the sink recovers. The job runs on a `weir worker`
//! of its own, so killing `weir serve` restarts the evaluator, not the job.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::cluster::{deploy_spec, placement_pool, serve_opts, spawn_worker, wait_live, TURN};
use crate::support::kafka::{self, brokers, create_topic, unique_topic};
use crate::support::runtime::user_records;
use crate::support::serve::Serve;
use crate::support::{eventually, nats, Isolation, NATS_URL};

const T: Duration = Duration::from_secs(90);

async fn alert_events(serve: &Serve, job: &str) -> Vec<Value> {
    let (code, page) = serve
        .get_json(&format!("/v1/tenants/acme/jobs/{job}/events?limit=1000"))
        .await;
    assert_eq!(code, 200, "{page}");
    page["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["type"] == "alert_fired" || e["type"] == "alert_resolved")
        .map(|e| json!([e["type"], e["payload"]["rule"]]))
        .collect()
}

async fn kept_reports(pool: &sqlx::PgPool, job: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM metric_samples WHERE tenant = 'acme' AND job = $1")
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn alert_runs(serve: &Serve, job: &str) -> usize {
    let (code, runs) = serve
        .get_json(&format!("/v1/tenants/acme/runs?job={job}"))
        .await;
    assert_eq!(code, 200, "{runs}");
    runs.as_array()
        .map(|r| r.iter().filter(|r| r["workflow"] == "alert").count())
        .unwrap_or(0)
}

/// The next notification on the subscription: `(event, rule)`.
async fn next_notification(sub: &mut async_nats::Subscriber) -> (String, String) {
    let msg = tokio::time::timeout(T, sub.next())
        .await
        .expect("a notification")
        .expect("the subscription is open");
    let v: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert!(
        msg.headers
            .as_ref()
            .and_then(|h| h.get("Weir-Idempotency-Key"))
            .is_some(),
        "{v}"
    );
    let body = &v["body"];
    assert_eq!(body["job"], "al", "{v}");
    (
        body["event"].as_str().unwrap_or_default().to_owned(),
        body["rule"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_fires_once_survives_a_restart_and_resolves() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let opts = || {
        serve_opts(&[
            ("WEIR_ALERT_EVERY", "1s"),
            ("WEIR_EMBEDDED_WORKER", "false"),
        ])
    };
    let mut serve = Serve::start_with(&iso, opts()).await;
    let mut worker = spawn_worker(&iso, "w1");
    wait_live(&iso, "w1").await;
    let pool = placement_pool(&iso).await;
    let sunk = crate::support::tenant_table(
        &pool,
        "acme",
        "sunk",
        "\"user\" text NOT NULL, n bigint PRIMARY KEY",
    )
    .await;
    let input = unique_topic("al-in");
    create_topic(&brokers(), &input, 1).await;
    let producer = kafka::producer(&brokers());
    let subject = format!("alerts.{}", iso.prefix);
    let nc = nats(NATS_URL).await;
    let mut sub = nc.subscribe(subject.clone()).await.unwrap();
    nc.flush().await.unwrap();
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "sinks": [{"type": "postgres", "table": "sunk", "key_columns": ["n"]}],
        "parallelism": 1,
        "checkpoint": {"interval_ms": 500},
        "alerts": [
            {"name": "stuck", "when": "no_output", "for": "4s", "severity": "critical",
             "notify": {"subject": subject}},
            {"name": "behind", "when": {"lag_above": 50}, "for": "2s",
             "notify": {"subject": subject}},
            {"name": "never", "when": {"lag_above": 100000000}, "for": "0s"}
        ]
    });
    deploy_spec(&serve, "al", spec).await;
    let rows = |n: i64| {
        let (pool, sunk) = (pool.clone(), sunk.clone());
        async move {
            let got: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {sunk}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            (got >= n).then_some(())
        }
    };
    kafka::produce(&producer, &input, &user_records(200, 4, 1, 0)).await;
    eventually(T, "the first records written", || rows(200)).await;
    // Stalled before its deploy run is done, the job would be rolled back.
    eventually(T, "the version stable", || async {
        let (_, j) = serve.get_json("/v1/tenants/acme/jobs/al").await;
        (j["last_stable_version"] == 1).then_some(())
    })
    .await;
    assert!(alert_events(&serve, "al").await.is_empty());

    // The sink stalls: every write waits on a lock the test holds.
    let mut stall = pool.begin().await.unwrap();
    sqlx::query(&format!("LOCK TABLE {sunk} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *stall)
        .await
        .unwrap();
    kafka::produce(&producer, &input, &user_records(300, 4, 1, 200)).await;
    let mut told = vec![next_notification(&mut sub).await];
    told.push(next_notification(&mut sub).await);
    told.sort();
    assert_eq!(
        told,
        [
            ("alert_fired".to_owned(), "behind".to_owned()),
            ("alert_fired".to_owned(), "stuck".to_owned())
        ]
    );
    // Reports keep coming and keep the conditions true: nothing fires again.
    let kept = kept_reports(&pool, "al").await;
    eventually(T, "five more reports judged", || async {
        (kept_reports(&pool, "al").await >= kept + 5).then_some(())
    })
    .await;
    let fired = json!([["alert_fired", "behind"], ["alert_fired", "stuck"]]);
    let mut events = alert_events(&serve, "al").await;
    events.sort_by_key(|e| e.to_string());
    assert_eq!(json!(events), fired);
    let firing = serve.cli(&["alerts"]);
    assert!(
        firing.contains("stuck") && firing.contains("critical"),
        "{firing}"
    );
    let shown = serve.cli(&["job", "alerts", "al"]);
    assert!(shown.contains("FIRING since"), "{shown}");
    assert!(shown.contains("ok (never fired)"), "{shown}");

    // SIGKILL while both fire; the new process reads that they fire from
    // the job's events and tells nobody again.
    serve.kill().await;
    let serve = Serve::start_with(&iso, opts()).await;
    eventually(
        T,
        "the new process's evaluator to see them firing",
        || async {
            let m = reqwest::get(serve.url("/metrics"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            m.lines()
                .any(|l| {
                    l.starts_with("weir_alerts_firing{")
                        && l.contains("rule=\"stuck\"")
                        && l.ends_with(" 1")
                })
                .then_some(())
        },
    )
    .await;
    let kept = kept_reports(&pool, "al").await;
    eventually(T, "reports of the restarted job judged", || async {
        (kept_reports(&pool, "al").await >= kept + 3).then_some(())
    })
    .await;
    let mut events = alert_events(&serve, "al").await;
    events.sort_by_key(|e| e.to_string());
    assert_eq!(json!(events), fired, "nothing fired twice");
    assert_eq!(
        alert_runs(&serve, "al").await,
        2,
        "one notification run each"
    );

    // The sink recovers: output resumes, the backlog drains, both resolve.
    stall.rollback().await.unwrap();
    eventually(T, "every record written", || rows(500)).await;
    let mut told = vec![next_notification(&mut sub).await];
    told.push(next_notification(&mut sub).await);
    told.sort();
    assert_eq!(
        told,
        [
            ("alert_resolved".to_owned(), "behind".to_owned()),
            ("alert_resolved".to_owned(), "stuck".to_owned())
        ]
    );
    eventually(T, "the notification runs settled", || async {
        (alert_runs(&serve, "al").await == 4).then_some(())
    })
    .await;
    let history = serve.cli(&["job", "history", "al"]);
    assert_eq!(history.matches("alert_fired").count(), 2, "{history}");
    assert_eq!(history.matches("alert_resolved").count(), 2, "{history}");
    assert!(
        history.contains("[critical] stuck: no output for"),
        "{history}"
    );
    let firing = serve.cli(&["alerts"]);
    assert!(firing.contains("nothing fires"), "{firing}");
    worker.kill().await.ok();
}
