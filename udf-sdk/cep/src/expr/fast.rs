//! Conditions that only compare fields of the current event with literals
//! (`kind == "a"`, `amount > 100 && country != "US"`), bound to the slots
//! a rule's events are read into: tested on the slots directly, with no
//! walk of the field tree and no [`Val`](super::Val) built per test. Most
//! steps' conditions are of this form, and a record tests one or two of
//! them.
//!
//! A bound condition answers exactly what [`truth`](super::eval::truth)
//! answers for the same expression (see the tests): it is only made where
//! each field reads one whole slot, and its comparisons follow
//! [`compare`](super::eval::compare) case by case.

use serde_json::Value;

use super::ast::{Cmp, Kind, Node, Seg};
use crate::project::{Fields, SlotValue};

/// A condition over the slots of an event read for one [`Fields`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fast {
    /// `field <op> literal`, the field on the left (a literal on the left
    /// is turned around).
    Cmp {
        op: Cmp,
        slot: u16,
        lit: Lit,
    },
    /// `field == "text"` or `!=`, the text short enough for a slot to
    /// hold inline: the usual condition (`kind == "a"`), tested first and
    /// on a short string by its words alone. `words` is the literal's
    /// [`SlotValue::short_words`]; any other value is compared as `Cmp`
    /// compares it.
    ShortStr {
        eq: bool,
        slot: u16,
        words: [u64; 3],
        lit: Lit,
    },
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Not(Box<Fast>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(Box<str>),
    Num(f64),
}

/// `a <op> b` is `b <flip(op)> a`.
fn flip(op: Cmp) -> Cmp {
    match op {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        same => same,
    }
}

