//! `cep`: a declarative CEP rule matched per key in event-time order, with
//! the `weir-cep` engine running in the task.
//!
//! Event time is the record's time (the source's `event_time_field`, or the
//! Kafka timestamp). The operator keeps its own watermark per partition,
//! advanced record by record (largest time seen minus the allowed
//! out-of-orderness, minus 1 ms so equal times are not late), so what it
//! emits and where it attaches each output depend only on the records in
//! order, never on how they were batched: a replay after a restore emits the
//! same outputs at the same source positions, which is what exactly-once by
//! deterministic replay needs.
//!
//! Partial matches and buffered records live in the operator between
//! checkpoints and are written into the partition's keyed state when a
//! checkpoint asks (one entry per key with something pending, plus the
//! partition's largest time seen), so they move with the partition on a
//! rescale and come back on a restore.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use weir_cep::checkpoint::JsonCodec;
use weir_cep::rule::CheckedRule;
use weir_cep::{EventTimeState, KeyedEventTime, Nfa, Outputs};

use super::super::operator::{
    BatchContext, Operator, OperatorError, OperatorFactory, RecordResult,
};
use super::super::record::{Record, H_SIDE_OUTPUT};
use super::super::state::{KeyedState, PartitionState};
use crate::telemetry::names;

/// Side-output tag of a timed-out partial match.
pub const SIDE_TIMED_OUT: &str = "timed_out";
/// Side-output tag of a late record.
pub const SIDE_LATE: &str = "late";

/// What an output of side `side` of operator `operator` carries in its
/// `weir-side-output` header, so the task writes it to that side's topic.
pub fn side_tag(operator: &str, side: &str) -> String {
    format!("{operator}:{side}")
}

/// Keyed-state entry holding a partition's largest event time seen.
const META_MAX_SEEN: &[u8] = b"m";
/// Prefix of a key's entry (so no key can collide with the meta entry).
const KEY_PREFIX: u8 = b'k';

/// Counts and sizes of one CEP operator instance, over the partitions it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CepStats {
    pub matches: u64,
    pub timeouts: u64,
    pub late: u64,
    /// Partial matches dropped because a key was over its cap.
    pub dropped: u64,
    pub partial_matches: u64,
    pub buffered_events: u64,
}

/// Builds CEP operator instances from a checked rule.
pub struct CepFactory {
    id: String,
    rule: Arc<CheckedRule>,
    out_of_orderness_ms: i64,
    timed_out: bool,
    late: bool,
}

impl CepFactory {
    /// `rule` is the spec's rule text; `out_of_orderness_ms` the source's
    /// bound; `timed_out` and `late` say whether those side outputs have a topic.
    pub fn new(
        id: &str,
        rule: &str,
        out_of_orderness_ms: u64,
        timed_out: bool,
        late: bool,
    ) -> Result<Self, String> {
        let checked = crate::domain::cep_rule::parse(rule).map_err(|e| e.to_string())?;
        checked.compile().map_err(|p| p.to_string())?;
        Ok(Self {
            id: id.to_owned(),
            rule: Arc::new(checked),
            out_of_orderness_ms: i64::try_from(out_of_orderness_ms).unwrap_or(i64::MAX),
            timed_out,
            late,
        })
    }
}

impl OperatorFactory for CepFactory {
    fn instantiate(&self) -> Result<Box<dyn Operator>, OperatorError> {
        let nfa = self
            .rule
            .compile()
            .map_err(|p| OperatorError {
                operator: self.id.clone(),
                reason: p.to_string(),
            })?
            .with_timeout_output(self.timed_out);
        Ok(Box::new(CepOperator {
            id: self.id.clone(),
            label: format!("cep:{}", self.rule.name),
            rule: self.rule.clone(),
            nfa,
            out_of_orderness_ms: self.out_of_orderness_ms,
            tags: SideTags {
                timed_out: Bytes::from(side_tag(&self.id, SIDE_TIMED_OUT)),
                late: self
                    .late
                    .then(|| Bytes::from(side_tag(&self.id, SIDE_LATE))),
            },
            parts: HashMap::new(),
            out: Outputs::new(),
        }))
    }
}

