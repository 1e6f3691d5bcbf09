//! `notify`: an HTTP webhook any workflow can call.

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
    let mut req = a
        .http
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
