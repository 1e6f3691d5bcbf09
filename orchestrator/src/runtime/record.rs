//! Records as they flow through a task, and the header that ties every output
//! to the source position it came from (the basis of deterministic replay).

use std::sync::Arc;

use bytes::Bytes;
use integer_encoding::VarInt;
use sha2::{Digest, Sha256};

/// Header on every Kafka output (sink and repartition topics): its identity,
/// `(source topic, partition, offset, seq)`, `seq` being its index among the
/// outputs of that source record, in a compact binary form (see
/// [`encode_id`]). Compact because tansu's sqlite storage writes and reads
/// every header byte of every record, and a readable form outweighed the
/// records themselves (`docs/runtime.md`).
pub const H_ID: &str = "weir-id";
/// Header on NATS outputs, and on Kafka outputs of Weir before `weir-id`
/// (still read): `<source topic>/<partition>/<offset>/<seq>` as text.
pub const H_ORIGIN: &str = "weir-origin";
/// Header on dead letters: the source topic. (Outputs of Weir before
/// `weir-origin` carried it and the next three as their identity; they are
/// still read.)
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

/// The identity of an output on a sink: `(source topic tag, partition,
/// offset, seq)`, the tag being [`topic_tag`] of the source topic's name.
pub type OutputId = (u64, i32, i64, u32);

