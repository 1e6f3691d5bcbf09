//! Ending a task without stalling the executor: Kafka clients are closed on
//! plain threads, and the producer's in-flight records are settled before
//! the supervisor hears that the task is gone.

use std::time::Duration;

use rdkafka::producer::Producer;

use super::Task;

/// Aborts a helper task (the lag probe) when the task's loop ends.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Dropping Kafka clients blocks (purge, flush, thread joins, broker
/// disconnects), so a task that ends — or is aborted — hands them to a
/// plain thread instead of stalling an executor thread.
pub(super) struct OffThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OffThread<T> {
    pub(super) fn new(value: T) -> Self {
        Self(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for OffThread<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> std::ops::DerefMut for OffThread<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for OffThread<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            let spawned = std::thread::Builder::new()
                .name("weir-kafka-close".into())
                .spawn(move || drop(v));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not spawn a thread to close Kafka clients");
            }
        }
    }
}

impl Drop for Task {
    /// Closes the producer off the executor: unsent records are discarded,
    /// in-flight ones are waited for (so none lands after a restore's scan),
    /// then `closed` fires.
    fn drop(&mut self) {
        let producer = self.producer.take();
        let sinks = std::mem::take(&mut *self.sinks);
        let closed = self.closed.take();
        let spawned = std::thread::Builder::new()
            .name("weir-task-close".into())
            .spawn(move || {
                if let Some(p) = &producer {
                    p.inner()
                        .purge(rdkafka::producer::PurgeConfig::default().queue());
                    if let Err(e) = p.inner().flush(Duration::from_secs(120)) {
                        tracing::warn!(error = %e, "in-flight records not settled while closing the producer");
                    }
                }
                drop(sinks);
                drop(producer);
                if let Some(c) = closed {
                    let _ = c.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not spawn a thread to close Kafka clients");
        }
    }
}
