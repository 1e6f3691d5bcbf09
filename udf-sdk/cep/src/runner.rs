//! A checked rule run over keyed JSON records, partition by partition: what
//! a CEP operator does between its input and its outputs, with no I/O, so
//! the host's operator, the stock rule component (in WASM) and `weir cep
//! run` share it and agree record for record.
//!
//! Each partition keeps its own watermark, advanced record by record (the
//! largest time seen minus the allowed out-of-orderness, minus 1 ms so
//! equal times are not late). What comes out, and after which input, then
//! depends only on the records in order, never on how they were batched: a
//! replay after a restore emits the same outputs at the same positions.
//!
//! A partition's state (its watermark and every key with something
//! pending) is one snapshot blob, so it moves with the partition on a
//! rescale and comes back on a restore.

use std::sync::Arc;

use serde_json::Value;

use crate::event::{JsonEvent, OnValue, RawCodec, SharedEvent};
use crate::keyed::KeyedEventTime;
use crate::matched::Matched;
use crate::nfa::Nfa;
use crate::output::Outputs;
use crate::project::{Fields, Layout};
use crate::record::{self, Head, Steps};
use crate::rule::CheckedRule;
use crate::small_bytes::KeyBytes;
use crate::time_order::EventTimeState;

/// What kind of record an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Match,
    TimedOut,
    Late,
}

/// One output record: its kind, the key it belongs to, its JSON text and
/// its event time.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerOutput {
    pub kind: OutputKind,
    /// The key whose partial match this is (not always the key of the
    /// record that caused it: a watermark move completes other keys' too).
    pub key: Vec<u8>,
    /// The record as JSON text; its events are in it exactly as they came in.
    pub value: Vec<u8>,
    pub time: i64,
}

/// An input value that is not JSON.
#[derive(Debug, thiserror::Error)]
#[error("value is not JSON: {0}")]
pub struct NotJson(#[from] serde_json::Error);

/// How many records' keyed state to read ahead at a time
/// ([`RuleRunner::warm`]). A stretch this long finds its keys' state still
/// in the nearer caches when its records run; a whole batch of 1,024 read
/// at once did not (its later records' state was pushed out before they
/// ran), and under WASM it gained nothing.
pub const READ_AHEAD: usize = 128;

/// How a runner reads keys and which side outputs it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerOptions {
    /// How far behind the largest time seen the watermark stays.
    pub out_of_orderness_ms: i64,
    /// Produce timed-out partial matches (else they are only counted).
    pub timed_out: bool,
    /// Produce late records (else they are only counted).
    pub late: bool,
    /// Keys are JSON text (the match record carries the parsed value);
    /// otherwise a key is shown as a string.
    pub json_keys: bool,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            out_of_orderness_ms: 0,
            timed_out: true,
            late: true,
            json_keys: false,
        }
    }
}

impl RunnerOptions {
    /// The watermark of a partition whose largest time seen is `max`:
    /// everything up to it is complete.
    fn watermark_behind(self, max: i64) -> i64 {
        max.saturating_sub(self.out_of_orderness_ms)
            .saturating_sub(1)
    }
}

/// What the host hands Weir's stock rule component (as JSON, through
/// `config.operator-config`): the rule, already checked by the host, and
/// how to run it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentConfig {
    /// The declarative rule; absent for a component that brings its own
    /// pattern (a Rust rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<crate::rule::Rule>,
    pub out_of_orderness_ms: i64,
    pub timed_out: bool,
    pub late: bool,
    pub json_keys: bool,
    /// The `weir-side-output` header of timed-out partial matches.
    pub timed_out_tag: String,
    /// The `weir-side-output` header of late records.
    pub late_tag: String,
}

impl ComponentConfig {
    /// `rule` (absent for a rule in Rust) run with `opts`; the side outputs
    /// carry the tags given.
    pub fn new(
        rule: Option<crate::rule::Rule>,
        opts: RunnerOptions,
        timed_out_tag: String,
        late_tag: String,
    ) -> Self {
        Self {
            rule,
            out_of_orderness_ms: opts.out_of_orderness_ms,
            timed_out: opts.timed_out,
            late: opts.late,
            json_keys: opts.json_keys,
            timed_out_tag,
            late_tag,
        }
    }

    pub fn options(&self) -> RunnerOptions {
        RunnerOptions {
            out_of_orderness_ms: self.out_of_orderness_ms,
            timed_out: self.timed_out,
            late: self.late,
            json_keys: self.json_keys,
        }
    }
}

