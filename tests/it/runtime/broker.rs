//! What the Kafka-compatible broker on 127.0.0.1:9092 (tansu 0.6) supports,
//! measured with the same client library the runtime uses. docs/kafka-on-tansu.md
//! records these results; when a test here starts failing after a broker
//! upgrade, update that page and the runtime's guarantees with it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::support::kafka;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir::runtime::record::{
    encode_id, topic_tag, OutputId, H_ID, H_ORIGIN, H_SEQ, H_SOURCE_OFFSET, H_SOURCE_PARTITION,
    H_SOURCE_TOPIC,
};

#[tokio::test]
async fn topics_are_created_through_the_admin_api_with_partitions() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-admin");
    kafka::create_topic(&b, &topic, 3).await;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .unwrap();
    let md = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || {
            c.fetch_metadata(Some(&topic), Duration::from_secs(10))
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
}

#[tokio::test]
async fn headers_keys_and_create_timestamps_round_trip() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-headers");
    kafka::create_topic(&b, &topic, 2).await;
    let p = kafka::producer(&b);
    let (part, off) = kafka::produce_with_headers(
        &p,
        &topic,
        1,
        "v1",
        &[("weir-src", b"t/0/7"), ("x", b"y")],
        Some(1_700_000_000_123),
    )
    .await;
    assert_eq!((part, off), (1, 0));
    let recs = tokio::task::spawn_blocking(move || kafka::read_all(&b, &topic, 2, 1))
        .await
        .unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(
        recs[0].headers.get("weir-src").map(String::as_str),
        Some("t/0/7")
    );
    assert_eq!(recs[0].headers.get("x").map(String::as_str), Some("y"));
    assert_eq!(recs[0].timestamp, Some(1_700_000_000_123));
}

/// Outputs written by earlier versions of Weir (the `weir-origin` text
/// header, or the four headers before it) are still found by the replay
/// scan beside today's compact `weir-id`, so a restore over a sink that
/// holds both writes neither again.
#[tokio::test]
async fn the_replay_scan_reads_every_identity_form_weir_has_written() {
    let b = kafka::brokers();
    let sink = kafka::unique_topic("probe-ids");
    let source = kafka::unique_topic("probe-ids-src");
    kafka::create_topic(&b, &sink, 1).await;
    let p = kafka::producer(&b);
    let mut compact = Vec::new();
    encode_id(&(topic_tag(&source), 1, 40, 0), &mut compact);
    let text = format!("{source}/1/41/2");
    let other = format!("{source}-other/1/42/0");
    let before = format!("{source}/1/39/0");
    let forms: [&[(&str, &[u8])]; 5] = [
        &[(H_ID, &compact[..]), ("x", b"y")],
        &[(H_ORIGIN, text.as_bytes())],
        &[
            (H_SOURCE_TOPIC, source.as_bytes()),
            (H_SOURCE_PARTITION, b"1"),
            (H_SOURCE_OFFSET, b"42"),
            (H_SEQ, b"1"),
        ],
        // Another source's output, and one before the restored offset: not wanted.
        &[(H_ORIGIN, other.as_bytes())],
        &[(H_ORIGIN, before.as_bytes())],
    ];
    for (i, headers) in forms.iter().enumerate() {
        kafka::produce_with_headers(&p, &sink, 0, &format!("v{i}"), headers, None).await;
    }
    let from = BTreeMap::from([(0, 0)]);
    let tag = topic_tag(&source);
    let seen = tokio::task::spawn_blocking(move || {
        let wanted = move |id: &OutputId| id.0 == tag && id.1 == 1 && id.2 >= 40;
        weir::runtime::kafka::scan_written(&b, &sink, &from, false, &wanted).unwrap()
    })
    .await
    .unwrap();
    let expected = HashMap::from([
        ((tag, 1, 40, 0), (0, 0)),
        ((tag, 1, 41, 2), (0, 1)),
        ((tag, 1, 42, 1), (0, 2)),
    ]);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn assigned_consumer_commits_group_offsets_and_reads_watermarks() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-commit");
    kafka::create_topic(&b, &topic, 2).await;
    let p = kafka::producer(&b);
    let recs: Vec<_> = (0..10)
        .map(|i| (i % 2, format!("k{i}"), format!("v{i}")))
        .collect();
    kafka::produce(&p, &topic, &recs).await;
    let group = format!("weir-probe-{}", uuid::Uuid::new_v4().simple());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        // Watermarks: low 0, high = records in the partition.
        let (lo, hi) = c
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap();
        assert_eq!((lo, hi), (0, 5));
        // Explicit assignment at an offset, no group join.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(3))
            .unwrap();
        c.assign(&tpl).unwrap();
        let m = loop {
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                break m.unwrap();
            }
        };
        use rdkafka::message::Message;
        assert_eq!(m.offset(), 3);
        // Commit without being a group member (generation -1), read it back.
        let mut commit = TopicPartitionList::new();
        commit
            .add_partition_offset(&topic, 0, Offset::Offset(4))
            .unwrap();
        c.commit(&commit, CommitMode::Sync).unwrap();
        let mut q = TopicPartitionList::new();
        q.add_partition(&topic, 0);
        let got = c.committed_offsets(q, Duration::from_secs(10)).unwrap();
        assert_eq!(
            got.find_partition(&topic, 0).unwrap().offset(),
            Offset::Offset(4)
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn offsets_for_times_finds_the_first_record_at_a_timestamp() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-times");
    kafka::create_topic(&b, &topic, 1).await;
    let p = kafka::producer(&b);
    for (i, ts) in [1_000i64, 2_000, 3_000].into_iter().enumerate() {
        kafka::produce_with_headers(&p, &topic, 0, &format!("v{i}"), &[], Some(ts)).await;
    }
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(1_500))
            .unwrap();
        let got = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        assert_eq!(
            got.find_partition(&topic, 0).unwrap().offset(),
            Offset::Offset(1)
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn idempotent_producer_is_accepted() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-idem");
    kafka::create_topic(&b, &topic, 1).await;
    let res = tokio::task::spawn_blocking({
        let b = b.clone();
        let topic = topic.clone();
        move || {
            let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
                .set("bootstrap.servers", &b)
                .set("enable.idempotence", "true")
                .create()
                .unwrap();
            for i in 0..5 {
                p.send(
                    BaseRecord::<(), _>::to(&topic)
                        .partition(0)
                        .payload(&format!("v{i}")),
                )
                .map_err(|(e, _)| e)
                .unwrap();
            }
            p.flush(Timeout::After(Duration::from_secs(10)))
        }
    })
    .await
    .unwrap();
    assert!(res.is_ok(), "{res:?}");
    let recs = tokio::task::spawn_blocking(move || kafka::read_all(&b, &topic, 1, 5))
        .await
        .unwrap();
    assert_eq!(recs.len(), 5);
}

