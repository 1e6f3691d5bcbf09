//! The guest-side API: records, outputs, context, emitter, and the runners
//! the attribute macros call.

use crate::abi::{
    self, BatchClock, InputReader, OutputFields, RecordView, ResultWriter, TimerReader,
};
use crate::bindings::weir::udf as host;

pub use host::types::{Kind, Level, TimeDomain};

/// A UDF error: the record goes to the dead-letter topic with this message.
/// Anything printable converts into it, so `?` works on most errors.
pub struct Error {
    message: String,
}

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: core::fmt::Display> From<E> for Error {
    fn from(e: E) -> Self {
        Self {
            message: e.to_string(),
        }
    }
}

impl core::fmt::Debug for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// One input record, borrowed from the batch (no copies).
pub struct Record<'a> {
    view: RecordView<'a>,
}

impl<'a> Record<'a> {
    /// The value bytes; empty for a null value.
    pub fn value(&self) -> &'a [u8] {
        self.view.value.unwrap_or_default()
    }
    /// The value, `None` for a null value (a tombstone).
    pub fn value_opt(&self) -> Option<&'a [u8]> {
        self.view.value
    }
    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<&'a str> {
        core::str::from_utf8(self.value())
            .map_err(|e| Error::msg(format!("value is not UTF-8: {e}")))
    }
    pub fn key(&self) -> Option<&'a [u8]> {
        self.view.key
    }
    /// Event time in ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.view.timestamp
    }
    pub fn topic(&self) -> Option<&'a str> {
        self.view.topic
    }
    pub fn partition(&self) -> i32 {
        self.view.partition
    }
    pub fn offset(&self) -> i64 {
        self.view.offset
    }
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.view.headers()
    }
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.view
            .headers()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// A fired timer.
pub struct Timer<'a> {
    pub key: &'a [u8],
    pub domain: TimeDomain,
    /// The time it was registered for, in ms.
    pub at: i64,
}

/// An output record that sets more than its value. Unset fields keep the
/// input's key, timestamp and headers.
#[derive(Debug, Clone, Default)]
pub struct Output {
    key: Option<Option<Vec<u8>>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Option<Vec<(String, Vec<u8>)>>,
}

impl Output {
    pub fn value(v: impl Into<Vec<u8>>) -> Self {
        Self {
            value: Some(v.into()),
            ..Default::default()
        }
    }
    /// A null value (a tombstone for compacted topics).
    pub fn tombstone() -> Self {
        Self::default()
    }
    pub fn with_key(mut self, k: impl Into<Vec<u8>>) -> Self {
        self.key = Some(Some(k.into()));
        self
    }
    pub fn without_key(mut self) -> Self {
        self.key = Some(None);
        self
    }
    pub fn with_timestamp(mut self, ts: i64) -> Self {
        self.timestamp = Some(ts);
        self
    }
    /// Adds a header; the output then carries only the headers set here.
    pub fn with_header(mut self, name: impl Into<String>, v: impl Into<Vec<u8>>) -> Self {
        self.headers
            .get_or_insert_with(Vec::new)
            .push((name.into(), v.into()));
        self
    }
}

/// Anything a UDF can emit.
pub trait IntoOutput {
    fn write_to(self, w: &mut ResultWriter);
    /// Whether this is the input's whole value, unchanged (the same bytes,
    /// not a copy): a map's result that is then written as PASS.
    #[doc(hidden)]
    fn is_input(&self, _input: Option<&[u8]>) -> bool {
        false
    }
    /// Writes this as the one output of the current input (a map's result).
    #[doc(hidden)]
    fn write_single(self, w: &mut ResultWriter)
    where
        Self: Sized,
    {
        w.begin_emit();
        self.write_to(w);
    }
}

fn value_only(w: &mut ResultWriter, v: &[u8]) {
    w.output(OutputFields {
        value: Some(v),
        ..Default::default()
    });
}

impl IntoOutput for Vec<u8> {
    fn write_to(self, w: &mut ResultWriter) {
        value_only(w, &self)
    }
    #[inline]
    fn write_single(self, w: &mut ResultWriter) {
        w.emit_value(&self)
    }
}
/// The same bytes as the input's non-empty value (an empty value is never
/// PASS, as in [`ResultWriter::emit_value`]).
#[inline]
fn same_bytes(v: &[u8], input: Option<&[u8]>) -> bool {
    input.is_some_and(|i| !i.is_empty() && core::ptr::eq(v, i))
}

