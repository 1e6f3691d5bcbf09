//! The fast path of [`Fields::parse`](super::Fields::parse): one pass over
//! the JSON text that checks it and reads the keys a rule reads, without
//! serde's visitor machinery (under WASM it was about a quarter of the
//! rule's time).
//!
//! It only says yes where serde_json surely accepts the text and would
//! read the same slots: anything it is not sure of (an escape in a key or
//! a read string, a number read that serde might refuse, deep nesting, any
//! error) gives `None`, and the caller reads the text with serde_json, so
//! every error, and every rare case, is serde_json's own.

use super::{SlotSeed, SlotValue, Tree};

/// Deeper than this, the text is left to serde_json (whose own limit is
/// 128 for what it reads, none for what it skips).
const MAX_DEPTH: u32 = 100;

/// Reads `tree`'s keys of `raw` into `out`, or `None`: leave it to serde.
/// `layout` is what the events before looked like; it learns this one's.
pub(super) fn scan(
    tree: &Tree,
    raw: &[u8],
    out: &mut [Option<SlotValue>],
    layout: &mut Layout,
) -> Option<()> {
    let mut s = Scanner { b: raw, at: 0 };
    s.ws();
    if s.peek() == Some(b'{') && tree.slot.is_none() {
        s.object(tree, out, 1, Some(layout))?;
    } else {
        s.select(tree, out, 0)?;
    }
    s.ws();
    (s.at == raw.len()).then_some(())
}

/// The keys of the last events' outer object, member by member, each as
/// its text from the opening quote to the colon: a topic's events mostly
/// share their keys and their order, so the scanner compares the text at
/// a member's start with the one expected there, in one masked compare,
/// instead of reading the key, finding it among the rule's and then its
/// colon. A key is taken this way only when its text is exactly that of
/// a plain key read before (printable ASCII, no escape), so the checks
/// it skips would have passed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    members: Vec<Member>,
}

/// At most this many members of an event are kept.
const LAYOUT_MEMBERS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Member {
    /// `"key":`, first byte lowest, the rest zero.
    text: u128,
    /// Ones over the bytes of `text`.
    mask: u128,
    len: u8,
    /// The key's index in the tree's children.
    child: Option<u16>,
}

/// Matches nothing: a member's text starts with a quote, never a zero.
const NO_MEMBER: Member = Member {
    text: 0,
    mask: u128::MAX,
    len: 0,
    child: None,
};

impl Layout {
    /// Member `i`'s text length and child, when `rest` starts with it.
    #[inline(always)]
    fn expect(&self, i: usize, rest: &[u8]) -> Option<(usize, Option<usize>)> {
        let m = self.members.get(i)?;
        let x = u128::from_le_bytes(*rest.first_chunk::<16>()?);
        (x & m.mask == m.text).then(|| (usize::from(m.len), m.child.map(usize::from)))
    }

    /// Keeps `text` (a key with its quotes, then its colon) as member `i`
    /// of the layout, if the scanner may take it as a whole.
    fn learn(&mut self, i: usize, text: &[u8], child: Option<usize>) {
        if i >= LAYOUT_MEMBERS || text.len() > 16 {
            return;
        }
        // The colon right after the closing quote, and a plain key.
        let Some(key) = text
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\":"))
        else {
            return;
        };
        if !key
            .iter()
            .all(|c| (0x20..0x7f).contains(c) && *c != b'"' && *c != b'\\')
        {
            return;
        }
        // A child index that does not fit is not kept (taken as no child,
        // the key's value would go unread).
        let Ok(child) = child.map(u16::try_from).transpose() else {
            return;
        };
        let mut bytes = [0u8; 16];
        bytes[..text.len()].copy_from_slice(text);
        let member = Member {
            text: u128::from_le_bytes(bytes),
            mask: u128::MAX >> (8 * (16 - text.len())),
            len: text.len() as u8,
            child,
        };
        if self.members.len() <= i {
            self.members.resize(i + 1, NO_MEMBER);
        }
        self.members[i] = member;
    }
}

// Words of eight bytes, tested all at once (SWAR). Each test flags a
// byte by its top bit; a borrow or carry out of a flagged byte may flag
// bytes after it too, never one before, so the first flagged byte is
// exact (and only the first is used).
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Flags the bytes of `x` equal to `b`.
#[inline]
fn bytes_equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    y.wrapping_sub(ONES) & !y & HIGH
}

