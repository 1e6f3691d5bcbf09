use super::*;
use serde_json::Value;

const FRAUD: &str = r#"
name: fraud
within_ms: 60000
steps:
  - name: fail
    where: status == "failed"
    quantifier: { min: 3, max: 3 }
  - name: ok
    where: status == "ok"
"#;

fn rec(user: &str, status: &str, ts: i64) -> Record {
    Record {
        key: Some(Bytes::from(user.to_owned())),
        value: Bytes::from(format!(
            r#"{{"user":"{user}","status":"{status}","ts":{ts}}}"#
        )),
        timestamp_ms: ts,
        headers: Vec::new(),
    }
}

fn op(rule: &str, timed_out: bool, late: bool) -> Box<dyn Operator> {
    let rule = crate::domain::cep_rule::parse(rule).unwrap();
    let opts = RunnerOptions {
        timed_out,
        late,
        ..RunnerOptions::default()
    };
    CepFactory::new("fraud", rule, opts)
        .unwrap()
        .instantiate()
        .unwrap()
}

fn ctx() -> BatchContext<'static> {
    BatchContext::whole(0, None)
}

/// Every output as `(input index, side tag, JSON)`.
fn outputs(results: &[RecordResult]) -> Vec<(usize, Option<String>, Value)> {
    let mut out = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if let RecordResult::Emit(recs) = r {
            for o in recs {
                let side = o
                    .headers
                    .iter()
                    .find(|(k, _)| k == H_SIDE_OUTPUT)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                out.push((i, side, serde_json::from_slice(&o.value).unwrap()));
            }
        }
    }
    out
}

/// A login stream over several users, with enough later records to move
/// the watermark past every match.
fn stream() -> Vec<Record> {
    let mut v = Vec::new();
    let mut ts = 1_000;
    for round in 0..40 {
        for user in ["ann", "bob", "cy"] {
            let status = match (user, round % 5) {
                ("cy", _) => "ok",
                (_, 4) => "ok",
                _ => "failed",
            };
            v.push(rec(user, status, ts));
            ts += 7;
        }
    }
    v
}

#[test]
fn matches_come_out_per_key_with_the_events_in_full_once_the_watermark_passes() {
    let mut op = op(FRAUD, false, false);
    let mut state = PartitionState::default();
    let recs = [
        rec("ann", "failed", 10),
        rec("bob", "failed", 11),
        rec("ann", "failed", 20),
        rec("ann", "failed", 30),
        rec("ann", "ok", 40),
        rec("bob", "ok", 41),
        rec("ann", "failed", 50),
    ];
    let res = op.process_batch(&recs, &mut state, ctx()).unwrap();
    let outs = outputs(&res);
    assert_eq!(outs.len(), 1, "{outs:?}");
    let (at, side, m) = &outs[0];
    // ann's `ok` at 40 completes the match once the watermark passes 40:
    // the record at 41 moves it to 40.
    assert_eq!((*at, side), (5, &None));
    assert_eq!(m["rule"], "fraud");
    assert_eq!(m["key"], "ann");
    assert_eq!(m["first_event_time"], 10);
    assert_eq!(m["last_event_time"], 40);
    assert_eq!(
        m["steps"]["fail"][0],
        serde_json::json!({"user": "ann", "status": "failed", "ts": 10})
    );
    assert_eq!(m["steps"]["fail"].as_array().map(Vec::len), Some(3));
    assert_eq!(m["steps"]["ok"][0]["ts"], 40);
    let RecordResult::Emit(recs) = &res[5] else {
        panic!("{:?}", res[5]);
    };
    assert_eq!(recs[0].key.as_deref(), Some(&b"ann"[..]));
    assert_eq!(recs[0].timestamp_ms, 40);
}

#[test]
fn bad_records_are_dead_lettered_and_the_rest_run_on() {
    let mut op = op(FRAUD, false, false);
    let mut state = PartitionState::default();
    let mut unkeyed = rec("ann", "failed", 5);
    unkeyed.key = None;
    let mut garbled = rec("ann", "failed", 6);
    garbled.value = Bytes::from_static(b"{not json");
    let res = op
        .process_batch(
            &[unkeyed, garbled, rec("ann", "failed", 7)],
            &mut state,
            ctx(),
        )
        .unwrap();
    assert!(matches!(&res[0], RecordResult::DeadLetter { reason } if reason.contains("key_by")));
    assert!(matches!(&res[1], RecordResult::DeadLetter { reason } if reason.contains("not JSON")));
    assert_eq!(res[2], RecordResult::Emit(vec![]));
}