impl IntoOutput for &[u8] {
    fn write_to(self, w: &mut ResultWriter) {
        value_only(w, self)
    }
    #[inline]
    fn is_input(&self, input: Option<&[u8]>) -> bool {
        same_bytes(self, input)
    }
    #[inline]
    fn write_single(self, w: &mut ResultWriter) {
        w.emit_value(self)
    }
}
impl IntoOutput for String {
    fn write_to(self, w: &mut ResultWriter) {
        value_only(w, self.as_bytes())
    }
    #[inline]
    fn write_single(self, w: &mut ResultWriter) {
        w.emit_value(self.as_bytes())
    }
}
impl IntoOutput for &str {
    fn write_to(self, w: &mut ResultWriter) {
        value_only(w, self.as_bytes())
    }
    #[inline]
    fn is_input(&self, input: Option<&[u8]>) -> bool {
        same_bytes(self.as_bytes(), input)
    }
    #[inline]
    fn write_single(self, w: &mut ResultWriter) {
        w.emit_value(self.as_bytes())
    }
}
impl IntoOutput for Output {
    fn write_to(self, w: &mut ResultWriter) {
        let headers: Option<Vec<(&str, &[u8])>> = self
            .headers
            .as_ref()
            .map(|h| h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect());
        w.output(OutputFields {
            key: self.key.as_ref().map(|k| k.as_deref()),
            timestamp: self.timestamp,
            headers: headers.as_deref(),
            value: self.value.as_deref(),
        });
    }
}

/// Emits outputs for the current input.
pub struct Emitter<'w> {
    w: &'w mut ResultWriter,
    emitted: bool,
}

impl Emitter<'_> {
    pub fn emit(&mut self, o: impl IntoOutput) {
        if !self.emitted {
            self.w.begin_emit();
            self.emitted = true;
        }
        o.write_to(self.w);
    }
}

/// Access to the host for the current record (or timer): keyed state, timers
/// and the batch clock. State and timers are scoped to the record's key and
/// the operator; writes are committed only if the record succeeds.
pub struct Context {
    cursor: u32,
    clock: BatchClock,
}

impl Context {
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        host::state::get(self.cursor, name)
    }
    pub fn put(&mut self, name: &str, value: impl AsRef<[u8]>) {
        host::state::put(self.cursor, name, value.as_ref())
    }
    pub fn delete(&mut self, name: &str) {
        host::state::delete(self.cursor, name)
    }
    /// A `u64` stored with [`Context::put_u64`]; `None` if absent or not 8 bytes.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        let v = self.get(name)?;
        Some(u64::from_le_bytes(v.as_slice().try_into().ok()?))
    }
    pub fn put_u64(&mut self, name: &str, v: u64) {
        self.put(name, v.to_le_bytes())
    }
    /// Fires `on_timer` for this key once `at` (ms) is reached in `domain`.
    pub fn register_timer(&mut self, domain: TimeDomain, at: i64) {
        host::timers::register(self.cursor, domain, at)
    }
    pub fn delete_timer(&mut self, domain: TimeDomain, at: i64) {
        host::timers::delete(self.cursor, domain, at)
    }
    /// The event-time watermark when the batch was made, if any.
    pub fn watermark(&self) -> Option<i64> {
        (self.clock.watermark != abi::NO_WATERMARK).then_some(self.clock.watermark)
    }
    /// The host's processing time (ms) when the batch was made. UDFs see no
    /// other clock, so replays are deterministic.
    pub fn processing_time(&self) -> i64 {
        self.clock.processing_time
    }
}

/// Logs into the host's tracing (rate-limited there).
pub fn log(level: Level, message: &str) {
    host::logging::log(level, message)
}