/// Counts and sizes over the partitions a runner holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerStats {
    pub matches: u64,
    pub timeouts: u64,
    pub late: u64,
    /// Partial matches dropped because a key was over its cap.
    pub dropped: u64,
    pub partial_matches: u64,
    pub buffered_events: u64,
}

impl RunnerStats {
    /// The stats as a fixed-order list (the order of the fields).
    pub fn to_array(self) -> [u64; 6] {
        [
            self.matches,
            self.timeouts,
            self.late,
            self.dropped,
            self.partial_matches,
            self.buffered_events,
        ]
    }

    /// The inverse of [`RunnerStats::to_array`]; missing entries are 0.
    pub fn from_slice(v: &[u64]) -> Self {
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Self {
            matches: at(0),
            timeouts: at(1),
            late: at(2),
            dropped: at(3),
            partial_matches: at(4),
            buffered_events: at(5),
        }
    }
}

/// A snapshot that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CEP partition snapshot: {0}")]
pub struct SnapshotError(String);

struct Partition {
    keys: KeyedEventTime<KeyBytes, SharedEvent>,
    max_seen: Option<i64>,
}

impl Partition {
    fn new() -> Self {
        Partition {
            keys: KeyedEventTime::with_sort_prefix(KeyBytes::sort_prefix),
            max_seen: None,
        }
    }
}

/// The partitions held, by number: an instance holds a few, so scanning a
/// list finds a record's faster than hashing its number.
#[derive(Default)]
struct Parts(Vec<(i32, Partition)>);

impl Parts {
    fn index(&self, partition: i32) -> Option<usize> {
        self.0.iter().position(|(p, _)| *p == partition)
    }

    fn get(&self, partition: i32) -> Option<&Partition> {
        self.index(partition).map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, partition: i32) -> Option<&mut Partition> {
        self.index(partition).map(|i| &mut self.0[i].1)
    }

