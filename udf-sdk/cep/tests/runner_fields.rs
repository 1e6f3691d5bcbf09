//! A rule runner reads only the fields its rule reads: on random keyed
//! streams, every output record is what the same rule gives when each event
//! is read whole (its pattern run through `RuleRunner::from_pattern`).

use serde_json::{json, Value};
use weir_cep::rule::Rule;
use weir_cep::runner::{OutputKind, RuleRunner, RunnerOptions, RunnerOutput};
use weir_cep::Matched;

fn event(rng: &mut fastrand::Rng) -> (String, Vec<u8>, i64) {
    let kind = ["a", "b", "c", "x"][rng.usize(0..4)];
    let country = ["US", "FR", "DE"][rng.usize(0..3)];
    let mut e = json!({
        "kind": kind,
        "amount": rng.i64(-5..50),
        "user": {"country": country, "tags": [rng.u8(0..3)]},
        "items": [{"sku": rng.u8(0..4)}],
        "noise": {"deep": [1, {"x": "y"}]},
    });
    if rng.u8(0..8) == 0 {
        // Some events lack a field, some have it of another type.
        e["amount"] = json!("many");
        e.as_object_mut().map(|o| o.remove("user"));
    }
    let key = format!("k{}", rng.u8(0..5));
    // Spacing and key order are the event's own: kept as they come.
    let text = if rng.bool() {
        serde_json::to_string_pretty(&e).expect("prints")
    } else {
        e.to_string()
    };
    (key, text.into_bytes(), 0)
}

fn outputs(runner: &mut RuleRunner, events: &[(String, Vec<u8>, i64)]) -> Vec<RunnerOutput> {
    let mut got = Vec::new();
    for (key, raw, t) in events {
        runner
            .push_json(0, key.as_bytes(), raw, *t, &mut |o| got.push(o))
            .expect("events are JSON");
    }
    runner.finish(0, &mut |o| got.push(o));
    got
}

/// A record's `steps`, as the events matched to each step.
struct Steps<'a>(&'a Value);

impl Matched<Value> for Steps<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        if let Some(events) = self.0[step].as_array() {
            events.iter().for_each(f);
        }
    }
}

fn without_emit(o: &RunnerOutput) -> Value {
    let mut v: Value = serde_json::from_slice(&o.value).expect("records are JSON");
    v.as_object_mut().map(|m| m.remove("emit"));
    v
}

#[test]
fn reading_only_the_rule_s_fields_changes_no_output() {
    let rules = [
        json!({"name": "r", "within_ms": 40, "steps": [
            {"name": "a", "where": "kind == \"a\" && user.country != \"DE\""},
            {"name": "b", "where": "kind == \"b\" && amount > first(a).amount"},
            {"name": "c", "where": "kind == \"c\" || items[0].sku == 2", "quantifier": {"min": 1, "max": 3}},
        ], "emit": {"total": "sum(c.amount)", "tag": "first(a).user.tags"}}),
        json!({"name": "r", "within_ms": 30, "steps": [
            {"name": "a", "where": "contains(user.country, \"U\")", "quantifier": {"min": 1}, "until": "amount > 40"},
            {"name": "n", "where": "kind == \"x\"", "negated": true},
            {"name": "b", "where": "kind == \"b\" && count(a) >= 2 && avg(a.amount) < amount"},
        ]}),
        json!({"name": "r", "steps": [
            {"name": "a", "where": "event.kind == \"a\""},
            {"name": "b", "where": "last(a) == last(a) && kind == \"b\"", "contiguity": "any"},
        ], "within_ms": 25}),
    ];
    let mut rng = fastrand::Rng::with_seed(16);
    for rule in rules {
        let mut matches = 0;
        let checked = serde_json::from_value::<Rule>(rule)
            .unwrap()
            .check()
            .unwrap();
        for _ in 0..40 {
            let mut t = 0;
            let events: Vec<_> = (0..120)
                .map(|_| {
                    t += rng.i64(0..4);
                    let (k, raw, _) = event(&mut rng);
                    (k, raw, t)
                })
                .collect();
            let opts = RunnerOptions::default();
            let mut fields = RuleRunner::new(checked.clone(), opts).unwrap();
            let mut whole = RuleRunner::from_pattern("r", checked.pattern(), opts).unwrap();
            let a = outputs(&mut fields, &events);
            let b = outputs(&mut whole, &events);
            assert_eq!(a.len(), b.len());
            matches += a.iter().filter(|o| o.kind == OutputKind::Match).count();
            for (x, y) in a.iter().zip(&b) {
                assert_eq!((&x.key, x.kind, x.time), (&y.key, y.kind, y.time));
                assert_eq!(without_emit(x), without_emit(y));
                // `emit`, read from the fields, is what it is over whole events.
                let record: Value = serde_json::from_slice(&x.value).expect("JSON");
                if x.kind == OutputKind::Match && !checked.emit.is_empty() {
                    let whole = checked.emit_value(&Steps(&record["steps"]));
                    assert_eq!(record["emit"], whole);
                }
            }
            assert!(a.iter().all(|o| {
                let text = String::from_utf8_lossy(&o.value);
                // Events are copied as they came in, pretty ones included.
                !text.contains("\"steps\"")
                    || events
                        .iter()
                        .any(|(_, raw, _)| text.contains(&*String::from_utf8_lossy(raw)))
            }));
        }
        assert!(matches > 20, "the rule matches: {matches}");
    }
}
