//! A workflow test rig: a PostgreSQL schema of its own, the simulated
//! runtime, in-process engine replicas, and helpers to send job commands and
//! read runs, job state and simulated side effects.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use serde_json::{json, Value};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use weir::domain::envelope::ParsedCommand;
use weir::domain::job::JobState;
use weir::domain::workflow::{RunState, RunStatus};
use weir::domain::{Command, Outcome, StreamId, Tenant};
use weir::lifecycle::{CommandHandler, Incoming};
use weir::registry::{FetchedModule, StaticModules};
use weir::store::postgres::PgStore;
use weir::store::EventStore;
use weir::workflow::activities::Activities;
use weir::workflow::clock::{Clock, ManualClock, SystemClock};
use weir::workflow::sim::SimControl;
use weir::workflow::{Catalog, Engine, EngineConfig};

use super::{eventually, unique, DATABASE_URL};

pub const TENANT: &str = "acme";

pub struct Rig {
    pub schema: String,
    pub store: Arc<PgStore>,
    pub handler: CommandHandler<PgStore>,
    pub sim: SimControl,
    pub modules: Arc<StaticModules>,
    pub engines: Vec<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// Engine time (and the time commands are issued at): the wall clock
    /// unless a test takes control with [`Rig::manual_clock`].
    pub clock: Arc<dyn Clock>,
    /// How often engines spawned from now on start autotune runs (never by default).
    pub autotune_every: Option<Duration>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for (stop, _) in &self.engines {
            stop.cancel();
        }
    }
}

/// A job spec whose checkpoints come every 100 ms, so stability is quick to reach.
pub fn fast_spec(parallelism: u32, operators: Value) -> Value {
    json!({
        "sources": [{"topic": "acme.in"}],
        "operators": operators,
        "sinks": [{"type": "kafka", "topic": "acme.out"}],
        "parallelism": parallelism,
        "checkpoint": {"interval_ms": 100}
    })
}

impl Rig {
    pub async fn new() -> Rig {
        Self::in_schema(unique("t")).await
    }

    pub async fn in_schema(schema: String) -> Rig {
        let store = Arc::new(
            PgStore::connect(DATABASE_URL, &schema)
                .await
                .expect("PostgreSQL must be running"),
        );
        let sim = SimControl::new(store.pool().clone())
            .await
            .expect("sim tables");
        Rig {
            schema,
            handler: CommandHandler::new(store.clone()),
            store,
            sim,
            modules: Arc::new(StaticModules::new()),
            engines: Vec::new(),
            clock: Arc::new(SystemClock),
            autotune_every: None,
        }
    }

    /// Engines spawned from now on, and commands, read a clock that moves
    /// only when the test advances it. It starts at the current time (to the
    /// millisecond, which PostgreSQL timestamps hold exactly).
    pub fn manual_clock(&mut self) -> Arc<ManualClock> {
        let clock = Arc::new(ManualClock::new(Utc::now().trunc_subsecs(3)));
        self.clock = clock.clone();
        clock
    }

    pub fn engine(&self, owner: &str, dir: Option<PathBuf>) -> Arc<Engine<PgStore, SimControl>> {
        let activities = Activities {
            handler: self.handler.clone(),
            control: Arc::new(self.sim.clone()),
            modules: self.modules.clone(),
            http: reqwest::Client::new(),
            notifier: weir::workflow::activities::Notifier::new(true, None, "weir"),
            clock: self.clock.clone(),
            tuner: weir::autotune::TunerStore::new(self.store.pool().clone()),
            tenancy: false,
            secrets: weir::secrets::SecretStore::new(self.store.pool().clone(), None),
        };
        let mut cfg = EngineConfig::new(owner);
        cfg.poll = Duration::from_millis(50);
        cfg.crash = None;
        cfg.autotune_every = self.autotune_every;
        Arc::new(Engine::new(activities, Catalog::new(dir), cfg))
    }

    /// Runs an engine replica until the rig is dropped.
    pub fn spawn_engine(&mut self, owner: &str, dir: Option<PathBuf>) {
        let engine = self.engine(owner, dir);
        let stop = CancellationToken::new();
        let handle = tokio::spawn(engine.run(stop.clone()));
        self.engines.push((stop, handle));
    }

    /// Stops every engine replica of the rig and waits for them to end.
    pub async fn stop_engines(&mut self) {
        for (stop, handle) in self.engines.drain(..) {
            stop.cancel();
            let _ = handle.await;
        }
    }

