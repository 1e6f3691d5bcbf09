//! A `weir serve` inside a bench process, on its own PostgreSQL schema and
//! NATS subject prefix (`tag`), with no workflow engine.

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weir::cli::serve::{serve, ServeArgs};
use weir::config::Connections;

pub const DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const NATS: &str = "nats://127.0.0.1:4222";

pub struct Embedded {
    /// Schema and subject prefix, unique to this run.
    pub tag: String,
    /// Where its HTTP API answers.
    pub base: String,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

impl Embedded {
    /// Starts serving (it is ready once its streams exist; callers wait for
    /// what they need). `tag` starts with `prefix`.
    pub fn start(prefix: &str, accept_internal_commands: bool) -> Self {
        Self::start_with(
            prefix,
            accept_internal_commands,
            weir::cli::serve::AccessArgs {
                insecure_dev: true,
                ..Default::default()
            },
        )
    }

    /// As [`start`](Self::start), with the given authentication.
    pub fn start_with(
        prefix: &str,
        accept_internal_commands: bool,
        access: weir::cli::serve::AccessArgs,
    ) -> Self {
        let tag = format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..8]);
        let conn = Connections {
            nats_url: NATS.into(),
            database_url: DB.into(),
            db_schema: tag.clone(),
            subject_prefix: tag.clone(),
            api_url: String::new(),
            kafka_brokers: "127.0.0.1:9092".into(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let args = ServeArgs {
            http_addr: format!("127.0.0.1:{port}").parse().expect("addr"),
            workflows: weir::cli::wiring::EngineArgs::disabled(),
            accept_internal_commands,
            access,
            nats_users: Default::default(),
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn({
            let s = shutdown.clone();
            async move {
                if let Err(e) = serve(&conn, &args, s).await {
                    eprintln!("weir serve ended: {e}");
                }
            }
        });
        Self {
            tag,
            base: format!("http://127.0.0.1:{port}"),
            shutdown,
            server,
        }
    }

    /// Stops serving and drops the run's schema.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        if let Ok(pool) = weir::store::postgres::pool(DB, "public", 1).await {
            let _ = sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.tag))
                .execute(&pool)
                .await;
        }
    }
}
