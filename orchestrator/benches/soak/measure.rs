//! Measurements: a reader per sink that reads every output once as it
//! arrives (latency, throughput, and the exactly-once ledger the final
//! checks use), and a probe of the broker's metadata round trip.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use weir::runtime::record::{output_id_from_headers, topic_tag};

use crate::system::{Job, INPUT};

/// What a sink reader has seen over the whole run.
#[derive(Default)]
pub struct Ledger {
    /// Output records read.
    pub read: u64,
    /// Per source partition, how often each source offset appeared (seq 0).
    pub positions: HashMap<i32, Vec<u8>>,
    pub distinct: u64,
    /// Outputs whose source position had been read before.
    pub duplicates: u64,
    /// First few duplicates: (source partition, offset, sink partition, sink offset).
    pub duplicate_examples: Vec<(i32, i64, i32, i64)>,
    /// Outputs without a readable identity header, or naming another topic.
    pub foreign: u64,
    /// Outputs with a sequence number ≠ 0 that are not a keyed job's timer output
    /// (records emit one output each; a timer's ride after it).
    pub extra_seq: u64,
    /// Keyed job: distinct timer outputs (sequence number ≥ 1) by identity.
    pub timer_ids: HashSet<(i32, i64, u32)>,
    /// Keyed job: per key, its outputs walked in sink order (duplicates skipped).
    pub walks: HashMap<String, KeyWalk>,
    /// Keyed job: values that are neither a count nor a timer's `total=`.
    pub not_counts: u64,
    /// CEP job: per key, the `n` of each match's three events, first copies
    /// in sink order.
    pub matches: HashMap<String, Vec<[u64; 3]>>,
    /// CEP job: (key, `n` of the first event) of every match read, to tell
    /// a match written twice.
    pub match_ids: HashSet<(String, u64)>,
    /// CEP job: outputs that are not a match record of the rule.
    pub not_matches: u64,
    /// The newest producer timestamp among outputs read (ms).
    pub newest_ts: i64,
}

/// One key of the keyed job, its outputs in order: counts 1, 2, … n, then a
/// timer's `total=n` resets it to 0.
#[derive(Default)]
pub struct KeyWalk {
    /// The open count (records since the last total).
    pub open: u64,
    /// The sum of the totals fired, and how many fired.
    pub totals: u64,
    pub fired: u64,
    /// Outputs out of sequence, and the first of them.
    pub wrong: u64,
    pub first_wrong: Option<String>,
}

impl KeyWalk {
    fn step(&mut self, value: &str) -> bool {
        let ok = if let Some(total) = value.strip_prefix("total=") {
            let Ok(n) = total.parse::<u64>() else {
                return false;
            };
            let ok = n == self.open;
            self.totals += n;
            self.fired += 1;
            self.open = 0;
            ok
        } else {
            let Ok(n) = value.parse::<u64>() else {
                return false;
            };
            let ok = n == self.open + 1;
            self.open = n;
            ok
        };
        if !ok {
            self.wrong += 1;
            self.first_wrong
                .get_or_insert_with(|| format!("{value} after open count {}", self.open));
        }
        true
    }
}

/// The current report row's figures; taken and reset by the reporter.
#[derive(Default)]
pub struct Window {
    pub outputs: u64,
    pub latencies_ms: Vec<u32>,
}

#[derive(Default)]
pub struct SinkView {
    pub ledger: Mutex<Ledger>,
    pub window: Mutex<Window>,
    pub last_error: Mutex<Option<String>>,
}

fn bump(v: &mut Vec<u8>, i: usize) -> u8 {
    if v.len() <= i {
        v.resize((i + 1).max(v.len() * 2), 0);
    }
    v[i] = v[i].saturating_add(1);
    v[i]
}

fn consumer(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<BaseConsumer> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("soak-reader-{topic}"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))?;
    }
    c.assign(&tpl)?;
    Ok(c)
}

