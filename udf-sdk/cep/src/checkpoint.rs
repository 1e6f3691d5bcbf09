//! Per-key state to bytes and back, so a restored key continues matching as
//! if it had never stopped.
//!
//! Format (little endian, integers as LEB128 varints, signed ones zigzagged):
//! `"WCEP"`, version byte, kind byte (0 key state, 1 event-time state), the
//! NFA fingerprint (8 bytes), next arrival number, the four counters, then
//! the live events (timestamp, arrival, length-prefixed codec bytes), the
//! nodes (event index, step, previous node + 1 or 0), the partial matches
//! and the held complete matches (state, last node + 1, start timestamp,
//! start arrival, previous timestamp); an event-time state adds its
//! watermark and waiting records. Reference counts are not stored: decoding
//! recounts them, and refuses anything inconsistent instead of panicking
//! (nodes nothing holds, which older engines left behind, are freed).
//!
//! Version 2, written only for an event-time state that processed a record
//! ahead of the watermark not yet passed, adds after the waiting records
//! that record's time, then 0, or 1 and its held outputs: the time they are
//! due, the matches (first and last time, then per step its index and its
//! events) and the timed-out partial matches (the same, then the time they
//! timed out). Everything else is written as version 1, which this code
//! still reads.

use crate::buffer::SharedBuffer;
use crate::counters::Counters;
use crate::nfa::graph::Kind;
use crate::nfa::Nfa;
use crate::output::Partial;
use crate::output::{Match, TimedOut};
use crate::skip::EventKey;
use crate::slab::NONE;
use crate::small_list::SmallList;
use crate::state::KeyState;
use crate::time_order::{EventTimeState, Held};
use crate::waiting::Waiting;

const MAGIC: &[u8; 4] = b"WCEP";
/// Bumped whenever the layout changes.
pub const FORMAT_VERSION: u8 = 2;
/// The layout without held outputs, still written when there are none.
const VERSION_1: u8 = 1;
const KIND_KEY: u8 = 0;
const KIND_EVENT_TIME: u8 = 1;

/// Turns events into bytes and back, for checkpoints.
pub trait EventCodec<E> {
    fn encode(&self, event: &E, out: &mut Vec<u8>);
    fn decode(&self, bytes: &[u8]) -> std::result::Result<E, String>;
}

/// JSON events as their compact JSON text.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl EventCodec<serde_json::Value> for JsonCodec {
    fn encode(&self, event: &serde_json::Value, out: &mut Vec<u8>) {
        // Writing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(out, event);
    }

    fn decode(&self, bytes: &[u8]) -> std::result::Result<serde_json::Value, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Byte-string events as themselves.
#[derive(Clone, Copy, Debug, Default)]
pub struct BytesCodec;

impl EventCodec<Vec<u8>> for BytesCodec {
    fn encode(&self, event: &Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(event);
    }

