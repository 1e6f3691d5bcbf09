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
        self.as_slice() == other.as_slice()
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
}
