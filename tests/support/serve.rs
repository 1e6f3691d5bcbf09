//! Runs the real `weir serve` binary as a child process.

use std::time::Duration;

use tokio::process::Child;

use super::{Isolation, DATABASE_URL, NATS_URL, TENANT};

/// A running `weir serve`. Killed on drop.
pub struct Serve {
    pub child: Child,
    pub http: String,
    pub iso: Isolation,
    pub env: Vec<(String, String)>,
    /// Whether this serve asks for tokens (not `WEIR_INSECURE_DEV`).
    pub auth: bool,
    pub nats_url: String,
}

/// Options for a child `weir serve`.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    pub database_url: String,
    pub nats_url: String,
    pub env: Vec<(String, String)>,
    pub wait_ready: bool,
    /// Create the tenant `acme` once ready (authentication on, the test's
    /// own admin token). Off for a serve that must not commit anything yet.
    pub create_tenant: bool,
}

impl Default for ServeOpts {
    fn default() -> Self {
        Self {
            database_url: DATABASE_URL.into(),
            nats_url: NATS_URL.into(),
            env: Vec::new(),
            wait_ready: true,
            create_tenant: true,
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
        let has = |key: &str| opts.env.iter().any(|(k, _)| k == key);
        // Lifecycle tests drive every transition by hand: no workflow engine
        // unless a test asks for one.
        if !has("WEIR_RUNTIME") {
            cmd.env("WEIR_RUNTIME", "none");
            // …and they send the reports workflows would (`job.mark_*`).
            cmd.env("WEIR_ACCEPT_INTERNAL_COMMANDS", "true");
        }
        // Authentication is on, as in production, with the test's own admin
        // token, unless the test brings its own token (the security suite)
        // or asks for the laptop mode.
        let insecure = opts
            .env
            .iter()
            .any(|(k, v)| k == "WEIR_INSECURE_DEV" && v == "true");
        let own_admin = !has("WEIR_ADMIN_TOKEN") && !insecure;
        if own_admin {
            cmd.env("WEIR_ADMIN_TOKEN", &iso.admin_token);
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
            auth: !insecure,
            nats_url: opts.nats_url.clone(),
        };
        if opts.wait_ready {
            serve.wait_healthy().await;
            if own_admin && opts.create_tenant {
                serve.create_tenant(TENANT).await;
            }
        }
        serve
    }

    /// Creates `tenant` as this test's admin (see [`super::create_tenant`]).
    pub async fn create_tenant(&self, tenant: &str) {
        let nc = super::nats(&self.nats_url).await;
        super::create_tenant(&nc, &self.iso, tenant).await;
    }

    /// `weir -t acme` against this serve, with acme's token, as a user runs it.
    pub fn cli_command(&self) -> std::process::Command {
        let mut cmd = super::bin::weir_in(&self.iso);
        cmd.args(["-t", TENANT])
            .env("WEIR_API_URL", format!("http://{}", self.http));
        if self.auth {
            cmd.env("WEIR_TOKEN", self.iso.token(TENANT));
        }
        cmd
    }

    /// The token a request for `path` carries: the tenant's own for a
    /// tenant's paths (`/v1/tenants/{t}/…`, `/ui/t/{t}…`), the admin's for
    /// the rest (admin routes, the console's front pages, a path whose
    /// tenant is no valid name, so the test sees the API's answer to it).
    pub fn token_for(&self, path: &str) -> Option<String> {
        if !self.auth {
            return None;
        }
        let tenant = ["/v1/tenants/", "/ui/t/"]
            .iter()
            .find_map(|p| path.strip_prefix(p))
            .and_then(|rest| rest.split(['/', '?']).next())
            .filter(|t| weir::domain::Tenant::new(t.to_string()).is_ok());
        Some(match tenant {
            Some(t) => self.iso.token(t),
            None => self.iso.admin_token.clone(),
        })
    }

    /// `path`'s URL with the token as HTTP Basic credentials, for a browser
    /// (which the console asks for them).
    pub fn browser_url(&self, path: &str) -> String {
        match self.token_for(path) {
            Some(t) => format!("http://user:{t}@{}{path}", self.http),
            None => self.url(path),
        }
    }

    /// GET `path`, with the token [`Self::token_for`] picks.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(self.url(path));
        if let Some(t) = self.token_for(path) {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("GET")
    }

    /// Runs `weir -t acme ARGS` against this serve, as a user would, and
    /// returns what it printed (the command must succeed).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command().args(args).output().expect("run weir");
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
        let r = self.get(path).await;
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
