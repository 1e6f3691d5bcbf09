//! A private nats-server whose users `weir serve` writes
//! (`--nats-users-file`): the shared server on 4222 has no users, so tests
//! of NATS permissions run their own. Killed on drop.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct NatsServer {
    pub url: String,
    /// The users file `weir serve` writes and the server includes.
    pub users_file: PathBuf,
    pub pid_file: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Paths and a port, not started yet: the server needs the users file,
    /// which `weir serve` writes first.
    pub fn prepare() -> NatsServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = super::serve::free_port();
        NatsServer {
            url: format!("nats://127.0.0.1:{port}"),
            users_file: dir.path().join("users.conf"),
            pid_file: dir.path().join("nats.pid"),
            dir,
            child: None,
        }
    }

    /// Starts the server once the users file exists.
    pub async fn start(&mut self) {
        super::eventually(Duration::from_secs(30), "the NATS users file", || async {
            self.users_file.exists().then_some(())
        })
        .await;
        let port = self.url.rsplit(':').next().expect("a port");
        let conf = self.dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\npid_file: {:?}\njetstream {{ store_dir: {:?} }}\ninclude users.conf\n",
                self.pid_file,
                self.dir.path().join("js"),
            ),
        )
        .expect("write nats.conf");
        let log = std::fs::File::create(self.dir.path().join("nats.log")).expect("nats.log");
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server must be installed (Debian's nats-server)");
        self.child = Some(child);
        let url = self.url.clone();
        super::eventually(Duration::from_secs(20), "the private nats-server", || {
            let url = url.clone();
            async move {
                tokio::net::TcpStream::connect(url.trim_start_matches("nats://"))
                    .await
                    .ok()
            }
        })
        .await;
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}