/// A topic's tag in output identities: the first 8 bytes of the SHA-256 of
/// its name, big-endian. Stable across versions and platforms, and easy to
/// compute anywhere (`hashlib.sha256(name).digest()[:8]`).
pub fn topic_tag(topic: &str) -> u64 {
    let digest = Sha256::digest(topic.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Topic tags by name, computed once per topic: a task's outputs come from
/// a handful of topics, and hashing each output's would cost more than
/// writing it.
#[derive(Debug, Default)]
pub struct TopicTags {
    known: Vec<(Arc<str>, u64)>,
}

impl TopicTags {
    pub fn tag(&mut self, topic: &Arc<str>) -> u64 {
        if let Some((_, tag)) = self
            .known
            .iter()
            .find(|(t, _)| Arc::ptr_eq(t, topic) || **t == **topic)
        {
            return *tag;
        }
        let tag = topic_tag(topic);
        self.known.push((topic.clone(), tag));
        tag
    }

    /// The identity of `out`.
    pub fn id(&mut self, out: &Output) -> OutputId {
        (
            self.tag(&out.origin.topic),
            out.origin.partition,
            out.origin.offset,
            out.seq,
        )
    }
}

/// Appends the `weir-id` form of `id` to `buf`: the topic tag as 8 bytes
/// big-endian, then partition, offset and seq as protobuf varints (zigzag
/// for partition and offset): 13 bytes for an offset below a million,
/// where the text form took the topic's name plus the numbers' digits.
pub fn encode_id(id: &OutputId, buf: &mut Vec<u8>) {
    let (tag, partition, offset, seq) = *id;
    buf.extend_from_slice(&tag.to_be_bytes());
    let mut var = [0u8; 10];
    let n = partition.encode_var(&mut var);
    buf.extend_from_slice(&var[..n]);
    let n = offset.encode_var(&mut var);
    buf.extend_from_slice(&var[..n]);
    let n = seq.encode_var(&mut var);
    buf.extend_from_slice(&var[..n]);
}

/// Reads the `weir-id` form; `None` unless it is exactly one identity.
fn decode_id(v: &[u8]) -> Option<OutputId> {
    let tag = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let rest = &v[8..];
    let (partition, a) = i32::decode_var(rest)?;
    let (offset, b) = i64::decode_var(rest.get(a..)?)?;
    let (seq, c) = u32::decode_var(rest.get(a + b..)?)?;
    let whole = a + b + c == rest.len() && partition >= 0 && offset >= 0;
    whole.then_some((tag, partition, offset, seq))
}

impl Output {
    /// The `weir-origin` text form, for sinks whose headers are text (NATS).
    pub fn origin_text(&self) -> String {
        let o = &self.origin;
        format!("{}/{}/{}/{}", o.topic, o.partition, o.offset, self.seq)
    }
}

/// Reads `<topic>/<partition>/<offset>/<seq>`.
fn parse_origin(v: &str) -> Option<OutputId> {
    let mut it = v.rsplitn(4, '/');
    let seq = it.next()?.parse().ok()?;
    let offset = it.next()?.parse().ok()?;
    let partition = it.next()?.parse().ok()?;
    let topic = it.next().filter(|t| !t.is_empty())?;
    Some((topic_tag(topic), partition, offset, seq))
}

/// Reads an [`OutputId`] back from headers: `weir-id`, `weir-origin`, or
/// the four headers outputs carried before either, if present and valid.
pub fn output_id_from_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Option<OutputId> {
    let (mut topic, mut partition, mut offset, mut seq) = (None, None, None, None);
    for (k, v) in headers {
        let s = || std::str::from_utf8(v).ok();
        match k {
            H_ID => return decode_id(v),
            H_ORIGIN => return s().and_then(parse_origin),
            H_SOURCE_TOPIC => topic = s().map(topic_tag),
            H_SOURCE_PARTITION => partition = s().and_then(|s| s.parse().ok()),
            H_SOURCE_OFFSET => offset = s().and_then(|s| s.parse().ok()),
            H_SEQ => seq = s().and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    Some((topic?, partition?, offset?, seq?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(topic: &str, partition: i32, offset: i64, seq: u32) -> Output {
        Output {
            origin: SourcePos {
                topic: topic.into(),
                partition,
                offset,
            },
            seq,
            record: Record::value("x"),
        }
    }

    fn encoded(id: &OutputId) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_id(id, &mut buf);
        buf
    }

    #[test]
    fn the_topic_tag_is_the_sha256_prefix_of_the_name() {
        // `hashlib.sha256(b"orders").digest()[:8].hex()`
        assert_eq!(format!("{:016x}", topic_tag("orders")), "1c168adb00d208e4");
        assert_ne!(topic_tag("orders"), topic_tag("orders2"));
    }

    #[test]
    fn output_ids_round_trip_through_the_compact_header() {
        let mut tags = TopicTags::default();
        for (p, o, s) in [
            (0, 0, 0),
            (3, 42, 1),
            (i32::MAX, i64::MAX, u32::MAX),
            (7, 1_000_000, 2),
        ] {
            let out = output("orders", p, o, s);
            let id = tags.id(&out);
            assert_eq!(id, (topic_tag("orders"), p, o, s));
            let v = encoded(&id);
            let back = output_id_from_headers([(H_ID, &v[..])].into_iter());
            assert_eq!(back, Some(id), "{p}/{o}/{s}");
        }
        // A bench-sized identity (offset below a million): 13 bytes, where
        // the text form with a 41-character topic took 54.
        assert_eq!(
            encoded(&tags.id(&output("orders", 3, 999_999, 0))).len(),
            13
        );
    }

    #[test]
    fn a_damaged_compact_header_is_no_identity() {
        let v = encoded(&(topic_tag("orders"), 3, 42, 1));
        let mut longer = v.clone();
        longer.push(0);
        let mut negative = Vec::new();
        encode_id(&(1, -1, 42, 1), &mut negative);
        for bad in [
            &v[..v.len() - 1],
            &v[..8],
            &v[..3],
            &[][..],
            &longer[..],
            &negative[..],
            &[0xff; 30][..],
        ] {
            assert_eq!(
                output_id_from_headers([(H_ID, bad)].into_iter()),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn outputs_written_with_the_text_header_are_still_read() {
        let out = output("orders", 3, 42, 1);
        let v = out.origin_text();
        assert_eq!(v, "orders/3/42/1");
        let id = output_id_from_headers([(H_ORIGIN, v.as_bytes())].into_iter());
        assert_eq!(id, Some(TopicTags::default().id(&out)));
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
        assert_eq!(id, Some((topic_tag("orders"), 3, 42, 1)));
        assert_eq!(output_id_from_headers(old[..3].iter().copied()), None);
    }

    #[test]
    fn tags_are_cached_by_name_not_only_by_pointer() {
        let mut tags = TopicTags::default();
        let (a, b): (Arc<str>, Arc<str>) = ("orders".into(), "orders".into());
        assert_eq!(tags.tag(&a), tags.tag(&b));
        assert_eq!(tags.known.len(), 1);
        assert_ne!(tags.tag(&"payments".into()), tags.tag(&a));
    }
}
