//! Long-running child processes the soak owns (PostgreSQL, NATS, tansu,
//! `weir serve`, `weir worker`): started, signalled and restarted by pid,
//! each logging to one file that restarts append to.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tokio::process::Child;

/// A child process that can be stopped and started again with the same command.
pub struct Daemon {
    pub name: String,
    make: Box<dyn Fn() -> Command + Send + Sync>,
    child: Option<Child>,
    pub log: PathBuf,
    pub starts: u32,
}

impl Daemon {
    pub fn new(
        name: &str,
        logs: &Path,
        make: impl Fn() -> Command + Send + Sync + 'static,
    ) -> Daemon {
        Daemon {
            name: name.to_owned(),
            make: Box::new(make),
            child: None,
            log: logs.join(format!("{name}.log")),
            starts: 0,
        }
    }

    pub fn start(&mut self) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        self.starts += 1;
        writeln!(
            log,
            "--- soak: start #{} of {} at {}",
            self.starts,
            self.name,
            chrono::Utc::now().to_rfc3339()
        )?;
        let mut cmd = (self.make)();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let mut cmd = tokio::process::Command::from(cmd);
        // If the soak itself dies, nothing it started outlives it.
        cmd.kill_on_drop(true);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("starting {} (see {})", self.name, self.log.display()))?,
        );
        Ok(())
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) and waits up to `grace` for
    /// the exit; SIGKILL after that.
    pub async fn stop(&mut self, signal: &str, grace: Duration) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let sent = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .context("running kill")?;
            if !sent.success() {
                return Err(anyhow!("kill -{signal} {pid} ({}) failed", self.name));
            }
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            child.kill().await.ok();
        }
        Ok(())
    }

    /// kill -9, then wait for the exit.
    pub async fn kill(&mut self) -> Result<()> {
        self.stop("KILL", Duration::from_secs(10)).await
    }

    /// Whether the process has exited by itself (`Some(status)`).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Err(e)) => Some(e.to_string()),
            None => Some("not started".into()),
            Some(Ok(None)) => None,
        }
    }
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub async fn wait_port(port: u16, what: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if start.elapsed() > timeout {
            return Err(anyhow!(
                "{what} did not open 127.0.0.1:{port} within {timeout:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
