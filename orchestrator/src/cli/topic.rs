//! `weir topic …`: small Kafka tools for trying pipelines out: create a
//! topic, produce JSON lines, tail what a job writes.
//!
//! With a token (`WEIR_TOKEN`), they go through `weir serve`'s API, which
//! keeps a tenant to its own topics; without one, straight to the broker
//! (`--kafka-brokers`), for operators and `weir serve --insecure-dev`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::error::CliError;
use super::globals::Globals;
use super::http::Api;
use super::output::Format;
use crate::api::types::{
    ProduceQuery, Produced, ReadQuery, RecordsPage, TopicCreateQuery, TopicCreated, TopicView,
};
use crate::domain::Dur;
use crate::runtime::topics::{self, TopicError, TopicRecord};

#[derive(Debug, Subcommand)]
pub enum TopicCmd {
    /// Create a topic (no error if it exists).
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Records older than this are deleted by the broker (`retention.ms`
        /// with `cleanup.policy=delete`), so the topic's storage stays bounded.
        #[arg(
            long,
            default_value = "168h",
            value_parser = super::duration::parse_retention,
            allow_hyphen_values = true
        )]
        retention: Dur,
    },
    /// Produce one record per input line (a file, or stdin).
    Produce {
        topic: String,
        /// Read lines from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Use this top-level JSON field of each line as the record key.
        #[arg(long)]
        key_field: Option<String>,
    },
    /// Print records from the beginning of every partition.
    Tail {
        topic: String,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<usize>,
        /// Stop when nothing arrives for this long (e.g. 5s; a bare number is seconds).
        #[arg(
            long,
            default_value = "5s",
            value_parser = super::duration::parse,
            allow_hyphen_values = true
        )]
        idle: Dur,
    },
}

fn unreachable(e: TopicError) -> CliError {
    match e {
        TopicError::Broker { .. } => CliError::Unreachable(e.to_string()),
        e => CliError::Usage(e.to_string()),
    }
}

/// The most one produce call through the API carries (it takes 8 MiB).
const PRODUCE_CHUNK_BYTES: usize = 4 << 20;

pub async fn run(g: &Globals, cmd: &TopicCmd) -> Result<(), CliError> {
    let api = Api::new(g);
    let lines = |file: &Option<PathBuf>| -> Result<Vec<String>, CliError> {
        Ok(match file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", f.display())))?
                .lines()
                .map(str::to_owned)
                .collect(),
            None => std::io::stdin()
                .lock()
                .lines()
                .map_while(Result::ok)
                .collect(),
        })
    };
    match cmd {
        TopicCmd::Create {
            topic,
            partitions,
            retention,
        } => {
            let created = if api.has_token() {
                let q = TopicCreateQuery {
                    partitions: Some(*partitions),
                    retention_ms: Some(retention.get().as_millis() as u64),
                };
                let c: TopicCreated = api.put_with(&format!("topics/{topic}"), &q).await?;
                c.created
            } else {
                topics::create(&g.conn.kafka_brokers, topic, *partitions, retention.get())
                    .await
                    .map_err(unreachable)?
            };
            if created {
                println!("created {topic}");
            } else {
                println!("{topic} already exists");
            }
            Ok(())
        }
        TopicCmd::Produce {
            topic,
            file,
            key_field,
        } => {
            let lines = lines(file)?;
            let n = if api.has_token() {
                let q = ProduceQuery {
                    key_field: key_field.clone(),
                };
                let mut n = 0;
                for body in chunks(&lines, PRODUCE_CHUNK_BYTES) {
                    let p: Produced = api
                        .post_bytes_with(&format!("topics/{topic}/records"), &q, body)
                        .await?;
                    n += p.produced;
                }
                n
            } else {
                let (brokers, topic, key_field) = (
                    g.conn.kafka_brokers.clone(),
                    topic.clone(),
                    key_field.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    topics::produce_lines(
                        &brokers,
                        &topic,
                        lines.iter().map(String::as_str),
                        key_field.as_deref(),
                    )
                })
                .await
                .map_err(|e| CliError::unexpected("the producer thread failed", e))?
                .map_err(unreachable)?
            };
            if g.output == Format::Text {
                eprintln!("produced {n} records");
            }
            Ok(())
        }
        TopicCmd::Tail { topic, count, idle } => {
            let seen = if api.has_token() {
                tail_api(&api, topic, *count, idle.get(), g.output).await?
            } else {
                let (brokers, topic, count, idle, format) = (
                    g.conn.kafka_brokers.clone(),
                    topic.clone(),
                    *count,
                    idle.get(),
                    g.output,
                );
                tokio::task::spawn_blocking(move || tail(&brokers, &topic, count, idle, format))
                    .await
                    .map_err(|e| CliError::unexpected("the consumer thread failed", e))??
            };
            if g.output == Format::Text {
                eprintln!("{seen} records from {topic}");
            }
            Ok(())
        }
    }
}

