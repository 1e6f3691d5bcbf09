//! A rule file as the orchestrator hands it over (already parsed from YAML,
//! here as JSON), checked, its conditions run by hand, and its output built.

use serde_json::{json, Value};
use weir_cep::rule::{CheckedSkip, Contiguity, Rule, RuleProblem};
use weir_cep::Matched;

const FRAUD_LOGIN: &str = r#"{
  "name": "fraud-login",
  "within_ms": 60000,
  "within_type": "first_and_last",
  "skip": { "strategy": "skip_to_last", "step": "fail" },
  "max_partial_matches_per_key": 10000,
  "steps": [
    { "name": "fail", "where": "status == \"failed\"",
      "quantifier": { "min": 3, "max": 3 }, "loop_contiguity": "relaxed" },
    { "name": "ok", "where": "status == \"ok\" && ip != last(fail).ip",
      "contiguity": "strict", "optional": false, "greedy": false,
      "until": null, "negated": false }
  ],
  "emit": { "user": "first(fail).user", "attempts": "count(fail)", "ip": "last(ok).ip" }
}"#;

struct Taken(Vec<(&'static str, Value)>);

impl Matched<Value> for Taken {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        self.0
            .iter()
            .filter(|(s, _)| *s == step)
            .for_each(|(_, e)| f(e));
    }
}

#[test]
fn fraud_login_end_to_end() {
    let rule: Rule = serde_json::from_str(FRAUD_LOGIN).unwrap();
    let r = rule.check().unwrap();
    assert_eq!(
        r.skip,
        CheckedSkip::SkipToLast {
            step: 0,
            name: "fail".into()
        }
    );
    assert_eq!(r.steps[1].contiguity, Contiguity::Strict);

    // Walk a stream by hand: three failures, then a login from a new IP.
    let stream = [
        json!({"user": "ann", "status": "failed", "ip": "1.1.1.1"}),
        json!({"user": "ann", "status": "failed", "ip": "1.1.1.1"}),
        json!({"user": "ann", "status": "failed", "ip": "2.2.2.2"}),
        json!({"user": "ann", "status": "ok", "ip": "2.2.2.2"}),
        json!({"user": "ann", "status": "ok", "ip": "9.9.9.9"}),
    ];
    let mut taken = Taken(vec![]);
    let mut results = vec![];
    for e in &stream {
        let fails = taken.0.len();
        let step = if fails < 3 { 0 } else { 1 };
        let hit = r.steps[step].condition.eval_bool(e, &taken);
        results.push((step, hit));
        if hit && step == 0 {
            taken.0.push(("fail", e.clone()));
        } else if hit {
            taken.0.push(("ok", e.clone()));
            break;
        }
    }
    // The first "ok" comes from the last failure's IP, so it is not taken.
    assert_eq!(
        results,
        [(0, true), (0, true), (0, true), (1, false), (1, true)]
    );
    assert_eq!(
        r.emit_value(&taken),
        json!({"user": "ann", "attempts": 3, "ip": "9.9.9.9"})
    );
}

#[test]
fn a_broken_rule_reports_everything() {
    let rule: Rule = serde_json::from_value(json!({
        "name": "broken",
        "within_ms": 0,
        "skip": { "strategy": "skip_past_last_event", "step": "ok" },
        "steps": [
            { "name": "fail", "where": "status == \"failed\" && count(ok) > 0" },
            { "name": "gap", "where": "true", "negated": true, "contiguity": "any" },
            { "name": "ok", "where": "startswith(status, \"o\")", "until": "true" }
        ],
        "emit": { "n": "count(gap)" }
    }))
    .unwrap();
    let problems: Vec<RuleProblem> = rule.check().unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "within_ms",
            "steps[0].where",
            "steps[1].contiguity",
            "steps[2].until",
            "steps[2].where",
            "skip.step",
            "emit.n"
        ]
    );
    assert_eq!(
        problems[4].message,
        "column 1: unknown function 'startswith' (did you mean 'starts_with'?)"
    );
    assert_eq!(
        problems[1].message,
        "column 23: step 'ok' comes later (steps[2]); a condition can only aggregate over earlier steps"
    );
}

#[test]
fn problems_serialize_for_the_api() {
    let rule: Rule = serde_json::from_value(json!({"name": "r", "steps": []})).unwrap();
    let problems = rule.check().unwrap_err();
    assert_eq!(
        serde_json::to_value(&problems).unwrap(),
        json!([{"path": "steps", "message": "a rule needs at least one step"}])
    );
}