#[tokio::test]
async fn transactions_are_not_supported() {
    let b = kafka::brokers();
    let topic = kafka::unique_topic("probe-txn");
    kafka::create_topic(&b, &topic, 1).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set(
                "transactional.id",
                format!("probe-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("transaction.timeout.ms", "10000")
            .create()
            .unwrap();
        let t = Timeout::After(Duration::from_secs(10));
        p.init_transactions(t).map_err(|e| format!("init: {e}"))?;
        p.begin_transaction().map_err(|e| format!("begin: {e}"))?;
        p.send(
            BaseRecord::<(), _>::to(&topic)
                .partition(0)
                .payload("in-txn"),
        )
        .map_err(|(e, _)| format!("send: {e}"))?;
        p.commit_transaction(t).map_err(|e| format!("commit: {e}"))
    })
    .await
    .unwrap();
    eprintln!("transactions on this broker: {outcome:?}");
    assert!(
        outcome.is_err(),
        "the broker now commits transactions: update docs/kafka-on-tansu.md"
    );
}

/// tansu 0.6 with the memory storage engine answers ListOffsets(latest) with
/// the base offset of the last record batch + 1, not the offset after its
/// last record: with batched produce the reported end trails the real one
/// (the sqlite engine reports it correctly). The runtime therefore never
/// uses it as an upper bound (see `runtime::kafka::scan_written`).
#[tokio::test]
async fn memory_engine_list_offsets_reports_the_last_batch_base_not_the_end() {
    let b = kafka::private_memory_broker();
    let topic = kafka::unique_topic("probe-hw");
    kafka::create_topic(&b, &topic, 1).await;
    let (delivered, reported) = tokio::task::spawn_blocking(move || {
        let p = weir::runtime::kafka::TrackedProducer::new(
            &b,
            None,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        let c = weir::runtime::kafka::admin_consumer(&b).unwrap();
        for round in 0..2 {
            for i in 0..100 {
                let v = format!("r{round}-{i}");
                p.send(
                    BaseRecord::<[u8], [u8]>::to(&topic)
                        .partition(0)
                        .payload(v.as_bytes()),
                )
                .unwrap();
            }
            p.flush(Duration::from_secs(20)).unwrap();
        }
        let delivered = p.delivered_ends(&topic)[&0];
        let reported = c
            .fetch_watermarks(&topic, 0, Duration::from_secs(10))
            .unwrap()
            .1;
        (delivered, reported)
    })
    .await
    .unwrap();
    assert_eq!(delivered, 200);
    assert!(
        reported < delivered,
        "ListOffsets now reports the real end ({reported}): update docs/kafka-on-tansu.md"
    );
}

/// Reads from an offset inside a record batch on `brokers`; returns how many
/// records of the 100-record batch came back from offset 50.
async fn read_from_mid_batch(brokers: String) -> usize {
    let topic = kafka::unique_topic("probe-midbatch");
    kafka::create_topic(&brokers, &topic, 1).await;
    tokio::task::spawn_blocking(move || {
        let p = weir::runtime::kafka::TrackedProducer::new(
            &brokers,
            None,
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        for i in 0..100 {
            let v = format!("v{i}");
            p.send(
                BaseRecord::<[u8], [u8]>::to(&topic)
                    .partition(0)
                    .payload(v.as_bytes()),
            )
            .unwrap();
        }
        p.flush(Duration::from_secs(20)).unwrap();
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "probe-midbatch")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(50))
            .unwrap();
        c.assign(&tpl).unwrap();
        kafka::read_until(&c, 50, Duration::from_secs(1), Duration::from_secs(8)).len()
    })
    .await
    .unwrap()
}