    fn get_or_new(&mut self, partition: i32) -> &mut Partition {
        let i = match self.index(partition) {
            Some(i) => i,
            None => {
                self.0.push((partition, Partition::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    fn insert(&mut self, partition: i32, part: Partition) {
        match self.get_mut(partition) {
            Some(p) => *p = part,
            None => self.0.push((partition, part)),
        }
    }
}

/// What a runner matches: a declarative rule (its match records may carry
/// `emit`), or a pattern built with the Rust API, under a name.
enum Shape {
    Rule(CheckedRule),
    Pattern { name: String },
}

impl Shape {
    fn name(&self) -> &str {
        match self {
            Shape::Rule(r) => &r.name,
            Shape::Pattern { name } => name,
        }
    }

    /// A match's record, written to `out`.
    fn match_record(&self, out: &mut Vec<u8>, key: &Value, m: &crate::output::Match<SharedEvent>) {
        let emit = match (self, m.steps.last().and_then(|(_, e)| e.last())) {
            // Emit expressions never read the current event: any will do.
            (Shape::Rule(r), Some(any)) if !r.emit.is_empty() => {
                Some(r.emit_value_in(any, &StepEvents(&m.steps)))
            }
            _ => None,
        };
        let head = Head {
            rule: self.name(),
            key,
            first: m.first_time,
            last: m.last_time,
        };
        record::match_record(out, &head, &m.steps, emit.as_ref());
    }

    /// A timed-out partial match's record, written to `out`.
    fn timeout_record(
        &self,
        out: &mut Vec<u8>,
        key: &Value,
        t: &crate::output::TimedOut<SharedEvent>,
    ) {
        let head = Head {
            rule: self.name(),
            key,
            first: t.first_time,
            last: t.last_time,
        };
        record::timeout_record(out, &head, &t.steps, t.timeout_at);
    }
}

/// A finished match's events, as the `emit` expressions read them.
struct StepEvents<'a>(&'a Steps);

impl Matched<SharedEvent> for StepEvents<'_> {
    fn visit(&self, step: &str, f: &mut dyn FnMut(&SharedEvent)) {
        for (name, events) in self.0 {
            if &**name == step {
                events.iter().for_each(&mut *f);
            }
        }
    }
}

/// A rule matched over the partitions of one operator instance.
pub struct RuleRunner {
    shape: Shape,
    nfa: Nfa<SharedEvent>,
    /// What of each event the conditions read.
    fields: Arc<Fields>,
    opts: RunnerOptions,
    parts: Parts,
    out: Outputs<SharedEvent>,
    /// The last event [`RuleRunner::next_event`] handed out, kept to be
    /// read into again once the engine holds it no more.
    spare: Option<SharedEvent>,
    /// What the events read so far looked like, for reading the next.
    layout: Layout,
    /// Scratch for [`RuleRunner::warm`].
    warm_scratch: Vec<u64>,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"WCPR";
const SNAPSHOT_VERSION: u8 = 1;

impl RuleRunner {
    /// A runner for `rule`, or the reason its NFA does not compile.
    pub fn new(rule: CheckedRule, opts: RunnerOptions) -> Result<Self, String> {
        let fields = Arc::new(rule.fields());
        let nfa = rule
            .pattern_of::<SharedEvent>(Some(&fields))
            .compile()
            .map_err(|e| e.to_string())?;
        let nfa = match rule.max_partial_matches_per_key {
            Some(cap) => nfa.with_max_partial_matches(usize::try_from(cap).unwrap_or(usize::MAX)),
            None => nfa,
        };
        Ok(Self::assemble(Shape::Rule(rule), nfa, fields, opts))
    }

    /// A runner for a pattern built with the Rust API over whole JSON
    /// values, its match records named `name` (the same records as a
    /// rule's, without `emit`). Every event is parsed whole for it:
    /// [`RuleRunner::from_json_pattern`] reads only the fields named.
    pub fn from_pattern(
        name: &str,
        pattern: crate::pattern::Pattern<Value>,
        opts: RunnerOptions,
    ) -> Result<Self, String> {
        // Its conditions are code: they may read any field.
        Self::of_pattern(
            name,
            pattern.map_conditions(on_value),
            Arc::new(Fields::All),
            opts,
        )
    }

    /// A runner for a pattern built with the Rust API over events read
    /// for the fields of `reads` (its conditions read them with
    /// [`JsonEvent::str`] and its siblings), its match records named
    /// `name` (the same records as a rule's, without `emit`).
    pub fn from_json_pattern(
        name: &str,
        pattern: crate::pattern::Pattern<SharedEvent>,
        reads: crate::reads::Reads,
        opts: RunnerOptions,
    ) -> Result<Self, String> {
        Self::of_pattern(name, pattern, reads.into_fields(), opts)
    }

    fn of_pattern(
        name: &str,
        pattern: crate::pattern::Pattern<SharedEvent>,
        fields: Arc<Fields>,
        opts: RunnerOptions,
    ) -> Result<Self, String> {
        let nfa = pattern.compile().map_err(|e| e.to_string())?;
        let shape = Shape::Pattern {
            name: name.to_owned(),
        };
        Ok(Self::assemble(shape, nfa, fields, opts))
    }

    fn assemble(
        shape: Shape,
        nfa: Nfa<SharedEvent>,
        fields: Arc<Fields>,
        opts: RunnerOptions,
    ) -> Self {
        Self {
            shape,
            nfa: nfa.with_timeout_output(opts.timed_out),
            fields,
            opts,
            parts: Parts::default(),
            out: Outputs::new(),
            spare: None,
            layout: Layout::default(),
            warm_scratch: Vec::new(),
        }
    }

    /// The rule's name, as match records carry it.
    pub fn name(&self) -> &str {
        self.shape.name()
    }

    /// Whether `partition` is held (restored or fed) by this runner.
    pub fn holds(&self, partition: i32) -> bool {
        self.parts.get(partition).is_some()
    }

    /// Feeds one record of `partition`: its key, its value as JSON text
    /// and its time. Every output it causes is handed to `emit`, in order;
    /// a value that is not JSON is refused and changes nothing.
    pub fn push_json(
        &mut self,
        partition: i32,
        key: &[u8],
        value: &[u8],
        time: i64,
        emit: &mut impl FnMut(RunnerOutput),
    ) -> Result<(), NotJson> {
        let event = self.next_event(value)?;
        self.push_event(partition, key, event, time, emit);
        Ok(())
    }

    /// [`event`](Self::event) for a caller that pushes it before reading
    /// the next: most events are tested and dropped, never stored by a
    /// partial match, so the last one's allocation is read into again when
    /// nothing else holds it (an allocation and a free less per event).
    pub fn next_event(&mut self, value: &[u8]) -> Result<SharedEvent, NotJson> {
        if let Some(spare) = self.spare.as_mut() {
            if let Some(e) = Arc::get_mut(spare) {
                e.reparse(value, &mut self.layout)?;
                return Ok(Arc::clone(spare));
            }
        }
        let event = Arc::new(JsonEvent::parse_with(
            value,
            &self.fields,
            &mut self.layout,
        )?);
        self.spare = Some(Arc::clone(&event));
        Ok(event)
    }

    /// `value` read as this runner's conditions read it, or why it is not
    /// JSON: for a caller that must know before it feeds the event.
    pub fn event(&self, value: &[u8]) -> Result<SharedEvent, NotJson> {
        Ok(Arc::new(JsonEvent::parse(value, &self.fields)?))
    }

    /// [`push_json`](Self::push_json) of a value already parsed (its
    /// compact text stands for the text it came as).
    pub fn push(
        &mut self,
        partition: i32,
        key: &[u8],
        event: Value,
        time: i64,
        emit: &mut impl FnMut(RunnerOutput),
    ) {
        let event = Arc::new(JsonEvent::from_value(event));
        self.push_event(partition, key, event, time, emit);
    }

    /// [`push_json`](Self::push_json) of an event from [`RuleRunner::event`].
    ///
    /// Not inlined into its caller's record loop: under WASM the one
    /// large function that made spilled and reloaded more registers than
    /// the call costs (Cranelift's register allocation).
    #[inline(never)]
    pub fn push_event(
        &mut self,
        partition: i32,
        key: &[u8],
        event: SharedEvent,
        time: i64,
        emit: &mut impl FnMut(RunnerOutput),
    ) {
        let part = self.parts.get_or_new(partition);
        let max = part.max_seen.map_or(time, |m| m.max(time));
        let watermark = self.opts.watermark_behind(max);
        // The watermark moves right after the record: in-order input is
        // matched at once, its outputs held until then.
        part.keys
            .push_ahead(&self.nfa, key, event, time, watermark, &mut self.out, |k| {
                KeyBytes::from(k)
            });
        drain(&self.shape, self.opts, key, &mut self.out, emit);
        part.max_seen = Some(max);
        let (shape, opts) = (&self.shape, self.opts);
        part.keys
            .advance_watermark_with(&self.nfa, watermark, &mut self.out, |k, out| {
                drain(shape, opts, k.as_slice(), out, emit)
            });
    }

    /// Reads ahead the state that `records` (key and event time, about to
    /// be pushed to `partition`) will read, and the state of the keys
    /// whose windows close by the latest of their times (see
    /// [`KeyedEventTime::warm`]); changes nothing. Call it for the next
    /// [`READ_AHEAD`] records or so, right before pushing them.
    pub fn warm<'k, I>(&mut self, partition: i32, records: I)
    where
        I: Iterator<Item = (&'k [u8], i64)> + Clone,
    {
        let Some(until) = records.clone().map(|(_, time)| time).max() else {
            return;
        };
        if let Some(part) = self.parts.get(partition) {
            let keys = records.map(|(key, _)| key);
            let max = part.max_seen.map_or(until, |m| m.max(until));
            let due_by = self.opts.watermark_behind(max);
            part.keys.warm(keys, due_by, &mut self.warm_scratch);
        }
    }

    /// The end of `partition`'s input: the watermark moves to the largest
    /// time seen, and no further (nothing later is assumed).
    pub fn finish(&mut self, partition: i32, emit: &mut impl FnMut(RunnerOutput)) {
        let Some(part) = self.parts.get_mut(partition) else {
            return;
        };
        let Some(max) = part.max_seen else { return };
        let (shape, opts) = (&self.shape, self.opts);
        part.keys
            .advance_watermark_with(&self.nfa, max, &mut self.out, |k, out| {
                drain(shape, opts, k.as_slice(), out, emit)
            });
    }

    /// Counts and sizes over every partition held.
    pub fn stats(&self) -> RunnerStats {
        let mut s = RunnerStats::default();
        for p in self.parts.0.iter().map(|(_, p)| p) {
            let c = p.keys.counters();
            s.matches += c.matches;
            s.timeouts += c.timeouts;
            s.late += c.late;
            s.dropped += c.dropped;
            s.partial_matches += p.keys.partial_matches() as u64;
            s.buffered_events += p.keys.buffered_events() as u64;
        }
        s
    }

    /// `partition`'s state as bytes (empty: nothing held).
    ///
    /// Layout: `"WCPR"`, version, then a flag and the largest time seen
    /// (i64 LE), then per key: key length (u32 LE), key, state length
    /// (u32 LE), the key's event-time state (see [`crate::checkpoint`]).
    pub fn snapshot(&self, partition: i32) -> Vec<u8> {
        let Some(part) = self.parts.get(partition) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        match part.max_seen {
            Some(m) => {
                out.push(1);
                out.extend_from_slice(&m.to_le_bytes());
            }
            None => out.push(0),
        }
        let mut state = Vec::new();
        for (key, st) in part.keys.states() {
            state.clear();
            st.encode(&self.nfa, &RawCodec(&self.fields), &mut state);
            put_len(&mut out, key.as_slice().len());
            out.extend_from_slice(key.as_slice());
            put_len(&mut out, state.len());
            out.extend_from_slice(&state);
        }
        out
    }

    /// Replaces `partition`'s state with a snapshot's (empty: none).
    pub fn restore(&mut self, partition: i32, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut part = Partition::new();
        if !bytes.is_empty() {
            let mut r = Cursor { bytes, at: 0 };
            if r.take(4)? != SNAPSHOT_MAGIC {
                return Err(SnapshotError("not a CEP partition snapshot".into()));
            }
            let version = r.take(1)?[0];
            if version != SNAPSHOT_VERSION {
                return Err(SnapshotError(format!(
                    "format version {version}, this engine reads {SNAPSHOT_VERSION}"
                )));
            }
            if r.take(1)?[0] == 1 {
                let m = i64::from_le_bytes(r.array()?);
                part.max_seen = Some(m);
                part.keys.restore_watermark(self.opts.watermark_behind(m));
            }
            while !r.done() {
                let n = r.len()?;
                let key = r.take(n)?;
                let n = r.len()?;
                let st = EventTimeState::decode(&self.nfa, &RawCodec(&self.fields), r.take(n)?)
                    .map_err(|e| {
                        SnapshotError(format!(
                            "partial matches of key `{}`: {e}",
                            String::from_utf8_lossy(key)
                        ))
                    })?;
                part.keys.restore(key.into(), st);
            }
        }
        self.parts.insert(partition, part);
        Ok(())
    }
}

/// A condition of a pattern written in Rust, run on held events.
fn on_value(
    c: Box<dyn crate::condition::Condition<Value>>,
) -> Box<dyn crate::condition::Condition<SharedEvent>> {
    Box::new(OnValue(c))
}

/// Moves everything `out` holds for `key` to `emit`, as records. Most
/// records cause none: that test is made inline, where a call (under
/// WASM) cost more than it.
#[inline(always)]
fn drain(
    shape: &Shape,
    opts: RunnerOptions,
    key: &[u8],
    out: &mut Outputs<SharedEvent>,
    emit: &mut impl FnMut(RunnerOutput),
) {
    if !out.is_empty() {
        drain_some(shape, opts, key, out, emit);
    }
}

/// [`drain`] when `out` holds something.
#[inline(never)]
fn drain_some(
    shape: &Shape,
    opts: RunnerOptions,
    key: &[u8],
    out: &mut Outputs<SharedEvent>,
    emit: &mut impl FnMut(RunnerOutput),
) {
    let kv = key_value(key, opts.json_keys);
    let mut matches = std::mem::take(&mut out.matches);
    for m in matches.drain(..) {
        let mut value = Vec::with_capacity(record::size_hint(&m.steps));
        shape.match_record(&mut value, &kv, &m);
        out.recycle(m.steps);
        emit(RunnerOutput {
            key: key.to_vec(),
            kind: OutputKind::Match,
            value,
            time: m.last_time,
        });
    }
    out.matches = matches;
    let mut timeouts = std::mem::take(&mut out.timeouts);
    for t in timeouts.drain(..) {
        let mut value = Vec::with_capacity(record::size_hint(&t.steps));
        shape.timeout_record(&mut value, &kv, &t);
        out.recycle(t.steps);
        emit(RunnerOutput {
            key: key.to_vec(),
            kind: OutputKind::TimedOut,
            value,
            time: t.timeout_at,
        });
    }
    out.timeouts = timeouts;
    for l in out.late.drain(..) {
        if opts.late {
            let mut value = Vec::with_capacity(128);
            record::late_record(&mut value, shape.name(), &kv, &l.event, l.timestamp);
            emit(RunnerOutput {
                key: key.to_vec(),
                kind: OutputKind::Late,
                value,
                time: l.timestamp,
            });
        }
    }
}

/// A key as match records name it: its JSON value, or its text.
fn key_value(key: &[u8], json: bool) -> Value {
    if json {
        if let Ok(v) = serde_json::from_slice(key) {
            return v;
        }
    }
    Value::String(String::from_utf8_lossy(key).into_owned())
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| SnapshotError(format!("truncated at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let s = self.take(N)?;
        <[u8; N]>::try_from(s).map_err(|_| SnapshotError("truncated".into()))
    }
    fn len(&mut self) -> Result<usize, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Rule;
    use serde_json::json;

    fn rule() -> CheckedRule {
        let r: Rule = serde_json::from_value(json!({
            "name": "abc", "within_ms": 100,
            "steps": [
                {"name": "a", "where": "kind == \"a\""},
                {"name": "b", "where": "kind == \"b\""},
            ]
        }))
        .unwrap();
        r.check().unwrap()
    }

    fn value(o: &RunnerOutput) -> Value {
        serde_json::from_slice(&o.value).unwrap()
    }

    fn feed(r: &mut RuleRunner, p: i32, evs: &[(&str, &str, i64)]) -> Vec<RunnerOutput> {
        let mut got = Vec::new();
        for (key, kind, t) in evs {
            r.push(p, key.as_bytes(), json!({"kind": kind}), *t, &mut |o| {
                got.push(o)
            });
        }
        got
    }

    #[test]
    fn matches_time_out_and_late_records_come_out_in_order() {
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let got = feed(
            &mut r,
            0,
            &[
                ("k", "a", 10),
                ("k", "b", 20),
                ("j", "a", 30),
                ("k", "x", 200),
                ("k", "a", 5),
            ],
        );
        let kinds: Vec<_> = got.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [OutputKind::Match, OutputKind::TimedOut, OutputKind::Late]
        );
        assert_eq!(value(&got[0])["key"], "k");
        assert_eq!(
            got[0].key, b"k",
            "the match is k's, though j's record completed it"
        );
        assert_eq!(got[1].key, b"j");
        assert_eq!(value(&got[0])["steps"]["b"], json!([{"kind": "b"}]));
        assert_eq!((got[0].time, got[1].time), (20, 130));
        assert_eq!(r.stats().matches, 1);
    }

    /// Reading a batch's keyed state ahead changes no output, no count
    /// and no snapshot, whatever the batch holds (held keys, new keys,
    /// keys about to be dropped, another partition's).
    #[test]
    fn reading_ahead_changes_nothing() {
        let mut rng = fastrand::Rng::with_seed(3);
        let records: Vec<(i32, String, Vec<u8>, i64)> = (0..20_000)
            .map(|i| {
                let kind = ["a", "b", "x"][rng.usize(..3)];
                let key = format!("k{}", rng.u32(..300));
                let value = format!(r#"{{"kind":"{kind}"}}"#).into_bytes();
                (rng.i32(0..2), key, value, i / 3 + rng.i64(0..5))
            })
            .collect();
        let mut plain = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let mut warmed = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for batch in records.chunks(37) {
            for p in 0..2 {
                let next = batch.iter().filter(|r| r.0 == p);
                warmed.warm(p, next.map(|r| (r.1.as_bytes(), r.3)));
            }
            for (p, key, value, t) in batch {
                let k = key.as_bytes();
                plain
                    .push_json(*p, k, value, *t, &mut |o| a.push(o))
                    .unwrap();
                warmed
                    .push_json(*p, k, value, *t, &mut |o| b.push(o))
                    .unwrap();
            }
        }
        assert!(a.len() > 1_000, "{}", a.len());
        assert_eq!(a, b);
        assert_eq!(plain.stats(), warmed.stats());
        for p in 0..2 {
            assert_eq!(plain.snapshot(p), warmed.snapshot(p));
        }
    }

    #[test]
    fn a_restored_partition_finishes_what_was_open() {
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        assert!(feed(&mut r, 3, &[("k", "a", 10), ("k", "x", 11)]).is_empty());
        let snap = r.snapshot(3);
        let mut again = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        again.restore(3, &snap).unwrap();
        let got = feed(&mut again, 3, &[("k", "b", 12), ("k", "x", 13)]);
        assert_eq!(got.len(), 1);
        assert_eq!(value(&got[0])["steps"]["a"], json!([{"kind": "a"}]));
        // The watermark came back too: a record behind it is late.
        let late = feed(&mut again, 3, &[("q", "a", 1)]);
        assert_eq!(late[0].kind, OutputKind::Late);
    }

    #[test]
    fn a_rust_pattern_gives_the_rule_s_records() {
        let pattern = crate::pattern::Pattern::begin("a")
            .where_(|e: &Value, _| e["kind"] == "a")
            .followed_by("b")
            .where_(|e: &Value, _| e["kind"] == "b")
            .within(
                std::time::Duration::from_millis(100),
                crate::WithinType::FirstAndLast,
            );
        let mut from_api =
            RuleRunner::from_pattern("abc", pattern, RunnerOptions::default()).unwrap();
        let mut from_rule = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let evs = [
            ("k", "a", 10),
            ("k", "b", 20),
            ("j", "a", 30),
            ("k", "x", 200),
            ("k", "a", 5),
        ];
        assert_eq!(feed(&mut from_api, 0, &evs), feed(&mut from_rule, 0, &evs));
        assert_eq!(from_api.name(), "abc");
    }

    /// A Rust pattern over the fields it names (read as a rule's are,
    /// not whole), an iterative condition included, gives the records of
    /// the same rule in YAML.
    #[test]
    fn a_rust_pattern_over_named_fields_gives_the_rule_s_records() {
        use crate::{Matched, Pattern, Reads};
        let mut reads = Reads::new();
        let kind = reads.field("kind").unwrap();
        let amount = reads.field("amount").unwrap();
        let (kind_a, kind_b, first_amount) = (kind.clone(), kind, amount.clone());
        let pattern = Pattern::begin("a")
            .where_event(move |e: &SharedEvent| e.str(&kind_a) == Some("a"))
            .followed_by("b")
            .where_(move |e: &SharedEvent, m: &dyn Matched<SharedEvent>| {
                let mut first = None;
                m.visit("a", &mut |a| first = first.or(a.f64(&first_amount)));
                e.str(&kind_b) == Some("b")
                    && matches!((e.f64(&amount), first), (Some(x), Some(y)) if x > y)
            })
            .within(
                std::time::Duration::from_millis(100),
                crate::WithinType::FirstAndLast,
            );
        let opts = RunnerOptions::default();
        let mut from_api = RuleRunner::from_json_pattern("abc", pattern, reads, opts).unwrap();
        let r: Rule = serde_json::from_value(json!({
            "name": "abc", "within_ms": 100,
            "steps": [
                {"name": "a", "where": "kind == \"a\""},
                {"name": "b", "where": "kind == \"b\" && amount > first(a).amount"},
            ]
        }))
        .unwrap();
        let mut from_rule = RuleRunner::new(r.check().unwrap(), opts).unwrap();
        let evs = [
            ("k", r#"{"kind":"a","amount":5}"#, 10),
            ("k", r#"{"kind":"b","amount":3}"#, 20),
            ("k", r#"{"amount":9,"kind":"b","note":[1,{"x":null}]}"#, 30),
            ("j", r#"{"kind":"a","amount":1}"#, 30),
            ("j", r#"{"kind":"b","amount":2.5}"#, 40),
            ("k", r#"{"kind":"x"}"#, 200),
            ("k", r#"{"kind":"a","amount":1}"#, 5),
        ];
        let run = |r: &mut RuleRunner| {
            let mut got = Vec::new();
            for (key, value, t) in evs {
                r.push_json(0, key.as_bytes(), value.as_bytes(), t, &mut |o| got.push(o))
                    .unwrap();
            }
            r.finish(0, &mut |o| got.push(o));
            got
        };
        let (api, rule) = (run(&mut from_api), run(&mut from_rule));
        assert_eq!(api, rule);
        assert_eq!(
            api.iter().filter(|o| o.kind == OutputKind::Match).count(),
            2,
            "k's second b and j's b complete matches: {api:?}"
        );
        assert_eq!(api.iter().filter(|o| o.kind == OutputKind::Late).count(), 1);
    }

    #[test]
    fn bad_snapshots_are_refused_not_panicked_on() {
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        feed(&mut r, 0, &[("k", "a", 10)]);
        let snap = r.snapshot(0);
        for cut in [1, 4, 6, 10, snap.len() - 1] {
            assert!(r.restore(0, &snap[..cut]).is_err(), "cut at {cut}");
        }
        assert!(r.restore(0, b"nope").is_err());
        r.restore(0, &[]).unwrap();
        assert_eq!(r.stats().partial_matches, 0);
    }

    #[test]
    fn json_keys_are_values_and_finish_flushes_the_end() {
        let opts = RunnerOptions {
            json_keys: true,
            ..RunnerOptions::default()
        };
        let mut r = RuleRunner::new(rule(), opts).unwrap();
        let mut got = Vec::new();
        r.push(0, b"7", json!({"kind": "a"}), 1, &mut |o| got.push(o));
        r.push(0, b"7", json!({"kind": "b"}), 2, &mut |o| got.push(o));
        assert!(
            got.is_empty(),
            "equal-or-later times wait for the watermark"
        );
        r.finish(0, &mut |o| got.push(o));
        assert_eq!(got.len(), 1);
        assert_eq!(value(&got[0])["key"], json!(7));
    }

    #[test]
    fn events_come_out_exactly_as_they_came_in() {
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let a = br#"{ "z": [1, 2.50], "kind" : "a", "\u00e9": "x" }"#;
        let b = br#"{"kind":"b","amount":1e3}"#;
        let mut got = Vec::new();
        for (raw, t) in [(&a[..], 10), (&b[..], 20), (&br#"{"kind":"x"}"#[..], 30)] {
            r.push_json(0, b"k", raw, t, &mut |o| got.push(o)).unwrap();
        }
        let text = String::from_utf8(got[0].value.clone()).unwrap();
        let a = std::str::from_utf8(a).unwrap();
        let b = std::str::from_utf8(b).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"first_event_time":10,"key":"k","last_event_time":20,"rule":"abc","steps":{{"a":[{a}],"b":[{b}]}}}}"#
            )
        );
        assert!(r
            .push_json(0, b"k", b"{\"kind\":", 40, &mut |_| {})
            .is_err());
        assert_eq!(r.stats().buffered_events, 1, "only the last record waits");
    }

    #[test]
    fn next_event_reuses_only_what_the_engine_let_go() {
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let mut got = Vec::new();
        let mut push = |r: &mut RuleRunner, key: &[u8], raw: &[u8], t| {
            let e = r.next_event(raw).unwrap();
            let at = Arc::as_ptr(&e);
            r.push_event(0, key, e, t, &mut |o| got.push(o));
            at
        };
        let x = push(&mut r, b"k", br#"{"kind":"x"}"#, 10);
        let a = push(&mut r, b"k", br#"{"kind":"a"}"#, 11);
        assert_eq!(a, x, "nothing took `x`: read into again");
        let b = push(&mut r, b"k", br#"{"kind":"b"}"#, 12);
        assert_ne!(b, a, "a partial match holds `a`");
        let y = push(&mut r, b"j", br#"{"kind":"y"}"#, 13);
        assert_ne!(
            y, b,
            "the match held until the watermark passes it holds `b`"
        );
        let z = push(&mut r, b"j", br#"{"kind":"z"}"#, 14);
        assert_eq!(z, y);
        assert!(r.next_event(b"{").is_err());
        let text = String::from_utf8(got[0].value.clone()).unwrap();
        assert!(text.contains(r#""a":[{"kind":"a"}],"b":[{"kind":"b"}]"#));
    }

    #[test]
    fn records_read_as_the_values_they_were_built_as_before() {
        // The shape of every record kind, as a JSON object printed them.
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        let got = feed(
            &mut r,
            0,
            &[
                ("k", "a", 10),
                ("k", "b", 20),
                ("k", "a", 30),
                ("k", "x", 200),
                ("k", "a", 5),
            ],
        );
        let texts: Vec<String> = got
            .iter()
            .map(|o| String::from_utf8(o.value.clone()).unwrap())
            .collect();
        for (t, o) in texts.iter().zip(&got) {
            assert_eq!(*t, value(o).to_string(), "keys in sorted order, compact");
        }
        assert_eq!(
            texts[1],
            r#"{"first_event_time":30,"key":"k","last_event_time":30,"rule":"abc","steps":{"a":[{"kind":"a"}]},"timed_out":true,"timeout_at":130}"#
        );
        assert_eq!(
            texts[2],
            r#"{"event":{"kind":"a"},"event_time":5,"key":"k","late":true,"rule":"abc"}"#
        );
    }

    #[test]
    fn a_snapshot_of_whole_json_values_restores() {
        // Before events were held as their text, a snapshot held each
        // event's value printed compactly: the same bytes as its text.
        let mut r = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        r.push(
            3,
            b"k",
            json!({"kind": "a", "n": {"m": [1]}}),
            10,
            &mut |_| {},
        );
        r.push(3, b"k", json!({"kind": "x"}), 11, &mut |_| {});
        let snap = r.snapshot(3);
        let text = br#"{"kind":"a","n":{"m":[1]}}"#;
        assert!(snap.windows(text.len()).any(|w| w == text));
        let mut again = RuleRunner::new(rule(), RunnerOptions::default()).unwrap();
        again.restore(3, &snap).unwrap();
        let got = feed(&mut again, 3, &[("k", "b", 12), ("k", "x", 13)]);
        assert_eq!(
            value(&got[0])["steps"]["a"],
            json!([{"kind": "a", "n": {"m": [1]}}])
        );
    }
}
