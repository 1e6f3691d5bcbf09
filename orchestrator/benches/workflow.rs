//! Workflow engine benchmark against PostgreSQL (the simulated data plane).
//!
//! Prints:
//! - **steps/s**: runs of a 20-step workflow (`job_info` steps: a claim, a
//!   read and a report each), 50 at once, on one engine replica and on two;
//! - **deploy latency**: `job.deploy` committed → job `running` and → job
//!   `stable` with the shipped deploy.yaml (compile included; stability needs
//!   3 checkpoints at a 100 ms interval and 2 s without restarts by design).
//!
//! Run: `cargo bench -p weir --features test-util --bench workflow`
//! (PostgreSQL must be up; the simulated data plane is a test double). The
//! figures depend heavily on PostgreSQL's commit latency: each step is two
//! commits (claim, report), group-committed across concurrent runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weir::domain::envelope::ParsedCommand;
use weir::domain::job::Phase;
use weir::domain::workflow::{RunState, RunStatus};
use weir::domain::{Command, Tenant};
use weir::lifecycle::{CommandHandler, Incoming};
use weir::registry::StaticModules;
use weir::store::postgres::PgStore;
use weir::store::EventStore;
use weir::workflow::activities::{job_state, Activities};
use weir::workflow::clock::SystemClock;
use weir::workflow::sim::SimControl;
use weir::workflow::{Catalog, Engine, EngineConfig};

const DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TENANT: &str = "bench";
const STEPS: usize = 20;
const RUNS: usize = 50;

struct Bench {
    store: Arc<PgStore>,
    handler: CommandHandler<PgStore>,
    sim: SimControl,
    stops: Vec<CancellationToken>,
}

impl Bench {
    async fn new() -> Bench {
        let schema = format!("wfbench_{}", &Uuid::new_v4().simple().to_string()[..10]);
        let store = Arc::new(
            PgStore::connect(DB, &schema)
                .await
                .expect("PostgreSQL must be up"),
        );
        let sim = SimControl::new(store.pool().clone())
            .await
            .expect("sim tables");
        Bench {
            handler: CommandHandler::new(store.clone()),
            store,
            sim,
            stops: Vec::new(),
        }
    }

    fn spawn(&mut self, owner: &str, dir: Option<std::path::PathBuf>) {
        let activities = Activities {
            handler: self.handler.clone(),
            control: Arc::new(self.sim.clone()),
            modules: Arc::new(StaticModules::new()),
            http: reqwest::Client::new(),
            notifier: weir::workflow::activities::Notifier::new(true, None, "weir"),
            clock: Arc::new(SystemClock),
            tuner: weir::autotune::TunerStore::new(self.store.pool().clone()),
            tenancy: false,
            secrets: weir::secrets::SecretStore::new(self.store.pool().clone(), None),
        };
        let mut cfg = EngineConfig::new(owner);
        cfg.crash = None;
        let engine = Arc::new(Engine::new(activities, Catalog::new(dir), cfg));
        let stop = CancellationToken::new();
        tokio::spawn(engine.run(stop.clone()));
        self.stops.push(stop);
    }

    async fn cmd(&self, kind: &str, target: &str, payload: Value) {
        let command = Command::parse(kind, payload).expect("command");
        let stream = command.stream(target).expect("target");
        let c = ParsedCommand {
            id: Uuid::now_v7(),
            tenant: Tenant::new(TENANT).expect("tenant"),
            target: target.into(),
            stream,
            expected_version: None,
            actor: "bench".into(),
            issued_at: Utc::now(),
            command,
        };
        let o = self
            .handler
            .handle(&[Incoming::Parsed(c)], Utc::now())
            .await
            .expect("store");
        assert!(o[0].is_accepted(), "{kind}: {:?}", o[0].rejection);
    }

    async fn completed_runs(&self) -> usize {
        self.store
            .list_streams(TENANT, "run")
            .await
            .expect("runs")
            .into_iter()
            .filter_map(|r| serde_json::from_value::<RunState>(r.snapshot?).ok())
            .filter(|r| r.status == RunStatus::Completed)
            .count()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for s in &self.stops {
            s.cancel();
        }
    }
}

