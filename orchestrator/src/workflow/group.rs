//! Group commit for engine commands: concurrent runs' claims and reports are
//! decided and committed in one batch (one transaction, one fsync), the way
//! intake batches user commands. No background task: the first waiting
//! submitter becomes the leader, commits everything queued, and hands each
//! submitter its outcome.

use std::sync::Mutex;

use std::sync::Arc;

use tokio::sync::oneshot;

use super::clock::Clock;
use crate::domain::Outcome;
use crate::lifecycle::{CommandHandler, Incoming};
use crate::store::EventStore;
use crate::telemetry::names;

/// Largest batch one leader commits.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Outcome, String>>;

pub struct GroupCommit<S> {
    handler: CommandHandler<S>,
    clock: Arc<dyn Clock>,
    queue: Mutex<Vec<(Incoming, Reply)>>,
    leader: tokio::sync::Mutex<()>,
}

impl<S: EventStore> GroupCommit<S> {
    pub fn new(handler: CommandHandler<S>, clock: Arc<dyn Clock>) -> Self {
        Self {
            handler,
            clock,
            queue: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
        }
    }

    /// Decides and commits `cmd`, batched with whatever else is waiting.
    pub async fn submit(&self, cmd: Incoming) -> Result<Outcome, String> {
        let (tx, rx) = oneshot::channel();
        self.lock().push((cmd, tx));
        {
            // Whoever holds this commits; by the time we get it, our command
            // is either committed by an earlier leader or still queued for us.
            let _leader = self.leader.lock().await;
            loop {
                let batch: Vec<(Incoming, Reply)> = {
                    let mut q = self.lock();
                    let n = q.len().min(MAX_BATCH);
                    q.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let (cmds, replies): (Vec<Incoming>, Vec<Reply>) = batch.into_iter().unzip();
                metrics::histogram!(names::WORKFLOW_COMMIT_BATCH_SIZE).record(cmds.len() as f64);
                match self.handler.handle(&cmds, self.clock.now()).await {
                    Ok(outcomes) => {
                        for (reply, o) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(o));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        }
        rx.await
            .map_err(|_| "the committing task was cancelled".to_owned())?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Incoming, Reply)>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}