/// Reads `job`'s sink from the start until `stop`, on a thread of its own.
pub fn read_sink(
    brokers: String,
    job: Job,
    partitions: i32,
    view: Arc<SinkView>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c = match consumer(&brokers, job.sink(), partitions) {
            Ok(c) => c,
            Err(e) => {
                if let Ok(mut last) = view.last_error.lock() {
                    *last = Some(e.to_string());
                }
                return;
            }
        };
        let source = topic_tag(&job.source_topic());
        while !stop.load(Ordering::SeqCst) {
            let m = match c.poll(Duration::from_millis(200)) {
                None => continue,
                Some(Err(e)) => {
                    // Broker restarts and stalls show here; librdkafka retries.
                    if let Ok(mut last) = view.last_error.lock() {
                        *last = Some(e.to_string());
                    }
                    continue;
                }
                Some(Ok(m)) => m,
            };
            let now = chrono::Utc::now().timestamp_millis();
            let ts = m.timestamp().to_millis().unwrap_or(now);
            // The output's identity, as Weir's own replay reads it.
            let id = m.headers().and_then(|hs| {
                output_id_from_headers(hs.iter().map(|h| (h.key, h.value.unwrap_or_default())))
            });
            let (topic, part, off, seq) = match id {
                Some((t, p, o, s)) => (Some(t), Some(p), Some(o), Some(s)),
                None => (None, None, None, None),
            };
            let count = (job == Job::Keyed).then(|| {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                (key, value)
            });
            let matched = (job == Job::Cep).then(|| match_of(m.payload().unwrap_or_default()));
            let (sink_part, sink_off) = (m.partition(), m.offset());
            drop(m);

            let Ok(mut l) = view.ledger.lock() else {
                return;
            };
            l.read += 1;
            l.newest_ts = l.newest_ts.max(ts);
            let mut new = false;
            let mut first = false;
            match (topic, part, off, seq) {
                // A record may complete several matches: each output of
                // the CEP job is told apart by what it matched.
                (Some(t), Some(_), Some(o), Some(_))
                    if t == source && o >= 0 && job == Job::Cep =>
                {
                    match matched {
                        Some(Some((key, ns))) => {
                            if l.match_ids.insert((key.clone(), ns[0])) {
                                l.distinct += 1;
                                new = true;
                                l.matches.entry(key).or_default().push(ns);
                            } else {
                                l.duplicates += 1;
                            }
                        }
                        _ => l.not_matches += 1,
                    }
                }
                (Some(t), Some(p), Some(o), Some(s)) if t == source && o >= 0 => {
                    if s != 0 && job == Job::Keyed {
                        first = l.timer_ids.insert((p, o, s));
                        if !first {
                            l.duplicates += 1;
                        }
                    } else if s != 0 {
                        l.extra_seq += 1;
                    } else {
                        let seen = bump(l.positions.entry(p).or_default(), o as usize);
                        if seen == 1 {
                            l.distinct += 1;
                            new = true;
                            first = true;
                        } else {
                            l.duplicates += 1;
                            if l.duplicate_examples.len() < 5 {
                                l.duplicate_examples.push((p, o, sink_part, sink_off));
                            }
                        }
                    }
                }
                _ => l.foreign += 1,
            }
            // A duplicate is the exactly-once check's finding; the walk
            // follows each output's first copy.
            if let (Some((key, value)), true) = (count, first) {
                if !l.walks.entry(key).or_default().step(&value) {
                    l.not_counts += 1;
                }
            }
            drop(l);
            if new {
                if let Ok(mut w) = view.window.lock() {
                    w.outputs += 1;
                    w.latencies_ms
                        .push((now - ts).clamp(0, u32::MAX as i64) as u32);
                }
            }
        }
    })
}

