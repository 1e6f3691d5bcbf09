//! [`EmbeddedRuntime`]: the data plane inside the orchestrator process,
//! implementing [`DeploymentControl`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::broker_watch::{self, SlowBroker};
use super::checkpoint::store::CheckpointStore;
use super::checkpoint::Trigger;
use super::control::{
    CheckpointInfo, DeploymentControl, DeploymentKey, DeploymentRequest, DeploymentStatus,
    RestoreFrom, RuntimeError,
};
use super::deployment::{prepare, Deployment, Launch};
use super::operator::ModuleResolver;
use super::rate_limit::TokenBucket;
use super::restart::RestartPolicy;
use super::task::TaskEnv;

/// Settings of the embedded runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// Records per batch handed to the operators.
    pub max_batch: usize,
    pub restart: RestartPolicy,
    /// Use Kafka transactions for Kafka sinks (Apache Kafka, Redpanda). Off
    /// for tansu, which lacks them: deterministic replay is used instead.
    pub transactional: bool,
    /// NATS subject prefix: metrics go to `<prefix>.metrics.<tenant>.<job>`.
    pub subject_prefix: String,
    /// How often metrics are published on NATS.
    pub metrics_interval: Duration,
    /// How long a sink producer waits for the broker's answer to a produce
    /// request before it resends the batch (the idempotent producer makes
    /// the resend harmless).
    pub producer_request_timeout: Duration,
    /// Let HTTP sinks post to loopback, private and link-local addresses
    /// (off: only public ones; see `sinks::egress`).
    pub http_sink_allow_private: bool,
    /// Opens tenants' secrets for `${secret:NAME}` in HTTP sink headers.
    pub secret_key: Option<crate::secrets::SecretKey>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            max_batch: 1024,
            restart: RestartPolicy::default(),
            transactional: false,
            subject_prefix: "weir".into(),
            metrics_interval: Duration::from_secs(2),
            producer_request_timeout: Duration::from_secs(60),
            http_sink_allow_private: false,
            secret_key: None,
        }
    }
}

/// The stream runtime running in this process.
#[derive(Clone)]
pub struct EmbeddedRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: RuntimeConfig,
    store: CheckpointStore,
    pool: PgPool,
    resolver: Arc<dyn ModuleResolver>,
    nats: Option<async_nats::Client>,
    http: reqwest::Client,
    deployments: Mutex<HashMap<DeploymentKey, Arc<Deployment>>>,
    /// Serialises start/stop per runtime: they are rare and must not interleave.
    lifecycle: tokio::sync::Mutex<()>,
    epoch: Instant,
    slow_broker: SlowBroker,
}

impl EmbeddedRuntime {
    /// `spec` with each `${secret:NAME}` in its HTTP sinks' headers replaced
    /// by the tenant's secret.
    async fn with_secrets(
        &self,
        tenant: &str,
        mut spec: crate::domain::job::JobSpec,
    ) -> Result<crate::domain::job::JobSpec, RuntimeError> {
        use crate::domain::job::spec::SinkSpec;
        use crate::secrets::refs;
        let mut names = std::collections::BTreeSet::new();
        for sink in &spec.sinks {
            if let SinkSpec::Http { headers, .. } = sink {
                for value in headers.values() {
                    let found = refs::names(&serde_json::Value::String(value.clone()))
                        .map_err(|p| RuntimeError::Invalid(p.join("; ")))?;
                    names.extend(found);
                }
            }
        }
        if names.is_empty() {
            return Ok(spec);
        }
        let store = crate::secrets::SecretStore::new(
            self.inner.pool.clone(),
            self.inner.cfg.secret_key.clone(),
        );
        let values = store.values(tenant, &names).await.map_err(|e| match e {
            crate::secrets::SecretError::Unavailable(_) => RuntimeError::Unavailable {
                what: "secret store",
                reason: e.to_string(),
            },
            other => RuntimeError::Invalid(other.to_string()),
        })?;
        for (i, sink) in spec.sinks.iter_mut().enumerate() {
            if let SinkSpec::Http { headers, .. } = sink {
                for (name, value) in headers.iter_mut() {
                    let resolved =
                        refs::substitute(&serde_json::Value::String(value.clone()), &values)
                            .map_err(|_| {
                                RuntimeError::Invalid(format!(
                                "sinks[{i}].headers.{name}: a secret it refers to does not exist"
                            ))
                            })?;
                    if let serde_json::Value::String(v) = resolved {
                        *value = v;
                    }
                }
            }
        }
        Ok(spec)
    }

    /// `pool` must point at the schema where migration 0002 ran; it also
    /// serves PostgreSQL sinks. `nats` enables NATS sinks and metrics.
    pub fn new(
        cfg: RuntimeConfig,
        pool: PgPool,
        resolver: Arc<dyn ModuleResolver>,
        nats: Option<async_nats::Client>,
    ) -> Self {
        let http = super::sinks::egress::client(cfg.http_sink_allow_private);
        Self {
            inner: Arc::new(Inner {
                cfg,
                store: CheckpointStore::new(pool.clone()),
                pool,
                resolver,
                nats,
                http,
                deployments: Mutex::new(HashMap::new()),
                lifecycle: tokio::sync::Mutex::new(()),
                epoch: Instant::now(),
                slow_broker: SlowBroker::default(),
            }),
        }
    }

    /// One metadata round trip to the broker; a slow one is logged once
    /// per slow spell. The error says the broker is unreachable.
    pub async fn probe_broker(&self) -> Result<std::time::Duration, RuntimeError> {
        let rtt = broker_watch::probe(&self.inner.cfg.brokers).await?;
        self.inner.slow_broker.report(&self.inner.cfg.brokers, rtt);
        Ok(rtt)
    }

