//! Shared helpers for the integration tests: unique names per test, the
//! `weir` binary ([`bin`], the one place that spawns it), a real `weir serve`
//! child process, a command client, and [`eventually`], the one polling loop.

#![allow(dead_code)]

pub mod bin;
pub mod guests;
pub mod kafka;
pub mod nats_server;
pub mod proxy;
pub mod runtime;
pub mod serve;
pub mod webhook;
pub mod workflow;

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use weir::client::{self, Request};
use weir::domain::Outcome;
use weir::intake::Subjects;

pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Per-test isolation: its own PostgreSQL schema and NATS subject prefix.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub schema: String,
    pub prefix: String,
}

impl Isolation {
    pub fn new() -> Self {
        let id = unique("t");
        Self {
            schema: id.clone(),
            prefix: id,
        }
    }

    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone())
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn nats(url: &str) -> async_nats::Client {
    async_nats::connect(url)
        .await
        .expect("NATS must be running on 127.0.0.1:4222")
}

/// Sends a command and waits for its outcome.
pub async fn send(
    nats: &async_nats::Client,
    iso: &Isolation,
    tenant: &str,
    kind: &str,
    target: &str,
    payload: Value,
) -> Outcome {
    send_expecting(nats, iso, tenant, kind, target, payload, None).await
}

pub async fn send_expecting(
    nats: &async_nats::Client,
    iso: &Isolation,
    tenant: &str,
    kind: &str,
    target: &str,
    payload: Value,
    expected_version: Option<u64>,
) -> Outcome {
    client::send(
        nats,
        &iso.subjects(),
        Request {
            tenant: tenant.into(),
            kind: kind.into(),
            target: target.into(),
            payload,
            expected_version,
            actor: "test".into(),
        },
        Duration::from_secs(20),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("{kind} on {target}: {e}"))
}

/// A minimal valid job spec.
pub fn spec() -> Value {
    serde_json::json!({
        "sources": [{"topic": "in"}],
        "sinks": [{"type": "kafka", "topic": "out"}],
        "parallelism": 2
    })
}

/// Waits until `f` returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_ok(timeout, what, || {
        let next = f();
        async move { next.await.ok_or(NothingYet) }
    })
    .await
}

/// What [`eventually`] saw while its condition did not hold.
struct NothingYet;

impl std::fmt::Debug for NothingYet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("nothing yet")
    }
}

/// Waits until `f` returns `Ok`, or panics after `timeout` with the last
/// `Err` it returned (what the test saw instead). This is the one polling
/// loop of the tests: it waits for external effects (a process, a broker, a
/// table), never for engine time, which tests control with a manual clock.
pub async fn eventually_ok<T, E, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a table for a tenant's PostgreSQL sink, where the sink looks for
/// it: in the tenant's own schema of the Weir installation `pool` belongs
/// to, owned by the tenant's role. Returns the qualified name to query.
pub async fn tenant_table(pool: &sqlx::PgPool, tenant: &str, name: &str, columns: &str) -> String {
    let weir_schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    let space = weir::runtime::sinks::TenantSpace::of(&weir_schema, tenant);
    space.provision(pool).await.unwrap();
    let qualified = format!("\"{}\".\"{name}\"", space.schema);
    sqlx::query(&format!("CREATE TABLE {qualified} ({columns})"))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER TABLE {qualified} OWNER TO \"{}\"",
        space.role
    ))
    .execute(pool)
    .await
    .unwrap();
    qualified
}

/// Uploads example `example` as `name@1.0.0` in tenant `acme` through the
/// CLI and `serve`'s API, as a user would.
pub fn upload_udf(serve: &serve::Serve, example: &str, name: &str) {
    let iso = &serve.iso;
    let wasm = std::env::temp_dir().join(format!("{}-{example}.wasm", iso.prefix));
    std::fs::write(&wasm, guests::guest(example)).unwrap();
    let up = bin::weir_in(iso)
        .env("WEIR_API_URL", format!("http://{}", serve.http))
        .args(["-t", "acme", "udf", "upload", name])
        .arg(&wasm)
        .args(["--version", "1.0.0"])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
}
