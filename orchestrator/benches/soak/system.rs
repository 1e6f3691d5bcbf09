//! Weir under test: a `weir serve` (orchestrator, embedded worker, HTTP API)
//! and one `weir worker`, as real processes of the `weir` binary; the
//! topics, the two UDFs and the three jobs, set up as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use weir::client::{self, Request};
use weir::intake::Subjects;

use crate::config::Config;
use crate::procs::{free_port, Daemon};
use crate::services::Services;

pub const TENANT: &str = "soak";
pub const PREFIX: &str = "weir";
pub const SCHEMA: &str = "weir";
pub const WORKER_ID: &str = "soak-w1";
pub const INPUT: &str = "soak-in";

/// The CEP job's rule: every three events of a user in a row, in event
/// time, make a match, and the next match starts after its last event. So
/// a user's events fall into consecutive triples, and the check can tell
/// from the input alone which matches must come out: a partial match lost
/// or applied twice across a fault shifts every later triple of that user.
pub const CEP_RULE: &str = r#"name: triples
skip: { strategy: skip_past_last_event }
steps:
  - { name: a, where: "true" }
  - { name: b, where: "true", contiguity: strict }
  - { name: c, where: "true", contiguity: strict }
emit: { a: first(a).n, b: first(b).n, c: first(c).n }
"#;

/// The keyed and CEP jobs' `max_out_of_orderness`.
pub const OUT_OF_ORDERNESS_MS: i64 = 2_000;

/// Where the CEP job writes the records that arrived behind its watermark.
pub const CEP_LATE: &str = "soak-matches-late";

/// The three jobs: name, sink topic, and what their outputs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Map,
    Keyed,
    Cep,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Map, Job::Keyed, Job::Cep];

    pub fn name(self) -> &'static str {
        match self {
            Job::Map => "upper",
            Job::Keyed => "counts",
            Job::Cep => "matches",
        }
    }

    pub fn sink(self) -> &'static str {
        match self {
            Job::Map => "soak-upper",
            Job::Keyed => "soak-counts",
            Job::Cep => "soak-matches",
        }
    }

    /// Where the sink's `weir-origin` headers point: the input for the
    /// map; the repartition topic for the keyed jobs' second stage.
    pub fn source_topic(self) -> String {
        match self {
            Job::Map => INPUT.into(),
            Job::Keyed | Job::Cep => {
                format!("weir.{TENANT}.{}.by-user.repartition", self.name())
            }
        }
    }

    /// How far behind the newest record a job's outputs' times stay: a
    /// match is written once a record moves the watermark (the newest time
    /// less `max_out_of_orderness` and 1 ms) past the match's last event.
    pub fn watermark_lag_ms(self) -> i64 {
        match self {
            Job::Map | Job::Keyed => 0,
            Job::Cep => OUT_OF_ORDERNESS_MS + 1,
        }
    }

    fn spec(self, cfg: &Config) -> Value {
        match self {
            Job::Map => json!({
                "description": "soak: uppercase every record (WASM map)",
                "sources": [{"topic": INPUT, "format": "raw"}],
                "operators": [{"type": "udf", "id": "upper", "module": "upper@1.0.0", "kind": "map"}],
                "sinks": [{"type": "kafka", "topic": self.sink()}],
                "parallelism": cfg.parallelism,
                "checkpoint": {"interval": "5s"}
            }),
            // running_count registers an event-time timer one second after a
            // key's first record, which emits `total=` and resets the count.
            // Timers fire at the record whose watermark reaches them, the same
            // in a run and in its replay after a crash, so every key's outputs
            // must be counts 1..=n, each run closed by `total=n`.
            Job::Keyed => json!({
                "description": "soak: running count per user (key_by, then a keyed WASM process)",
                "sources": [{"topic": INPUT, "format": "json", "max_out_of_orderness": format!("{OUT_OF_ORDERNESS_MS}ms")}],
                "operators": [
                    {"type": "key_by", "id": "by-user", "field": "user"},
                    {"type": "udf", "id": "count", "module": "count@1.0.0", "kind": "process"}
                ],
                "sinks": [{"type": "kafka", "topic": self.sink()}],
                "parallelism": cfg.parallelism,
                "checkpoint": {"interval": "5s"}
            }),
            // The stock rule component runs the rule in the WASM sandbox
            // (the processes are given it); late records go to a topic, so
            // the check can account for every input.
            Job::Cep => json!({
                "description": "soak: every three events of a user in a row (key_by, then a CEP rule)",
                "sources": [{"topic": INPUT, "format": "json", "max_out_of_orderness": format!("{OUT_OF_ORDERNESS_MS}ms")}],
                "operators": [
                    {"type": "key_by", "id": "by-user", "field": "user"},
                    {"type": "cep", "id": "triples", "rule": CEP_RULE, "late_topic": CEP_LATE}
                ],
                "sinks": [{"type": "kafka", "topic": self.sink()}],
                "parallelism": cfg.parallelism,
                "checkpoint": {"interval": "5s"}
            }),
        }
    }
}

