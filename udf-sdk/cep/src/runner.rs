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

use std::collections::HashMap;

use serde_json::Value;

use crate::checkpoint::JsonCodec;
use crate::keyed::KeyedEventTime;
use crate::nfa::Nfa;
use crate::output::Outputs;
use crate::rule::CheckedRule;
use crate::time_order::EventTimeState;

/// What kind of record an output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Match,
    TimedOut,
    Late,
}

/// One output record: its kind, the key it belongs to, its JSON value and
/// its event time.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerOutput {
    pub kind: OutputKind,
    /// The key whose partial match this is (not always the key of the
    /// record that caused it: a watermark move completes other keys' too).
    pub key: Vec<u8>,
    pub value: Value,
    pub time: i64,
}

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
    keys: KeyedEventTime<Vec<u8>, Value>,
    max_seen: Option<i64>,
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

    /// A match's record: `{rule, key, steps, first_event_time,
    /// last_event_time, emit?}`, its events moved in.
    fn match_record(&self, key: Value, m: crate::output::Match<Value>) -> Value {
        let emit = match self {
            Shape::Rule(r) => r.emit_of(&m.steps),
            Shape::Pattern { .. } => None,
        };
        let mut o = record_head(self.name(), key, m.steps, m.first_time, m.last_time);
        if let Some(emit) = emit {
            o.insert("emit".into(), emit);
        }
        Value::Object(o)
    }

    /// A timed-out partial match's record: the head, `timed_out: true` and
    /// `timeout_at`.
    fn timeout_record(&self, key: Value, t: crate::output::TimedOut<Value>) -> Value {
        let mut o = record_head(self.name(), key, t.steps, t.first_time, t.last_time);
        o.insert("timed_out".into(), Value::Bool(true));
        o.insert("timeout_at".into(), t.timeout_at.into());
        Value::Object(o)
    }
}

/// `{rule, key, steps, first_event_time, last_event_time}` of a record,
/// the events moved in.
fn record_head(
    name: &str,
    key: Value,
    steps: Vec<(std::sync::Arc<str>, Vec<Value>)>,
    first: i64,
    last: i64,
) -> serde_json::Map<String, Value> {
    let by_step = steps
        .into_iter()
        .map(|(step, events)| (step.to_string(), Value::Array(events)))
        .collect();
    let mut o = serde_json::Map::new();
    o.insert("rule".into(), Value::String(name.to_owned()));
    o.insert("key".into(), key);
    o.insert("steps".into(), Value::Object(by_step));
    o.insert("first_event_time".into(), first.into());
    o.insert("last_event_time".into(), last.into());
    o
}

/// A rule matched over the partitions of one operator instance.
pub struct RuleRunner {
    shape: Shape,
    nfa: Nfa<Value>,
    opts: RunnerOptions,
    parts: HashMap<i32, Partition>,
    out: Outputs<Value>,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"WCPR";
const SNAPSHOT_VERSION: u8 = 1;

impl RuleRunner {
    /// A runner for `rule`, or the reason its NFA does not compile.
    pub fn new(rule: CheckedRule, opts: RunnerOptions) -> Result<Self, String> {
        let nfa = rule
            .compile()
            .map_err(|p| p.to_string())?
            .with_timeout_output(opts.timed_out);
        Ok(Self {
            shape: Shape::Rule(rule),
            nfa,
            opts,
            parts: HashMap::new(),
            out: Outputs::new(),
        })
    }

    /// A runner for a pattern built with the Rust API, its match records
    /// named `name` (the same records as a rule's, without `emit`).
    pub fn from_pattern(
        name: &str,
        pattern: crate::pattern::Pattern<Value>,
        opts: RunnerOptions,
    ) -> Result<Self, String> {
        let nfa = pattern
            .compile()
            .map_err(|e| e.to_string())?
            .with_timeout_output(opts.timed_out);
        Ok(Self {
            shape: Shape::Pattern {
                name: name.to_owned(),
            },
            nfa,
            opts,
            parts: HashMap::new(),
            out: Outputs::new(),
        })
    }

    /// The rule's name, as match records carry it.
    pub fn name(&self) -> &str {
        self.shape.name()
    }

