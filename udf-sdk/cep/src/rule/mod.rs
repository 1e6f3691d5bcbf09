//! The declarative rule file: serde types, validation, and the checked IR.
//!
//! ```yaml
//! name: fraud-login
//! within_ms: 60000
//! skip: { strategy: skip_past_last_event }
//! steps:
//!   - name: fail
//!     where: status == "failed"
//!     quantifier: { min: 3, max: 3 }
//!   - name: ok
//!     where: status == "ok" && user == first(fail).user
//! emit:
//!   user: first(fail).user
//!   attempts: count(fail)
//! ```
//!
//! The orchestrator deserializes the YAML into [`Rule`] (unknown keys are
//! errors) and calls [`Rule::check`], which returns a [`CheckedRule`] or
//! every [`RuleProblem`] with its path in the file. Expressions are the
//! [`crate::expr`] language.

mod check;
mod ir;
mod problem;
mod types;

#[cfg(test)]
mod tests;

pub use ir::{CheckedRule, CheckedSkip, CheckedStep, Within};
pub use problem::RuleProblem;
pub use types::{Contiguity, Quantifier, Rule, Skip, SkipStrategy, Step, WithinType};

/// The JSON Schema of the rule file, with every field documented.
#[cfg(feature = "schema")]
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Rule)
}