/// A key of at most seven plain ASCII bytes (what [`Scanner::short_plain`]
/// reads in one word, with flag `HIGH`) as one number: its bytes, first
/// lowest, and its length in the top byte, so two such keys are equal when
/// their numbers are. Any other key is `u64::MAX`, which no such key is:
/// the scanner compares those byte by byte.
pub(super) fn key_word(key: &[u8]) -> u64 {
    let mut bytes = [b'"'; 8];
    match bytes.get_mut(..key.len()) {
        Some(head) if key.len() < 8 => head.copy_from_slice(key),
        _ => return u64::MAX,
    }
    let x = u64::from_le_bytes(bytes);
    // Short and plain exactly when the scanner's test first flags the
    // quote after it.
    let m = string_special(x) | (x & HIGH);
    if (m.trailing_zeros() / 8) as usize != key.len() {
        return u64::MAX;
    }
    word_of(x, key.len())
}

/// The number [`key_word`] gives the key of the `len` (0–7) first bytes
/// of `x`.
#[inline]
fn word_of(x: u64, len: usize) -> u64 {
    low_bytes(x, len) | ((len as u64) << 56)
}

/// The `len` (0–7) first bytes of `x`, the rest zero.
#[inline]
fn low_bytes(x: u64, len: usize) -> u64 {
    x & ((1u64 << (8 * len)) - 1)
}

/// Flags what ends a plain run in a string: a quote, a backslash, a
/// control byte (below 0x20).
#[inline]
fn string_special(x: u64) -> u64 {
    bytes_equal(x, b'"') | bytes_equal(x, b'\\') | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
}

/// Flags the bytes that are not ASCII digits: `b ^ 0x30` is 0–9 for a
/// digit, and adding 0x76 sets the top bit of anything from 10 up.
#[inline]
fn not_digits(x: u64) -> u64 {
    let t = x ^ (ONES * 0x30);
    (t.wrapping_add(ONES * 0x76) | t) & HIGH
}