    pub fn module(
        &self,
        name: &str,
        version: &str,
        kind: weir::domain::job::spec::UdfKind,
        state_schema: Option<Value>,
    ) {
        self.modules.insert(
            TENANT,
            FetchedModule {
                name: name.into(),
                version: version.into(),
                digest: format!("sha256:{name}-{version}"),
                size: 0,
                interface: weir::wasm::GUEST_EXPORT.into(),
                kind,
                state_schema,
            },
        );
    }

    /// Sends a command (job or workflow) through the command handler.
    pub async fn command(&self, kind: &str, target: &str, payload: Value) -> Outcome {
        let command = Command::parse(kind, payload).expect("valid command");
        let stream: StreamId = command.stream(target).expect("valid target");
        let cmd = ParsedCommand {
            id: Uuid::now_v7(),
            tenant: Tenant::new(TENANT).unwrap(),
            target: target.into(),
            stream,
            expected_version: None,
            actor: "test".into(),
            issued_at: self.clock.now(),
            command,
        };
        self.handler
            .handle(&[Incoming::Parsed(cmd)], self.clock.now())
            .await
            .expect("store")
            .remove(0)
    }

    pub async fn ok(&self, kind: &str, target: &str, payload: Value) {
        let o = self.command(kind, target, payload).await;
        assert!(o.is_accepted(), "{kind} {target}: {:?}", o.rejection);
    }

    pub async fn job(&self, job: &str) -> JobState {
        weir::workflow::activities::job_state(self.store.as_ref(), TENANT, job)
            .await
            .expect("job")
            .1
    }

    pub async fn job_events(&self, job: &str) -> Vec<String> {
        self.store
            .read_stream(TENANT, &StreamId::new("job", job), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    pub async fn runs(&self) -> Vec<(String, RunState)> {
        self.store
            .list_streams(TENANT, "run")
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let id = r
                    .stream
                    .strip_prefix("run.")
                    .unwrap_or(&r.stream)
                    .to_owned();
                (
                    id,
                    serde_json::from_value(r.snapshot.unwrap_or_default()).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Waits for a run of `workflow` for `job` to reach a state other than running.
    pub async fn settled_run(
        &self,
        job: &str,
        workflow: &str,
        nth: usize,
        timeout: Duration,
    ) -> (String, RunState) {
        eventually(
            timeout,
            &format!("{workflow} run #{nth} of {job} to settle"),
            || async {
                let mut runs: Vec<_> = self
                    .runs()
                    .await
                    .into_iter()
                    .filter(|(_, r)| r.job.as_deref() == Some(job) && r.workflow == workflow)
                    .collect();
                runs.sort_by_key(|(_, r)| r.started_at);
                runs.get(nth)
                    .filter(|(_, r)| r.status != RunStatus::Running)
                    .cloned()
            },
        )
        .await
    }

    pub async fn run_events(&self, run_id: &str) -> Vec<weir::store::StoredEvent> {
        self.store
            .read_stream(TENANT, &StreamId::new("run", run_id), 0)
            .await
            .unwrap()
    }

    /// Side effects the simulated runtime recorded: (op, generation, detail).
    pub async fn effects(&self, job: &str) -> Vec<(String, i64, Value)> {
        sqlx::query("SELECT op, generation, detail FROM sim_effects WHERE tenant = $1 AND job = $2 ORDER BY at, op")
            .bind(TENANT)
            .bind(job)
            .fetch_all(self.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("op"), r.get("generation"), r.get("detail")))
            .collect()
    }

    /// Calls the simulated runtime received: (op, generation) → count.
    pub async fn calls(&self, job: &str) -> Vec<(String, i64, i64)> {
        sqlx::query("SELECT op, generation, count(*) AS n FROM sim_calls WHERE tenant = $1 AND job = $2 GROUP BY op, generation ORDER BY generation, op")
            .bind(TENANT)
            .bind(job)
            .fetch_all(self.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("op"), r.get("generation"), r.get("n")))
            .collect()
    }

    /// Waits until the job's last stable version is `version` under `generation`.
    pub async fn stable(
        &self,
        job: &str,
        version: u32,
        generation: u64,
        timeout: Duration,
    ) -> JobState {
        eventually(
            timeout,
            &format!("{job} v{version} gen {generation} stable"),
            || async {
                let s = self.job(job).await;
                let d = s.deployment.as_ref()?;
                (s.last_stable_version == Some(version)
                    && d.generation == generation
                    && d.version == version
                    && s.phase == weir::domain::job::Phase::Running)
                    .then_some(s)
            },
        )
        .await
    }
}
