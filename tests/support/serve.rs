//! Runs the real `weir serve` binary as a child process.

use std::time::Duration;

use tokio::process::Child;

use super::{Isolation, DATABASE_URL, NATS_URL};

/// A running `weir serve`. Killed on drop.
pub struct Serve {
    pub child: Child,
    pub http: String,
    pub iso: Isolation,
    pub env: Vec<(String, String)>,
}

/// Options for a child `weir serve`.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    pub database_url: String,
    pub nats_url: String,
    pub env: Vec<(String, String)>,
    pub wait_ready: bool,
}

impl Default for ServeOpts {
    fn default() -> Self {
        Self {
            database_url: DATABASE_URL.into(),
            nats_url: NATS_URL.into(),
            env: Vec::new(),
            wait_ready: true,
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Serve {
    pub async fn start(iso: &Isolation) -> Serve {
        Self::start_with(iso, ServeOpts::default()).await
    }

    pub async fn start_with(iso: &Isolation, opts: ServeOpts) -> Serve {
        let port = free_port();
        let http = format!("127.0.0.1:{port}");
        let mut cmd = super::bin::weir_in(iso);
        cmd.arg("serve")
            .env("WEIR_DATABASE_URL", &opts.database_url)
            .env("WEIR_NATS_URL", &opts.nats_url)
            .env("WEIR_HTTP_ADDR", &http);
        let mut cmd = super::bin::daemon(cmd, iso, &format!("serve-{port}"));
        // Lifecycle tests drive every transition by hand: no workflow engine
        // unless a test asks for one.
        if !opts.env.iter().any(|(k, _)| k == "WEIR_RUNTIME") {
            cmd.env("WEIR_RUNTIME", "none");
            // …and they send the reports workflows would (`job.mark_*`).
            cmd.env("WEIR_ACCEPT_INTERNAL_COMMANDS", "true");
        }
        // Authentication is the security suite's subject (it passes an admin
        // token); the other tests act as any tenant, as on a laptop.
        if !opts.env.iter().any(|(k, _)| k == "WEIR_ADMIN_TOKEN") {
            cmd.env("WEIR_INSECURE_DEV", "true");
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn weir serve");
        let serve = Serve {
            child,
            http,
            iso: iso.clone(),
            env: opts.env.clone(),
        };
        if opts.wait_ready {
            serve.wait_healthy().await;
        }
        serve
    }

    /// Runs `weir -t acme ARGS` against this serve, as a user would, and
    /// returns what it printed (the command must succeed).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = super::bin::weir_in(&self.iso)
            .args(["-t", "acme"])
            .args(args)
            .env("WEIR_API_URL", format!("http://{}", self.http))
            .output()
            .expect("run weir");
        assert!(
            out.status.success(),
            "weir {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// Waits for `/healthz` (the API is up, streams and migrations are done).
    pub async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        super::eventually(Duration::from_secs(30), "weir serve /healthz", || {
            let c = client.clone();
            let u = self.url("/healthz");
            async move {
                c.get(u)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await;
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::get(self.url(path)).await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// kill -9.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the process to exit by itself (e.g. an injected crash).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
    }
}
