//! Evaluation over a JSON event and the partial match.
//!
//! Values borrow from the event and the tree, so conditions allocate
//! nothing. `Matched::visit` lends matched events only inside its callback,
//! so comparisons and string functions read `first(s).x` / `last(s).x` there;
//! only where such a value outlives the callback (arithmetic keeps numbers,
//! [`value`] for `emit` keeps anything) is it copied, a string or a
//! compound value then costing an allocation.

use std::borrow::Cow;

use serde_json::Value;

use super::ast::{Agg, Arith, Cmp, Func, Kind, Node, Pick, Seg};
use crate::project::SlotValue;
use crate::Matched;

/// A run-time value. `Missing` is an absent field, a value of the wrong type
/// for an operator, or an undefined result (division by zero, overflow): it
/// makes every comparison false and turns arithmetic into `Missing` again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'a> {
    Missing,
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// An array or an object.
    Compound(Cow<'a, Value>),
}

impl<'a> Val<'a> {
    pub(crate) fn of(v: Option<&'a Value>) -> Val<'a> {
        match v {
            None => Val::Missing,
            Some(Value::Null) => Val::Null,
            Some(Value::Bool(b)) => Val::Bool(*b),
            Some(Value::Number(n)) => n.as_f64().map_or(Val::Missing, Val::Num),
            Some(Value::String(s)) => Val::Str(Cow::Borrowed(s)),
            Some(v) => Val::Compound(Cow::Borrowed(v)),
        }
    }

    /// The same value, owning what it borrowed.
    fn into_static(self) -> Val<'static> {
        match self {
            Val::Missing => Val::Missing,
            Val::Null => Val::Null,
            Val::Bool(b) => Val::Bool(b),
            Val::Num(n) => Val::Num(n),
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Compound(c) => Val::Compound(Cow::Owned(c.into_owned())),
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// As JSON: `Missing` becomes `null`; integral numbers that fit a JSON
    /// integer exactly become integers, so `count(a)` emits `3`, not `3.0`.
    pub(crate) fn into_json(self) -> Value {
        match self {
            Val::Missing | Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Num(n) => num_json(n),
            Val::Str(s) => Value::String(s.into_owned()),
            Val::Compound(c) => c.into_owned(),
        }
    }
}

fn num_json(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Finite results only: an infinity is not JSON and compares unhelpfully.
fn finite(n: f64) -> Val<'static> {
    if n.is_finite() {
        Val::Num(n)
    } else {
        Val::Missing
    }
}

/// An event as expressions read it: the value at a path (`Missing` if
/// none).
pub(crate) trait EventFields {
    fn val(&self, path: &[Seg]) -> Val<'_>;

    /// The event's slots, if it was read for exactly `fields` (see
    /// [`Fast`](super::Fast)); `None` otherwise.
    fn slots_of(&self, fields: &crate::project::Fields) -> Option<&[Option<SlotValue>]> {
        let _ = fields;
        None
    }
}

impl EventFields for Value {
    fn val(&self, path: &[Seg]) -> Val<'_> {
        Val::of(lookup(self, path))
    }
}

pub(crate) fn lookup<'v>(mut v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    for seg in path {
        v = match seg {
            Seg::Key(k) => v.as_object()?.get(&**k)?,
            Seg::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

/// The expression's value; bool-valued nodes go through [`truth`].
pub(crate) fn value<'a, E: EventFields + ?Sized>(
    n: &'a Node,
    ev: &'a E,
    m: &dyn Matched<E>,
) -> Val<'a> {
    match &n.kind {
        Kind::Num(x) => Val::Num(*x),
        Kind::Str(s) => Val::Str(Cow::Borrowed(s)),
        Kind::Bool(b) => Val::Bool(*b),
        Kind::Null => Val::Null,
        Kind::Field(path) => ev.val(path),
        Kind::Pick { pick, step, path } => pick_value(*pick, step, path, m),
        Kind::Count(step) => {
            let mut count = 0usize;
            m.visit(step, &mut |_| count += 1);
            Val::Num(count as f64)
        }
        Kind::Agg { agg, step, path } => aggregate(*agg, step, path, m),
        Kind::Neg(a) => value(a, ev, m).num().map_or(Val::Missing, |x| Val::Num(-x)),
        Kind::Arith(op, a, b) => {
            let (Some(x), Some(y)) = (value(a, ev, m).num(), value(b, ev, m).num()) else {
                return Val::Missing;
            };
            match op {
                Arith::Add => finite(x + y),
                Arith::Sub => finite(x - y),
                Arith::Mul => finite(x * y),
                Arith::Div if y == 0.0 => Val::Missing,
                Arith::Div => finite(x / y),
            }
        }
        Kind::Call(Func::Abs, args) => value(&args[0], ev, m)
            .num()
            .map_or(Val::Missing, |x| Val::Num(x.abs())),
        Kind::Not(_) | Kind::And(..) | Kind::Or(..) | Kind::Cmp(..) | Kind::Call(..) => {
            Val::Bool(truth(n, ev, m))
        }
    }
}

