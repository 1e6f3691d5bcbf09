//! A JSON event as a rule runner holds it: its text exactly as it came in,
//! plus the fields the rule reads (see [`crate::project`]).
//!
//! Match records copy the text, never a parsed tree, so they carry each
//! event byte for byte; conditions read the few values. Shared (`Arc`): a
//! match takes events by reference count, not by copy.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::checkpoint::EventCodec;
use crate::condition::Condition;
use crate::expr::{EventFields, Seg, Val};
use crate::matched::Matched;
use crate::project::{Fields, Got, Layout, Read, SlotValue};
use crate::reads::Field;
use crate::small_bytes::SmallBytes;

/// An event's JSON text and the fields of it a rule reads.
#[derive(Debug)]
pub struct JsonEvent {
    raw: SmallBytes<RAW_INLINE>,
    read: Read,
    /// What `read` holds, to find a path in it.
    fields: Arc<Fields>,
}

/// Event texts up to this long share the event's allocation.
const RAW_INLINE: usize = 96;

/// What a rule runner's engine holds per event.
pub type SharedEvent = Arc<JsonEvent>;

impl JsonEvent {
    /// `raw` read for `fields`, or why it is not JSON.
    pub fn parse(raw: &[u8], fields: &Arc<Fields>) -> Result<Self, serde_json::Error> {
        Self::parse_with(raw, fields, &mut Layout::default())
    }

    /// [`JsonEvent::parse`] of one event of a stream, with what the events
    /// before looked like.
    pub(crate) fn parse_with(
        raw: &[u8],
        fields: &Arc<Fields>,
        layout: &mut Layout,
    ) -> Result<Self, serde_json::Error> {
        Ok(JsonEvent {
            read: fields.parse_with(raw, layout)?,
            raw: SmallBytes::from(raw),
            fields: Arc::clone(fields),
        })
    }

    /// Reads `raw` into this event in place, for the fields it was read
    /// for: an event no partial match kept is reused, not freed and
    /// allocated again, and its parts are overwritten where they are (in
    /// WASM a moved struct is a `memory.copy` call). On an error what it
    /// holds is unspecified: only a caller holding the sole reference
    /// reads into an event.
    pub(crate) fn reparse(
        &mut self,
        raw: &[u8],
        layout: &mut Layout,
    ) -> Result<(), serde_json::Error> {
        self.fields.parse_into(raw, &mut self.read, layout)?;
        self.raw.set(raw);
        Ok(())
    }

    /// An event given as a value, read whole: its compact text is its text.
    pub fn from_value(value: Value) -> Self {
        JsonEvent {
            raw: SmallBytes::from(&serde_json::to_vec(&value).unwrap_or_default()[..]),
            read: Read::Whole(value),
            fields: Arc::new(Fields::All),
        }
    }

    /// The text exactly as it came in.
    pub fn raw(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// The string at `field`, if the event has one there.
    pub fn str(&self, field: &Field) -> Option<&str> {
        match self.get(field)? {
            Got::Str(s) => Some(s),
            Got::Json(v) => v.as_str(),
        }
    }

    /// The integer at `field`, if the event has one there that fits.
    pub fn i64(&self, field: &Field) -> Option<i64> {
        self.json_number(field)?.as_i64()
    }

    /// The number at `field` (any JSON number), if the event has one there.
    pub fn f64(&self, field: &Field) -> Option<f64> {
        self.json_number(field)?.as_f64()
    }

    /// The boolean at `field`, if the event has one there.
    pub fn bool(&self, field: &Field) -> Option<bool> {
        match self.get(field)? {
            Got::Json(v) => v.as_bool(),
            Got::Str(_) => None,
        }
    }

    /// The JSON value at `field` (any type), if the event has one there.
    pub fn json(&self, field: &Field) -> Option<Cow<'_, Value>> {
        Some(match self.get(field)? {
            Got::Str(s) => Cow::Owned(Value::String(s.to_owned())),
            Got::Json(v) => Cow::Borrowed(v),
        })
    }

    fn json_number(&self, field: &Field) -> Option<&serde_json::Number> {
        match self.get(field)? {
            Got::Json(Value::Number(n)) => Some(n),
            _ => None,
        }
    }

    fn get(&self, field: &Field) -> Option<Got<'_>> {
        // An event read for the fields the field was named with finds it
        // in its slot; any other walks the keys by name.
        if let Some(f) = field.found() {
            if Arc::ptr_eq(&f.fields, &self.fields) {
                return self.read.in_slot(f.slot, field.path().get(f.rest..)?);
            }
        }
        self.fields.get(&self.read, field.path())
    }

    /// The whole event as a value, when it was read whole (events of a
    /// rule written in Rust are: their conditions may read anything).
    pub fn value(&self) -> Option<&Value> {
        match &self.read {
            Read::Whole(v) => Some(v),
            Read::Few(_) | Read::Slots(_) => None,
        }
    }
}

impl EventFields for SharedEvent {
    fn val(&self, path: &[Seg]) -> Val<'_> {
        self.fields.val(&self.read, path)
    }

    fn slots_of(&self, fields: &Fields) -> Option<&[Option<SlotValue>]> {
        if !std::ptr::eq(&*self.fields, fields) {
            return None;
        }
        match &self.read {
            Read::Few(s) => Some(s),
            Read::Slots(s) => Some(s),
            Read::Whole(_) => None,
        }
    }
}

/// Checkpoints hold an event's text; restoring reads it for the rule again.
pub(crate) struct RawCodec<'a>(pub &'a Arc<Fields>);

impl EventCodec<SharedEvent> for RawCodec<'_> {
    fn encode(&self, event: &SharedEvent, out: &mut Vec<u8>) {
        out.extend_from_slice(event.raw());
    }

    fn decode(&self, bytes: &[u8]) -> Result<SharedEvent, String> {
        JsonEvent::parse(bytes, self.0)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}

/// A condition over whole JSON values (a rule written in Rust), run on
/// held events.
pub(crate) struct OnValue(pub Box<dyn Condition<Value>>);

const NO_VALUE: &Value = &Value::Null;

impl Condition<SharedEvent> for OnValue {
    fn test(&self, event: &SharedEvent, matched: &dyn Matched<SharedEvent>) -> bool {
        self.0
            .test(event.value().unwrap_or(NO_VALUE), &ValuesOf(matched))
    }

    fn reads_matched(&self) -> bool {
        self.0.reads_matched()
    }
}

/// A partial match of held events, seen as whole values.
struct ValuesOf<'a>(&'a dyn Matched<SharedEvent>);

impl Matched<Value> for ValuesOf<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        self.0
            .visit(step, &mut |e| f(e.value().unwrap_or(NO_VALUE)));
    }
}
