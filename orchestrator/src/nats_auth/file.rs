//! Keeps nats-server's users in step with the tenants: rewrites the
//! `authorization` include when the tenants change and sends the server
//! SIGHUP, on which nats-server reloads its users and permissions and
//! closes the connections of users that no longer log in.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::users::{logins, render, user_of_token, without_login, Login};
use crate::intake::Subjects;
use crate::store::StoreError;

/// bcrypt's work factor for the admin's password: nats-server checks it on
/// every connect, so no higher than needed for a 32-character secret.
const ADMIN_COST: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum NatsAuthError {
    #[error("cannot read the tenants: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write the NATS users to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot hash the admin token for NATS: {0}")]
    Hash(#[from] bcrypt::BcryptError),
}

/// The include file and what is in it.
pub struct AuthFile {
    path: PathBuf,
    pid_file: Option<PathBuf>,
    subjects: Subjects,
    service: Login,
    written: Option<String>,
}

impl AuthFile {
    /// Weir's services and the admin log in with `admin_token`.
    pub fn new(
        path: PathBuf,
        pid_file: Option<PathBuf>,
        subjects: Subjects,
        admin_token: &str,
    ) -> Result<Self, NatsAuthError> {
        let service = Login {
            user: user_of_token(admin_token),
            password_bcrypt: bcrypt::hash(admin_token, ADMIN_COST)?,
            permissions: None,
            owner: "Weir's services and the admin".into(),
        };
        Ok(Self {
            path,
            pid_file,
            subjects,
            service,
            written: None,
        })
    }

    /// Writes the file if the tenants' users changed since the last write,
    /// then asks the server to reload. Returns whether it wrote.
    pub async fn sync(&mut self, pool: &PgPool) -> Result<bool, NatsAuthError> {
        let tenants = crate::store::postgres::tenant_states(pool).await?;
        let text = render(&logins(&self.subjects, self.service.clone(), &tenants));
        if self.written.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let missing = without_login(&tenants);
        if !missing.is_empty() {
            tracing::warn!(tenants = ?missing, "these tenants have no NATS user (no bcrypt of their token was sent); `weir tenant rotate-token` gives them one");
        }
        self.write(&text).await?;
        self.written = Some(text);
        self.reload().await;
        Ok(true)
    }

    /// Atomically: a reader (nats-server reloading) sees the old file or the new.
    async fn write(&self, text: &str) -> Result<(), NatsAuthError> {
        let err = |source| NatsAuthError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        tokio::fs::write(&tmp, text).await.map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .await
                .map_err(err)?;
        }
        tokio::fs::rename(&tmp, &self.path).await.map_err(err)
    }

    /// SIGHUP to the pid in the pid file; a server not running yet reads
    /// the file when it starts, so a missing pid is only logged.
    async fn reload(&self) {
        let Some(pid_file) = &self.pid_file else {
            return;
        };
        let pid = match tokio::fs::read_to_string(pid_file).await {
            Ok(p) => p.trim().to_owned(),
            Err(e) => {
                tracing::warn!(pid_file = %pid_file.display(), error = %e, "NATS users written; nats-server not reloaded (no pid)");
                return;
            }
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            tracing::warn!(pid_file = %pid_file.display(), "NATS users written; the pid file holds no pid");
            return;
        }
        match tokio::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
        {
            Ok(s) if s.success() => {
                tracing::info!(pid, "NATS users written; nats-server reloading")
            }
            Ok(s) => {
                tracing::warn!(pid, status = %s, "NATS users written; signalling nats-server failed")
            }
            Err(e) => tracing::warn!(pid, error = %e, "NATS users written; cannot run kill"),
        }
    }
}

/// Rewrites the file on every tenant event and every `every` (events can
/// be missed while NATS is down), until `shutdown`.
pub async fn watch(
    mut file: AuthFile,
    pool: PgPool,
    nats: async_nats::Client,
    every: Duration,
    shutdown: CancellationToken,
) {
    let subject = file.subjects.event("*", "tenant.*");
    let mut events = match nats.subscribe(subject).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow tenant events; NATS users are rewritten on the timer only");
            None
        }
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            Some(_) = async {
                match events.as_mut() {
                    Some(e) => e.next().await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        if let Err(e) = file.sync(&pool).await {
            tracing::warn!(error = %e, "NATS users not rewritten");
        }
    }
}
