//! Command-path benchmark against the real services: NATS publish → committed
//! events in PostgreSQL → outcome on NATS.
//!
//! Prints the maximum sustained rate, p50/p99 latency at 1,000 commands/s, and
//! raw PostgreSQL single-row insert tps on one connection for comparison
//! (docs/architecture.md#targets: ≥ 5,000 commands/s, ≥ 0.5 × raw insert tps, p99 < 20 ms at 1,000/s).
//! Run: `cargo bench -p weir --bench commands` (services must be up).
//! `-- --auth` runs `weir serve` with authentication on: every command
//! carries the tenant's token, and intake checks it and the quota.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Mutex;
use uuid::Uuid;
use weir::domain::envelope::RawEnvelope;
use weir::intake::Subjects;

// Shared with the console bench, which also reads its HTTP address.
#[allow(dead_code)]
#[path = "support/embedded.rs"]
mod embedded;

use embedded::{DB, NATS};

fn envelope(tenant: &str, target: &str) -> (Uuid, Vec<u8>) {
    let id = Uuid::now_v7();
    let env = RawEnvelope {
        id,
        tenant: tenant.into(),
        kind: "job.create".into(),
        target: target.into(),
        expected_version: None,
        actor: "bench".into(),
        issued_at: chrono::Utc::now(),
        payload: serde_json::json!({"spec": {
            "sources": [{"topic": "in"}], "sinks": [{"type": "kafka", "topic": "out"}]
        }}),
    };
    (id, serde_json::to_vec(&env).unwrap_or_default())
}

struct Tracker {
    sent: Mutex<HashMap<Uuid, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    /// Outcomes that were not `accepted` (a figure over refusals is no figure).
    rejected: std::sync::atomic::AtomicUsize,
}

