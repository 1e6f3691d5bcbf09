//! A small client: publish a command envelope and wait for its outcome.
//! The CLI's command verbs use it; so can any Rust program and the tests.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

use crate::domain::envelope::RawEnvelope;
use crate::domain::Outcome;
use crate::intake::Subjects;

/// Why a command could not be sent or answered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// NATS could not be reached or refused the command.
    #[error("{0}")]
    Unreachable(String),
    /// The command was stored but no outcome arrived in time.
    #[error("{0}")]
    Timeout(String),
    #[error("cannot encode the command: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Connects to NATS, logged in with `token` if one is given (a NATS server
/// without users ignores it), or says in one line why it cannot.
pub async fn connect(url: &str, token: Option<&str>) -> Result<async_nats::Client, ClientError> {
    crate::nats_auth::login(async_nats::ConnectOptions::new(), token)
        .connection_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .map_err(|e| ClientError::Unreachable(format!("cannot reach NATS at {url}: {e}")))
}

/// A command to send.
pub struct Request {
    pub tenant: String,
    pub kind: String,
    pub target: String,
    pub payload: serde_json::Value,
    pub expected_version: Option<u64>,
    pub actor: String,
}

/// Publishes `req` and waits up to `timeout` for its outcome.
pub async fn send(
    client: &async_nats::Client,
    subjects: &Subjects,
    req: Request,
    timeout: Duration,
    progress: bool,
) -> Result<Outcome, ClientError> {
    send_as(client, subjects, None, req, timeout, progress).await
}

/// Like [`send`], with the sender's token (`Authorization: Bearer …`): the
/// admin's or the tenant's. `weir serve` asks for one unless `--insecure-dev`.
pub async fn send_as(
    client: &async_nats::Client,
    subjects: &Subjects,
    token: Option<&str>,
    req: Request,
    timeout: Duration,
    progress: bool,
) -> Result<Outcome, ClientError> {
    send_with_id(
        client,
        subjects,
        token,
        Uuid::now_v7(),
        req,
        timeout,
        progress,
    )
    .await
}

/// Like [`send_as`], with a caller-chosen command id (for retries that must dedupe).
pub async fn send_with_id(
    client: &async_nats::Client,
    subjects: &Subjects,
    token: Option<&str>,
    id: Uuid,
    req: Request,
    timeout: Duration,
    progress: bool,
) -> Result<Outcome, ClientError> {
    let envelope = RawEnvelope {
        id,
        tenant: req.tenant.clone(),
        kind: req.kind.clone(),
        target: req.target,
        expected_version: req.expected_version,
        actor: req.actor,
        issued_at: Utc::now(),
        payload: req.payload,
    };
    let body = serde_json::to_vec(&envelope)?;
    // Subscribe before publishing so the outcome cannot slip past.
    let mut sub = client
        .subscribe(subjects.outcome(&req.tenant, &id.to_string()))
        .await
        .map_err(|e| ClientError::Unreachable(format!("cannot subscribe for the outcome: {e}")))?;
    let js = async_nats::jetstream::new(client.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.to_string().as_str());
    if let Some(t) = token {
        headers.insert("Authorization", format!("Bearer {t}").as_str());
    }
    let ack = js
        .publish_with_headers(
            subjects.command(&req.tenant, &req.kind),
            headers,
            body.into(),
        )
        .await
        .map_err(|e| ClientError::Unreachable(format!("cannot publish the command: {e}")))?;
    ack.await.map_err(|e| {
        ClientError::Unreachable(format!(
            "NATS did not store the command (is `weir serve` set up with prefix `{}`?): {e}",
            subjects.prefix()
        ))
    })?;
    let show = progress && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            m = sub.next() => {
                let Some(m) = m else {
                    return Err(ClientError::Unreachable("NATS connection closed while waiting for the outcome".into()));
                };
                if show { eprint!("\r\x1b[2K"); }
                return serde_json::from_slice(&m.payload)
                    .map_err(|e| ClientError::Unreachable(format!("unreadable outcome: {e}")));
            }
            _ = tick.tick() => {
                if started.elapsed() > timeout {
                    if show { eprintln!(); }
                    return Err(ClientError::Timeout(format!(
                        "command {id} ({}) was published but no outcome arrived within {:?}; is `weir serve` running?",
                        req.kind, timeout
                    )));
                }
                if show {
                    eprint!("\r\x1b[2K{} {} waiting for outcome… {:.1}s", req.kind, id, started.elapsed().as_secs_f32());
                }
            }
        }
    }
}
