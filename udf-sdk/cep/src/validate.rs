//! Pattern validation: Flink's `MalformedPatternException` cases, typed.

use std::collections::HashSet;

use crate::pattern::{Contiguity, Pattern, Times};
use crate::skip::AfterMatchSkip;

/// Why a pattern cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern needs at least one step")]
    Empty,
    #[error("step names must not be empty")]
    EmptyName,
    #[error("duplicate step name {0:?}: names must be unique")]
    DuplicateName(String),
    #[error("the first step {0:?} cannot be negated (notNext/notFollowedBy)")]
    NegatedStart(String),
    #[error("the last step {0:?} is notFollowedBy, which needs a window (within)")]
    NotFollowedByAtEndWithoutWindow(String),
    #[error("negated step {0:?} cannot follow an optional step")]
    NegationAfterOptional(String),
    #[error("negated step {0:?} must be notNext or notFollowedBy, not followedByAny")]
    NegatedAny(String),
    #[error("negated step {0:?} cannot take a quantifier or option")]
    QuantifierOnNegated(String),
    #[error("step {0:?} already has a quantifier")]
    QuantifierAlreadyApplied(String),
    #[error("step {0:?}: option {1} already applied")]
    OptionAlreadyApplied(String, &'static str),
    #[error("step {0:?}: times must be at least 1 and a range must have 0 < max and min <= max")]
    BadTimes(String),
    #[error("step {0:?}: until applies only to looping steps (oneOrMore, timesOrMore)")]
    UntilNotLooping(String),
    #[error("step {0:?}: consecutive/allowCombinations apply only to repeated steps")]
    InnerContiguityNotRepeated(String),
    #[error("step {0:?}: greedy applies only to repeated steps, and not with allowCombinations")]
    GreedyNotApplicable(String),
    #[error("step {0:?} is optional right after a greedy step")]
    OptionalAfterGreedy(String),
    #[error("the skip strategy names step {0:?}, which the pattern does not have")]
    UnknownSkipStep(String),
    #[error("a window must be at least 1 ms")]
    ZeroWindow,
    #[error(
        "step {0:?}: its previous-and-current window is longer than the first-and-last window"
    )]
    WindowLongerThanPattern(String),
    #[error("a pattern may have at most {0} steps")]
    TooManySteps(usize),
}

/// Most steps a pattern may have (step indices are stored as `u16`).
pub const MAX_STEPS: usize = 4096;

/// Checks `pattern`; the first error found, builder errors first.
pub fn validate<E>(pattern: &Pattern<E>) -> Result<(), PatternError> {
    if let Some(e) = pattern.errors.first() {
        return Err(e.clone());
    }
    let steps = &pattern.steps;
    let Some(first) = steps.first() else {
        return Err(PatternError::Empty);
    };
    if steps.len() > MAX_STEPS {
        return Err(PatternError::TooManySteps(MAX_STEPS));
    }
    if first.negated {
        return Err(PatternError::NegatedStart(first.name.clone()));
    }
    let mut names = HashSet::new();
    for (i, step) in steps.iter().enumerate() {
        let name = || step.name.clone();
        if step.name.is_empty() {
            return Err(PatternError::EmptyName);
        }
        if !names.insert(step.name.as_str()) {
            return Err(PatternError::DuplicateName(name()));
        }
        let q = &step.quantifier;
        if step.negated {
            if step.contiguity == Contiguity::NonDeterministicRelaxed {
                return Err(PatternError::NegatedAny(name()));
            }
            if q.times != Times::One || q.optional || q.greedy || step.until.is_some() {
                return Err(PatternError::QuantifierOnNegated(name()));
            }
            if i > 0 && steps[i - 1].quantifier.optional {
                return Err(PatternError::NegationAfterOptional(name()));
            }
        }
        match q.times {
            Times::Exactly(0) | Times::AtLeast(0) => return Err(PatternError::BadTimes(name())),
            Times::Range { min, max } if max == 0 || min > max => {
                return Err(PatternError::BadTimes(name()))
            }
            _ => {}
        }
        if step.until.is_some() && !q.is_looping() {
            return Err(PatternError::UntilNotLooping(name()));
        }
        if q.inner != Contiguity::Relaxed && !q.is_repeated() {
            return Err(PatternError::InnerContiguityNotRepeated(name()));
        }
        if q.greedy && (!q.is_repeated() || q.inner == Contiguity::NonDeterministicRelaxed) {
            return Err(PatternError::GreedyNotApplicable(name()));
        }
        if q.optional && i > 0 && steps[i - 1].quantifier.greedy {
            return Err(PatternError::OptionalAfterGreedy(name()));
        }
        if let Some(w) = step.within_previous {
            if w.as_millis() == 0 {
                return Err(PatternError::ZeroWindow);
            }
            if pattern.within.is_some_and(|total| w > total) {
                return Err(PatternError::WindowLongerThanPattern(name()));
            }
        }
    }
    if pattern.within.is_some_and(|w| w.as_millis() == 0) {
        return Err(PatternError::ZeroWindow);
    }
    if let Some(last) = steps.last() {
        let windowed = pattern.within.is_some() || last.within_previous.is_some();
        if last.negated && last.contiguity == Contiguity::Relaxed && !windowed {
            return Err(PatternError::NotFollowedByAtEndWithoutWindow(
                last.name.clone(),
            ));
        }
    }
    match &pattern.skip {
        AfterMatchSkip::SkipToFirst(target) | AfterMatchSkip::SkipToLast(target)
            if !names.contains(target.as_str()) =>
        {
            Err(PatternError::UnknownSkipStep(target.clone()))
        }
        _ => Ok(()),
    }
}