    fn get(&self, key: &DeploymentKey) -> Result<Arc<Deployment>, RuntimeError> {
        self.inner
            .deployments
            .lock()
            .ok()
            .and_then(|d| d.get(key).cloned())
            .ok_or_else(|| RuntimeError::NotDeployed(key.clone()))
    }

    /// Crashes one task on purpose (chaos testing); it restarts from the
    /// latest checkpoint. Returns whether such a task was running.
    pub fn kill_task(&self, key: &DeploymentKey, task: u32) -> Result<bool, RuntimeError> {
        Ok(self.get(key)?.kill_task(task))
    }

    /// The checkpoint store its deployments write to (a cluster worker puts
    /// its placement holds there: see `CheckpointStore::hold`).
    pub fn checkpoint_store(&self) -> &CheckpointStore {
        &self.inner.store
    }

    async fn start_inner(&self, req: DeploymentRequest) -> Result<(), RuntimeError> {
        let _serial = self.inner.lifecycle.lock().await;
        let key = req.key.clone();
        let span = tracing::info_span!("deploy", tenant = %key.tenant, job = %key.job, version = req.version, generation = req.generation);
        let _enter = span.enter();
        drop(_enter);
        req.spec
            .validate()
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        if let Ok(current) = self.get(&key) {
            if current.generation == req.generation {
                return Ok(());
            }
            if current.generation > req.generation {
                return Err(RuntimeError::StaleGeneration {
                    requested: req.generation,
                    current: current.generation,
                });
            }
        }
        // Fail fast, naming the broker, rather than outlive the control
        // plane's start timeout on metadata calls.
        self.probe_broker().await?;
        // Secrets are put in here, in the worker's memory only: the request
        // (on NATS, in the placement table) keeps the references. Before the
        // older generation stops, so a missing secret leaves it running.
        let spec = Arc::new(self.with_secrets(&key.tenant, req.spec.clone()).await?);
        self.inner
            .store
            .fence(&key, req.generation, req.version, req.parallelism)
            .await?;
        // Replace an older generation: final checkpoint if it is healthy, then stop.
        let old = self
            .inner
            .deployments
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&key));
        if let Some(old) = old {
            if let Err(e) = old.stop(true).await {
                tracing::warn!(error = %e, "final checkpoint of the replaced generation failed");
                let _ = old.stop(false).await;
            }
        }
        let restore = match &req.restore {
            RestoreFrom::Nothing => None,
            RestoreFrom::Latest => self.inner.store.latest(&key).await?.map(|c| c.id),
            RestoreFrom::Checkpoint(id) => Some(self.inner.store.get(&key, id).await?.id),
        };
        let stages = prepare(
            &self.inner.cfg.brokers,
            &key,
            &spec,
            self.inner.resolver.as_ref(),
            req.parallelism,
        )
        .await?;
        let rate = spec.rate_limit.map(|r| {
            Arc::new(Mutex::new(TokenBucket::new(
                r,
                self.inner.epoch.elapsed().as_millis() as u64,
            )))
        });
        let env = TaskEnv {
            brokers: self.inner.cfg.brokers.clone(),
            store: self.inner.store.clone(),
            sink_pool: Some(self.inner.pool.clone()),
            nats: self.inner.nats.clone(),
            http: self.inner.http.clone(),
            rate,
            epoch: self.inner.epoch,
            max_batch: self.inner.cfg.max_batch,
            transactional: self.inner.cfg.transactional,
            producer_request_timeout: self.inner.cfg.producer_request_timeout,
            subject_prefix: self.inner.cfg.subject_prefix.clone(),
            http_sink_allow_private: self.inner.cfg.http_sink_allow_private,
        };
        let deployment = Deployment::launch(Launch {
            key: key.clone(),
            version: req.version,
            generation: req.generation,
            spec,
            stages,
            restore,
            env,
            restart: self.inner.cfg.restart.clone(),
            state_limit: req.state_limit,
        })
        .await?;
        let subject = format!(
            "{}.metrics.{}.{}",
            self.inner.cfg.subject_prefix, key.tenant, key.job
        );
        deployment.spawn_background(
            self.inner.nats.clone().map(|c| (c, subject)),
            self.inner.cfg.metrics_interval,
        );
        if let Ok(mut d) = self.inner.deployments.lock() {
            d.insert(key, deployment);
        }
        Ok(())
    }
}

impl DeploymentControl for EmbeddedRuntime {
    async fn start(&self, req: DeploymentRequest) -> Result<(), RuntimeError> {
        self.start_inner(req).await
    }

    async fn stop(
        &self,
        key: &DeploymentKey,
        generation: u64,
        final_checkpoint: bool,
    ) -> Result<Option<CheckpointInfo>, RuntimeError> {
        let _serial = self.inner.lifecycle.lock().await;
        let d = self.get(key)?;
        if generation < d.generation {
            return Err(RuntimeError::StaleGeneration {
                requested: generation,
                current: d.generation,
            });
        }
        let res = d.stop(final_checkpoint).await;
        if res.is_ok() {
            if let Ok(mut m) = self.inner.deployments.lock() {
                m.remove(key);
            }
        }
        res
    }

    async fn checkpoint(&self, key: &DeploymentKey) -> Result<CheckpointInfo, RuntimeError> {
        self.get(key)?.checkpoint(Trigger::OnDemand).await
    }

    async fn status(&self, key: &DeploymentKey) -> Result<DeploymentStatus, RuntimeError> {
        Ok(self.get(key)?.status())
    }

    async fn checkpoints(&self, key: &DeploymentKey) -> Result<Vec<CheckpointInfo>, RuntimeError> {
        self.inner.store.list(key).await
    }
}
