//! The indexed input batch (`WRB2`): a fixed-size entry per record, then the
//! records' bytes. A guest reaches record `i` in O(1) and reads only the
//! fields it uses, with no per-record parsing; the host writes each entry in
//! one copy. Guests that declare [`INDEXED_TAG`] get this format; all others
//! get the packed `WRB1` batch. Layout: `docs/udf-abi.md`.

use super::{AbiError, BatchClock, Reader, RecordView, Writer, NO_TOPIC, NULL_LEN};

/// Magic of an indexed input batch.
pub const INDEXED_INPUT_MAGIC: [u8; 4] = *b"WRB2";
/// Bytes of one record's entry.
pub const ENTRY_BYTES: usize = 40;
/// Build-metadata identifier in a guest's `sdk-version` (`0.1.0+wrb2`) that
/// says the guest reads indexed batches.
pub const INDEXED_TAG: &str = "wrb2";
/// Magic, count, watermark, processing time, heap length.
const HEADER: usize = 28;

/// The input batch layouts a guest can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// `WRB1`: records one after another; every guest reads it.
    #[default]
    Packed,
    /// `WRB2`: fixed-size entries, then the bytes.
    Indexed,
}

impl InputFormat {
    /// The best format a guest reporting `sdk_version` reads: `Indexed` when
    /// its build metadata (after `+`) lists [`INDEXED_TAG`].
    pub fn for_sdk_version(sdk_version: &str) -> Self {
        match sdk_version.split_once('+') {
            Some((_, meta)) if meta.split('.').any(|t| t == INDEXED_TAG) => Self::Indexed,
            _ => Self::Packed,
        }
    }
}

/// `None` and empty slices both take no heap bytes; `None` is [`NULL_LEN`].
#[inline]
fn len_of(b: Option<&[u8]>) -> (u32, usize) {
    match b {
        None => (NULL_LEN, 0),
        Some(b) => {
            let n = b.len().min((NULL_LEN - 1) as usize);
            (n as u32, n)
        }
    }
}

/// Encodes an indexed input batch. The host's side.
#[derive(Debug, Default)]
pub struct IndexedInputWriter {
    w: Writer,
    topics: Vec<String>,
    /// Entry slots reserved in front of the heap.
    slots: usize,
    /// Records written.
    count: usize,
    /// Where the heap starts in `buf`.
    heap_at: usize,
}

impl IndexedInputWriter {
    /// Starts a batch of (about) `records` records whose key, value and
    /// header bytes add up to about `heap_bytes`. Keeps allocations.
    pub fn reset(&mut self, clock: BatchClock, records: usize, heap_bytes: usize) {
        self.w.buf.clear();
        self.topics.clear();
        self.count = 0;
        self.slots = records;
        self.w
            .buf
            .reserve(HEADER + records * ENTRY_BYTES + heap_bytes + 64);
        self.w.buf.extend_from_slice(&INDEXED_INPUT_MAGIC);
        self.w.buf.extend_from_slice(&0u32.to_le_bytes());
        self.w.buf.extend_from_slice(&clock.watermark.to_le_bytes());
        self.w
            .buf
            .extend_from_slice(&clock.processing_time.to_le_bytes());
        self.w.buf.extend_from_slice(&0u32.to_le_bytes());
        self.w.buf.resize(HEADER + records * ENTRY_BYTES, 0);
        self.heap_at = self.w.buf.len();
    }

    /// The index of `topic` in this batch's topic table, added if new
    /// ([`NO_TOPIC`] once the table is full).
    pub fn topic_index(&mut self, topic: &str) -> u16 {
        if let Some(i) = self.topics.iter().position(|t| t == topic) {
            return i as u16;
        }
        if self.topics.len() >= (NO_TOPIC - 1) as usize {
            return NO_TOPIC;
        }
        self.topics.push(topic.to_owned());
        (self.topics.len() - 1) as u16
    }

