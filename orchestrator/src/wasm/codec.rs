//! Host records and their packed encoding (via `weir_udf_sdk::abi`, the same
//! codec the guest SDK uses). Outputs share one buffer: values and keys are
//! `Bytes` slices of the guest's result, not copies.

use std::sync::Arc;

use bytes::Bytes;
use weir_udf_sdk::abi::{self, BatchClock, InputWriter, ResultReader, StatusView};

use super::errors::FailureReason;
use super::instance::RecordResult;

/// Where an input came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePosition {
    pub topic: Option<Arc<str>>,
    pub partition: i32,
    pub offset: i64,
}

/// A record handed to a UDF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Event time, ms since the Unix epoch.
    pub timestamp: i64,
    pub headers: Vec<(String, Bytes)>,
    pub source: SourcePosition,
}

/// A record a UDF produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
    pub headers: Vec<(String, Bytes)>,
}

impl OutputRecord {
    /// The input, forwarded unchanged (a filter's pass).
    pub fn from_input(r: &InputRecord) -> Self {
        Self {
            key: r.key.clone(),
            value: r.value.clone(),
            timestamp: r.timestamp,
            headers: r.headers.clone(),
        }
    }
}

/// What an input's outputs inherit when the UDF does not set a field.
pub(crate) struct Inherit<'a> {
    pub key: Option<&'a Bytes>,
    pub timestamp: i64,
    pub headers: &'a [(String, Bytes)],
    pub pass_value: Option<&'a Bytes>,
}

impl<'a> Inherit<'a> {
    pub(crate) fn of(r: &'a InputRecord) -> Self {
        Self {
            key: r.key.as_ref(),
            timestamp: r.timestamp,
            headers: &r.headers,
            pass_value: r.value.as_ref(),
        }
    }

    /// The input forwarded unchanged (a PASS status).
    #[inline(always)]
    fn forwarded(&self) -> OutputRecord {
        OutputRecord {
            key: self.key.cloned(),
            value: self.pass_value.cloned(),
            timestamp: self.timestamp,
            headers: inherit_headers(self.headers),
        }
    }
}

/// What a PASS status for a timer is.
const TIMER_PASS: &str = "PASS status for a timer";

/// Encodes inputs into `w` (reused between calls). Records are written once,
/// straight into the batch, on the bet that they share the first record's
/// topic (`Arc`): a source partition's records do. Any other topic makes the
/// writer fall back to its buffered mode.
pub(crate) fn encode_inputs(w: &mut InputWriter, clock: BatchClock, inputs: &[InputRecord]) {
    let first = inputs.first().and_then(|r| r.source.topic.as_ref());
    w.reset_with_topics(clock, first.map(|t| &**t), 0);
    for r in inputs {
        let headers = r.headers.iter().map(|(n, v)| (n.as_str(), v.as_ref()));
        let (key, value) = (r.key.as_deref(), r.value.as_deref());
        let (ts, part, off) = (r.timestamp, r.source.partition, r.source.offset);
        match (&r.source.topic, first) {
            (None, _) => w.push_indexed(key, value, ts, abi::NO_TOPIC, part, off, headers),
            (Some(t), Some(f)) if Arc::ptr_eq(t, f) => {
                w.push_indexed(key, value, ts, 0, part, off, headers)
            }
            (Some(t), _) => w.push(key, value, ts, Some(t), part, off, headers),
        }
    }
    w.finish();
}

