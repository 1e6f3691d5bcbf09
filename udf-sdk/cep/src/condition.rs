//! Conditions: what a step asks of an event (and of the match so far).

use crate::matched::Matched;

/// A step's condition. `matched` is the partial match the event would
/// extend, so a condition may look at earlier steps (Flink's
/// `IterativeCondition`); simple conditions ignore it. Conditions are shared
/// data, so a compiled NFA can move to the thread that runs it.
pub trait Condition<E>: Send + Sync {
    /// Whether `event` may be taken by the step.
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool;

    /// Whether the answer may depend on `matched`. `false` promises it
    /// depends on the event alone, so the engine tests it once per event
    /// rather than once per partial match; the default, `true`, never
    /// assumes so (a closure may read anything).
    fn reads_matched(&self) -> bool {
        true
    }
}

impl<E, F> Condition<E> for F
where
    F: Fn(&E, &dyn Matched<E>) -> bool + Send + Sync,
{
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool {
        self(event, matched)
    }
}

impl<E> Condition<E> for Box<dyn Condition<E>> {
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool {
        (**self).test(event, matched)
    }

    fn reads_matched(&self) -> bool {
        (**self).reads_matched()
    }
}

/// A condition on the event alone (Flink's `SimpleCondition`).
pub struct Simple<F>(pub F);

impl<E, F: Fn(&E) -> bool + Send + Sync> Condition<E> for Simple<F> {
    fn test(&self, event: &E, _matched: &dyn Matched<E>) -> bool {
        (self.0)(event)
    }

    fn reads_matched(&self) -> bool {
        false
    }
}

/// Accepts every event: the condition of a step given none.
pub struct Always;

impl<E> Condition<E> for Always {
    fn test(&self, _event: &E, _matched: &dyn Matched<E>) -> bool {
        true
    }

    fn reads_matched(&self) -> bool {
        false
    }
}

/// Both conditions (`where_` called twice).
pub struct And<E>(pub Box<dyn Condition<E>>, pub Box<dyn Condition<E>>);

impl<E> Condition<E> for And<E> {
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool {
        self.0.test(event, matched) && self.1.test(event, matched)
    }

    fn reads_matched(&self) -> bool {
        self.0.reads_matched() || self.1.reads_matched()
    }
}

/// Either condition (`or_where`).
pub struct Or<E>(pub Box<dyn Condition<E>>, pub Box<dyn Condition<E>>);

impl<E> Condition<E> for Or<E> {
    fn test(&self, event: &E, matched: &dyn Matched<E>) -> bool {
        self.0.test(event, matched) || self.1.test(event, matched)
    }

    fn reads_matched(&self) -> bool {
        self.0.reads_matched() || self.1.reads_matched()
    }
}