    /// Appends one record. `topic` is an index from
    /// [`IndexedInputWriter::topic_index`] or [`NO_TOPIC`].
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn push<'h>(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        topic: u16,
        partition: i32,
        offset: i64,
        headers: impl ExactSizeIterator<Item = (&'h str, &'h [u8])>,
    ) {
        if self.count == self.slots {
            self.grow();
        }
        let topic = if (topic as usize) < self.topics.len() {
            topic
        } else {
            NO_TOPIC
        };
        let at = (self.w.buf.len() - self.heap_at) as u32;
        let (klen, kn) = len_of(key);
        let (vlen, vn) = len_of(value);
        let n_headers = headers.len().min(u16::MAX as usize);
        self.w.buf.reserve(kn + vn);
        if let Some(k) = key {
            self.w.buf.extend_from_slice(&k[..kn]);
        }
        if let Some(v) = value {
            self.w.buf.extend_from_slice(&v[..vn]);
        }
        let headers_start = self.w.buf.len();
        for (name, v) in headers.take(n_headers) {
            self.w.str16(name);
            self.w.bytes32(v);
        }
        let hlen = (self.w.buf.len() - headers_start) as u32;
        let mut e = [0u8; ENTRY_BYTES];
        e[0..8].copy_from_slice(&timestamp.to_le_bytes());
        e[8..16].copy_from_slice(&offset.to_le_bytes());
        e[16..20].copy_from_slice(&partition.to_le_bytes());
        e[20..22].copy_from_slice(&topic.to_le_bytes());
        e[22..24].copy_from_slice(&(n_headers as u16).to_le_bytes());
        e[24..28].copy_from_slice(&at.to_le_bytes());
        e[28..32].copy_from_slice(&klen.to_le_bytes());
        e[32..36].copy_from_slice(&vlen.to_le_bytes());
        e[36..40].copy_from_slice(&hlen.to_le_bytes());
        let slot = HEADER + self.count * ENTRY_BYTES;
        self.w.buf[slot..slot + ENTRY_BYTES].copy_from_slice(&e);
        self.count += 1;
    }

    /// More records than announced: room for as many again, in front of the heap.
    #[cold]
    fn grow(&mut self) {
        let more = self.slots.max(8);
        let zeros = std::iter::repeat_n(0u8, more * ENTRY_BYTES);
        self.w.buf.splice(self.heap_at..self.heap_at, zeros);
        self.heap_at += more * ENTRY_BYTES;
        self.slots += more;
    }

    /// Finishes the batch; the slice is valid until the next `reset`.
    pub fn finish(&mut self) -> &[u8] {
        if self.count < self.slots {
            let used = HEADER + self.count * ENTRY_BYTES;
            self.w.buf.drain(used..self.heap_at);
            self.heap_at = used;
            self.slots = self.count;
        }
        let heap_len = (self.w.buf.len() - self.heap_at) as u32;
        self.w.buf[4..8].copy_from_slice(&(self.count as u32).to_le_bytes());
        self.w.buf[24..28].copy_from_slice(&heap_len.to_le_bytes());
        self.w.u16(self.topics.len() as u16);
        for t in &self.topics {
            self.w.str16(t);
        }
        &self.w.buf
    }

    /// Takes the finished batch's buffer (to share it without a copy).
    pub fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.w.buf)
    }

    /// Returns a buffer taken by [`IndexedInputWriter::take_buffer`] for reuse.
    pub fn restore_buffer(&mut self, buf: Vec<u8>) {
        if buf.capacity() > self.w.buf.capacity() {
            self.w.buf = buf;
        }
    }
}

/// A decoded, validated indexed batch: record `i` in O(1). The guest's side
/// (and the host's, to find a cursor's key).
#[derive(Debug, Clone)]
pub struct IndexedInput<'a> {
    pub clock: BatchClock,
    pub count: u32,
    entries: &'a [u8],
    heap: &'a [u8],
    topics: Vec<&'a str>,
}

/// One entry's fields.
struct Entry {
    timestamp: i64,
    offset: i64,
    partition: i32,
    topic: u16,
    n_headers: u16,
    at: usize,
    klen: u32,
    vlen: u32,
    hlen: usize,
}

#[inline]
fn entry(e: &[u8; ENTRY_BYTES]) -> Entry {
    let u32_at = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
    let i64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&e[i..i + 8]);
        i64::from_le_bytes(b)
    };
    Entry {
        timestamp: i64_at(0),
        offset: i64_at(8),
        partition: u32_at(16) as i32,
        topic: u16::from_le_bytes([e[20], e[21]]),
        n_headers: u16::from_le_bytes([e[22], e[23]]),
        at: u32_at(24) as usize,
        klen: u32_at(28),
        vlen: u32_at(32),
        hlen: u32_at(36) as usize,
    }
}

