//! The HTTP webhook sink: one POST per batch with a JSON array of the output
//! values (JSON values embedded, other bytes as strings). Failures (transport
//! errors, 5xx, 429) are retried with exponential backoff and jitter; when the attempts
//! run out the task fails and restarts from its checkpoint, so nothing is
//! lost: at-least-once.

use std::time::Duration;

use super::SinkError;
use crate::domain::BackoffPolicy;
use crate::runtime::record::Output;
use crate::telemetry::names;

/// Between attempts at one batch.
const BACKOFF: BackoffPolicy =
    BackoffPolicy::new(Duration::from_millis(100), Duration::from_secs(10));

pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    max_attempts: u32,
    /// The spec's headers, secrets resolved. Never logged.
    headers: reqwest::header::HeaderMap,
}

impl HttpSink {
    pub fn new(client: reqwest::Client, url: String, max_attempts: u32) -> Self {
        Self {
            client,
            url,
            max_attempts: max_attempts.max(1),
            headers: reqwest::header::HeaderMap::new(),
        }
    }

    /// Adds the spec's headers. The error names a header, never its value
    /// (which may hold a secret).
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Self, String> {
        for (name, value) in headers {
            if let Some(p) = crate::domain::job::spec::header_problem(name, value) {
                return Err(p);
            }
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let mut v = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
            v.set_sensitive(true);
            self.headers.insert(n, v);
        }
        Ok(self)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, reason: String) -> SinkError {
        SinkError {
            sink: format!("http:{}", self.url),
            reason,
        }
    }

    pub async fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        if outputs.is_empty() {
            return Ok(());
        }
        let body: Vec<serde_json::Value> = outputs
            .iter()
            .map(|o| {
                serde_json::from_slice(&o.record.value).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&o.record.value).into_owned())
                })
            })
            .collect();
        let first = &outputs[0].origin;
        let batch_id = format!(
            "{}/{}/{}/{}",
            first.topic, first.partition, first.offset, outputs[0].seq
        );
        let mut backoff = BACKOFF.start(fastrand::u64(..));
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let res = self
                .client
                .post(&self.url)
                .headers(self.headers.clone())
                .header("weir-batch", &batch_id)
                .json(&body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    // A 4xx other than 429 will not get better by retrying.
                    return Err(self.err(format!("rejected with {}", r.status())));
                }
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = with_causes(&e),
            }
            tracing::warn!(url = %self.url, attempt, error = %last, "http sink attempt failed");
            metrics::counter!(names::SINK_HTTP_RETRIES).increment(1);
            if attempt < self.max_attempts {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        Err(self.err(format!(
            "gave up after {} attempts: {last}",
            self.max_attempts
        )))
    }
}

/// An error with its causes (`error sending request: …: <host> resolves to
/// no public address`): reqwest's own message stops at the first.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}