/// A CEP match record's key and the `n` of its three events (the rule's
/// `emit`), or `None` when it is not one.
fn match_of(payload: &[u8]) -> Option<(String, [u64; 3])> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let key = v["key"].as_str()?.to_owned();
    let n = |step: &str| v["emit"][step].as_f64().map(|n| n as u64);
    Some((key, [n("a")?, n("b")?, n("c")?]))
}

/// Metadata round trips (ms; `None` = no answer within 10 s) of the current row.
#[derive(Default)]
pub struct Probe {
    pub window: Mutex<Vec<Option<f64>>>,
}

/// Every 2 s, asks the broker (through the proxy, as every client reaches
/// it) for the input topic's metadata and times the answer.
pub fn probe_metadata(
    brokers: String,
    probe: Arc<Probe>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(c) = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create::<BaseConsumer>()
        else {
            return;
        };
        while !stop.load(Ordering::SeqCst) {
            let start = Instant::now();
            let rtt = c
                .fetch_metadata(Some(INPUT), Duration::from_secs(10))
                .ok()
                .map(|_| start.elapsed().as_secs_f64() * 1000.0);
            if let Ok(mut w) = probe.window.lock() {
                w.push(rtt);
            }
            std::thread::sleep(Duration::from_secs(2).saturating_sub(start.elapsed()));
        }
    })
}

/// Sum over partitions of (end offset − the group's committed offset) on
/// `topic`, and the committed total: the lag a standard tool shows.
pub fn group_position(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<(i64, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10))?;
    let (mut lag, mut total) = (0, 0);
    for e in committed.elements() {
        let done = match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        };
        let (_, high) = c.fetch_watermarks(topic, e.partition(), Duration::from_secs(10))?;
        lag += (high - done).max(0);
        total += done;
    }
    Ok((lag, total))
}

/// End offsets of every partition of `topic`.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<Vec<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    (0..partitions)
        .map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1))
        .collect()
}

/// The `q` quantile (0..=1) of `v`, sorted in place.
pub fn quantile<T: Copy + PartialOrd>(v: &mut [T], q: f64) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i])
}

/// Per worker id, during the current row: the oldest its heartbeat got
/// (s), how many polls found no entry at all, and how many times the
/// bucket's key listing (what the failover pass reads) left out a worker
/// whose entry was there.
#[derive(Default)]
pub struct Heartbeats {
    pub window: Mutex<std::collections::BTreeMap<String, (f64, u32, u32)>>,
}

/// Polls the workers' heartbeat entries every 250 ms and records how old
/// each one got (by the soak's clock, from when its revision last changed):
/// a worker whose entry ages past the TTL is presumed dead and its
/// deployments fail over.
pub async fn watch_heartbeats(
    nats_url: String,
    bucket: String,
    workers: Vec<String>,
    hb: Arc<Heartbeats>,
    stop: Arc<AtomicBool>,
) {
    let mut last: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut kv = None;
    let mut client = None;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if client.is_none() {
            client = async_nats::connect(&nats_url).await.ok();
        }
        let Some(nc) = &client else { continue };
        if kv.is_none() {
            kv = async_nats::jetstream::new(nc.clone())
                .get_key_value(&bucket)
                .await
                .ok();
        }
        let Some(store) = &kv else { continue };
        // The key listing as `Liveness::live` reads it.
        let listed: Option<Vec<String>> =
            match tokio::time::timeout(Duration::from_secs(2), store.keys()).await {
                Ok(Ok(keys)) => {
                    use futures::TryStreamExt;
                    tokio::time::timeout(Duration::from_secs(5), keys.try_collect())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
                _ => None,
            };
        for w in &workers {
            let now = Instant::now();
            let read = tokio::time::timeout(Duration::from_secs(2), store.entry(w.as_str())).await;
            // NATS away: the entry cannot be read, and its age keeps growing.
            let (readable, present) = match read {
                Ok(Ok(e)) => (
                    true,
                    e.filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put),
                ),
                _ => (false, None),
            };
            let slot = last.entry(w.clone()).or_insert((0, now));
            if let Some(e) = &present {
                if e.revision != slot.0 {
                    *slot = (e.revision, now);
                }
            }
            let age = now.duration_since(slot.1).as_secs_f64();
            if let Ok(mut win) = hb.window.lock() {
                let cell = win.entry(w.clone()).or_insert((0.0, 0, 0));
                cell.0 = cell.0.max(age);
                if readable && present.is_none() {
                    cell.1 += 1;
                }
                if present.is_some() && listed.as_ref().is_some_and(|l| !l.contains(w)) {
                    cell.2 += 1;
                }
            }
        }
    }
}

