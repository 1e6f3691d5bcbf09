//! [`run`]: the task's loop. Control messages come first; otherwise the task
//! takes whatever records are ready (up to `max_batch`) as one batch, and
//! counts its idle time every second while the input is dry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::lag::lag_probe;
use super::shutdown::AbortOnDrop;
use super::{Control, Task, TaskEnv, TaskError, TaskPlan};
use crate::runtime::control::TaskState;
use crate::runtime::kafka;
use crate::runtime::metrics::{BatchCounts, TaskMetrics};

/// Runs a task until it is told to stop (`Ok`) or fails (`Err`).
///
/// `closed` fires once the task's producer is gone after it ends (or is
/// aborted): everything it sent has been acknowledged or failed, so a
/// restore's replay scan sees all of it. The supervisor waits for it.
pub async fn run(
    plan: TaskPlan,
    env: TaskEnv,
    metrics: Arc<TaskMetrics>,
    mut ctl: mpsc::Receiver<Control>,
    closed: oneshot::Sender<()>,
) -> Result<(), TaskError> {
    let mut task = Task::setup(plan, env, metrics.clone()).await?;
    task.closed = Some(closed);
    let lag_probe = tokio::spawn(lag_probe(Arc::downgrade(&task.meta), metrics.clone()));
    let _abort_probe = AbortOnDrop(lag_probe);
    if task.plan.gated {
        loop {
            match ctl.recv().await {
                Some(Control::Checkpoint(reply)) => {
                    let res = task.checkpoint().await;
                    task.metrics.checkpoint_outcome(res.is_ok());
                    let _ = reply.send(res.map_err(|e| e.to_string()));
                    task.check_deliveries()?;
                }
                Some(Control::Committed(id)) => {
                    task.committed(&id);
                    break;
                }
                Some(Control::Stop) | None => return Ok(()),
            }
        }
    }
    metrics.set_state(TaskState::Running);
    tracing::info!(
        job = %task.plan.key.job, generation = task.plan.generation, task = task.plan.index,
        restore = ?task.plan.restore,
        positions = ?task.progress.as_ref().map(|p| p.iter().map(|(tp, p)| (tp.partition, p.next_offset)).collect::<Vec<_>>()),
        "task running"
    );
    let consumer = task.consumer.clone();
    let mut stream = consumer.stream();
    let mut idle_since = Instant::now();
    // A task whose input ran dry idles until the next record comes: its
    // idle time is counted every second, not only when a record ends it.
    let mut idle_tick = tokio::time::interval(Duration::from_secs(1));
    idle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            c = ctl.recv() => match c {
                Some(Control::Checkpoint(reply)) => {
                    // A failed checkpoint (e.g. a slow broker) fails only
                    // that checkpoint; failed deliveries fail the task.
                    let res = task.checkpoint().await;
                    task.metrics.checkpoint_outcome(res.is_ok());
                    let _ = reply.send(res.map_err(|e| e.to_string()));
                    task.check_deliveries()?;
                }
                Some(Control::Committed(id)) => task.committed(&id),
                Some(Control::Stop) | None => return Ok(()),
            },
            _ = idle_tick.tick() => {
                task.metrics.record(BatchCounts {
                    idle_ns: idle_since.elapsed().as_nanos() as u64,
                    ..Default::default()
                });
                idle_since = Instant::now();
            }
            m = stream.next() => {
                let idle_ns = idle_since.elapsed().as_nanos() as u64;
                let busy = Instant::now();
                let mut batch = Vec::with_capacity(task.env.max_batch);
                if let Some(m) = m {
                    batch.push(m.map_err(kafka::op_err("consume"))?);
                }
                while batch.len() < task.env.max_batch {
                    match stream.next().now_or_never() {
                        Some(Some(m)) => batch.push(m.map_err(kafka::op_err("consume"))?),
                        _ => break,
                    }
                }
                tracing::trace!(records = batch.len(), "batch");
                let mut counts = task.process(batch).await?;
                counts.idle_ns = idle_ns;
                counts.busy_ns = busy.elapsed().as_nanos() as u64;
                task.metrics.record(counts);
                task.metrics.set_watermark(
                    task.watermarks
                        .combined(task.plan.partitions.iter().map(|tp| tp.partition)),
                );
                idle_since = Instant::now();
            }
        }
    }
}