    fn decode(&self, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

/// Why bytes could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a CEP checkpoint (bad magic)")]
    BadMagic,
    #[error("unsupported checkpoint version {0}")]
    Version(u8),
    #[error("checkpoint holds a different kind of state")]
    WrongKind,
    #[error("checkpoint was written by a different pattern")]
    PatternMismatch,
    #[error("checkpoint truncated")]
    Truncated,
    #[error("checkpoint has {0} trailing bytes")]
    Trailing(usize),
    #[error("checkpoint malformed: {0}")]
    Malformed(&'static str),
    #[error("event does not decode: {0}")]
    Event(String),
}

type Result<T> = std::result::Result<T, CheckpointError>;

impl<E> KeyState<E> {
    /// Appends this state's checkpoint to `out`.
    pub fn encode(&self, nfa: &Nfa<E>, codec: &dyn EventCodec<E>, out: &mut Vec<u8>) {
        header(nfa, VERSION_1, KIND_KEY, out);
        self.encode_body(codec, out);
    }

    /// Restores a state written by [`KeyState::encode`] for the same pattern.
    pub fn decode(nfa: &Nfa<E>, codec: &dyn EventCodec<E>, bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        read_header(nfa, KIND_KEY, &mut r)?;
        let state = Self::decode_body(nfa, codec, &mut r)?;
        r.finish()?;
        Ok(state)
    }

    fn encode_body(&self, codec: &dyn EventCodec<E>, out: &mut Vec<u8>) {
        put_u(out, self.next_seq);
        let c = &self.counters;
        for v in [c.matches, c.timeouts, c.late, c.dropped] {
            put_u(out, v);
        }
        // Events in stream order and nodes in the order of their events: a
        // node's predecessor always comes first, which decoding checks.
        let buffer = &self.buffer;
        let mut events: Vec<(u32, &EventKey)> =
            buffer.events.iter().map(|(i, e)| (i, &e.key)).collect();
        events.sort_by_key(|&(i, k)| (*k, i));
        let mut event_index = vec![0u64; slots_len(events.iter().map(|e| e.0))];
        put_u(out, events.len() as u64);
        let mut bytes = Vec::new();
        for (new, &(slot, key)) in events.iter().enumerate() {
            event_index[slot as usize] = new as u64;
            put_i(out, key.ts);
            put_u(out, key.seq);
            bytes.clear();
            if let Some(e) = buffer.event(slot) {
                codec.encode(&e.event, &mut bytes);
            }
            put_u(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        let mut nodes: Vec<(u32, u64)> = buffer
            .nodes
            .iter()
            .map(|(i, n)| (i, event_index.get(n.event as usize).copied().unwrap_or(0)))
            .collect();
        nodes.sort_by_key(|&(i, ev)| (ev, i));
        let mut node_index = vec![0u64; slots_len(nodes.iter().map(|n| n.0))];
        put_u(out, nodes.len() as u64);
        for (new, &(slot, ev)) in nodes.iter().enumerate() {
            node_index[slot as usize] = new as u64 + 1;
            let Some(n) = buffer.nodes.get(slot) else {
                continue;
            };
            put_u(out, ev);
            put_u(out, u64::from(n.step));
            put_u(out, link(&node_index, n.prev));
        }
        for list in [&self.partials[..], &self.completed[..]] {
            put_u(out, list.len() as u64);
            for p in list {
                put_u(out, u64::from(p.state));
                put_u(out, link(&node_index, p.last));
                put_i(out, p.start.ts);
                put_u(out, p.start.seq);
                put_i(out, p.prev_ts);
            }
        }
    }

    fn decode_body(nfa: &Nfa<E>, codec: &dyn EventCodec<E>, r: &mut Reader<'_>) -> Result<Self> {
        let next_seq = r.u()?;
        let counters = Counters {
            matches: r.u()?,
            timeouts: r.u()?,
            late: r.u()?,
            dropped: r.u()?,
        };
        let mut buffer = SharedBuffer::default();
        let n_events = r.count()?;
        for _ in 0..n_events {
            let ts = r.i()?;
            let seq = r.u()?;
            let len = r.count()?;
            let event = codec.decode(r.take(len)?).map_err(CheckpointError::Event)?;
            buffer.add_event(event, EventKey { ts, seq });
        }
        let n_nodes = r.count()?;
        for i in 0..n_nodes {
            let event = r.index(n_events, "node event out of range")?;
            let step = r.u()?;
            if step >= nfa.names.len() as u64 {
                return Err(CheckpointError::Malformed("node step out of range"));
            }
            let prev = r.link(i, "node predecessor out of order")?;
            buffer.add_node(event, step as u16, prev);
        }
        let mut lists = [Vec::new(), Vec::new()];
        for (which, list) in lists.iter_mut().enumerate() {
            let n = r.count()?;
            for _ in 0..n {
                let state = r.index(nfa.graph.states.len(), "state out of range")?;
                let last = r.link(n_nodes, "partial match node out of range")?;
                let start = EventKey {
                    ts: r.i()?,
                    seq: r.u()?,
                };
                let prev_ts = r.i()?;
                let kind = nfa.graph.kind(state);
                let fits = if which == 0 {
                    matches!(kind, Kind::Normal | Kind::Pending)
                } else {
                    kind == Kind::Final
                };
                if !fits || last == NONE {
                    return Err(CheckpointError::Malformed(
                        "partial match in an impossible state",
                    ));
                }
                buffer.retain(last);
                list.push(Partial {
                    state,
                    last,
                    start,
                    prev_ts,
                });
            }
        }
        // A node nothing holds was left behind by the engine before a
        // branch that reached a stop state released the nodes its other
        // children took (a loop step and a negated step taking the same
        // event): its snapshots still hold them. Free them, and what only
        // they held, as that engine should have.
        let orphans: Vec<u32> = buffer
            .nodes
            .iter()
            .filter(|(_, n)| n.refs == 0)
            .map(|(i, _)| i)
            .collect();
        for node in orphans {
            buffer.release(node);
        }
        if buffer.events.iter().any(|(_, e)| e.refs == 0) {
            return Err(CheckpointError::Malformed("unreferenced event"));
        }
        let [partials, completed] = lists;
        let deadline = nfa.deadline(&partials);
        let mut list = SmallList::default();
        list.set(&partials);
        Ok(KeyState {
            buffer,
            partials: list,
            completed,
            next_seq,
            counters,
            deadline,
        })
    }
}

impl<E> EventTimeState<E> {
    /// Appends this state's checkpoint (matching state, watermark, waiting
    /// records) to `out`.
    pub fn encode(&self, nfa: &Nfa<E>, codec: &dyn EventCodec<E>, out: &mut Vec<u8>) {
        let version = if self.held.is_some() || self.ahead != i64::MIN {
            FORMAT_VERSION
        } else {
            VERSION_1
        };
        header(nfa, version, KIND_EVENT_TIME, out);
        self.key.encode_body(codec, out);
        put_i(out, self.watermark);
        put_u(out, self.pending.len() as u64);
        let mut bytes = Vec::new();
        for (ts, event) in self.pending.iter() {
            put_i(out, *ts);
            bytes.clear();
            codec.encode(event, &mut bytes);
            put_u(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        if version == VERSION_1 {
            return;
        }
        put_i(out, self.ahead);
        put_u(out, u64::from(self.held.is_some()));
        if let Some(held) = &self.held {
            put_i(out, held.due);
            put_u(out, held.matches.len() as u64);
            for m in &held.matches {
                put_i(out, m.first_time);
                put_i(out, m.last_time);
                encode_steps(nfa, codec, &m.steps, out);
            }
            put_u(out, held.timeouts.len() as u64);
            for t in &held.timeouts {
                put_i(out, t.first_time);
                put_i(out, t.last_time);
                encode_steps(nfa, codec, &t.steps, out);
                put_i(out, t.timeout_at);
            }
        }
    }

    /// Restores a state written by [`EventTimeState::encode`].
    pub fn decode(nfa: &Nfa<E>, codec: &dyn EventCodec<E>, bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let version = read_header(nfa, KIND_EVENT_TIME, &mut r)?;
        let key = KeyState::decode_body(nfa, codec, &mut r)?;
        let watermark = r.i()?;
        let n = r.count()?;
        let mut pending = Waiting::default();
        let mut last = i64::MIN;
        for _ in 0..n {
            let ts = r.i()?;
            if ts < last || ts <= watermark {
                return Err(CheckpointError::Malformed("waiting records out of order"));
            }
            last = ts;
            let len = r.count()?;
            let event = codec.decode(r.take(len)?).map_err(CheckpointError::Event)?;
            pending.insert(ts, event);
        }
        let ahead = if version >= 2 { r.i()? } else { i64::MIN };
        let held = if version >= 2 && r.byte()? == 1 {
            let due = r.i()?;
            if due <= watermark {
                return Err(CheckpointError::Malformed("held outputs already due"));
            }
            let mut held = Held {
                due,
                matches: Vec::new(),
                timeouts: Vec::new(),
            };
            for _ in 0..r.count()? {
                let (first_time, last_time) = (r.i()?, r.i()?);
                let steps = decode_steps(nfa, codec, &mut r)?;
                held.matches.push(Match {
                    steps,
                    first_time,
                    last_time,
                });
            }
            for _ in 0..r.count()? {
                let (first_time, last_time) = (r.i()?, r.i()?);
                let steps = decode_steps(nfa, codec, &mut r)?;
                held.timeouts.push(TimedOut {
                    steps,
                    first_time,
                    last_time,
                    timeout_at: r.i()?,
                });
            }
            Some(Box::new(held))
        } else {
            None
        };
        r.finish()?;
        Ok(EventTimeState {
            key,
            pending,
            watermark,
            held,
            ahead,
        })
    }
}

/// A held output's events, step by step: the step's index, its events.
fn encode_steps<E>(
    nfa: &Nfa<E>,
    codec: &dyn EventCodec<E>,
    steps: &[(std::sync::Arc<str>, Vec<E>)],
    out: &mut Vec<u8>,
) {
    put_u(out, steps.len() as u64);
    let mut bytes = Vec::new();
    for (name, events) in steps {
        let index = nfa.names.iter().position(|n| n == name).unwrap_or(0);
        put_u(out, index as u64);
        put_u(out, events.len() as u64);
        for e in events {
            bytes.clear();
            codec.encode(e, &mut bytes);
            put_u(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
    }
}

type Steps<E> = Vec<(std::sync::Arc<str>, Vec<E>)>;

fn decode_steps<E>(
    nfa: &Nfa<E>,
    codec: &dyn EventCodec<E>,
    r: &mut Reader<'_>,
) -> Result<Steps<E>> {
    let mut steps = Vec::new();
    for _ in 0..r.count()? {
        let i = r.index(nfa.names.len(), "held output step out of range")?;
        let name = nfa.names[i as usize].clone();
        let mut events = Vec::new();
        for _ in 0..r.count()? {
            let len = r.count()?;
            events.push(codec.decode(r.take(len)?).map_err(CheckpointError::Event)?);
        }
        steps.push((name, events));
    }
    Ok(steps)
}

fn header<E>(nfa: &Nfa<E>, version: u8, kind: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(kind);
    out.extend_from_slice(&nfa.fingerprint.to_le_bytes());
}

/// Checks the header; returns the version.
fn read_header<E>(nfa: &Nfa<E>, kind: u8, r: &mut Reader<'_>) -> Result<u8> {
    if r.take(4).map_err(|_| CheckpointError::BadMagic)? != MAGIC {
        return Err(CheckpointError::BadMagic);
    }
    let version = r.byte()?;
    // A key state never holds outputs: only version 1.
    if !(version == VERSION_1 || version == FORMAT_VERSION && kind == KIND_EVENT_TIME) {
        return Err(CheckpointError::Version(version));
    }
    if r.byte()? != kind {
        return Err(CheckpointError::WrongKind);
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(r.take(8)?);
    if u64::from_le_bytes(fp) != nfa.fingerprint {
        return Err(CheckpointError::PatternMismatch);
    }
    Ok(version)
}

fn slots_len(slots: impl Iterator<Item = u32>) -> usize {
    slots.max().map_or(0, |m| m as usize + 1)
}

/// A node reference as stored: its new index + 1, or 0 for none.
fn link(index: &[u64], slot: u32) -> u64 {
    if slot == NONE {
        0
    } else {
        index.get(slot as usize).copied().unwrap_or(0)
    }
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, ((v << 1) ^ (v >> 63)) as u64);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self.bytes.get(self.pos).ok_or(CheckpointError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(CheckpointError::Truncated)?;
        let s = self
            .bytes
            .get(self.pos..end)
            .ok_or(CheckpointError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CheckpointError::Malformed("varint overflow"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CheckpointError::Malformed("varint too long"))
    }

    fn i(&mut self) -> Result<i64> {
        let u = self.u()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A length or count: never more than the bytes left, so bad input
    /// cannot make us allocate much.
    fn count(&mut self) -> Result<usize> {
        let n = self.u()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(CheckpointError::Truncated);
        }
        Ok(n as usize)
    }

    fn index(&mut self, len: usize, what: &'static str) -> Result<u32> {
        let i = self.u()?;
        if i >= len as u64 {
            return Err(CheckpointError::Malformed(what));
        }
        Ok(i as u32)
    }

    /// A stored node reference (index + 1, or 0) below `bound`.
    fn link(&mut self, bound: usize, what: &'static str) -> Result<u32> {
        match self.u()? {
            0 => Ok(NONE),
            i if i <= bound as u64 => Ok((i - 1) as u32),
            _ => Err(CheckpointError::Malformed(what)),
        }
    }

    fn finish(&self) -> Result<()> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            n => Err(CheckpointError::Trailing(n)),
        }
    }
}
