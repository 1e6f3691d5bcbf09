//! `key_by` repartitioning: keyed state is complete per key even when the
//! key is spread over every source partition, across task kills, and the
//! dead-letter topic still names where a bad record was read.

use std::collections::{BTreeMap, BTreeSet};

use weir::runtime::control::{DeploymentControl, RestoreFrom};
use weir::runtime::record::topic_tag;
use weir::runtime::topology::repartition_topic;

use crate::support::kafka;
use crate::support::runtime::{assert_exactly_once, read_topic, rig};

const USERS: usize = 7;
const PARTITIONS: i32 = 4;

/// `{"user":"u<i % 7>","n":i}` on partition `i % 4`: with 7 users and 4
/// partitions, every user's records land on every partition. Every 100th
/// record has no `user` (dead-lettered by the key_by) and every 100th + 50
/// is poison (dead-lettered by the UDF after the repartition).
fn records(from: usize, count: usize) -> Vec<(i32, String, String)> {
    (from..from + count)
        .map(|i| {
            let v = match i % 100 {
                0 => serde_json::json!({"n": i}),
                50 => {
                    serde_json::json!({"user": format!("u{}", i % USERS), "n": i, "poison": true})
                }
                _ => serde_json::json!({"user": format!("u{}", i % USERS), "n": i}),
            };
            (
                (i % PARTITIONS as usize) as i32,
                format!("k{i}"),
                v.to_string(),
            )
        })
        .collect()
}

fn good(from: usize, count: usize) -> Vec<usize> {
    (from..from + count)
        .filter(|i| i % 100 != 0 && i % 100 != 50)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_counts_are_exact_when_keys_span_all_partitions_across_kills() {
    let rig = rig().await;
    let (input, output, dlq) = (
        kafka::unique_topic("in"),
        kafka::unique_topic("out"),
        kafka::unique_topic("dlq"),
    );
    kafka::create_topic(&rig.brokers, &input, PARTITIONS).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    kafka::create_topic(&rig.brokers, &dlq, 1).await;
    let p = kafka::producer(&rig.brokers);
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: key_by, id: by-user, field: user }}
  - {{ type: udf, id: guard, module: "reject-poison@1", kind: map }}
  - {{ type: udf, id: count, module: "count@1", kind: process }}
sinks: [{{ type: kafka, topic: {output} }}]
dead_letter_topic: {dlq}
checkpoint: {{ interval_ms: 300, retain: 2 }}
rate_limit: 1500
"#
    );
    let (first, second) = (2_000, 1_000);
    kafka::produce(&p, &input, &records(0, first)).await;
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    let st = rig.status().await;
    // Two stages of two tasks: the key_by writing the repartition topic,
    // then the keyed UDFs reading it.
    assert_eq!(st.tasks.len(), 4, "{st:?}");
    assert_eq!(st.parallelism, 2);

    // Kill one task of each stage mid-stream (the rate limit keeps the
    // second stage busy), then feed more records to the restarted tasks.
    rig.wait_records_in(2_500, 120).await;
    rig.runtime.kill_task(&rig.key, 0).unwrap();
    rig.runtime.kill_task(&rig.key, 3).unwrap();
    kafka::produce(&p, &input, &records(first, second)).await;

    let expected = good(0, first + second);
    let outs = read_topic(&rig.brokers, &output, 2, expected.len()).await;
    let repartition = topic_tag(&repartition_topic(&rig.key.tenant, &rig.key.job, "by-user"));
    assert_exactly_once(&outs, expected.len());
    // Each key counted every one of its records once: counts 1..=N, each once.
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &outs {
        let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
        counts
            .entry(v["key"].as_str().unwrap().to_owned())
            .or_default()
            .push(v["count"].as_u64().unwrap());
        // Outputs name the repartition topic as their source (deterministic replay per stage).
        assert_eq!(r.origin().0, repartition, "{r:?}");
    }
    assert_eq!(counts.len(), USERS);
    for (user, mut seen) in counts {
        let u: usize = user[1..].parse().unwrap();
        let n = expected.iter().filter(|i| *i % USERS == u).count() as u64;
        seen.sort_unstable();
        assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "counts of {user}");
    }

    // Bad records from both stages, named by where they were read.
    let bad = (first + second) / 50;
    let dead = read_topic(&rig.brokers, &dlq, 1, bad).await;
    let mut seen = BTreeSet::new();
    for d in &dead {
        let h = |k: &str| d.headers.get(k).cloned().unwrap_or_default();
        assert_eq!(h("weir-source-topic"), input, "{d:?}");
        let v: serde_json::Value = serde_json::from_str(&d.value).unwrap();
        let i = v["n"].as_u64().unwrap() as usize;
        assert_eq!(h("weir-source-partition"), (i % 4).to_string(), "{d:?}");
        assert_eq!(h("weir-source-offset"), (i / 4).to_string(), "{d:?}");
        // The key is the record's when the dead letter happened: the
        // original before the key_by, the user after it.
        let (module, key) = if i % 100 == 0 {
            ("key_by:by-user", format!("k{i}"))
        } else {
            ("reject-poison@1", format!("u{}", i % USERS))
        };
        assert_eq!(h("weir-dlq-module"), module, "{d:?}");
        assert_eq!(d.key.as_deref(), Some(key.as_str()), "{d:?}");
        seen.insert(i);
    }
    // At-least-once for dead letters: a restore may send one again.
    assert_eq!(seen.len(), bad, "{dead:?}");

    let st = rig.status().await;
    assert_eq!(st.tasks[0].restarts, 1, "{st:?}");
    assert_eq!(st.tasks[3].restarts, 1, "{st:?}");
    rig.runtime.stop(&rig.key, 1, true).await.unwrap();

    // A rescale moves the repartition topic's partitions, with their state.
    let third = 700;
    kafka::produce(&p, &input, &records(first + second, third)).await;
    rig.start(&spec, 2, 1, RestoreFrom::Latest).await;
    assert_eq!(rig.status().await.tasks.len(), 2);
    let expected = good(0, first + second + third);
    let outs = read_topic(&rig.brokers, &output, 2, expected.len()).await;
    assert_exactly_once(&outs, expected.len());
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for r in &outs {
        let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
        let e = last
            .entry(v["key"].as_str().unwrap().to_owned())
            .or_default();
        *e = (*e).max(v["count"].as_u64().unwrap());
    }
    for (user, n) in last {
        let u: usize = user[1..].parse().unwrap();
        let want = expected.iter().filter(|i| *i % USERS == u).count() as u64;
        assert_eq!(n, want, "final count of {user}");
    }
    rig.runtime.stop(&rig.key, 2, false).await.unwrap();
}
