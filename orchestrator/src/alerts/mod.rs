//! The alert evaluator: every `--alert-every` it judges each watched job's
//! rules ([`crate::domain::alerts`], pure) on the job's phase and kept
//! metrics reports, and records each change as `job.record_alert`, which
//! becomes an `alert_fired` or `alert_resolved` event on the job's stream.
//! That event starts `workflows/alert.yaml`, which tells the rule's
//! `notify` targets, once, with retries.
//!
//! Whether an alert fires is a fact on the job's stream, not memory of this
//! process: after a restart the evaluator picks up where the events say,
//! so a firing alert is neither told again nor forgotten. Every replica may
//! evaluate; a change's command id is derived from the job, the rule and
//! how often it fired, so two replicas recording the same change write one
//! event (and the job refuses a second "fires" while it fires).

pub mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::alerts::{self, Input, Verdict};
use crate::domain::envelope::ParsedCommand;
use crate::domain::job::command::RecordAlert;
use crate::domain::job::JobCommand;
use crate::domain::{Command, StreamId, Tenant};
use crate::lifecycle::{CommandHandler, Incoming};
use crate::store::{EventStore, StoreError};
use crate::telemetry::names;
use crate::workflow::clock::Clock;
pub use store::{AlertStore, WatchedJob};

/// Namespace of the derived ids of the evaluator's commands.
const NAMESPACE: Uuid = Uuid::from_u128(0xa1e7_0000_5eed_4c3a_9b1e_7d0c_0f1a_0001);

/// `weir job history` shows this as the actor of alert changes.
const ACTOR: &str = "weir:alerts";

/// Judges rules and records their changes; see the module docs.
pub struct Evaluator<S> {
    store: AlertStore,
    handler: CommandHandler<S>,
    clock: Arc<dyn Clock>,
}

impl<S: EventStore> Evaluator<S> {
    pub fn new(store: AlertStore, handler: CommandHandler<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            handler,
            clock,
        }
    }

    /// Evaluates every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.pass().await {
                        tracing::warn!(error = %e, "alert evaluation pass failed; next pass retries");
                    }
                }
            }
        }
    }

    /// One pass over every watched job; returns the changes recorded.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut changed = 0;
        for w in self.store.watched_jobs().await? {
            let span = tracing::info_span!("alerts", tenant = %w.tenant, job = %w.job);
            let _enter = span.enter();
            let rules = w.state.deployed_alert_rules();
            let firing = w.state.firing_alerts();
            for rule in &rules {
                let on = firing.contains(&rule.name);
                metrics::gauge!(
                    names::ALERTS_FIRING,
                    "tenant" => w.tenant.clone(),
                    "job" => w.job.clone(),
                    "rule" => rule.name.clone(),
                    "severity" => rule.severity.name(),
                )
                .set(if on { 1.0 } else { 0.0 });
            }
            if rules.is_empty() && firing.is_empty() {
                continue;
            }
            let reports = self
                .store
                .reports(&w.tenant, &w.job, now - alerts::lookback(&rules))
                .await?;
            let input = Input {
                now,
                phase: w.state.phase,
                generation: w.state.deployment.as_ref().map(|d| d.generation),
                failure: w.state.last_failure.as_deref(),
                reports: &reports,
            };
            for (name, verdict) in alerts::verdicts(&rules, &firing, &input) {
                let rule = rules.iter().find(|r| r.name == name);
                let status = w.state.alerts.get(&name);
                let fired = status.map_or(0, |s| s.fired);
                let (cmd, identity) = match verdict {
                    Verdict::Keep => continue,
                    Verdict::Fire {
                        since,
                        value,
                        message,
                    } => {
                        let Some(rule) = rule else { continue };
                        let cmd = RecordAlert {
                            rule: name.clone(),
                            firing: true,
                            severity: rule.severity,
                            condition: rule.when.name().to_owned(),
                            since: Some(since),
                            value,
                            message,
                            notify: rule.notify.clone(),
                        };
                        (cmd, format!("{}/fired", fired + 1))
                    }
                    Verdict::Resolve { value, message } => {
                        let cmd = RecordAlert {
                            rule: name.clone(),
                            firing: false,
                            severity: rule
                                .map(|r| r.severity)
                                .or(status.map(|s| s.severity))
                                .unwrap_or_default(),
                            condition: rule.map_or("removed", |r| r.when.name()).to_owned(),
                            since: None,
                            value,
                            message,
                            notify: rule.map(|r| r.notify.clone()).unwrap_or_default(),
                        };
                        (cmd, format!("{fired}/resolved"))
                    }
                };
                tracing::info!(rule = %name, firing = cmd.firing, message = %cmd.message, "alert changes");
                if self.send(&w, cmd, &identity).await? {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    async fn send(
        &self,
        w: &WatchedJob,
        cmd: RecordAlert,
        identity: &str,
    ) -> Result<bool, StoreError> {
        let Ok(tenant) = Tenant::new(&w.tenant) else {
            return Ok(false);
        };
        let id = Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{}/{}/{identity}", w.tenant, w.job, cmd.rule).as_bytes(),
        );
        let now = self.clock.now();
        let parsed = ParsedCommand {
            id,
            tenant,
            target: w.job.clone(),
            stream: StreamId::new("job", &w.job),
            expected_version: None,
            actor: ACTOR.to_owned(),
            issued_at: now,
            command: Command::Job(JobCommand::RecordAlert(Box::new(cmd))),
        };
        let outcomes = self
            .handler
            .handle(&[Incoming::Parsed(parsed)], now)
            .await?;
        let mut accepted = false;
        for o in outcomes {
            match o.rejection {
                // Another replica recorded it first, or the job moved on.
                Some(r) => tracing::debug!(rejection = %r.message, "alert change not recorded"),
                None => accepted = true,
            }
        }
        Ok(accepted)
    }
}
