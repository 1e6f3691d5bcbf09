//! Kafka → operators → Kafka, exactly once, through crashes and restores.

use weir::runtime::control::{DeploymentControl, RestoreFrom, RuntimeError};
use weir::runtime::record::topic_tag;
use weir::runtime::sinks::Guarantee;

use crate::support::kafka;
use crate::support::runtime::{assert_exactly_once, guarantees, read_topic, rig, user_records};

fn map_spec(input: &str, output: &str, interval_ms: u64, extra: &str) -> String {
    format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: udf, id: up, module: "upper@1", kind: map }}
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: {interval_ms}, retain: 3 }}
{extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_pass_a_map_exactly_once_to_a_kafka_sink() {
    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 4).await;
    kafka::create_topic(&rig.brokers, &output, 3).await;
    let n = 2_000;
    kafka::produce(
        &kafka::producer(&rig.brokers),
        &input,
        &user_records(n, 10, 4, 0),
    )
    .await;

    rig.start(
        &map_spec(&input, &output, 1_000, ""),
        1,
        2,
        RestoreFrom::Nothing,
    )
    .await;
    let outs = read_topic(&rig.brokers, &output, 3, n).await;
    let by_pos = assert_exactly_once(&outs, n);
    let sample = by_pos.values().next().unwrap();
    assert!(sample.value.contains("\"USER\":\"U"), "{}", sample.value);
    assert_eq!(sample.origin().0, topic_tag(&input));

    let st = rig.status().await;
    assert_eq!(st.tasks.len(), 2);
    assert_eq!(st.tasks.iter().map(|t| t.records_in).sum::<u64>(), n as u64);
    assert_eq!(guarantees(&st), [Guarantee::DeterministicReplay]);
    let ck = rig.runtime.checkpoint(&rig.key).await.unwrap();
    let list = rig.runtime.checkpoints(&rig.key).await.unwrap();
    assert_eq!(list[0].id, ck.id, "newest first");
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_restores_without_loss_or_duplicates() {
    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    let n = 6_000;
    kafka::produce(
        &kafka::producer(&rig.brokers),
        &input,
        &user_records(n, 10, 2, 0),
    )
    .await;

    // Rate-limited so the kills land mid-stream; frequent checkpoints so the
    // restore starts from a recent one and replays the rest.
    let spec = map_spec(&input, &output, 200, "rate_limit: 3000");
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(1_500, 120).await;
    assert!(rig.runtime.kill_task(&rig.key, 0).unwrap());
    rig.wait_records_in(3_000, 120).await;
    assert!(rig.runtime.kill_task(&rig.key, 1).unwrap());

    let outs = read_topic(&rig.brokers, &output, 2, n).await;
    assert_exactly_once(&outs, n);
    let st = rig.wait_all_running(60).await;
    assert!(st.tasks.iter().all(|t| t.restarts == 1), "{st:?}");
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

/// A second crash while a restored task still skips what it had written.
/// Source partition 0's outputs are on the sink from before the first
/// crash; partition 1's records arrive only after it. A fetch brings at
/// most 1 MiB of a partition, and partition 0's records are 2 KiB each, so
/// replay reads a part of partition 0 (skipped), then all of partition 1
/// (written new, past all of partition 0's outputs), then the rest of
/// partition 0: a checkpoint taken then must not record the sink's end, or
/// the restore from it would write the rest of partition 0 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crash_during_the_replay_skip_window_duplicates_nothing() {
    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 1).await;
    let p = kafka::producer(&rig.brokers);
    let pad = "x".repeat(2_000);
    let on = |partition: i32, recs: Vec<(i32, String, String)>, pad: &str| -> Vec<_> {
        recs.into_iter()
            .map(|(_, k, v)| {
                (
                    partition,
                    k,
                    v.replacen('{', &format!("{{\"pad\":\"{pad}\","), 1),
                )
            })
            .collect()
    };
    let (first, second) = (4_000, 2_000);

    // Checkpoints only when asked; rate-limited so the replay's pages take
    // seconds each.
    let spec = map_spec(&input, &output, 3_600_000, "rate_limit: 2000");
    rig.start(&spec, 1, 1, RestoreFrom::Nothing).await;
    rig.wait_all_running(60).await;
    rig.runtime.checkpoint(&rig.key).await.unwrap();
    kafka::produce(&p, &input, &on(0, user_records(first, 10, 1, 0), &pad)).await;
    read_topic(&rig.brokers, &output, 1, first).await;

    // First crash: all of partition 0's outputs are past the checkpoint.
    assert!(rig.runtime.kill_task(&rig.key, 0).unwrap());
    kafka::produce(&p, &input, &on(1, user_records(second, 10, 1, first), "")).await;
    // Partition 1's first new outputs are on the sink: partition 0 is
    // still being skipped.
    let (b, t) = (rig.brokers.clone(), output.clone());
    tokio::task::spawn_blocking(move || {
        use rdkafka::Message;
        let c = kafka::assigned_consumer(&b, &t, 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            assert!(std::time::Instant::now() < deadline, "no new output");
            if let Some(Ok(m)) = c.poll(std::time::Duration::from_millis(100)) {
                if m.offset() >= first as i64 {
                    break;
                }
            }
        }
    })
    .await
    .unwrap();
    rig.runtime.checkpoint(&rig.key).await.unwrap();
    assert!(rig.runtime.kill_task(&rig.key, 0).unwrap());

    let outs = read_topic(&rig.brokers, &output, 1, first + second).await;
    assert_exactly_once(&outs, first + second);
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_redeploy_resumes_from_the_final_checkpoint() {
    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 1).await;
    let p = kafka::producer(&rig.brokers);
    kafka::produce(&p, &input, &user_records(500, 5, 2, 0)).await;
    let spec = map_spec(&input, &output, 60_000, "");
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(500, 120).await;
    let last = rig
        .runtime
        .stop(&rig.key, 1, true)
        .await
        .unwrap()
        .expect("final checkpoint");
    kafka::produce(&p, &input, &user_records(500, 5, 2, 500)).await;
    rig.start(&spec, 2, 1, RestoreFrom::Checkpoint(last.id.clone()))
        .await;
    let outs = read_topic(&rig.brokers, &output, 1, 1_000).await;
    assert_exactly_once(&outs, 1_000);
    // A stale generation is refused.
    let err = rig.runtime.stop(&rig.key, 1, false).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::StaleGeneration {
                requested: 1,
                current: 2
            }
        ),
        "{err}"
    );
    rig.runtime.stop(&rig.key, 2, false).await.unwrap();
}