/// The lines as bodies of at most about `max` bytes each, never splitting
/// a line.
fn chunks(lines: &[String], max: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for l in lines.iter().filter(|l| !l.trim().is_empty()) {
        if !cur.is_empty() && cur.len() + l.len() + 1 > max {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(l.as_bytes());
        cur.push(b'\n');
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn print_record(format: Format, r: &TopicRecord) {
    match format {
        Format::Text => println!("[p{} @{}] {}", r.partition, r.offset, r.value),
        Format::Json => match serde_json::to_string(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("record p{} @{}: {e}", r.partition, r.offset),
        },
    }
}

/// Tails through the API: every partition from its start, page by page,
/// until `count` records or `idle` without one.
async fn tail_api(
    api: &Api,
    topic: &str,
    count: Option<usize>,
    idle: Duration,
    format: Format,
) -> Result<usize, CliError> {
    let view: TopicView = api.get(&format!("topics/{topic}")).await?;
    let mut next: BTreeMap<i32, i64> = view
        .partitions
        .iter()
        .map(|p| (p.partition, p.low))
        .collect();
    let path = format!("topics/{topic}/records");
    let mut seen = 0usize;
    let mut last = Instant::now();
    while count.is_none_or(|c| seen < c) && last.elapsed() < idle {
        let mut got = false;
        for (&partition, offset) in next.iter_mut() {
            let q = ReadQuery {
                partition,
                offset: Some(*offset),
                limit: Some(count.map_or(500, |c| (c - seen).clamp(1, 500))),
                wait_ms: None,
            };
            let page: RecordsPage = api.get_with(&path, &q).await?;
            *offset = page.next_offset;
            for r in &page.records {
                if count.is_some_and(|c| seen >= c) {
                    break;
                }
                print_record(format, r);
                seen += 1;
                got = true;
            }
        }
        if got {
            last = Instant::now();
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(seen)
}

fn tail(
    brokers: &str,
    topic: &str,
    count: Option<usize>,
    idle: Duration,
    format: Format,
) -> Result<usize, CliError> {
    let broker = |op| {
        let f = topics::broker(brokers, op);
        move |e| unreachable(f(e))
    };
    let consumer = topics::reader(brokers).map_err(unreachable)?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(broker("read metadata"))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(broker("assign"))?;
        }
    }
    if tpl.count() == 0 {
        return Err(unreachable(TopicError::NoSuchTopic(topic.to_owned())));
    }
    consumer.assign(&tpl).map_err(broker("assign"))?;
    let mut seen = 0usize;
    let mut last = Instant::now();
    while count.is_none_or(|c| seen < c) && last.elapsed() < idle {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.map_err(broker("read"))?;
        last = Instant::now();
        seen += 1;
        print_record(format, &TopicRecord::of(&msg));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_bodies_keep_lines_whole_and_skip_blank_ones() {
        let lines: Vec<String> = ["aaaa", "", "bbbb", "  ", "cccc"].map(String::from).into();
        let bodies = chunks(&lines, 10);
        assert_eq!(bodies, vec![b"aaaa\nbbbb\n".to_vec(), b"cccc\n".to_vec()]);
        assert!(chunks(&[], 10).is_empty());
    }
}
