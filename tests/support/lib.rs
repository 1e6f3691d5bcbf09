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

/// The tenant the tests act as, unless a test names another.
pub const TENANT: &str = "acme";

/// Per-test isolation: its own PostgreSQL schema and NATS subject prefix,
/// and its own admin token, from which each tenant's token is derived.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub schema: String,
    pub prefix: String,
    /// What `weir serve` is given as its admin token (authentication is on
    /// in every test unless it asks for `WEIR_INSECURE_DEV`).
    pub admin_token: String,
}

impl Isolation {
    pub fn new() -> Self {
        let id = unique("t");
        Self {
            schema: id.clone(),
            prefix: id,
            admin_token: format!("weir_test_admin_{}", Uuid::new_v4().simple()),
        }
    }

    pub fn subjects(&self) -> Subjects {
        Subjects::new(self.prefix.clone())
    }

    /// `tenant`'s token in this test, in the form `weir tenant create`
    /// prints: derived from the admin token, so every helper agrees on it
    /// without sharing state.
    pub fn token(&self, tenant: &str) -> String {
        let digest = weir::domain::tenant::token_hash(&format!("{}/{tenant}", self.admin_token));
        format!("weir_{}", digest.trim_start_matches("sha256:"))
    }
}

/// Creates `tenant` as the admin of `iso` (its token is [`Isolation::token`])
/// with room for what tests do (commands in bursts); a tenant that exists
/// already is left as it is, so a restarted or second `weir serve` may call
/// this again.
pub async fn create_tenant(nats: &async_nats::Client, iso: &Isolation, tenant: &str) {
    let quota = weir::domain::tenant::Quota {
        commands_per_second: 100_000,
        ..Default::default()
    };
    let outcome = client::send_as(
        nats,
        &iso.subjects(),
        Some(&iso.admin_token),
        Request {
            tenant: tenant.into(),
            kind: "tenant.create".into(),
            target: tenant.into(),
            payload: serde_json::json!({
                "token_sha256": weir::domain::tenant::token_hash(&iso.token(tenant)),
                "quota": quota,
            }),
            expected_version: None,
            actor: "test".into(),
        },
        Duration::from_secs(20),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("tenant.create {tenant}: {e}"));
    let exists = outcome
        .rejection
        .as_ref()
        .is_some_and(|r| r.code == weir::domain::RejectionCode::AlreadyExists);
    assert!(
        outcome.is_accepted() || exists,
        "tenant.create {tenant}: {outcome:?}"
    );
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

/// Sends a command as `tenant` (with its token) and waits for its outcome.
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
    let token = iso.token(tenant);
    client::send_as(
        nats,
        &iso.subjects(),
        Some(&token),
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
        "sources": [{"topic": "acme.in"}],
        "sinks": [{"type": "kafka", "topic": "acme.out"}],
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
    let up = serve
        .cli_command()
        .args(["udf", "upload", name])
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
