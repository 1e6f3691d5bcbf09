//! What a consumed Kafka message becomes: a record for the operators, or a
//! dead letter when it does not match its source's format. Pure (no broker,
//! no async), so every case is tested with messages built in memory.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rdkafka::message::{Headers, Message};

use crate::domain::job::spec::{Format, SourceSpec};
use crate::runtime::record::{output_id_from_headers, topic_tag, Record, SourcePos};

/// Why a record does not match its source's format. Its text is the
/// dead letter's `weir-dlq-reason`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("decode: not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("decode: event time field `{field}` is missing")]
    EventTimeMissing { field: String },
    #[error("decode: event time field `{field}` is not an integer")]
    EventTimeNotInteger { field: String },
}

/// One message, decoded.
#[derive(Debug)]
pub struct Decoded {
    /// Where it was read.
    pub pos: SourcePos,
    /// Key, value, timestamp (the source's event time field when it has one)
    /// and, on a repartition topic, the headers the earlier stage's operators set.
    pub record: Record,
    /// On a repartition topic: the source position the record came from,
    /// which dead letters name instead of the internal topic.
    pub origin: Option<SourcePos>,
    /// `Err`: the record goes to the dead-letter topic, not to the operators.
    pub checked: Result<(), DecodeError>,
}

/// Decodes the messages of one task: its sources' formats and its stage.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The job's sources by topic; a repartition topic has none, and its
    /// records pass as they are.
    sources: HashMap<String, SourceSpec>,
    /// One shared name per source topic, so records do not each allocate one.
    topics: HashMap<String, Arc<str>>,
    /// The same names by their tag, for the source positions that records
    /// of a repartition topic carry in their identity.
    by_tag: HashMap<u64, Arc<str>>,
    /// A later stage reads a repartition topic, whose records carry the
    /// earlier stage's headers.
    repartitioned: bool,
}

impl Decoder {
    /// A decoder for `sources` (by topic) at `stage` (0 reads the job's
    /// sources, `job_sources`).
    pub fn new(sources: HashMap<String, SourceSpec>, stage: u32, job_sources: &[String]) -> Self {
        let topics: HashMap<String, Arc<str>> = sources
            .keys()
            .map(|t| (t.clone(), Arc::<str>::from(t.as_str())))
            .collect();
        let by_tag = job_sources
            .iter()
            .map(|t| (topic_tag(t), Arc::<str>::from(t.as_str())))
            .collect();
        Self {
            sources,
            topics,
            by_tag,
            repartitioned: stage > 0,
        }
    }

    /// Copies the message out of the consumer's buffer (the one copy of its
    /// bytes) and checks it against its source's format.
    pub fn decode<M: Message>(&self, m: &M) -> Decoded {
        let topic = self
            .topics
            .get(m.topic())
            .cloned()
            .unwrap_or_else(|| Arc::from(m.topic()));
        let pos = SourcePos {
            topic,
            partition: m.partition(),
            offset: m.offset(),
        };
        let mut record = Record {
            key: m.key().map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
            headers: Vec::new(),
        };
        let mut origin = None;
        if self.repartitioned {
            if let Some(hs) = m.headers() {
                let all = || hs.iter().map(|h| (h.key, h.value.unwrap_or_default()));
                origin = output_id_from_headers(all()).and_then(|(tag, partition, offset, _)| {
                    Some(SourcePos {
                        topic: self.by_tag.get(&tag)?.clone(),
                        partition,
                        offset,
                    })
                });
                // Headers the operators of the earlier stage set travel on;
                // the runtime's own are per hop.
                record.headers = all()
                    .filter(|(k, _)| !k.starts_with("weir-"))
                    .map(|(k, v)| (k.to_owned(), Bytes::copy_from_slice(v)))
                    .collect();
            }
        }
        let checked = check(self.sources.get(m.topic()), &mut record);
        Decoded {
            pos,
            record,
            origin,
            checked,
        }
    }
}

