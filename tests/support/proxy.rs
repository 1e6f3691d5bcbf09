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
    cut: Arc<Notify>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let enabled = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (en, ct, up) = (enabled.clone(), cut.clone(), upstream.to_owned());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !en.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (up, ct) = (up.clone(), ct.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&up).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = ct.notified() => {}
                    }
                });
            }
        });
        Proxy { port, enabled, cut }
    }

    /// Drops every open connection and refuses new ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}
