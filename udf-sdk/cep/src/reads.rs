//! What a rule written in Rust reads of its JSON events, named before its
//! conditions are built: the runner then reads only those fields of each
//! event, with the same one-pass scanner as a YAML rule, where a rule over
//! whole `serde_json::Value`s parses and allocates all of every event.
//!
//! ```
//! use weir_cep::{Pattern, Reads, SharedEvent};
//!
//! let mut reads = Reads::new();
//! let kind = reads.field("kind").unwrap();
//! let pattern: Pattern<SharedEvent> = Pattern::begin("a")
//!     .where_event(move |e: &SharedEvent| e.str(&kind) == Some("a"));
//! ```

use std::sync::{Arc, OnceLock};

use crate::expr::Seg;
use crate::project::Fields;

/// The fields of its events a rule's conditions read, each named once with
/// [`Reads::field`]; hand it to
/// [`RuleRunner::from_json_pattern`](crate::runner::RuleRunner::from_json_pattern).
#[derive(Debug, Clone, Default)]
pub struct Reads {
    fields: Fields,
    /// Where each field named is found, settled when the fields are.
    named: Vec<Field>,
}

/// A field named in a [`Reads`], read of an event with
/// [`JsonEvent::str`](crate::event::JsonEvent::str) and its siblings. An
/// event read for other fields (another `Reads`) is searched by the
/// field's keys: absent unless those fields read it too.
#[derive(Debug, Clone)]
pub struct Field {
    path: Arc<[Seg]>,
    found: Arc<OnceLock<Found>>,
}

/// Where a field is in events read for `fields`: in slot `slot`, at the
/// keys of its path from `rest` on. Events read for these fields (the
/// same allocation, held here so it is never another's) find it there
/// without walking the tree of keys by name.
#[derive(Debug)]
pub(crate) struct Found {
    pub fields: Arc<Fields>,
    pub slot: u16,
    pub rest: usize,
}

/// A field path that names no field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {path:?}: {problem}")]
pub struct BadField {
    pub path: String,
    pub problem: &'static str,
}

impl Reads {
    pub fn new() -> Self {
        Self::default()
    }

    /// The field at `path`: object keys separated by dots (`user.country`).
    /// A key with a dot in it is named with [`Reads::field_keys`].
    pub fn field(&mut self, path: &str) -> Result<Field, BadField> {
        if path.split('.').any(str::is_empty) {
            return Err(BadField {
                path: path.to_owned(),
                problem: "a key between dots is empty (use field_keys for an empty key)",
            });
        }
        self.field_keys(path.split('.'))
    }

    /// The field at a path of object keys, each taken as it is.
    pub fn field_keys<'a>(
        &mut self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<Field, BadField> {
        let keys: Vec<&str> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(BadField {
                path: String::new(),
                problem: "no key: a field is inside the event, not the whole of it",
            });
        }
        self.fields.add(keys.iter().copied());
        let field = Field {
            path: keys.iter().map(|k| Seg::Key((*k).into())).collect(),
            found: Arc::default(),
        };
        self.named.push(field.clone());
        Ok(field)
    }

    /// The fields to read events for; each field named finds its slot.
    pub(crate) fn into_fields(self) -> Arc<Fields> {
        let fields = Arc::new(self.fields);
        for field in self.named {
            if let Some((slot, rest)) = fields.slot_along(&field.path) {
                // Set once: these reads are consumed here.
                let _ = field.found.set(Found {
                    fields: Arc::clone(&fields),
                    slot,
                    rest,
                });
            }
        }
        fields
    }
}

impl Field {
    pub(crate) fn path(&self) -> &[Seg] {
        &self.path
    }

    pub(crate) fn found(&self) -> Option<&Found> {
        self.found.get()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Reads;
    use crate::event::JsonEvent;

    #[test]
    fn fields_read_as_the_event_holds_them() {
        let mut reads = Reads::new();
        let kind = reads.field("kind").unwrap();
        let amount = reads.field("amount").unwrap();
        let price = reads.field("price").unwrap();
        let ok = reads.field("ok").unwrap();
        let country = reads.field("user.country").unwrap();
        let dotted = reads.field_keys(["a.b"]).unwrap();
        let items = reads.field("items").unwrap();
        let long = reads.field("long").unwrap();
        let fields = reads.clone().into_fields();
        let raw = br#"{"kind":"a","amount":-12,"price":2.5,"ok":true,"user":{"country":"FR"},"a.b":7,"items":[1,2],"long":"a string longer than an inline slot"}"#;
        let e = JsonEvent::parse(raw, &fields).unwrap();
        assert_eq!(e.str(&kind), Some("a"));
        assert_eq!(e.i64(&amount), Some(-12));
        assert_eq!(e.f64(&amount), Some(-12.0));
        assert_eq!(e.f64(&price), Some(2.5));
        assert_eq!(e.i64(&price), None, "not an integer");
        assert_eq!(e.bool(&ok), Some(true));
        assert_eq!(e.str(&country), Some("FR"));
        assert_eq!(e.i64(&dotted), Some(7));
        assert_eq!(e.json(&items).as_deref(), Some(&json!([1, 2])));
        assert_eq!(e.str(&long), Some("a string longer than an inline slot"));
        assert_eq!(e.json(&kind).as_deref(), Some(&json!("a")));
        // Of the wrong type, absent, or not named in these reads: `None`.
        assert_eq!(e.i64(&kind), None);
        assert_eq!(e.str(&amount), None);
        let other = Reads::new().field("amount").unwrap();
        let mut narrow = Reads::new();
        let only_kind = narrow.field("kind").unwrap();
        let narrow = narrow.into_fields();
        let n = JsonEvent::parse(raw, &narrow).unwrap();
        assert_eq!(n.str(&only_kind), Some("a"));
        assert_eq!(n.i64(&other), None, "amount is not read for these reads");
        let missing = JsonEvent::parse(br#"{"user":"bob"}"#, &fields).unwrap();
        assert_eq!(missing.str(&kind), None);
        assert_eq!(missing.str(&country), None, "user is not an object");
        // A field inside another read whole is found inside its value.
        let mut nested = Reads::new();
        let country_in = nested.field("user.country").unwrap();
        let user = nested.field("user").unwrap();
        let nested = nested.into_fields();
        let e = JsonEvent::parse(raw, &nested).unwrap();
        assert_eq!(e.str(&country_in), Some("FR"));
        assert_eq!(e.json(&user).as_deref(), Some(&json!({"country": "FR"})));
        // An event read whole answers every field.
        let whole = JsonEvent::from_value(serde_json::from_slice(raw).unwrap());
        assert_eq!(whole.str(&country), Some("FR"));
        assert_eq!(whole.i64(&other), Some(-12));
    }

    #[test]
    fn a_path_that_names_no_field_is_refused() {
        let mut reads = Reads::new();
        for bad in ["", ".", "a.", ".a", "a..b"] {
            let err = reads.field(bad).unwrap_err();
            assert!(err.to_string().contains("empty"), "{bad:?}: {err}");
        }
        let err = reads.field_keys([]).unwrap_err();
        assert!(err.to_string().contains("no key"), "{err}");
        // An empty key is a key JSON allows, named as such.
        let empty = reads.field_keys([""]).unwrap();
        let fields = reads.into_fields();
        let e = JsonEvent::parse(br#"{"":"x"}"#, &fields).unwrap();
        assert_eq!(e.str(&empty), Some("x"));
    }
}
