//! Validation: a [`Rule`] as written to a [`CheckedRule`], or every problem.
//!
//! The structural rules follow Flink CEP's pattern checks (negation,
//! greedy, until, quantifiers) so a rule that passes here compiles to an NFA.

use crate::expr::{closest, is_identifier, Expr, ExprError, ExprErrorKind};

use super::ir::{CheckedRule, CheckedSkip, CheckedStep, Within};
use super::problem::RuleProblem;
use super::types::{Contiguity, Rule, SkipStrategy, Step};

impl Rule {
    /// Validates the rule and compiles its expressions; on failure returns
    /// every problem found, in file order.
    pub fn check(&self) -> Result<CheckedRule, Vec<RuleProblem>> {
        Checker {
            rule: self,
            problems: Vec::new(),
        }
        .run()
    }
}

struct Checker<'r> {
    rule: &'r Rule,
    problems: Vec<RuleProblem>,
}

fn looping(s: &Step) -> bool {
    s.quantifier.is_some_and(|q| q.max != Some(1))
}

fn unbounded(s: &Step) -> bool {
    s.quantifier.is_some_and(|q| q.max.is_none())
}

const NEEDS_LOOP: &str = "applies only to a looping step (quantifier max absent or above 1)";

impl<'r> Checker<'r> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(RuleProblem::new(path, message));
    }

    fn run(mut self) -> Result<CheckedRule, Vec<RuleProblem>> {
        let rule = self.rule;
        if rule.name.trim().is_empty() {
            self.problem("name", "a rule needs a name");
        }
        let within = self.within();
        if rule.max_partial_matches_per_key == Some(0) {
            self.problem(
                "max_partial_matches_per_key",
                "must be at least 1 (leave it out for no cap)",
            );
        }
        if rule.steps.is_empty() {
            self.problem("steps", "a rule needs at least one step");
        }
        self.names();
        let steps: Vec<Option<CheckedStep>> = (0..rule.steps.len()).map(|i| self.step(i)).collect();
        let skip = self.skip();
        let emit = self.emit();
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        // Parts return None only after recording a problem, so with no
        // problem every part is Some; the else arm cannot run.
        let (Some(steps), Some(skip), Some(emit)) =
            (steps.into_iter().collect::<Option<Vec<_>>>(), skip, emit)
        else {
            return Err(vec![RuleProblem::new(
                "",
                "internal: a part failed silently",
            )]);
        };
        Ok(CheckedRule {
            name: rule.name.clone(),
            within,
            skip,
            max_partial_matches_per_key: rule.max_partial_matches_per_key,
            steps,
            emit,
        })
    }

    fn within(&mut self) -> Option<Within> {
        match (self.rule.within_ms, self.rule.within_type) {
            (Some(0), _) => {
                self.problem(
                    "within_ms",
                    "must be at least 1 (leave it out for no window)",
                );
                None
            }
            (Some(ms), kind) => Some(Within {
                ms,
                kind: kind.unwrap_or_default(),
            }),
            (None, Some(_)) => {
                self.problem("within_type", "has no effect without within_ms");
                None
            }
            (None, None) => None,
        }
    }

    fn names(&mut self) {
        let steps = &self.rule.steps;
        for (i, s) in steps.iter().enumerate() {
            if s.name.is_empty() {
                self.problem(format!("steps[{i}].name"), "a step needs a name");
            } else if let Some(j) = steps[..i].iter().position(|o| o.name == s.name) {
                self.problem(
                    format!("steps[{i}].name"),
                    format!("duplicate step name '{}' (also steps[{j}])", s.name),
                );
            }
        }
    }

    /// Checks step `i`; its compiled form if it has no problem.
    fn step(&mut self, i: usize) -> Option<CheckedStep> {
        let steps = &self.rule.steps;
        let s = &steps[i];
        let at = format!("steps[{i}]");
        let before = self.problems.len();
        let last = i + 1 == steps.len();
        let has_window = self.rule.within_ms.is_some();

        let (min, max) = match s.quantifier {
            Some(_) if s.negated => {
                self.problem(
                    format!("{at}.quantifier"),
                    "a negated step cannot have a quantifier",
                );
                (1, Some(1))
            }
            Some(q) => {
                let path = format!("{at}.quantifier");
                if q.min == 0 {
                    self.problem(
                        &path,
                        "min must be at least 1 (use optional: true to allow none)",
                    );
                }
                match q.max {
                    Some(0) => self.problem(&path, "max must be at least 1"),
                    Some(max) if q.min > max => {
                        self.problem(&path, format!("min {} > max {max}", q.min))
                    }
                    _ => {}
                }
                (q.min, q.max)
            }
            None => (1, Some(1)),
        };

        if s.negated {
            if i == 0 {
                self.problem(&at, "a pattern cannot start with a negated step");
            }
            if s.optional {
                self.problem(
                    format!("{at}.optional"),
                    "a negated step cannot be optional",
                );
            }
            if s.contiguity == Some(Contiguity::Any) {
                self.problem(
                    format!("{at}.contiguity"),
                    "a negated step cannot use 'any' contiguity; use strict (not next) or relaxed (not followed by)",
                );
            }
            if let Some(prev) = i.checked_sub(1).map(|p| &steps[p]) {
                if prev.optional {
                    self.problem(
                        &at,
                        format!(
                            "a negated step cannot follow an optional step (steps[{}] '{}')",
                            i - 1,
                            prev.name
                        ),
                    );
                }
                if unbounded(prev) && !has_window {
                    self.problem(
                        &at,
                        "a negated step after an unbounded loop needs within_ms",
                    );
                }
            }
            let relaxed = s.contiguity.unwrap_or(Contiguity::Relaxed) == Contiguity::Relaxed;
            if last && relaxed && i > 0 && !has_window {
                self.problem(
                    &at,
                    "a rule can end with a negated relaxed step (not followed by) only with within_ms",
                );
            }
        }
        if i == 0 && s.contiguity.is_some() {
            self.problem(
                format!("{at}.contiguity"),
                "the first step follows no other step; leave contiguity out",
            );
        }
        if !looping(s) {
            if s.loop_contiguity.is_some() {
                self.problem(format!("{at}.loop_contiguity"), NEEDS_LOOP);
            }
            if s.greedy {
                self.problem(format!("{at}.greedy"), NEEDS_LOOP);
            }
        } else if s.greedy && s.loop_contiguity == Some(Contiguity::Any) {
            self.problem(
                format!("{at}.greedy"),
                "greedy cannot be combined with loop_contiguity: any",
            );
        } else if s.greedy && last {
            self.problem(
                format!("{at}.greedy"),
                "the last step cannot be greedy; end the rule with a non-greedy step",
            );
        }
        if s.until.is_some() && !unbounded(s) {
            self.problem(
                format!("{at}.until"),
                "until applies only to a looping step with no max (quantifier max absent)",
            );
        }

        // Aggregates see earlier steps that hold events, and a looping
        // step its own events so far (Flink's iterative conditions).
        let mut scope: Vec<&str> = steps[..i]
            .iter()
            .filter(|o| !o.negated)
            .map(|o| o.name.as_str())
            .collect();
        if looping(s) && !s.negated {
            scope.push(&s.name);
        }
        let condition = self.condition(&format!("{at}.where"), &s.condition, &scope, Some(i));
        let until = s
            .until
            .as_ref()
            .map(|u| self.condition(&format!("{at}.until"), u, &scope, Some(i)));

        if self.problems.len() > before {
            return None;
        }
        Some(CheckedStep {
            name: s.name.clone(),
            condition: condition?,
            min,
            max,
            optional: s.optional,
            greedy: s.greedy,
            contiguity: s.contiguity.unwrap_or(Contiguity::Relaxed),
            loop_contiguity: s.loop_contiguity.unwrap_or(Contiguity::Relaxed),
            until: match until {
                Some(u) => Some(u?),
                None => None,
            },
            negated: s.negated,
        })
    }

    /// Compiles a condition of step `at_step` (or of `emit` when `None`).
    fn condition(
        &mut self,
        path: &str,
        src: &str,
        scope: &[&str],
        at_step: Option<usize>,
    ) -> Option<Expr> {
        match Expr::compile(src, scope) {
            Ok(e) => Some(e),
            Err(err) => {
                let message = self.explain(&err, src, at_step);
                self.problem(path, message);
                None
            }
        }
    }

    /// The error's message, made specific where the rule knows more than
    /// the expression: why a step that exists is out of scope, or that a
    /// step name used is not an identifier.
    fn explain(&self, err: &ExprError, src: &str, at_step: Option<usize>) -> String {
        let steps = &self.rule.steps;
        let col = err.column;
        let mut message = match &err.kind {
            ExprErrorKind::UnknownStep { name, .. } => {
                match steps.iter().position(|s| s.name == *name) {
                    Some(j) if steps[j].negated => {
                        format!("column {col}: step '{name}' is negated and never holds events")
                    }
                    Some(j) if Some(j) == at_step => format!(
                        "column {col}: step '{name}' is this step, which takes one event; only a looping step can aggregate over its own events"
                    ),
                    Some(j) if at_step.is_some_and(|i| j > i) => format!(
                        "column {col}: step '{name}' comes later (steps[{j}]); a condition can only aggregate over earlier steps"
                    ),
                    _ => err.to_string(),
                }
            }
            _ => err.to_string(),
        };
        if !matches!(err.kind, ExprErrorKind::StepNotIdentifier(_)) {
            if let Some(odd) = steps
                .iter()
                .find(|s| !s.name.is_empty() && !is_identifier(&s.name) && src.contains(&s.name))
            {
                message.push_str(&format!(
                    "; note: step '{}' cannot be used in expressions, whose step names must be identifiers (letters, digits, '_')",
                    odd.name
                ));
            }
        }
        message
    }

    fn skip(&mut self) -> Option<CheckedSkip> {
        let Some(skip) = &self.rule.skip else {
            return Some(CheckedSkip::NoSkip);
        };
        let strategy = skip.strategy;
        let to_step = matches!(
            strategy,
            SkipStrategy::SkipToFirst | SkipStrategy::SkipToLast
        );
        if !to_step {
            if skip.step.is_some() {
                self.problem(
                    "skip.step",
                    "only skip_to_first and skip_to_last take a step",
                );
                return None;
            }
            return Some(match strategy {
                SkipStrategy::SkipToNext => CheckedSkip::SkipToNext,
                SkipStrategy::SkipPastLastEvent => CheckedSkip::SkipPastLastEvent,
                _ => CheckedSkip::NoSkip,
            });
        }
        let Some(name) = &skip.step else {
            self.problem(
                "skip.step",
                format!(
                    "{} needs a step: {{ strategy: {}, step: NAME }}",
                    strategy.as_str(),
                    strategy.as_str()
                ),
            );
            return None;
        };
        let steps = &self.rule.steps;
        let Some(j) = steps.iter().position(|s| s.name == *name) else {
            let hint = closest(name, steps.iter().map(|s| s.name.as_str()))
                .map(|c| format!(" (did you mean '{c}'?)"))
                .unwrap_or_default();
            self.problem("skip.step", format!("no step named '{name}'{hint}"));
            return None;
        };
        if steps[j].negated {
            self.problem(
                "skip.step",
                format!("step '{name}' is negated and never holds events"),
            );
            return None;
        }
        let name = name.clone();
        Some(if strategy == SkipStrategy::SkipToFirst {
            CheckedSkip::SkipToFirst { step: j, name }
        } else {
            CheckedSkip::SkipToLast { step: j, name }
        })
    }

    fn emit(&mut self) -> Option<Vec<(String, Expr)>> {
        let steps: Vec<&str> = self
            .rule
            .steps
            .iter()
            .filter(|s| !s.negated)
            .map(|s| s.name.as_str())
            .collect();
        let mut out = Vec::new();
        let mut ok = true;
        for (key, src) in &self.rule.emit {
            let path = if is_identifier(key) {
                format!("emit.{key}")
            } else {
                format!("emit[{}]", serde_json::Value::from(key.as_str()))
            };
            if key.is_empty() {
                self.problem(&path, "an output field needs a name");
                ok = false;
            }
            let compiled = Expr::parse(src).and_then(|e| e.check_without_event(&steps).map(|_| e));
            match compiled {
                Ok(e) => out.push((key.clone(), e)),
                Err(err) => {
                    let message = self.explain(&err, src, None);
                    self.problem(path, message);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
