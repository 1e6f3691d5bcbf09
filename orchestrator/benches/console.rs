//! The web console's pages with 200 jobs in a tenant (docs/console.md):
//! starts an embedded `weir serve` on a fresh schema, creates 200 jobs with
//! two versions each through the command path (deployed and marked running
//! by hand, as the lifecycle tests do), keeps 15 minutes of metrics reports
//! (one every 2 s) for each, then times every page over HTTP and prints p50
//! and p99. Target: every page under 200 ms.
//! Run: `cargo bench -p weir --bench console` (services must be up).

use std::time::{Duration, Instant};

use serde_json::json;

use weir::client::{self, Request};
use weir::intake::Subjects;

#[path = "support/embedded.rs"]
mod embedded;

use embedded::{DB, NATS};
const TENANT: &str = "bench";
const JOBS: usize = 200;
const ROUNDS: usize = 60;

fn spec(i: usize, parallelism: u32) -> serde_json::Value {
    json!({
        "description": format!("bench job {i}"),
        "sources": [{"topic": format!("in-{}", i % 20)}],
        "sinks": [{"type": "kafka", "topic": format!("out-{i}")}],
        "dead_letter_topic": "bad",
        "parallelism": parallelism
    })
}

async fn command(
    nc: &async_nats::Client,
    subjects: &Subjects,
    kind: &str,
    job: &str,
    payload: serde_json::Value,
) {
    let req = Request {
        tenant: TENANT.into(),
        kind: kind.into(),
        target: job.into(),
        payload,
        expected_version: None,
        actor: "bench".into(),
    };
    match client::send(nc, subjects, req, Duration::from_secs(30), false).await {
        Ok(o) if o.is_accepted() => {}
        Ok(o) => panic!("{kind} {job} refused: {o:?}"),
        Err(e) => panic!("{kind} {job}: {e}"),
    }
}

/// 15 minutes of reports, one every 2 s, for every job, as the recorder keeps them.
async fn keep_reports(pool: &sqlx::PgPool) {
    sqlx::query(
        "INSERT INTO metric_samples (tenant, job, at, generation, sample)
         SELECT $1, j.name, now() - make_interval(secs => 2 * s), 1, jsonb_build_object(
             'tenant', $1, 'job', j.name, 'version', 2, 'generation', 1, 'parallelism', 2,
             'at', to_char((now() - make_interval(secs => 2 * s)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
             'tasks', jsonb_build_array(
                 jsonb_build_object('task', 0, 'records_in', (450 - s) * 1000, 'records_out', (450 - s) * 1000,
                     'bytes_in', 0, 'bytes_out', 0, 'dead_lettered', 0, 'errors', 0,
                     'busy_ms', (450 - s) * 1200, 'idle_ms', (450 - s) * 800, 'operator_ns_per_record', 0.0,
                     'restarts', 0, 'lag', jsonb_build_object('in/0', s, 'in/1', 2 * s)),
                 jsonb_build_object('task', 1, 'records_in', (450 - s) * 900, 'records_out', (450 - s) * 900,
                     'bytes_in', 0, 'bytes_out', 0, 'dead_lettered', 0, 'errors', 0,
                     'busy_ms', (450 - s) * 1000, 'idle_ms', (450 - s) * 1000, 'operator_ns_per_record', 0.0,
                     'restarts', 0, 'lag', jsonb_build_object('in/2', s))))
         FROM (SELECT 'job-' || lpad(i::text, 3, '0') AS name FROM generate_series(0, $2 - 1) AS i) AS j,
              generate_series(0, 449) AS s
         ON CONFLICT DO NOTHING",
    )
    .bind(TENANT)
    .bind(JOBS as i32)
    .execute(pool)
    .await
    .expect("keep the metrics reports");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let embedded = embedded::Embedded::start("bc", true);
    let tag = embedded.tag.clone();
    let base = embedded.base.clone();
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let nc = async_nats::connect(NATS).await.expect("NATS");
    let subjects = Subjects::new(tag.clone());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (nc, subjects) = (nc.clone(), subjects.clone());
        workers.spawn(async move {
            for i in (w..JOBS).step_by(8) {
                let job = format!("job-{i:03}");
                command(
                    &nc,
                    &subjects,
                    "job.create",
                    &job,
                    json!({"spec": spec(i, 1)}),
                )
                .await;
                command(
                    &nc,
                    &subjects,
                    "job.submit_version",
                    &job,
                    json!({"spec": spec(i, 2)}),
                )
                .await;
                command(&nc, &subjects, "job.deploy", &job, json!({})).await;
                command(
                    &nc,
                    &subjects,
                    "job.mark_running",
                    &job,
                    json!({"generation": 1}),
                )
                .await;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.expect("a command worker");
    }
    let pool = weir::store::postgres::pool(DB, &tag, 2)
        .await
        .expect("pool");
    keep_reports(&pool).await;
    println!(
        "console bench: {JOBS} jobs (2 versions, running) and {} metrics reports in {:.1} s",
        JOBS * 450,
        started.elapsed().as_secs_f64()
    );

    let pages = [
        ("tenants", "/ui".to_owned()),
        ("jobs", format!("/ui/t/{TENANT}")),
        ("jobs page 4", format!("/ui/t/{TENANT}?page=4")),
        ("job", format!("/ui/t/{TENANT}/jobs/job-123")),
        (
            "job history p2",
            format!("/ui/t/{TENANT}/jobs/job-123?after=1"),
        ),
        ("diff", format!("/ui/t/{TENANT}/jobs/job-123/diff/1/2")),
        ("runs", format!("/ui/t/{TENANT}/runs")),
        ("modules", format!("/ui/t/{TENANT}/modules")),
        ("lineage", format!("/ui/t/{TENANT}/lineage")),
    ];
    println!(
        "{:<16} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p99 ms", "KiB"
    );
    let mut worst = Duration::ZERO;
    for (name, path) in &pages {
        let url = format!("{base}{path}");
        let mut times = Vec::with_capacity(ROUNDS);
        let mut size = 0;
        for round in 0..ROUNDS + 3 {
            let t = Instant::now();
            let res = http.get(&url).send().await.expect("GET");
            let status = res.status();
            let body = res.bytes().await.expect("body");
            let took = t.elapsed();
            assert!(status.is_success(), "{path}: {status}");
            size = body.len();
            if round >= 3 {
                times.push(took);
            }
        }
        times.sort();
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        worst = worst.max(p99);
        println!(
            "{:<16} {:>9.1} {:>9.1} {:>9.1}",
            name,
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            size as f64 / 1024.0
        );
    }
    println!(
        "worst p99 {:.1} ms (target < 200 ms): {}",
        worst.as_secs_f64() * 1000.0,
        if worst < Duration::from_millis(200) {
            "met"
        } else {
            "MISSED"
        }
    );
    embedded.stop().await;
}
