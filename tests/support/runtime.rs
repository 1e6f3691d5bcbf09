//! A stream runtime rig for the runtime tests: an embedded runtime on its own
//! PostgreSQL schema and job, the broker it reads, and checks on what its
//! sinks hold.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use weir::domain::job::JobSpec;
use weir::runtime::control::{
    DeploymentControl, DeploymentKey, DeploymentRequest, DeploymentStatus, RestoreFrom, TaskState,
};
use weir::runtime::sinks::{Guarantee, SinkGuarantee};
use weir::runtime::{EmbeddedRuntime, ModuleResolver, NativeModules, RuntimeConfig};
use weir::store::postgres::PgStore;

use super::kafka::{self, ReadRecord};
use super::{Isolation, DATABASE_URL};

/// Runtime tests take turns: they each drive the one shared broker hard,
/// and on a 2-core machine running them side by side starves it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes the data-plane tests' turn, for a test that drives the broker and
/// the CPU hard outside a [`Rig`] (a whole `weir serve` under load).
pub async fn heavy_turn() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A runtime on its own schema, plus the names a test uses.
pub struct Rig {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    pub iso: Isolation,
    pub pool: sqlx::PgPool,
    pub runtime: EmbeddedRuntime,
    pub key: DeploymentKey,
    pub brokers: String,
}

pub async fn rig_with(modules: NativeModules, cfg: RuntimeConfig) -> Rig {
    rig_with_resolver(Arc::new(modules), cfg).await
}

pub async fn rig_with_resolver(modules: Arc<dyn ModuleResolver>, cfg: RuntimeConfig) -> Rig {
    rig_on(modules, Isolation::new(), cfg, None).await
}

/// A rig on `iso`; a NATS client enables NATS sinks and metrics reports.
pub async fn rig_on(
    modules: Arc<dyn ModuleResolver>,
    iso: Isolation,
    cfg: RuntimeConfig,
    nats: Option<async_nats::Client>,
) -> Rig {
    // RUST_LOG=weir=info shows restores, replay scans and checkpoints.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let turn = SERIAL.lock().await;
    let store = PgStore::connect(DATABASE_URL, &iso.schema)
        .await
        .expect("PostgreSQL with migrations");
    let pool = store.pool().clone();
    let brokers = cfg.brokers.clone();
    let runtime = EmbeddedRuntime::new(cfg, pool.clone(), modules, nats);
    let key = DeploymentKey {
        tenant: "acme".into(),
        job: super::unique("job"),
    };
    Rig {
        _turn: turn,
        iso,
        pool,
        runtime,
        key,
        brokers,
    }
}

pub async fn rig() -> Rig {
    rig_with(
        NativeModules::builtins(),
        test_config(kafka::runtime_brokers()),
    )
    .await
}

/// Weir's stock CEP rule component, loaded once for every rig that runs
/// `cep` operators in WASM.
pub fn cep_component() -> Arc<weir::wasm::LoadedModule> {
    use std::sync::OnceLock;
    static HOST: OnceLock<weir::wasm::WasmHost> = OnceLock::new();
    let host = HOST.get_or_init(|| {
        weir::wasm::WasmHost::new(weir::wasm::HostConfig::default()).expect("a WASM host")
    });
    let bytes = std::fs::read(super::guests::cep_rule_path()).expect("the rule component");
    host.load("weir-cep-rule", "test", &bytes)
        .expect("the rule component loads")
}