/// Decodes a result batch against the inputs it answers (`inherit(i)` gives
/// what input `i`'s outputs inherit; `can_pass` is false for timers, which
/// have no input record to forward). Records the UDF failed become
/// `dead(reason)` and their indexes are returned too. Any protocol violation
/// fails the whole call (the caller bisects).
pub(crate) fn decode_results<'a>(
    bytes: Bytes,
    n: usize,
    can_pass: bool,
    inherit: impl Fn(usize) -> Inherit<'a>,
    max_outputs: u32,
    dead: impl Fn(FailureReason) -> RecordResult,
) -> Result<(Vec<RecordResult>, Vec<u32>), String> {
    let mut r = ResultReader::new(&bytes).map_err(|e| e.to_string())?;
    if r.count as usize != n {
        return Err(format!("{} statuses for {n} inputs", r.count));
    }
    let slice = |s: &[u8]| bytes.slice_ref(s);
    let mut out = Vec::with_capacity(n);
    let mut failed = Vec::new();
    let mut i = 0;
    while i < n {
        // Runs of passes and drops are written in place, as native code
        // would: pushed one by one, each result was built on the stack and
        // its copy stalled on a partial store-to-load forward (~9 ns each).
        let run = r.take_passes();
        if run != 0 {
            if !can_pass {
                return Err(TIMER_PASS.into());
            }
            let passed = (i..i + run).map(|j| RecordResult::Outputs(vec![inherit(j).forwarded()]));
            out.extend(passed);
            i += run;
            continue;
        }
        let run = r.take_drops();
        if run != 0 {
            out.extend((0..run).map(|_| RecordResult::Outputs(Vec::new())));
            i += run;
            continue;
        }
        let inh = inherit(i);
        let status = r
            .next_status()
            .map_err(|e| e.to_string())?
            .ok_or("fewer statuses than announced")?;
        // The runs above take every PASS and DROP; their arms keep the match total.
        let d = match status {
            StatusView::Pass if can_pass => RecordResult::Outputs(vec![inh.forwarded()]),
            StatusView::Pass => return Err(TIMER_PASS.into()),
            StatusView::Drop => RecordResult::Outputs(Vec::new()),
            StatusView::Error(m) => {
                failed.push(i as u32);
                dead(FailureReason::UdfError {
                    message: m.to_owned(),
                })
            }
            StatusView::Emit { count } => {
                let mut outs = Vec::with_capacity(count.min(max_outputs) as usize);
                while let Some(o) = r.next_output().map_err(|e| e.to_string())? {
                    if outs.len() < max_outputs as usize {
                        outs.push(OutputRecord {
                            key: match o.key {
                                None => inh.key.cloned(),
                                Some(k) => k.map(slice),
                            },
                            value: match o.input_range {
                                None => o.value.map(slice),
                                Some((off, len)) => Some(input_slice(inh.pass_value, off, len)?),
                            },
                            timestamp: o.timestamp.unwrap_or(inh.timestamp),
                            headers: match o.headers() {
                                None => inherit_headers(inh.headers),
                                Some(hs) => hs.map(|(n, v)| (n.to_owned(), slice(v))).collect(),
                            },
                        });
                    }
                }
                if count > max_outputs {
                    failed.push(i as u32);
                    dead(FailureReason::TooManyOutputs {
                        count,
                        limit: max_outputs,
                    })
                } else {
                    RecordResult::Outputs(outs)
                }
            }
        };
        out.push(d);
        i += 1;
    }
    if r.next_status().map_err(|e| e.to_string())?.is_some() {
        return Err("more statuses than inputs".into());
    }
    Ok((out, failed))
}

/// A copy of the input's headers (most records have none: no call then).
#[inline]
fn inherit_headers(h: &[(String, Bytes)]) -> Vec<(String, Bytes)> {
    if h.is_empty() {
        Vec::new()
    } else {
        h.to_vec()
    }
}

/// `off..off+len` of the input's value, refusing ranges outside it.
fn input_slice(value: Option<&Bytes>, off: u32, len: u32) -> Result<Bytes, String> {
    let (off, len) = (off as usize, len as usize);
    match value {
        // All of it (an identity map): a plain clone, no slicing.
        Some(v) if off == 0 && len == v.len() => Ok(v.clone()),
        Some(v) if off.checked_add(len).is_some_and(|end| end <= v.len()) => {
            Ok(v.slice(off..off + len))
        }
        _ => Err(format!(
            "output value range {off}+{len} is outside the input's value"
        )),
    }
}

/// A clock for batches that carry no watermark.
pub(crate) fn clock(watermark: Option<i64>, processing_time: i64) -> BatchClock {
    BatchClock {
        watermark: watermark.unwrap_or(abi::NO_WATERMARK),
        processing_time,
    }
}

#[cfg(test)]
mod tests {
    use weir_udf_sdk::abi::ResultWriter;

    use super::*;
    use crate::wasm::instance::DeadLetter;

    fn record(value: &'static [u8]) -> InputRecord {
        InputRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(value)),
            timestamp: 7,
            ..Default::default()
        }
    }

    fn decode(
        bytes: Vec<u8>,
        inputs: &[InputRecord],
        can_pass: bool,
    ) -> Result<Vec<RecordResult>, String> {
        let inherit = |i: usize| Inherit::of(&inputs[i]);
        let dead = |reason| {
            RecordResult::DeadLetter(Box::new(DeadLetter {
                reason,
                module: "m".into(),
                version: "1".into(),
                digest: "d".into(),
            }))
        };
        decode_results(Bytes::from(bytes), inputs.len(), can_pass, inherit, 8, dead).map(|(r, _)| r)
    }

    #[test]
    fn pass_forwards_each_input_and_is_refused_for_timers() {
        let inputs = [record(b"a"), record(b"b"), record(b"c")];
        let mut w = ResultWriter::with_capacity(16);
        w.pass();
        w.drop_input();
        w.pass();
        let bytes = w.finish();
        let out = decode(bytes.clone(), &inputs, true).unwrap();
        let pass = |r: &InputRecord| RecordResult::Outputs(vec![OutputRecord::from_input(r)]);
        assert_eq!(
            out,
            vec![
                pass(&inputs[0]),
                RecordResult::Outputs(Vec::new()),
                pass(&inputs[2])
            ]
        );
        // A timer has no input record to forward.
        let err = decode(bytes, &inputs, false).unwrap_err();
        assert_eq!(err, "PASS status for a timer");
    }

    #[test]
    fn statuses_must_match_the_inputs_one_to_one() {
        let inputs = [record(b"a"), record(b"b")];
        let mut w = ResultWriter::with_capacity(16);
        w.pass();
        let err = decode(w.finish(), &inputs, true).unwrap_err();
        assert!(err.contains("1 statuses for 2 inputs"), "{err}");
    }
}
