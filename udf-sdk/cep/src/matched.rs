//! What a condition sees of the partial match it would extend.

/// The events a partial match has already taken, step by step.
///
/// Iterative conditions (a step's condition that looks at earlier steps) and
/// the rule language's aggregates (`first(a).x`, `sum(a.x)`, `count(a)`) read
/// the match through this, so the engine never copies a match to test a
/// condition.
pub trait Matched<E: ?Sized> {
    /// Calls `f` with each event matched to `step` so far, oldest first.
    /// A step with no events (or an unknown name) calls `f` never.
    fn visit(&self, step: &str, f: &mut dyn FnMut(&E));
}

/// A match with no events, for conditions tested outside any match.
pub struct NoMatch;

impl<E: ?Sized> Matched<E> for NoMatch {
    fn visit(&self, _step: &str, _f: &mut dyn FnMut(&E)) {}
}
