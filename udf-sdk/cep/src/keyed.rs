//! Many keys under one watermark: routes records to their key's
//! [`EventTimeState`] and, on a watermark, wakes only the keys with
//! something due (timers, as Flink's operator registers event-time timers),
//! dropping keys left with nothing.
//!
//! A key is numbered once, when first seen: its state lives in a slot of
//! that number and its timers carry the number, so a record costs one hash
//! of its key and a timer costs no copy of it.
//!
//! A timer superseded by an earlier one stays queued (a bucket cannot drop
//! one entry cheaply); the key remembers it as parked, and when the key
//! wants that time again (a record came, then its window's end is next
//! again) the parked entry serves: each record costs one timer, not two.

use std::borrow::Borrow;
use std::hash::Hash;

use crate::counters::Counters;
use crate::key_index::KeyIndex;
use crate::nfa::Nfa;
use crate::output::{Late, Outputs};
use crate::small_bytes::SameKey;
use crate::time_order::EventTimeState;
use crate::timers::{Entry, Timers};

/// At most this many keys due by a stretch's end are read ahead: a
/// watermark that jumps wakes many more than a stretch's records, and
/// reading all of them first would push each other out of cache.
const WARM_DUE: usize = 256;

/// An event that [`KeyedEventTime::warm`] can read ahead of use.
pub trait ReadAhead {
    /// Reads what letting go of the event reads first; returns anything.
    fn read_ahead(&self) -> u64;
}

impl<T> ReadAhead for std::sync::Arc<T> {
    /// The reference count, which a release changes.
    fn read_ahead(&self) -> u64 {
        std::sync::Arc::strong_count(self) as u64
    }
}

/// In declaration order (`repr(C)`): what a record touches first, so
/// queueing it reads one or two cache lines of a key's state.
#[repr(C)]
struct Slot<K, E> {
    /// First: finding the key compares it here (see `key_index`).
    key: K,
    /// The timer registered for this key (older entries are stale).
    timer: Option<i64>,
    /// A time with a stale entry of this key still queued, reusable.
    parked: Option<i64>,
    state: EventTimeState<E>,
    /// The key's sort prefix, which its timers carry.
    prefix: u64,
}

/// Event-time matching for every key of a stream.
pub struct KeyedEventTime<K, E> {
    ids: KeyIndex,
    slots: Vec<Option<Slot<K, E>>>,
    /// Numbers of dropped keys, given to the next new ones.
    free: Vec<u32>,
    timers: Timers,
    watermark: i64,
    /// Counts of keys dropped once idle.
    retired: Counters,
    /// A prefix of a key that orders like it (see [`KeyedEventTime::with_sort_prefix`]).
    prefix_of: fn(&K) -> u64,
    /// Keys that processed a record ahead of the watermark, and its time
    /// (see [`KeyedEventTime::push_ahead`]).
    ahead: Vec<(u32, i64)>,
}

