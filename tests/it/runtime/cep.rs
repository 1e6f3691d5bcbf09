//! A `cep` operator on the real broker, its rule in Weir's stock rule
//! component (WASM): a fraud rule after a `key_by`, its
//! matches exactly once across task kills and a rescale 2 → 4 → 1, with
//! buffered events spanning each of them and partial matches spanning a
//! kill, timed-out partial matches and late records on their side topics.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use weir::runtime::control::{DeploymentControl, RestoreFrom};

use crate::support::kafka;
use weir::runtime::NativeModules;

use crate::support::runtime::{
    assert_exactly_once, cep_component, read_topic, rig_with, test_config,
};

const USERS: usize = 10;
const CYCLES: usize = 30;
const PARTITIONS: i32 = 4;
/// The sources' out-of-orderness: no record of the test is ever that far
/// behind, so only the flush records below move the watermark.
const OOO_MS: i64 = 100_000;
/// Keys of the flush records: enough that every repartition partition gets one.
const FLUSH_KEYS: usize = 64;

/// Event times start here (a recent time: brokers may expire or refuse
/// records stamped decades ago).
pub(super) fn base() -> i64 {
    use std::sync::OnceLock;
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| chrono::Utc::now().timestamp_millis() / 10_000 * 10_000 - 3_600_000)
}

pub(super) const RULE: &str = r#"
name: fraud
within_ms: 800
skip: { strategy: skip_past_last_event }
steps:
  - name: fail
    where: status == "failed"
    quantifier: { min: 3, max: 3 }
  - name: ok
    where: status == "ok"
"#;

/// A user's cycle `c` is four events 200 ms apart from `c * 2000`: three
/// failures then a success (one match), or, one cycle in five, two failures
/// then two other events (two partial matches that time out at +800 and
/// +1000).
pub(super) fn complete(user: usize, cycle: usize) -> bool {
    (cycle + user) % 5 != 4
}

/// Event `j` (0..4) of user `user`'s cycle `cycle`, 200 ms apart from
/// `cycle * 2000`, as JSON.
pub(super) fn event(user: usize, cycle: usize, j: usize) -> String {
    let status = match (complete(user, cycle), j) {
        (_, 0 | 1) | (true, 2) => "failed",
        (true, _) => "ok",
        (false, _) => "browse",
    };
    let ts = base() + (cycle * 2000 + j * 200) as i64;
    json!({"user": format!("u{user}"), "status": status, "c": cycle, "j": j, "ts": ts}).to_string()
}

fn cycles(from: usize, to: usize) -> Vec<(i32, String, String)> {
    let mut out = Vec::new();
    for c in from..to {
        for u in 0..USERS {
            for j in 0..4 {
                out.push(((u as i32) % PARTITIONS, format!("u{u}"), event(u, c, j)));
            }
        }
    }
    out
}

/// Records whose time moves every partition's watermark to `watermark`.
fn flush(watermark: i64) -> Vec<(i32, String, String)> {
    (0..FLUSH_KEYS)
        .map(|k| {
            let v = json!({"user": format!("flush{k}"), "status": "flush", "ts": watermark + OOO_MS + 1});
            ((k as i32) % PARTITIONS, format!("flush{k}"), v.to_string())
        })
        .collect()
}