pub struct Weir {
    pub serve: Daemon,
    pub worker: Daemon,
    pub http: String,
    pub nats_url: String,
    pub db_url: String,
    env: Vec<(String, String)>,
    http_client: reqwest::Client,
}

fn weir_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir"))
}

fn command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(weir_bin());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Weir {
    /// `cep_component`: Weir's stock rule component, which both processes
    /// run `cep` operators in.
    pub fn new(svc: &Services, cfg: &Config, cep_component: &Path) -> Result<Weir> {
        let workflows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
        let env: Vec<(String, String)> = [
            ("WEIR_DATABASE_URL", svc.pg_url.clone()),
            ("WEIR_NATS_URL", svc.nats_url()),
            ("WEIR_DB_SCHEMA", SCHEMA.into()),
            ("WEIR_SUBJECT_PREFIX", PREFIX.into()),
            ("WEIR_KAFKA_BROKERS", svc.brokers()),
            ("WEIR_WORKER_TTL", cfg.worker_ttl.clone()),
            ("WEIR_WORKFLOWS_DIR", workflows.display().to_string()),
            ("WEIR_CEP_COMPONENT", cep_component.display().to_string()),
            (
                "WEIR_WASM_CACHE",
                svc.dir.join("wasm-cache").display().to_string(),
            ),
            (
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,weir=info".into()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let http = format!("127.0.0.1:{}", free_port()?);
        // The CLI's verbs (module uploads) go through this serve's API.
        let mut env = env;
        env.push(("WEIR_API_URL".into(), format!("http://{http}")));
        let serve_env = env.clone();
        let addr = http.clone();
        let serve = Daemon::new("weir-serve", &svc.logs, move || {
            let mut cmd = command(&serve_env);
            cmd.arg("serve")
                .env("WEIR_RUNTIME", "embedded")
                .env("WEIR_HTTP_ADDR", &addr)
                // Stable, as the docs ask: a restarted replica resumes its own
                // workflow steps at once instead of waiting out their leases.
                .env("WEIR_REPLICA_ID", "soak-serve")
                // The soak measures the data plane under faults, not authentication.
                .env("WEIR_INSECURE_DEV", "true");
            cmd
        });
        let worker_env = env.clone();
        let worker = Daemon::new("weir-worker", &svc.logs, move || {
            let mut cmd = command(&worker_env);
            cmd.args(["worker", "--worker-id", WORKER_ID]);
            cmd
        });
        Ok(Weir {
            serve,
            worker,
            http,
            nats_url: svc.nats_url(),
            db_url: svc.pg_url.clone(),
            env,
            http_client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    /// GET on the API: (status, body), or None when it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, Value)> {
        let r = self
            .http_client
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while self.get("/healthz").await.map(|(c, _)| c) != Some(200) {
            if start.elapsed() > timeout {
                bail!("weir serve did not answer /healthz within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// Waits until the worker heartbeats, so placement sees it.
    pub async fn wait_worker_live(&self, timeout: Duration) -> Result<()> {
        let nc = async_nats::connect(&self.nats_url).await?;
        let js = async_nats::jetstream::new(nc);
        let start = Instant::now();
        loop {
            if let Ok(kv) = js.get_key_value(format!("{PREFIX}-workers")).await {
                if let Ok(Some(_)) = kv.get(WORKER_ID).await {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                bail!("weir worker {WORKER_ID} did not heartbeat within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `phase` of a job, `None` when the API does not answer.
    pub async fn phase(&self, job: Job) -> Option<String> {
        let (code, v) = self
            .get(&format!("/v1/tenants/{TENANT}/jobs/{}", job.name()))
            .await?;
        (code == 200).then(|| v["phase"].as_str().unwrap_or("?").to_owned())
    }

    /// Whether every task of the job's deployment reports `running`, with
    /// a short description of what it reports otherwise.
    pub async fn tasks_running(&self, job: Job) -> (bool, String) {
        let Some((code, v)) = self
            .get(&format!("/v1/tenants/{TENANT}/jobs/{}/runtime", job.name()))
            .await
        else {
            return (false, "the API does not answer".into());
        };
        if code != 200 {
            return (false, format!("runtime status {code}: {v}"));
        }
        let tasks = v["tasks"].as_array().cloned().unwrap_or_default();
        let states: Vec<String> = tasks.iter().map(task_state).collect();
        let ok = !tasks.is_empty() && states.iter().all(|s| s == "running");
        (ok, states.join(","))
    }

    /// Creates the topics, uploads the UDFs and deploys the jobs.
    pub async fn setup(&self, svc: &Services, cfg: &Config) -> Result<()> {
        create_topics(
            &svc.brokers(),
            &[
                (INPUT, cfg.partitions),
                (Job::Map.sink(), cfg.partitions),
                (Job::Keyed.sink(), cfg.partitions),
                (Job::Cep.sink(), cfg.partitions),
                (CEP_LATE, cfg.partitions),
            ],
        )
        .await?;
        for (name, example) in [("upper", "uppercase"), ("count", "running_count")] {
            let wasm = svc.dir.join(format!("{example}.wasm"));
            std::fs::write(&wasm, crate::guests::guest(example))?;
            let out = command(&self.env)
                .args(["-t", TENANT, "udf", "upload", name])
                .arg(&wasm)
                .args(["--version", "1.0.0"])
                .output()
                .context("running weir udf upload")?;
            if !out.status.success() {
                bail!(
                    "weir udf upload {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let nc = client::connect(&self.nats_url, None).await?;
        for job in Job::ALL {
            for (kind, payload) in [
                ("job.create", json!({ "spec": job.spec(cfg) })),
                ("job.deploy", json!({})),
            ] {
                let outcome = client::send(
                    &nc,
                    &Subjects::new(PREFIX),
                    Request {
                        tenant: TENANT.into(),
                        kind: kind.into(),
                        target: job.name().into(),
                        payload,
                        expected_version: None,
                        actor: "soak".into(),
                    },
                    Duration::from_secs(30),
                    false,
                )
                .await
                .map_err(|e| anyhow!("{kind} {}: {e}", job.name()))?;
                if !outcome.is_accepted() {
                    bail!(
                        "{kind} {} was rejected: {:?}",
                        job.name(),
                        outcome.rejection
                    );
                }
            }
            // One at a time, so placement spreads them: each goes to the
            // less loaded of `serve` and the worker.
            let start = Instant::now();
            loop {
                let phase = self.phase(job).await;
                if phase.as_deref() == Some("running") {
                    break;
                }
                if phase.as_deref() == Some("failed") || start.elapsed() > Duration::from_secs(120)
                {
                    bail!(
                        "job {} did not reach `running` (phase {phase:?})",
                        job.name()
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }

    /// Which worker each job is placed on, and its epoch.
    pub async fn placements(&self) -> Result<Vec<(String, String, i64, String)>> {
        let pool = weir::store::postgres::pool(&self.db_url, SCHEMA, 1).await?;
        let rows = sqlx::query_as(
            "SELECT job, worker, epoch, desired FROM runtime_placements WHERE tenant = $1 ORDER BY job",
        )
        .bind(TENANT)
        .fetch_all(&pool)
        .await?;
        pool.close().await;
        Ok(rows)
    }
}

/// A task's state as the status JSON spells it (`{"state": "running"}`).
fn task_state(t: &Value) -> String {
    let s = &t["state"];
    s["state"]
        .as_str()
        .or_else(|| s.as_str())
        .unwrap_or("?")
        .to_owned()
}

async fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(new.iter(), &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}