async fn run_phase(
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    tracker: &Arc<Tracker>,
    n: usize,
    rate: Option<u64>,
    tag: &str,
    token: Option<&str>,
) -> Duration {
    tracker.latencies.lock().await.clear();
    let started = Instant::now();
    let mut pending = Vec::new();
    for i in 0..n {
        if let Some(r) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / r as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let (id, body) = envelope("bench", &format!("{tag}-{i}"));
        tracker.sent.lock().await.insert(id, Instant::now());
        let mut headers = async_nats::HeaderMap::new();
        if let Some(t) = token {
            headers.insert("Authorization", format!("Bearer {t}").as_str());
        }
        match js
            .publish_with_headers(
                subjects.command("bench", "job.create"),
                headers,
                body.into(),
            )
            .await
        {
            Ok(ack) => pending.push(ack),
            Err(e) => eprintln!("publish failed: {e}"),
        }
        if pending.len() >= 256 {
            for a in pending.drain(..) {
                let _ = a.await;
            }
        }
    }
    for a in pending {
        let _ = a.await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while tracker.latencies.lock().await.len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn raw_insert_tps() -> f64 {
    let pool = weir::store::postgres::pool(DB, "public", 1)
        .await
        .expect("pool");
    let table = format!("bench_raw_{}", &Uuid::new_v4().simple().to_string()[..8]);
    sqlx::query(&format!(
        "CREATE TABLE {table} (id bigint primary key, v text)"
    ))
    .execute(&pool)
    .await
    .expect("create");
    let started = Instant::now();
    let mut n = 0i64;
    while started.elapsed() < Duration::from_secs(3) {
        sqlx::query(&format!("INSERT INTO {table} VALUES ($1, 'x')"))
            .bind(n)
            .execute(&pool)
            .await
            .expect("insert");
        n += 1;
    }
    let tps = n as f64 / started.elapsed().as_secs_f64();
    let _ = sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&pool)
        .await;
    tps
}

#[tokio::main]
async fn main() {
    let auth = std::env::args().any(|a| a == "--auth");
    const ADMIN: &str = "bench-admin-token-0123456789abcdef0123456789";
    const TENANT: &str = "bench-tenant-token";
    let embedded = if auth {
        embedded::Embedded::start_with(
            "b",
            false,
            weir::cli::serve::AccessArgs {
                admin_token: Some(ADMIN.into()),
                ..Default::default()
            },
        )
    } else {
        embedded::Embedded::start("b", false)
    };
    let token = auth.then_some(TENANT);
    let tag = embedded.tag.clone();
    let client = async_nats::connect(NATS).await.expect("NATS");
    let subjects = Subjects::new(tag.clone());
    // Wait until serve created its streams.
    let js = async_nats::jetstream::new(client.clone());
    for _ in 0..100 {
        if js.get_stream(subjects.command_stream()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if auth {
        // The tenant, with room for every job the bench creates.
        let out = weir::client::send_as(
            &client,
            &subjects,
            Some(ADMIN),
            weir::client::Request {
                tenant: "bench".into(),
                kind: "tenant.create".into(),
                target: "bench".into(),
                payload: serde_json::json!({
                    "token_sha256": weir::domain::tenant::token_hash(TENANT),
                    "quota": {"max_jobs": 1_000_000, "commands_per_second": 1_000_000}
                }),
                expected_version: None,
                actor: "bench".into(),
            },
            Duration::from_secs(30),
            false,
        )
        .await;
        assert!(
            out.as_ref().is_ok_and(|o| o.is_accepted()),
            "tenant.create: {out:?}"
        );
    }
    let tracker = Arc::new(Tracker {
        sent: Mutex::new(HashMap::new()),
        latencies: Mutex::new(Vec::new()),
        rejected: std::sync::atomic::AtomicUsize::new(0),
    });
    let mut outcomes = client
        .subscribe(format!("{tag}.out.>"))
        .await
        .expect("subscribe");
    let t = tracker.clone();
    tokio::spawn(async move {
        while let Some(m) = outcomes.next().await {
            let now = Instant::now();
            let id = m
                .subject
                .as_str()
                .rsplit('.')
                .next()
                .and_then(|s| Uuid::parse_str(s).ok());
            const ACCEPTED: &[u8] = b"\"status\":\"accepted\"";
            if !m.payload.windows(ACCEPTED.len()).any(|w| w == ACCEPTED) {
                t.rejected
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(id) = id {
                if let Some(sent) = t.sent.lock().await.remove(&id) {
                    t.latencies.lock().await.push(now - sent);
                }
            }
        }
    });

    // Warm up connections and caches.
    run_phase(&js, &subjects, &tracker, 500, None, "warm", token).await;

    let n = 20_000;
    let elapsed = run_phase(&js, &subjects, &tracker, n, None, "max", token).await;
    let done = tracker.latencies.lock().await.len();
    let max_rate = done as f64 / elapsed.as_secs_f64();

    let paced = 5_000;
    run_phase(&js, &subjects, &tracker, paced, Some(1_000), "paced", token).await;
    let mut lat = tracker.latencies.lock().await.clone();
    lat.sort();

    let raw = raw_insert_tps().await;
    let rejected = tracker.rejected.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "command path (publish → commit → outcome), fsync on, 2 cores, authentication {}",
        if auth {
            "on (tenant token, quota checked)"
        } else {
            "off (--insecure-dev)"
        }
    );
    println!("  max sustained rate: {max_rate:>8.0} commands/s ({done}/{n} in {elapsed:.2?})  target ≥ 5000");
    println!(
        "  at 1000/s: p50 {:.2?}  p99 {:.2?}  max {:.2?} ({} samples)  target p99 < 20ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default(),
        lat.len()
    );
    println!(
        "  raw PostgreSQL single-row insert, 1 connection: {raw:>8.0} tps; ratio {:.2}  target ≥ 0.5",
        max_rate / raw
    );
    println!("  outcomes not accepted: {rejected} (must be 0)");
    embedded.stop().await;
    for s in [
        subjects.command_stream(),
        subjects.outcome_stream(),
        subjects.event_stream(),
        subjects.dead_letter_stream(),
    ] {
        let _ = js.delete_stream(s).await;
    }
}
