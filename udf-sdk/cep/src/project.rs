//! Reading only the fields of a JSON event that a rule looks at.
//!
//! A rule reads a few fields (`kind`, `user.country`); parsing the whole
//! event into a JSON tree allocates every key and string of it, which was
//! the largest single cost per record. [`Fields`] names what the rule
//! reads, and [`Fields::parse`] builds a tree of just those, skipping the
//! rest in place while still checking that the whole text is JSON. The
//! values read go into numbered slots, not a JSON object: no map and no key
//! is allocated per event, nor a short string (most strings a rule
//! compares, like `kind`, are held inline in their slot). Most events
//! are read by a one-pass scanner (`project/scan.rs`); serde_json reads
//! the rest and gives the errors.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::expr::{lookup, Seg, Val};

mod scan;

pub(crate) use scan::Layout;

/// The fields of an event that are read: all of it, or a tree of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fields {
    All,
    Some { tree: Tree, slots: u16 },
}

/// Object keys that are read: a key kept whole (in its slot), or the keys
/// read inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    slot: Option<u16>,
    children: Vec<(Box<str>, Tree)>,
    /// Per child, its key as the scanner compares a short one (see
    /// `scan::key_word`).
    words: Vec<u64>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields::Some {
            tree: Tree::default(),
            slots: 0,
        }
    }
}

/// What was read of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The whole event ([`Fields::All`]).
    Whole(Value),
    /// The value of each slot, `None` where the event has none: inline
    /// for a rule reading at most [`FEW`] paths (most do), so reading an
    /// event allocates no list.
    Few([Option<SlotValue>; FEW]),
    Slots(Box<[Option<SlotValue>]>),
}

/// Strings up to this long are held inline in their slot.
const SHORT: usize = 22;

/// A value read into a slot: a short string inline, anything else as the
/// JSON value it is.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotValue {
    Short { len: u8, bytes: [u8; SHORT] },
    Json(Value),
}

impl SlotValue {
    pub(crate) fn string(s: &str) -> SlotValue {
        if s.len() > SHORT {
            return SlotValue::Json(Value::String(s.to_owned()));
        }
        SlotValue::short(s.as_bytes())
    }

    /// A string of at most [`SHORT`] bytes, known to be UTF-8, held inline.
    fn short(s: &[u8]) -> SlotValue {
        debug_assert!(s.len() <= SHORT && std::str::from_utf8(s).is_ok());
        let len = s.len().min(SHORT);
        let mut bytes = [0; SHORT];
        bytes[..len].copy_from_slice(&s[..len]);
        SlotValue::Short {
            len: len as u8,
            bytes,
        }
    }

    /// A short string of ASCII bytes held in a word (first byte lowest,
    /// zero past `len`, at most 8), as the scanner reads one: no copy of a
    /// length known only at run time, which under WASM is a call out.
    pub(crate) fn short_word(word: u64, len: usize) -> SlotValue {
        debug_assert!(len <= 8 && (len == 8 || word >> (8 * len) == 0));
        let mut bytes = [0; SHORT];
        if let Some(head) = bytes.first_chunk_mut::<8>() {
            *head = word.to_le_bytes();
        }
        SlotValue::Short {
            len: len.min(8) as u8,
            bytes,
        }
    }

    /// A short string as three words, equal exactly when the strings are
    /// (bytes past a short string's length are zero, and the length is in
    /// the last word): compared without a call to `memcmp`.
    pub(crate) fn short_words(&self) -> Option<[u64; 3]> {
        let SlotValue::Short { len, bytes } = self else {
            return None;
        };
        let word = |at: usize| {
            let mut w = [0; 8];
            if let Some(src) = bytes.get(at..).and_then(|b| b.first_chunk::<8>()) {
                w = *src;
            }
            u64::from_le_bytes(w)
        };
        // Bytes 16..22, then the length in the top byte.
        let mut last = [0; 8];
        if let Some(src) = bytes.get(16..).and_then(|b| b.first_chunk::<6>()) {
            last[..6].copy_from_slice(src);
        }
        last[7] = *len;
        Some([word(0), word(8), u64::from_le_bytes(last)])
    }

