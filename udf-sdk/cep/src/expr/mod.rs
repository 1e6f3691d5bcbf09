//! The rule expression language: conditions and outputs of declarative rules.
//!
//! ```text
//! event.amount > 100 && contains(user.country, "U")
//! count(fail) >= 3 && amount > 2 * avg(fail.amount)
//! ```
//!
//! # Syntax
//! - **Fields** of the current event: `amount`, `user.country`. The event is
//!   the root; a leading `event.` is allowed and means the same
//!   (`event.amount` is `amount`), so a field literally named `event` is
//!   written `event.event`. `event` alone is the whole event. Odd keys and
//!   array elements: `event["odd key"]`, `items[0].sku`, `a["b-c"]`.
//!   Bare names are identifiers: ASCII letters, digits and `_`, not
//!   starting with a digit ([`is_identifier`]).
//! - **Literals**: numbers (`12`, `0.5`, `1e3`; all numbers are f64), strings
//!   (`"..."` with JSON escapes `\" \\ \/ \n \t \r \uXXXX`), `true`, `false`,
//!   `null`. The words `true false null event` are keywords only where a
//!   value starts; after a dot or as a step name they are plain names.
//! - **Operators**, loosest first: `||`; `&&`; `== != < <= > >=` (not
//!   chainable); `+ -`; `* /`; prefix `!` and `-`. Parentheses group.
//! - **Functions**: `contains(s, sub)`, `starts_with(s, prefix)`,
//!   `ends_with(s, suffix)`, `abs(n)`.
//! - **Aggregates** over the events already matched to a step (named by an
//!   identifier): `first(step).field`, `last(step).field` (or the whole event
//!   without a field), `count(step)`, `sum(step.field)`, `min(step.field)`,
//!   `max(step.field)`, `avg(step.field)`.
//!
//! # Types
//! `number`, `string`, `bool`, `null` and `json`: a value read from an event
//! (a field, `first`/`last`), whose type is known only at run time. The
//! static check ([`Expr::check`]) rejects what is wrong whatever the event:
//! arithmetic and `abs` on non-numbers, `&&`/`||`/`!` on non-bools, string
//! functions on non-strings, ordering (`<` ...) anything but numbers and
//! strings, comparing two different known types (`null` equals only a
//! `json` value), aggregates over steps not in scope, and a condition whose
//! type is not `bool` (or `json`).
//!
//! # Run time: never an error
//! A condition never fails the job; bad data only makes it false:
//! - A missing field, a field of the wrong type for its operator, a division
//!   by zero, or an overflow to infinity yields *missing*. Arithmetic and
//!   `abs` on *missing* yield *missing*.
//! - Every comparison with *missing* on either side is false, `!=` included:
//!   if `status` is absent, both `status == "ok"` and `status != "ok"` are
//!   false, while `!(status == "ok")` is true.
//! - Values of different kinds (number vs string, ...) compare false under
//!   every operator, except `null`: `x == null` holds when `x` is present and
//!   null, `x != null` when `x` is present and not null. Numbers and strings
//!   order naturally (strings by code point); bools, arrays and objects only
//!   compare with `==`/`!=` (deep equality of the JSON values, where `1`
//!   and `1.0` inside an array differ), ordering them is false.
//! - A value used as a bool (an operand of `&&`, `||`, `!`, or the whole
//!   condition) is true only if it is the boolean `true`.
//! - `contains`/`starts_with`/`ends_with` are false unless both arguments
//!   are strings.
//! - Aggregates: `count` counts the step's events; `sum`/`min`/`max`/`avg`
//!   use the events whose field is a number and skip the rest. `sum` of none
//!   is 0; `min`/`max`/`avg` of none, and `first`/`last` of a step with no
//!   events, are *missing*.
//! - [`Expr::eval`] turns *missing* into JSON `null`, and integral numbers up
//!   to 2^53 into JSON integers.

mod ast;
mod check;
mod error;
mod eval;
mod fast;
mod lex;
mod parse;
mod suggest;

pub(crate) use ast::Seg;
pub use ast::Type;
pub use error::{ExprError, ExprErrorKind};
pub(crate) use eval::{lookup, EventFields, Val};
pub(crate) use fast::Fast;
pub use lex::is_identifier;
pub(crate) use suggest::closest;

use serde_json::Value;

use crate::Matched;
use ast::{Kind, Node};
use check::Scope;

/// A parsed expression, ready to check and evaluate.
///
/// ```
/// use serde_json::json;
/// use weir_cep::{expr::Expr, NoMatch};
///
/// let cond = Expr::compile(r#"amount > 100 && contains(user.country, "U")"#, &[])?;
/// assert!(cond.eval_bool(&json!({"amount": 150, "user": {"country": "US"}}), &NoMatch));
/// // Missing or mistyped data makes the condition false, never an error.
/// assert!(!cond.eval_bool(&json!({"amount": "150"}), &NoMatch));
///
/// let err = Expr::compile(r#"contians(name, "x")"#, &[]).unwrap_err();
/// assert_eq!(err.to_string(), "column 1: unknown function 'contians' (did you mean 'contains'?)");
/// # Ok::<(), weir_cep::expr::ExprError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
    src: Box<str>,
}

