//! The static type check: rejects what is wrong for every possible event.
//!
//! `json` (a value read from an event) is accepted wherever any type is, since
//! its type is known only at run time; there the rules of `eval` apply.

use super::ast::{field_text, path_suffix, Kind, Node, Type};
use super::error::{ExprError, ExprErrorKind};
use super::suggest::closest;

/// What an expression may see.
pub(crate) struct Scope<'a> {
    /// Steps an aggregate may name.
    pub steps: &'a [&'a str],
    /// Whether bare field paths (the current event) are allowed.
    pub event: bool,
}

fn operand(op: &'static str, expected: &'static str, n: &Node, t: Type) -> ExprError {
    ExprError::new(
        n.col,
        ExprErrorKind::OperandType {
            op,
            expected,
            found: t,
        },
    )
}

/// Checks that `n` has one of `ok` (or json) types.
fn want(
    n: &Node,
    scope: &Scope<'_>,
    op: &'static str,
    expected: &'static str,
    ok: &[Type],
) -> Result<Type, ExprError> {
    let t = type_of(n, scope)?;
    if t == Type::Json || ok.contains(&t) {
        Ok(t)
    } else {
        Err(operand(op, expected, n, t))
    }
}

fn step(name: &str, col: usize, scope: &Scope<'_>) -> Result<(), ExprError> {
    if scope.steps.contains(&name) {
        return Ok(());
    }
    Err(ExprError::new(
        col,
        ExprErrorKind::UnknownStep {
            name: name.to_string(),
            suggestion: closest(name, scope.steps.iter().copied()).map(str::to_string),
            no_steps: scope.steps.is_empty(),
        },
    ))
}