    /// The value at `path` inside this one.
    pub(crate) fn get(&self, path: &[Seg]) -> Option<Got<'_>> {
        match self {
            SlotValue::Json(v) => lookup(v, path).map(Got::Json),
            // A string has no keys nor elements.
            SlotValue::Short { .. } if !path.is_empty() => None,
            SlotValue::Short { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(Got::Str),
        }
    }
}

/// Slots held inline in a read event.
pub const FEW: usize = 2;

impl Read {
    /// The value at `path` inside what slot `slot` holds.
    pub(crate) fn in_slot(&self, slot: u16, path: &[Seg]) -> Option<Got<'_>> {
        self.slots().get(usize::from(slot))?.as_ref()?.get(path)
    }

    fn slots(&self) -> &[Option<SlotValue>] {
        match self {
            Read::Whole(_) => &[],
            Read::Few(s) => s,
            Read::Slots(s) => s,
        }
    }
}

impl Fields {
    /// Adds a path of object keys; an empty one means the whole event.
    pub fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>) {
        let Fields::Some { tree, slots } = self else {
            return;
        };
        let mut node = &mut *tree;
        let mut depth = 0;
        for key in keys {
            if node.slot.is_some() {
                return;
            }
            let at = match node.children.iter().position(|(k, _)| &**k == key) {
                Some(i) => i,
                None => {
                    node.children.push((key.into(), Tree::default()));
                    node.words.push(scan::key_word(key.as_bytes()));
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
        if node.slot.is_none() {
            // Slots of keys inside it go unused: it is read whole.
            node.slot = Some(*slots);
            *slots = slots.saturating_add(1);
            node.children.clear();
            node.words.clear();
        }
    }

    /// The fields read of the JSON text `raw` (which must be JSON as a
    /// whole).
    pub fn parse(&self, raw: &[u8]) -> Result<Read, serde_json::Error> {
        self.parse_with(raw, &mut Layout::default())
    }

    /// [`Fields::parse`] by a caller that reads a stream of events, with
    /// what the events before looked like (see [`Layout`]).
    pub(crate) fn parse_with(
        &self,
        raw: &[u8],
        layout: &mut Layout,
    ) -> Result<Read, serde_json::Error> {
        let mut read = Read::Few(Default::default());
        self.parse_into(raw, &mut read, layout)?;
        Ok(read)
    }

    /// [`Fields::parse`] into `read`, reusing its slots when they are the
    /// ones these fields fill (an event read into again). On an error,
    /// what `read` holds is unspecified.
    pub(crate) fn parse_into(
        &self,
        raw: &[u8],
        read: &mut Read,
        layout: &mut Layout,
    ) -> Result<(), serde_json::Error> {
        let (tree, n) = match self {
            Fields::All => {
                *read = Read::Whole(serde_json::from_slice(raw)?);
                return Ok(());
            }
            Fields::Some { tree, slots } => (tree, usize::from(*slots)),
        };
        let fits = match read {
            Read::Few(_) => n <= FEW,
            Read::Slots(s) => n > FEW && s.len() == n,
            Read::Whole(_) => false,
        };
        if !fits {
            *read = if n <= FEW {
                Read::Few(Default::default())
            } else {
                Read::Slots(vec![None; n].into_boxed_slice())
            };
        }
        let out = match read {
            Read::Few(s) => &mut s[..],
            Read::Slots(s) => &mut s[..],
            Read::Whole(_) => &mut [],
        };
        // Only what holds a value is emptied (most slots hold a short
        // string, with nothing to drop).
        for slot in out.iter_mut().filter(|s| s.is_some()) {
            *slot = None;
        }
        if scan::scan(tree, raw, out, layout).is_none() {
            // Not sure: serde_json decides, and says why not.
            out.fill(None);
            let mut de = serde_json::Deserializer::from_slice(raw);
            Select { tree, out }.deserialize(&mut de)?;
            de.end()?;
        }
        Ok(())
    }

    /// The value at `path` in what `read` holds: as a lookup in the whole
    /// event would find it, for every path the rule reads.
    pub(crate) fn val<'v>(&self, read: &'v Read, path: &[Seg]) -> Val<'v> {
        match self.get(read, path) {
            None => Val::Missing,
            Some(Got::Str(s)) => Val::Str(Cow::Borrowed(s)),
            Some(Got::Json(v)) => Val::of(Some(v)),
        }
    }

    /// The slot that holds the value at `path` (keys only), and how many
    /// of the keys lead to it: the rest are read inside its value.
    pub(crate) fn slot_along(&self, path: &[Seg]) -> Option<(u16, usize)> {
        let Fields::Some { tree, .. } = self else {
            return None;
        };
        let mut node = tree;
        for (i, seg) in path.iter().enumerate() {
            if let Some(slot) = node.slot {
                return Some((slot, i));
            }
            let Seg::Key(key) = seg else {
                return None;
            };
            node = &node.children.iter().find(|(k, _)| k == key)?.1;
        }
        node.slot.map(|slot| (slot, path.len()))
    }

    /// The value at `path` in what `read` holds, `None` where the event
    /// has none or the path is not read.
    pub(crate) fn get<'v>(&self, read: &'v Read, path: &[Seg]) -> Option<Got<'v>> {
        if let Read::Whole(v) = read {
            return lookup(v, path).map(Got::Json);
        }
        let (slot, rest) = self.slot_along(path)?;
        read.in_slot(slot, path.get(rest..)?)
    }
}

