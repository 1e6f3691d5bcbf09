//! Property test: a rule written as a declarative `Rule` and the same
//! pattern written with the Rust builder find the same matches and
//! timeouts on the same random event streams.

use std::time::Duration;

use serde_json::{json, Value};
use weir_cep::rule::Rule;
use weir_cep::{AfterMatchSkip, Matched, Nfa, Outputs, Pattern, WithinType};

/// Events `{"t": "a"|"b"|"c", "v": 0..10, "seq": n}`, times non-decreasing
/// with random gaps (sometimes equal).
fn stream(rng: &mut fastrand::Rng) -> Vec<(Value, i64)> {
    let len = rng.usize(0..30);
    let mut ts = 0;
    (0..len)
        .map(|seq| {
            ts += rng.i64(0..8);
            let t = ["a", "b", "c"][rng.usize(0..3)];
            (json!({"t": t, "v": rng.i64(0..10), "seq": seq}), ts)
        })
        .collect()
}

fn run(nfa: &Nfa<Value>, events: &[(Value, i64)]) -> Outputs<Value> {
    let mut key = nfa.new_state();
    let mut out = Outputs::new();
    for (e, ts) in events {
        key.process(nfa, e.clone(), *ts, &mut out);
    }
    let end = events.last().map_or(0, |(_, ts)| *ts);
    key.advance_time(nfa, end + 1_000, &mut out);
    out
}

fn is(t: &'static str) -> impl Fn(&Value, &dyn Matched<Value>) -> bool {
    move |e, _| e["t"] == t
}

fn v(e: &Value) -> i64 {
    e["v"].as_i64().unwrap_or(0)
}

fn rule(value: Value) -> Nfa<Value> {
    let rule: Rule = serde_json::from_value(value).expect("rule parses");
    rule.check()
        .expect("rule checks")
        .compile()
        .expect("rule compiles")
}