/// The expression as a condition: true only for the boolean `true`.
pub(crate) fn truth<E: EventFields + ?Sized>(n: &Node, ev: &E, m: &dyn Matched<E>) -> bool {
    match &n.kind {
        Kind::Bool(b) => *b,
        Kind::Not(a) => !truth(a, ev, m),
        Kind::And(a, b) => truth(a, ev, m) && truth(b, ev, m),
        Kind::Or(a, b) => truth(a, ev, m) || truth(b, ev, m),
        Kind::Cmp(op, a, b) => {
            if is_pick(a) || is_pick(b) {
                let mut out = false;
                with_val(a, ev, m, &mut |x| {
                    with_val(b, ev, m, &mut |y| out = compare(*op, x, y))
                });
                out
            } else {
                compare(*op, &value(a, ev, m), &value(b, ev, m))
            }
        }
        Kind::Call(f @ (Func::Contains | Func::StartsWith | Func::EndsWith), args) => {
            let test = |x: &Val<'_>, y: &Val<'_>| {
                let (Val::Str(s), Val::Str(p)) = (x, y) else {
                    return false;
                };
                match f {
                    Func::Contains => s.contains(&**p),
                    Func::StartsWith => s.starts_with(&**p),
                    _ => s.ends_with(&**p),
                }
            };
            let (a, b) = (&args[0], &args[1]);
            if is_pick(a) || is_pick(b) {
                let mut out = false;
                with_val(a, ev, m, &mut |x| {
                    with_val(b, ev, m, &mut |y| out = test(x, y))
                });
                out
            } else {
                test(&value(a, ev, m), &value(b, ev, m))
            }
        }
        _ => matches!(value(n, ev, m), Val::Bool(true)),
    }
}

/// Compares two values; false whenever either is `Missing` or their kinds
/// differ, except that `null` is unequal (`!=` holds) to any present value.
pub(crate) fn compare(op: Cmp, a: &Val<'_>, b: &Val<'_>) -> bool {
    let ord = match (a, b) {
        (Val::Missing, _) | (_, Val::Missing) => return false,
        (Val::Null, Val::Null) => return op == Cmp::Eq,
        (Val::Null, _) | (_, Val::Null) => return op == Cmp::Ne,
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => return equality(op, x == y),
        (Val::Compound(x), Val::Compound(y)) => return equality(op, x == y),
        _ => return false,
    };
    ord.is_some_and(|o| op.holds(o))
}

/// `==`/`!=` on values with no order; ordering them is false.
fn equality(op: Cmp, equal: bool) -> bool {
    match op {
        Cmp::Eq => equal,
        Cmp::Ne => !equal,
        _ => false,
    }
}

fn is_pick(n: &Node) -> bool {
    matches!(n.kind, Kind::Pick { .. })
}

/// Calls `f` with the node's value, borrowed from the matched event for
/// `first`/`last` (inside `visit`), so nothing is copied.
fn with_val<E: EventFields + ?Sized>(
    n: &Node,
    ev: &E,
    m: &dyn Matched<E>,
    f: &mut dyn FnMut(&Val<'_>),
) {
    let Kind::Pick { pick, step, path } = &n.kind else {
        return f(&value(n, ev, m));
    };
    let mut called = false;
    if let Some(target) = pick_index(*pick, step, m) {
        let mut i = 0usize;
        m.visit(step, &mut |e| {
            if i == target {
                f(&e.val(path));
                called = true;
            }
            i += 1;
        });
    }
    if !called {
        f(&Val::Missing);
    }
}

/// The position of the event `first`/`last` takes; for `last` a first pass
/// counts the events, so no earlier one is read in vain.
fn pick_index<E: ?Sized>(pick: Pick, step: &str, m: &dyn Matched<E>) -> Option<usize> {
    match pick {
        Pick::First => Some(0),
        Pick::Last => {
            let mut n = 0usize;
            m.visit(step, &mut |_| n += 1);
            n.checked_sub(1)
        }
    }
}

/// `first`/`last` as an owned value: only the chosen event's field is copied.
fn pick_value<E: EventFields + ?Sized>(
    pick: Pick,
    step: &str,
    path: &[Seg],
    m: &dyn Matched<E>,
) -> Val<'static> {
    let Some(target) = pick_index(pick, step, m) else {
        return Val::Missing;
    };
    let mut i = 0usize;
    let mut out = Val::Missing;
    m.visit(step, &mut |e| {
        if i == target {
            out = e.val(path).into_static();
        }
        i += 1;
    });
    out
}

