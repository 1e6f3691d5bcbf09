//! A list that keeps its first few items inside its owner: most keys hold
//! one or two partial matches, and reading them should not cost a trip to
//! a separate heap block.

use std::ops::{Deref, DerefMut};

#[derive(Clone, Debug)]
pub(crate) struct SmallList<T: Copy + Default, const N: usize> {
    /// Items in `inline` while there are at most `N` (then `heap` is empty).
    len: usize,
    inline: [T; N],
    /// All items once there are more than `N`.
    heap: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Default for SmallList<T, N> {
    fn default() -> Self {
        SmallList {
            len: 0,
            inline: [T::default(); N],
            heap: Vec::new(),
        }
    }
}

impl<T: Copy + Default, const N: usize> Deref for SmallList<T, N> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

impl<T: Copy + Default, const N: usize> DerefMut for SmallList<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }
}

impl<T: Copy + Default, const N: usize> SmallList<T, N> {
    /// Replaces the items with `items`.
    pub fn set(&mut self, items: &[T]) {
        if items.len() <= N {
            // All `N` written (`N` is small): a copy of a length known only
            // at run time is a call out under WASM.
            self.inline = std::array::from_fn(|i| items.get(i).copied().unwrap_or_default());
            self.len = items.len();
            self.heap = Vec::new();
        } else {
            self.heap.clear();
            self.heap.extend_from_slice(items);
        }
    }

    /// Keeps the first `n` items.
    pub fn truncate(&mut self, n: usize) {
        if self.heap.is_empty() {
            self.len = self.len.min(n);
        } else {
            self.heap.truncate(n);
            self.settle();
        }
    }

    /// Removes the first `n` items.
    pub fn remove_front(&mut self, n: usize) {
        if self.heap.is_empty() {
            let n = n.min(self.len);
            self.inline.copy_within(n..self.len, 0);
            self.len -= n;
        } else {
            self.heap.drain(..n.min(self.heap.len()));
            self.settle();
        }
    }

    /// Keeps the items `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let items = self.deref_mut();
        let mut w = 0;
        for r in 0..items.len() {
            if keep(&items[r]) {
                items[w] = items[r];
                w += 1;
            }
        }
        self.truncate(w);
    }

    pub fn heap_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<T>()
    }

    /// Moves a list that has shrunk back inline.
    fn settle(&mut self) {
        if self.heap.len() <= N {
            let n = self.heap.len();
            self.inline[..n].copy_from_slice(&self.heap);
            self.len = n;
            self.heap = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SmallList;

    #[test]
    fn spills_and_settles() {
        let mut l: SmallList<u32, 2> = SmallList::default();
        l.set(&[1, 2]);
        assert_eq!(&*l, &[1, 2]);
        assert_eq!(l.heap_bytes(), 0);
        l.set(&[1, 2, 3, 4]);
        assert_eq!(&*l, &[1, 2, 3, 4]);
        l.retain(|x| x % 2 == 0);
        assert_eq!(&*l, &[2, 4]);
        assert_eq!(l.heap_bytes(), 0);
        l.set(&[5, 6, 7]);
        l.remove_front(2);
        assert_eq!(&*l, &[7]);
        l.remove_front(1);
        assert!(l.is_empty());
        l.set(&[1, 2]);
        l.truncate(1);
        assert_eq!(&*l, &[1]);
    }
}