/// The sqlite engine serves a fetch that starts inside a record batch.
#[tokio::test]
async fn sqlite_engine_fetches_from_inside_a_batch() {
    assert_eq!(read_from_mid_batch(kafka::brokers()).await, 50);
}

/// The memory engine returns nothing for a fetch that starts inside a record
/// batch: a consumer resuming there (e.g. after a restore) waits forever.
#[tokio::test]
async fn memory_engine_returns_nothing_for_a_fetch_inside_a_batch() {
    let got = read_from_mid_batch(kafka::private_memory_broker()).await;
    assert_eq!(
        got, 0,
        "the memory engine now serves mid-batch fetches: update docs/kafka-on-tansu.md"
    );
}

/// Weir's tansu patch: an idempotent producer that outlives its broker
/// sends with a producer id and epoch the broker may not know. tansu 0.6
/// panicked on that ("more or less than one row") and failed every request
/// from then on; patched, it answers `InvalidProducerEpoch`. Here the broker
/// crashes twice under a long-lived idempotent producer: once keeping its
/// database, once losing it (so the epoch is surely unknown). Each time
/// every send of the old producer ends, acknowledged or refused, a new
/// producer is served, and nothing acknowledged since the database was
/// last intact is lost or written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_across_broker_crashes_does_not_wedge_the_broker() {
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let mut broker = kafka::RestartableBroker::start();
    let b = broker.addr.clone();
    let topic = kafka::unique_topic("probe-epoch");
    kafka::create_topic(&b, &topic, 1).await;
    let idempotent = || -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "20000")
            .create()
            .unwrap()
    };
    let send = |p: &FutureProducer, value: String| {
        let (p, topic) = (p.clone(), topic.clone());
        async move {
            p.send(
                FutureRecord::to(&topic).key("k").payload(&value),
                Duration::from_secs(25),
            )
            .await
            .map(|_| value)
            .map_err(|(e, _)| e.to_string())
        }
    };
    let old = idempotent();
    for (round, lose_storage) in [(0, false), (1, true)] {
        let mut acked = Vec::new();
        if !lose_storage {
            for i in 0..50 {
                acked.push(
                    send(&old, format!("{round}-before-{i}"))
                        .await
                        .expect("acknowledged"),
                );
            }
        }
        broker.crash_and_restart(lose_storage);
        if lose_storage {
            kafka::create_topic(&b, &topic, 1).await;
        }
        // The old producer: every send ends; none hangs.
        // Sent at once: a refused send takes its whole message timeout.
        let mut refused = Vec::new();
        let sends = (0..50).map(|i| send(&old, format!("{round}-after-{i}")));
        for r in futures::future::join_all(sends).await {
            match r {
                Ok(v) => acked.push(v),
                Err(e) => refused.push(e),
            }
        }
        // A new producer is served: the broker is not wedged.
        let fresh = idempotent();
        for i in 0..50 {
            let v = send(&fresh, format!("{round}-fresh-{i}"))
                .await
                .unwrap_or_else(|e| panic!("the broker no longer serves: {e}\n{}", broker.log()));
            acked.push(v);
        }
        let read = {
            let (b, topic) = (b.clone(), topic.clone());
            tokio::task::spawn_blocking(move || kafka::read_all(&b, &topic, 1, 50))
                .await
                .unwrap()
        };
        let mut values: Vec<String> = read
            .into_iter()
            .map(|r| r.value)
            .filter(|v| v.starts_with(&format!("{round}-")))
            .collect();
        values.sort();
        let mut unique = values.clone();
        unique.dedup();
        assert_eq!(
            unique.len(),
            values.len(),
            "round {round}: a record was written twice"
        );
        for v in &acked {
            assert!(
                values.contains(v),
                "round {round}: acknowledged `{v}` is lost"
            );
        }
        eprintln!(
            "round {round} (storage {}): the old producer had {} of 50 sends acknowledged after the crash; first refusal: {:?}",
            if lose_storage { "lost" } else { "kept" },
            50 - refused.len(),
            refused.first()
        );
    }
    assert!(
        !broker.log().contains("panicked"),
        "the broker panicked: {}",
        broker.log()
    );
}
