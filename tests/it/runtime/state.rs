//! Keyed state across restores and rescales; dead letters.

use std::collections::BTreeMap;

use weir::runtime::control::{DeploymentControl, RestoreFrom};

use crate::support::kafka;
use crate::support::runtime::{assert_exactly_once, read_topic, rig, user_records};

fn count_spec(input: &str, output: &str) -> String {
    format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: key_by, id: by-user, field: user }}
  - {{ type: udf, id: count, module: "count@1", kind: process }}
sinks: [{{ type: kafka, topic: {output} }}]
checkpoint: {{ interval_ms: 300, retain: 2 }}
"#
    )
}

/// The highest count seen per key.
fn final_counts(outs: &[kafka::ReadRecord]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in outs {
        let v: serde_json::Value = serde_json::from_str(&r.value).unwrap();
        let key = v["key"].as_str().unwrap().to_owned();
        let n = v["count"].as_u64().unwrap();
        let e = m.entry(key).or_insert(0);
        *e = (*e).max(n);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_counts_survive_a_task_kill_and_rescales_2_4_1() {
    let rig = rig().await;
    let (input, output) = (kafka::unique_topic("in"), kafka::unique_topic("out"));
    kafka::create_topic(&rig.brokers, &input, 4).await;
    kafka::create_topic(&rig.brokers, &output, 2).await;
    let p = kafka::producer(&rig.brokers);
    let spec = count_spec(&input, &output);
    let users = 12;

    // Generation 1: parallelism 2, one task killed mid-stream.
    kafka::produce(&p, &input, &user_records(1_200, users, 4, 0)).await;
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    rig.wait_records_in(600, 120).await;
    rig.runtime.kill_task(&rig.key, 1).unwrap();
    read_topic(&rig.brokers, &output, 2, 1_200).await;
    rig.runtime.stop(&rig.key, 1, true).await.unwrap();

    // Generation 2: parallelism 4 — every partition moves, with its state.
    kafka::produce(&p, &input, &user_records(1_200, users, 4, 1_200)).await;
    rig.start(&spec, 2, 4, RestoreFrom::Latest).await;
    // Two stages (key_by → repartition topic → count), four tasks each.
    assert_eq!(rig.status().await.tasks.len(), 8);
    read_topic(&rig.brokers, &output, 2, 2_400).await;
    rig.runtime.stop(&rig.key, 2, true).await.unwrap();

    // Generation 3: parallelism 1 — all partitions back on one task.
    kafka::produce(&p, &input, &user_records(1_200, users, 4, 2_400)).await;
    rig.start(&spec, 3, 1, RestoreFrom::Latest).await;
    assert_eq!(rig.status().await.tasks.len(), 2);
    let outs = read_topic(&rig.brokers, &output, 2, 3_600).await;
    assert_exactly_once(&outs, 3_600);
    let counts = final_counts(&outs);
    assert_eq!(counts.len(), users);
    for (user, n) in &counts {
        assert_eq!(*n, 3_600 / users as u64, "count of {user}");
    }
    rig.runtime.stop(&rig.key, 3, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_topic_with_headers_and_the_rest_flow_on() {
    let rig = rig().await;
    let (input, output, dlq) = (
        kafka::unique_topic("in"),
        kafka::unique_topic("out"),
        kafka::unique_topic("dlq"),
    );
    kafka::create_topic(&rig.brokers, &input, 2).await;
    kafka::create_topic(&rig.brokers, &output, 1).await;
    kafka::create_topic(&rig.brokers, &dlq, 1).await;
    let mut recs = Vec::new();
    for i in 0..300 {
        let value = match i % 30 {
            7 => "this is not json".to_owned(),
            13 => serde_json::json!({"user": "u", "note": "poison"}).to_string(),
            _ => serde_json::json!({"user": "u", "n": i}).to_string(),
        };
        recs.push((i % 2, format!("k{i}"), value));
    }
    kafka::produce(&kafka::producer(&rig.brokers), &input, &recs).await;
    let spec = format!(
        r#"
sources: [{{ topic: {input} }}]
operators:
  - {{ type: udf, id: guard, module: "reject-poison@1", kind: map }}
sinks: [{{ type: kafka, topic: {output} }}]
dead_letter_topic: {dlq}
"#
    );
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    let outs = read_topic(&rig.brokers, &output, 1, 280).await;
    assert_exactly_once(&outs, 280);
    let dead = read_topic(&rig.brokers, &dlq, 1, 20).await;
    assert_eq!(dead.len(), 20);
    for d in &dead {
        let h = |k: &str| d.headers.get(k).cloned().unwrap_or_default();
        assert_eq!(h("weir-source-topic"), input);
        let partition: i32 = h("weir-source-partition").parse().unwrap();
        let offset: i64 = h("weir-source-offset").parse().unwrap();
        // Records alternate partitions: source index = offset * 2 + partition.
        let i = offset * 2 + partition as i64;
        match i % 30 {
            7 => {
                assert_eq!(h("weir-dlq-module"), "decode");
                assert!(h("weir-dlq-reason").contains("not JSON"), "{d:?}");
                assert_eq!(d.value, "this is not json");
            }
            13 => {
                assert_eq!(h("weir-dlq-module"), "reject-poison@1");
                assert!(h("weir-dlq-reason").contains("poison"), "{d:?}");
            }
            other => panic!("record {i} ({other}) should not be dead-lettered: {d:?}"),
        }
        assert_eq!(d.key.as_deref(), Some(format!("k{i}").as_str()));
    }
    let st = rig.status().await;
    assert_eq!(st.tasks.iter().map(|t| t.dead_lettered).sum::<u64>(), 20);
    rig.runtime.stop(&rig.key, 1, false).await.unwrap();
}
