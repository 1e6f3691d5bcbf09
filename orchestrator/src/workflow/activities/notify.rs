//! `notify`: an HTTP webhook any workflow can call; `publish`: a NATS
//! message. Alert rules (`workflows/alert.yaml`) use both with targets a
//! tenant wrote, so those go through [`Notifier`]'s guarded clients.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{input, Activities, ActivityCtx, ActivityError};
use crate::domain::ErrorClass;
use crate::runtime::control::DeploymentControl;
use crate::store::EventStore;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyInput {
    /// `http://` or `https://` URL to POST to.
    url: String,
    /// The JSON body; the run id and step are added under `weir`.
    #[serde(default)]
    body: Value,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The URL came from a tenant: post only to public addresses (checked
    /// for the literal host and at every connection), unless `weir serve`
    /// allows private ones (`--http-sink-allow-private`).
    #[serde(default)]
    public_only: bool,
}

/// How notifications leave Weir when a tenant chose the target.
#[derive(Clone)]
pub struct Notifier {
    /// Resolves names to public addresses only, unless `allow_private`.
    pub public_http: reqwest::Client,
    pub allow_private: bool,
    /// Where `publish` sends; `None`: it fails as unavailable.
    pub nats: Option<async_nats::Client>,
    /// Weir's own subject prefix, which no tenant subject may use.
    pub subject_prefix: String,
}

impl Notifier {
    pub fn new(allow_private: bool, nats: Option<async_nats::Client>, prefix: &str) -> Self {
        Self {
            public_http: crate::runtime::sinks::egress::client(allow_private),
            allow_private,
            nats,
            subject_prefix: prefix.to_owned(),
        }
    }
}

/// POSTs a JSON body. The `Idempotency-Key` header carries the step's key so
/// a receiver can drop the repeats that at-least-once delivery allows.
pub async fn notify<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: NotifyInput = input(v)?;
    if !(i.url.starts_with("http://") || i.url.starts_with("https://")) {
        return Err(ActivityError::invalid(format!(
            "input.url: `{}` is not an http(s) URL",
            i.url
        )));
    }
    let body = json!({
        "weir": {"tenant": ctx.tenant, "run_id": ctx.run_id, "step": ctx.step, "idempotency_key": ctx.key},
        "body": i.body,
    });
    let client = if i.public_only {
        if let Some(p) =
            crate::runtime::sinks::egress::url_problem(&i.url, a.notifier.allow_private)
        {
            return Err(ActivityError::invalid(format!("input.url: {p}")));
        }
        &a.notifier.public_http
    } else {
        &a.http
    };
    let mut req = client
        .post(&i.url)
        .header("Idempotency-Key", &ctx.key)
        .json(&body);
    for (k, v) in &i.headers {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ActivityError::new(ErrorClass::Unavailable, format!("POST {}: {e}", i.url)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(json!({"status": status.as_u16()}));
    }
    let class = if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        ErrorClass::Unavailable
    } else {
        ErrorClass::Invalid
    };
    Err(ActivityError::new(
        class,
        format!("POST {} answered {status}", i.url),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishInput {
    /// The subject; Weir's own (`<prefix>.…`), `$…`, `_INBOX.…` and
    /// wildcards are refused.
    subject: String,
    #[serde(default)]
    body: Value,
}

/// Publishes a JSON body on a NATS subject (at least once: a retried step
/// publishes again; the `Weir-Idempotency-Key` header lets a subscriber
/// drop repeats).
pub async fn publish<S: EventStore, C: DeploymentControl>(
    a: &Activities<S, C>,
    ctx: &ActivityCtx,
    v: Value,
) -> Result<Value, ActivityError> {
    let i: PublishInput = input(v)?;
    if let Some(p) = crate::domain::job::sink_rules::subject_problem(
        &i.subject,
        Some(&a.notifier.subject_prefix),
    ) {
        return Err(ActivityError::invalid(format!("input.subject: {p}")));
    }
    let Some(nats) = &a.notifier.nats else {
        return Err(ActivityError::new(
            ErrorClass::Unavailable,
            "no NATS connection to publish with",
        ));
    };
    let body = json!({
        "weir": {"tenant": ctx.tenant, "run_id": ctx.run_id, "step": ctx.step, "idempotency_key": ctx.key},
        "body": i.body,
    });
    let payload = serde_json::to_vec(&body)
        .map_err(|e| ActivityError::new(ErrorClass::Internal, e.to_string()))?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Weir-Idempotency-Key", ctx.key.as_str());
    let unavailable = |e: String| {
        ActivityError::new(
            ErrorClass::Unavailable,
            format!("publish {}: {e}", i.subject),
        )
    };
    nats.publish_with_headers(i.subject.clone(), headers, payload.into())
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    nats.flush().await.map_err(|e| unavailable(e.to_string()))?;
    Ok(json!({"subject": i.subject}))
}
