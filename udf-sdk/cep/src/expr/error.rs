//! Errors of parsing and type-checking an expression.

use super::ast::Type;

/// An expression that cannot be parsed or fails the static check.
///
/// Displays as `column N: message`; `column` counts characters (not bytes)
/// from 1, and points one past the end for a premature end of input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct ExprError {
    /// 1-based character offset into the expression source.
    pub column: usize,
    /// What went wrong.
    pub kind: ExprErrorKind,
}

impl ExprError {
    pub(crate) fn new(column: usize, kind: ExprErrorKind) -> Self {
        ExprError { column, kind }
    }
}

/// What went wrong, without the position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprErrorKind {
    #[error("empty expression")]
    Empty,
    #[error("unexpected character '{0}'")]
    UnexpectedChar(char),
    #[error("unexpected '{0}'; did you mean '{0}{0}'?")]
    LoneOperator(char),
    #[error("unterminated string")]
    UnterminatedString,
    #[error("invalid escape '\\{0}' in string")]
    BadEscape(String),
    #[error("invalid number '{0}'")]
    BadNumber(String),
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("the expression nests deeper than {0} levels of parentheses or prefix operators")]
    TooDeep(usize),
    #[error("comparisons cannot be chained; combine them with '&&'")]
    ChainedComparison,
    #[error("unknown function '{name}'{}", did_you_mean(suggestion))]
    UnknownFunction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("{func} takes {expected} argument{}, found {found}", plural(*expected))]
    Arity {
        func: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("write the step name without quotes: {func}({step})")]
    QuotedStep { func: &'static str, step: String },
    #[error("step '{0}' cannot be referenced: steps used in expressions must have identifier names (letters, digits, '_')")]
    StepNotIdentifier(String),
    #[error("{func} needs a field of the step: {func}(step.field)")]
    AggregateNeedsField { func: &'static str },
    #[error("count takes a step name only: count(step)")]
    CountTakesStep,
    #[error("'{op}' needs {expected}, found {found}")]
    OperandType {
        op: &'static str,
        expected: &'static str,
        found: Type,
    },
    #[error("cannot compare {left} with {right} using '{op}'")]
    CompareTypes {
        op: &'static str,
        left: Type,
        right: Type,
    },
    #[error("a condition must be a bool, found {0}")]
    NotBool(Type),
    #[error("unknown step '{name}'{}", unknown_step_hint(suggestion, *no_steps))]
    UnknownStep {
        name: String,
        suggestion: Option<String>,
        /// No step is visible at all (a condition of the first step).
        no_steps: bool,
    },
    #[error("'{written}' reads the current event, but there is none here; take the field from a step, e.g. last(step){suffix}")]
    NoCurrentEvent { written: String, suffix: String },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

fn unknown_step_hint(suggestion: &Option<String>, no_steps: bool) -> String {
    if no_steps {
        " (no earlier step is visible here)".to_string()
    } else {
        did_you_mean(suggestion)
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