impl<K, E> Default for KeyedEventTime<K, E> {
    fn default() -> Self {
        KeyedEventTime {
            ids: KeyIndex::default(),
            slots: Vec::new(),
            free: Vec::new(),
            timers: Timers::default(),
            watermark: i64::MIN,
            retired: Counters::default(),
            prefix_of: |_| 0,
            ahead: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Ord + Clone, E: Clone> KeyedEventTime<K, E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys due at the same time wake in key order; `prefix` gives a
    /// number per key such that `prefix(a) < prefix(b)` implies `a < b`
    /// (e.g. the first bytes, big endian), so ordering them compares
    /// numbers and reads a key only when two prefixes tie. Without it,
    /// every comparison reads both keys.
    pub fn with_sort_prefix(prefix: fn(&K) -> u64) -> Self {
        KeyedEventTime {
            prefix_of: prefix,
            ..Self::default()
        }
    }

    /// Takes a record for `key`; one at or behind the watermark goes to
    /// `out.late`.
    pub fn push(&mut self, key: K, event: E, timestamp: i64, out: &mut Outputs<E>) {
        self.push_borrowed(&key, event, timestamp, out, |k| k.clone());
    }

    /// [`push`](Self::push) with the key borrowed: `owned` makes the owned
    /// key only for a key not held yet, so a known key costs no copy.
    pub fn push_borrowed<Q>(
        &mut self,
        key: &Q,
        event: E,
        timestamp: i64,
        out: &mut Outputs<E>,
        owned: impl FnOnce(&Q) -> K,
    ) where
        K: Borrow<Q> + SameKey<Q>,
        Q: Hash + ?Sized,
    {
        if timestamp <= self.watermark {
            self.retired.late += 1;
            out.late.push(Late { event, timestamp });
            return;
        }
        let id = self.find_or_insert(key, owned);
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        slot.state.push(event, timestamp, out);
        register(&mut self.timers, id, slot);
    }

    /// [`push_borrowed`](Self::push_borrowed) for a caller that moves the
    /// watermark to `next` right after (as a runner does, record by
    /// record): a record nothing can come before (at `next + 1`: the
    /// input is in order) at a key with nothing waiting or due by then is
    /// processed at once, its outputs held until the watermark passes it
    /// (see [`EventTimeState::process_ahead`]). What comes out, and when,
    /// is the same as with `push_borrowed`.
    #[allow(clippy::too_many_arguments)]
    pub fn push_ahead<Q>(
        &mut self,
        nfa: &Nfa<E>,
        key: &Q,
        event: E,
        timestamp: i64,
        next: i64,
        out: &mut Outputs<E>,
        owned: impl FnOnce(&Q) -> K,
    ) where
        K: Borrow<Q> + SameKey<Q>,
        Q: Hash + ?Sized,
    {
        let next = next.max(self.watermark);
        if timestamp <= self.watermark || timestamp != next.saturating_add(1) {
            return self.push_borrowed(key, event, timestamp, out, owned);
        }
        let hash = self.ids.hash(key);
        let Some(id) = self.find(hash, key) else {
            return self.push_new_ahead(nfa, (key, hash), event, timestamp, out, owned);
        };
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let state = &mut slot.state;
        if !state.pending.is_empty() || state.next_timer().is_some_and(|t| t <= next) {
            state.push(event, timestamp, out);
        } else {
            state.process_ahead(nfa, event, timestamp, out);
            if state.is_idle() {
                return self.drop_key(id);
            }
            self.ahead.push((id, timestamp));
        }
        register(&mut self.timers, id, slot);
    }

    /// [`push_ahead`](Self::push_ahead) at a key not held: the record is
    /// processed on a fresh state, held only if something of it remains.
    /// Most such records start nothing (they are taken by no step): the
    /// start state's conditions say so before any state is made, and the
    /// key is neither held nor dropped: no slot written and read back, no
    /// second hash to unlist it.
    fn push_new_ahead<Q>(
        &mut self,
        nfa: &Nfa<E>,
        (key, hash): (&Q, u64),
        event: E,
        timestamp: i64,
        out: &mut Outputs<E>,
        owned: impl FnOnce(&Q) -> K,
    ) where
        K: Borrow<Q>,
        Q: ?Sized,
    {
        // Most such records are taken by no step: nothing to do. One that
        // is has its start conditions tested again by the step (a new
        // event to the memo): one test more for a quarter of them, against
        // a state made and run for all of them.
        if !nfa.may_start(&event, &mut out.scratch) {
            return;
        }
        let mut state = EventTimeState::starting_at(self.watermark);
        state.process_ahead(nfa, event, timestamp, out);
        if state.is_idle() {
            // Numbering is unchanged: held and dropped, the key would have
            // taken the number on top of the free list (or the next one)
            // and put it back there, for the next new key to take.
            self.retired += state.counters();
            return;
        }
        let id = self.insert(owned(key), hash, state);
        self.ahead.push((id, timestamp));
        if let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
            register(&mut self.timers, id, slot);
        }
    }

    /// Reads ahead, changing nothing, the memory that records of `keys`
    /// (about to be pushed, in this order) will read first: their entries
    /// in the key table, their keys' slots and the first entries of their
    /// buffers; and the same of the keys whose timers come due by a
    /// watermark of `due_by` (their windows close while those records run,
    /// and their state was last read a window ago). Loads issued back to
    /// back overlap their cache misses; a record, or a timer, then finds
    /// its key's state in cache instead of waiting for each miss in turn.
    ///
    /// Read for about [`READ_AHEAD`](crate::runner::READ_AHEAD) records at
    /// a time, it pays both natively and under WASM. Kept out of line:
    /// inlined into the rule component's record loop, it made that one
    /// large function spill more registers under WASM (Cranelift) than the
    /// call costs.
    #[inline(never)]
    pub fn warm<'q, Q>(
        &self,
        keys: impl Iterator<Item = &'q Q>,
        due_by: i64,
        scratch: &mut Vec<u64>,
    ) where
        Q: Hash + ?Sized + 'q,
        E: ReadAhead,
    {
        // One pass per level of pointers (table entry, slot, buffer): the
        // loads within a pass do not wait on each other, so their misses
        // overlap; a pass needs the level the one before brought in.
        scratch.clear();
        scratch.extend(keys.map(|k| self.ids.hash(k)));
        let mut acc = 0u64;
        for &hash in scratch.iter() {
            acc ^= self.ids.touch(hash);
        }
        // The hashes become the keys' likely numbers (u64::MAX: none).
        for entry in scratch.iter_mut() {
            *entry = self.ids.guess(*entry).map_or(u64::MAX, u64::from);
        }
        let keyed = scratch.len();
        let due = self.timers.due_by(due_by).take(WARM_DUE);
        scratch.extend(due.map(|e| u64::from(e.id)));
        let held = |id: &u64| self.slots.get(*id as usize).and_then(Option::as_ref);
        for slot in scratch.iter().filter_map(held) {
            let st = &slot.state;
            acc ^= slot.prefix
                ^ st.watermark as u64
                ^ st.key.deadline as u64
                ^ st.key.partials.len() as u64
                ^ st.key.next_seq
                ^ st.ahead as u64;
        }
        for slot in scratch.iter().filter_map(held) {
            let b = &slot.state.key.buffer;
            acc ^= b.events.touch() ^ b.nodes.touch();
        }
        // A key woken by its timer lets go of what it held: each event is
        // released (and, the last hold gone, freed).
        for slot in scratch[keyed..].iter().filter_map(held) {
            for (_, held) in slot.state.key.buffer.events.iter() {
                acc ^= held.event.read_ahead();
            }
        }
        std::hint::black_box(acc);
    }