/// Adds to a named counter, exported by the host as a metric.
pub fn counter(name: &str, delta: u64) {
    host::counters::add(name, delta)
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    pub use wit_bindgen;

    type Exported = crate::bindings::exports::weir::udf::guest::Descriptor;

    pub fn descriptor(kind: Kind) -> Exported {
        Exported {
            kind,
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// What a record's function did with the writer.
    pub enum Done {
        /// Nothing written: the record passes unchanged.
        Pass,
        /// Its status is written.
        Written,
    }

    /// Runs `f` over every record of an input batch and encodes the statuses.
    /// `f` writes the record's status, or returns [`Done::Pass`] without
    /// touching the writer; an `Err` replaces what it wrote with an ERROR.
    ///
    /// PASS statuses are counted here and written as a run before the next
    /// other status: a map returning its input or a filter keeping it then
    /// leaves the writer alone, and the compiler keeps this loop's state in
    /// registers (the writer lives in linear memory).
    pub fn records(
        batch: &[u8],
        mut f: impl FnMut(&mut Context, &Record<'_>, &mut ResultWriter) -> Result<Done>,
    ) -> core::result::Result<Vec<u8>, String> {
        let mut r = InputReader::new(batch).map_err(|e| e.to_string())?;
        let mut w = ResultWriter::with_capacity(batch.len() + 16);
        let mut cx = Context {
            cursor: 0,
            clock: r.clock,
        };
        let mut passes = 0u32;
        // Where the next status goes. A pass leaves the writer alone, so the
        // mark is only read again after a record that wrote.
        let mut mark = w.mark();
        while let Some(view) = r.next_record().map_err(|e| e.to_string())? {
            match f(&mut cx, &Record { view }, &mut w) {
                Ok(Done::Pass) => {
                    debug_assert_eq!(w.mark(), mark, "a PASS wrote to the result");
                    passes += 1;
                    // Straight to the next record: with `mark` updated in the
                    // other arms instead, the guest ran 8 more instructions a
                    // record.
                    cx.cursor += 1;
                    continue;
                }
                Ok(Done::Written) if passes == 0 => {}
                Ok(Done::Written) => w.insert_passes(mark, core::mem::take(&mut passes)),
                Err(e) => failed(&mut w, mark, core::mem::take(&mut passes), e),
            }
            mark = w.mark();
            cx.cursor += 1;
        }
        w.insert_passes(w.mark(), passes);
        Ok(w.finish())
    }

    /// Replaces what a failed record wrote with its ERROR status, behind
    /// the PASS run before it. Out of line: the per-record loop stays small.
    #[cold]
    #[inline(never)]
    fn failed(w: &mut ResultWriter, mark: (usize, u32), passes: u32, e: Error) {
        w.rollback(mark);
        w.error(e.message());
        w.insert_passes(mark, passes);
    }

    /// A map's result: one output, or PASS for the input's value unchanged.
    #[inline]
    pub fn one<T: IntoOutput, E: Into<Error>>(
        w: &mut ResultWriter,
        input: &Record<'_>,
        r: core::result::Result<T, E>,
    ) -> Result<Done> {
        let out = r.map_err(Into::into)?;
        if out.is_input(input.value_opt()) {
            return Ok(Done::Pass);
        }
        w.set_input_value(input.value_opt());
        out.write_single(w);
        Ok(Done::Written)
    }

    /// A filter's result: pass or drop.
    #[inline]
    pub fn keep<E: Into<Error>>(
        w: &mut ResultWriter,
        _input: &Record<'_>,
        r: core::result::Result<bool, E>,
    ) -> Result<Done> {
        if r.map_err(Into::into)? {
            return Ok(Done::Pass);
        }
        w.drop_input();
        Ok(Done::Written)
    }

    /// A flat map's result: any number of outputs.
    #[inline]
    pub fn many<I, E>(
        w: &mut ResultWriter,
        input: &Record<'_>,
        r: core::result::Result<I, E>,
    ) -> Result<Done>
    where
        I: IntoIterator,
        I::Item: IntoOutput,
        E: Into<Error>,
    {
        let items = r.map_err(Into::into)?;
        w.set_input_value(input.value_opt());
        w.begin_emit();
        for o in items {
            o.write_to(w);
        }
        Ok(Done::Written)
    }

    /// A process function's run: outputs go through an [`Emitter`].
    #[inline]
    pub fn emitted<E: Into<Error>>(
        w: &mut ResultWriter,
        input: &Record<'_>,
        f: impl FnOnce(&mut Emitter<'_>) -> core::result::Result<(), E>,
    ) -> Result<Done> {
        w.set_input_value(input.value_opt());
        let mut out = Emitter { w, emitted: false };
        f(&mut out).map_err(Into::into)?;
        if !out.emitted {
            out.w.drop_input();
        }
        Ok(Done::Written)
    }

    pub fn timers<E: Into<Error>>(
        batch: &[u8],
        mut f: impl FnMut(&mut Context, &Timer<'_>, &mut Emitter<'_>) -> core::result::Result<(), E>,
    ) -> core::result::Result<Vec<u8>, String> {
        let mut r = TimerReader::new(batch).map_err(|e| e.to_string())?;
        let mut w = ResultWriter::with_capacity(64);
        let mut cx = Context {
            cursor: 0,
            clock: r.clock,
        };
        while let Some(t) = r.next_timer().map_err(|e| e.to_string())? {
            let timer = Timer {
                key: t.key,
                domain: if t.domain == abi::DOMAIN_EVENT {
                    TimeDomain::EventTime
                } else {
                    TimeDomain::ProcessingTime
                },
                at: t.at,
            };
            let mark = w.mark();
            let mut out = Emitter {
                w: &mut w,
                emitted: false,
            };
            match f(&mut cx, &timer, &mut out).map_err(Into::into) {
                Ok(()) if !out.emitted => w.drop_input(),
                Ok(()) => {}
                Err(e) => {
                    w.rollback(mark);
                    w.error(e.message());
                }
            }
            cx.cursor += 1;
        }
        Ok(w.finish())
    }

    /// For UDFs without a timer handler: every timer is dropped.
    pub fn no_timers(batch: &[u8]) -> core::result::Result<Vec<u8>, String> {
        let r = TimerReader::new(batch).map_err(|e| e.to_string())?;
        let mut w = ResultWriter::with_capacity(16 + r.count as usize);
        for _ in 0..r.count {
            w.drop_input();
        }
        Ok(w.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::__private::{emitted, keep, one, records, Done};
    use super::*;
    use crate::abi::{InputWriter, ResultReader, StatusView, NO_WATERMARK};

    fn batch(values: &[&str]) -> Vec<u8> {
        let mut w = InputWriter::new(BatchClock {
            watermark: NO_WATERMARK,
            processing_time: 0,
        });
        for (i, v) in values.iter().enumerate() {
            let value = Some(v.as_bytes());
            w.push(None, value, 0, Some("t"), 0, i as i64, std::iter::empty());
        }
        w.finish().to_vec()
    }

    /// The statuses of a result batch, spelt out.
    fn statuses(bytes: &[u8]) -> Vec<String> {
        let mut r = ResultReader::new(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(s) = r.next_status().unwrap() {
            out.push(match s {
                StatusView::Pass => "pass".to_owned(),
                StatusView::Drop => "drop".to_owned(),
                StatusView::Error(m) => format!("error {m}"),
                StatusView::Emit { .. } => {
                    let mut values = Vec::new();
                    while let Some(o) = r.next_output().unwrap() {
                        values.push(String::from_utf8_lossy(o.value.unwrap_or(b"?")).into_owned());
                    }
                    format!("emit {}", values.join(","))
                }
            });
        }
        assert_eq!(r.count as usize, out.len());
        out
    }

    fn run(
        values: &[&str],
        f: impl FnMut(&mut Context, &Record<'_>, &mut ResultWriter) -> Result<Done>,
    ) -> Vec<String> {
        statuses(&records(&batch(values), f).unwrap())
    }

    #[test]
    fn runs_of_passes_keep_their_place_among_other_statuses() {
        let map = |_: &mut Context, r: &Record<'_>, w: &mut ResultWriter| {
            let out: Result<&[u8]> = match r.value() {
                b"bad" => Err(Error::msg("bad record")),
                b"x" => Ok(b"X"),
                v => Ok(v),
            };
            one(w, r, out)
        };
        assert_eq!(
            run(&["a", "b", "x", "c", "bad", "d", "e"], map),
            [
                "pass",
                "pass",
                "emit X",
                "pass",
                "error bad record",
                "pass",
                "pass"
            ]
        );
        assert_eq!(run(&["bad", "a"], map), ["error bad record", "pass"]);
        assert_eq!(run(&["x", "x"], map), ["emit X", "emit X"]);
    }

    #[test]
    fn a_failure_after_outputs_leaves_only_its_error_behind_the_passes() {
        let f = |_: &mut Context, r: &Record<'_>, w: &mut ResultWriter| match r.value() {
            b"late" => emitted(w, r, |out| {
                out.emit("partial");
                Err(Error::msg("late"))
            }),
            b"two" => emitted(w, r, |out| {
                out.emit("1");
                out.emit("2");
                Ok::<(), Error>(())
            }),
            v => one(w, r, Ok::<_, Error>(v)),
        };
        assert_eq!(
            run(&["a", "late", "b", "two", "c"], f),
            ["pass", "error late", "pass", "emit 1,2", "pass"]
        );
    }

    #[test]
    fn filters_pass_and_drop_in_order() {
        let f = |_: &mut Context, r: &Record<'_>, w: &mut ResultWriter| {
            keep(w, r, Ok::<_, Error>(r.value() == b"k"))
        };
        assert_eq!(
            run(&["k", "d", "k", "k", "d"], f),
            ["pass", "drop", "pass", "pass", "drop"]
        );
    }

    #[test]
    fn an_empty_value_returned_unchanged_is_an_output_not_a_pass() {
        let f = |_: &mut Context, r: &Record<'_>, w: &mut ResultWriter| {
            one(w, r, Ok::<_, Error>(r.value()))
        };
        assert_eq!(run(&["", "a"], f), ["emit ", "pass"]);
    }
}
