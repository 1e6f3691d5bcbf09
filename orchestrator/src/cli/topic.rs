//! `weir topic …`: small Kafka tools for trying pipelines out: create a
//! topic, produce JSON lines, tail what a job writes.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::CliError;
use super::globals::Globals;
use super::output::Format;
use crate::domain::Dur;

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

fn config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("socket.timeout.ms", "5000")
        .set("message.timeout.ms", "10000");
    c
}

fn unreachable(brokers: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Unreachable(format!("Kafka at {brokers}: {e}"))
}

pub async fn run(g: &Globals, cmd: &TopicCmd) -> Result<(), CliError> {
    let brokers = g.conn.kafka_brokers.clone();
    match cmd {
        TopicCmd::Create {
            topic,
            partitions,
            retention,
        } => {
            let admin: AdminClient<DefaultClientContext> = config(&brokers)
                .create()
                .map_err(|e| unreachable(&brokers, e))?;
            let retention_ms = retention.get().as_millis().to_string();
            let t = NewTopic::new(topic, *partitions, TopicReplication::Fixed(1))
                .set("cleanup.policy", "delete")
                .set("retention.ms", &retention_ms);
            let results = admin
                .create_topics(
                    [&t],
                    &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                )
                .await
                .map_err(|e| unreachable(&brokers, e))?;
            for r in results {
                match r {
                    Ok(name) => println!("created {name}"),
                    Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                        println!("{name} already exists")
                    }
                    Err((name, code)) => {
                        return Err(unreachable(&brokers, format!("create {name}: {code}")))
                    }
                }
            }
            Ok(())
        }
        TopicCmd::Produce {
            topic,
            file,
            key_field,
        } => {
            let lines: Vec<String> = match file {
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
            };
            let (topic, key_field) = (topic.clone(), key_field.clone());
            let n = tokio::task::spawn_blocking(move || {
                produce(&brokers, &topic, &lines, key_field.as_deref())
            })
            .await
            .map_err(|e| CliError::unexpected("the producer thread failed", e))??;
            if g.output == Format::Text {
                eprintln!("produced {n} records");
            }
            Ok(())
        }
        TopicCmd::Tail { topic, count, idle } => {
            let (topic, count, idle, format) = (topic.clone(), *count, idle.get(), g.output);
            tokio::task::spawn_blocking(move || tail(&brokers, &topic, count, idle, format))
                .await
                .map_err(|e| CliError::unexpected("the consumer thread failed", e))?
        }
    }
}

fn produce(
    brokers: &str,
    topic: &str,
    lines: &[String],
    key_field: Option<&str>,
) -> Result<usize, CliError> {
    let producer: ThreadedProducer<DefaultProducerContext> = config(brokers)
        .create()
        .map_err(|e| unreachable(brokers, e))?;
    let mut n = 0;
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let key = key_field.and_then(|f| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| {
                    v.get(f).map(|k| {
                        k.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| k.to_string())
                    })
                })
        });
        let mut rec = BaseRecord::<str, str>::to(topic).payload(line.as_str());
        if let Some(k) = key.as_deref() {
            rec = rec.key(k);
        }
        let mut pending = rec;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    producer.poll(Duration::from_millis(50));
                    pending = r;
                }
                Err((e, _)) => return Err(unreachable(brokers, e)),
            }
        }
        n += 1;
    }
    producer
        .flush(Duration::from_secs(15))
        .map_err(|e| unreachable(brokers, e))?;
    Ok(n)
}

fn tail(
    brokers: &str,
    topic: &str,
    count: Option<usize>,
    idle: Duration,
    format: Format,
) -> Result<(), CliError> {
    let consumer: BaseConsumer = config(brokers)
        .set("group.id", "weir-topic-tail")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| unreachable(brokers, e))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| unreachable(brokers, e))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(|e| unreachable(brokers, e))?;
        }
    }
    if tpl.count() == 0 {
        return Err(CliError::Usage(format!(
            "topic `{topic}` does not exist or has no partitions"
        )));
    }
    consumer.assign(&tpl).map_err(|e| unreachable(brokers, e))?;
    let mut seen = 0usize;
    let mut last = Instant::now();
    while count.is_none_or(|c| seen < c) && last.elapsed() < idle {
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.map_err(|e| unreachable(brokers, e))?;
        last = Instant::now();
        seen += 1;
        let value = msg
            .payload()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        match format {
            Format::Text => println!("[p{} @{}] {value}", msg.partition(), msg.offset()),
            Format::Json => {
                let headers: serde_json::Map<String, serde_json::Value> = msg
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    h.value
                                        .map(|v| String::from_utf8_lossy(v).into_owned())
                                        .into(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let key = msg.key().map(String::from_utf8_lossy);
                println!(
                    "{}",
                    serde_json::json!({"partition": msg.partition(), "offset": msg.offset(), "key": key, "value": value, "headers": headers})
                );
            }
        }
    }
    if format == Format::Text {
        eprintln!("{seen} records from {topic}");
    }
    Ok(())
}
