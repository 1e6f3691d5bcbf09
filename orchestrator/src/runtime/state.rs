//! Keyed state, owned by the host and kept per source partition, so that a
//! partition's state moves with it on rescale and any operator (native or
//! WASM) gets checkpoints and restores for free.
//!
//! The snapshot format is a small length-prefixed binary encoding, versioned
//! by its first byte, so snapshots stay readable across Weir versions.

use std::collections::BTreeMap;

/// Key → value bytes for one operator in one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedState {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KeyedState {
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.entries.insert(key, value);
    }
    pub fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.remove(key)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

/// All operators' keyed state for one source partition, by operator id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionState {
    pub operators: BTreeMap<String, KeyedState>,
}

/// A snapshot that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state snapshot is corrupt: {0}")]
pub struct SnapshotError(pub String);

const FORMAT_V1: u8 = 1;

impl PartitionState {
    /// The state of operator `id`, created empty on first use.
    pub fn operator(&mut self, id: &str) -> &mut KeyedState {
        if !self.operators.contains_key(id) {
            self.operators.insert(id.to_owned(), KeyedState::default());
        }
        // The entry exists: inserted just above if it was missing.
        self.operators.get_mut(id).unwrap_or_else(|| unreachable!())
    }

    /// Encodes the state: `1` then, per operator, `id`, entry count and
    /// `(key, value)` pairs, all lengths as u32 little-endian.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V1];
        put_u32(&mut out, self.operators.len());
        for (id, st) in &self.operators {
            put_bytes(&mut out, id.as_bytes());
            put_u32(&mut out, st.entries.len());
            for (k, v) in &st.entries {
                put_bytes(&mut out, k);
                put_bytes(&mut out, v);
            }
        }
        out
    }

    /// Decodes what [`snapshot`](Self::snapshot) wrote. An empty slice is empty state.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.take(1)?[0];
        if version != FORMAT_V1 {
            return Err(SnapshotError(format!("unknown format version {version}")));
        }
        let mut state = PartitionState::default();
        for _ in 0..r.u32()? {
            let id = String::from_utf8(r.bytes()?.to_vec())
                .map_err(|_| SnapshotError("operator id is not UTF-8".into()))?;
            let mut ks = KeyedState::default();
            for _ in 0..r.u32()? {
                let k = r.bytes()?.to_vec();
                let v = r.bytes()?.to_vec();
                ks.entries.insert(k, v);
            }
            state.operators.insert(id, ks);
        }
        if r.pos != bytes.len() {
            return Err(SnapshotError("trailing bytes".into()));
        }
        Ok(state)
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| SnapshotError(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<usize, SnapshotError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.u32()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip() {
        let mut s = PartitionState::default();
        s.operator("count")
            .put(b"alice".to_vec(), 3u64.to_le_bytes().to_vec());
        s.operator("count").put(b"bob".to_vec(), vec![]);
        s.operator("other");
        let bytes = s.snapshot();
        assert_eq!(PartitionState::restore(&bytes).unwrap(), s);
        assert_eq!(
            PartitionState::restore(&[]).unwrap(),
            PartitionState::default()
        );
    }

    #[test]
    fn corrupt_snapshots_are_rejected_not_panicked_on() {
        let mut s = PartitionState::default();
        s.operator("count").put(b"k".to_vec(), b"v".to_vec());
        let bytes = s.snapshot();
        for cut in 1..bytes.len() {
            assert!(PartitionState::restore(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(PartitionState::restore(&[9]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(PartitionState::restore(&extra).is_err());
    }
}
