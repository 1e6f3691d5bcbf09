//! The `weir` binary under test. Every test that runs it starts here: the
//! `it` target belongs to the `weir` package, so Cargo builds the binary
//! (with the same features) and names it in `CARGO_BIN_EXE_weir`.

use std::process::{Command, Stdio};

use super::{Isolation, DATABASE_URL, NATS_URL};

/// `weir`, with nothing set: the CLI as a user with defaults runs it.
pub fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// `weir` on `iso`'s PostgreSQL schema and NATS subject prefix, on the
/// shared services.
pub fn weir_in(iso: &Isolation) -> Command {
    let mut cmd = weir();
    cmd.env("WEIR_DATABASE_URL", DATABASE_URL)
        .env("WEIR_NATS_URL", NATS_URL)
        .env("WEIR_DB_SCHEMA", &iso.schema)
        .env("WEIR_SUBJECT_PREFIX", &iso.prefix);
    cmd
}

/// A long-running `weir` (serve, worker) as a child the test owns: killed
/// (SIGKILL) when dropped, logging at `RUST_LOG` (default `warn`) to
/// `<tmp>/<prefix>-<name>.log`. Inherited, the logs of every process of a
/// failing run would drown the test's own report in the suite's output.
pub fn daemon(mut cmd: Command, iso: &Isolation, name: &str) -> tokio::process::Command {
    let log = std::env::temp_dir().join(format!("{}-{name}.log", iso.prefix));
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    )
    .stdin(Stdio::null())
    .stderr(
        std::fs::File::create(log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::inherit()),
    );
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd
}
