//! Parsing and checking a workflow definition: everything that can be wrong
//! with a file is found here, before any run starts, and each problem names
//! the field and its line.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::expr::{Expr, Path};
use super::spec::{OnFailure, RetryPolicy, Step, WaitSpec, WorkflowSpec};
use crate::domain::document;
pub use crate::domain::document::Problem;

/// The reserved `next` target that ends the run.
pub const END: &str = "end";

/// Parses and checks a definition. `activities`, when given, is the set of
/// activity names an engine knows; without it activity names are not checked.
pub fn parse(text: &str, activities: Option<&[&str]>) -> Result<WorkflowSpec, Vec<Problem>> {
    let (spec, lines) = document::from_yaml::<WorkflowSpec>(text).map_err(|p| vec![p])?;
    let problems = check(&spec, activities);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(lines.locate(problems))
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

struct Checker<'a> {
    spec: &'a WorkflowSpec,
    ids: HashSet<&'a str>,
    activities: Option<&'a [&'a str]>,
    out: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.out.push(Problem::new(field, problem));
    }

    fn check_path(&mut self, field: &str, path: &Path) {
        let keys = path.keys();
        match keys.first().copied() {
            Some("input") | Some("run") | Some("error") => {}
            Some("steps") => match keys.get(1) {
                Some(id) if self.ids.contains(id) => {}
                Some(id) => self.problem(
                    field,
                    format!("`{path}` refers to step `{id}`, which does not exist"),
                ),
                None => self.problem(
                    field,
                    format!("`{path}` must name a step (`$.steps.<id>...`)"),
                ),
            },
            _ => self.problem(
                field,
                format!("`{path}` must start with $.input, $.steps, $.error or $.run"),
            ),
        }
    }

    /// Checks every `$…` string inside a mapping value.
    fn check_value(&mut self, field: &str, v: &Value) {
        match v {
            Value::String(s) if s.starts_with('$') && !s.starts_with("$$") => {
                match Path::parse(s) {
                    Ok(p) => self.check_path(field, &p),
                    Err(e) => self.problem(field, e.to_string()),
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_value(&format!("{field}[{i}]"), item);
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    self.check_value(&format!("{field}.{k}"), item);
                }
            }
            _ => {}
        }
    }

    fn check_mapping(&mut self, field: &str, m: &BTreeMap<String, Value>) {
        for (k, v) in m {
            self.check_value(&format!("{field}.{k}"), v);
        }
    }

    fn check_activity(&mut self, field: &str, name: &str) {
        if let Some(known) = self.activities {
            if !known.contains(&name) {
                self.problem(
                    field,
                    format!("unknown activity `{name}`; known: {}", known.join(", ")),
                );
            }
        }
    }

    fn check_retry(&mut self, field: &str, r: &RetryPolicy) {
        if r.max_attempts == 0 || r.max_attempts > 100 {
            self.problem(format!("{field}.max_attempts"), "must be between 1 and 100");
        }
        if !(r.backoff.multiplier.is_finite() && r.backoff.multiplier >= 1.0) {
            self.problem(
                format!("{field}.backoff.multiplier"),
                "must be at least 1.0",
            );
        }
        if r.backoff.max < r.backoff.initial {
            self.problem(
                format!("{field}.backoff.max"),
                "must not be less than backoff.initial",
            );
        }
    }

    fn check_target(&mut self, field: &str, target: &str) {
        if target != END && !self.ids.contains(target) {
            self.problem(
                field,
                format!("no step has id `{target}` (use `end` to finish the run)"),
            );
        }
    }

    fn check_wait(&mut self, field: &str, w: &WaitSpec) {
        let conditions = usize::from(w.running)
            + usize::from(w.checkpoints.is_some())
            + usize::from(w.healthy_for.is_some())
            + usize::from(w.event.is_some());
        if w.timer.is_some() && (conditions > 0 || w.within.is_some()) {
            self.problem(
                field,
                "`for` is a plain timer and cannot be combined with conditions or `within`",
            );
        }
        if w.timer.is_none() && conditions == 0 {
            self.problem(
                field,
                "needs `for`, or at least one of `running`, `checkpoints`, `healthy_for`, `event`",
            );
        }
        if w.checkpoints == Some(0) {
            self.problem(format!("{field}.checkpoints"), "must be at least 1");
        }
        if w.event.is_none() && (!w.matches.is_empty() || !w.fail_on.is_empty()) {
            self.problem(field, "`match` and `fail_on` need `event`");
        }
        if w.poll.as_millis() < 10 {
            self.problem(format!("{field}.poll"), "must be at least 10ms");
        }
        if w.within.is_some_and(|d| d.as_millis() == 0) {
            self.problem(format!("{field}.within"), "must be more than 0");
        }
        self.check_mapping(&format!("{field}.match"), &w.matches);
    }

    fn check_step(&mut self, i: usize, s: &Step) {
        let f = format!("steps[{i}]");
        match (&s.activity, &s.wait) {
            (Some(a), None) => self.check_activity(&format!("{f}.activity"), a),
            (None, Some(w)) => self.check_wait(&format!("{f}.wait"), w),
            (Some(_), Some(_)) => self.problem(
                &f,
                "has both `activity` and `wait`; a step is one or the other",
            ),
            (None, None) => self.problem(&f, "needs `activity` or `wait`"),
        }
        if s.wait.is_some() {
            if !s.input.is_empty() {
                self.problem(format!("{f}.input"), "a wait step takes no input");
            }
            if s.retry.is_some() || s.timeout.is_some() || s.compensate.is_some() {
                self.problem(
                    &f,
                    "a wait step has no `retry`, `timeout` or `compensate`; use `wait.within`",
                );
            }
        }
        if let Some(c) = &s.condition {
            match Expr::parse(c) {
                Ok(e) => {
                    for p in e.paths() {
                        self.check_path(&format!("{f}.if"), p);
                    }
                }
                Err(e) => self.problem(format!("{f}.if"), e.to_string()),
            }
        }
        self.check_mapping(&format!("{f}.input"), &s.input);
        if let Some(r) = &s.retry {
            self.check_retry(&format!("{f}.retry"), r);
        }
        if s.timeout.is_some_and(|d| d.as_millis() == 0) {
            self.problem(format!("{f}.timeout"), "must be more than 0");
        }
        if let Some(OnFailure::Goto { goto: t }) = &s.on_failure {
            if t == &s.id {
                self.problem(
                    format!("{f}.on_failure.goto"),
                    "a step cannot go to itself on failure; use `retry`",
                );
            } else {
                self.check_target(&format!("{f}.on_failure.goto"), t);
            }
        }
        if let Some(n) = &s.next {
            self.check_target(&format!("{f}.next"), n);
        }
        if let Some(c) = &s.compensate {
            self.check_activity(&format!("{f}.compensate.activity"), &c.activity);
            self.check_mapping(&format!("{f}.compensate.input"), &c.input);
        }
    }
}

