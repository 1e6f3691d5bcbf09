//! One thing wrong with a rule, and where.

use serde::Serialize;

/// A problem found by [`Rule::check`](super::Rule::check).
///
/// `path` locates the value in the rule file, as `steps[1].where`,
/// `skip.step` or `emit.user` (indices from 0), so the orchestrator can map
/// it to a line. For expressions, `message` starts with the column inside
/// the expression: `column 9: unknown function 'contians' (did you mean
/// 'contains'?)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RuleProblem {
    /// Where in the rule file.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl RuleProblem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        RuleProblem {
            path: path.into(),
            message: message.into(),
        }
    }
}