/// One input record, as the CEP check needs it: its production number
/// (`n`, which orders a key's records as they were produced) and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub n: u64,
    pub ts: i64,
}

/// Reads `topic` from the start to `ends`: per key `u<k>` (k < `keys`),
/// its records in production order. Their counts are the keyed job's
/// expected final counts.
pub fn read_input(
    brokers: &str,
    topic: &str,
    partitions: i32,
    ends: &[i64],
    keys: usize,
) -> anyhow::Result<Vec<Vec<Produced>>> {
    let mut per_key: Vec<Vec<Produced>> = vec![Vec::new(); keys];
    read_to(brokers, topic, partitions, ends, |m| {
        let k = std::str::from_utf8(m.key().unwrap_or_default())
            .ok()
            .and_then(|k| k.strip_prefix('u'))
            .and_then(|k| k.parse::<usize>().ok());
        let n = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default())
            .ok()
            .and_then(|v| v["n"].as_u64());
        match (k.and_then(|k| per_key.get_mut(k)), n) {
            (Some(recs), Some(n)) => {
                let ts = m.timestamp().to_millis().unwrap_or(0);
                recs.push(Produced { n, ts });
                Ok(())
            }
            _ => anyhow::bail!(
                "{topic} holds a record with an unexpected key or value at {}/{}",
                m.partition(),
                m.offset()
            ),
        }
    })?;
    for recs in &mut per_key {
        recs.sort_by_key(|r| r.n);
    }
    Ok(per_key)
}

/// Reads the CEP job's late topic from the start to `ends`: per key, the
/// `n` of each record that arrived behind the watermark, and how many
/// records were there (a record written twice counts twice).
pub fn read_late(
    brokers: &str,
    topic: &str,
    partitions: i32,
    ends: &[i64],
) -> anyhow::Result<(HashMap<String, Vec<u64>>, u64)> {
    let mut late: HashMap<String, Vec<u64>> = HashMap::new();
    let mut records = 0u64;
    read_to(brokers, topic, partitions, ends, |m| {
        records += 1;
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default())?;
        match (v["key"].as_str(), v["event"]["n"].as_u64()) {
            (Some(key), Some(n)) => {
                late.entry(key.to_owned()).or_default().push(n);
                Ok(())
            }
            _ => anyhow::bail!(
                "{topic} holds a record that is not a late record at {}/{}",
                m.partition(),
                m.offset()
            ),
        }
    })?;
    Ok((late, records))
}

/// Reads `topic` from the start up to `ends`, handing each record to `each`.
fn read_to(
    brokers: &str,
    topic: &str,
    partitions: i32,
    ends: &[i64],
    mut each: impl FnMut(&rdkafka::message::BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let c = consumer(brokers, topic, partitions)?;
    let mut next: Vec<i64> = vec![0; ends.len()];
    let start = Instant::now();
    while next.iter().zip(ends).any(|(n, e)| n < e) {
        if start.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("{topic} not read back within 5 minutes (at {next:?} of {ends:?})");
        }
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m?;
        let p = m.partition() as usize;
        if m.offset() >= ends.get(p).copied().unwrap_or(0) {
            continue;
        }
        if let Some(n) = next.get_mut(p) {
            *n = m.offset() + 1;
        }
        each(&m)?;
    }
    Ok(())
}