/// Semantic checks on a deserialized definition.
pub fn check(spec: &WorkflowSpec, activities: Option<&[&str]>) -> Vec<Problem> {
    let mut c = Checker {
        spec,
        ids: HashSet::new(),
        activities,
        out: Vec::new(),
    };
    if !valid_id(&spec.name) {
        c.problem("name", "must be 1-64 characters of a-z, 0-9, '-' and '_'");
    }
    if spec.steps.is_empty() {
        c.problem("steps", "at least one step is required");
    }
    for (i, s) in spec.steps.iter().enumerate() {
        if !valid_id(&s.id) {
            c.problem(
                format!("steps[{i}].id"),
                "must be 1-64 characters of a-z, 0-9, '-' and '_'",
            );
        } else if s.id == END {
            c.problem(format!("steps[{i}].id"), "`end` is reserved");
        } else if !c.ids.insert(s.id.as_str()) {
            c.problem(
                format!("steps[{i}].id"),
                format!("duplicates an earlier step id `{}`", s.id),
            );
        }
    }
    c.check_retry("defaults.retry", &spec.defaults.retry);
    if spec.defaults.timeout.as_millis() == 0 {
        c.problem("defaults.timeout", "must be more than 0");
    }
    if let OnFailure::Goto { goto: t } = &spec.defaults.on_failure {
        let t = t.clone();
        c.check_target("defaults.on_failure.goto", &t);
    }
    for (i, s) in c.spec.steps.iter().enumerate() {
        c.check_step(i, s);
    }
    for (k, v) in &spec.outputs {
        match Path::parse(v) {
            Ok(p) => c.check_path(&format!("outputs.{k}"), &p),
            Err(e) => c.problem(format!("outputs.{k}"), e.to_string()),
        }
    }
    c.out
}

/// Resolves a mapping against the run's context: `$` strings become the value at that path.
pub fn resolve(m: &BTreeMap<String, Value>, ctx: &Value) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), resolve_value(v, ctx)))
            .collect(),
    )
}