impl Expr {
    /// Parses `src`. Unknown functions and wrong argument counts are caught
    /// here; types and step names by [`Expr::check`].
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        Ok(Expr {
            root: parse::parse(src)?,
            src: src.into(),
        })
    }

    /// Parses `src` and checks it as a condition over `known_steps`.
    pub fn compile(src: &str, known_steps: &[&str]) -> Result<Expr, ExprError> {
        let e = Expr::parse(src)?;
        e.check(known_steps)?;
        Ok(e)
    }

    /// Checks the expression as a condition on the current event: well
    /// typed, `bool` (or `json`) valued, aggregating only over `known_steps`.
    pub fn check(&self, known_steps: &[&str]) -> Result<(), ExprError> {
        let t = self.check_value(known_steps)?;
        match t {
            Type::Bool | Type::Json => Ok(()),
            other => Err(ExprError::new(self.root.col, ExprErrorKind::NotBool(other))),
        }
    }

    /// Checks the expression as a value of any type and returns the type.
    pub fn check_value(&self, known_steps: &[&str]) -> Result<Type, ExprError> {
        check::type_of(
            &self.root,
            &Scope {
                steps: known_steps,
                event: true,
            },
        )
    }

    /// Checks the expression as a value computed from a completed match
    /// alone (a rule's `emit`): no current event, so bare fields are errors.
    pub fn check_without_event(&self, known_steps: &[&str]) -> Result<Type, ExprError> {
        check::type_of(
            &self.root,
            &Scope {
                steps: known_steps,
                event: false,
            },
        )
    }

    /// The condition's verdict on `event`, given the partial match so far.
    /// Never fails: see the module docs for what bad data does.
    pub fn eval_bool(&self, event: &Value, matched: &dyn Matched<Value>) -> bool {
        eval::truth(&self.root, event, matched)
    }

    /// The expression's value as JSON (missing values become `null`).
    pub fn eval(&self, event: &Value, matched: &dyn Matched<Value>) -> Value {
        eval::value(&self.root, event, matched).into_json()
    }

    /// [`Expr::eval_bool`] over any event representation.
    pub(crate) fn eval_bool_in<E: EventFields + ?Sized>(
        &self,
        event: &E,
        matched: &dyn Matched<E>,
    ) -> bool {
        eval::truth(&self.root, event, matched)
    }

    /// [`Expr::eval`] over any event representation.
    pub(crate) fn eval_in<E: EventFields + ?Sized>(
        &self,
        event: &E,
        matched: &dyn Matched<E>,
    ) -> Value {
        eval::value(&self.root, event, matched).into_json()
    }

    /// The source text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Every step an aggregate names, in order of appearance, with repeats.
    pub fn steps(&self) -> Vec<&str> {
        let mut out = Vec::new();
        walk_steps(&self.root, &mut out);
        out
    }

    /// Adds every field path the expression reads, of the current event or
    /// of matched ones, to `fields` (up to its first array index: from
    /// there on the value is kept whole).
    pub(crate) fn add_fields(&self, fields: &mut crate::project::Fields) {
        self.root.walk(&mut |n| {
            let path = match &n.kind {
                Kind::Field(path) | Kind::Pick { path, .. } | Kind::Agg { path, .. } => path,
                _ => return,
            };
            fields.add(path.iter().map_while(|seg| match seg {
                ast::Seg::Key(k) => Some(&**k),
                ast::Seg::Index(_) => None,
            }));
        });
    }

    /// The expression as a condition tested on the slots of events read
    /// for `fields`, if it only compares their fields with literals (see
    /// [`Fast`]).
    pub(crate) fn bind(&self, fields: &crate::project::Fields) -> Option<Fast> {
        Fast::bind(&self.root, fields)
    }

    /// Whether the expression reads the current event (a bare field path).
    pub fn reads_event(&self) -> bool {
        let mut found = false;
        self.root
            .walk(&mut |n| found |= matches!(n.kind, Kind::Field(_)));
        found
    }
}

fn walk_steps<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
    match &n.kind {
        Kind::Pick { step, .. } | Kind::Count(step) | Kind::Agg { step, .. } => out.push(step),
        Kind::Neg(a) | Kind::Not(a) => walk_steps(a, out),
        Kind::Arith(_, a, b) | Kind::Cmp(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => {
            walk_steps(a, out);
            walk_steps(b, out);
        }
        Kind::Call(_, args) => args.iter().for_each(|a| walk_steps(a, out)),
        Kind::Num(_) | Kind::Str(_) | Kind::Bool(_) | Kind::Null | Kind::Field(_) => {}
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.src)
    }
}

#[cfg(test)]
mod tests;
