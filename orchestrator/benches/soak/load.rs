//! The load: records at a steady rate into the input topic, each stamped
//! with the time it was produced (the latency's start), counted per key
//! from the broker's acknowledgements (the keyed job's expected counts).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message};

use crate::config::Config;
use crate::system::INPUT;

/// What the generator did, shared with the reporter and the checks.
#[derive(Default)]
pub struct LoadStats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub done: AtomicBool,
}

struct Acks(Arc<LoadStats>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.0.acked.fetch_add(1, Ordering::Relaxed);
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

/// Produces `cfg.records` records at `cfg.rate` per second on a thread of
/// its own; returns once all are produced and acknowledged (or failed), or
/// `stop`.
pub fn run(
    brokers: String,
    cfg: &Config,
    stats: Arc<LoadStats>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (records, rate, partitions, keys, idempotent) = (
        cfg.records,
        cfg.rate,
        cfg.partitions,
        cfg.keys,
        cfg.load_idempotence,
    );
    std::thread::spawn(move || {
        // Never giving up on a record within a fault's window.
        let producer: ThreadedProducer<Acks> = match ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set(
                "enable.idempotence",
                if idempotent { "true" } else { "false" },
            )
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
                let key = format!("u{}", i % keys as u64);
                let value = format!(r#"{{"user":"{key}","n":{i},"pad":"{pad}"}}"#);
                let now = chrono::Utc::now().timestamp_millis();
                loop {
                    let rec = BaseRecord::to(INPUT)
                        .partition((i % partitions as u64) as i32)
                        .key(key.as_bytes())
                        .payload(value.as_bytes())
                        .timestamp(now);
                    match producer.send(rec) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            // The broker is behind or away: wait, keep the order.
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
