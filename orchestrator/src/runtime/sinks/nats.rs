//! The NATS sink: one message per output on a subject, its value as the
//! payload, the output's own headers (those with UTF-8 values) plus the
//! source position in headers so consumers can dedupe. At-least-once.

use async_nats::HeaderMap;

use super::SinkError;
use crate::runtime::record::{Output, H_ORIGIN};

pub struct NatsSink {
    client: async_nats::Client,
    subject: String,
}

impl NatsSink {
    pub fn new(client: async_nats::Client, subject: String) -> Self {
        Self { client, subject }
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    fn err(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError {
            sink: format!("nats:{}", self.subject),
            reason: e.to_string(),
        }
    }

    pub async fn write(&mut self, outputs: &[Output]) -> Result<(), SinkError> {
        for out in outputs {
            let mut headers = HeaderMap::new();
            for (k, v) in &out.record.headers {
                // NATS header values are text; others would not arrive intact.
                if let Ok(v) = std::str::from_utf8(v) {
                    headers.append(k.as_str(), v);
                }
            }
            headers.insert(H_ORIGIN, out.origin_text().as_str());
            self.client
                .publish_with_headers(self.subject.clone(), headers, out.record.value.clone())
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.client.flush().await.map_err(|e| self.err(e))
    }
}