#[test]
fn timeouts_and_late_records_are_side_outputs_only_when_they_have_a_topic() {
    let rule = FRAUD.replace("60000", "100");
    let recs = [
        rec("ann", "failed", 1_000),
        rec("bob", "failed", 1_050),
        rec("ann", "failed", 1_200),
        rec("bob", "failed", 900),
    ];
    let mut with = op(&rule, true, true);
    let res = with
        .process_batch(&recs, &mut PartitionState::default(), ctx())
        .unwrap();
    let outs = outputs(&res);
    let mut sides: Vec<_> = outs
        .iter()
        .map(|(i, s, v)| (*i, s.clone().unwrap_or_default(), v["key"].clone()))
        .collect();
    sides.sort_by_key(|(i, s, k)| (*i, s.clone(), k.to_string()));
    // At 1200 the watermark (1199) closes ann's window (1000 + 100) and then
    // bob's (1050 + 100); bob's record at 900 is behind it.
    assert_eq!(
        sides,
        [
            (2, "fraud:timed_out".to_owned(), Value::from("ann")),
            (2, "fraud:timed_out".to_owned(), Value::from("bob")),
            (3, "fraud:late".to_owned(), Value::from("bob")),
        ],
        "{outs:?}"
    );
    let ann = outs.iter().find(|o| o.2["key"] == "ann").unwrap();
    assert_eq!(ann.2["timed_out"], true);
    assert_eq!(ann.2["timeout_at"], 1_100);
    assert_eq!(outs[2].2["late"], true);
    assert_eq!(outs[2].2["event_time"], 900);

    let mut without = op(&rule, false, false);
    let res = without
        .process_batch(&recs, &mut PartitionState::default(), ctx())
        .unwrap();
    assert!(
        outputs(&res).is_empty(),
        "dropped (and counted) without topics"
    );
    let stats: std::collections::BTreeMap<_, _> = without.stats().into_iter().collect();
    assert_eq!(stats[names::CEP_TIMEOUTS], 2, "{stats:?}");
    assert_eq!(stats[names::CEP_LATE], 1, "{stats:?}");
    assert_eq!(stats[names::CEP_MATCHES], 0, "{stats:?}");
    // ann's record at 1200 waits for the watermark (1199).
    assert_eq!(stats[names::CEP_PARTIAL_MATCHES], 0, "{stats:?}");
    assert_eq!(stats[names::CEP_BUFFERED], 1, "{stats:?}");
    assert_eq!(without.module(), "cep:fraud");
}

/// Runs `recs` in the given batch sizes, checkpointing and restarting the
/// operator from its saved state after every batch when `restart` is set.
fn run_in_batches(recs: &[Record], sizes: &[usize], restart: bool) -> Vec<(usize, Value)> {
    let mut state = PartitionState::default();
    let mut op = op(FRAUD, true, true);
    let mut out = Vec::new();
    let mut start = 0;
    let mut sizes = sizes.iter().cycle();
    while start < recs.len() {
        let n = (*sizes.next().unwrap()).min(recs.len() - start);
        let res = op
            .process_batch(&recs[start..start + n], &mut state, ctx())
            .unwrap();
        for (i, _, v) in outputs(&res) {
            out.push((start + i, v));
        }
        if restart {
            op.save_state(0, &mut state).unwrap();
            // Through the snapshot bytes, as a checkpoint stores them.
            state = PartitionState::restore(&state.snapshot()).unwrap();
            op = super::tests::op(FRAUD, true, true);
        }
        start += n;
    }
    out
}

#[test]
fn outputs_and_their_positions_do_not_depend_on_batching_or_restores() {
    let recs = stream();
    let whole = run_in_batches(&recs, &[recs.len()], false);
    assert!(
        whole.len() > 16,
        "ann and bob match around every fifth round: {whole:?}"
    );
    for sizes in [&[1][..], &[3, 5, 2], &[17], &[64, 1]] {
        assert_eq!(run_in_batches(&recs, sizes, false), whole, "{sizes:?}");
        assert_eq!(
            run_in_batches(&recs, sizes, true),
            whole,
            "{sizes:?} with restores"
        );
    }
}

#[test]
fn a_corrupt_snapshot_fails_the_task_with_the_key_named() {
    let mut state = PartitionState::default();
    // A snapshot with no time seen and one key, `ann`, whose state is garbage.
    let mut snap = b"WCPR\x01\x00".to_vec();
    snap.extend_from_slice(&3u32.to_le_bytes());
    snap.extend_from_slice(b"ann");
    snap.extend_from_slice(&12u32.to_le_bytes());
    snap.extend_from_slice(b"WCEP-garbage");
    state.operator("fraud").put(b"p".to_vec(), snap);
    let err = op(FRAUD, false, false)
        .process_batch(&[rec("ann", "failed", 1)], &mut state, ctx())
        .unwrap_err();
    assert!(err.reason.contains("key `ann`"), "{err}");
}
