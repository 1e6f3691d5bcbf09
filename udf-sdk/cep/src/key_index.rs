//! Key → number, for many keys: an open-addressing table of numbers alone
//! (8 bytes a key, with a 32-bit hash tag), the key itself compared where
//! it already lives, in the key's slot.
//!
//! A `HashMap<K, u32>` kept a copy of every key beside its number: with
//! 100,000 keys its entries spanned megabytes, and finding a key cost a
//! cache miss there before the one on the key's state. Here the table is
//! a quarter of the size and the key is read from the state, which the
//! record reads next anyway. Hashing is foldhash under a secret seed
//! drawn from std's `RandomState` (the OS's randomness, WASI's in a
//! component), so keys from outside cannot simply be chosen to collide;
//! for a key of a few bytes it is several times cheaper than std's
//! SipHash (and natively a record's key is hashed twice: see
//! `KeyedEventTime::warm`).

use std::hash::{BuildHasher, Hash, RandomState};

use foldhash::fast::FixedState;

pub(crate) struct KeyIndex {
    /// `tag << 32 | (number + 1)`; 0 is empty. A key sits at or after its
    /// home `tag & mask`, with no empty entry in between (linear probing).
    table: Vec<u64>,
    len: usize,
    hasher: FixedState,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            table: Vec::new(),
            len: 0,
            hasher: FixedState::with_seed(RandomState::new().hash_one(0x5eed_u64)),
        }
    }
}

fn tag(hash: u64) -> u64 {
    hash & 0xffff_ffff
}

impl KeyIndex {
    /// The hash `find`, `insert` and `remove` take for `key`.
    pub fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.table.len().wrapping_sub(1)
    }

    /// The number of the key with `hash` that `is_key` accepts.
    #[inline(always)]
    pub fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.mask();
        let t = tag(hash);
        let mut i = t as usize & mask;
        loop {
            let e = self.table[i];
            if e == 0 {
                return None;
            }
            if e >> 32 == t {
                let id = (e & 0xffff_ffff) as u32 - 1;
                if is_key(id) {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The number in the first entry at or after `hash`'s home whose tag
    /// is `hash`'s, if any: a guess at the key's number (the key is not
    /// compared), for reading ahead what a record will touch.
    #[inline]
    pub fn guess(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// Reads the entry at `hash`'s home (warming the cache line).
    #[inline]
    pub fn touch(&self, hash: u64) -> u64 {
        self.table
            .get(tag(hash) as usize & self.mask())
            .copied()
            .unwrap_or(0)
    }

    /// Adds a key not held yet.
    pub fn insert(&mut self, hash: u64, id: u32) {
        // At most 5/8 full: probes stay short.
        if (self.len + 1) * 8 > self.table.len() * 5 {
            self.grow();
        }
        self.place(tag(hash) << 32 | (u64::from(id) + 1));
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut i = (entry >> 32) as usize & mask;
        while self.table[i] != 0 {
            i = (i + 1) & mask;
        }
        self.table[i] = entry;
    }

    fn grow(&mut self) {
        let size = (self.table.len() * 2).max(16);
        let old = std::mem::replace(&mut self.table, vec![0; size]);
        for e in old.into_iter().filter(|e| *e != 0) {
            self.place(e);
        }
    }

    /// Removes key number `id`, whose hash is `hash`.
    pub fn remove(&mut self, hash: u64, id: u32) {
        if self.table.is_empty() {
            return;
        }
        let mask = self.mask();
        let want = tag(hash) << 32 | (u64::from(id) + 1);
        let mut i = tag(hash) as usize & mask;
        loop {
            match self.table[i] {
                0 => return,
                e if e == want => break,
                _ => i = (i + 1) & mask,
            }
        }
        self.len -= 1;
        // Shift later entries of the run back, so none is cut off from
        // its home by the hole.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let e = self.table[j];
            if e == 0 {
                break;
            }
            let home = (e >> 32) as usize & mask;
            // Movable unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.table[hole] = e;
                hole = j;
            }
        }
        self.table[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::KeyIndex;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_map_through_inserts_and_removes() {
        let mut index = KeyIndex::default();
        let mut keys: Vec<Option<u64>> = Vec::new();
        let mut map: HashMap<u64, u32> = HashMap::new();
        let mut x: u64 = 7;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 3_000;
            let h = index.hash(&key);
            let found = index.find(h, |id| keys[id as usize] == Some(key));
            assert_eq!(found, map.get(&key).copied(), "step {step}");
            match found {
                Some(id) if x & 1 == 0 => {
                    index.remove(h, id);
                    keys[id as usize] = None;
                    map.remove(&key);
                }
                Some(_) => {}
                None => {
                    let id = keys.len() as u32;
                    keys.push(Some(key));
                    index.insert(h, id);
                    map.insert(key, id);
                }
            }
            assert_eq!(index.len(), map.len());
        }
        // Tags that collide: equal hashes, told apart by the key.
        let mut small = KeyIndex::default();
        for id in 0..40 {
            small.insert(5, id);
        }
        small.remove(5, 17);
        for id in 0..40 {
            let want = (id != 17).then_some(id);
            assert_eq!(small.find(5, |i| i == id), want);
        }
    }
}
