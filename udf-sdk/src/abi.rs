//! The packed batch format: the bytes that cross the host/guest boundary.
//!
//! This module is the single implementation of the format for both sides: the
//! host (the `weir` orchestrator) encodes inputs and decodes results with it,
//! and the guest SDK decodes inputs and encodes results with it, so the two
//! cannot drift apart. It has no dependencies and never panics on malformed
//! bytes: every read is bounds-checked and returns [`AbiError`].
//!
//! All integers are little-endian. The layout is documented in
//! `docs/udf-abi.md`; the constants below are named after its fields.

use std::fmt;
use std::ptr;

/// Magic of an input batch (`process`).
pub const INPUT_MAGIC: [u8; 4] = *b"WRB1";
/// Magic of a fired-timer batch (`on-timer`).
pub const TIMER_MAGIC: [u8; 4] = *b"WRT1";
/// Magic of a result batch (returned by both exports).
pub const RESULT_MAGIC: [u8; 4] = *b"WRR1";

/// Length value that stands for "absent" (a null key or value).
pub const NULL_LEN: u32 = u32::MAX;
/// Topic index meaning "no source topic".
pub const NO_TOPIC: u16 = u16::MAX;
/// Watermark meaning "no watermark yet".
pub const NO_WATERMARK: i64 = i64::MIN;

/// Result status: forward the input unchanged (a filter keeps it).
pub const STATUS_PASS: u8 = 0;
/// Result status: no output for this input.
pub const STATUS_DROP: u8 = 1;
/// Result status: `u32` count, then that many output records.
pub const STATUS_EMIT: u8 = 2;
/// Result status: `u32` length, then a UTF-8 error message.
pub const STATUS_ERROR: u8 = 3;

/// Output flag: a key follows (otherwise the input's key is kept).
pub const OUT_KEY: u8 = 1;
/// Output flag: the key is null (otherwise the input's key is kept).
pub const OUT_KEY_NULL: u8 = 2;
/// Output flag: a timestamp follows (otherwise the input's is kept).
pub const OUT_TIMESTAMP: u8 = 4;
/// Output flag: headers follow (otherwise the input's are kept).
pub const OUT_HEADERS: u8 = 8;
/// Output flag: the value is null (a tombstone); no value bytes follow.
pub const OUT_VALUE_NULL: u8 = 16;
/// Output flag: the value is a range of the input's value (`u32` offset,
/// `u32` length follow instead of bytes): zero-copy for maps that return
/// their input or a part of it.
pub const OUT_VALUE_INPUT: u8 = 32;
const OUT_KNOWN: u8 =
    OUT_KEY | OUT_KEY_NULL | OUT_TIMESTAMP | OUT_HEADERS | OUT_VALUE_NULL | OUT_VALUE_INPUT;

/// Time domain byte of a timer.
pub const DOMAIN_EVENT: u8 = 0;
/// Time domain byte of a timer.
pub const DOMAIN_PROCESSING: u8 = 1;

/// Malformed bytes, with the offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiError {
    pub offset: usize,
    pub problem: &'static str,
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed batch at byte {}: {}",
            self.offset, self.problem
        )
    }
}

impl std::error::Error for AbiError {}

