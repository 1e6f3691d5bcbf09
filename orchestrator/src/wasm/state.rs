//! Keyed state and timers, owned by the host.
//!
//! The stream runtime keeps one [`KeyedState`] per partition task, passes it
//! to every call, snapshots it into checkpoints and restores it after a crash
//! or a rescale. UDF instances never own state: a trap or a fresh instance
//! loses nothing.
//!
//! A call's writes are buffered in a [`CallTxn`] and committed only when the
//! call succeeds, and only for the records whose status is not an error, so a
//! failed record (or a failed, bisected call) leaves no trace.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weir_udf_sdk::abi::{Reader, Writer, DOMAIN_EVENT, DOMAIN_PROCESSING};

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeDomain {
    /// Fires when the watermark reaches it.
    EventTime,
    /// Fires when the host clock reaches it.
    ProcessingTime,
}

impl TimeDomain {
    pub(crate) fn byte(self) -> u8 {
        match self {
            TimeDomain::EventTime => DOMAIN_EVENT,
            TimeDomain::ProcessingTime => DOMAIN_PROCESSING,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            DOMAIN_EVENT => Some(TimeDomain::EventTime),
            DOMAIN_PROCESSING => Some(TimeDomain::ProcessingTime),
            _ => None,
        }
    }
}

/// A timer that is due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FiredTimer {
    pub domain: TimeDomain,
    pub at: i64,
    pub key: Vec<u8>,
}

/// A snapshot that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("keyed state snapshot is corrupt: {0}")]
pub struct StateError(String);

type Values = BTreeMap<Vec<u8>, BTreeMap<String, Vec<u8>>>;

/// Host-owned keyed state: values per (operator, key, name), and timers per
/// (operator, key, domain, time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedState {
    values: BTreeMap<String, Values>,
    /// (operator, domain, at, key): ordered so due timers are a range scan.
    timers: BTreeSet<(String, TimeDomain, i64, Vec<u8>)>,
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"WKS1";

