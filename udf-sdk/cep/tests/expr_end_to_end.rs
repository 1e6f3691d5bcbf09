//! The expression language from the outside: compile once, evaluate over
//! many events and partial matches.

use serde_json::{json, Value};
use weir_cep::expr::{Expr, ExprErrorKind, Type};
use weir_cep::{Matched, NoMatch};

/// A partial match held as (step, event) pairs in arrival order.
struct Taken(Vec<(&'static str, Value)>);

impl Matched<Value> for Taken {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        self.0
            .iter()
            .filter(|(s, _)| *s == step)
            .for_each(|(_, e)| f(e));
    }
}

#[test]
fn a_fraud_condition_over_a_stream() {
    let cond = Expr::compile(
        r#"event.amount > 100 && contains(user.country, "U") && amount > 2 * avg(small.amount) && count(small) >= 2"#,
        &["small"],
    )
    .unwrap();
    let mut taken = Taken(vec![]);
    let events = [
        json!({"amount": 10, "user": {"country": "US"}}),
        json!({"amount": 30, "user": {"country": "UK"}}),
        json!({"amount": 101, "user": {"country": "FR"}}),
        json!({"amount": "lots", "user": {"country": "US"}}),
        json!({"amount": 150, "user": {}}),
        json!({"amount": 150, "user": {"country": "UA"}}),
    ];
    let mut verdicts = vec![];
    for (i, e) in events.iter().enumerate() {
        verdicts.push(cond.eval_bool(e, &taken));
        if i < 2 {
            taken.0.push(("small", e.clone()));
        }
    }
    assert_eq!(verdicts, [false, false, false, false, false, true]);
    // Without the earlier events the aggregates are missing: false.
    assert!(!cond.eval_bool(&events[5], &NoMatch));
}

#[test]
fn errors_carry_columns_and_kinds() {
    let e = Expr::compile(r#"amount > 1 && contians(name, "x")"#, &[]).unwrap_err();
    assert_eq!(e.column, 15);
    assert_eq!(
        e.kind,
        ExprErrorKind::UnknownFunction {
            name: "contians".into(),
            suggestion: Some("contains".into())
        }
    );
    assert_eq!(
        e.to_string(),
        "column 15: unknown function 'contians' (did you mean 'contains'?)"
    );
    // Columns count characters: the `é` is one.
    let e = Expr::compile(r#"name == "é" && !5"#, &[]).unwrap_err();
    assert_eq!(e.to_string(), "column 17: '!' needs a bool, found number");
}

#[test]
fn values_for_output() {
    let m = Taken(vec![
        ("a", json!({"x": 1, "who": "ann"})),
        ("a", json!({"x": 2, "who": "bob"})),
    ]);
    let value = |src: &str| {
        let e = Expr::parse(src).unwrap();
        let ty = e.check_without_event(&["a"]).unwrap();
        (ty, e.eval(&Value::Null, &m))
    };
    assert_eq!(value("sum(a.x) / count(a)"), (Type::Number, json!(1.5)));
    assert_eq!(value("last(a).who"), (Type::Json, json!("bob")));
    assert_eq!(value("count(a) == 2"), (Type::Bool, json!(true)));
    assert_eq!(value(r#""lit""#), (Type::String, json!("lit")));
    assert_eq!(
        value("max(a.x) / (min(a.x) - 1)"),
        (Type::Number, Value::Null)
    );
}

#[test]
fn compiled_expressions_are_shareable() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Expr>();
    shareable::<weir_cep::rule::CheckedRule>();
}
