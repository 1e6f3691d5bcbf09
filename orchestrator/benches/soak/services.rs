//! The soak's own PostgreSQL, NATS (JetStream) and tansu (sqlite engine,
//! behind the test proxy), on free ports under one directory.
//!
//! They are private because the soak restarts them: restarting the shared
//! servers would break every other test and session using them, and this
//! way every restart signals a process the soak started, by its pid. They
//! are the same binaries `scripts/services.sh` runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::procs::{free_port, wait_port, Daemon};
use crate::proxy::Proxy;

pub struct Services {
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub pg: Daemon,
    pub pg_url: String,
    pub nats: Daemon,
    pub nats_port: u16,
    pub broker: Daemon,
    pub broker_port: u16,
    pub proxy: Proxy,
}

/// The highest installed PostgreSQL's `bin` directory.
fn pg_bin() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("WEIR_SOAK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL is not installed under /usr/lib/postgresql (scripts/services.sh postgres)",
        )?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| anyhow!("no PostgreSQL version under /usr/lib/postgresql"))
}

/// PostgreSQL refuses to run as root: as root, run it as `postgres`.
fn as_postgres(program: &Path) -> Result<Command> {
    if !is_root() {
        return Ok(Command::new(program));
    }
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
    ])
    .arg(program);
    Ok(cmd)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn id_of(flag: &str) -> Result<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| anyhow!("no `postgres` user to run PostgreSQL as"))
}

fn tansu_bin() -> String {
    std::env::var("HOME")
        .ok()
        .into_iter()
        .flat_map(|h| {
            [
                format!("{h}/.local/share/weir/bin/tansu"),
                format!("{h}/.cargo/bin/tansu"),
            ]
        })
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| "tansu".into())
}

impl Services {
    pub async fn start(dir: &Path) -> Result<Services> {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;

        // PostgreSQL: a fresh cluster, trust auth, as the packaged server runs.
        let bin = pg_bin()?;
        let data = dir.join("pg");
        std::fs::create_dir_all(&data)?;
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
            std::os::unix::fs::chown(&data, Some(id_of("-u")?), Some(id_of("-g")?))?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        }
        let init = as_postgres(&bin.join("initdb"))?
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .context("running initdb")?;
        if !init.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        let pg_port = free_port()?;
        let (pg_bin_path, pg_data) = (bin.join("postgres"), data.clone());
        let mut pg = Daemon::new("postgres", &logs, move || {
            let mut cmd = as_postgres(&pg_bin_path).unwrap_or_else(|_| Command::new("false"));
            cmd.arg("-D")
                .arg(&pg_data)
                .args(["-p", &pg_port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", pg_data.display()))
                .args(["-c", "max_connections=200"]);
            cmd
        });
        pg.start()?;
        let pg_url = format!("postgres://postgres@127.0.0.1:{pg_port}/postgres");
        wait_postgres(&pg_url, Duration::from_secs(60)).await?;

        // NATS with JetStream, file storage.
        let nats_port = free_port()?;
        let store = dir.join("nats");
        let nats_bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nats-server");
        let mut nats = Daemon::new("nats", &logs, move || {
            let mut cmd = Command::new(nats_bin);
            cmd.args([
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store);
            cmd
        });
        nats.start()?;
        wait_port(nats_port, "nats-server", Duration::from_secs(30)).await?;

        // tansu with the sqlite engine, advertising the proxy, so every
        // connection a client makes after bootstrap goes through it.
        let broker_port = free_port()?;
        let proxy = Proxy::start(&format!("127.0.0.1:{broker_port}")).await;
        let tansu_dir = dir.join("tansu");
        std::fs::create_dir_all(&tansu_dir)?;
        let advertised = proxy.port;
        let tansu = tansu_bin();
        let mut broker = Daemon::new("tansu", &logs, move || {
            let mut cmd = Command::new(&tansu);
            cmd.current_dir(&tansu_dir)
                .arg("broker")
                .arg(format!("--listener-url=tcp://127.0.0.1:{broker_port}"))
                .arg(format!(
                    "--advertised-listener-url=tcp://127.0.0.1:{advertised}"
                ))
                // Relative: tansu prefixes the working directory.
                .arg("--storage-engine=sqlite://tansu.db");
            cmd
        });
        broker.start()?;
        wait_port(broker_port, "tansu", Duration::from_secs(30)).await?;

        Ok(Services {
            dir: dir.to_owned(),
            logs,
            pg,
            pg_url,
            nats,
            nats_port,
            broker,
            broker_port,
            proxy,
        })
    }

    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.nats_port)
    }

    /// What clients bootstrap from: the proxy.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.proxy.port)
    }

    /// `pg_ctl restart -m fast`: SIGINT (active transactions abort, clients
    /// are disconnected), then start again on the same data.
    pub async fn restart_postgres(&mut self) -> Result<()> {
        self.pg.stop("INT", Duration::from_secs(30)).await?;
        self.pg.start()?;
        wait_postgres(&self.pg_url, Duration::from_secs(60)).await
    }

    /// SIGTERM (nats-server's clean shutdown), then start on the same store.
    pub async fn restart_nats(&mut self) -> Result<()> {
        self.nats.stop("TERM", Duration::from_secs(30)).await?;
        self.nats.start()?;
        wait_port(self.nats_port, "nats-server", Duration::from_secs(30)).await
    }

    /// SIGTERM the broker, then start it on the same database.
    pub async fn restart_broker(&mut self) -> Result<()> {
        self.broker.stop("TERM", Duration::from_secs(15)).await?;
        self.broker.start()?;
        wait_port(self.broker_port, "tansu", Duration::from_secs(30)).await
    }

    pub async fn stop(&mut self) {
        self.broker.stop("TERM", Duration::from_secs(10)).await.ok();
        self.nats.stop("TERM", Duration::from_secs(10)).await.ok();
        self.pg.stop("INT", Duration::from_secs(30)).await.ok();
    }
}

/// Waits until PostgreSQL accepts queries (it refuses them while starting).
async fn wait_postgres(url: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let tried = async {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(2))
                .connect(url)
                .await?;
            sqlx::query("SELECT 1").execute(&pool).await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match tried {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > timeout => {
                bail!("PostgreSQL at {url} did not accept queries within {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
