//! A JSON event as a rule runner holds it: its text exactly as it came in,
//! plus the fields the rule reads (see [`crate::project`]).
//!
//! Match records copy the text, never a parsed tree, so they carry each
//! event byte for byte; conditions read the small tree. Shared (`Arc`): a
//! match takes events by reference count, not by copy.

use std::sync::Arc;

use serde_json::Value;

use crate::checkpoint::EventCodec;
use crate::condition::Condition;
use crate::matched::Matched;
use crate::project::Fields;
use crate::small_bytes::SmallBytes;

/// An event's JSON text and the fields of it a rule reads.
#[derive(Debug, PartialEq, Eq)]
pub struct JsonEvent {
    raw: SmallBytes<RAW_INLINE>,
    fields: Value,
}

/// Event texts up to this long share the event's allocation.
const RAW_INLINE: usize = 96;

/// What a rule runner's engine holds per event.
pub type SharedEvent = Arc<JsonEvent>;

impl JsonEvent {
    /// `raw` read for `fields`, or why it is not JSON.
    pub fn parse(raw: &[u8], fields: &Fields) -> Result<Self, serde_json::Error> {
        Ok(JsonEvent {
            fields: fields.parse(raw)?,
            raw: raw.into(),
        })
    }

    /// An event given as a value: its compact text is its text.
    pub fn from_value(value: Value) -> Self {
        JsonEvent {
            raw: SmallBytes::from(&serde_json::to_vec(&value).unwrap_or_default()[..]),
            fields: value,
        }
    }

    /// The text exactly as it came in.
    pub fn raw(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// The fields the rule reads (the whole event for a Rust rule).
    pub fn fields(&self) -> &Value {
        &self.fields
    }
}

/// Checkpoints hold an event's text; restoring reads it for the rule again.
pub(crate) struct RawCodec<'a>(pub &'a Fields);

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

/// A condition over JSON values, run on the fields of held events.
pub(crate) struct OnFields(pub Box<dyn Condition<Value>>);

impl Condition<SharedEvent> for OnFields {
    fn test(&self, event: &SharedEvent, matched: &dyn Matched<SharedEvent>) -> bool {
        self.0.test(&event.fields, &FieldsOf(matched))
    }
}

/// A partial match of held events, seen as their fields.
pub(crate) struct FieldsOf<'a>(pub &'a dyn Matched<SharedEvent>);

impl Matched<Value> for FieldsOf<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&Value)) {
        self.0.visit(step, &mut |e| f(&e.fields));
    }
}