fn step(name: &str, t: &str, extra: Value) -> Value {
    let mut s = json!({"name": name, "where": format!("t == \"{t}\"")});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

fn rule_of(steps: Value, extra: Value) -> Value {
    let mut r = json!({"name": "r", "steps": steps});
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(extra.clone());
    }
    r
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs both on 300 random streams and compares everything they output.
fn same(name: &str, from_rule: Value, api: Pattern<Value>) {
    same_nfa(
        name,
        rule(from_rule),
        api.compile().expect("pattern compiles"),
    );
}

fn same_nfa(name: &str, from_rule: Nfa<Value>, api: Nfa<Value>) {
    let mut rng = fastrand::Rng::with_seed(0x5eed_cafe);
    let mut matches = 0;
    for round in 0..300 {
        let events = stream(&mut rng);
        let a = run(&from_rule, &events);
        let b = run(&api, &events);
        assert_eq!(a.matches, b.matches, "{name}: matches, round {round}");
        assert_eq!(a.timeouts, b.timeouts, "{name}: timeouts, round {round}");
        matches += a.matches.len();
    }
    // Patterns are chosen so the streams exercise them.
    assert!(matches > 0, "{name}: no match in any stream");
}

#[test]
fn contiguities() {
    for (word, build) in [
        (
            "strict",
            Pattern::next as fn(Pattern<Value>, &str) -> Pattern<Value>,
        ),
        ("relaxed", Pattern::followed_by),
        ("any", Pattern::followed_by_any),
    ] {
        let api = build(
            build(Pattern::begin("a").where_(is("a")), "b").where_(is("b")),
            "c",
        )
        .where_(is("c"));
        let steps = json!([
            step("a", "a", json!({})),
            step("b", "b", json!({"contiguity": word})),
            step("c", "c", json!({"contiguity": word})),
        ]);
        same(word, rule_of(steps, json!({})), api);
    }
}

#[test]
fn quantifiers() {
    let cases: Vec<(&str, Value, Pattern<Value>)> = vec![
        (
            "times 2 consecutive",
            json!([
                step(
                    "a",
                    "a",
                    json!({"quantifier": {"min": 2, "max": 2}, "loop_contiguity": "strict"})
                ),
                step("b", "b", json!({}))
            ]),
            Pattern::begin("a")
                .where_(is("a"))
                .times(2)
                .consecutive()
                .followed_by("b")
                .where_(is("b")),
        ),
        (
            "times 2..3 allow combinations",
            json!([
                step(
                    "a",
                    "a",
                    json!({"quantifier": {"min": 2, "max": 3}, "loop_contiguity": "any"})
                ),
                step("b", "b", json!({}))
            ]),
            Pattern::begin("a")
                .where_(is("a"))
                .times_range(2, 3)
                .allow_combinations()
                .followed_by("b")
                .where_(is("b")),
        ),
        (
            "one or more greedy",
            json!([
                step("a", "a", json!({"quantifier": {"min": 1}, "greedy": true})),
                step("b", "b", json!({"contiguity": "strict"}))
            ]),
            Pattern::begin("a")
                .where_(is("a"))
                .one_or_more()
                .greedy()
                .next("b")
                .where_(is("b")),
        ),
        (
            "times or more optional",
            json!([
                step("c", "c", json!({})),
                step(
                    "a",
                    "a",
                    json!({"quantifier": {"min": 2}, "optional": true})
                ),
                step("b", "b", json!({}))
            ]),
            Pattern::begin("c")
                .where_(is("c"))
                .followed_by("a")
                .where_(is("a"))
                .times_or_more(2)
                .optional()
                .followed_by("b")
                .where_(is("b")),
        ),
        (
            "optional single",
            json!([
                step("a", "a", json!({})),
                step("b", "b", json!({"optional": true, "contiguity": "strict"})),
                step("c", "c", json!({}))
            ]),
            Pattern::begin("a")
                .where_(is("a"))
                .next("b")
                .where_(is("b"))
                .optional()
                .followed_by("c")
                .where_(is("c")),
        ),
        (
            "until",
            json!([
                step(
                    "a",
                    "a",
                    json!({"quantifier": {"min": 1}, "until": "v > 6"})
                ),
                step("b", "b", json!({}))
            ]),
            Pattern::begin("a")
                .where_(is("a"))
                .one_or_more()
                .until(|e: &Value, _| v(e) > 6)
                .followed_by("b")
                .where_(is("b")),
        ),
    ];
    for (name, steps, api) in cases {
        same(name, rule_of(steps, json!({})), api);
    }
}

#[test]
fn iterative_conditions() {
    let steps = json!([
        step("a", "a", json!({})),
        {"name": "b", "where": "t == \"b\" && v > last(a).v", "quantifier": {"min": 1, "max": 3}},
        {"name": "c", "where": "v >= sum(b.v) - count(b)"}
    ]);
    let last_a = |e: &Value, m: &dyn Matched<Value>| {
        let mut last = None;
        m.visit("a", &mut |x| last = Some(v(x)));
        e["t"] == "b" && last.is_some_and(|l| v(e) > l)
    };
    let c = |e: &Value, m: &dyn Matched<Value>| {
        let (mut sum, mut n) = (0, 0);
        m.visit("b", &mut |x| {
            sum += v(x);
            n += 1;
        });
        v(e) >= sum - n
    };
    let api = Pattern::begin("a")
        .where_(is("a"))
        .followed_by("b")
        .where_(last_a)
        .times_range(1, 3)
        .followed_by("c")
        .where_(c);
    same("iterative", rule_of(steps, json!({})), api);
}

#[test]
fn negation() {
    for (word, build) in [
        (
            "strict",
            Pattern::not_next as fn(Pattern<Value>, &str) -> Pattern<Value>,
        ),
        ("relaxed", Pattern::not_followed_by),
    ] {
        let steps = json!([
            step("a", "a", json!({})),
            step("n", "b", json!({"negated": true, "contiguity": word})),
            step("c", "c", json!({})),
        ]);
        let api = build(Pattern::begin("a").where_(is("a")), "n")
            .where_(is("b"))
            .followed_by("c")
            .where_(is("c"));
        same(&format!("negated {word}"), rule_of(steps, json!({})), api);
    }
    // "Not followed by" at the end needs a window; its matches come out
    // when the window closes.
    let steps = json!([
        step("a", "a", json!({})),
        step("n", "b", json!({"negated": true}))
    ]);
    let api = Pattern::begin("a")
        .where_(is("a"))
        .not_followed_by("n")
        .where_(is("b"))
        .within(ms(10), WithinType::FirstAndLast);
    same(
        "negated at end",
        rule_of(steps, json!({"within_ms": 10})),
        api,
    );
}

#[test]
fn windows() {
    let steps = json!([
        step("a", "a", json!({})),
        step("b", "b", json!({"quantifier": {"min": 1}})),
        step("c", "c", json!({})),
    ]);
    let api = || {
        Pattern::begin("a")
            .where_(is("a"))
            .followed_by("b")
            .where_(is("b"))
            .one_or_more()
            .followed_by("c")
            .where_(is("c"))
    };
    same(
        "first and last",
        rule_of(steps.clone(), json!({"within_ms": 20})),
        api().within(ms(20), WithinType::FirstAndLast),
    );
    // A rule-level previous-and-current window bounds every gap: the API
    // sets it on each step.
    let every_step = Pattern::begin("a")
        .where_(is("a"))
        .within(ms(6), WithinType::PreviousAndCurrent)
        .followed_by("b")
        .where_(is("b"))
        .one_or_more()
        .within(ms(6), WithinType::PreviousAndCurrent)
        .followed_by("c")
        .where_(is("c"))
        .within(ms(6), WithinType::PreviousAndCurrent);
    same(
        "previous and current",
        rule_of(
            steps,
            json!({"within_ms": 6, "within_type": "previous_and_current"}),
        ),
        every_step,
    );
}

#[test]
fn timeouts_are_compared() {
    // The same stream shape must produce timeouts, or the windows test
    // compares nothing but matches.
    let nfa = rule(rule_of(
        json!([step("a", "a", json!({})), step("c", "c", json!({}))]),
        json!({"within_ms": 5}),
    ));
    let mut rng = fastrand::Rng::with_seed(0x5eed_cafe);
    let timeouts: usize = (0..50)
        .map(|_| run(&nfa, &stream(&mut rng)).timeouts.len())
        .sum();
    assert!(timeouts > 0);
}

#[test]
fn skip_strategies() {
    let steps = json!([
        step("a", "a", json!({"quantifier": {"min": 1}})),
        step("b", "b", json!({})),
    ]);
    for (skip, strategy) in [
        (json!({"strategy": "no_skip"}), AfterMatchSkip::NoSkip),
        (
            json!({"strategy": "skip_to_next"}),
            AfterMatchSkip::SkipToNext,
        ),
        (
            json!({"strategy": "skip_past_last_event"}),
            AfterMatchSkip::SkipPastLastEvent,
        ),
        (
            json!({"strategy": "skip_to_first", "step": "a"}),
            AfterMatchSkip::SkipToFirst("a".into()),
        ),
        (
            json!({"strategy": "skip_to_last", "step": "a"}),
            AfterMatchSkip::SkipToLast("a".into()),
        ),
    ] {
        let api = Pattern::begin_with_skip("a", strategy)
            .where_(is("a"))
            .one_or_more()
            .followed_by("b")
            .where_(is("b"));
        same(
            &skip.to_string(),
            rule_of(steps.clone(), json!({"skip": skip})),
            api,
        );
    }
}

#[test]
fn partial_match_cap() {
    let steps = json!([
        step("a", "a", json!({})),
        step(
            "b",
            "b",
            json!({"contiguity": "any", "quantifier": {"min": 1}, "loop_contiguity": "any"})
        ),
        step("c", "c", json!({"contiguity": "any"})),
    ]);
    let api = Pattern::begin("a")
        .where_(is("a"))
        .followed_by_any("b")
        .where_(is("b"))
        .one_or_more()
        .allow_combinations()
        .followed_by_any("c")
        .where_(is("c"))
        .compile()
        .unwrap()
        .with_max_partial_matches(4);
    let from_rule = rule(rule_of(steps, json!({"max_partial_matches_per_key": 4})));
    assert_eq!(from_rule.max_partial_matches(), 4);
    same_nfa("cap", from_rule, api);
}

#[test]
fn output_records() {
    let checked = serde_json::from_value::<Rule>(json!({
        "name": "order-unpaid",
        "within_ms": 10,
        "steps": [
            {"name": "order", "where": "t == \"a\""},
            {"name": "paid", "where": "t == \"b\""}
        ],
        "emit": {"value": "first(order).v + last(paid).v"}
    }))
    .unwrap()
    .check()
    .unwrap();
    let nfa = checked.compile().unwrap();
    let time = |e: &Value| e["ts"].as_i64();
    let events = [
        (
            json!({"t": "a", "v": 1, "ts": 1, "extra": [1, {"x": null}]}),
            1,
        ),
        (json!({"t": "b", "v": 2, "ts": 4}), 4),
        (json!({"t": "a", "v": 5, "ts": 20}), 20),
    ];
    let out = run(&nfa, &events);
    let key = json!("k1");
    let records: Vec<Value> = out
        .matches
        .iter()
        .map(|m| checked.match_record(&key, m, time))
        .chain(
            out.timeouts
                .iter()
                .map(|t| checked.timeout_record(&key, t, time)),
        )
        .collect();
    assert_eq!(
        records,
        vec![
            json!({
                "rule": "order-unpaid", "key": "k1",
                "steps": {"order": [events[0].0], "paid": [events[1].0]},
                "first_event_time": 1, "last_event_time": 4,
                "emit": {"value": 3}
            }),
            json!({
                "rule": "order-unpaid", "key": "k1", "timed_out": true,
                "steps": {"order": [events[2].0]},
                "first_event_time": 20, "last_event_time": 20, "timeout_at": 30
            }),
        ]
    );
}
