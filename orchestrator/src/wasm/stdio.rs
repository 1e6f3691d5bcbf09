//! Guest stdout and stderr, captured into bounded buffers that keep the
//! newest bytes. Output past the cap is counted and dropped, never an error: a chatty UDF must not fail
//! because of its prints. The tail of stderr explains traps (a Rust panic
//! message lands there).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Debug, Default)]
struct Buf {
    data: Vec<u8>,
    cap: usize,
    dropped: u64,
}

/// A capped, shareable capture buffer.
#[derive(Debug, Clone)]
pub(crate) struct Capture(Arc<Mutex<Buf>>);

impl Capture {
    pub(crate) fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Buf {
            cap,
            ..Default::default()
        })))
    }

    /// Keeps the newest `cap` bytes: the end of the output (a panic message)
    /// matters more than its start.
    fn append(&self, bytes: &[u8]) {
        // A poisoned lock only means another writer panicked mid-append; the
        // buffer is still a valid byte vector.
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let keep = bytes.len().min(b.cap);
        b.dropped += (bytes.len() - keep) as u64;
        b.data.extend_from_slice(&bytes[bytes.len() - keep..]);
        let over = b.data.len().saturating_sub(b.cap);
        if over > 0 {
            b.data.drain(..over);
            b.dropped += over as u64;
        }
    }

    /// Takes what was captured and how many bytes were dropped.
    pub(crate) fn take(&self) -> (Vec<u8>, u64) {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let dropped = std::mem::take(&mut b.dropped);
        (std::mem::take(&mut b.data), dropped)
    }

    /// The last lines written, for trap messages: a Rust panic prints
    /// "panicked at <file:line>:" and then its message, then a backtrace hint.
    pub(crate) fn tail(&self) -> Option<String> {
        let b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&b.data);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let start = lines
            .iter()
            .rposition(|l| l.contains("panicked at"))
            .unwrap_or(lines.len().saturating_sub(1));
        let tail = lines.get(start..)?.join(" ");
        (!tail.is_empty()).then(|| tail.chars().take(500).collect())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}
