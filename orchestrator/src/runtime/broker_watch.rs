//! Whether the Kafka broker answers, and how fast: a deployment is refused
//! at once with "kafka broker unavailable" when it does not answer (instead
//! of timing out as an unresponsive worker), and a slow round trip is
//! logged once per slow spell, with the figure, so an operator learns why
//! the data plane crawls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::control::RuntimeError;
use super::kafka;

/// How long a probe waits for the broker's metadata answer. Below the
/// control plane's start timeout, so the reason reaches the deploy.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// A round trip above this is slow.
pub const SLOW: Duration = Duration::from_secs(1);

/// Remembers whether the current slow spell was reported.
#[derive(Debug, Default)]
pub struct SlowBroker {
    warned: AtomicBool,
}

/// What one round trip means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Slow, and the first slow one of a spell: say so.
    BecameSlow,
    StillSlow,
    /// Fast again after a reported spell.
    Recovered,
}

impl SlowBroker {
    /// Classifies a round trip; pure apart from the spell flag.
    pub fn observe(&self, rtt: Duration) -> Verdict {
        // Half the threshold to recover, so a broker hovering at the limit
        // does not warn on every probe.
        if rtt > SLOW {
            if self.warned.swap(true, Ordering::SeqCst) {
                Verdict::StillSlow
            } else {
                Verdict::BecameSlow
            }
        } else if rtt < SLOW / 2 && self.warned.swap(false, Ordering::SeqCst) {
            Verdict::Recovered
        } else {
            Verdict::Fine
        }
    }

    /// Logs `rtt` according to [`SlowBroker::observe`].
    pub fn report(&self, brokers: &str, rtt: Duration) {
        match self.observe(rtt) {
            Verdict::BecameSlow => tracing::warn!(
                brokers,
                rtt_ms = rtt.as_millis() as u64,
                "the Kafka broker took {} ms to answer a metadata request (over {} ms): \
                 deployments start slowly and throughput drops; check the broker's CPU and storage",
                rtt.as_millis(),
                SLOW.as_millis()
            ),
            Verdict::Recovered => tracing::info!(
                brokers,
                rtt_ms = rtt.as_millis() as u64,
                "the Kafka broker answers quickly again"
            ),
            Verdict::Fine | Verdict::StillSlow => {}
        }
    }
}

/// One metadata round trip to `brokers`, off the executor.
pub async fn probe(brokers: &str) -> Result<Duration, RuntimeError> {
    let b = brokers.to_owned();
    tokio::task::spawn_blocking(move || {
        let client = kafka::admin_consumer(&b)?;
        let started = Instant::now();
        client
            .fetch_metadata(None, PROBE_TIMEOUT)
            .map_err(|e| kafka::KafkaOpError {
                op: "metadata",
                reason: e.to_string(),
            })?;
        Ok::<_, kafka::KafkaOpError>(started.elapsed())
    })
    .await
    .map_err(|e| RuntimeError::Internal(e.to_string()))?
    .map_err(|e| RuntimeError::Unavailable {
        what: "kafka broker",
        reason: format!(
            "{brokers} did not answer a metadata request within {}s ({e})",
            PROBE_TIMEOUT.as_secs()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_spell_is_reported_once_and_its_end_once() {
        let s = SlowBroker::default();
        let ms = Duration::from_millis;
        assert_eq!(s.observe(ms(50)), Verdict::Fine);
        assert_eq!(s.observe(ms(1500)), Verdict::BecameSlow);
        assert_eq!(s.observe(ms(3000)), Verdict::StillSlow);
        // Between the two thresholds: still the same spell.
        assert_eq!(s.observe(ms(700)), Verdict::Fine);
        assert_eq!(s.observe(ms(1200)), Verdict::StillSlow);
        assert_eq!(s.observe(ms(100)), Verdict::Recovered);
        assert_eq!(s.observe(ms(100)), Verdict::Fine);
        assert_eq!(s.observe(ms(2000)), Verdict::BecameSlow);
    }
}