impl KeyedState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, operator: &str, key: &[u8], name: &str) -> Option<&[u8]> {
        self.values
            .get(operator)?
            .get(key)?
            .get(name)
            .map(Vec::as_slice)
    }

    pub fn put(&mut self, operator: &str, key: &[u8], name: &str, value: Vec<u8>) {
        self.values
            .entry(operator.to_owned())
            .or_default()
            .entry(key.to_vec())
            .or_default()
            .insert(name.to_owned(), value);
    }

    pub fn delete(&mut self, operator: &str, key: &[u8], name: &str) {
        let Some(keys) = self.values.get_mut(operator) else {
            return;
        };
        if let Some(names) = keys.get_mut(key) {
            names.remove(name);
            if names.is_empty() {
                keys.remove(key);
            }
        }
        if keys.is_empty() {
            self.values.remove(operator);
        }
    }

    /// Number of (operator, key, name) values.
    pub fn len(&self) -> usize {
        self.values
            .values()
            .flat_map(|k| k.values())
            .map(BTreeMap::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.timers.is_empty()
    }

    pub fn register_timer(&mut self, operator: &str, key: &[u8], domain: TimeDomain, at: i64) {
        self.timers
            .insert((operator.to_owned(), domain, at, key.to_vec()));
    }

    pub fn delete_timer(&mut self, operator: &str, key: &[u8], domain: TimeDomain, at: i64) {
        self.timers
            .remove(&(operator.to_owned(), domain, at, key.to_vec()));
    }

    /// The earliest event-time timer of `operator` not yet fired.
    pub fn next_event_timer(&self, operator: &str) -> Option<i64> {
        let lo = (
            operator.to_owned(),
            TimeDomain::EventTime,
            i64::MIN,
            Vec::new(),
        );
        self.timers
            .range(lo..)
            .next()
            .filter(|t| t.0 == operator && t.1 == TimeDomain::EventTime)
            .map(|t| t.2)
    }

    /// Timers of `operator` registered and not yet fired.
    pub fn pending_timers(&self, operator: &str) -> Vec<FiredTimer> {
        self.timers
            .iter()
            .filter(|t| t.0 == operator)
            .map(|(_, domain, at, key)| FiredTimer {
                domain: *domain,
                at: *at,
                key: key.clone(),
            })
            .collect()
    }

    /// Removes and returns `operator`'s timers due at `watermark` (event time)
    /// and `now` (processing time), oldest first. They are handed to
    /// `UdfInstance::on_timer`; a timer fires once.
    pub fn take_due_timers(
        &mut self,
        operator: &str,
        watermark: Option<i64>,
        now: i64,
    ) -> Vec<FiredTimer> {
        let mut due = Vec::new();
        for (domain, upto) in [
            (TimeDomain::EventTime, watermark),
            (TimeDomain::ProcessingTime, Some(now)),
        ] {
            let Some(upto) = upto else { continue };
            let lo = (operator.to_owned(), domain, i64::MIN, Vec::new());
            let hits: Vec<_> = self
                .timers
                .range(lo..)
                .take_while(|t| t.0 == operator && t.1 == domain && t.2 <= upto)
                .cloned()
                .collect();
            for t in hits {
                self.timers.remove(&t);
                due.push(FiredTimer {
                    domain: t.1,
                    at: t.2,
                    key: t.3,
                });
            }
        }
        due.sort_by_key(|t| t.at);
        due
    }

    /// A self-describing binary snapshot (sorted, so equal states give equal bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.buf.extend_from_slice(SNAPSHOT_MAGIC);
        w.u32(self.len() as u32);
        for (op, keys) in &self.values {
            for (key, names) in keys {
                for (name, value) in names {
                    w.bytes32(op.as_bytes());
                    w.bytes32(key);
                    w.bytes32(name.as_bytes());
                    w.bytes32(value);
                }
            }
        }
        w.u32(self.timers.len() as u32);
        for (op, domain, at, key) in &self.timers {
            w.bytes32(op.as_bytes());
            w.u8(domain.byte());
            w.i64(*at);
            w.bytes32(key);
        }
        w.buf
    }

    /// Rebuilds state from [`KeyedState::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, StateError> {
        let bad = |e: weir_udf_sdk::abi::AbiError| StateError(e.to_string());
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| StateError("name is not UTF-8".into()))
        };
        let mut r = Reader::new(bytes);
        if r.bytes(4).map_err(bad)? != SNAPSHOT_MAGIC {
            return Err(StateError("wrong magic".into()));
        }
        let mut s = KeyedState::new();
        for _ in 0..r.u32().map_err(bad)? {
            let op = text(r.bytes32().map_err(bad)?)?;
            let key = r.bytes32().map_err(bad)?;
            let name = text(r.bytes32().map_err(bad)?)?;
            let value = r.bytes32().map_err(bad)?.to_vec();
            s.put(&op, key, &name, value);
        }
        for _ in 0..r.u32().map_err(bad)? {
            let op = text(r.bytes32().map_err(bad)?)?;
            let domain = TimeDomain::from_byte(r.u8().map_err(bad)?)
                .ok_or_else(|| StateError("unknown time domain".into()))?;
            let at = r.i64().map_err(bad)?;
            let key = r.bytes32().map_err(bad)?;
            s.register_timer(&op, key, domain, at);
        }
        if !r.is_empty() {
            return Err(StateError("trailing bytes".into()));
        }
        Ok(s)
    }
}

/// One buffered write: which record made it and what it set.
type Write = (u32, Option<Vec<u8>>);

/// A call's buffered state and timer writes, tagged with the record (cursor)
/// that made them.
#[derive(Debug, Default)]
pub(crate) struct CallTxn {
    writes: HashMap<(Vec<u8>, String), Vec<Write>>,
    timers: Vec<(u32, bool, Vec<u8>, TimeDomain, i64)>,
}

impl CallTxn {
    pub(crate) fn clear(&mut self) {
        self.writes.clear();
        self.timers.clear();
    }

    /// Reads through the buffer: a call sees its own writes.
    pub(crate) fn get(
        &self,
        base: &KeyedState,
        operator: &str,
        key: &[u8],
        name: &str,
    ) -> Option<Vec<u8>> {
        // Allocation-free lookups would need a borrowed tuple key; state reads
        // are per stateful record, so one small allocation is acceptable.
        if let Some(ws) = self.writes.get(&(key.to_vec(), name.to_owned())) {
            if let Some((_, v)) = ws.last() {
                return v.clone();
            }
        }
        base.get(operator, key, name).map(<[u8]>::to_vec)
    }