/// A bounds-checked cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn fail<T>(&self, problem: &'static str) -> Result<T, AbiError> {
        Err(AbiError {
            offset: self.pos,
            problem,
        })
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// One overflow check and one bounds check: this runs several times
    /// per record in every guest.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], AbiError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.fail("truncated"),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], AbiError> {
        // The slice is exactly N long, so the conversion cannot fail.
        match <[u8; N]>::try_from(self.bytes(N)?) {
            Ok(a) => Ok(a),
            Err(_) => self.fail("truncated"),
        }
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, AbiError> {
        Ok(self.array::<1>()?[0])
    }
    #[inline]
    pub fn u16(&mut self) -> Result<u16, AbiError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn u32(&mut self) -> Result<u32, AbiError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn i32(&mut self) -> Result<i32, AbiError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    #[inline]
    pub fn i64(&mut self) -> Result<i64, AbiError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u32` length then that many bytes; [`NULL_LEN`] reads as `None`.
    #[inline]
    pub fn opt_bytes32(&mut self) -> Result<Option<&'a [u8]>, AbiError> {
        match self.u32()? {
            NULL_LEN => Ok(None),
            n => self.bytes(n as usize).map(Some),
        }
    }

    /// A `u32` length then that many bytes; null is not allowed here.
    #[inline]
    pub fn bytes32(&mut self) -> Result<&'a [u8], AbiError> {
        match self.opt_bytes32()? {
            Some(b) => Ok(b),
            None => self.fail("null where bytes are required"),
        }
    }

    /// A `u16` length then that many bytes of UTF-8.
    pub fn str16(&mut self) -> Result<&'a str, AbiError> {
        let n = self.u16()? as usize;
        let at = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| AbiError {
            offset: at,
            problem: "invalid UTF-8",
        })
    }

    /// A `u32` length then that many bytes of UTF-8.
    pub fn str32(&mut self) -> Result<&'a str, AbiError> {
        let at = self.pos;
        let b = self.bytes32()?;
        std::str::from_utf8(b).map_err(|_| AbiError {
            offset: at,
            problem: "invalid UTF-8",
        })
    }

    fn magic(&mut self, want: [u8; 4]) -> Result<(), AbiError> {
        if self.array::<4>()? != want {
            self.pos -= 4;
            return self.fail("wrong magic");
        }
        Ok(())
    }
}

/// Appends little-endian fields to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    #[inline]
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Length-prefixed bytes; lengths above `u32::MAX - 1` are cut, which the
    /// size limits on both sides make unreachable.
    #[inline]
    pub fn bytes32(&mut self, v: &[u8]) {
        let n = v.len().min((NULL_LEN - 1) as usize);
        self.u32(n as u32);
        self.buf.extend_from_slice(&v[..n]);
    }
    #[inline]
    pub fn opt_bytes32(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.bytes32(v),
            None => self.u32(NULL_LEN),
        }
    }
    /// Length-prefixed (u16) string, cut at a character boundary to fit.
    pub fn str16(&mut self, v: &str) {
        let mut n = v.len().min(u16::MAX as usize);
        while !v.is_char_boundary(n) {
            n -= 1;
        }
        self.u16(n as u16);
        self.buf.extend_from_slice(&v.as_bytes()[..n]);
    }
}

// ---------------------------------------------------------------- inputs

/// Batch-wide fields of an input or timer batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchClock {
    /// Event-time watermark in ms, or [`NO_WATERMARK`].
    pub watermark: i64,
    /// The host's processing time in ms since the Unix epoch.
    pub processing_time: i64,
}

/// One input record, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub topic: Option<&'a str>,
    pub partition: i32,
    pub offset: i64,
    headers_count: u16,
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The headers, in order.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            r: Reader::new(self.headers),
            left: self.headers_count,
        }
    }
}

/// Iterates `(name, value)` headers; stops early on malformed bytes, which
/// [`InputReader`] has already ruled out.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = self.r.str16().ok()?;
        let value = self.r.bytes32().ok()?;
        Some((name, value))
    }
}

/// Where `n` headers starting at `at` end. It takes the position, not a
/// reader, and stays out of line: a caller's cursor is then never borrowed
/// by a call, so the guest's compiler keeps it in registers.
#[inline(never)]
fn skip_headers(buf: &[u8], at: usize, n: u16) -> Result<usize, AbiError> {
    let mut r = Reader { buf, pos: at };
    for _ in 0..n {
        r.str16()?;
        r.bytes32()?;
    }
    Ok(r.pos)
}

/// Appends a record's fixed part, key and value, each with its length (the
/// caller has cut them to what the format can hold). This is the host's
/// hottest loop: one capacity check, and no `memcpy` calls for keys and
/// values up to 64 bytes. Written with `extend_from_slice`, a record cost
/// ~3 ns more (two `memcpy` calls, and the length and capacity reloaded after
/// each append); safe versions of the same (a zero-filled block cut back to
/// length, or chunked writes into the spare capacity) measured no better.
// The format's one unsafe block (safety argument inside; tested over every
// short length, and under Miri by scripts/test.sh).
#[allow(unsafe_code)]
#[inline(always)]
fn append_record(buf: &mut Vec<u8>, fixed: &[u8; 24], key: Option<&[u8]>, value: Option<&[u8]>) {
    let (k, v) = (key.unwrap_or_default(), value.unwrap_or_default());
    let len32 = |b: Option<&[u8]>| b.map_or(NULL_LEN, |b| b.len() as u32).to_le_bytes();
    // Saturating: a length past `usize::MAX` makes `reserve` panic, before
    // any write.
    let n = (24 + 4 + 4usize)
        .saturating_add(k.len())
        .saturating_add(v.len());
    buf.reserve(n);
    let start = buf.len();
    // SAFETY: `reserve` made `buf` valid for `n` byte writes from `start`.
    // The writes below are 24 + 4 + k + 4 + v = n bytes, in order and
    // without gaps (each `copy_short` writes every byte of its range), so the
    // new length covers only written bytes. The sources are shared borrows,
    // so they cannot overlap `buf`, which is borrowed mutably.
    unsafe {
        let p = buf.as_mut_ptr().add(start);
        ptr::copy_nonoverlapping(fixed.as_ptr(), p, 24);
        ptr::copy_nonoverlapping(len32(key).as_ptr(), p.add(24), 4);
        copy_short(k, p.add(28));
        let p = p.add(28 + k.len());
        ptr::copy_nonoverlapping(len32(value).as_ptr(), p, 4);
        copy_short(v, p.add(4));
        buf.set_len(start + n);
    }
}

/// Copies `src` to `dst` as at most two fixed-size moves that overlap (the
/// first `N` bytes and the last `N`, for `N <= len <= 2N`), which together
/// write every byte of `dst[..src.len()]`. Longer sources take one copy.
///
/// # Safety
/// `dst` must be valid for `src.len()` byte writes and not overlap `src`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    let two = |chunk: usize| {
        // SAFETY: `chunk <= n`, so both ranges lie within `src` and within
        // `dst`'s `n` writable bytes (the caller's contract).
        unsafe {
            ptr::copy_nonoverlapping(s, dst, chunk);
            ptr::copy_nonoverlapping(s.add(n - chunk), dst.add(n - chunk), chunk);
        }
    };
    // A tree, not a `match` on ranges (which compiles to a chain of tests
    // that a record's ~45-byte value walked to its end).
    if n >= 16 {
        if n > 64 {
            // SAFETY: the caller's contract.
            unsafe { ptr::copy_nonoverlapping(s, dst, n) }
        } else if n >= 32 {
            two(32)
        } else {
            two(16)
        }
    } else if n >= 8 {
        two(8)
    } else if n >= 4 {
        two(4)
    } else if n >= 2 {
        two(2)
    } else if n == 1 {
        two(1)
    }
}

/// Size of an input batch's fixed header (magic, count, clock).
const INPUT_HEADER: usize = 24;

/// Encodes an input batch. The host's side.
///
/// Two modes: after [`InputWriter::reset`] records are buffered apart and
/// copied behind the topic table in `finish` (topics are learnt as they
/// come); after [`InputWriter::reset_with_topics`] the topic table is written
/// first and records go straight behind it, with no copy. A record whose
/// topic was not declared switches a direct batch back to buffering.
#[derive(Debug, Default)]
pub struct InputWriter {
    w: Writer,
    count: u32,
    topics: Vec<String>,
    body: Writer,
    /// Records are written into `w` directly (the topics are all known).
    direct: bool,
    /// Where the records of a direct batch start in `w`.
    records_at: usize,
}

impl InputWriter {
    pub fn new(clock: BatchClock) -> Self {
        let mut s = Self::default();
        s.reset(clock);
        s
    }

    /// Starts a new batch, keeping the allocations.
    pub fn reset(&mut self, clock: BatchClock) {
        self.w.buf.clear();
        self.body.buf.clear();
        self.topics.clear();
        self.count = 0;
        self.direct = false;
        self.w.buf.extend_from_slice(&INPUT_MAGIC);
        self.w.u32(0);
        self.w.i64(clock.watermark);
        self.w.i64(clock.processing_time);
    }

    /// Starts a new batch whose records come from `topics` (in this order:
    /// the index of a topic is its position). Records are then written
    /// without an extra copy; see [`InputWriter::push_indexed`].
    /// `records_bytes` is a capacity hint.
    pub fn reset_with_topics<'t>(
        &mut self,
        clock: BatchClock,
        topics: impl IntoIterator<Item = &'t str>,
        records_bytes: usize,
    ) {
        self.reset(clock);
        for t in topics {
            if self.topics.len() >= (NO_TOPIC - 1) as usize {
                break;
            }
            self.topics.push(t.to_owned());
        }
        self.w.u16(self.topics.len() as u16);
        for t in &self.topics {
            self.w.str16(t);
        }
        self.w.buf.reserve(records_bytes);
        self.records_at = self.w.buf.len();
        self.direct = true;
    }

    /// Moves the records of a direct batch behind a growable topic table.
    fn undirect(&mut self) {
        self.body.buf.clear();
        self.body
            .buf
            .extend_from_slice(&self.w.buf[self.records_at..]);
        self.w.buf.truncate(INPUT_HEADER);
        self.direct = false;
    }

    fn topic_index(&mut self, topic: Option<&str>) -> u16 {
        let Some(t) = topic else { return NO_TOPIC };
        if let Some(i) = self.topics.iter().position(|x| x == t) {
            return i as u16;
        }
        if self.direct {
            self.undirect();
        }
        if self.topics.len() >= (NO_TOPIC - 1) as usize {
            return NO_TOPIC;
        }
        self.topics.push(t.to_owned());
        (self.topics.len() - 1) as u16
    }

    /// Appends one record.
    #[allow(clippy::too_many_arguments)]
    pub fn push<'h>(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        topic: Option<&str>,
        partition: i32,
        offset: i64,
        headers: impl ExactSizeIterator<Item = (&'h str, &'h [u8])>,
    ) {
        let t = self.topic_index(topic);
        self.push_indexed(key, value, timestamp, t, partition, offset, headers);
    }

    /// Appends one record whose topic is given by its index in the topics of
    /// [`InputWriter::reset_with_topics`] ([`NO_TOPIC`] for none). An index
    /// outside them is written as [`NO_TOPIC`].
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn push_indexed<'h>(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        topic_index: u16,
        partition: i32,
        offset: i64,
        headers: impl ExactSizeIterator<Item = (&'h str, &'h [u8])>,
    ) {
        let t = if (topic_index as usize) < self.topics.len() {
            topic_index
        } else {
            NO_TOPIC
        };
        let b = if self.direct {
            &mut self.w
        } else {
            &mut self.body
        };
        let n = headers.len().min(u16::MAX as usize);
        let mut fixed = [0u8; 24];
        fixed[0..8].copy_from_slice(&timestamp.to_le_bytes());
        fixed[8..16].copy_from_slice(&offset.to_le_bytes());
        fixed[16..20].copy_from_slice(&partition.to_le_bytes());
        fixed[20..22].copy_from_slice(&t.to_le_bytes());
        fixed[22..24].copy_from_slice(&(n as u16).to_le_bytes());
        // Lengths above `u32::MAX - 1` are cut, as `Writer::bytes32` does.
        #[inline(always)]
        fn cut(b: Option<&[u8]>) -> Option<&[u8]> {
            b.map(|b| &b[..b.len().min((NULL_LEN - 1) as usize)])
        }
        append_record(&mut b.buf, &fixed, cut(key), cut(value));
        for (name, value) in headers.take(n) {
            b.str16(name);
            b.bytes32(value);
        }
        self.count += 1;
    }

    /// Finishes the batch; the returned slice is valid until the next `reset`.
    pub fn finish(&mut self) -> &[u8] {
        let count = self.count.to_le_bytes();
        self.w.buf[4..8].copy_from_slice(&count);
        if !self.direct {
            self.w.u16(self.topics.len() as u16);
            for t in &self.topics {
                self.w.str16(t);
            }
            self.w.buf.extend_from_slice(&self.body.buf);
        }
        &self.w.buf
    }

    /// Takes the finished batch's buffer (to share it without a copy); give
    /// it back with [`InputWriter::restore_buffer`] to keep its allocation.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.w.buf)
    }

    /// Returns a buffer taken by [`InputWriter::take_buffer`] for reuse.
    pub fn restore_buffer(&mut self, buf: Vec<u8>) {
        if buf.capacity() > self.w.buf.capacity() {
            self.w.buf = buf;
        }
    }
}

/// Decodes an input batch without copying. The guest's side.
///
/// The cursor is the slice of records not read yet (not a buffer and a
/// position): fewer values live across the guest's per-record loop, and no
/// overflow checks, since a slice's length bounds every step.
#[derive(Debug, Clone)]
pub struct InputReader<'a> {
    pub clock: BatchClock,
    pub count: u32,
    topics: Vec<&'a str>,
    rest: &'a [u8],
    /// The whole batch's length (error offsets are counted from its start).
    len: usize,
    left: u32,
}

impl<'a> InputReader<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader::new(buf);
        r.magic(INPUT_MAGIC)?;
        let count = r.u32()?;
        let clock = BatchClock {
            watermark: r.i64()?,
            processing_time: r.i64()?,
        };
        let nt = r.u16()?;
        let mut topics = Vec::with_capacity(nt as usize);
        for _ in 0..nt {
            topics.push(r.str16()?);
        }
        Ok(Self {
            clock,
            count,
            topics,
            rest: &buf[r.pos..],
            len: buf.len(),
            left: count,
        })
    }

    /// The error for a record cut short where `at` starts.
    #[cold]
    fn fail(&self, at: &[u8], problem: &'static str) -> AbiError {
        AbiError {
            offset: self.len - at.len(),
            problem,
        }
    }

    /// The next record, `Ok(None)` after the last.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<RecordView<'a>>, AbiError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let start = self.rest;
        // The fixed part and the key's length with one bounds check.
        let Some((f, rest)) = start.split_first_chunk::<28>() else {
            return Err(self.fail(start, "truncated"));
        };
        let le8 = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&f[at..at + 8]);
            i64::from_le_bytes(b)
        };
        let timestamp = le8(0);
        let offset = le8(8);
        let partition = i32::from_le_bytes([f[16], f[17], f[18], f[19]]);
        let t = u16::from_le_bytes([f[20], f[21]]);
        let headers_count = u16::from_le_bytes([f[22], f[23]]);
        let (key, rest) = match u32::from_le_bytes([f[24], f[25], f[26], f[27]]) {
            NULL_LEN => (None, rest),
            n => match rest.split_at_checked(n as usize) {
                Some((k, rest)) => (Some(k), rest),
                None => return Err(self.fail(rest, "truncated")),
            },
        };
        let Some((n, rest)) = rest.split_first_chunk::<4>() else {
            return Err(self.fail(rest, "truncated"));
        };
        let (value, rest) = match u32::from_le_bytes(*n) {
            NULL_LEN => (None, rest),
            n => match rest.split_at_checked(n as usize) {
                Some((v, rest)) => (Some(v), rest),
                None => return Err(self.fail(rest, "truncated")),
            },
        };
        let (headers, rest) = if headers_count == 0 {
            rest.split_at(0)
        } else {
            let end = skip_headers(rest, 0, headers_count).map_err(|e| AbiError {
                offset: self.len - rest.len() + e.offset,
                ..e
            })?;
            match rest.split_at_checked(end) {
                Some(split) => split,
                None => return Err(self.fail(rest, "truncated")),
            }
        };
        let topic = match t {
            NO_TOPIC => None,
            i => match self.topics.get(i as usize) {
                Some(t) => Some(*t),
                None => return Err(self.fail(start, "topic index out of range")),
            },
        };
        self.rest = rest;
        Ok(Some(RecordView {
            key,
            value,
            timestamp,
            topic,
            partition,
            offset,
            headers_count,
            headers,
        }))
    }
}

// ---------------------------------------------------------------- timers

/// One fired timer, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerView<'a> {
    pub key: &'a [u8],
    /// [`DOMAIN_EVENT`] or [`DOMAIN_PROCESSING`].
    pub domain: u8,
    pub at: i64,
}

/// Encodes a fired-timer batch. The host's side.
pub fn encode_timers<'k>(
    clock: BatchClock,
    timers: impl ExactSizeIterator<Item = TimerView<'k>>,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(24 + timers.len() * 24);
    w.buf.extend_from_slice(&TIMER_MAGIC);
    w.u32(timers.len() as u32);
    w.i64(clock.watermark);
    w.i64(clock.processing_time);
    for t in timers {
        w.u8(t.domain);
        w.i64(t.at);
        w.bytes32(t.key);
    }
    w.buf
}

/// Decodes a fired-timer batch. The guest's side.
#[derive(Debug, Clone)]
pub struct TimerReader<'a> {
    pub clock: BatchClock,
    pub count: u32,
    r: Reader<'a>,
    left: u32,
}

impl<'a> TimerReader<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader::new(buf);
        r.magic(TIMER_MAGIC)?;
        let count = r.u32()?;
        let clock = BatchClock {
            watermark: r.i64()?,
            processing_time: r.i64()?,
        };
        Ok(Self {
            clock,
            count,
            r,
            left: count,
        })
    }

    pub fn next_timer(&mut self) -> Result<Option<TimerView<'a>>, AbiError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let domain = self.r.u8()?;
        if domain > DOMAIN_PROCESSING {
            return self.r.fail("unknown time domain");
        }
        let at = self.r.i64()?;
        let key = self.r.bytes32()?;
        Ok(Some(TimerView { key, domain, at }))
    }
}

// ---------------------------------------------------------------- results

/// Encodes a result batch. The guest's side.
#[derive(Debug)]
pub struct ResultWriter {
    w: Writer,
    count: u32,
    /// Where the current EMIT's output count lives, and the count so far.
    open_emit: Option<(usize, u32)>,
    /// Address range of the current input's value, for zero-copy outputs.
    input: (usize, usize),
}

/// What an output record overrides; `None` keeps the input's field.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputFields<'a> {
    /// `Some(None)` sets a null key.
    pub key: Option<Option<&'a [u8]>>,
    pub timestamp: Option<i64>,
    pub headers: Option<&'a [(&'a str, &'a [u8])]>,
    /// `None` is a null value (tombstone).
    pub value: Option<&'a [u8]>,
}

impl ResultWriter {
    pub fn with_capacity(n: usize) -> Self {
        let mut w = Writer::with_capacity(n.max(8));
        w.buf.extend_from_slice(&RESULT_MAGIC);
        w.u32(0);
        Self {
            w,
            count: 0,
            open_emit: None,
            input: (0, 0),
        }
    }

    /// Tells the writer which bytes are the current input's value: an output
    /// value inside them is written as a range, not copied.
    #[inline]
    pub fn set_input_value(&mut self, v: Option<&[u8]>) {
        self.input = v.map(|v| (v.as_ptr() as usize, v.len())).unwrap_or((0, 0));
    }

    #[inline]
    fn input_range(&self, v: &[u8]) -> Option<(u32, u32)> {
        let (start, len) = self.input;
        let p = v.as_ptr() as usize;
        if len == 0 || p < start || p + v.len() > start + len {
            return None;
        }
        Some(((p - start) as u32, v.len() as u32))
    }

    #[inline]
    fn close(&mut self) {
        if let Some((at, n)) = self.open_emit.take() {
            self.w.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
    }

    /// Forwards the input unchanged.
    #[inline]
    pub fn pass(&mut self) {
        self.close();
        self.w.u8(STATUS_PASS);
        self.count += 1;
    }

    /// No output for this input.
    #[inline]
    pub fn drop_input(&mut self) {
        self.close();
        self.w.u8(STATUS_DROP);
        self.count += 1;
    }

    /// This input failed; it goes to the dead-letter topic with `message`.
    pub fn error(&mut self, message: &str) {
        self.close();
        self.w.u8(STATUS_ERROR);
        self.w.bytes32(message.as_bytes());
        self.count += 1;
    }

    /// Starts an EMIT status; follow with [`ResultWriter::output`] calls.
    #[inline]
    pub fn begin_emit(&mut self) {
        self.close();
        let at = self.w.buf.len() + 1;
        self.w.buf.extend_from_slice(&[STATUS_EMIT, 0, 0, 0, 0]);
        self.open_emit = Some((at, 0));
        self.count += 1;
    }

    /// One output that sets only its value (a map's usual result), in one
    /// append: the same bytes as [`ResultWriter::begin_emit`] then
    /// [`ResultWriter::output`], except that the whole input value unchanged
    /// is written as PASS (one byte; the host then forwards the input).
    #[inline]
    pub fn emit_value(&mut self, v: &[u8]) {
        self.close();
        self.count += 1;
        let (start, len) = self.input;
        // The identity-like case stays inline and tiny: it runs per record.
        if len != 0 && v.as_ptr() as usize == start && v.len() == len {
            self.w.buf.push(STATUS_PASS);
        } else {
            self.emit_value_status(v);
        }
    }

    /// The EMIT status of [`ResultWriter::emit_value`] (count already taken).
    fn emit_value_status(&mut self, v: &[u8]) {
        match self.input_range(v) {
            Some((off, len)) => {
                let mut b = [
                    STATUS_EMIT,
                    1,
                    0,
                    0,
                    0,
                    OUT_VALUE_INPUT,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ];
                b[6..10].copy_from_slice(&off.to_le_bytes());
                b[10..14].copy_from_slice(&len.to_le_bytes());
                self.w.buf.extend_from_slice(&b);
            }
            None => {
                self.w.buf.extend_from_slice(&[STATUS_EMIT, 1, 0, 0, 0, 0]);
                self.w.bytes32(v);
            }
        }
    }

    /// Adds an output to the open EMIT status (opening one if needed).
    #[inline]
    pub fn output(&mut self, o: OutputFields<'_>) {
        if self.open_emit.is_none() {
            self.begin_emit();
        }
        if let Some((_, n)) = &mut self.open_emit {
            *n += 1;
        }
        let mut flags = 0u8;
        match o.key {
            Some(Some(_)) => flags |= OUT_KEY,
            Some(None) => flags |= OUT_KEY_NULL,
            None => {}
        }
        if o.timestamp.is_some() {
            flags |= OUT_TIMESTAMP;
        }
        if o.headers.is_some() {
            flags |= OUT_HEADERS;
        }
        let range = o.value.and_then(|v| self.input_range(v));
        if let (0, Some((off, len))) = (flags, range) {
            // The common map output: just a range of the input's value.
            let mut b = [OUT_VALUE_INPUT, 0, 0, 0, 0, 0, 0, 0, 0];
            b[1..5].copy_from_slice(&off.to_le_bytes());
            b[5..9].copy_from_slice(&len.to_le_bytes());
            self.w.buf.extend_from_slice(&b);
            return;
        }
        if o.value.is_none() {
            flags |= OUT_VALUE_NULL;
        } else if range.is_some() {
            flags |= OUT_VALUE_INPUT;
        }
        let w = &mut self.w;
        w.u8(flags);
        if let Some(Some(k)) = o.key {
            w.bytes32(k);
        }
        if let Some(ts) = o.timestamp {
            w.i64(ts);
        }
        if let Some(h) = o.headers {
            let n = h.len().min(u16::MAX as usize);
            w.u16(n as u16);
            for (name, value) in &h[..n] {
                w.str16(name);
                w.bytes32(value);
            }
        }
        match (range, o.value) {
            (Some((off, len)), _) => {
                w.u32(off);
                w.u32(len);
            }
            (None, Some(v)) => w.bytes32(v),
            (None, None) => {}
        }
    }

    /// A point to roll back to when the current input fails after emitting.
    pub fn mark(&self) -> (usize, u32) {
        (self.w.buf.len(), self.count)
    }

    /// Inserts `n` PASS statuses at `mark` (taken before the statuses they
    /// precede), closing any open EMIT first: the guest runner counts a run
    /// of passes and writes it only when another status follows.
    pub fn insert_passes(&mut self, mark: (usize, u32), n: u32) {
        if n == 0 {
            return;
        }
        self.close();
        let at = mark.0.min(self.w.buf.len());
        self.w
            .buf
            .splice(at..at, core::iter::repeat_n(STATUS_PASS, n as usize));
        self.count += n;
    }

    /// Forgets everything written since `mark`, so the input can get a
    /// single ERROR status instead of half its outputs.
    pub fn rollback(&mut self, mark: (usize, u32)) {
        self.open_emit = None;
        self.w.buf.truncate(mark.0);
        self.count = mark.1;
    }

    /// Bytes written so far (for output size limits inside the guest).
    pub fn len(&self) -> usize {
        self.w.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Statuses written so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        let c = self.count.to_le_bytes();
        self.w.buf[4..8].copy_from_slice(&c);
        self.w.buf
    }
}

/// One output record as decoded from a result batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputView<'a> {
    /// `None`: keep the input's key; `Some(None)`: null key.
    pub key: Option<Option<&'a [u8]>>,
    pub timestamp: Option<i64>,
    /// Raw header bytes and count when the output sets its own headers.
    pub headers: Option<(u16, &'a [u8])>,
    /// The value's bytes; `None` is a null value unless `input_range` is set.
    pub value: Option<&'a [u8]>,
    /// `(offset, length)` within the input's value ([`OUT_VALUE_INPUT`]).
    pub input_range: Option<(u32, u32)>,
}

impl<'a> OutputView<'a> {
    /// The output's own headers, when it sets them.
    pub fn headers(&self) -> Option<HeaderIter<'a>> {
        self.headers.map(|(n, b)| HeaderIter {
            r: Reader::new(b),
            left: n,
        })
    }
}

/// One input's status as decoded from a result batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusView<'a> {
    Pass,
    Drop,
    /// `count` outputs follow; read them with [`ResultReader::next_output`].
    Emit {
        count: u32,
    },
    Error(&'a str),
}

/// Decodes a result batch. The host's side; robust against any bytes.
#[derive(Debug, Clone)]
pub struct ResultReader<'a> {
    pub count: u32,
    r: Reader<'a>,
    left: u32,
    outputs_left: u32,
}

impl<'a> ResultReader<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, AbiError> {
        let mut r = Reader::new(buf);
        r.magic(RESULT_MAGIC)?;
        let count = r.u32()?;
        Ok(Self {
            count,
            r,
            left: count,
            outputs_left: 0,
        })
    }

    /// The next status. All outputs of the previous EMIT must have been read.
    #[inline]
    pub fn next_status(&mut self) -> Result<Option<StatusView<'a>>, AbiError> {
        if self.outputs_left != 0 {
            return self.r.fail("outputs of the previous status not read");
        }
        if self.left == 0 {
            if !self.r.is_empty() {
                return self.r.fail("trailing bytes after the last status");
            }
            return Ok(None);
        }
        self.left -= 1;
        let s = match self.r.u8()? {
            STATUS_PASS => StatusView::Pass,
            STATUS_DROP => StatusView::Drop,
            STATUS_EMIT => {
                let n = self.r.u32()?;
                self.outputs_left = n;
                StatusView::Emit { count: n }
            }
            STATUS_ERROR => StatusView::Error(self.r.str32()?),
            _ => return self.r.fail("unknown status byte"),
        };
        Ok(Some(s))
    }

    /// Consumes the run of PASS statuses that comes next, the commonest
    /// status (maps that return their input, filters that keep it), and
    /// says how long it was, without building a [`StatusView`] for each.
    /// `0` leaves the reader as it was.
    #[inline]
    pub fn take_passes(&mut self) -> usize {
        self.take_run(STATUS_PASS)
    }

    /// [`ResultReader::take_passes`] for DROP statuses (a filter's drops).
    #[inline]
    pub fn take_drops(&mut self) -> usize {
        self.take_run(STATUS_DROP)
    }

    /// Consumes the statuses that come next while they are the one-byte
    /// status `byte`.
    #[inline]
    fn take_run(&mut self, byte: u8) -> usize {
        if self.outputs_left != 0 {
            return 0;
        }
        let rest = self.r.buf.get(self.r.pos..).unwrap_or_default();
        let left = rest.len().min(self.left as usize);
        let n = rest[..left].iter().position(|&b| b != byte).unwrap_or(left);
        self.r.pos += n;
        self.left -= n as u32;
        n
    }

    /// The next output of the current EMIT status.
    #[inline]
    pub fn next_output(&mut self) -> Result<Option<OutputView<'a>>, AbiError> {
        if self.outputs_left == 0 {
            return Ok(None);
        }
        self.outputs_left -= 1;
        let r = &mut self.r;
        let flags = r.u8()?;
        if flags & !OUT_KNOWN != 0 {
            return r.fail("unknown output flags");
        }
        let key = if flags & OUT_KEY != 0 {
            Some(Some(r.bytes32()?))
        } else if flags & OUT_KEY_NULL != 0 {
            Some(None)
        } else {
            None
        };
        let timestamp = if flags & OUT_TIMESTAMP != 0 {
            Some(r.i64()?)
        } else {
            None
        };
        let headers = if flags & OUT_HEADERS != 0 {
            let n = r.u16()?;
            let start = r.position();
            r.pos = skip_headers(r.buf, start, n)?;
            Some((n, &r.buf[start..r.position()]))
        } else {
            None
        };
        let (value, input_range) = if flags & OUT_VALUE_NULL != 0 {
            (None, None)
        } else if flags & OUT_VALUE_INPUT != 0 {
            (None, Some((r.u32()?, r.u32()?)))
        } else {
            (Some(r.bytes32()?), None)
        };
        Ok(Some(OutputView {
            key,
            timestamp,
            headers,
            value,
            input_range,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: BatchClock = BatchClock {
        watermark: 5,
        processing_time: 7,
    };

    #[test]
    fn input_batch_round_trips() {
        let mut w = InputWriter::new(CLOCK);
        let h: [(&str, &[u8]); 1] = [("trace", b"abc")];
        w.push(
            Some(b"k1"),
            Some(b"v1"),
            10,
            Some("orders"),
            3,
            42,
            h.iter().copied(),
        );
        w.push(None, None, 11, None, -1, -1, std::iter::empty());
        w.push(
            Some(b""),
            Some(b"v3"),
            12,
            Some("orders"),
            0,
            1,
            std::iter::empty(),
        );
        let bytes = w.finish().to_vec();
        let mut r = InputReader::new(&bytes).unwrap();
        assert_eq!(r.clock, CLOCK);
        assert_eq!(r.count, 3);
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.key, a.value, a.timestamp),
            (Some(&b"k1"[..]), Some(&b"v1"[..]), 10)
        );
        assert_eq!((a.topic, a.partition, a.offset), (Some("orders"), 3, 42));
        assert_eq!(
            a.headers().collect::<Vec<_>>(),
            vec![("trace", &b"abc"[..])]
        );
        let b = r.next_record().unwrap().unwrap();
        assert_eq!((b.key, b.value, b.topic), (None, None, None));
        let c = r.next_record().unwrap().unwrap();
        assert_eq!((c.key, c.topic), (Some(&b""[..]), Some("orders")));
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn keys_and_values_of_every_short_length_round_trip_byte_for_byte() {
        // Keys and values are copied in overlapping chunks chosen by length
        // (up to 64 bytes); every length up to past that, null included, must
        // come back exactly, with headers after it and records around it intact.
        let bytes: Vec<u8> = (0..100u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(1))
            .collect();
        let lens = (0..=67).map(Some).chain([None]);
        let cases: Vec<(Option<usize>, Option<usize>)> = lens
            .clone()
            .flat_map(|k| lens.clone().map(move |v| (k, v)))
            .collect();
        let part = |n: Option<usize>, from: usize| n.map(|n| &bytes[from..from + n]);
        let h: [(&str, &[u8]); 1] = [("h", b"x")];
        let mut w = InputWriter::default();
        w.reset_with_topics(CLOCK, ["t"], 0);
        for (i, &(k, v)) in cases.iter().enumerate() {
            let headers = h.iter().copied().take(i % 2);
            w.push_indexed(part(k, 1), part(v, 2), i as i64, 0, 1, 2, headers);
        }
        let batch = w.finish().to_vec();
        let mut r = InputReader::new(&batch).unwrap();
        for (i, &(k, v)) in cases.iter().enumerate() {
            let rec = r.next_record().unwrap().unwrap();
            assert_eq!(
                (rec.key, rec.value),
                (part(k, 1), part(v, 2)),
                "{k:?} {v:?}"
            );
            assert_eq!((rec.timestamp, rec.topic), (i as i64, Some("t")));
            assert_eq!(rec.headers().count(), i % 2);
        }
        assert!(r.next_record().unwrap().is_none());
    }

    /// Reads every record, or the first error.
    fn read_all(bytes: &[u8]) -> Result<usize, AbiError> {
        let mut r = InputReader::new(bytes)?;
        let mut n = 0;
        while r.next_record()?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let mut w = InputWriter::new(CLOCK);
        let h: [(&str, &[u8]); 1] = [("trace", b"abc")];
        w.push(
            Some(b"k"),
            Some(b"v"),
            1,
            Some("t"),
            0,
            0,
            h.iter().copied(),
        );
        w.push(None, Some(b"value"), 2, Some("t"), 0, 1, std::iter::empty());
        let bytes = w.finish().to_vec();
        assert_eq!(read_all(&bytes), Ok(2));
        // Every truncation is an error, never a panic or a short batch.
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // The first record's fixed part starts after the header and the
        // topic table ("t": 2 + 2 + 1 bytes); its key length is at +24.
        let rec = INPUT_HEADER + 5;
        let set = |at: usize, v: &[u8]| {
            let mut b = bytes.clone();
            b[at..at + v.len()].copy_from_slice(v);
            b
        };
        // A key length near u32::MAX.
        let huge = set(rec + 24, &[0xFE, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF]);
        assert_eq!(read_all(&huge).unwrap_err().problem, "truncated");
        let topic = set(rec + 20, &7u16.to_le_bytes());
        assert_eq!(
            read_all(&topic).unwrap_err().problem,
            "topic index out of range"
        );
        let headers = set(rec + 22, &9u16.to_le_bytes());
        assert!(read_all(&headers).is_err());
    }

    #[test]
    fn direct_input_batches_match_buffered_ones() {
        let h: [(&str, &[u8]); 1] = [("trace", b"abc")];
        let mut buffered = InputWriter::new(CLOCK);
        buffered.push(
            Some(b"k1"),
            Some(b"v1"),
            10,
            Some("b"),
            3,
            42,
            h.iter().copied(),
        );
        buffered.push(None, None, 11, None, -1, -1, std::iter::empty());
        buffered.push(
            Some(b"k3"),
            Some(b"v3"),
            12,
            Some("a"),
            0,
            1,
            std::iter::empty(),
        );
        let want = buffered.finish().to_vec();

        let mut direct = InputWriter::default();
        direct.reset_with_topics(CLOCK, ["b", "a"], 64);
        direct.push_indexed(Some(b"k1"), Some(b"v1"), 10, 0, 3, 42, h.iter().copied());
        direct.push_indexed(None, None, 11, NO_TOPIC, -1, -1, std::iter::empty());
        direct.push_indexed(Some(b"k3"), Some(b"v3"), 12, 1, 0, 1, std::iter::empty());
        assert_eq!(direct.finish(), &want[..]);

        // An undeclared topic falls back to buffering, with the same bytes.
        let mut late = InputWriter::default();
        late.reset_with_topics(CLOCK, ["b"], 0);
        late.push(
            Some(b"k1"),
            Some(b"v1"),
            10,
            Some("b"),
            3,
            42,
            h.iter().copied(),
        );
        late.push(None, None, 11, None, -1, -1, std::iter::empty());
        late.push(
            Some(b"k3"),
            Some(b"v3"),
            12,
            Some("a"),
            0,
            1,
            std::iter::empty(),
        );
        assert_eq!(late.finish(), &want[..]);

        // The buffer can be taken and given back.
        let taken = late.take_buffer();
        assert_eq!(taken, want);
        late.restore_buffer(taken);
        late.reset(CLOCK);
        let empty = late.finish().to_vec();
        assert_eq!(InputReader::new(&empty).unwrap().count, 0);
    }

    #[test]
    fn result_batch_round_trips() {
        let mut w = ResultWriter::with_capacity(64);
        w.pass();
        w.begin_emit();
        w.output(OutputFields {
            value: Some(b"x"),
            ..Default::default()
        });
        w.output(OutputFields {
            key: Some(None),
            timestamp: Some(9),
            headers: Some(&[("h", b"1")]),
            value: None,
        });
        w.error("bad record");
        w.drop_input();
        let bytes = w.finish();
        let mut r = ResultReader::new(&bytes).unwrap();
        assert_eq!(r.count, 4);
        assert_eq!(r.next_status().unwrap(), Some(StatusView::Pass));
        assert_eq!(
            r.next_status().unwrap(),
            Some(StatusView::Emit { count: 2 })
        );
        let o1 = r.next_output().unwrap().unwrap();
        assert_eq!((o1.key, o1.value), (None, Some(&b"x"[..])));
        let o2 = r.next_output().unwrap().unwrap();
        assert_eq!(
            (o2.key, o2.timestamp, o2.value),
            (Some(None), Some(9), None)
        );
        assert_eq!(
            o2.headers().unwrap().collect::<Vec<_>>(),
            vec![("h", &b"1"[..])]
        );
        assert_eq!(
            r.next_status().unwrap(),
            Some(StatusView::Error("bad record"))
        );
        assert_eq!(r.next_status().unwrap(), Some(StatusView::Drop));
        assert_eq!(r.next_status().unwrap(), None);
    }

    #[test]
    fn runs_of_passes_and_drops_are_taken_whole_and_stop_at_other_statuses() {
        let mut w = ResultWriter::with_capacity(64);
        w.pass();
        w.pass();
        // An output whose bytes look like PASS statuses.
        w.emit_value(&[STATUS_PASS; 3]);
        w.pass();
        w.drop_input();
        w.drop_input();
        let bytes = w.finish();
        let mut r = ResultReader::new(&bytes).unwrap();
        assert_eq!(r.take_passes(), 2);
        assert_eq!(r.take_passes(), 0, "an EMIT is next");
        assert_eq!(r.take_drops(), 0, "an EMIT is next");
        assert_eq!(
            r.next_status().unwrap(),
            Some(StatusView::Emit { count: 1 })
        );
        assert_eq!(r.take_passes(), 0, "its output is not read yet");
        assert!(r.next_output().unwrap().is_some());
        assert!(r.next_output().unwrap().is_none());
        assert_eq!(r.take_passes(), 1);
        assert_eq!(r.take_drops(), 2);
        assert_eq!(r.take_passes(), 0, "all statuses are read");
        assert_eq!(r.next_status().unwrap(), None);
    }

    #[test]
    fn malformed_results_are_errors_not_panics() {
        let mut w = ResultWriter::with_capacity(8);
        w.begin_emit();
        w.output(OutputFields {
            value: Some(b"hello"),
            ..Default::default()
        });
        let good = w.finish();
        // Every truncation and a flipped byte at every position must decode to
        // an error or a value, never a panic.
        for cut in 0..good.len() {
            let mut r = match ResultReader::new(&good[..cut]) {
                Ok(r) => r,
                Err(_) => continue,
            };
            while let Ok(Some(s)) = r.next_status() {
                if let StatusView::Emit { .. } = s {
                    while let Ok(Some(_)) = r.next_output() {}
                }
            }
        }
        let mut bad = good.clone();
        bad[8] = 99;
        let mut r = ResultReader::new(&bad).unwrap();
        assert_eq!(r.next_status().unwrap_err().problem, "unknown status byte");
        let mut trailing = good.clone();
        trailing.push(0);
        let mut r = ResultReader::new(&trailing).unwrap();
        r.next_status().unwrap();
        r.next_output().unwrap();
        assert_eq!(
            r.next_status().unwrap_err().problem,
            "trailing bytes after the last status"
        );
    }

    #[test]
    fn outputs_inside_the_input_value_are_ranges_not_copies() {
        let input = b"hello world".to_vec();
        let mut w = ResultWriter::with_capacity(16);
        w.set_input_value(Some(&input));
        w.output(OutputFields {
            value: Some(&input[6..]),
            ..Default::default()
        });
        w.output(OutputFields {
            value: Some(b"world"),
            ..Default::default()
        });
        let bytes = w.finish();
        let mut r = ResultReader::new(&bytes).unwrap();
        assert_eq!(
            r.next_status().unwrap(),
            Some(StatusView::Emit { count: 2 })
        );
        let a = r.next_output().unwrap().unwrap();
        assert_eq!((a.value, a.input_range), (None, Some((6, 5))));
        let b = r.next_output().unwrap().unwrap();
        assert_eq!((b.value, b.input_range), (Some(&b"world"[..]), None));
    }

    #[test]
    fn emit_value_writes_what_begin_emit_and_output_write() {
        let input = b"hello world".to_vec();
        let write = |fast: bool| {
            let mut w = ResultWriter::with_capacity(16);
            w.set_input_value(Some(&input));
            for v in [&input[6..], b"other"] {
                if fast {
                    w.emit_value(v);
                } else {
                    w.begin_emit();
                    w.output(OutputFields {
                        value: Some(v),
                        ..Default::default()
                    });
                }
            }
            w.pass();
            w.finish()
        };
        assert_eq!(write(true), write(false));
    }

    #[test]
    fn a_map_returning_its_whole_input_value_passes_it() {
        let input = b"hello world".to_vec();
        let mut w = ResultWriter::with_capacity(16);
        w.set_input_value(Some(&input));
        w.emit_value(&input);
        w.emit_value(&input[..5]);
        let bytes = w.finish();
        let mut r = ResultReader::new(&bytes).unwrap();
        assert_eq!(r.next_status().unwrap(), Some(StatusView::Pass));
        assert_eq!(
            r.next_status().unwrap(),
            Some(StatusView::Emit { count: 1 })
        );
        let o = r.next_output().unwrap().unwrap();
        assert_eq!(o.input_range, Some((0, 5)));
    }

    #[test]
    fn timers_round_trip() {
        let t = [TimerView {
            key: b"k",
            domain: DOMAIN_PROCESSING,
            at: 99,
        }];
        let bytes = encode_timers(CLOCK, t.iter().copied());
        let mut r = TimerReader::new(&bytes).unwrap();
        assert_eq!(r.next_timer().unwrap(), Some(t[0]));
        assert_eq!(r.next_timer().unwrap(), None);
    }
}
