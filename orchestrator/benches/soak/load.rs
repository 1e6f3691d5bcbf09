//! The load: records at a steady rate into the input topic, each stamped
//! with the time it was produced (the latency's start), counted per key
//! from the broker's acknowledgements (the keyed job's expected counts).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message};

use crate::weir::INPUT;

/// What the generator did, shared with the reporter and the checks.
#[derive(Default)]
pub struct LoadStats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// Acknowledged records per key index.
    pub per_key: Mutex<Vec<u64>>,
    pub last_error: Mutex<Option<String>>,
    pub done: AtomicBool,
}

struct Acks(Arc<LoadStats>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, key: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut per_key) = self.0.per_key.lock() {
                    if let Some(n) = per_key.get_mut(*key) {
                        *n += 1;
                    }
                }
            }
            Err((e, m)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.0.last_error.lock() {
                    *last = Some(format!("partition {}: {e}", m.partition()));
                }
            }
        }
    }
}

/// Produces `records` records at `rate` per second on a thread of its own;
/// returns once all are produced and acknowledged (or failed), or `stop`.
pub fn run(
    brokers: String,
    records: u64,
    rate: f64,
    partitions: i32,
    keys: usize,
    stats: Arc<LoadStats>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    if let Ok(mut per_key) = stats.per_key.lock() {
        *per_key = vec![0; keys];
    }
    std::thread::spawn(move || {
        // Idempotent, and never giving up on a record within a fault's
        // window: the input must hold each record once, whatever the broker
        // went through, or the expected counts would be guesses.
        let producer: ThreadedProducer<Acks> = match ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "600000")
            .set("linger.ms", "10")
            .create_with_context(Acks(stats.clone()))
        {
            Ok(p) => p,
            Err(e) => {
                if let Ok(mut last) = stats.last_error.lock() {
                    *last = Some(format!("producer: {e}"));
                }
                stats.done.store(true, Ordering::SeqCst);
                return;
            }
        };
        let start = Instant::now();
        let mut i: u64 = 0;
        let pad = "x".repeat(24);
        while i < records && !stop.load(Ordering::SeqCst) {
            let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(records);
            while i < due && !stop.load(Ordering::SeqCst) {
                let k = (i % keys as u64) as usize;
                let key = format!("u{k}");
                let value = format!(r#"{{"user":"{key}","n":{i},"pad":"{pad}"}}"#);
                let now = chrono::Utc::now().timestamp_millis();
                let mut opaque = Box::new(k);
                loop {
                    let rec = BaseRecord::with_opaque_to(INPUT, opaque)
                        .partition((i % partitions as u64) as i32)
                        .key(key.as_bytes())
                        .payload(value.as_bytes())
                        .timestamp(now);
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // The broker is behind or away: wait, keep the order.
                            opaque = r.delivery_opaque;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err((e, _)) => {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut last) = stats.last_error.lock() {
                                *last = Some(format!("send: {e}"));
                            }
                            break;
                        }
                    }
                }
                stats.sent.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Every record settled: acknowledged, or failed for good.
        while stats.acked.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed)
            < stats.sent.load(Ordering::Relaxed)
        {
            let _ = producer.flush(Duration::from_secs(1));
        }
        stats.done.store(true, Ordering::SeqCst);
    })
}
