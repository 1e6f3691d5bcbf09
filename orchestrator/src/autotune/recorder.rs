//! Keeps the runtime's metrics reports: subscribes to
//! `<prefix>.metrics.<tenant>.<job>` (in a queue group, so each report is
//! stored by one replica) and writes each into `metric_samples`, pruning
//! reports older than [`KEEP`].

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::store::TunerStore;
use crate::domain::autotune::Sample;
use crate::domain::{JobName, Tenant};

/// How long reports are kept: far longer than any metric window.
pub const KEEP: chrono::Duration = chrono::Duration::hours(6);
/// How often old reports are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The queue group all replicas' recorders share.
const QUEUE: &str = "weir-autotune-recorder";

/// The tenant and job a metrics subject names, if it is one.
pub fn subject_job(prefix: &str, subject: &str) -> Option<(String, String)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix(".metrics.")?;
    let (tenant, job) = rest.split_once('.')?;
    let tenant = Tenant::new(tenant).ok()?;
    let job = JobName::new(job).ok()?;
    Some((tenant.as_str().to_owned(), job.as_str().to_owned()))
}

/// Records reports until `shutdown`. A report that does not read is logged
/// and skipped; an unreachable database drops reports until it is back (a
/// decision then waits for a full window again).
pub async fn run(
    nats: async_nats::Client,
    prefix: String,
    store: TunerStore,
    shutdown: CancellationToken,
) {
    let subject = format!("{prefix}.metrics.*.*");
    let mut sub = loop {
        match nats.queue_subscribe(subject.clone(), QUEUE.into()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, %subject, "metrics recorder cannot subscribe; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = prune.tick() => {
                if let Err(e) = store.prune(chrono::Utc::now() - KEEP).await {
                    tracing::warn!(error = %e, "cannot prune old metrics reports");
                }
            }
            msg = sub.next() => {
                let Some(msg) = msg else { return };
                let Some((tenant, job)) = subject_job(&prefix, msg.subject.as_str()) else {
                    continue;
                };
                // Kept as published: the tuner and the alert rules read
                // different figures of it.
                let read = serde_json::from_slice::<serde_json::Value>(&msg.payload)
                    .and_then(|body| Ok((Sample::deserialize(&body)?, body)));
                let (sample, body) = match read {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(%tenant, %job, error = %e, "a metrics report that does not read was skipped");
                        continue;
                    }
                };
                if let Err(e) = store.record(&tenant, &job, &sample, &body).await {
                    tracing::warn!(%tenant, %job, error = %e, "cannot keep a metrics report");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_tenant_and_job() {
        assert_eq!(
            subject_job("weir", "weir.metrics.acme.orders"),
            Some(("acme".into(), "orders".into()))
        );
        assert_eq!(subject_job("weir", "weir.metrics.acme"), None);
        assert_eq!(subject_job("weir", "other.metrics.acme.orders"), None);
        assert_eq!(subject_job("weir", "weirx.metrics.acme.orders"), None);
    }
}