/// Heap bytes of a nullable field.
#[inline]
fn span(len: u32) -> usize {
    if len == NULL_LEN {
        0
    } else {
        len as usize
    }
}

impl<'a> IndexedInput<'a> {
    /// Reads the batch and checks every entry against the heap and the topic
    /// table, so [`IndexedInput::record`] never fails.
    pub fn new(buf: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader::new(buf);
        r.magic(INDEXED_INPUT_MAGIC)?;
        let count = r.u32()?;
        let clock = BatchClock {
            watermark: r.i64()?,
            processing_time: r.i64()?,
        };
        let heap_len = r.u32()? as usize;
        let entries_len = match (count as usize).checked_mul(ENTRY_BYTES) {
            Some(n) => n,
            None => return r.fail("record count too large"),
        };
        let entries = r.bytes(entries_len)?;
        let heap = r.bytes(heap_len)?;
        let nt = r.u16()?;
        let mut topics = Vec::with_capacity(nt as usize);
        for _ in 0..nt {
            topics.push(r.str16()?);
        }
        if !r.is_empty() {
            return r.fail("trailing bytes after the topic table");
        }
        let me = Self {
            clock,
            count,
            entries,
            heap,
            topics,
        };
        for (i, chunk) in entries.chunks_exact(ENTRY_BYTES).enumerate() {
            let fail = |problem| {
                Err(AbiError {
                    offset: HEADER + i * ENTRY_BYTES,
                    problem,
                })
            };
            let Ok(raw) = <&[u8; ENTRY_BYTES]>::try_from(chunk) else {
                return fail("truncated entry");
            };
            let e = entry(raw);
            if e.topic != NO_TOPIC && e.topic as usize >= me.topics.len() {
                return fail("topic index out of range");
            }
            let end =
                e.at.checked_add(span(e.klen))
                    .and_then(|n| n.checked_add(span(e.vlen)))
                    .and_then(|n| n.checked_add(e.hlen));
            let Some(end) = end.filter(|end| *end <= heap.len()) else {
                return fail("record bytes outside the heap");
            };
            if e.n_headers != 0 || e.hlen != 0 {
                let mut h = Reader::new(&heap[end - e.hlen..end]);
                for _ in 0..e.n_headers {
                    if h.str16().and_then(|_| h.bytes32()).is_err() {
                        return fail("malformed headers");
                    }
                }
                if !h.is_empty() {
                    return fail("header bytes do not match the header count");
                }
            }
        }
        Ok(me)
    }

