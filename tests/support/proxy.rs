//! A TCP proxy the test controls, to make a service "unavailable" without
//! stopping the shared server other tests use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Forwards 127.0.0.1:<port> to `upstream` while enabled.
pub struct Proxy {
    pub port: u16,
    enabled: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

/// Copies `from` to `to`; while `stall` is set, holds what it read instead
/// of writing it (the sender sees its bytes accepted, the receiver nothing).
async fn pump<R, W>(mut from: R, mut to: W, stall: Option<Arc<AtomicBool>>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stall.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let enabled = Arc::new(AtomicBool::new(true));
        let stalled = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Notify::new());
        let (en, st, ct, up) = (
            enabled.clone(),
            stalled.clone(),
            cut.clone(),
            upstream.to_owned(),
        );
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !en.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (up, ct, st) = (up.clone(), ct.clone(), st.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let (in_r, in_w) = inbound.into_split();
                    let (out_r, out_w) = outbound.into_split();
                    tokio::select! {
                        _ = pump(in_r, out_w, None) => {}
                        _ = pump(out_r, in_w, Some(st)) => {}
                        _ = ct.notified() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            enabled,
            stalled,
            cut,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Requests still reach the upstream, but its answers are held back
    /// until [`Proxy::release`]: a server that works and acknowledges late.
    pub fn stall_answers(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}
