//! Evaluation tests through the public API.

use super::*;
use crate::NoMatch;
use serde_json::json;

/// A partial match: step name to its events, oldest first.
struct Fake(Vec<(&'static str, Vec<Value>)>);

impl Matched<Value> for Fake {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        for (name, events) in &self.0 {
            if *name == step {
                events.iter().for_each(&mut *f);
            }
        }
    }
}

fn event() -> Value {
    json!({
        "amount": 150,
        "price": 2.5,
        "neg": -4,
        "zero": 0,
        "status": "failed",
        "flag": true,
        "off": false,
        "nothing": null,
        "user": {"country": "US", "id": "u1", "tags": ["a", "b"]},
        "items": [{"sku": "x1"}, {"sku": "y2"}],
        "odd key": 7,
        "event": "nested-event-field",
    })
}

fn matched() -> Fake {
    Fake(vec![
        (
            "fail",
            vec![
                json!({"amount": 10, "user": "ann", "ip": "1.1.1.1"}),
                json!({"amount": "n/a", "user": "ann"}),
                json!({"amount": 30, "user": "bob", "ip": "2.2.2.2"}),
            ],
        ),
        ("ok", vec![json!({"amount": -5})]),
        ("empty", vec![]),
    ])
}

const STEPS: &[&str] = &["fail", "ok", "empty"];

/// Compiles against `STEPS` and evaluates as a condition.
fn t(src: &str) -> bool {
    let e = Expr::compile(src, STEPS).unwrap_or_else(|err| panic!("{src}: {err}"));
    e.eval_bool(&event(), &matched())
}

/// Evaluates as a value.
fn v(src: &str) -> Value {
    let e = Expr::parse(src).unwrap();
    e.check_value(STEPS)
        .unwrap_or_else(|err| panic!("{src}: {err}"));
    e.eval(&event(), &matched())
}

#[test]
fn arithmetic() {
    assert_eq!(v("1 + 2 * 3"), json!(7));
    assert_eq!(v("(1 + 2) * 3"), json!(9));
    assert_eq!(v("10 - 4 - 3"), json!(3));
    assert_eq!(v("12 / 4 / 3"), json!(1));
    assert_eq!(v("7 / 2"), json!(3.5));
    assert_eq!(v("-amount + 1"), json!(-149));
    assert_eq!(v("amount * price"), json!(375));
    assert_eq!(v("abs(neg)"), json!(4));
    assert_eq!(v("abs(-2.5)"), json!(2.5));
    assert_eq!(v("- -3"), json!(3));
}

#[test]
fn arithmetic_on_bad_data_is_missing() {
    assert_eq!(v("amount / zero"), Value::Null);
    assert_eq!(v("1 / 0"), Value::Null);
    assert_eq!(v("0 / 0"), Value::Null);
    assert_eq!(v("status + 1"), Value::Null);
    assert_eq!(v("nope * 2"), Value::Null);
    assert_eq!(v("-status"), Value::Null);
    assert_eq!(v("abs(user)"), Value::Null);
    assert_eq!(v("1e300 * 1e300"), Value::Null);
    // ...and every comparison with it is false, `!=` included.
    assert!(!t("amount / zero > 0"));
    assert!(!t("amount / zero <= 0"));
    assert!(!t("amount / zero == 0"));
    assert!(!t("amount / zero != 0"));
    assert!(t("!(amount / zero > 0)"));
}

#[test]
fn comparisons() {
    assert!(t("amount > 100"));
    assert!(t("amount >= 150"));
    assert!(!t("amount > 150"));
    assert!(t("amount < 151"));
    assert!(t("amount <= 150"));
    assert!(t("amount == 150"));
    assert!(t("amount != 151"));
    assert!(t("price == 2.5"));
    assert!(t(r#"status == "failed""#));
    assert!(t(r#"status != "ok""#));
    assert!(t(r#"status > "abc""#));
    assert!(t(r#"status < "g""#));
    assert!(t(r#""b" >= "a" && "a" <= "a""#));
    assert!(t("flag == true"));
    assert!(t("off != true"));
    assert!(t("user.tags == user.tags"));
    assert!(t("items[0] != items[1]"));
    assert!(t(r#"items[1].sku == "y2""#));
    assert!(t(r#"event["odd key"] == 7"#));
    assert!(t(r#"event.event == "nested-event-field""#));
    assert!(t("event.amount == amount"));
}

#[test]
fn missing_and_mistyped_fields_make_comparisons_false() {
    for src in [
        "nope == 1",
        "nope != 1",
        "nope < 1",
        "nope >= 1",
        "user.nope == \"x\"",
        "amount.deeper == 1",
        "items[5].sku != \"x\"",
        // Wrong kind at run time: false under every operator.
        "status == 1",
        "status != 1",
        "status > 1",
        "amount == \"150\"",
        "amount != \"150\"",
        "flag > off",
        "user < user",
        "user.tags > user.tags",
        "nothing > 1",
        "nope == null",
        "nope != null",
    ] {
        assert!(!t(src), "{src} should be false");
    }
}

#[test]
fn null() {
    assert!(t("nothing == null"));
    assert!(!t("nothing != null"));
    assert!(t("amount != null"));
    assert!(!t("amount == null"));
    assert!(t("user != null"));
    assert!(t("null == nothing"));
}

#[test]
fn logic() {
    assert!(t("true && true"));
    assert!(!t("true && false"));
    assert!(t("false || true"));
    assert!(!t("false || false"));
    assert!(t("!false"));
    assert!(t("!!true"));
    assert!(t("flag"));
    assert!(!t("off"));
    assert!(!t("nothing"));
    // A non-bool value used as a bool is false, so its negation is true.
    assert!(!t("status"));
    assert!(t("!status"));
    assert!(t("!nope"));
    assert!(t("amount > 100 && (status == \"ok\" || flag)"));
    assert!(!t("amount > 100 && status == \"ok\" || off"));
    // `&&` binds tighter than `||`.
    assert!(t("true || false && false"));
}

#[test]
fn string_functions() {
    assert!(t(r#"contains(user.country, "U")"#));
    assert!(!t(r#"contains(user.country, "X")"#));
    assert!(t(r#"contains(status, "")"#));
    assert!(t(r#"starts_with(status, "fail")"#));
    assert!(!t(r#"starts_with(status, "ok")"#));
    assert!(t(r#"ends_with(status, "led")"#));
    assert!(!t(r#"ends_with(status, "fail")"#));
    assert!(t(r#"contains("préfixé", "fix")"#));
    // Non-strings make them false, and their negation true.
    assert!(!t(r#"contains(amount, "1")"#));
    assert!(!t(r#"starts_with(nope, "")"#));
    assert!(!t(r#"ends_with("x", nope)"#));
    assert!(t(r#"!contains(user, "x")"#));
}

#[test]
fn aggregates() {
    assert_eq!(v("count(fail)"), json!(3));
    assert_eq!(v("count(empty)"), json!(0));
    // The non-numeric "n/a" is skipped.
    assert_eq!(v("sum(fail.amount)"), json!(40));
    assert_eq!(v("min(fail.amount)"), json!(10));
    assert_eq!(v("max(fail.amount)"), json!(30));
    assert_eq!(v("avg(fail.amount)"), json!(20));
    assert_eq!(v("sum(ok.amount)"), json!(-5));
    assert_eq!(v("sum(empty.amount)"), json!(0));
    assert_eq!(v("min(empty.amount)"), Value::Null);
    assert_eq!(v("max(empty.amount)"), Value::Null);
    assert_eq!(v("avg(empty.amount)"), Value::Null);
    assert_eq!(v("avg(fail.nope)"), Value::Null);
    assert_eq!(v("first(fail).user"), json!("ann"));
    assert_eq!(v("last(fail).user"), json!("bob"));
    assert_eq!(v("first(fail).ip"), json!("1.1.1.1"));
    assert_eq!(v("last(ok)"), json!({"amount": -5}));
    assert_eq!(v("first(empty).x"), Value::Null);
    assert_eq!(v("last(empty)"), Value::Null);
    assert!(t("count(fail) >= 3 && amount > 2 * avg(fail.amount)"));
    assert!(t(
        r#"first(fail).user == "ann" && last(fail).user != "ann""#
    ));
    assert!(t("first(fail).user != last(fail).user"));
    assert!(!t("first(empty).user == first(empty).user"));
    assert!(t(r#"contains(last(fail).ip, "2.2")"#));
}

#[test]
fn comparisons_read_matched_events_in_place() {
    assert!(t("first(fail).amount == 10"));
    assert!(t("last(fail).amount > first(fail).amount"));
    assert!(!t("last(fail).amount < first(fail).amount"));
    assert!(t("amount > last(fail).amount"));
    assert!(t("first(fail) == first(fail)"));
    assert!(t("first(fail) != last(fail)"));
    assert!(t("starts_with(first(fail).user, first(fail).user)"));
    assert!(t(r#"ends_with("xann", first(fail).user)"#));
    assert!(!t(r#"contains(first(empty).ip, "")"#));
    assert!(!t(r#"first(empty).user != "x""#));
    assert!(!t("last(fail).nothing == null"));
    assert!(!t("last(fail).amount == null"));
    assert!(t("last(fail).amount != null"));
}

#[test]
fn conditions_outside_a_match() {
    let e = Expr::compile("count(fail) == 0 && amount > 1", &["fail"]).unwrap();
    assert!(e.eval_bool(&event(), &NoMatch));
    assert!(!e.eval_bool(&json!({"amount": 0}), &NoMatch));
    assert!(!e.eval_bool(&json!("not an object"), &NoMatch));
    assert!(!e.eval_bool(&Value::Null, &NoMatch));
}

#[test]
fn check_as_condition() {
    let err = |src: &str| Expr::compile(src, STEPS).unwrap_err().to_string();
    assert_eq!(
        err("amount + 1"),
        "column 1: a condition must be a bool, found number"
    );
    assert_eq!(
        err(r#""yes""#),
        "column 1: a condition must be a bool, found string"
    );
    assert_eq!(
        err("null"),
        "column 1: a condition must be a bool, found null"
    );
    assert_eq!(
        err("amount > 1 && contians(a, \"b\")"),
        "column 15: unknown function 'contians' (did you mean 'contains'?)"
    );
    assert_eq!(
        err("sum(fial.x) > 1"),
        "column 1: unknown step 'fial' (did you mean 'fail'?)"
    );
    // A json value may be a bool at run time.
    assert!(Expr::compile("flag", STEPS).is_ok());
    assert!(Expr::compile("first(fail).flag", STEPS).is_ok());
}

#[test]
fn check_without_event() {
    let e = Expr::parse("count(fail) + last(fail).amount").unwrap();
    assert_eq!(e.check_without_event(STEPS), Ok(Type::Number));
    let e = Expr::parse("first(fail).user").unwrap();
    assert_eq!(e.check_without_event(STEPS), Ok(Type::Json));
    let e = Expr::parse("count(fail) + amount").unwrap();
    let err = e.check_without_event(STEPS).unwrap_err();
    assert_eq!(err.column, 15);
    assert_eq!(
        err.kind,
        ExprErrorKind::NoCurrentEvent {
            written: "amount".into(),
            suffix: ".amount".into()
        }
    );
}

#[test]
fn introspection() {
    let e = Expr::parse("count(a) > 1 && first(b).x == last(a).y || sum(c.z) > 0").unwrap();
    assert_eq!(e.steps(), vec!["a", "b", "a", "c"]);
    assert!(!e.reads_event());
    assert!(Expr::parse("-abs(x)").unwrap().reads_event());
    assert_eq!(
        e.source(),
        "count(a) > 1 && first(b).x == last(a).y || sum(c.z) > 0"
    );
    assert_eq!(Expr::parse(" a ").unwrap().to_string(), " a ");
}

/// Counts visits, to show `first`/`last`/aggregates read only their step.
struct Counting<'a>(&'a Fake, std::cell::Cell<usize>);

impl Matched<Value> for Counting<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        self.1.set(self.1.get() + 1);
        self.0.visit(step, f)
    }
}

#[test]
fn short_circuit_skips_the_match() {
    let m = matched();
    let c = Counting(&m, std::cell::Cell::new(0));
    let e = Expr::compile("false && count(fail) > 0", STEPS).unwrap();
    assert!(!e.eval_bool(&event(), &c));
    assert_eq!(c.1.get(), 0);
    let e = Expr::compile("true || count(fail) > 0", STEPS).unwrap();
    assert!(e.eval_bool(&event(), &c));
    assert_eq!(c.1.get(), 0);
    let e = Expr::compile("count(fail) > 0", STEPS).unwrap();
    assert!(e.eval_bool(&event(), &c));
    assert_eq!(c.1.get(), 1);
}
