use serde_json::{json, Value};

use super::*;
use crate::Matched;

fn rule(v: Value) -> Rule {
    serde_json::from_value(v).unwrap()
}

fn checked(v: Value) -> CheckedRule {
    rule(v).check().unwrap_or_else(|p| panic!("{p:?}"))
}

/// Every problem as `path: message`.
fn problems(v: Value) -> Vec<String> {
    match rule(v).check() {
        Ok(_) => panic!("the rule passed"),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

/// A rule with the given steps, otherwise minimal.
fn with_steps(steps: Value) -> Value {
    json!({"name": "r", "steps": steps})
}

fn step(name: &str) -> Value {
    json!({"name": name, "where": "true"})
}

/// `step` with extra keys.
fn step_with(name: &str, extra: Value) -> Value {
    let mut s = step(name);
    let (Value::Object(s_map), Value::Object(e)) = (&mut s, extra) else {
        panic!("objects")
    };
    s_map.extend(e);
    s
}

fn fraud_login() -> Value {
    json!({
        "name": "fraud-login",
        "within_ms": 60000,
        "within_type": "previous_and_current",
        "skip": {"strategy": "skip_past_last_event"},
        "max_partial_matches_per_key": 10000,
        "steps": [
            {
                "name": "fail",
                "where": "status == \"failed\"",
                "quantifier": {"min": 3, "max": 3},
                "loop_contiguity": "strict"
            },
            {
                "name": "ok",
                "where": "status == \"ok\" && user == first(fail).user",
                "contiguity": "relaxed",
                "optional": false,
                "greedy": false,
                "until": null,
                "negated": false
            }
        ],
        "emit": {"user": "first(fail).user", "attempts": "count(fail)"}
    })
}

#[test]
fn the_example_rule_checks() {
    let r = checked(fraud_login());
    assert_eq!(r.name, "fraud-login");
    assert_eq!(
        r.within,
        Some(Within {
            ms: 60000,
            kind: WithinType::PreviousAndCurrent
        })
    );
    assert_eq!(r.skip, CheckedSkip::SkipPastLastEvent);
    assert_eq!(r.max_partial_matches_per_key, Some(10000));
    assert_eq!(r.steps.len(), 2);
    let fail = &r.steps[0];
    assert_eq!(
        (fail.name.as_str(), fail.min, fail.max),
        ("fail", 3, Some(3))
    );
    assert_eq!(fail.loop_contiguity, Contiguity::Strict);
    assert!(fail.is_looping());
    assert!(!fail.negated && !fail.optional && !fail.greedy && fail.until.is_none());
    assert_eq!(fail.condition.source(), "status == \"failed\"");
    let ok = &r.steps[1];
    assert_eq!((ok.min, ok.max), (1, Some(1)));
    assert!(!ok.is_looping());
    assert_eq!(ok.contiguity, Contiguity::Relaxed);
    assert_eq!(ok.loop_contiguity, Contiguity::Relaxed);
    let emit: Vec<&str> = r.emit.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(emit, vec!["attempts", "user"]);
    assert_eq!(r.step_index("ok"), Some(1));
    assert_eq!(r.step_index("nope"), None);
}

#[test]
fn defaults() {
    let r = checked(with_steps(json!([step("a"), step("b")])));
    assert_eq!(r.within, None);
    assert_eq!(r.skip, CheckedSkip::NoSkip);
    assert_eq!(r.max_partial_matches_per_key, None);
    assert!(r.emit.is_empty());
    let b = &r.steps[1];
    assert_eq!(
        (b.min, b.max, b.optional, b.greedy, b.negated),
        (1, Some(1), false, false, false)
    );
    assert_eq!(
        (b.contiguity, b.loop_contiguity),
        (Contiguity::Relaxed, Contiguity::Relaxed)
    );
    let r = checked(json!({"name": "r", "within_ms": 5, "steps": [step("a")]}));
    assert_eq!(
        r.within,
        Some(Within {
            ms: 5,
            kind: WithinType::FirstAndLast
        })
    );
}

#[test]
fn serde_shape() {
    // Unknown keys are errors, at every level.
    for bad in [
        json!({"name": "r", "steps": [], "extra": 1}),
        json!({"name": "r", "steps": [{"name": "a", "where": "true", "wher": "x"}]}),
        json!({"name": "r", "steps": [{"name": "a", "where": "true", "quantifier": {"min": 1, "mx": 2}}]}),
        json!({"name": "r", "steps": [], "skip": {"strategy": "no_skip", "stp": "a"}}),
        json!({"name": "r", "steps": [], "skip": {"strategy": "skip_to_middle"}}),
        json!({"name": "r", "steps": [{"name": "a", "where": "true", "contiguity": "loose"}]}),
        json!({"name": "r", "steps": [{"name": "a"}]}),
    ] {
        assert!(
            serde_json::from_value::<Rule>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    // A rule round-trips, leaving defaults out.
    let r = rule(fraud_login());
    let back: Rule = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    let minimal = rule(with_steps(json!([step("a")])));
    assert_eq!(
        serde_json::to_value(&minimal).unwrap(),
        json!({"name": "r", "steps": [{"name": "a", "where": "true"}]})
    );
}

#[test]
fn rule_level_problems() {
    assert_eq!(
        problems(
            json!({"name": " ", "within_ms": 0, "max_partial_matches_per_key": 0, "steps": []})
        ),
        vec![
            "name: a rule needs a name",
            "within_ms: must be at least 1 (leave it out for no window)",
            "max_partial_matches_per_key: must be at least 1 (leave it out for no cap)",
            "steps: a rule needs at least one step",
        ]
    );
    assert_eq!(
        problems(json!({"name": "r", "within_type": "first_and_last", "steps": [step("a")]})),
        vec!["within_type: has no effect without within_ms"]
    );
}

#[test]
fn step_names() {
    assert_eq!(
        problems(with_steps(json!([
            step("a"),
            step(""),
            step("a"),
            step("b"),
            step("a")
        ]))),
        vec![
            "steps[1].name: a step needs a name",
            "steps[2].name: duplicate step name 'a' (also steps[0])",
            "steps[4].name: duplicate step name 'a' (also steps[0])",
        ]
    );
    // Any non-empty name is a valid step name...
    let r = checked(with_steps(json!([step("my step"), step("ok-2")])));
    assert_eq!(r.steps[0].name, "my step");
}

#[test]
fn non_identifier_steps_cannot_be_referenced() {
    assert_eq!(
        problems(with_steps(json!([
            step("my-step"),
            {"name": "b", "where": "count(my-step) > 1"}
        ]))),
        vec!["steps[1].where: column 9: expected ')', found '-'; note: step 'my-step' cannot be used in expressions, whose step names must be identifiers (letters, digits, '_')"]
    );
    assert_eq!(
        problems(with_steps(json!([
            step("my step"),
            {"name": "b", "where": "count(\"my step\") > 1"}
        ]))),
        vec!["steps[1].where: column 7: step 'my step' cannot be referenced: steps used in expressions must have identifier names (letters, digits, '_')"]
    );
}

#[test]
fn quantifiers() {
    let q = |min: u32, max: Option<u32>| {
        let mut s = json!({"name": "a", "where": "true", "quantifier": {"min": min}});
        if let Some(max) = max {
            s["quantifier"]["max"] = json!(max);
        }
        with_steps(json!([s]))
    };
    assert_eq!(
        problems(q(5, Some(2))),
        vec!["steps[0].quantifier: min 5 > max 2"]
    );
    assert_eq!(
        problems(q(0, None)),
        vec!["steps[0].quantifier: min must be at least 1 (use optional: true to allow none)"]
    );
    assert_eq!(
        problems(q(0, Some(0))),
        vec![
            "steps[0].quantifier: min must be at least 1 (use optional: true to allow none)",
            "steps[0].quantifier: max must be at least 1",
        ]
    );
    let r = checked(q(2, None));
    assert_eq!((r.steps[0].min, r.steps[0].max), (2, None));
    assert!(r.steps[0].is_looping());
    let r = checked(q(2, Some(2)));
    assert_eq!((r.steps[0].min, r.steps[0].max), (2, Some(2)));
    let r = checked(q(1, Some(1)));
    assert!(!r.steps[0].is_looping());
}

#[test]
fn negated_steps() {
    let neg = |name: &str, extra: Value| {
        let mut s = step_with(name, extra);
        s["negated"] = json!(true);
        s
    };
    assert_eq!(
        problems(with_steps(json!([neg("a", json!({})), step("b")]))),
        vec!["steps[0]: a pattern cannot start with a negated step"]
    );
    assert_eq!(
        problems(with_steps(json!([
            step("a"),
            neg("b", json!({"quantifier": {"min": 2}, "optional": true, "contiguity": "any"})),
            step("c")
        ]))),
        vec![
            "steps[1].quantifier: a negated step cannot have a quantifier",
            "steps[1].optional: a negated step cannot be optional",
            "steps[1].contiguity: a negated step cannot use 'any' contiguity; use strict (not next) or relaxed (not followed by)",
        ]
    );
    assert_eq!(
        problems(with_steps(json!([
            step_with("a", json!({"optional": true})),
            neg("b", json!({})),
            step("c")
        ]))),
        vec!["steps[1]: a negated step cannot follow an optional step (steps[0] 'a')"]
    );
    let after_loop = json!([
        step_with("a", json!({"quantifier": {"min": 1}})),
        neg("b", json!({"contiguity": "strict"})),
        step("c")
    ]);
    assert_eq!(
        problems(with_steps(after_loop.clone())),
        vec!["steps[1]: a negated step after an unbounded loop needs within_ms"]
    );
    checked(json!({"name": "r", "within_ms": 1000, "steps": after_loop}));
    // A bounded loop before a negation is fine without a window.
    checked(with_steps(json!([
        step_with("a", json!({"quantifier": {"min": 1, "max": 4}})),
        neg("b", json!({})),
        step("c")
    ])));
    // Ending with "not followed by" needs a window; "not next" does not.
    let ends = |contiguity: &str| json!([step("a"), neg("b", json!({"contiguity": contiguity}))]);
    assert_eq!(
        problems(with_steps(ends("relaxed"))),
        vec!["steps[1]: a rule can end with a negated relaxed step (not followed by) only with within_ms"]
    );
    checked(json!({"name": "r", "within_ms": 10, "steps": ends("relaxed")}));
    let r = checked(with_steps(ends("strict")));
    assert!(r.steps[1].negated);
    assert_eq!(r.steps[1].contiguity, Contiguity::Strict);
    assert_eq!((r.steps[1].min, r.steps[1].max), (1, Some(1)));
}

#[test]
fn looping_only_options() {
    assert_eq!(
        problems(with_steps(json!([
            step_with("a", json!({"greedy": true, "loop_contiguity": "strict", "until": "x > 1"})),
            step_with("b", json!({"quantifier": {"min": 2, "max": 3}, "until": "x > 1"})),
            step("c")
        ]))),
        vec![
            "steps[0].loop_contiguity: applies only to a looping step (quantifier max absent or above 1)",
            "steps[0].greedy: applies only to a looping step (quantifier max absent or above 1)",
            "steps[0].until: until applies only to a looping step with no max (quantifier max absent)",
            "steps[1].until: until applies only to a looping step with no max (quantifier max absent)",
        ]
    );
    assert_eq!(
        problems(with_steps(json!([
            step_with(
                "a",
                json!({"quantifier": {"min": 1}, "greedy": true, "loop_contiguity": "any"})
            ),
            step_with("b", json!({"quantifier": {"min": 1}, "greedy": true}))
        ]))),
        vec![
            "steps[0].greedy: greedy cannot be combined with loop_contiguity: any",
            "steps[1].greedy: the last step cannot be greedy; end the rule with a non-greedy step",
        ]
    );
    let r = checked(with_steps(json!([
        step_with(
            "a",
            json!({"quantifier": {"min": 1}, "loop_contiguity": "any", "until": "stop == true"})
        ),
        step_with(
            "b",
            json!({"quantifier": {"min": 2, "max": 5}, "greedy": true, "loop_contiguity": "strict"})
        ),
        step("c")
    ])));
    assert_eq!(r.steps[0].loop_contiguity, Contiguity::Any);
    assert_eq!(
        r.steps[0].until.as_ref().map(|u| u.source()),
        Some("stop == true")
    );
    assert!(r.steps[1].greedy);
}

#[test]
fn first_step_contiguity() {
    assert_eq!(
        problems(with_steps(json!([step_with(
            "a",
            json!({"contiguity": "strict"})
        )]))),
        vec!["steps[0].contiguity: the first step follows no other step; leave contiguity out"]
    );
}

#[test]
fn expression_problems() {
    assert_eq!(
        problems(with_steps(json!([
            {"name": "a", "where": "amount > 1 && contians(x, \"U\")"},
            {"name": "b", "where": "amount + 1"},
            {"name": "c", "where": "count(d) > 1"},
            {"name": "d", "where": "count(c) > 1 && count(d) > 0"},
            {"name": "e", "where": "count(zz) > 1"},
            {"name": "f", "where": "count(a) > 1", "quantifier": {"min": 1}, "until": "\"x\" + 1 > 2"}
        ]))),
        vec![
            "steps[0].where: column 15: unknown function 'contians' (did you mean 'contains'?)",
            "steps[1].where: column 1: a condition must be a bool, found number",
            "steps[2].where: column 1: step 'd' comes later (steps[3]); a condition can only aggregate over earlier steps",
            "steps[3].where: column 17: step 'd' is this step, which takes one event; only a looping step can aggregate over its own events",
            "steps[4].where: column 1: unknown step 'zz'",
            "steps[5].until: column 1: '+' needs numbers, found string",
        ]
    );
    // A looping step sees its own events so far; every step sees earlier ones.
    let r = checked(with_steps(json!([
        step("a"),
        {"name": "b", "where": "sum(b.x) + x < 100 && count(a) == 1", "quantifier": {"min": 1, "max": 10}},
        {"name": "c", "where": "x > max(b.x)", "quantifier": {"min": 1}, "until": "count(c) > 3"}
    ])));
    assert_eq!(r.steps[1].condition.steps(), vec!["b", "a"]);
    // Negated steps hold no events.
    assert_eq!(
        problems(with_steps(json!([
            step("a"),
            {"name": "n", "where": "true", "negated": true, "contiguity": "strict"},
            {"name": "c", "where": "count(n) == 0"}
        ]))),
        vec!["steps[2].where: column 1: step 'n' is negated and never holds events"]
    );
}

#[test]
fn skip_problems() {
    let with_skip =
        |skip: Value| json!({"name": "r", "skip": skip, "steps": [step("fail"), step("ok")]});
    assert_eq!(
        problems(with_skip(json!({"strategy": "skip_to_first", "step": "x"}))),
        vec!["skip.step: no step named 'x'"]
    );
    assert_eq!(
        problems(with_skip(
            json!({"strategy": "skip_to_last", "step": "fial"})
        )),
        vec!["skip.step: no step named 'fial' (did you mean 'fail'?)"]
    );
    assert_eq!(
        problems(with_skip(json!({"strategy": "skip_to_last"}))),
        vec!["skip.step: skip_to_last needs a step: { strategy: skip_to_last, step: NAME }"]
    );
    assert_eq!(
        problems(with_skip(json!({"strategy": "skip_to_next", "step": "ok"}))),
        vec!["skip.step: only skip_to_first and skip_to_last take a step"]
    );
    assert_eq!(
        checked(with_skip(
            json!({"strategy": "skip_to_first", "step": "ok"})
        ))
        .skip,
        CheckedSkip::SkipToFirst {
            step: 1,
            name: "ok".into()
        }
    );
    assert_eq!(
        checked(with_skip(
            json!({"strategy": "skip_to_last", "step": "fail"})
        ))
        .skip,
        CheckedSkip::SkipToLast {
            step: 0,
            name: "fail".into()
        }
    );
    assert_eq!(
        checked(with_skip(json!({"strategy": "no_skip"}))).skip,
        CheckedSkip::NoSkip
    );
    assert_eq!(
        checked(with_skip(json!({"strategy": "skip_to_next"}))).skip,
        CheckedSkip::SkipToNext
    );
    let negated = json!({
        "name": "r", "skip": {"strategy": "skip_to_last", "step": "n"},
        "steps": [step("a"), {"name": "n", "where": "true", "negated": true, "contiguity": "strict"}, step("b")]
    });
    assert_eq!(
        problems(negated),
        vec!["skip.step: step 'n' is negated and never holds events"]
    );
}

#[test]
fn emit_problems() {
    let with_emit = |emit: Value| json!({"name": "r", "steps": [step("a"), {"name": "n", "where": "true", "negated": true, "contiguity": "strict"}, step("b")], "emit": emit});
    assert_eq!(
        problems(with_emit(json!({
            "user": "user",
            "odd key": "first(a).x + amount",
            "": "count(a)",
            "n": "count(n)",
            "z": "count(zz)",
            "bad": "count(",
        }))),
        vec![
            "emit[\"\"]: an output field needs a name",
            "emit.bad: column 7: expected a step name, found end of input",
            "emit.n: column 1: step 'n' is negated and never holds events",
            "emit[\"odd key\"]: column 14: 'amount' reads the current event, but there is none here; take the field from a step, e.g. last(step).amount",
            "emit.user: column 1: 'user' reads the current event, but there is none here; take the field from a step, e.g. last(step).user",
            "emit.z: column 1: unknown step 'zz'",
        ]
    );
}

#[test]
fn several_problems_at_once() {
    let got = problems(json!({
        "name": "r",
        "within_ms": 0,
        "skip": {"strategy": "skip_to_first", "step": "x"},
        "steps": [
            {"name": "a", "where": "contians(s, \"x\")", "negated": true},
            {"name": "a", "where": "true", "quantifier": {"min": 5, "max": 2}, "greedy": true},
        ],
        "emit": {"who": "user"}
    }));
    assert_eq!(
        got,
        vec![
            "within_ms: must be at least 1 (leave it out for no window)",
            "steps[1].name: duplicate step name 'a' (also steps[0])",
            "steps[0]: a pattern cannot start with a negated step",
            "steps[0].where: column 1: unknown function 'contians' (did you mean 'contains'?)",
            "steps[1].quantifier: min 5 > max 2",
            "steps[1].greedy: the last step cannot be greedy; end the rule with a non-greedy step",
            "skip.step: no step named 'x'",
            "emit.who: column 1: 'user' reads the current event, but there is none here; take the field from a step, e.g. last(step).user",
        ]
    );
}

/// A completed match: step name to its events.
struct Fake(Vec<(&'static str, Vec<Value>)>);

impl Matched<Value> for Fake {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        for (name, events) in &self.0 {
            if *name == step {
                events.iter().for_each(&mut *f);
            }
        }
    }
}

#[test]
fn emit_output() {
    let r = checked(json!({
        "name": "r",
        "steps": [
            {"name": "fail", "where": "status == \"failed\"", "quantifier": {"min": 1}},
            {"name": "maybe", "where": "true", "optional": true},
            {"name": "ok", "where": "status == \"ok\""}
        ],
        "emit": {
            "user": "first(fail).user",
            "attempts": "count(fail)",
            "total": "sum(fail.amount)",
            "mean": "avg(fail.amount)",
            "last_ip": "last(fail).ip",
            "skipped": "first(maybe).x",
            "quick": "count(fail) > 2 && last(ok).ms < 100",
            "ok": "last(ok)"
        }
    }));
    let m = Fake(vec![
        (
            "fail",
            vec![
                json!({"user": "ann", "amount": 1, "ip": "a"}),
                json!({"user": "ann", "amount": 2, "ip": "b"}),
                json!({"user": "ann", "amount": 4.5, "ip": "c"}),
            ],
        ),
        ("ok", vec![json!({"status": "ok", "ms": 40})]),
    ]);
    assert_eq!(
        r.emit_value(&m),
        json!({
            "user": "ann",
            "attempts": 3,
            "total": 7.5,
            "mean": 2.5,
            "last_ip": "c",
            "skipped": null,
            "quick": true,
            "ok": {"status": "ok", "ms": 40}
        })
    );
    let no_emit = checked(with_steps(json!([step("a")])));
    assert_eq!(no_emit.emit_value(&m), json!({}));
}

#[cfg(feature = "schema")]
#[test]
fn schema_documents_every_field() {
    let schema = serde_json::to_value(json_schema()).unwrap();
    let props = &schema["properties"];
    for key in [
        "name",
        "within_ms",
        "within_type",
        "skip",
        "max_partial_matches_per_key",
        "steps",
        "emit",
    ] {
        assert!(
            props[key]["description"].is_string(),
            "{key}: {}",
            props[key]
        );
    }
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["name", "steps"]));
    let step = &schema["$defs"]["Step"];
    for key in [
        "name",
        "where",
        "quantifier",
        "loop_contiguity",
        "contiguity",
        "optional",
        "greedy",
        "until",
        "negated",
    ] {
        assert!(
            step["properties"][key]["description"].is_string(),
            "{key}: {}",
            step["properties"][key]
        );
    }
    assert_eq!(step["required"], json!(["name", "where"]));
}