pub fn resolve_value(v: &Value, ctx: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("$$") => Value::String(s[1..].to_owned()),
        Value::String(s) if s.starts_with('$') => match Path::parse(s) {
            Ok(p) => p.get(ctx).clone(),
            Err(_) => Value::Null,
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve_value(x, ctx)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve_value(x, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::FailureAction;
    use super::*;
    use serde_json::json;

    const GOOD: &str = "name: demo
steps:
  - id: info
    activity: job_info
    input: { job: $.input.job }
  - id: start
    if: $.steps.info.output.compiled == true
    activity: start
    input:
      job: $.input.job
      literal: $$5
    retry: { max_attempts: 5, backoff: { initial: 100ms, max: 1s } }
    on_failure: { goto: undo }
  - id: settle
    wait: { checkpoints: 2, within: 2m }
    next: end
  - id: undo
    activity: notify
    on_failure: fail
outputs:
  digest: $.steps.info.output.plan_digest
";

    #[test]
    fn a_good_file_parses_with_defaults() {
        let spec = parse(GOOD, Some(&["job_info", "start", "notify"])).unwrap();
        assert_eq!(spec.steps.len(), 4);
        assert_eq!(spec.defaults.timeout.as_millis(), 30_000);
        assert_eq!(
            spec.on_failure_of(&spec.steps[1]),
            &OnFailure::Goto {
                goto: "undo".into()
            }
        );
        assert_eq!(
            spec.on_failure_of(&spec.steps[0]),
            &OnFailure::Action(FailureAction::Pause)
        );
        assert_eq!(spec.retry_of(&spec.steps[1]).max_attempts, 5);
        let ctx = json!({"input": {"job": "orders"}});
        let v = resolve(&spec.steps[1].input, &ctx);
        assert_eq!(v, json!({"job": "orders", "literal": "$5"}));
    }

    #[test]
    fn serde_errors_carry_field_and_line() {
        let bad = GOOD.replace("max_attempts: 5", "max_atempts: 5");
        let p = &parse(&bad, None).unwrap_err()[0];
        assert_eq!(p.line, Some(12), "{p:?}");
        assert!(p.field.starts_with("steps[1].retry"), "{p:?}");
        assert!(p.problem.contains("max_atempts"), "{p:?}");
        let bad = GOOD.replace("within: 2m", "within: 2 minutes");
        let p = &parse(&bad, None).unwrap_err()[0];
        assert_eq!(p.line, Some(15), "{p:?}");
        assert!(p.problem.contains("not a duration"), "{p:?}");
    }

    #[test]
    fn semantic_errors_carry_field_and_line() {
        let bad = GOOD
            .replace("max_attempts: 5", "max_attempts: 0")
            .replace("goto: undo", "goto: nowhere")
            .replace("$.steps.info.output.plan_digest", "$.steps.nope.output")
            .replace("activity: notify", "activity: notfy");
        let ps = parse(&bad, Some(&["job_info", "start", "notify"])).unwrap_err();
        let find = |f: &str| {
            ps.iter()
                .find(|p| p.field == f)
                .unwrap_or_else(|| panic!("{f} in {ps:?}"))
        };
        assert_eq!(find("steps[1].retry.max_attempts").line, Some(12));
        assert_eq!(find("steps[1].on_failure.goto").line, Some(13));
        assert_eq!(find("steps[3].activity").line, Some(18));
        assert_eq!(find("outputs.digest").line, Some(21));
        assert!(find("steps[3].activity")
            .problem
            .contains("unknown activity `notfy`"));
    }

    #[test]
    fn structural_mistakes_are_named() {
        let (spec, _) = document::from_yaml(
            "name: x\nsteps:\n  - id: a\n  - id: a\n    activity: z\n    wait: {for: 1s}\n  - id: end\n    wait: {}\n",
        )
        .unwrap();
        let ps = check(&spec, None);
        let text: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t == "steps[0]: needs `activity` or `wait`"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("steps[1].id: duplicates")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("steps[1]: has both")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t == "steps[2].id: `end` is reserved"),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("steps[2].wait: needs `for`")),
            "{text:?}"
        );
        let p = &parse(
            "name: x\nsteps:\n  - id: a\n    activity: b\n    on_failure: retry\n",
            None,
        )
        .unwrap_err()[0];
        assert_eq!(
            (p.field.as_str(), p.line),
            ("steps[0].on_failure", Some(5)),
            "{p:?}"
        );
        assert!(p.problem.starts_with("must be pause, fail"), "{p:?}");
    }
}