pub fn test_config(brokers: String) -> RuntimeConfig {
    RuntimeConfig {
        brokers,
        // The sink tests post to servers of their own on 127.0.0.1.
        http_sink_allow_private: true,
        restart: weir::runtime::restart::RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl Rig {
    pub async fn start(&self, spec: &str, generation: u64, parallelism: u32, restore: RestoreFrom) {
        let spec = JobSpec::parse(spec).expect("valid spec");
        self.runtime
            .start(DeploymentRequest {
                key: self.key.clone(),
                version: 1,
                generation,
                parallelism,
                spec,
                restore,
                state_limit: None,
            })
            .await
            .expect("deployment starts");
    }

    pub async fn status(&self) -> DeploymentStatus {
        self.runtime.status(&self.key).await.expect("status")
    }

    /// Waits until every task is running again (a task killed after its
    /// last record may still be restoring when its outputs are all in).
    pub async fn wait_all_running(&self, secs: u64) -> DeploymentStatus {
        self.wait_for(secs, "every task running", |st| {
            st.tasks.iter().all(|t| t.state == TaskState::Running)
        })
        .await
    }

    /// Waits until task `task` has restarted from its checkpoint and every
    /// task runs (right after a kill, the task may not show it yet).
    pub async fn wait_restarted(&self, task: u32, secs: u64) -> DeploymentStatus {
        let what = format!("task {task} restarted and every task running");
        self.wait_for(secs, &what, |st| {
            st.tasks.iter().any(|t| t.task == task && t.restarts > 0)
                && st.tasks.iter().all(|t| t.state == TaskState::Running)
        })
        .await
    }

    /// Waits until the tasks have read `n` records in total (or panics after `secs`).
    pub async fn wait_records_in(&self, n: u64, secs: u64) {
        let what = format!("{n} records read");
        self.wait_for(secs, &what, |st| {
            st.tasks.iter().map(|t| t.records_in).sum::<u64>() >= n
        })
        .await;
    }

    /// Polls the status until `done` holds (or panics after `secs`).
    async fn wait_for(
        &self,
        secs: u64,
        what: &str,
        done: impl Fn(&DeploymentStatus) -> bool,
    ) -> DeploymentStatus {
        super::eventually_ok(Duration::from_secs(secs), what, || async {
            let st = self.status().await;
            if done(&st) {
                Ok(st)
            } else {
                Err(st)
            }
        })
        .await
    }
}

/// The guarantee of each sink, as the status states it.
pub fn guarantees(status: &DeploymentStatus) -> Vec<Guarantee> {
    SinkGuarantee::parse_all(&status.guarantee)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|s| s.guarantee)
        .collect()
}

/// `count` JSON records `{"user":"u<i % users>","n":i}`, keyed by user, with
/// each user always on the same partition.
pub fn user_records(
    count: usize,
    users: usize,
    partitions: i32,
    from: usize,
) -> Vec<(i32, String, String)> {
    (from..from + count)
        .map(|i| {
            let u = i % users;
            let user = format!("u{u}");
            (
                (u as i32) % partitions,
                user.clone(),
                serde_json::json!({"user": user, "n": i}).to_string(),
            )
        })
        .collect()
}

/// Reads a topic on a blocking thread until `expected` records arrived and it went quiet.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<ReadRecord> {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || kafka::read_all(&b, &t, partitions, expected))
        .await
        .unwrap()
}

/// Asserts each source position appears exactly once among `outs` (seq 0),
/// and returns them by source position.
pub fn assert_exactly_once(
    outs: &[ReadRecord],
    expected: usize,
) -> BTreeMap<(i32, i64), ReadRecord> {
    let mut by_pos: HashMap<(u64, i32, i64, u32), usize> = HashMap::new();
    let mut out = BTreeMap::new();
    for r in outs {
        let id = r.origin();
        *by_pos.entry(id).or_default() += 1;
        out.insert((id.1, id.2), r.clone());
    }
    let dups: Vec<_> = by_pos.iter().filter(|(_, n)| **n > 1).collect();
    if let Some(((_, p, o, _), _)) = dups.first() {
        let copies: Vec<_> = outs
            .iter()
            .filter(|r| {
                let (_, rp, ro, _) = r.origin();
                (rp, ro) == (*p, *o)
            })
            .map(|r| (r.partition, r.offset))
            .collect();
        panic!(
            "{} outputs were written more than once, e.g. source {p}/{o} at sink (partition, offset) {copies:?}",
            dups.len()
        );
    }
    assert_eq!(
        by_pos.len(),
        expected,
        "distinct outputs (of {} read)",
        outs.len()
    );
    assert_eq!(outs.len(), expected, "outputs on the sink topic");
    out
}