/// A value read of an event: a short string from its slot, or JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Got<'v> {
    Str(&'v str),
    Json(&'v Value),
}

impl Tree {
    /// Empties the slots under this node: a key seen again replaces what
    /// was read of it, as in a JSON object.
    fn clear(&self, out: &mut [Option<SlotValue>]) {
        if let Some(s) = self.slot.and_then(|s| out.get_mut(usize::from(s))) {
            *s = None;
        }
        for (_, child) in &self.children {
            child.clear(out);
        }
    }
}

/// Reads what `tree` reads of a value into `out`.
struct Select<'a, 'o> {
    tree: &'a Tree,
    out: &'o mut [Option<SlotValue>],
}

impl<'de> DeserializeSeed<'de> for Select<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.tree.slot {
            Some(slot) => {
                let v = d.deserialize_any(SlotSeed)?;
                if let Some(s) = self.out.get_mut(usize::from(slot)) {
                    *s = Some(v);
                }
                Ok(())
            }
            None => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Select<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(at) = map.next_key_seed(KeyIndex(self.tree))? {
            match at {
                Some(i) => {
                    let tree = &self.tree.children[i].1;
                    tree.clear(self.out);
                    map.next_value_seed(Select {
                        tree,
                        out: &mut *self.out,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    // Not an object: no key can be read in it, but it must still be read.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Reads a value into a slot: a short string without allocating it,
/// anything else as [`Value`]'s own `Deserialize` builds it.
struct SlotSeed;

impl<'de> Visitor<'de> for SlotSeed {
    type Value = SlotValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<SlotValue, E> {
        Ok(SlotValue::string(s))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<SlotValue, E> {
        Ok(match s.len() {
            n if n <= SHORT => SlotValue::string(&s),
            _ => SlotValue::Json(Value::String(s)),
        })
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(Value::Bool(b)))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(Value::Number(n.into())))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(Value::Number(n.into())))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<SlotValue, E> {
        Ok(SlotValue::Json(Value::Null))
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<SlotValue, D::Error> {
        Value::deserialize(d).map(SlotValue::Json)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SlotValue, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(SlotValue::Json)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SlotValue, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(SlotValue::Json)
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
    use super::{Fields, Got, Read};
    use crate::expr::{lookup, Seg, Val};
    use serde_json::{json, Value};

    pub(super) fn fields(paths: &[&[&str]]) -> Fields {
        let mut f = Fields::default();
        for p in paths {
            f.add(p.iter().copied());
        }
        f
    }

    fn path(p: &[&str]) -> Vec<Seg> {
        p.iter()
            .map(|s| match s.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key((*s).into()),
            })
            .collect()
    }

    /// Every path read finds what it finds in the whole event.
    #[track_caller]
    fn reads_as_whole(f: &Fields, raw: &[u8], paths: &[&[&str]]) {
        let whole: Value = serde_json::from_slice(raw).unwrap();
        let read = f.parse(raw).unwrap();
        for p in paths {
            let p = path(p);
            assert_eq!(f.val(&read, &p), Val::of(lookup(&whole, &p)), "{p:?}");
        }
    }

    #[test]
    fn keeps_only_the_paths_read() {
        let read: &[&[&str]] = &[&["kind"], &["user", "country"], &["items"]];
        let f = fields(read);
        let raw = br#"{"kind":"a","amount":3,"user":{"country":"US","id":[1,{"x":2}]},"items":[{"sku":1}],"z":null}"#;
        reads_as_whole(&f, raw, read);
        reads_as_whole(&f, raw, &[&["items", "0", "sku"], &["items", "1"]]);
        let two = fields(&[&["kind"], &["amount"]]);
        assert!(matches!(two.parse(raw).unwrap(), Read::Few(_)));
        reads_as_whole(&two, raw, &[&["kind"], &["amount"]]);
        let Read::Slots(slots) = f.parse(raw).unwrap() else {
            panic!("three paths: a list")
        };
        let vals: Vec<Option<Got<'_>>> = slots.iter().flatten().map(|s| s.get(&[])).collect();
        let items = json!([{"sku": 1}]);
        let want = [
            Some(Got::Str("a")),
            Some(Got::Str("US")),
            Some(Got::Json(&items)),
        ];
        assert_eq!(vals, want);
        // A key kept whole swallows the paths inside it, in either order.
        let f = fields(&[&["user", "id"], &["user"]]);
        reads_as_whole(&f, raw, &[&["user"], &["user", "id"], &["user", "country"]]);
        let g = fields(&[&["user"], &["user", "id"]]);
        reads_as_whole(&g, raw, &[&["user"], &["user", "id", "1", "x"]]);
    }

    #[test]
    fn the_whole_event_is_read_as_is() {
        let f = fields(&[&["kind"], &[]]);
        assert_eq!(f, Fields::All);
        assert_eq!(f.parse(b"[1, 2]").unwrap(), Read::Whole(json!([1, 2])));
    }

    #[test]
    fn what_is_not_an_object_reads_nothing_and_bad_json_is_an_error() {
        let read: &[&[&str]] = &[&["user", "country"], &["kind"]];
        let f = fields(read);
        for raw in [
            &br#"{"user":"x"}"#[..],
            b"7",
            b"[1]",
            br#"{"a\u0062":[true, false, {}], "kind": null}"#,
            // A key seen twice: the last one counts, whatever it holds.
            br#"{"user":{"country":"US"},"user":{"id":1},"kind":"a","kind":"b"}"#,
            br#"{"user":{"country":"US"},"user":3}"#,
        ] {
            reads_as_whole(&f, raw, read);
        }
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"", b"{\"kind\":tru}"] {
            assert!(f.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn escaped_keys_are_found() {
        let f = fields(&[&["kind"]]);
        reads_as_whole(&f, br#"{"k\u0069nd":"a"}"#, &[&["kind"]]);
    }
}
