//! A vector with stable indices and a free list, so the hot path reuses
//! slots instead of allocating.

#[derive(Clone, Debug)]
enum Entry<T> {
    Full(T),
    /// A free slot; the next free one (or `NONE`).
    Free(u32),
}

/// Slot indices are `u32`; `NONE` marks "no slot".
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: u32,
    len: u32,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            entries: Vec::new(),
            free: NONE,
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn insert(&mut self, value: T) -> u32 {
        self.len += 1;
        if self.free != NONE {
            let i = self.free;
            let slot = &mut self.entries[i as usize];
            if let Entry::Free(next) = *slot {
                self.free = next;
            }
            *slot = Entry::Full(value);
            i
        } else {
            // Most keys hold one or two entries: start with room for two
            // (a plain push would make it four).
            if self.entries.capacity() == 0 {
                self.entries.reserve_exact(2);
            }
            self.entries.push(Entry::Full(value));
            (self.entries.len() - 1) as u32
        }
    }

    pub fn remove(&mut self, i: u32) -> Option<T> {
        let slot = self.entries.get_mut(i as usize)?;
        if matches!(slot, Entry::Free(_)) {
            return None;
        }
        let Entry::Full(v) = std::mem::replace(slot, Entry::Free(self.free)) else {
            return None;
        };
        self.free = i;
        self.len -= 1;
        if self.len == 0 {
            // An idle key gives its memory back.
            self.entries = Vec::new();
            self.free = NONE;
        }
        Some(v)
    }

    #[inline]
    pub fn get(&self, i: u32) -> Option<&T> {
        match self.entries.get(i as usize) {
            Some(Entry::Full(v)) => Some(v),
            _ => None,
        }
    }

    #[inline]
    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        match self.entries.get_mut(i as usize) {
            Some(Entry::Full(v)) => Some(v),
            _ => None,
        }
    }

    /// Reads the first entry (warming its cache line); 0 if none.
    #[inline]
    pub fn touch(&self) -> u64 {
        match self.entries.first() {
            Some(Entry::Free(n)) => u64::from(*n),
            Some(Entry::Full(_)) => 1,
            None => 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Live entries with their indices, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Full(v) => Some((i as u32, v)),
                Entry::Free(_) => None,
            })
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<T>>()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn indices_stay_put_and_memory_is_given_back() {
        let mut s: Slab<u64> = Slab::default();
        let (a, b, c) = (s.insert(10), s.insert(11), s.insert(12));
        assert!(s.heap_bytes() > 0);
        assert_eq!(
            (s.get(a), s.get(b), s.get(c)),
            (Some(&10), Some(&11), Some(&12))
        );
        // A freed number is given again; a stale one finds nothing.
        assert_eq!(s.remove(b), Some(11));
        assert_eq!(s.remove(b), None);
        assert_eq!(s.insert(13), b);
        let live: Vec<(u32, u64)> = s.iter().map(|(i, v)| (i, *v)).collect();
        assert_eq!(live, vec![(a, 10), (b, 13), (c, 12)]);
        // Emptied, it holds nothing on the heap again.
        for i in [a, b, c] {
            s.remove(i);
        }
        assert_eq!((s.len(), s.heap_bytes()), (0, 0));
        assert_eq!(s.insert(14), 0);
    }
}