    /// Whether `partition` is held (restored or fed) by this runner.
    pub fn holds(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// Feeds one record of `partition`: its key, its event and its time.
    /// Every output it causes is handed to `emit`, in order.
    pub fn push(
        &mut self,
        partition: i32,
        key: &[u8],
        event: Value,
        time: i64,
        emit: &mut impl FnMut(RunnerOutput),
    ) {
        let part = self.parts.entry(partition).or_insert_with(|| Partition {
            keys: KeyedEventTime::new(),
            max_seen: None,
        });
        part.keys
            .push_borrowed(key, event, time, &mut self.out, <[u8]>::to_vec);
        drain(&self.shape, self.opts, key, &mut self.out, emit);
        let max = part.max_seen.map_or(time, |m| m.max(time));
        part.max_seen = Some(max);
        let watermark = max
            .saturating_sub(self.opts.out_of_orderness_ms)
            .saturating_sub(1);
        let (shape, opts) = (&self.shape, self.opts);
        part.keys
            .advance_watermark_with(&self.nfa, watermark, &mut self.out, |k, out| {
                drain(shape, opts, k, out, emit)
            });
    }

    /// The end of `partition`'s input: the watermark moves to the largest
    /// time seen, and no further (nothing later is assumed).
    pub fn finish(&mut self, partition: i32, emit: &mut impl FnMut(RunnerOutput)) {
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        let Some(max) = part.max_seen else { return };
        let (shape, opts) = (&self.shape, self.opts);
        part.keys
            .advance_watermark_with(&self.nfa, max, &mut self.out, |k, out| {
                drain(shape, opts, k, out, emit)
            });
    }

    /// Counts and sizes over every partition held.
    pub fn stats(&self) -> RunnerStats {
        let mut s = RunnerStats::default();
        for p in self.parts.values() {
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
        let Some(part) = self.parts.get(&partition) else {
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
            st.encode(&self.nfa, &JsonCodec, &mut state);
            put_len(&mut out, key.len());
            out.extend_from_slice(key);
            put_len(&mut out, state.len());
            out.extend_from_slice(&state);
        }
        out
    }

    /// Replaces `partition`'s state with a snapshot's (empty: none).
    pub fn restore(&mut self, partition: i32, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut part = Partition {
            keys: KeyedEventTime::new(),
            max_seen: None,
        };
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
                part.keys.restore_watermark(
                    m.saturating_sub(self.opts.out_of_orderness_ms)
                        .saturating_sub(1),
                );
            }
            while !r.done() {
                let n = r.len()?;
                let key = r.take(n)?;
                let n = r.len()?;
                let st =
                    EventTimeState::decode(&self.nfa, &JsonCodec, r.take(n)?).map_err(|e| {
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

/// Moves everything `out` holds for `key` to `emit`, as records.
fn drain(
    shape: &Shape,
    opts: RunnerOptions,
    key: &[u8],
    out: &mut Outputs<Value>,
    emit: &mut impl FnMut(RunnerOutput),
) {
    if out.is_empty() {
        return;
    }
    let kv = key_value(key, opts.json_keys);
    for m in out.matches.drain(..) {
        let time = m.last_time;
        emit(RunnerOutput {
            key: key.to_vec(),
            kind: OutputKind::Match,
            value: shape.match_record(kv.clone(), m),
            time,
        });
    }
    for t in out.timeouts.drain(..) {
        let time = t.timeout_at;
        emit(RunnerOutput {
            key: key.to_vec(),
            kind: OutputKind::TimedOut,
            value: shape.timeout_record(kv.clone(), t),
            time,
        });
    }
    for l in out.late.drain(..) {
        if opts.late {
            let v = serde_json::json!({
                "rule": shape.name(), "late": true, "key": kv,
                "event": l.event, "event_time": l.timestamp,
            });
            emit(RunnerOutput {
                key: key.to_vec(),
                kind: OutputKind::Late,
                value: v,
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
        assert_eq!(got[0].value["key"], "k");
        assert_eq!(
            got[0].key, b"k",
            "the match is k's, though j's record completed it"
        );
        assert_eq!(got[1].key, b"j");
        assert_eq!(got[0].value["steps"]["b"], json!([{"kind": "b"}]));
        assert_eq!((got[0].time, got[1].time), (20, 130));
        assert_eq!(r.stats().matches, 1);
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
        assert_eq!(got[0].value["steps"]["a"], json!([{"kind": "a"}]));
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
        assert_eq!(got[0].value["key"], json!(7));
    }
}