impl Fast {
    /// `node` as a condition on `fields`' slots, if it is one of the
    /// forms above.
    pub(crate) fn bind(node: &Node, fields: &Fields) -> Option<Fast> {
        Some(match &node.kind {
            Kind::And(a, b) => Fast::And(
                Box::new(Fast::bind(a, fields)?),
                Box::new(Fast::bind(b, fields)?),
            ),
            Kind::Or(a, b) => Fast::Or(
                Box::new(Fast::bind(a, fields)?),
                Box::new(Fast::bind(b, fields)?),
            ),
            Kind::Not(a) => Fast::Not(Box::new(Fast::bind(a, fields)?)),
            Kind::Cmp(op, a, b) => match (&a.kind, &b.kind) {
                (Kind::Field(path), lit) => cmp(*op, slot(fields, path)?, literal(lit)?),
                (lit, Kind::Field(path)) => cmp(flip(*op), slot(fields, path)?, literal(lit)?),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The condition's verdict on an event whose slots are `slots`.
    ///
    /// A short string's equality is tested in the caller, the rest in a
    /// call ([`Fast::test_any`]).
    #[inline(always)]
    pub(crate) fn test(&self, slots: &[Option<SlotValue>]) -> bool {
        if let Fast::ShortStr {
            eq, slot, words, ..
        } = self
        {
            if let Some(Some(v @ SlotValue::Short { bytes, .. })) = slots.get(usize::from(*slot)) {
                // Most tests fail on the first word.
                let same = first_word(bytes) == words[0] && v.short_words() == Some(*words);
                return same == *eq;
            }
        }
        self.test_any(slots)
    }

    fn test_any(&self, slots: &[Option<SlotValue>]) -> bool {
        match self {
            Fast::ShortStr { eq, slot, lit, .. } => match slots.get(usize::from(*slot)) {
                Some(Some(v)) => compare(if *eq { Cmp::Eq } else { Cmp::Ne }, v, lit),
                // Absent: every comparison is false.
                _ => false,
            },
            Fast::Cmp { op, slot, lit } => {
                let Some(Some(v)) = slots.get(usize::from(*slot)) else {
                    // Absent: every comparison is false.
                    return false;
                };
                compare(*op, v, lit)
            }
            Fast::And(a, b) => a.test(slots) && b.test(slots),
            Fast::Or(a, b) => a.test(slots) || b.test(slots),
            Fast::Not(a) => !a.test(slots),
        }
    }
}

/// `slot <op> lit` as a [`Fast`]: [`Fast::ShortStr`] where it can be.
fn cmp(op: Cmp, slot: u16, lit: Lit) -> Fast {
    if let (Cmp::Eq | Cmp::Ne, Lit::Str(s)) = (op, &lit) {
        if let Some(words) = SlotValue::string(s).short_words() {
            return Fast::ShortStr {
                eq: op == Cmp::Eq,
                slot,
                words,
                lit,
            };
        }
    }
    Fast::Cmp { op, slot, lit }
}

/// The first eight bytes of a short string.
#[inline]
fn first_word(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |w| u64::from_le_bytes(*w))
}

/// The slot that holds exactly `path` (none when the path goes inside a
/// value read whole, or indexes an array).
fn slot(fields: &Fields, path: &[Seg]) -> Option<u16> {
    let (slot, along) = fields.slot_along(path)?;
    (along == path.len()).then_some(slot)
}

fn literal(kind: &Kind) -> Option<Lit> {
    match kind {
        Kind::Str(s) => Some(Lit::Str(s.clone())),
        Kind::Num(n) => Some(Lit::Num(*n)),
        _ => None,
    }
}

/// [`compare`](super::eval::compare) of a present value with a string or
/// number literal: `null` is only unequal, other kinds never compare.
fn compare(op: Cmp, v: &SlotValue, lit: &Lit) -> bool {
    let ord = match (v, lit) {
        (SlotValue::Json(Value::Null), _) => return op == Cmp::Ne,
        // UTF-8 orders bytewise as its code points do, as `str` does.
        (SlotValue::Short { len, bytes }, Lit::Str(s)) => match bytes.get(..usize::from(*len)) {
            Some(b) => b.cmp(s.as_bytes()),
            None => return false,
        },
        (SlotValue::Json(Value::String(x)), Lit::Str(s)) => x.as_bytes().cmp(s.as_bytes()),
        (SlotValue::Json(Value::Number(n)), Lit::Num(y)) => match n.as_f64() {
            Some(x) => match x.partial_cmp(y) {
                Some(o) => o,
                None => return false,
            },
            None => return false,
        },
        _ => return false,
    };
    op.holds(ord)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::Fast;
    use crate::event::JsonEvent;
    use crate::expr::{EventFields, Expr};
    use crate::project::Fields;
    use crate::NoMatch;

    /// Every bindable expression answers as the general evaluation does,
    /// over events with each kind of value in each field read.
    #[test]
    fn agrees_with_the_general_evaluation() {
        let exprs = [
            r#"kind == "a""#,
            r#"kind != "a""#,
            r#""a" == kind"#,
            r#"kind < "b""#,
            r#"kind >= "b""#,
            r#""b" > kind"#,
            "amount > 100",
            "amount <= 100",
            "100 < amount",
            "amount == 100",
            "amount != 100",
            r#"kind == "a" && amount > 3"#,
            r#"kind == "a" || !(amount > 3)"#,
            r#"!(kind == "é")"#,
            r#"user.country == "US""#,
            r#"user.country != "US" && kind == "b""#,
        ];
        let values = [
            json!("a"),
            json!("b"),
            json!("é"),
            json!(""),
            json!("a string longer than twenty-two bytes"),
            json!(100),
            json!(100.0),
            json!(-3),
            json!(1e300),
            json!(7.5),
            json!(null),
            json!(true),
            json!([1]),
            json!({"country": "US"}),
        ];
        let mut events = vec![json!({})];
        for v in &values {
            for w in &values {
                events.push(json!({"kind": v, "amount": w, "user": {"country": v}}));
                events.push(json!({"kind": v, "user": w}));
            }
        }
        for src in exprs {
            let expr = Expr::compile(src, &[]).unwrap();
            let mut fields = Fields::default();
            expr.add_fields(&mut fields);
            let fields = Arc::new(fields);
            let fast = expr.bind(&fields).unwrap_or_else(|| panic!("{src} binds"));
            for e in &events {
                let raw = serde_json::to_vec(e).unwrap();
                let event = Arc::new(JsonEvent::parse(&raw, &fields).unwrap());
                let slots = event.slots_of(&fields).unwrap();
                assert_eq!(
                    fast.test(slots),
                    expr.eval_bool(e, &NoMatch),
                    "{src} on {e}"
                );
            }
        }
    }

    #[test]
    fn only_comparisons_of_whole_slots_with_literals_bind() {
        for src in [
            "amount > 2 * 3",
            "user.tags[0] == \"a\"",
            "contains(kind, \"a\")",
            "kind == other",
            "flag == true",
            "kind == null",
            "count(a) > 1",
            "event == \"x\"",
        ] {
            let expr = Expr::compile(src, &["a"]).unwrap();
            let mut fields = Fields::default();
            expr.add_fields(&mut fields);
            assert_eq!(expr.bind(&fields), None::<Fast>, "{src}");
        }
        // A path inside a value read whole (another condition reads `user`).
        let inner = Expr::compile("user.country == \"US\"", &[]).unwrap();
        let mut fields = Fields::default();
        fields.add(["user"]);
        inner.add_fields(&mut fields);
        assert_eq!(inner.bind(&fields), None);
    }
}