/// `sum`/`min`/`max`/`avg` over the step's events whose field is a number;
/// other events are skipped. `sum` of nothing is 0, the others `Missing`.
fn aggregate<E: EventFields + ?Sized>(
    agg: Agg,
    step: &str,
    path: &[Seg],
    m: &dyn Matched<E>,
) -> Val<'static> {
    let mut sum = 0.0;
    let mut n = 0usize;
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    m.visit(step, &mut |e| {
        if let Some(x) = e.val(path).num() {
            sum += x;
            n += 1;
            lo = lo.min(x);
            hi = hi.max(x);
        }
    });
    match agg {
        Agg::Sum => finite(sum),
        _ if n == 0 => Val::Missing,
        Agg::Min => Val::Num(lo),
        Agg::Max => Val::Num(hi),
        Agg::Avg => finite(sum / n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparison_table() {
        let s = |x: &'static str| Val::Str(Cow::Borrowed(x));
        let arr = json!([1, 2]);
        let arr2 = json!([1, 2]);
        let c = |v: &Value| Val::Compound(Cow::Owned(v.clone()));
        let all = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge];
        let table = |a: &Val<'_>, b: &Val<'_>| all.map(|op| compare(op, a, b));
        //                                             ==     !=     <      <=     >      >=
        assert_eq!(
            table(&Val::Num(1.0), &Val::Num(2.0)),
            [false, true, true, true, false, false]
        );
        assert_eq!(
            table(&Val::Num(2.0), &Val::Num(2.0)),
            [true, false, false, true, false, true]
        );
        assert_eq!(
            table(&s("b"), &s("a")),
            [false, true, false, false, true, true]
        );
        assert_eq!(
            table(&s("a"), &s("a")),
            [true, false, false, true, false, true]
        );
        assert_eq!(
            table(&Val::Bool(true), &Val::Bool(true)),
            [true, false, false, false, false, false]
        );
        assert_eq!(
            table(&Val::Bool(true), &Val::Bool(false)),
            [false, true, false, false, false, false]
        );
        assert_eq!(
            table(&c(&arr), &c(&arr2)),
            [true, false, false, false, false, false]
        );
        assert_eq!(
            table(&c(&arr), &c(&json!({}))),
            [false, true, false, false, false, false]
        );
        assert_eq!(
            table(&Val::Null, &Val::Null),
            [true, false, false, false, false, false]
        );
        assert_eq!(
            table(&Val::Null, &Val::Num(1.0)),
            [false, true, false, false, false, false]
        );
        assert_eq!(
            table(&s("x"), &Val::Null),
            [false, true, false, false, false, false]
        );
        assert_eq!(table(&Val::Missing, &Val::Null), [false; 6]);
        assert_eq!(table(&Val::Missing, &Val::Missing), [false; 6]);
        assert_eq!(table(&Val::Num(1.0), &Val::Missing), [false; 6]);
        assert_eq!(table(&Val::Num(1.0), &s("1")), [false; 6]);
        assert_eq!(table(&Val::Bool(true), &Val::Num(1.0)), [false; 6]);
    }

    #[test]
    fn numbers_to_json() {
        assert_eq!(num_json(3.0), json!(3));
        assert_eq!(num_json(-0.0), json!(0));
        assert_eq!(num_json(2.5), json!(2.5));
        assert_eq!(num_json(1e300), json!(1e300));
        assert_eq!(Val::Missing.into_json(), Value::Null);
    }

    #[test]
    fn lookups() {
        let v = json!({"a": {"b": [10, {"c": "x"}]}, "odd key": 1});
        let k = |s: &str| Seg::Key(s.into());
        assert_eq!(
            lookup(&v, &[k("a"), k("b"), Seg::Index(1), k("c")]),
            Some(&json!("x"))
        );
        assert_eq!(lookup(&v, &[k("odd key")]), Some(&json!(1)));
        assert_eq!(lookup(&v, &[k("a"), k("b"), Seg::Index(2)]), None);
        assert_eq!(lookup(&v, &[k("a"), Seg::Index(0)]), None);
        assert_eq!(lookup(&v, &[k("a"), k("b"), k("c")]), None);
        assert_eq!(lookup(&v, &[]), Some(&v));
    }
}
