//! Desired against actual state, with real processes: a deployment that
//! runs for a job that should not run is stopped, a deployment that cannot
//! run fails its job, and `weir job history` shows what the data plane did.

use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::{deploy, deploy_spec, placement_pool, serve_opts, topics_with_input, TURN};
use crate::support::kafka::{self, brokers, create_topic, unique_topic};
use crate::support::runtime::user_records;
use crate::support::serve::Serve;
use crate::support::{eventually, nats, send, Isolation, NATS_URL};

async fn desired(pool: &sqlx::PgPool, job: &str) -> Option<String> {
    sqlx::query_scalar("SELECT desired FROM runtime_placements WHERE tenant = 'acme' AND job = $1")
        .bind(job)
        .fetch_optional(pool)
        .await
        .unwrap()
}

async fn history(serve: &Serve, job: &str) -> Vec<Value> {
    let (code, page) = serve
        .get_json(&format!("/v1/tenants/acme/jobs/{job}/events?limit=1000"))
        .await;
    assert_eq!(code, 200, "{page}");
    page["events"].as_array().cloned().unwrap_or_default()
}

/// The `runtime_observed` incidents of a job's history.
async fn incidents(serve: &Serve, job: &str) -> Vec<Value> {
    history(serve, job)
        .await
        .into_iter()
        .filter(|e| e["type"] == "runtime_observed")
        .map(|e| e["payload"]["incident"].clone())
        .collect()
}

/// Waits until the job's placement is no longer desired running and its
/// runtime status says nothing runs.
async fn wait_nothing_runs(serve: &Serve, pool: &sqlx::PgPool, job: &str) {
    eventually(
        Duration::from_secs(60),
        "the deployment stopped",
        || async {
            let d = desired(pool, job).await;
            let (code, _) = serve
                .get_json(&format!("/v1/tenants/acme/jobs/{job}/runtime"))
                .await;
            (d.as_deref() == Some("stopped") && code != 200).then_some(())
        },
    )
    .await;
}

/// A job marked `failed` while its deployment runs (here by hand, as a
/// deploy workflow that gave up too early does) ends with the deployment
/// stopped, after a final checkpoint, and the correction in its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_s_running_deployment_is_stopped() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    // The test sends the workflow's report itself.
    let serve = Serve::start_with(
        &iso,
        serve_opts(&[("WEIR_ACCEPT_INTERNAL_COMMANDS", "true")]),
    )
    .await;
    let (input, output, _) = topics_with_input(&serve, "rf").await;
    deploy(&serve, "rf", &input, &output, 250).await;
    // The reconciler records where the deployment runs.
    eventually(
        Duration::from_secs(30),
        "the placement recorded",
        || async {
            let inc = incidents(&serve, "rf").await;
            inc.iter()
                .any(|i| i["what"] == "placed" && i["worker"] == "serve")
                .then_some(())
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    let failed = send(
        &nc,
        &iso,
        "acme",
        "job.mark_failed",
        "rf",
        json!({"generation": 1, "reason": "the deploy workflow gave up"}),
    )
    .await;
    assert!(failed.is_accepted(), "{failed:?}");

    let pool = placement_pool(&iso).await;
    wait_nothing_runs(&serve, &pool, "rf").await;
    let seen = eventually(
        Duration::from_secs(30),
        "the correction recorded",
        || async {
            let inc = incidents(&serve, "rf").await;
            inc.iter().find(|i| i["what"] == "stray_stopped").cloned()
        },
    )
    .await;
    assert_eq!(seen["phase"], "failed", "{seen}");
    // Whether the final checkpoint was the reconciler's or the worker's own
    // (it stops what is no longer desired too) depends on who is first.
    assert!(seen["checkpointed"].is_boolean(), "{seen}");
    let (_, job) = serve.get_json("/v1/tenants/acme/jobs/rf").await;
    assert_eq!(job["phase"], "failed", "{job}");
}

/// The case: a job is failed and deleted while no data plane runs
/// (its placement still says `running`); when `weir serve` comes back with
/// its worker, the worker resumes the placement, and the reconciler stops
/// it: no task of a deleted job runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_job_does_not_run_again_after_a_restart() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let mut serve = Serve::start_with(&iso, serve_opts(&[])).await;
    let (input, output, _) = topics_with_input(&serve, "rd").await;
    deploy(&serve, "rd", &input, &output, 250).await;
    serve.kill().await;

    // The control plane alone: the commands apply, nothing stops the placement.
    let mut control = Serve::start_with(
        &iso,
        serve_opts(&[
            ("WEIR_RUNTIME", "none"),
            ("WEIR_ACCEPT_INTERNAL_COMMANDS", "true"),
        ]),
    )
    .await;
    let nc = nats(NATS_URL).await;
    for (kind, payload) in [
        (
            "job.mark_failed",
            json!({"generation": 1, "reason": "broker unreachable"}),
        ),
        ("job.delete", json!({})),
    ] {
        let o = send(&nc, &iso, "acme", kind, "rd", payload).await;
        assert!(o.is_accepted(), "{kind}: {o:?}");
    }
    let pool = placement_pool(&iso).await;
    assert_eq!(desired(&pool, "rd").await.as_deref(), Some("running"));
    control.kill().await;

    let serve = Serve::start_with(&iso, serve_opts(&[])).await;
    wait_nothing_runs(&serve, &pool, "rd").await;
    let inc = eventually(
        Duration::from_secs(30),
        "the correction recorded",
        || async {
            let inc = incidents(&serve, "rd").await;
            inc.iter()
                .any(|i| i["what"] == "stray_stopped" && i["phase"] == "deleted")
                .then_some(inc)
        },
    )
    .await;
    assert!(!inc.is_empty());
    // It stays stopped: a later pass finds nothing to resume.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(desired(&pool, "rd").await.as_deref(), Some("stopped"));
    let (_, job) = serve.get_json("/v1/tenants/acme/jobs/rd").await;
    assert_eq!(job["phase"], "deleted", "{job}");
}

