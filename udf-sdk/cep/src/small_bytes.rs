//! Bytes held inline when short: a record key (so comparing one in the key
//! table or a timer bucket reads no second cache line) and an event's text
//! (so a small event is one allocation, not two).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// Bytes, inline up to `N` (at most 255).
#[derive(Clone)]
pub enum SmallBytes<const N: usize> {
    Inline { len: u8, bytes: [u8; N] },
    Heap(Box<[u8]>),
}

/// A record key: up to 22 bytes inline, 24 bytes in all (as a `Vec`).
pub type KeyBytes = SmallBytes<22>;

impl<const N: usize> SmallBytes<N> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            SmallBytes::Heap(b) => b,
        }
    }

    /// Whether `len` bytes are held inline (the length must fit a `u8`).
    fn fits_inline(len: usize) -> bool {
        len <= N.min(usize::from(u8::MAX))
    }

    /// Makes these bytes `src`, in place when both are short.
    pub fn set(&mut self, src: &[u8]) {
        match self {
            SmallBytes::Inline { len, bytes } if Self::fits_inline(src.len()) => {
                bytes[..src.len()].copy_from_slice(src);
                *len = src.len() as u8;
            }
            _ => *self = SmallBytes::from(src),
        }
    }

    /// The first 8 bytes as a big-endian number (zero-padded): a smaller
    /// prefix means smaller bytes, so sorting compares numbers first.
    pub fn sort_prefix(&self) -> u64 {
        let mut first = [0u8; 8];
        let s = self.as_slice();
        let n = s.len().min(8);
        first[..n].copy_from_slice(&s[..n]);
        u64::from_be_bytes(first)
    }
}

impl<const N: usize> From<&[u8]> for SmallBytes<N> {
    fn from(key: &[u8]) -> Self {
        if Self::fits_inline(key.len()) {
            let mut bytes = [0; N];
            bytes[..key.len()].copy_from_slice(key);
            SmallBytes::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            SmallBytes::Heap(key.into())
        }
    }
}

impl<const N: usize> Borrow<[u8]> for SmallBytes<N> {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

// Hash, equality and order are the bytes', as `Borrow` requires.
impl<const N: usize> Hash for SmallBytes<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<const N: usize> PartialEq for SmallBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        same_bytes(self.as_slice(), other.as_slice())
    }
}

impl<const N: usize> Eq for SmallBytes<N> {}

impl<const N: usize> PartialOrd for SmallBytes<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for SmallBytes<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl<const N: usize> std::fmt::Debug for SmallBytes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

/// Whether a held key is the key a record names (what finding a key's
/// state compares): `K == Q` for any key type, and for held bytes against
/// a record's, [`same_bytes`].
pub trait SameKey<Q: ?Sized> {
    fn same_key(&self, key: &Q) -> bool;
}

impl<T: Eq + ?Sized> SameKey<T> for T {
    fn same_key(&self, key: &T) -> bool {
        self == key
    }
}

impl<const N: usize> SameKey<[u8]> for SmallBytes<N> {
    #[inline]
    fn same_key(&self, key: &[u8]) -> bool {
        same_bytes(self.as_slice(), key)
    }
}

/// `a == b`, a word at a time: a slice comparison calls `memcmp`, which
/// under WASM is a byte loop (about 190 instructions for a 7-byte key,
/// where this takes a few dozen).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n < 4 {
        // 0–3 bytes: the first, middle and last cover them all.
        return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    }
    if n < 8 {
        // Two words of four, overlapping when shorter than eight.
        return word4(&a[..4]) == word4(&b[..4]) && word4(&a[n - 4..]) == word4(&b[n - 4..]);
    }
    // Words of eight, then the last eight (overlapping the one before).
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    if !(&mut x).zip(&mut y).all(|(p, q)| word8(p) == word8(q)) {
        return false;
    }
    x.remainder().is_empty() || word8(&a[n - 8..]) == word8(&b[n - 8..])
}

/// The first four bytes of `s` as a number (`s` has at least four).
#[inline]
fn word4(s: &[u8]) -> u32 {
    s.first_chunk().map_or(0, |w| u32::from_le_bytes(*w))
}

/// The first eight bytes of `s` as a number (`s` has at least eight).
#[inline]
fn word8(s: &[u8]) -> u64 {
    s.first_chunk().map_or(0, |w| u64::from_le_bytes(*w))
}

#[cfg(test)]
mod tests {
    use super::KeyBytes;
    use std::collections::HashMap;

    #[test]
    fn short_and_long_keys_are_their_bytes() {
        let long = [7u8; 40];
        let keys: [&[u8]; 4] = [b"", b"u000123", &[1; 22], &long];
        let mut map = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            map.insert(KeyBytes::from(*k), i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(map.get(*k), Some(&i));
            assert_eq!(KeyBytes::from(*k).as_slice(), *k);
        }
        assert!(KeyBytes::from(&b"a"[..]) < KeyBytes::from(&b"ab"[..]));
        // Set in place or not, bytes are what was set last.
        let mut b = KeyBytes::from(&b"abc"[..]);
        for k in [&b"x"[..], &long, b"", &[9; 22], b"yz"] {
            b.set(k);
            assert_eq!(b.as_slice(), k);
        }
        assert!(KeyBytes::from(&long[..]) > KeyBytes::from(&[1; 22][..]));
    }

    #[test]
    fn a_smaller_sort_prefix_is_a_smaller_key() {
        let keys: [&[u8]; 7] = [b"", b"\0", b"a", b"a\0", b"ab", b"abcdefgh", b"abcdefgh\0z"];
        for a in keys {
            for b in keys {
                let (a, b) = (KeyBytes::from(a), KeyBytes::from(b));
                if a.sort_prefix() < b.sort_prefix() {
                    assert!(a < b, "{a:?} < {b:?}");
                }
            }
        }
    }

    #[test]
    fn same_bytes_answers_as_slice_equality() {
        use super::{same_bytes, SameKey};
        let mut rng = fastrand::Rng::with_seed(7);
        // Every length up to 40, equal and differing in each one byte.
        for n in 0..40 {
            let a: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            assert!(same_bytes(&a, &a.clone()));
            assert!(KeyBytes::from(&a[..]).same_key(&a[..]));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1 << rng.u8(..8);
                assert!(!same_bytes(&a, &b), "{a:?} {b:?}");
                assert!(!KeyBytes::from(&a[..]).same_key(&b[..]));
            }
            // A prefix is not the same bytes.
            if n > 0 {
                assert!(!same_bytes(&a, &a[..n - 1]));
            }
        }
        // Random pairs over few byte values, so many are equal.
        for _ in 0..20_000 {
            let n = rng.usize(..20);
            let a: Vec<u8> = (0..n).map(|_| rng.u8(..2)).collect();
            let b: Vec<u8> = (0..rng.usize(n.saturating_sub(1)..=n))
                .map(|_| rng.u8(..2))
                .collect();
            assert_eq!(same_bytes(&a, &b), a == b, "{a:?} {b:?}");
        }
    }
}