    pub(crate) fn put(&mut self, cursor: u32, key: &[u8], name: &str, value: Option<Vec<u8>>) {
        self.writes
            .entry((key.to_vec(), name.to_owned()))
            .or_default()
            .push((cursor, value));
    }

    pub(crate) fn timer(
        &mut self,
        cursor: u32,
        register: bool,
        key: &[u8],
        domain: TimeDomain,
        at: i64,
    ) {
        self.timers
            .push((cursor, register, key.to_vec(), domain, at));
    }

    /// The first record at which an event-time timer registered in this call
    /// comes due, when that is before the call's last record: the first
    /// record at or after the registering one whose watermark (`marks`, one
    /// per record, never decreasing) reaches the timer.
    pub(crate) fn first_due(&self, marks: &[Option<i64>]) -> Option<usize> {
        self.timers
            .iter()
            .filter(|t| t.1 && t.3 == TimeDomain::EventTime)
            .filter_map(|&(cursor, _, _, _, at)| {
                let from = (cursor as usize).min(marks.len());
                let k = from + marks[from..].partition_point(|w| w.is_none_or(|w| w < at));
                (k < marks.len()).then_some(k)
            })
            .min()
            .filter(|&k| k + 1 < marks.len())
    }

    /// Whether the record at `cursor` wrote state or touched timers.
    pub(crate) fn wrote(&self, cursor: u32) -> bool {
        self.writes
            .values()
            .any(|ws| ws.iter().any(|(c, _)| *c == cursor))
            || self.timers.iter().any(|t| t.0 == cursor)
    }

    /// Applies the writes of every record not in `failed`, in call order.
    pub(crate) fn commit(&mut self, state: &mut KeyedState, operator: &str, failed: &[u32]) {
        for ((key, name), ws) in self.writes.drain() {
            if let Some((_, v)) = ws.into_iter().rev().find(|(c, _)| !failed.contains(c)) {
                match v {
                    Some(v) => state.put(operator, &key, &name, v),
                    None => state.delete(operator, &key, &name),
                }
            }
        }
        for (cursor, register, key, domain, at) in self.timers.drain(..) {
            if failed.contains(&cursor) {
                continue;
            }
            if register {
                state.register_timer(operator, &key, domain, at);
            } else {
                state.delete_timer(operator, &key, domain, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_rejects_garbage() {
        let mut s = KeyedState::new();
        s.put("op1", b"k1", "count", vec![1, 0, 0, 0]);
        s.put("op1", b"", "x", vec![]);
        s.put("op2", b"k1", "count", vec![9]);
        s.register_timer("op1", b"k1", TimeDomain::EventTime, 1000);
        s.register_timer("op1", b"k2", TimeDomain::ProcessingTime, 5);
        let bytes = s.snapshot();
        let back = KeyedState::restore(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.snapshot(), bytes);
        assert!(KeyedState::restore(b"nope").is_err());
        assert!(KeyedState::restore(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn due_timers_fire_once_per_domain_and_operator() {
        let mut s = KeyedState::new();
        s.register_timer("a", b"k", TimeDomain::EventTime, 10);
        s.register_timer("a", b"k", TimeDomain::EventTime, 10);
        s.register_timer("a", b"k", TimeDomain::EventTime, 30);
        s.register_timer("a", b"k", TimeDomain::ProcessingTime, 5);
        s.register_timer("b", b"k", TimeDomain::EventTime, 1);
        let due = s.take_due_timers("a", Some(20), 0);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].domain, due[0].at), (TimeDomain::EventTime, 10));
        assert!(s.take_due_timers("a", Some(20), 0).is_empty());
        let due = s.take_due_timers("a", None, 100);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].domain, TimeDomain::ProcessingTime);
        assert_eq!(s.pending_timers("b").len(), 1);
    }

    #[test]
    fn failed_records_leave_no_writes() {
        let base = KeyedState::new();
        let mut t = CallTxn::default();
        t.put(0, b"k", "n", Some(vec![1]));
        t.put(1, b"k", "n", Some(vec![2]));
        t.timer(1, true, b"k", TimeDomain::EventTime, 7);
        assert_eq!(t.get(&base, "op", b"k", "n"), Some(vec![2]));
        let mut state = base.clone();
        t.commit(&mut state, "op", &[1]);
        assert_eq!(state.get("op", b"k", "n"), Some(&[1u8][..]));
        assert!(state.pending_timers("op").is_empty());
    }
}