/// A deployment whose tasks crash past their restart budget (its sink
/// table was dropped) moves its job to `failed` with the reason, its
/// crashes are in the history, and nothing of it keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_past_its_restart_budget_fails_its_job() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let serve = Serve::start_with(&iso, serve_opts(&[("WEIR_TASK_RESTART_BUDGET", "2")])).await;
    let pool = placement_pool(&iso).await;
    let sunk = crate::support::tenant_table(
        &pool,
        "acme",
        "sunk",
        "\"user\" text NOT NULL, n bigint PRIMARY KEY",
    )
    .await;
    let input = unique_topic("rb-in");
    create_topic(&brokers(), &input, 1).await;
    kafka::produce(
        &kafka::producer(&brokers()),
        &input,
        &user_records(20_000, 4, 1, 0),
    )
    .await;
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "sinks": [{"type": "postgres", "table": "sunk", "key_columns": ["n"]}],
        "parallelism": 1,
        "rate_limit": 200,
        "checkpoint": {"interval_ms": 300}
    });
    deploy_spec(&serve, "rb", spec).await;
    // Until the deploy workflow marks the version stable, crashes are its
    // to judge; the reconciler takes over from there.
    eventually(Duration::from_secs(60), "the version stable", || async {
        let (_, j) = serve.get_json("/v1/tenants/acme/jobs/rb").await;
        (j["last_stable_version"] == 1).then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "rows written", || async {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {sunk}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        (n > 0).then_some(())
    })
    .await;
    sqlx::query(&format!("DROP TABLE {sunk}"))
        .execute(&pool)
        .await
        .unwrap();

    let job = eventually(Duration::from_secs(90), "the job failed", || async {
        let (_, j) = serve.get_json("/v1/tenants/acme/jobs/rb").await;
        (j["phase"] == "failed").then_some(j)
    })
    .await;
    let reason = job["last_failure"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("restart budget"), "{job}");
    assert!(reason.contains("sunk"), "the reason names the sink: {job}");
    let inc = incidents(&serve, "rb").await;
    assert!(
        inc.iter().any(|i| i["what"] == "task_restarted"),
        "crashes are in the history: {inc:?}"
    );
    wait_nothing_runs(&serve, &pool, "rb").await;
}