    /// The number of the key with `hash`, if held.
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q> + SameKey<Q>,
        Q: ?Sized,
    {
        let slots = &self.slots;
        self.ids.find(hash, |id| {
            slots
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.key.same_key(key))
        })
    }

    /// The number of `key`, numbering it if new.
    fn find_or_insert<Q>(&mut self, key: &Q, owned: impl FnOnce(&Q) -> K) -> u32
    where
        K: Borrow<Q> + SameKey<Q>,
        Q: Hash + ?Sized,
    {
        let hash = self.ids.hash(key);
        match self.find(hash, key) {
            Some(id) => id,
            None => {
                let state = EventTimeState::starting_at(self.watermark);
                self.insert(owned(key), hash, state)
            }
        }
    }

    /// Forgets an idle key, keeping its counts.
    fn drop_key(&mut self, id: u32) {
        if let Some(gone) = self.slots.get_mut(id as usize).and_then(Option::take) {
            self.retired += gone.state.counters();
            self.ids.remove(self.ids.hash(&gone.key), id);
            self.free.push(id);
        }
    }

    /// Moves the watermark: keys with a record or a window due are advanced
    /// (in timer order); the others are not touched.
    pub fn advance_watermark(&mut self, nfa: &Nfa<E>, watermark: i64, out: &mut Outputs<E>) {
        self.advance_watermark_with(nfa, watermark, out, |_, _| {});
    }

    /// [`advance_watermark`](Self::advance_watermark), calling `each` with
    /// every key advanced, right after it, so a caller can take that key's
    /// outputs out of `out` and know whose they are.
    pub fn advance_watermark_with(
        &mut self,
        nfa: &Nfa<E>,
        watermark: i64,
        out: &mut Outputs<E>,
        mut each: impl FnMut(&K, &mut Outputs<E>),
    ) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        self.place_ahead(watermark);
        while let Some((at, mut ids)) = self.timers.pop_due(watermark) {
            // Keys due at the same time wake in key order, as they would
            // from a queue ordered by (time, key).
            if ids.len() > 1 {
                let slots = &self.slots;
                let key_of = |id: u32| {
                    slots
                        .get(id as usize)
                        .and_then(|s| s.as_ref().map(|s| &s.key))
                };
                ids.sort_unstable_by(|a, b| {
                    a.prefix
                        .cmp(&b.prefix)
                        .then_with(|| key_of(a.id).cmp(&key_of(b.id)))
                });
            }
            for &e in &ids {
                self.wake(nfa, e, at, watermark, out, &mut each);
            }
            self.timers.recycle(ids);
        }
    }

    /// A key that processed a record at `t` ahead of the watermark wakes
    /// where that record would have woken it, at `t`, if anything of it
    /// is due by `watermark` (held outputs, or a window closing): it then
    /// comes out in the order it would have had. Otherwise it needs no
    /// waking for that record at all.
    fn place_ahead(&mut self, watermark: i64) {
        let mut ahead = std::mem::take(&mut self.ahead);
        ahead.retain(|&(id, t)| {
            if t > watermark {
                return true;
            }
            if let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
                if slot.state.ahead == t {
                    if slot.state.next_timer().is_some_and(|n| n <= watermark) {
                        // Cleared when it wakes.
                        if slot.timer != Some(t) {
                            register_at(&mut self.timers, id, slot, t);
                        }
                    } else {
                        slot.state.ahead = i64::MIN;
                    }
                }
            }
            false
        });
        self.ahead = ahead;
    }

    /// Advances the entry's key if its timer is the one due at `at`.
    fn wake(
        &mut self,
        nfa: &Nfa<E>,
        Entry { id, prefix }: Entry,
        at: i64,
        watermark: i64,
        out: &mut Outputs<E>,
        each: &mut impl FnMut(&K, &mut Outputs<E>),
    ) {
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        // An entry left by a dropped key whose number this key now has
        // was sorted by that key's prefix: only the key's own entries wake
        // it, so it wakes where its key sorts.
        if slot.prefix != prefix {
            return;
        }
        if slot.parked == Some(at) {
            slot.parked = None;
        }
        if slot.timer != Some(at) {
            return;
        }
        slot.timer = None;
        // Records processed ahead change a key's state without waking it,
        // so its timer may be earlier than anything it has due: it then
        // wakes where that is, as it would have, unless a record ahead at
        // `at` places it here (`place_ahead`).
        let due = slot.state.next_timer().is_some_and(|t| t <= at);
        let ahead = slot.state.ahead == at;
        if slot.state.ahead <= at {
            slot.state.ahead = i64::MIN;
        }
        if !due && !ahead {
            match slot.state.next_timer() {
                // Later in this same move: its own bucket is still ahead.
                Some(t) if t <= watermark => register_at(&mut self.timers, id, slot, t),
                _ => register(&mut self.timers, id, slot),
            }
            return;
        }
        slot.state.advance_watermark(nfa, watermark, out);
        each(&slot.key, out);
        if slot.state.is_idle() {
            self.drop_key(id);
        } else {
            register(&mut self.timers, id, slot);
        }
    }

    /// Holds `state` for a key not held yet, under a free number.
    fn insert(&mut self, key: K, hash: u64, state: EventTimeState<E>) -> u32 {
        let slot = Slot {
            prefix: (self.prefix_of)(&key),
            key,
            state,
            timer: None,
            parked: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.ids.insert(hash, id);
        id
    }

    /// The watermark (`i64::MIN` before any).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    fn held(&self) -> impl Iterator<Item = &Slot<K, E>> {
        self.slots.iter().flatten()
    }

    /// Counts over all keys, dropped ones and late records included.
    pub fn counters(&self) -> Counters {
        let mut total = self.retired;
        for slot in self.held() {
            total += slot.state.counters();
        }
        total
    }

    /// Keys holding state.
    pub fn key_count(&self) -> usize {
        self.ids.len()
    }

    /// Partial matches alive over all keys.
    pub fn partial_matches(&self) -> usize {
        self.held().map(|s| s.state.partial_matches()).sum()
    }

    /// Events held over all keys.
    pub fn buffered_events(&self) -> usize {
        self.held().map(|s| s.state.buffered_events()).sum()
    }

    /// Each key's state, for checkpointing key by key.
    pub fn states(&self) -> impl Iterator<Item = (&K, &EventTimeState<E>)> {
        self.held().map(|s| (&s.key, &s.state))
    }

    /// Puts back a restored stream's watermark (never moving it back): keys
    /// with nothing pending are not checkpointed, so theirs alone would not
    /// carry it.
    pub fn restore_watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Puts back a key's restored state (and its timer); a key already held
    /// keeps what it holds.
    pub fn restore(&mut self, key: K, state: EventTimeState<E>) {
        if state.watermark > self.watermark {
            self.watermark = state.watermark;
        }
        let hash = self.ids.hash(&key);
        let slots = &self.slots;
        let found = self.ids.find(hash, |id| {
            slots
                .get(id as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.key == key)
        });
        let id = match found {
            Some(id) => id,
            None => self.insert(key, hash, state),
        };
        if let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) {
            if slot.state.ahead > self.watermark {
                self.ahead.push((id, slot.state.ahead));
            }
            register(&mut self.timers, id, slot);
        }
    }
}

/// Queues the key's next timer if it is earlier than the one queued; the
/// entry of the one it supersedes stays queued, parked for reuse.
fn register<K, E>(timers: &mut Timers, id: u32, slot: &mut Slot<K, E>) {
    let Some(t) = slot.state.next_timer() else {
        return;
    };
    register_at(timers, id, slot, timers.clamp(t));
}

/// Queues a timer at `t` (not handed out yet) for the key if it is
/// earlier than the one queued.
fn register_at<K, E>(timers: &mut Timers, id: u32, slot: &mut Slot<K, E>, t: i64) {
    if slot.timer.is_some_and(|queued| queued <= t) {
        return;
    }
    let superseded = slot.timer.take();
    if slot.parked == Some(t) {
        slot.parked = superseded;
    } else {
        let entry = Entry {
            prefix: slot.prefix,
            id,
        };
        timers.add_exact(t, entry);
        if superseded.is_some() {
            slot.parked = superseded;
        }
    }
    slot.timer = Some(t);
}