/// Moves the watermark just past the second failure of cycle `c`, so every
/// partial match of that cycle is open when the test kills or rescales.
fn mid_cycle(c: usize) -> i64 {
    base() + (c * 2000 + 300) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cep_matches_are_exactly_once_across_a_kill_and_rescales() {
    // The rule runs in Weir's stock rule component, in the WASM sandbox.
    let modules = NativeModules::builtins().with_cep_component(cep_component());
    let rig = rig_with(modules, test_config(kafka::runtime_brokers())).await;
    let t = |p: &str| kafka::unique_topic(p);
    let (input, output, timeouts, late, dlq) =
        (t("logins"), t("alerts"), t("timeouts"), t("late"), t("dlq"));
    kafka::create_topic(&rig.brokers, &input, PARTITIONS).await;
    for topic in [&output, &timeouts, &late, &dlq] {
        kafka::create_topic(&rig.brokers, topic, 2).await;
    }
    let p = kafka::producer(&rig.brokers);
    let rule = RULE.replace('\n', "\n      ");
    let spec = format!(
        r#"
sources: [{{ topic: {input}, event_time_field: ts, max_out_of_orderness: {OOO_MS}ms }}]
operators:
  - {{ type: key_by, id: by-user, field: user }}
  - type: cep
    id: fraud
    timed_out_topic: {timeouts}
    late_topic: {late}
    rule: |{rule}
sinks: [{{ type: kafka, topic: {output} }}]
dead_letter_topic: {dlq}
checkpoint: {{ interval_ms: 300, retain: 2 }}
"#
    );

    // The CEP operator's watermark is its partition's largest event time
    // minus the out-of-orderness (docs/cep.md): a record that reaches a
    // repartition partition after a later-stamped one from another upstream
    // task, by more than that, is late. So the test moves the watermark
    // (flush records) only once everything before has gone through both
    // stages, and at parallelism 1.
    //
    // Phase 1 at parallelism 2, with a kill of the first CEP task: every
    // event is still buffered (nothing is behind the watermark yet).
    kafka::produce(&p, &input, &cycles(0, 10)).await;
    rig.start(&spec, 1, 2, RestoreFrom::Nothing).await;
    let st = rig.status().await;
    assert_eq!(st.tasks.len(), 4, "key_by stage and cep stage: {st:?}");
    let phase = (10 * USERS * 4) as u64;
    rig.wait_records_in(2 * phase, 120).await;
    rig.runtime.kill_task(&rig.key, 2).unwrap();
    rig.wait_restarted(2, 60).await;

    // Phase 2 at parallelism 4, with one record that is not JSON.
    rig.runtime.stop(&rig.key, 1, true).await.unwrap();
    rig.start(&spec, 2, 4, RestoreFrom::Latest).await;
    assert_eq!(rig.status().await.tasks.len(), 8);
    kafka::produce(&p, &input, &cycles(10, 20)).await;
    kafka::produce(&p, &input, &[(0, "bad".into(), "{not json".into())]).await;
    rig.wait_records_in(2 * phase + 1, 120).await;

    // Phase 3 at parallelism 1; the watermark moves into cycle 29, so its
    // partial matches are open in the NFA when the CEP task is killed, and
    // records stamped before it are late.
    rig.runtime.stop(&rig.key, 2, true).await.unwrap();
    rig.start(&spec, 3, 1, RestoreFrom::Latest).await;
    kafka::produce(&p, &input, &cycles(20, CYCLES)).await;
    rig.wait_records_in(2 * phase, 120).await;
    kafka::produce(&p, &input, &flush(mid_cycle(29))).await;
    rig.wait_records_in(2 * (phase + FLUSH_KEYS as u64), 120)
        .await;
    let stale: Vec<_> = (0..USERS)
        .map(|u| {
            let v = json!({"user": format!("u{u}"), "status": "failed", "ts": base() + 5});
            ((u as i32) % PARTITIONS, format!("u{u}"), v.to_string())
        })
        .collect();
    kafka::produce(&p, &input, &stale).await;
    rig.wait_records_in(2 * (phase + FLUSH_KEYS as u64 + USERS as u64), 120)
        .await;
    rig.runtime.kill_task(&rig.key, 1).unwrap();
    rig.wait_restarted(1, 60).await;
    kafka::produce(&p, &input, &flush(base() + 3_000_000)).await;

    // Every complete cycle matched once, with its events in full.
    let want: BTreeSet<(String, u64)> = (0..CYCLES)
        .flat_map(|c| (0..USERS).map(move |u| (u, c)))
        .filter(|&(u, c)| complete(u, c))
        .map(|(u, c)| (format!("u{u}"), c as u64))
        .collect();
    let outs = read_topic(&rig.brokers, &output, 2, want.len()).await;
    assert_exactly_once(&outs, want.len());
    let mut got = BTreeSet::new();
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        assert_eq!(m["rule"], "fraud");
        let user = m["key"].as_str().unwrap().to_owned();
        assert_eq!(r.key.as_deref(), Some(user.as_str()));
        let fails = m["steps"]["fail"].as_array().unwrap();
        let c = fails[0]["c"].as_u64().unwrap();
        let js: Vec<_> = fails.iter().map(|e| e["j"].as_u64().unwrap()).collect();
        assert_eq!(js, [0, 1, 2], "{m}");
        assert!(
            fails
                .iter()
                .all(|e| e["c"] == c && e["user"] == user.as_str()),
            "{m}"
        );
        assert_eq!(m["steps"]["ok"][0]["j"], 3, "{m}");
        let first = base() + c as i64 * 2000;
        assert_eq!(m["first_event_time"], first, "{m}");
        assert_eq!(m["last_event_time"], first + 600, "{m}");
        assert!(got.insert((user, c)), "matched twice: {m}");
    }
    assert_eq!(got, want);

    // Each incomplete cycle timed out twice (from its first and its second
    // failure), on the side topic only.
    let incomplete = CYCLES * USERS - want.len();
    let outs = read_topic(&rig.brokers, &timeouts, 2, 2 * incomplete).await;
    assert_exactly_once(&outs, 2 * incomplete);
    let mut per: BTreeMap<(String, u64), Vec<i64>> = BTreeMap::new();
    for r in &outs {
        let m: Value = serde_json::from_str(&r.value).unwrap();
        assert_eq!(m["timed_out"], true, "{m}");
        assert_eq!(r.headers["weir-side-output"], "fraud:timed_out");
        let first = &m["steps"]["fail"][0];
        per.entry((
            m["key"].as_str().unwrap().into(),
            first["c"].as_u64().unwrap(),
        ))
        .or_default()
        .push(m["timeout_at"].as_i64().unwrap());
    }
    assert_eq!(per.len(), incomplete);
    for ((user, c), mut at) in per {
        at.sort_unstable();
        let base = base() + c as i64 * 2000;
        assert_eq!(at, [base + 800, base + 1000], "{user} cycle {c}");
        assert!(!complete(user[1..].parse().unwrap(), c as usize));
    }

    // The stale records went to the late topic, the garbled one to the DLQ.
    let outs = read_topic(&rig.brokers, &late, 2, USERS).await;
    assert_exactly_once(&outs, USERS);
    let users: BTreeSet<_> = outs
        .iter()
        .map(|r| {
            let m: Value = serde_json::from_str(&r.value).unwrap();
            assert_eq!(
                (m["late"].clone(), m["event_time"].clone()),
                (json!(true), json!(base() + 5))
            );
            m["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(users.len(), USERS);
    let dead = read_topic(&rig.brokers, &dlq, 2, 1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].headers["weir-dlq-module"], "decode");

    rig.runtime.stop(&rig.key, 3, false).await.unwrap();
}