fn spec() -> Value {
    json!({"sources": [{"topic": "in"}], "sinks": [{"type": "kafka", "topic": "out"}],
           "parallelism": 1, "checkpoint": {"interval_ms": 100}})
}

async fn steps_per_second(runs: usize, replicas: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("name: compile\nsteps:\n");
    for i in 0..STEPS {
        text.push_str(&format!(
            "  - id: s{i}\n    activity: job_info\n    input: {{ job: $.input.job }}\n"
        ));
    }
    std::fs::write(dir.path().join("compile.yaml"), text).expect("write");
    let mut b = Bench::new().await;
    for i in 0..RUNS {
        b.cmd("job.create", &format!("j{i}"), json!({"spec": spec()}))
            .await;
    }
    for r in 0..replicas {
        b.spawn(&format!("r{r}"), Some(dir.path().to_path_buf()));
    }
    let started = Instant::now();
    for i in 0..runs {
        b.cmd("job.compile", &format!("j{i}"), json!({})).await;
    }
    while b.completed_runs().await < runs {
        if started.elapsed() > Duration::from_secs(300) {
            panic!("runs did not complete");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // From the first run's start to the last run's end, as the runs recorded them:
    // the delay before the engine noticed the triggers is not step work.
    let states: Vec<RunState> = b
        .store
        .list_streams(TENANT, "run")
        .await
        .expect("runs")
        .into_iter()
        .filter_map(|r| serde_json::from_value(r.snapshot?).ok())
        .collect();
    let first = states
        .iter()
        .filter_map(|r| r.started_at)
        .min()
        .expect("started");
    let last = states
        .iter()
        .filter_map(|r| r.updated_at)
        .max()
        .expect("ended");
    let secs = ((last - first).num_microseconds().unwrap_or(1) as f64 / 1e6).max(1e-6);
    (runs * STEPS) as f64 / secs
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn deploy_latency(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut b = Bench::new().await;
    b.spawn("r0", None);
    let (mut to_running, mut to_stable) = (Vec::new(), Vec::new());
    for i in 0..n {
        let job = format!("d{i}");
        b.cmd("job.create", &job, json!({"spec": spec()})).await;
        let t0 = Instant::now();
        b.cmd("job.deploy", &job, json!({})).await;
        let mut running = None;
        loop {
            let s = job_state(b.store.as_ref(), TENANT, &job)
                .await
                .expect("job")
                .1;
            if running.is_none() && s.phase == Phase::Running {
                running = Some(t0.elapsed().as_secs_f64() * 1e3);
            }
            if s.last_stable_version == Some(1) {
                to_stable.push(t0.elapsed().as_secs_f64() * 1e3);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        to_running.push(running.unwrap_or_default());
    }
    to_running.sort_by(f64::total_cmp);
    to_stable.sort_by(f64::total_cmp);
    (to_running, to_stable)
}

#[tokio::main]
async fn main() {
    let single = steps_per_second(1, 1).await;
    println!(
        "workflow steps/s, 1 run × {STEPS} steps (sequential), 1 replica: {single:>6.0}  ({:.1} ms per step)",
        1000.0 / single
    );
    let one = steps_per_second(RUNS, 1).await;
    println!("workflow steps/s, {RUNS} runs × {STEPS} steps, 1 replica:  {one:>8.0}");
    let two = steps_per_second(RUNS, 2).await;
    println!("workflow steps/s, {RUNS} runs × {STEPS} steps, 2 replicas: {two:>8.0}");
    let (running, stable) = deploy_latency(10).await;
    println!(
        "deploy latency (deploy.yaml, compile included), command → running: p50 {:>6.0} ms  max {:>6.0} ms",
        pct(&running, 0.5),
        pct(&running, 1.0)
    );
    println!(
        "deploy latency, command → stable (3 checkpoints + 2 s healthy):   p50 {:>6.0} ms  max {:>6.0} ms",
        pct(&stable, 0.5),
        pct(&stable, 1.0)
    );
}
