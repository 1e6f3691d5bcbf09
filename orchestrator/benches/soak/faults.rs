//! The faults, their schedule, and how long the jobs take to recover from
//! each without anyone's help.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::system::{Job, Weir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of `weir serve` (orchestrator, API and the embedded worker), restarted at once.
    KillServe,
    /// kill -9 of the `weir worker`, restarted at once.
    KillWorker,
    /// SIGTERM of the broker, started again on the same database.
    RestartBroker,
    /// A fast shutdown of PostgreSQL, started again.
    RestartPostgres,
    /// SIGTERM of nats-server, started again on the same JetStream store.
    RestartNats,
    /// Ten seconds in which the broker's answers are held back (the test proxy).
    StallBroker,
}

impl Fault {
    /// The default order. The broker restart goes last: on tansu 0.6 it
    /// can leave the broker answering nothing (docs/soak.md, results), and
    /// then every later fault would measure that instead of itself.
    pub const ALL: [Fault; 6] = [
        Fault::KillServe,
        Fault::KillWorker,
        Fault::RestartPostgres,
        Fault::RestartNats,
        Fault::StallBroker,
        Fault::RestartBroker,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::KillServe => "serve",
            Fault::KillWorker => "worker",
            Fault::RestartBroker => "broker",
            Fault::RestartPostgres => "postgres",
            Fault::RestartNats => "nats",
            Fault::StallBroker => "stall",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Fault::KillServe => "kill -9 weir serve, restart it",
            Fault::KillWorker => "kill -9 weir worker, restart it",
            Fault::RestartBroker => "restart the broker (tansu)",
            Fault::RestartPostgres => "restart PostgreSQL (fast shutdown)",
            Fault::RestartNats => "restart nats-server",
            Fault::StallBroker => "stall the broker's answers for 10 s",
        }
    }

    pub fn parse_list(s: &str) -> Result<Vec<Fault>> {
        match s.trim() {
            "all" => return Ok(Fault::ALL.to_vec()),
            "none" | "" => return Ok(Vec::new()),
            _ => {}
        }
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Fault::ALL.iter().find(|f| f.name() == name) {
                Some(f) => out.push(*f),
                None => bail!(
                    "unknown fault `{name}`: all, none, or a list of serve,worker,broker,postgres,nats,stall"
                ),
            }
        }
        Ok(out)
    }
}

/// When each fault is due: spread evenly, the last as far from the end as
/// the first is from the start.
pub fn schedule(faults: &[Fault], run: Duration) -> Vec<(Duration, Fault)> {
    let n = faults.len() as u32;
    faults
        .iter()
        .enumerate()
        .map(|(i, f)| (run * (i as u32 + 1) / (n + 1), *f))
        .collect()
}

/// One injected fault and what followed.
#[derive(Debug, Clone)]
pub struct FaultResult {
    pub fault: Fault,
    /// Since the start of the load.
    pub at: Duration,
    /// How long the injection took (the outage itself, e.g. a restart).
    pub injected_for: Duration,
    /// From the end of the injection until every job ran with fresh output.
    pub recovered_in: Option<Duration>,
    /// What the jobs looked like when it gave up (if it did), or notes.
    pub note: String,
}

/// Whether every job is back: phase `running`, every task `running`, and
/// an output of a record produced after `since_ms` read from each sink (for
/// the CEP job, whose matches wait for the watermark, a match that a record
/// produced after `since_ms` released).
pub async fn recovered(
    weir: &Weir,
    newest_ts: impl Fn(Job) -> i64,
    since_ms: i64,
) -> (bool, String) {
    let mut ok = true;
    let mut seen = Vec::new();
    for job in Job::ALL {
        let phase = weir.phase(job).await;
        let (tasks_ok, tasks) = weir.tasks_running(job).await;
        let fresh = newest_ts(job) >= since_ms - job.watermark_lag_ms();
        ok &= phase.as_deref() == Some("running") && tasks_ok && fresh;
        seen.push(format!(
            "{}: phase {}, tasks [{}], {}",
            job.name(),
            phase.as_deref().unwrap_or("(no answer)"),
            tasks,
            if fresh {
                "fresh output"
            } else {
                "no fresh output"
            }
        ));
    }
    (ok, seen.join("; "))
}

/// Polls [`recovered`] until it holds or `timeout` passes.
pub async fn wait_recovered(
    weir: &Weir,
    newest_ts: impl Fn(Job) -> i64,
    since_ms: i64,
    timeout: Duration,
) -> (Option<Duration>, String) {
    let start = Instant::now();
    loop {
        let (ok, seen) = recovered(weir, &newest_ts, since_ms).await;
        if ok {
            return (Some(start.elapsed()), String::new());
        }
        if start.elapsed() > timeout {
            return (None, seen);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