    /// Record `i`, `None` past the end.
    #[inline]
    pub fn record(&self, i: usize) -> Option<RecordView<'a>> {
        let at = i.checked_mul(ENTRY_BYTES)?;
        let raw: &[u8; ENTRY_BYTES] = self.entries.get(at..at + ENTRY_BYTES)?.try_into().ok()?;
        let e = entry(raw);
        // Validated in `new`: these slices are in bounds.
        let field = |from: usize, len: u32| -> Option<&'a [u8]> {
            if len == NULL_LEN {
                None
            } else {
                Some(self.heap.get(from..from + len as usize).unwrap_or_default())
            }
        };
        let key = field(e.at, e.klen);
        let vat = e.at + span(e.klen);
        let value = field(vat, e.vlen);
        let hat = vat + span(e.vlen);
        Some(RecordView {
            key,
            value,
            timestamp: e.timestamp,
            topic: match e.topic {
                NO_TOPIC => None,
                t => self.topics.get(t as usize).copied(),
            },
            partition: e.partition,
            offset: e.offset,
            headers_count: e.n_headers,
            headers: self.heap.get(hat..hat + e.hlen).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{InputReader, InputWriter};
    use super::*;

    const CLOCK: BatchClock = BatchClock {
        watermark: 5,
        processing_time: 7,
    };

    type Rec<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        i64,
        Option<&'a str>,
        i32,
        i64,
        Vec<(&'a str, &'a [u8])>,
    );

    fn sample() -> Vec<Rec<'static>> {
        vec![
            (
                Some(b"k1"),
                Some(b"v1"),
                10,
                Some("orders"),
                3,
                42,
                vec![("trace", b"abc"), ("n", b"")],
            ),
            (None, None, 11, None, -1, -1, vec![]),
            (Some(b""), Some(b"v3"), 12, Some("audit"), 0, 1, vec![]),
            (Some(b"k4"), Some(b""), 13, Some("orders"), 1, 7, vec![]),
        ]
    }

    fn indexed(recs: &[Rec<'_>], announced: usize) -> Vec<u8> {
        let mut w = IndexedInputWriter::default();
        w.reset(CLOCK, announced, 0);
        for (k, v, ts, t, p, o, h) in recs {
            let t = t.map_or(NO_TOPIC, |t| w.topic_index(t));
            w.push(*k, *v, *ts, t, *p, *o, h.iter().copied());
        }
        w.finish().to_vec()
    }

    fn read_all(bytes: &[u8]) -> Vec<String> {
        let mut r = InputReader::new(bytes).unwrap();
        assert_eq!(r.clock, CLOCK);
        let mut out = Vec::new();
        while let Some(v) = r.next_record().unwrap() {
            out.push(format!(
                "{:?} {:?} {} {:?} {} {} {:?}",
                v.key,
                v.value,
                v.timestamp,
                v.topic,
                v.partition,
                v.offset,
                v.headers().collect::<Vec<_>>()
            ));
        }
        assert_eq!(out.len(), r.count as usize);
        out
    }

    #[test]
    fn indexed_batches_read_like_packed_ones() {
        let recs = sample();
        let mut packed = InputWriter::new(CLOCK);
        for (k, v, ts, t, p, o, h) in &recs {
            packed.push(*k, *v, *ts, *t, *p, *o, h.iter().copied());
        }
        let want = read_all(packed.finish());
        assert_eq!(want.len(), 4);
        // Announced exactly, too few (entries grow) and too many (trimmed).
        for announced in [4, 1, 0, 9] {
            let bytes = indexed(&recs, announced);
            assert_eq!(&bytes[..4], b"WRB2");
            assert_eq!(read_all(&bytes), want, "announced {announced}");
        }
        // Random access.
        let bytes = indexed(&recs, 4);
        let b = IndexedInput::new(&bytes).unwrap();
        assert_eq!(b.record(2).unwrap().value, Some(&b"v3"[..]));
        assert_eq!(b.record(3).unwrap().key, Some(&b"k4"[..]));
        assert!(b.record(4).is_none());
    }

    #[test]
    fn an_empty_indexed_batch_has_no_records() {
        let bytes = indexed(&[], 16);
        assert!(read_all(&bytes).is_empty());
    }

    fn problem(bytes: &[u8]) -> &'static str {
        IndexedInput::new(bytes).unwrap_err().problem
    }

    #[test]
    fn malformed_indexed_batches_are_errors_not_panics() {
        let good = indexed(&sample(), 4);
        for cut in 0..good.len() {
            assert!(IndexedInput::new(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(problem(&trailing), "trailing bytes after the topic table");

        let entry0 = HEADER;
        let mut outside = good.clone();
        outside[entry0 + 32..entry0 + 36].copy_from_slice(&1_000u32.to_le_bytes());
        assert_eq!(problem(&outside), "record bytes outside the heap");

        let mut overflow = good.clone();
        overflow[entry0 + 24..entry0 + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(problem(&overflow), "record bytes outside the heap");

        let mut topic = good.clone();
        topic[entry0 + 20..entry0 + 22].copy_from_slice(&9u16.to_le_bytes());
        assert_eq!(problem(&topic), "topic index out of range");

        let mut headers = good.clone();
        headers[entry0 + 22..entry0 + 24].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            problem(&headers),
            "header bytes do not match the header count"
        );

        let mut count = good.clone();
        count[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(IndexedInput::new(&count).is_err());
    }

    #[test]
    fn guests_declare_the_indexed_format_in_build_metadata() {
        assert_eq!(
            InputFormat::for_sdk_version("0.1.0+wrb2"),
            InputFormat::Indexed
        );
        assert_eq!(
            InputFormat::for_sdk_version("1.2.3+x.wrb2"),
            InputFormat::Indexed
        );
        for v in ["0.1.0", "0.1.0+wrb3", "wrb2", "0.1.0-wrb2", ""] {
            assert_eq!(InputFormat::for_sdk_version(v), InputFormat::Packed, "{v}");
        }
    }
}