// The whole-process SIGKILL test is in cluster.rs: it kills a real
// `weir serve` mid-stream and starts it again.

/// What lag tools read: after a checkpoint the job's consumer group
/// (`weir-<tenant>-<job>`) holds the checkpoint's offsets, readable by any
/// Kafka client through the standard OffsetFetch API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_readable_by_a_standard_kafka_client() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    let n = 1_000;
    kafka::produce(
        &kafka::producer(&rig.brokers),
        &input,
        &user_records(n, 10, 2, 0),
    )
    .await;
    rig.start(
        &map_spec(&input, &output, 60_000, ""),
        1,
        2,
        RestoreFrom::Nothing,
    )
    .await;
    read_topic(&rig.brokers, &output, 2, n).await;
    rig.runtime.checkpoint(&rig.key).await.unwrap();

    let group = format!("weir-{}-{}", rig.key.tenant, rig.key.job);
    let committed = crate::support::eventually(
        std::time::Duration::from_secs(30),
        "the group's committed offsets",
        || {
            let (brokers, group, input) = (rig.brokers.clone(), group.clone(), input.clone());
            async move {
                let offsets = tokio::task::spawn_blocking(move || {
                    let c: BaseConsumer = ClientConfig::new()
                        .set("bootstrap.servers", &brokers)
                        .set("group.id", &group)
                        .create()
                        .unwrap();
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&input, 0);
                    tpl.add_partition(&input, 1);
                    c.committed_offsets(tpl, std::time::Duration::from_secs(10))
                        .ok()
                        .map(|t| {
                            t.elements()
                                .iter()
                                .map(|e| match e.offset() {
                                    Offset::Offset(o) => o,
                                    _ => 0,
                                })
                                .collect::<Vec<i64>>()
                        })
                })
                .await
                .unwrap()?;
                (offsets.iter().sum::<i64>() == n as i64).then_some(offsets)
            }
        },
    )
    .await;
    assert_eq!(committed.len(), 2);
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}
