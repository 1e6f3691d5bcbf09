//! CEP rule files: YAML text to a checked rule, or every problem located at
//! its line (`rules/fraud.yaml:7: steps[1].where: column 9: ...`).

use weir_cep::rule::{CheckedRule, Rule, RuleProblem};

use crate::domain::document::{self, Problem, DOCUMENT};

/// A rule file that failed to parse or check: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", document::render("rule", &self.problems))]
pub struct RuleFileError {
    pub problems: Vec<Problem>,
}

impl RuleFileError {
    /// One line per problem, `file:line: field: problem`.
    pub fn in_file(&self, file: &str) -> String {
        document::render(file, &self.problems)
    }
}

/// Parses a rule file (YAML 1.2, or JSON) and checks it.
///
/// A mistake in the document's shape (an unknown key, a wrong type) stops
/// parsing and is the only problem; otherwise every problem the check finds
/// is reported, in file order.
pub fn parse(text: &str) -> Result<CheckedRule, RuleFileError> {
    parse_with_source(text).map(|(_, checked)| checked)
}

/// [`parse`], also giving the rule as written (what a rule component is
/// handed to check and run itself).
pub fn parse_with_source(text: &str) -> Result<(Rule, CheckedRule), RuleFileError> {
    let (rule, lines) =
        document::from_yaml::<Rule>(text).map_err(|p| RuleFileError { problems: vec![p] })?;
    let checked = rule.check().map_err(|problems| RuleFileError {
        problems: lines.locate(problems.into_iter().map(located).collect()),
    })?;
    Ok((rule, checked))
}

fn located(p: RuleProblem) -> Problem {
    let field = if p.path.is_empty() {
        DOCUMENT.to_owned()
    } else {
        p.path
    };
    Problem::new(field, p.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> String {
        parse(text).unwrap_err().in_file("rules/fraud.yaml")
    }

    #[test]
    fn a_good_rule_checks() {
        let r = parse(
            "name: fraud\nwithin_ms: 60000\nsteps:\n  - name: fail\n    where: status == \"failed\"\n    quantifier: { min: 3, max: 3 }\n  - name: ok\n    where: status == \"ok\"\n",
        )
        .unwrap();
        assert_eq!(r.name, "fraud");
        assert_eq!(r.steps.len(), 2);
        assert!(r.compile().is_ok());
    }

    #[test]
    fn check_problems_are_located_at_their_field() {
        let text = "\
name: fraud
steps:
  - name: fail
    where: status == \"failed\"
  - name: ok
    contiguity: strict
    where: amount > 1 && contians(user, \"x\")
skip:
  strategy: skip_to_last
  step: fial
";
        assert_eq!(
            problems(text),
            "rules/fraud.yaml:7: steps[1].where: column 15: unknown function 'contians' (did you mean 'contains'?)\n\
             rules/fraud.yaml:10: skip.step: no step named 'fial' (did you mean 'fail'?)"
        );
    }

    #[test]
    fn shape_and_syntax_problems_are_located() {
        assert_eq!(
            problems("name: r\nsteps:\n  - name: a\n    wher: x\n"),
            "rules/fraud.yaml:4: steps[0].wher: unknown field `wher`, expected one of name, where, quantifier, loop_contiguity, contiguity, optional, greedy, until, negated"
        );
        assert_eq!(
            problems("name: r\nsteps: [\n"),
            "rules/fraud.yaml:2: steps: unclosed bracket '['"
        );
    }

    #[test]
    fn yaml_1_2_booleans() {
        // `yes` is a string in YAML 1.2, so not a boolean for `negated`.
        let err = problems("name: r\nsteps:\n  - name: a\n    where: \"true\"\n    negated: yes\n");
        assert!(
            err.starts_with("rules/fraud.yaml:5: steps[0].negated:"),
            "{err}"
        );
    }
}
