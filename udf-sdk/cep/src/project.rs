//! Reading only the fields of a JSON event that a rule looks at.
//!
//! A rule reads a few fields (`kind`, `user.country`); parsing the whole
//! event into a JSON tree allocates every key and string of it, which was
//! the largest single cost per record. [`Fields`] names what the rule
//! reads, and [`Fields::parse`] builds a tree of just those, skipping the
//! rest in place while still checking that the whole text is JSON.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The fields of an event that are read: all of it, or a tree of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    All,
    Some(Tree),
}

/// Object keys that are read: a key kept whole, or the keys read inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    whole: bool,
    children: Vec<(Box<str>, Tree)>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields::Some(Tree::default())
    }
}

impl Fields {
    /// Adds a path of object keys; an empty one means the whole event.
    pub fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>) {
        let Fields::Some(root) = self else { return };
        let mut node = &mut *root;
        let mut depth = 0;
        for key in keys {
            if node.whole {
                return;
            }
            let at = match node.children.iter().position(|(k, _)| &**k == key) {
                Some(i) => i,
                None => {
                    node.children.push((key.into(), Tree::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
            depth += 1;
        }
        if depth == 0 {
            *self = Fields::All;
            return;
        }
        node.whole = true;
        node.children.clear();
    }

    /// The fields read of the JSON text `raw` (which must be JSON as a
    /// whole). Under [`Fields::Some`], an event that is not an object
    /// reads as `null`: no key path finds anything in it either way.
    pub fn parse(&self, raw: &[u8]) -> Result<Value, serde_json::Error> {
        match self {
            Fields::All => serde_json::from_slice(raw),
            Fields::Some(tree) => {
                let mut de = serde_json::Deserializer::from_slice(raw);
                let v = Select(tree).deserialize(&mut de)?;
                de.end()?;
                Ok(v.unwrap_or(Value::Null))
            }
        }
    }
}

/// Deserializes what `tree` reads of a value: `None` when that is nothing.
struct Select<'a>(&'a Tree);

impl<'de> DeserializeSeed<'de> for Select<'_> {
    type Value = Option<Value>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.0.whole {
            Value::deserialize(d).map(Some)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Select<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut out = Map::new();
        while let Some(at) = map.next_key_seed(KeyIndex(self.0))? {
            match at {
                Some(i) => {
                    let (name, tree) = &self.0.children[i];
                    if let Some(v) = map.next_value_seed(Select(tree))? {
                        out.insert(name.to_string(), v);
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(Value::Object(out)))
    }

    // Not an object: no key can be read in it, but it must still be read.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

/// Reads an object key as the index of the child that reads it, if any,
/// without allocating it.
struct KeyIndex<'a>(&'a Tree);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.children.iter().position(|(k, _)| &**k == key))
    }
}

#[cfg(test)]
mod tests {
    use super::Fields;
    use serde_json::json;

    fn fields(paths: &[&[&str]]) -> Fields {
        let mut f = Fields::default();
        for p in paths {
            f.add(p.iter().copied());
        }
        f
    }

    #[test]
    fn keeps_only_the_paths_read() {
        let f = fields(&[&["kind"], &["user", "country"]]);
        let raw = br#"{"kind":"a","amount":3,"user":{"country":"US","id":[1,{"x":2}]},"z":null}"#;
        assert_eq!(
            f.parse(raw).unwrap(),
            json!({"kind": "a", "user": {"country": "US"}})
        );
        // A key kept whole swallows the paths inside it, in either order.
        let f = fields(&[&["user", "id"], &["user"]]);
        assert_eq!(
            f.parse(raw).unwrap(),
            json!({"user": {"country": "US", "id": [1, {"x": 2}]}})
        );
        assert_eq!(fields(&[&["user"], &["user", "id"]]), f);
    }

    #[test]
    fn the_whole_event_is_read_as_is() {
        let f = fields(&[&["kind"], &[]]);
        assert_eq!(f, Fields::All);
        assert_eq!(f.parse(b"[1, 2]").unwrap(), json!([1, 2]));
    }

    #[test]
    fn what_is_not_an_object_reads_nothing_and_bad_json_is_an_error() {
        let f = fields(&[&["user", "country"]]);
        assert_eq!(f.parse(br#"{"user":"x"}"#).unwrap(), json!({}));
        assert_eq!(f.parse(b"7").unwrap(), json!(null));
        assert_eq!(
            f.parse(br#"{"a\u0062":[true, false, {}]}"#).unwrap(),
            json!({})
        );
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"", b"{\"kind\":tru}"] {
            assert!(f.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn escaped_keys_are_found() {
        let f = fields(&[&["kind"]]);
        assert_eq!(
            f.parse(br#"{"k\u0069nd":"a"}"#).unwrap(),
            json!({"kind": "a"})
        );
    }
}