pub(crate) fn type_of(n: &Node, scope: &Scope<'_>) -> Result<Type, ExprError> {
    Ok(match &n.kind {
        Kind::Num(_) => Type::Number,
        Kind::Str(_) => Type::String,
        Kind::Bool(_) => Type::Bool,
        Kind::Null => Type::Null,
        Kind::Field(path) => {
            if !scope.event {
                return Err(ExprError::new(
                    n.col,
                    ExprErrorKind::NoCurrentEvent {
                        written: field_text(path),
                        suffix: path_suffix(path),
                    },
                ));
            }
            Type::Json
        }
        Kind::Pick { step: s, .. } => {
            step(s, n.col, scope)?;
            Type::Json
        }
        Kind::Count(s) | Kind::Agg { step: s, .. } => {
            step(s, n.col, scope)?;
            Type::Number
        }
        Kind::Neg(a) => {
            want(a, scope, "-", "a number", &[Type::Number])?;
            Type::Number
        }
        Kind::Not(a) => {
            want(a, scope, "!", "a bool", &[Type::Bool])?;
            Type::Bool
        }
        Kind::And(a, b) | Kind::Or(a, b) => {
            let op = if matches!(n.kind, Kind::And(..)) {
                "&&"
            } else {
                "||"
            };
            want(a, scope, op, "bools", &[Type::Bool])?;
            want(b, scope, op, "bools", &[Type::Bool])?;
            Type::Bool
        }
        Kind::Arith(op, a, b) => {
            want(a, scope, op.symbol(), "numbers", &[Type::Number])?;
            want(b, scope, op.symbol(), "numbers", &[Type::Number])?;
            Type::Number
        }
        Kind::Cmp(op, a, b) => {
            let ordering = !matches!(op, super::ast::Cmp::Eq | super::ast::Cmp::Ne);
            let (ta, tb) = if ordering {
                let ok = [Type::Number, Type::String];
                let what = "numbers or strings";
                (
                    want(a, scope, op.symbol(), what, &ok)?,
                    want(b, scope, op.symbol(), what, &ok)?,
                )
            } else {
                (type_of(a, scope)?, type_of(b, scope)?)
            };
            // Same types, or one side only known at run time; `null` can
            // equal only a json value (a field may hold null).
            let compatible = ta == tb || ta == Type::Json || tb == Type::Json;
            if !compatible {
                return Err(ExprError::new(
                    b.col,
                    ExprErrorKind::CompareTypes {
                        op: op.symbol(),
                        left: ta,
                        right: tb,
                    },
                ));
            }
            Type::Bool
        }
        Kind::Call(f, args) => {
            use super::ast::Func;
            match f {
                Func::Abs => {
                    want(&args[0], scope, "abs", "a number", &[Type::Number])?;
                    Type::Number
                }
                Func::Contains | Func::StartsWith | Func::EndsWith => {
                    let name = match f {
                        Func::Contains => "contains",
                        Func::StartsWith => "starts_with",
                        _ => "ends_with",
                    };
                    for a in args.iter() {
                        want(a, scope, name, "strings", &[Type::String])?;
                    }
                    Type::Bool
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn ty(src: &str, steps: &[&str]) -> Result<Type, String> {
        let n = parse(src).unwrap();
        type_of(&n, &Scope { steps, event: true }).map_err(|e| e.to_string())
    }

    fn err(src: &str) -> String {
        ty(src, &["a", "fail"]).unwrap_err()
    }

    #[test]
    fn types_of_well_typed_expressions() {
        let s = &["a"];
        assert_eq!(ty("1 + 2 * amount", s), Ok(Type::Number));
        assert_eq!(ty("-amount", s), Ok(Type::Number));
        assert_eq!(ty("x", s), Ok(Type::Json));
        assert_eq!(ty("first(a).x", s), Ok(Type::Json));
        assert_eq!(
            ty("count(a) + sum(a.x) + min(a.x) + max(a.x) + avg(a.x)", s),
            Ok(Type::Number)
        );
        assert_eq!(ty("x == null && null == x", s), Ok(Type::Bool));
        assert_eq!(ty(r#""a" < "b" && 1 <= 2 && x > "c""#, s), Ok(Type::Bool));
        assert_eq!(ty("true == false", s), Ok(Type::Bool));
        assert_eq!(ty("!x || flag", s), Ok(Type::Bool));
        assert_eq!(
            ty(
                r#"contains(x, "u") && starts_with("ab", y) && ends_with(x, y)"#,
                s
            ),
            Ok(Type::Bool)
        );
        assert_eq!(ty("abs(x - 3)", s), Ok(Type::Number));
        assert_eq!(ty("null", s), Ok(Type::Null));
        assert_eq!(ty(r#""s""#, s), Ok(Type::String));
        assert_eq!(ty("last(a).x == first(a).x", s), Ok(Type::Bool));
    }

    #[test]
    fn type_errors_name_the_operand() {
        assert_eq!(
            err(r#""a" + 1"#),
            "column 1: '+' needs numbers, found string"
        );
        assert_eq!(
            err(r#"1 * ("a")"#),
            "column 6: '*' needs numbers, found string"
        );
        assert_eq!(err("x - true"), "column 5: '-' needs numbers, found bool");
        assert_eq!(err("x / null"), "column 5: '/' needs numbers, found null");
        assert_eq!(
            err("count(a) && true"),
            "column 1: '&&' needs bools, found number"
        );
        assert_eq!(
            err(r#"x || "y""#),
            "column 6: '||' needs bools, found string"
        );
        assert_eq!(err("!5"), "column 2: '!' needs a bool, found number");
        assert_eq!(err(r#"-"x""#), "column 2: '-' needs a number, found string");
        assert_eq!(
            err("true < false"),
            "column 1: '<' needs numbers or strings, found bool"
        );
        assert_eq!(
            err("x >= null"),
            "column 6: '>=' needs numbers or strings, found null"
        );
        assert_eq!(
            err(r#"1 > "a""#),
            "column 5: cannot compare number with string using '>'"
        );
        assert_eq!(
            err(r#"count(a) == "3""#),
            "column 13: cannot compare number with string using '=='"
        );
        assert_eq!(
            err("true != 1"),
            "column 9: cannot compare bool with number using '!='"
        );
        assert_eq!(
            err("count(a) == null"),
            "column 13: cannot compare number with null using '=='"
        );
        assert_eq!(
            err("abs(true)"),
            "column 5: 'abs' needs a number, found bool"
        );
        assert_eq!(
            err("contains(x, 1)"),
            "column 13: 'contains' needs strings, found number"
        );
        assert_eq!(
            err("starts_with(2, x)"),
            "column 13: 'starts_with' needs strings, found number"
        );
        assert_eq!(
            err("ends_with(x, x == 1)"),
            "column 14: 'ends_with' needs strings, found bool"
        );
    }

    #[test]
    fn unknown_steps() {
        assert_eq!(
            err("count(fial) > 1"),
            "column 1: unknown step 'fial' (did you mean 'fail'?)"
        );
        assert_eq!(err("x > sum(b.y)"), "column 5: unknown step 'b'");
        assert_eq!(err("first(zzz).x"), "column 1: unknown step 'zzz'");
        assert_eq!(
            ty("last(a).x == 1", &[]).unwrap_err(),
            "column 1: unknown step 'a' (no earlier step is visible here)"
        );
    }

    #[test]
    fn without_a_current_event() {
        let no_event = |src: &str| {
            let n = parse(src).unwrap();
            type_of(
                &n,
                &Scope {
                    steps: &["a"],
                    event: false,
                },
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(no_event("count(a) + last(a).x"), Ok(Type::Number));
        assert_eq!(
            no_event("count(a) + user.id"),
            Err("column 12: 'user.id' reads the current event, but there is none here; take the field from a step, e.g. last(step).user.id".into())
        );
        assert_eq!(
            no_event(r#"event["odd key"]"#),
            Err(r#"column 1: 'event["odd key"]' reads the current event, but there is none here; take the field from a step, e.g. last(step)["odd key"]"#.into())
        );
    }
}
