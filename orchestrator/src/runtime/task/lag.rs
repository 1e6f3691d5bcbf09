//! The lag probe: how far each partition's end is ahead of the task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::runtime::kafka;
use crate::runtime::metrics::TaskMetrics;

/// Every few seconds, measures how far each partition's end is ahead of the
/// task's position. Uses the metadata client, not the consumer, so the
/// queries never queue behind a fetch on the consumer's connection.
pub(super) async fn lag_probe(meta: std::sync::Weak<BaseConsumer>, metrics: Arc<TaskMetrics>) {
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let positions = metrics
            .positions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let c = meta.clone();
        let lag = tokio::task::spawn_blocking(move || {
            // Upgraded here so the client is never dropped on the executor.
            let c = c.upgrade()?;
            let mut lag = BTreeMap::new();
            for (tp, next) in positions {
                let (_, hi) = c
                    .fetch_watermarks(&tp.topic, tp.partition, kafka::QUERY_TIMEOUT)
                    .ok()?;
                lag.insert(tp, (hi - next.max(0)).max(0));
            }
            Some(lag)
        })
        .await;
        // Only a complete measurement replaces the last one.
        if let Ok(Some(lag)) = lag {
            metrics.set_lag(lag);
        }
    }
}
