//! Records as they flow through a task, and the headers that tie every output
//! to the source position it came from (the basis of deterministic replay).

use std::sync::Arc;

use bytes::Bytes;

/// Header on every output (sink and repartition topics): where it came from,
/// `<source topic>/<partition>/<offset>/<seq>`, `seq` being its index among
/// the outputs of that source record (topic names hold no `/`). One header,
/// not four: tansu's sqlite storage keeps each header of each record as a
/// row, written on produce and read on fetch (`docs/runtime.md`).
pub const H_ORIGIN: &str = "weir-origin";
/// Header on dead letters: the source topic. (Outputs of Weir before
/// `weir-origin` carried it and the next three; they are still read.)
pub const H_SOURCE_TOPIC: &str = "weir-source-topic";
/// Header on dead letters: the source partition (decimal).
pub const H_SOURCE_PARTITION: &str = "weir-source-partition";
/// Header on dead letters: the source offset (decimal).
pub const H_SOURCE_OFFSET: &str = "weir-source-offset";
/// Header on outputs of Weir before `weir-origin`: the sequence number.
pub const H_SEQ: &str = "weir-seq";
/// Header on an operator's side output (a CEP operator's `timed_out` or
/// `late`): the task writes it to that side's topic, not to the sinks.
pub const H_SIDE_OUTPUT: &str = "weir-side-output";
/// Header on dead letters: why the record was dead-lettered.
pub const H_DLQ_REASON: &str = "weir-dlq-reason";
/// Header on dead letters: the module (`name@version`) or `decode`.
pub const H_DLQ_MODULE: &str = "weir-dlq-module";

/// Where a record was read: the identity deterministic replay relies on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourcePos {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// A record: what operators see and produce. Keys, values and header values
/// are shared buffers, so handing records to an operator (a WASM UDF
/// included) and taking its outputs back copies no payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// Event time in epoch milliseconds.
    pub timestamp_ms: i64,
    pub headers: Vec<(String, Bytes)>,
}

impl Record {
    /// A record with a value only.
    pub fn value(value: impl Into<Bytes>) -> Self {
        Self {
            value: value.into(),
            ..Self::default()
        }
    }

    /// Payload bytes counted for metrics.
    pub fn size(&self) -> usize {
        self.value.len() + self.key.as_ref().map_or(0, Bytes::len)
    }
}

/// A record read from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub pos: SourcePos,
    pub record: Record,
}

/// One output of the pipeline, with the source position and sequence number
/// that identify it across replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub origin: SourcePos,
    pub seq: u32,
    pub record: Record,
}

/// A record that could not be processed and goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub origin: SourcePos,
    pub record: Record,
    pub reason: String,
    /// `name@version` of the module, or `decode` / the operator id for host operators.
    pub module: String,
}

/// The identity of an output on a sink: `(source topic, partition, offset, seq)`.
pub type OutputId = (Arc<str>, i32, i64, u32);

impl Output {
    pub fn id(&self) -> OutputId {
        (
            self.origin.topic.clone(),
            self.origin.partition,
            self.origin.offset,
            self.seq,
        )
    }

    /// The replay header every output carries: `(H_ORIGIN, value)`.
    pub fn origin_header(&self) -> (&'static str, String) {
        let o = &self.origin;
        (
            H_ORIGIN,
            format!("{}/{}/{}/{}", o.topic, o.partition, o.offset, self.seq),
        )
    }
}

/// Reads `<topic>/<partition>/<offset>/<seq>`.
fn parse_origin(v: &str) -> Option<OutputId> {
    let mut it = v.rsplitn(4, '/');
    let seq = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    let partition = it.next()?.parse().ok()?;
    let topic = it.next().filter(|t| !t.is_empty())?;
    Some((Arc::from(topic), partition, offset, seq))
}

/// Reads an [`OutputId`] back from headers: `weir-origin`, or the four
/// headers outputs carried before it, if present and valid.
pub fn output_id_from_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Option<OutputId> {
    let (mut topic, mut partition, mut offset, mut seq) = (None, None, None, None);
    for (k, v) in headers {
        let s = std::str::from_utf8(v).ok();
        match k {
            H_ORIGIN => return s.and_then(parse_origin),
            H_SOURCE_TOPIC => topic = s.map(Arc::<str>::from),
            H_SOURCE_PARTITION => partition = s.and_then(|s| s.parse().ok()),
            H_SOURCE_OFFSET => offset = s.and_then(|s| s.parse().ok()),
            H_SEQ => seq = s.and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    Some((topic?, partition?, offset?, seq?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_ids_round_trip_through_headers() {
        let out = Output {
            origin: SourcePos {
                topic: "orders".into(),
                partition: 3,
                offset: 42,
            },
            seq: 1,
            record: Record::value("x"),
        };
        let (k, v) = out.origin_header();
        assert_eq!((k, v.as_str()), ("weir-origin", "orders/3/42/1"));
        let id = output_id_from_headers([(k, v.as_bytes())].into_iter());
        assert_eq!(id, Some(out.id()));
        for bad in [
            "orders/3/42",
            "/3/42/1",
            "orders/x/42/1",
            "orders/3/42/-1",
            "",
        ] {
            let id = output_id_from_headers([(H_ORIGIN, bad.as_bytes())].into_iter());
            assert_eq!(id, None, "{bad}");
        }
    }

    #[test]
    fn outputs_written_with_the_four_old_headers_are_still_read() {
        let old = [
            (H_SOURCE_TOPIC, &b"orders"[..]),
            (H_SOURCE_PARTITION, b"3"),
            (H_SOURCE_OFFSET, b"42"),
            (H_SEQ, b"1"),
        ];
        let id = output_id_from_headers(old.into_iter());
        assert_eq!(id, Some((Arc::from("orders"), 3, 42, 1)));
        assert_eq!(output_id_from_headers(old[..3].iter().copied()), None);
    }
}