/// Checks a record against its source's format and sets its event time.
fn check(source: Option<&SourceSpec>, record: &mut Record) -> Result<(), DecodeError> {
    let Some(source) = source else { return Ok(()) };
    match source.format {
        Format::Raw => Ok(()),
        Format::Json => {
            let doc: serde_json::Value =
                serde_json::from_slice(&record.value).map_err(DecodeError::NotJson)?;
            if let Some(field) = &source.event_time_field {
                let mut cur = &doc;
                for part in field.split('.') {
                    cur = cur.get(part).ok_or_else(|| DecodeError::EventTimeMissing {
                        field: field.clone(),
                    })?;
                }
                record.timestamp_ms =
                    cur.as_i64()
                        .ok_or_else(|| DecodeError::EventTimeNotInteger {
                            field: field.clone(),
                        })?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;
    use crate::domain::job::spec::StartPosition;
    use crate::runtime::record::{
        encode_id, H_ID, H_SEQ, H_SOURCE_OFFSET, H_SOURCE_PARTITION, H_SOURCE_TOPIC,
    };

    fn source(topic: &str, format: Format, field: Option<&str>) -> SourceSpec {
        SourceSpec {
            topic: topic.into(),
            format,
            start: StartPosition::Earliest,
            event_time_field: field.map(str::to_owned),
            max_out_of_orderness: None,
            max_out_of_orderness_ms: None,
        }
    }

    fn decoder(sources: &[SourceSpec], stage: u32) -> Decoder {
        let by_topic = sources
            .iter()
            .map(|s| (s.topic.clone(), s.clone()))
            .collect();
        Decoder::new(by_topic, stage, &[])
    }

    /// The origin the later-stage tests' records carry.
    fn orders_2_17() -> SourcePos {
        SourcePos {
            topic: "orders".into(),
            partition: 2,
            offset: 17,
        }
    }

    /// A later stage's decoder: it reads `rp`, the job reads `job_sources`.
    fn later_stage(job_sources: &[&str]) -> Decoder {
        let job: Vec<String> = job_sources.iter().map(|t| t.to_string()).collect();
        Decoder::new(HashMap::new(), 1, &job)
    }

    /// A message on `topic` partition 3, offset 42.
    fn message(
        topic: &str,
        key: Option<&str>,
        value: Option<&str>,
        timestamp: Timestamp,
        headers: &[(&str, Option<&[u8]>)],
    ) -> OwnedMessage {
        let hs = (!headers.is_empty()).then(|| {
            headers.iter().fold(OwnedHeaders::new(), |hs, (k, v)| {
                hs.insert(Header { key: k, value: *v })
            })
        });
        OwnedMessage::new(
            value.map(|v| v.as_bytes().to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            topic.into(),
            timestamp,
            3,
            42,
            hs,
        )
    }

    fn raw(topic: &str, value: Option<&str>) -> OwnedMessage {
        message(topic, None, value, Timestamp::NotAvailable, &[])
    }

    #[test]
    fn keys_values_and_the_position_are_copied_out() {
        let d = decoder(&[source("orders", Format::Raw, None)], 0);
        let m = message(
            "orders",
            Some("k1"),
            Some("v1"),
            Timestamp::CreateTime(1_700),
            &[],
        );
        let out = d.decode(&m);
        out.checked.unwrap();
        assert_eq!(out.record.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(&out.record.value[..], b"v1");
        assert_eq!(out.record.timestamp_ms, 1_700);
        assert_eq!(
            (&*out.pos.topic, out.pos.partition, out.pos.offset),
            ("orders", 3, 42)
        );
        assert_eq!(out.origin, None);
    }

    #[test]
    fn known_topics_share_one_name_and_unknown_ones_get_their_own() {
        let d = decoder(&[source("orders", Format::Raw, None)], 0);
        let a = d.decode(&raw("orders", Some("a")));
        let b = d.decode(&raw("orders", Some("b")));
        assert!(Arc::ptr_eq(&a.pos.topic, &b.pos.topic));
        let other = d.decode(&raw("elsewhere", Some("c")));
        assert_eq!(&*other.pos.topic, "elsewhere");
        other.checked.unwrap();
    }

    #[test]
    fn a_null_value_is_empty_and_a_missing_key_is_none() {
        let d = decoder(&[source("t", Format::Raw, None)], 0);
        let out = d.decode(&raw("t", None));
        out.checked.unwrap();
        assert!(out.record.value.is_empty());
        assert_eq!(out.record.key, None);
        assert_eq!(out.record.size(), 0);
    }

    #[test]
    fn a_null_value_on_a_json_source_is_not_json() {
        let d = decoder(&[source("t", Format::Json, None)], 0);
        let out = d.decode(&raw("t", None));
        assert!(
            matches!(out.checked, Err(DecodeError::NotJson(_))),
            "{:?}",
            out.checked
        );
    }

    #[test]
    fn broker_timestamps_of_either_kind_are_kept_and_a_missing_one_is_zero() {
        let d = decoder(&[source("t", Format::Raw, None)], 0);
        for (ts, want) in [
            (Timestamp::CreateTime(5), 5),
            (Timestamp::LogAppendTime(7), 7),
            (Timestamp::NotAvailable, 0),
        ] {
            let out = d.decode(&message("t", None, Some("x"), ts, &[]));
            assert_eq!(out.record.timestamp_ms, want, "{ts:?}");
        }
    }

    #[test]
    fn a_json_source_reads_the_event_time_field_over_the_broker_timestamp() {
        let d = decoder(&[source("t", Format::Json, Some("meta.ts"))], 0);
        let m = message(
            "t",
            None,
            Some(r#"{"meta":{"ts":1234}}"#),
            Timestamp::CreateTime(99),
            &[],
        );
        let out = d.decode(&m);
        out.checked.unwrap();
        assert_eq!(out.record.timestamp_ms, 1234);
    }

    #[test]
    fn a_json_source_without_an_event_time_field_keeps_the_broker_timestamp() {
        let d = decoder(&[source("t", Format::Json, None)], 0);
        let m = message("t", None, Some("[1,2]"), Timestamp::CreateTime(99), &[]);
        let out = d.decode(&m);
        out.checked.unwrap();
        assert_eq!(out.record.timestamp_ms, 99);
    }

    #[test]
    fn json_sources_reject_what_does_not_match() {
        let d = decoder(&[source("t", Format::Json, Some("meta.ts"))], 0);
        let not_json = d.decode(&raw("t", Some("nope")));
        assert!(matches!(not_json.checked, Err(DecodeError::NotJson(_))));
        // The record goes to the dead-letter topic as it was read.
        assert_eq!(&not_json.record.value[..], b"nope");

        let missing = d.decode(&raw("t", Some(r#"{"meta":{}}"#)));
        assert!(
            matches!(&missing.checked, Err(DecodeError::EventTimeMissing { field }) if field == "meta.ts"),
            "{:?}",
            missing.checked
        );
        let not_int = d.decode(&raw("t", Some(r#"{"meta":{"ts":"soon"}}"#)));
        assert!(
            matches!(&not_int.checked, Err(DecodeError::EventTimeNotInteger { field }) if field == "meta.ts"),
            "{:?}",
            not_int.checked
        );
        // The reason text is the dead letter's header.
        assert_eq!(
            missing.checked.unwrap_err().to_string(),
            "decode: event time field `meta.ts` is missing"
        );
    }

    #[test]
    fn raw_sources_and_repartition_topics_take_anything() {
        let d = decoder(&[source("t", Format::Raw, None)], 1);
        d.decode(&raw("t", Some("\u{0}not json"))).checked.unwrap();
        // A repartition topic is no source of the job: no format to check.
        d.decode(&raw("job-repartition-1", Some("nope")))
            .checked
            .unwrap();
    }

    fn position_headers(partition: &'static [u8]) -> Vec<(&'static str, Option<&'static [u8]>)> {
        vec![
            (H_SOURCE_TOPIC, Some(b"orders")),
            (H_SOURCE_PARTITION, Some(partition)),
            (H_SOURCE_OFFSET, Some(b"17")),
            (H_SEQ, Some(b"0")),
            ("x-tag", Some(b"tagged")),
            ("x-empty", None),
        ]
    }

    #[test]
    fn a_later_stage_reads_the_origin_and_keeps_user_headers_only() {
        let d = later_stage(&["orders"]);
        let m = message(
            "rp",
            Some("u1"),
            Some("{}"),
            Timestamp::CreateTime(1),
            &position_headers(b"2"),
        );
        let out = d.decode(&m);
        out.checked.unwrap();
        assert_eq!(out.origin, Some(orders_2_17()));
        assert_eq!(
            out.record.headers,
            vec![
                ("x-tag".to_owned(), Bytes::from_static(b"tagged")),
                // A header without a value travels on as an empty one.
                ("x-empty".to_owned(), Bytes::new()),
            ]
        );
        // The position is where this stage read it.
        assert_eq!((&*out.pos.topic, out.pos.offset), ("rp", 42));
    }

    #[test]
    fn a_later_stage_names_the_source_of_a_compact_identity() {
        let d = later_stage(&["orders"]);
        let decode = |topic: &str| {
            let mut id = Vec::new();
            encode_id(&(topic_tag(topic), 2, 17, 0), &mut id);
            let m = message(
                "rp",
                None,
                Some("x"),
                Timestamp::NotAvailable,
                &[(H_ID, Some(&id[..]))],
            );
            d.decode(&m)
        };
        let out = decode("orders");
        assert_eq!(out.origin, Some(orders_2_17()));
        assert!(out.record.headers.is_empty(), "the identity is per hop");
        // A source the job does not read is no origin: dead letters then
        // name the repartition topic.
        assert_eq!(decode("elsewhere").origin, None);
    }

    #[test]
    fn bad_position_headers_give_no_origin_but_the_record_flows_on() {
        let d = later_stage(&["orders"]);
        for bad in [&b"two"[..], &b"\xff"[..], &b""[..]] {
            let m = message(
                "rp",
                None,
                Some("x"),
                Timestamp::NotAvailable,
                &position_headers(bad),
            );
            let out = d.decode(&m);
            out.checked.unwrap();
            assert_eq!(out.origin, None, "{bad:?}");
            assert_eq!(out.record.headers.len(), 2, "{bad:?}");
        }
        // Without any headers at all, there is nothing to carry.
        let out = d.decode(&raw("rp", Some("x")));
        assert_eq!((out.origin, out.record.headers.len()), (None, 0));
    }

    #[test]
    fn the_first_stage_ignores_headers() {
        let d = decoder(&[source("t", Format::Raw, None)], 0);
        let m = message(
            "t",
            None,
            Some("x"),
            Timestamp::NotAvailable,
            &position_headers(b"2"),
        );
        let out = d.decode(&m);
        assert_eq!(out.origin, None);
        assert!(out.record.headers.is_empty());
    }
}
