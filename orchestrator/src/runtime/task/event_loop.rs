//! [`run`]: the task's loop. Control messages come first; otherwise the task
//! takes whatever records are ready (up to the [`BatchSizer`]'s limit) as one
//! batch, and counts its idle time every second while the input is dry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::batch_size::BatchSizer;
use super::checkpoint::{unsettled, Taken, SETTLE_LIMIT, SETTLE_POLL};
use super::lag::lag_probe;
use super::shutdown::AbortOnDrop;
use super::{Control, Task, TaskEnv, TaskError, TaskPlan};
use crate::runtime::checkpoint::PartitionCheckpoint;
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
    let mut in_flight = None;
    if task.plan.gated {
        // Nothing is read before the start checkpoint is durable.
        loop {
            match on_control(&mut task, ctl.recv().await, &mut ctl, &mut in_flight).await? {
                After::Exit => return Ok(()),
                After::Committed => break,
                After::Go => {}
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
    let mut sizer = BatchSizer::new(task.env.max_batch);
    let mut settle_tick = tokio::time::interval(SETTLE_POLL);
    settle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            c = ctl.recv() => {
                if let After::Exit = on_control(&mut task, c, &mut ctl, &mut in_flight).await? {
                    return Ok(());
                }
            }
            _ = settle_tick.tick(), if in_flight.is_some() => {
                answer_if_settled(&mut task, &mut in_flight)?;
            }
            _ = idle_tick.tick() => {
                task.refresh_operator_stats();
                task.metrics.record(BatchCounts {
                    idle_ns: idle_since.elapsed().as_nanos() as u64,
                    ..Default::default()
                });
                idle_since = Instant::now();
            }
            m = stream.next() => {
                let idle_ns = idle_since.elapsed().as_nanos() as u64;
                let busy = Instant::now();
                let limit = sizer.limit();
                let mut batch = Vec::with_capacity(limit);
                if let Some(m) = m {
                    batch.push(m.map_err(kafka::op_err("consume"))?);
                }
                while batch.len() < limit {
                    match stream.next().now_or_never() {
                        Some(Some(m)) => batch.push(m.map_err(kafka::op_err("consume"))?),
                        _ => break,
                    }
                }
                tracing::trace!(records = batch.len(), "batch");
                let records = batch.len();
                let mut counts = task.process(batch).await?;
                counts.idle_ns = idle_ns;
                counts.busy_ns = busy.elapsed().as_nanos() as u64;
                sizer.observe(records, busy.elapsed());
                task.metrics.record(counts);
                task.metrics.set_watermark(
                    task.watermarks
                        .combined(task.plan.partitions.iter().map(|tp| tp.partition)),
                );
                answer_if_settled(&mut task, &mut in_flight)?;
                idle_since = Instant::now();
            }
        }
    }
}

/// What the loop does after a control message.
enum After {
    Go,
    /// A checkpoint became durable (a gated task may start reading).
    Committed,
    Exit,
}

/// A checkpoint taken, waiting for the records sent before it to be
/// acknowledged while the task reads on.
struct InFlight {
    parts: Vec<PartitionCheckpoint>,
    barrier: u64,
    deadline: Instant,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Vec<PartitionCheckpoint>, String>>;

/// Answers one control message. After `CheckpointAndHold` it waits here,
/// reading nothing, until told to stop or resume. A checkpoint still in
/// flight is answered before the next one is taken.
async fn on_control(
    task: &mut Task,
    c: Option<Control>,
    ctl: &mut mpsc::Receiver<Control>,
    in_flight: &mut Option<InFlight>,
) -> Result<After, TaskError> {
    let mut c = c;
    let mut holding = false;
    loop {
        match c {
            Some(Control::Checkpoint(reply)) => {
                answer_in_flight(task, in_flight).await?;
                match task.take_checkpoint().await {
                    Ok(Taken {
                        parts,
                        barrier: Some(barrier),
                    }) => {
                        *in_flight = Some(InFlight {
                            parts,
                            barrier,
                            deadline: Instant::now() + SETTLE_LIMIT,
                            reply,
                        })
                    }
                    Ok(Taken { parts, .. }) => answer(task, Ok(parts), reply)?,
                    Err(e) => answer(task, Err(e), reply)?,
                }
            }
            Some(Control::CheckpointAndHold(reply)) => {
                answer_in_flight(task, in_flight).await?;
                let res = task.checkpoint().await;
                answer(task, res, reply)?;
                holding = true;
            }
            Some(Control::Resume) => holding = false,
            Some(Control::Committed(id)) => {
                task.committed(&id);
                if !holding {
                    return Ok(After::Committed);
                }
            }
            Some(Control::Stop) | None => return Ok(After::Exit),
        }
        if !holding {
            return Ok(After::Go);
        }
        c = ctl.recv().await;
    }
}

/// Answers the checkpoint in flight once its records are settled, or with
/// an error once its deadline has passed.
fn answer_if_settled(task: &mut Task, in_flight: &mut Option<InFlight>) -> Result<(), TaskError> {
    let Some(f) = in_flight.as_ref() else {
        return Ok(());
    };
    let settled = task.settled(f.barrier);
    if !settled && Instant::now() <= f.deadline {
        return Ok(());
    }
    let Some(f) = in_flight.take() else {
        return Ok(());
    };
    let res = if settled {
        task.check_deliveries().map(|()| f.parts)
    } else {
        Err(unsettled())
    };
    answer(task, res, f.reply)
}

/// Waits for the checkpoint in flight, if any, and answers it.
async fn answer_in_flight(
    task: &mut Task,
    in_flight: &mut Option<InFlight>,
) -> Result<(), TaskError> {
    if let Some(f) = in_flight.take() {
        let res = task
            .wait_settled(f.barrier, f.deadline)
            .await
            .map(|()| f.parts);
        answer(task, res, f.reply)?;
    }
    Ok(())
}

/// A failed checkpoint (e.g. a slow broker) fails only that checkpoint;
/// failed deliveries fail the task.
fn answer(
    task: &mut Task,
    res: Result<Vec<PartitionCheckpoint>, TaskError>,
    reply: Reply,
) -> Result<(), TaskError> {
    task.metrics.checkpoint_outcome(res.is_ok());
    let _ = reply.send(res.map_err(|e| e.to_string()));
    task.check_deliveries()
}
