//! Creates the JetStream streams and the durable consumer Weir relies on.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::{IntakeError, Subjects};

/// Deliveries before a command is dead-lettered instead of processed again.
pub const MAX_DELIVER: i64 = 6;

/// Ensures the command, outcome, event and dead-letter streams exist.
pub async fn ensure_streams(js: &jetstream::Context, s: &Subjects) -> Result<(), IntakeError> {
    let day = Duration::from_secs(24 * 3600);
    let configs = [
        stream::Config {
            name: s.command_stream(),
            subjects: vec![s.all("cmd")],
            max_age: 7 * day,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        },
        stream::Config {
            name: s.outcome_stream(),
            subjects: vec![s.all("out")],
            max_age: day,
            max_messages_per_subject: 1,
            ..Default::default()
        },
        stream::Config {
            name: s.event_stream(),
            subjects: vec![s.all("evt")],
            max_age: 7 * day,
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        },
        stream::Config {
            name: s.dead_letter_stream(),
            subjects: vec![s.all("dlq")],
            max_age: 30 * day,
            ..Default::default()
        },
    ];
    for config in configs {
        let name = config.name.clone();
        js.get_or_create_stream(config)
            .await
            .map_err(|e| IntakeError::Setup(format!("stream {name}: {e}")))?;
    }
    Ok(())
}

/// The orchestrator's durable pull consumer on the command stream.
pub async fn command_consumer(
    js: &jetstream::Context,
    s: &Subjects,
) -> Result<consumer::PullConsumer, IntakeError> {
    let stream = js
        .get_stream(s.command_stream())
        .await
        .map_err(|e| IntakeError::Setup(format!("stream {}: {e}", s.command_stream())))?;
    stream
        .get_or_create_consumer(
            "orchestrator",
            consumer::pull::Config {
                durable_name: Some("orchestrator".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_deliver: MAX_DELIVER,
                backoff: vec![
                    Duration::from_secs(1),
                    Duration::from_secs(2),
                    Duration::from_secs(5),
                    Duration::from_secs(10),
                    Duration::from_secs(30),
                ],
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| IntakeError::Setup(format!("consumer orchestrator: {e}")))
}