/// The side-output headers of one operator (`late` only when it has a topic;
/// timed-out matches are produced only when theirs has one).
struct SideTags {
    timed_out: Bytes,
    late: Option<Bytes>,
}

/// One partition's matching: its keys and its own watermark.
struct PartitionCep {
    keys: KeyedEventTime<Bytes, Value>,
    max_seen: Option<i64>,
}

/// A CEP rule run over the partitions of one task.
pub struct CepOperator {
    id: String,
    label: String,
    rule: Arc<CheckedRule>,
    nfa: Nfa<Value>,
    out_of_orderness_ms: i64,
    tags: SideTags,
    parts: HashMap<i32, PartitionCep>,
    out: Outputs<Value>,
}

impl CepOperator {
    fn error(&self, reason: String) -> OperatorError {
        OperatorError {
            operator: self.id.clone(),
            reason,
        }
    }

    /// Counts and sizes over the partitions this instance holds.
    pub fn cep_stats(&self) -> CepStats {
        let mut s = CepStats::default();
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
}

/// A partition's matching as its checkpointed state left it.
fn restore(
    nfa: &Nfa<Value>,
    state: &KeyedState,
    out_of_orderness_ms: i64,
) -> Result<PartitionCep, String> {
    let mut keys = KeyedEventTime::new();
    let mut max_seen = None;
    for (k, v) in state.iter() {
        if k == META_MAX_SEEN {
            let bytes = <[u8; 8]>::try_from(v).map_err(|_| "malformed watermark entry")?;
            let m = i64::from_le_bytes(bytes);
            max_seen = Some(m);
            keys.restore_watermark(watermark(m, out_of_orderness_ms));
        } else if let Some(key) = k.strip_prefix(&[KEY_PREFIX]) {
            let st = EventTimeState::decode(nfa, &JsonCodec, v).map_err(|e| {
                format!(
                    "partial matches of key `{}`: {e}",
                    String::from_utf8_lossy(key)
                )
            })?;
            keys.restore(Bytes::copy_from_slice(key), st);
        }
    }
    Ok(PartitionCep { keys, max_seen })
}

/// The watermark after seeing `max_seen`: equal times are not late.
fn watermark(max_seen: i64, out_of_orderness_ms: i64) -> i64 {
    max_seen
        .saturating_sub(out_of_orderness_ms)
        .saturating_sub(1)
}

/// A key as match records name it: its text.
fn key_value(key: &Bytes) -> Value {
    Value::String(String::from_utf8_lossy(key).into_owned())
}

impl CepOperator {
    /// Moves everything `out` holds for `key` into `emitted` as records.
    fn drain(
        rule: &CheckedRule,
        tags: &SideTags,
        key: &Bytes,
        out: &mut Outputs<Value>,
        emitted: &mut Vec<Record>,
    ) {
        let kv = key_value(key);
        let record = |value: &Value, time: i64, side: Option<&Bytes>| Record {
            key: Some(key.clone()),
            value: Bytes::from(value.to_string()),
            timestamp_ms: time,
            headers: side
                .map(|s| vec![(H_SIDE_OUTPUT.to_owned(), s.clone())])
                .unwrap_or_default(),
        };
        for m in out.matches.drain(..) {
            let mut v = rule.match_record(&kv, &m, |_| None);
            set_times(&mut v, m.first_time, m.last_time);
            emitted.push(record(&v, m.last_time, None));
        }
        for t in out.timeouts.drain(..) {
            let mut v = rule.timeout_record(&kv, &t, |_| None);
            set_times(&mut v, t.first_time, t.last_time);
            emitted.push(record(&v, t.timeout_at, Some(&tags.timed_out)));
        }
        for l in out.late.drain(..) {
            if let Some(tag) = &tags.late {
                let v = serde_json::json!({
                    "rule": rule.name, "late": true, "key": kv,
                    "event": l.event, "event_time": l.timestamp,
                });
                emitted.push(record(&v, l.timestamp, Some(tag)));
            }
        }
    }
}

fn set_times(v: &mut Value, first: i64, last: i64) {
    if let Some(o) = v.as_object_mut() {
        o.insert("first_event_time".into(), first.into());
        o.insert("last_event_time".into(), last.into());
    }
}

impl Operator for CepOperator {
    fn process_batch(
        &mut self,
        records: &[Record],
        state: &mut PartitionState,
        ctx: BatchContext,
    ) -> Result<Vec<RecordResult>, OperatorError> {
        if !self.parts.contains_key(&ctx.partition) {
            let restored = restore(
                &self.nfa,
                state.operator(&self.id),
                self.out_of_orderness_ms,
            )
            .map_err(|e| {
                self.error(format!(
                    "state snapshot of partition {}: {e}",
                    ctx.partition
                ))
            })?;
            self.parts.insert(ctx.partition, restored);
        }
        let Some(part) = self.parts.get_mut(&ctx.partition) else {
            return Err(self.error("partition state lost".into()));
        };
        let mut results = Vec::with_capacity(records.len());
        for r in records {
            let Some(key) = r.key.clone() else {
                results.push(RecordResult::DeadLetter {
                    reason: "record has no key: a cep operator needs a key_by before it".into(),
                });
                continue;
            };
            let event: Value = match serde_json::from_slice(&r.value) {
                Ok(v) => v,
                Err(e) => {
                    results.push(RecordResult::DeadLetter {
                        reason: format!("value is not JSON: {e}"),
                    });
                    continue;
                }
            };
            let mut emitted = Vec::new();
            part.keys
                .push(key.clone(), event, r.timestamp_ms, &mut self.out);
            Self::drain(&self.rule, &self.tags, &key, &mut self.out, &mut emitted);
            let max = part
                .max_seen
                .map_or(r.timestamp_ms, |m| m.max(r.timestamp_ms));
            part.max_seen = Some(max);
            let (rule, tags) = (&self.rule, &self.tags);
            part.keys.advance_watermark_with(
                &self.nfa,
                watermark(max, self.out_of_orderness_ms),
                &mut self.out,
                |k, out| Self::drain(rule, tags, k, out, &mut emitted),
            );
            results.push(RecordResult::Emit(emitted));
        }
        Ok(results)
    }

    fn module(&self) -> &str {
        &self.label
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let s = self.cep_stats();
        vec![
            (names::CEP_MATCHES, s.matches),
            (names::CEP_TIMEOUTS, s.timeouts),
            (names::CEP_LATE, s.late),
            (names::CEP_DROPPED, s.dropped),
            (names::CEP_PARTIAL_MATCHES, s.partial_matches),
            (names::CEP_BUFFERED, s.buffered_events),
        ]
    }

    /// Writes every key with something pending, and the partition's largest
    /// time seen, in place of what the state held.
    fn save_state(
        &mut self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<(), OperatorError> {
        let Some(part) = self.parts.get(&partition) else {
            return Ok(());
        };
        let mut fresh = KeyedState::default();
        if let Some(m) = part.max_seen {
            fresh.put(META_MAX_SEEN.to_vec(), m.to_le_bytes().to_vec());
        }
        for (key, st) in part.keys.states() {
            let mut k = Vec::with_capacity(key.len() + 1);
            k.push(KEY_PREFIX);
            k.extend_from_slice(key);
            let mut v = Vec::new();
            st.encode(&self.nfa, &JsonCodec, &mut v);
            fresh.put(k, v);
        }
        *state.operator(&self.id) = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