struct Scanner<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    /// Past any whitespace. Events mostly have none between tokens: the
    /// first byte is tested before any loop, because under WASM entering
    /// a loop costs an interruption check even when it runs no turn.
    #[inline(always)]
    fn ws(&mut self) {
        if let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.ws_run();
        }
    }

    #[inline(never)]
    fn ws_run(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A value read as [`super::Select`] reads it: into its slot, into
    /// its keys when an object, else checked and dropped.
    fn select(&mut self, tree: &Tree, out: &mut [Option<SlotValue>], depth: u32) -> Option<()> {
        if let Some(slot) = tree.slot {
            let v = self.slot_value(depth)?;
            if let Some(s) = out.get_mut(usize::from(slot)) {
                *s = Some(v);
            }
            return Some(());
        }
        match self.peek()? {
            b'{' => self.object(tree, out, depth + 1, None),
            // serde reads these in full here (not skipped): a string is
            // checked as UTF-8, a number for its range.
            b'"' => self.string_read().map(drop),
            b'0'..=b'9' | b'-' => None,
            _ => self.skip(depth),
        }
    }

    /// An object whose keys in `tree` are read; a key seen again replaces
    /// what was read of it.
    fn object(
        &mut self,
        tree: &Tree,
        out: &mut [Option<SlotValue>],
        depth: u32,
        mut layout: Option<&mut Layout>,
    ) -> Option<()> {
        if self.open(b'}', depth)? {
            return Some(());
        }
        let mut member = 0;
        loop {
            let known = match &layout {
                Some(l) => l.expect(member, self.b.get(self.at..)?),
                None => None,
            };
            let child = match known {
                Some((len, child)) => {
                    self.at += len;
                    child
                }
                None => {
                    let start = self.at;
                    let child = self.key(tree)?;
                    if let Some(l) = layout.as_deref_mut() {
                        l.learn(member, &self.b[start..self.at], child);
                    }
                    child
                }
            };
            member += 1;
            self.ws();
            match child.and_then(|i| tree.children.get(i)) {
                // The usual cases inline, so the position stays in a
                // register (under WASM a call here costs more than the
                // work): a short ASCII string read into its slot, a short
                // string or a plain integer skipped.
                Some((_, child)) => match child.slot {
                    Some(slot) if self.peek() == Some(b'"') => match self.short_plain(HIGH) {
                        Some((x, len)) => {
                            let v = SlotValue::short_word(low_bytes(x, len), len);
                            if let Some(s) = out.get_mut(usize::from(slot)) {
                                *s = Some(v);
                            }
                        }
                        None => self.select(child, out, depth)?,
                    },
                    // Read whole: `select` replaces the slot.
                    Some(_) => self.select(child, out, depth)?,
                    None => {
                        child.clear(out);
                        self.select(child, out, depth)?;
                    }
                },
                None => match self.peek()? {
                    b'"' => {
                        if self.short_plain(0).is_none() {
                            self.string_skip_long()?;
                        }
                    }
                    b'-' | b'0'..=b'9' => match self.plain_integer() {
                        Some(end) => self.at = end,
                        None => drop(self.number_long()?),
                    },
                    _ => self.skip(depth)?,
                },
            }
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.ws();
                }
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => {
                    self.ws();
                    if self.separator(b'}')? {
                        return Some(());
                    }
                }
            }
        }
    }

    /// A member's key and its colon: the index of the key in `tree`'s
    /// children, if the rule reads it.
    #[inline(always)]
    fn key(&mut self, tree: &Tree) -> Option<Option<usize>> {
        if self.peek()? != b'"' {
            return None;
        }
        // A short plain key is compared as one number; others byte by
        // byte.
        let child = match self.short_plain(HIGH) {
            Some((x, len)) => {
                let word = word_of(x, len);
                tree.words.iter().position(|w| *w == word)
            }
            None => {
                let key = self.string_read()?;
                tree.children.iter().position(|(k, _)| k.as_bytes() == key)
            }
        };
        if self.peek() == Some(b':') {
            self.at += 1;
        } else {
            self.ws();
            self.eat(b':')?;
        }
        Some(child)
    }

    /// At an opening quote, a string whose closing quote is among the
    /// eight bytes after it, with no byte before that `flag_high` or
    /// [`string_special`] flags: moved past, its word and length (0–7).
    /// `None`, not moved, for any other string: it is read the long way.
    #[inline(always)]
    fn short_plain(&mut self, flag_high: u64) -> Option<(u64, usize)> {
        let x = self.word_at(self.at + 1)?;
        let m = string_special(x) | (x & flag_high);
        if m == 0 {
            return None;
        }
        let len = (m.trailing_zeros() / 8) as usize;
        // Past the text the word is zero, which `string_special` flags:
        // the quote must be the text's own byte.
        if self.b.get(self.at + 1 + len) != Some(&b'"') {
            return None;
        }
        self.at += len + 2;
        Some((x, len))
    }

    /// The eight bytes at `at` as a word (first byte lowest), zero past
    /// the end of the text, so a number or string that ends the text
    /// (most events end with one) is tested a word at a time too; `None`
    /// at or past the end, or in a text shorter than a word.
    #[inline(always)]
    fn word_at(&self, at: usize) -> Option<u64> {
        if let Some(chunk) = self.b.get(at..).and_then(|r| r.first_chunk::<8>()) {
            return Some(u64::from_le_bytes(*chunk));
        }
        // The text's last word, its bytes before `at` shifted out.
        let last = self.b.last_chunk::<8>()?;
        let gone = (at + 8).checked_sub(self.b.len())?;
        (gone < 8).then(|| u64::from_le_bytes(*last) >> (8 * gone))
    }

    /// Moves past bytes eight at a time while `special` flags none of
    /// them, stopping at the first it flags. `special` must flag a zero
    /// byte (every test here does), so it stops at the text's end too.
    #[inline]
    fn skip_plain(&mut self, special: impl Fn(u64) -> u64) {
        while let Some(x) = self.word_at(self.at) {
            let m = special(x);
            if m != 0 {
                self.at += (m.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
    }

    /// A string serde reads (not skips), with no escape: its bytes, which
    /// are UTF-8.
    fn string_read(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        let mut ascii = true;
        loop {
            self.skip_plain(|x| string_special(x) | (x & HIGH));
            match self.peek()? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                c => ascii &= c < 0x80,
            }
            self.at += 1;
        }
        let s = &self.b[start..self.at];
        self.at += 1;
        if !ascii {
            std::str::from_utf8(s).ok()?;
        }
        Some(s)
    }

    /// A string serde skips: escapes checked for form only, as serde does.
    fn string_skip(&mut self) -> Option<()> {
        if self.short_plain(0).is_some() {
            return Some(());
        }
        self.string_skip_long()
    }

    /// [`string_skip`](Self::string_skip) of a string that is not short
    /// and plain.
    fn string_skip_long(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            self.skip_plain(string_special);
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let hex = self.b.get(self.at + 1..self.at + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.at += 1,
            }
        }
    }

    /// A value serde skips (`IgnoredAny`), checked as it checks it.
    fn skip(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string_skip(),
            b'{' => {
                if self.open(b'}', depth + 1)? {
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    self.string_skip()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.separator(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                if self.open(b']', depth + 1)? {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.separator(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.ident(b"true"),
            b'f' => self.ident(b"false"),
            b'n' => self.ident(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => None,
        }
    }

    /// Past the bracket that opens a container at `depth` (`None` when
    /// too deep for the fast path): whether `close` ends it at once.
    fn open(&mut self, close: u8, depth: u32) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.ws();
        Some(self.eat(close).is_some())
    }

    /// After a member or an element: `,` (more follow: false) or `close`
    /// (the end: true), each consumed; anything else is `None`.
    fn separator(&mut self, close: u8) -> Option<bool> {
        let c = self.peek()?;
        self.at += 1;
        if c == b',' {
            self.ws();
            Some(false)
        } else {
            (c == close).then_some(true)
        }
    }

    fn ident(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.b.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A number in JSON's form: whether it is a plain integer (no
    /// fraction, no exponent).
    fn number(&mut self) -> Option<bool> {
        if let Some(end) = self.plain_integer() {
            self.at = end;
            return Some(true);
        }
        self.number_long()
    }

    /// [`number`](Self::number) of one that is not a plain integer, byte
    /// by byte.
    fn number_long(&mut self) -> Option<bool> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits1()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digits1()?;
            integer = false;
        }
        Some(integer)
    }

    /// Where the integer here ends (an optional minus, then `0` or digits
    /// not starting with `0`), when it is followed by a byte that ends a
    /// number (not a fraction nor an exponent): found a word at a time,
    /// without moving. `None` for anything else, read byte by byte.
    #[inline(always)]
    fn plain_integer(&self) -> Option<usize> {
        let start = self.at + usize::from(self.peek()? == b'-');
        let mut at = start;
        // Each word ends the loop unless all eight are digits; a text
        // shorter than a word is read byte by byte.
        while let Some(x) = self.word_at(at) {
            let m = not_digits(x);
            if m != 0 {
                at += (m.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        while self.b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = at - start;
        let leading_zero = self.b.get(start) == Some(&b'0') && digits > 1;
        let more = matches!(self.b.get(at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(at)
    }

    fn digits(&mut self) {
        self.skip_plain(not_digits);
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// At least one digit.
    fn digits1(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A value read into a slot, as [`SlotSeed`] reads it.
    fn slot_value(&mut self, depth: u32) -> Option<SlotValue> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                // Short and ASCII: no UTF-8 check needed.
                if let Some((x, len)) = self.short_plain(HIGH) {
                    return Some(SlotValue::short_word(low_bytes(x, len), len));
                }
                if let Some(s) = self.string_read() {
                    // UTF-8 checked by `string_read`.
                    return std::str::from_utf8(s).ok().map(SlotValue::string);
                }
                self.at = start;
            }
            b't' => return self.ident(b"true").map(|()| SlotValue::Json(true.into())),
            b'f' => return self.ident(b"false").map(|()| SlotValue::Json(false.into())),
            b'n' => return self.ident(b"null").map(|()| SlotValue::Json(().into())),
            b'-' | b'0'..=b'9' => {
                if let Some(v) = self.small_integer() {
                    return Some(v);
                }
                self.at = start;
            }
            _ => {}
        }
        // Floats, escapes, arrays, objects: checked here, then read by
        // serde from their own text, as it reads them in place.
        self.skip(depth)?;
        let text = &self.b[start..self.at];
        let mut de = serde_json::Deserializer::from_slice(text);
        let v = serde::Deserializer::deserialize_any(&mut de, SlotSeed).ok()?;
        de.end().ok()?;
        Some(v)
    }

    /// An integer of at most 18 digits (so no overflow), not `-0`: as
    /// serde reads it (`u64` if not negative, else `i64`).
    fn small_integer(&mut self) -> Option<SlotValue> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if !self.number()? {
            return None;
        }
        let digits = &self.b[start + usize::from(negative)..self.at];
        if digits.len() > 18 || (negative && digits == b"0") {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some(SlotValue::Json(if negative {
            // At most 18 digits: fits an i64.
            (-(n as i64)).into()
        } else {
            n.into()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fields;
    use super::super::{Fields, Read, Select, SlotValue};
    use super::{scan, Layout};
    use serde::de::DeserializeSeed;

    fn parts(f: &Fields) -> (&super::Tree, usize) {
        match f {
            Fields::Some { tree, slots } => (tree, usize::from(*slots)),
            Fields::All => panic!("paths read"),
        }
    }

    fn by_scan(f: &Fields, raw: &[u8]) -> Option<Vec<Option<SlotValue>>> {
        let (tree, n) = parts(f);
        let mut out = vec![None; n];
        scan(tree, raw, &mut out, &mut super::Layout::default()).map(|()| out)
    }

    fn by_serde(f: &Fields, raw: &[u8]) -> Result<Vec<Option<SlotValue>>, String> {
        let (tree, n) = parts(f);
        let mut out = vec![None; n];
        let mut de = serde_json::Deserializer::from_slice(raw);
        Select {
            tree,
            out: &mut out,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// What [`Fields::parse`] reads, fast path or not, as a list of slots.
    fn parsed(f: &Fields, raw: &[u8]) -> Result<Vec<Option<SlotValue>>, String> {
        let (_, n) = parts(f);
        match f.parse(raw).map_err(|e| e.to_string())? {
            Read::Few(s) => Ok(s[..n].to_vec()),
            Read::Slots(s) => Ok(s.to_vec()),
            Read::Whole(_) => panic!("paths read"),
        }
    }

    /// Whatever the fast path accepts, serde accepts and reads the same.
    #[track_caller]
    fn agrees(f: &Fields, raw: &[u8]) -> bool {
        match by_scan(f, raw) {
            Some(got) => {
                assert_eq!(
                    Ok(got),
                    by_serde(f, raw),
                    "{}",
                    String::from_utf8_lossy(raw)
                );
                true
            }
            None => false,
        }
    }

    #[track_caller]
    fn fast(f: &Fields, raw: &str) {
        assert!(agrees(f, raw.as_bytes()), "not taken fast: {raw}");
    }

    fn rule_fields() -> Fields {
        fields(&[&["kind"], &["user", "country"], &["n"], &["tags"]])
    }

    /// A number or a string that ends the text (most events end so) is
    /// read a word at a time too, its word zero past the text's end.
    #[test]
    fn values_that_end_the_text_are_read_fast_as_serde_does() {
        let f = rule_fields();
        for raw in [
            r#"{"kind":"a"}"#,
            r#"{"n":12}"#,
            r#"{"n":-1234567}"#,
            r#"{"n":123456789}"#,
            r#"{"x":1,"n":1700000000123}"#,
            r#"{"user":"u1","kind":"abcdefg"}"#,
            r#"{"kind":"a","n":0}"#,
            "{\"n\":42}\n",
            r#"{"kind":"x","k":""}"#,
        ] {
            fast(&f, raw);
        }
        // Not a plain integer nor a short plain string, cut short, or a
        // text shorter than a word: read as serde reads it, or refused.
        for raw in [
            r#"{"n":1}"#,
            r#"{"n":12.5}"#,
            r#"{"n":012}"#,
            r#"{"n":-}"#,
            r#"{"n":12"#,
            r#"{"kind":"ab"#,
            r#"{"kind":"ab\"}"#,
            "{\"kind\":\"a\u{1}\"}",
            r#"{"kind":"é"}"#,
        ] {
            agrees(&f, raw.as_bytes());
            assert_eq!(
                parsed(&f, raw.as_bytes()),
                by_serde(&f, raw.as_bytes()),
                "{raw}"
            );
        }
    }

    #[test]
    fn reads_usual_events_fast_as_serde_does() {
        let f = rule_fields();
        for raw in [
            r#"{"user":"u000042","kind":"a","amount":123,"ts":1700000000000}"#,
            r#" { "kind" : "b" , "n" : -17 , "user" : { "country" : "US" , "id" : [1, {"x": 2}] } } "#,
            "{\n\t\"kind\":\r\n\"c\"}\n",
            r#"{}"#,
            r#"{"kind":"a long string of more than twenty-two bytes"}"#,
            r#"{"kind":"żółw 🐢","n":0,"tags":null}"#,
            r#"{"clé":"valeur","kind":true}"#,
            r#"{"kind":false,"n":123456789012345678}"#,
            r#"{"n":-123456789012345678}"#,
            // Skipped values of every form.
            r#"{"a":[],"b":{},"c":[[[]]],"d":"x\"y\\z\/\b\f\n\r\t\u00e9\uD800","e":-0.5e-3,"f":1E+9,"g":0,"h":null,"kind":"a"}"#,
            // Read whole, through serde on its own text.
            r#"{"tags":["a",{"b":[1,2.5]}],"n":1.5,"kind":"esc\"aped"}"#,
            r#"{"n":12345678901234567890123,"kind":"\u0041"}"#,
            r#"{"n":-0,"tags":{"z":1,"a":[true]}}"#,
            r#"{"n":1e3,"tags":-0.0}"#,
            // Keys seen twice: the last counts, whatever it holds.
            r#"{"user":{"country":"US"},"user":{"id":1},"kind":"a","kind":"b"}"#,
            r#"{"user":{"country":"US"},"user":[1]}"#,
            r#"{"user":"x","user":null,"user":true}"#,
            // Not an object: nothing read, but checked.
            r#"[1,"two",{"three":3}]"#,
            "null",
            " true ",
            r#""text""#,
        ] {
            fast(&f, raw);
        }
    }

    #[test]
    fn leaves_what_it_is_unsure_of_to_serde() {
        let f = rule_fields();
        for raw in [
            // Escaped keys are decoded by serde.
            r#"{"k\u0069nd":"a"}"#,
            // Numbers serde reads in full at the top or as an object read.
            "7",
            "-1",
            r#"{"user":12}"#,
            r#"{"user":{"country":"US"},"user":3}"#,
            r#"{"user":"\ud800"}"#,
        ] {
            assert!(by_scan(&f, raw.as_bytes()).is_none(), "{raw}");
            // Either way, the runner reads them as serde does.
            assert_eq!(parsed(&f, raw.as_bytes()), by_serde(&f, raw.as_bytes()));
        }
        // A slot serde refuses (out of range, a lone surrogate in a read
        // string) is refused as serde refuses it.
        for raw in [r#"{"n":1e400}"#, r#"{"kind":"\ud800"}"#] {
            assert!(by_scan(&f, raw.as_bytes()).is_none(), "{raw}");
            let got = parsed(&f, raw.as_bytes());
            assert!(got.is_err(), "{raw}");
            assert_eq!(got, by_serde(&f, raw.as_bytes()));
        }
        // Deep nesting.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(150), "]".repeat(150));
        assert!(by_scan(&f, deep.as_bytes()).is_none());
        assert!(f.parse(deep.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_what_is_not_json_with_serdes_error() {
        let f = rule_fields();
        for bad in [
            "",
            " ",
            "{",
            "}",
            "{\"kind\":}",
            "{} x",
            "{\"kind\":tru}",
            "{\"kind\":\"a\",}",
            "{\"kind\" \"a\"}",
            "{kind:1}",
            "{\"a\":[1,]}",
            "{\"a\":[1 2]}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":-}",
            "{\"a\":+1}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"tab\there\"}",
            "{\"kind\":\"a\"\n",
            "{\"a\":nul}",
            "[1,2",
            "{\"a\":{\"b\":1}",
            "{\"a\":1}}",
            "\u{feff}{}",
            "{\"n\":1,\"n\":}",
            "{\"kind\":\"\u{1}\"}",
        ] {
            assert!(by_scan(&f, bad.as_bytes()).is_none(), "{bad:?}");
            let got = parsed(&f, bad.as_bytes());
            assert!(got.is_err(), "{bad:?}");
            assert_eq!(got, by_serde(&f, bad.as_bytes()), "{bad:?}");
        }
        // Not UTF-8: in a key or a string read, refused; in a string
        // skipped, serde does not look, and neither does the fast path.
        for raw in [&b"{\"k\xffnd\":1}"[..], b"{\"kind\":\"\xff\"}"] {
            assert!(by_scan(&f, raw).is_none());
            assert!(f.parse(raw).is_err());
        }
        assert!(agrees(&f, b"{\"other\":\"\xff\",\"kind\":\"a\"}"));
    }

    /// Keys of every length around a word's (compared as one number up to
    /// seven bytes, byte by byte beyond), read or skipped, and numbers
    /// ending near the end of the text, where no whole word is left.
    #[test]
    fn short_keys_and_numbers_at_the_end_read_as_serde_does() {
        let keys = [
            "",
            "k",
            "ki",
            "kin",
            "kind",
            "kinds",
            "kindsx",
            "kindsxy",
            "kindsxyz",
            "kindsxyz1",
        ];
        // Keys of 0, 4, 7, 8 and 9 bytes are read, the others skipped;
        // `n` is read too.
        let f = fields(&[
            &[""],
            &["kind"],
            &["kindsxy"],
            &["kindsxyz"],
            &["kindsxyz1"],
            &["n"],
        ]);
        for read in keys {
            for other in keys {
                let raw = format!(r#"{{"{other}":"v","{read}":"w","n":-12}}"#);
                fast(&f, &raw);
            }
        }
        for raw in [
            r#"{"n":1}"#,
            r#"{"n":-0}"#,
            r#"{"n":12345678}"#,
            r#"{"a":123456789,"b":0}"#,
            "[1,22,333,4444444444]",
        ] {
            fast(&f, raw);
        }
        for bad in [
            r#"{"n":01}"#,
            r#"{"n":-}"#,
            r#"{"n":1.}"#,
            r#"{"n":00000000000}"#,
        ] {
            assert!(by_scan(&f, bad.as_bytes()).is_none(), "{bad}");
        }
    }

    /// Random edits of valid events: the fast path never accepts what
    /// serde refuses, nor reads anything else than serde.
    #[test]
    fn agrees_with_serde_on_random_edits() {
        let f = rule_fields();
        let seeds: &[&[u8]] = &[
            br#"{"user":{"country":"US","id":[1,{"x":-2.5e3}]},"kind":"a","n":42,"tags":["t",null,true]}"#,
            br#"{"kind":"b","n":-7,"s":"q\"\\\u00e9","user":"x","kind":"c"}"#,
            br#"[{"kind":"a"},0.5,"z",false]"#,
            br#"{"n":1.25,"tags":{"a":{"b":[]}},"kind":"\u0041bc"}"#,
            // Runs of eight bytes and more, read a word at a time.
            b"{\"kind\":\"abcdefghijklmnop\",\"n\":1234567890123456,\"note\":\"a long plain text, \xc3\xa9 too\",\"ts\":1700000000000,\"user\":{\"country\":\"United States \xc3\xa9\"}}",
        ];
        let mut rng = fastrand::Rng::with_seed(16);
        let mut fast_taken = 0;
        for _ in 0..100_000 {
            let mut raw = seeds[rng.usize(..seeds.len())].to_vec();
            edit(&mut rng, &mut raw);
            if agrees(&f, &raw) {
                fast_taken += 1;
            } else {
                // Left to serde: the runner reads what serde reads.
                assert_eq!(parsed(&f, &raw), by_serde(&f, &raw));
            }
        }
        assert!(fast_taken > 5_000, "{fast_taken}");
    }

    /// One to three random inserts, removals or changes of a byte.
    fn edit(rng: &mut fastrand::Rng, raw: &mut Vec<u8>) {
        let alphabet = b"{}[]:,\"\\ \t\n0123456789-+.eEtruefalsn/uAbc\xc3\xa9\x01";
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..=raw.len());
            let c = alphabet[rng.usize(..alphabet.len())];
            match rng.u8(..3) {
                0 => raw.insert(at, c),
                1 if at < raw.len() => {
                    raw.remove(at);
                }
                _ if at < raw.len() => raw[at] = c,
                _ => {}
            }
        }
    }

    /// As a runner reads a stream: one layout carried from each event to
    /// the next. Half the events are edited (in their keys, too, where the
    /// layout expects other text); whatever the scanner accepts reads as
    /// serde reads it, and the usual events take the layout's keys.
    #[test]
    fn a_layout_learned_from_the_events_before_reads_as_serde_does() {
        let f = rule_fields();
        let (tree, n) = parts(&f);
        let seeds: &[&[u8]] = &[
            br#"{"user":"u000042","kind":"a","amount":123,"ts":1700000000000}"#,
            br#"{"kind":"b","n":-7,"user":{"country":"US"},"tags":[1,2],"a_longer_key":1}"#,
            br#"{ "kind" : "c" , "n" : 1 }"#,
            br#"{"n":1,"kind":"a","kind":"b","user":"x"}"#,
        ];
        let mut rng = fastrand::Rng::with_seed(17);
        let mut layout = Layout::default();
        let (mut fast, mut known) = (0, 0);
        for _ in 0..100_000 {
            let seed = rng.usize(..seeds.len());
            let mut raw = seeds[seed].to_vec();
            // Runs of events of one seed, as a topic's events come.
            let edited = rng.bool();
            if edited {
                edit(&mut rng, &mut raw);
            }
            let mut out = vec![None; n];
            let learned = layout.members.len();
            if scan(tree, &raw, &mut out, &mut layout).is_some() {
                let want = by_serde(&f, &raw);
                assert_eq!(Ok(out), want, "{}", String::from_utf8_lossy(&raw));
                fast += 1;
                known += usize::from(!edited && learned > 0);
            }
        }
        assert!(fast > 40_000, "{fast}");
        assert!(known > 20_000, "{known}");
    }

    /// A layout's keys are taken only where the text is exactly theirs.
    #[test]
    fn a_layout_takes_only_the_text_it_learned() {
        let f = rule_fields();
        let (tree, n) = parts(&f);
        let mut layout = Layout::default();
        let read = |layout: &mut Layout, raw: &str| {
            let mut out = vec![None; n];
            scan(tree, raw.as_bytes(), &mut out, layout).map(|()| out)
        };
        let first = r#"{"kind":"a","n":12,"user":"somebody","x":true}"#;
        assert!(read(&mut layout, first).is_some());
        assert_eq!(layout.members.len(), 4);
        for raw in [
            first,
            r#"{"kinx":"a","n":12,"user":"somebody","x":true}"#,
            r#"{"n":12,"kind":"a","user":"somebody","x":true}"#,
            r#"{"kind" :"a","n":12,"user":"somebody","x":true}"#,
            r#"{"kind":"b","n":"12","user":{"country":"FR"},"x":1}"#,
            r#"{"kind":"a"}"#,
        ] {
            let got = read(&mut layout, raw);
            assert_eq!(
                got.ok_or(()),
                by_serde(&f, raw.as_bytes()).map_err(drop),
                "{raw}"
            );
        }
        // A key with an escape, or longer than a layout holds, is not kept.
        let mut layout = Layout::default();
        assert!(read(&mut layout, r#"{"k\u0069nd":"a","a_key_of_fifteen":1}"#).is_none());
        assert!(read(&mut layout, r#"{"a_key_of_fifteen":1,"kind":"a"}"#).is_some());
        assert_eq!(layout.members.len(), 2);
        assert_eq!(layout.members[0].len, 0, "a key too long to keep");
    }

    /// The word tests find the first byte the bytewise tests find, for
    /// every byte value at every position behind every other.
    #[test]
    fn word_tests_find_the_first_flagged_byte() {
        use super::{not_digits, string_special, HIGH};
        let first = |m: u64| (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
        let mut rng = fastrand::Rng::with_seed(8);
        for _ in 0..200_000 {
            let mut bytes = [0u8; 8];
            for b in &mut bytes {
                // Mostly plain bytes, so the flagged one is often late.
                *b = if rng.u8(..4) == 0 {
                    rng.u8(..)
                } else {
                    rng.u8(b'0'..=b'z')
                };
            }
            let x = u64::from_le_bytes(bytes);
            let special = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
            assert_eq!(
                first(string_special(x)),
                bytes.iter().position(|&c| special(c)),
                "{bytes:?}"
            );
            assert_eq!(
                first(string_special(x) | (x & HIGH)),
                bytes.iter().position(|&c| special(c) || c >= 0x80),
                "{bytes:?}"
            );
            assert_eq!(
                first(not_digits(x)),
                bytes.iter().position(|c| !c.is_ascii_digit()),
                "{bytes:?}"
            );
        }
    }
}
