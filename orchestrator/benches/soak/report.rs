//! The report: a row per interval while the soak runs (markdown, so it
//! pastes into docs/soak.md as is), then the faults and the checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checks::Check;
use crate::faults::FaultResult;
use crate::load::LoadStats;
use crate::measure::{group_position, quantile, Heartbeats, Probe, SinkView};
use crate::system::{Job, INPUT, TENANT};

/// What the reporter reads each interval.
pub struct Sources {
    pub brokers: String,
    pub partitions: i32,
    pub load: Arc<LoadStats>,
    pub sinks: [(Job, Arc<SinkView>); 3],
    pub probe: Arc<Probe>,
    pub heartbeats: Arc<Heartbeats>,
    /// Faults injected (or recovered) during the current row.
    pub events: Arc<Mutex<Vec<String>>>,
}

pub fn header() {
    println!();
    println!(
        "| t | produced/s | upper in/s | upper out/s | upper p50 / p99 ms | counts in/s | counts out/s | counts p50 / p99 ms | matches in/s | matches out/s | matches p50 / p99 ms | metadata p50 / max ms | lag upper / counts / matches | heartbeat age max s | events |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
}

fn ms(v: Option<u32>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

fn mmss(d: Duration) -> String {
    format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60)
}

/// Prints a row every `every` until `stop`, then a last (partial) one.
pub async fn rows(src: Sources, start: Instant, every: Duration, stop: Arc<AtomicBool>) {
    header();
    let mut last_acked = 0u64;
    let mut last_committed = [0i64; 3];
    let mut last_at = start;
    let mut n = 1u32;
    loop {
        let due = start + every * n;
        while Instant::now() < due && !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let now = Instant::now();
        let secs = now.duration_since(last_at).as_secs_f64().max(0.001);
        let acked = src.load.acked.load(Ordering::Relaxed);
        let produced = (acked - last_acked) as f64 / secs;
        last_acked = acked;

        let mut cells = Vec::new();
        let mut lags = Vec::new();
        for (i, (job, view)) in src.sinks.iter().enumerate() {
            let (b, group, parts) = (
                src.brokers.clone(),
                format!("weir-{TENANT}-{}", job.name()),
                src.partitions,
            );
            let pos = tokio::task::spawn_blocking(move || group_position(&b, &group, INPUT, parts))
                .await
                .ok()
                .and_then(Result::ok);
            let in_rate = match pos {
                Some((lag, committed)) => {
                    let rate = (committed - last_committed[i]).max(0) as f64 / secs;
                    last_committed[i] = committed;
                    lags.push(lag.to_string());
                    format!("{rate:.0}")
                }
                None => {
                    lags.push("?".into());
                    "?".into()
                }
            };
            let (outputs, mut lat) = match view.window.lock() {
                Ok(mut w) => (
                    std::mem::take(&mut w.outputs),
                    std::mem::take(&mut w.latencies_ms),
                ),
                Err(_) => (0, Vec::new()),
            };
            let p50 = quantile(&mut lat, 0.5);
            let p99 = quantile(&mut lat, 0.99);
            cells.push(format!(
                "{in_rate} | {:.0} | {} / {}",
                outputs as f64 / secs,
                ms(p50),
                ms(p99)
            ));
        }
        let mut rtts = src
            .probe
            .window
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        let timeouts = rtts.iter().filter(|r| r.is_none()).count();
        let mut answered: Vec<f64> = rtts.drain(..).flatten().collect();
        let meta = match (quantile(&mut answered, 0.5), quantile(&mut answered, 1.0)) {
            (Some(p50), Some(max)) => format!("{p50:.0} / {max:.0}"),
            _ => "–".into(),
        };
        let meta = if timeouts > 0 {
            format!("{meta} ({timeouts} × no answer in 10 s)")
        } else {
            meta
        };
        let heartbeats = src
            .heartbeats
            .window
            .lock()
            .map(|mut w| {
                std::mem::take(&mut *w)
                    .iter()
                    .map(|(id, (age, absent, unlisted))| {
                        let mut cell = format!("{id} {age:.1}");
                        if *absent > 0 {
                            cell += &format!(" (absent in {absent} polls)");
                        }
                        if *unlisted > 0 {
                            cell += &format!(" (present but not listed {unlisted}×)");
                        }
                        cell
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let events = src
            .events
            .lock()
            .map(|mut e| std::mem::take(&mut *e).join("; "))
            .unwrap_or_default();
        println!(
            "| {} | {produced:.0} | {} | {} | {} | {meta} | {} | {heartbeats} | {events} |",
            mmss(now.duration_since(start)),
            cells[0],
            cells[1],
            cells[2],
            lags.join(" / ")
        );
        last_at = now;
        n += 1;
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

pub fn faults(results: &[FaultResult]) {
    if results.is_empty() {
        return;
    }
    println!();
    println!("| at | fault | outage | recovered after | note |");
    println!("|---|---|---|---|---|");
    for r in results {
        println!(
            "| {} | {} | {:.1} s | {} | {} |",
            mmss(r.at),
            r.fault.describe(),
            r.injected_for.as_secs_f64(),
            r.recovered_in
                .map_or("**not within the timeout**".into(), |d| format!(
                    "{:.1} s",
                    d.as_secs_f64()
                )),
            r.note
        );
    }
}

pub fn checks(checks: &[Check]) {
    println!();
    println!("| check | result | detail |");
    println!("|---|---|---|");
    for c in checks {
        println!(
            "| {} | {} | {} |",
            c.name,
            if c.pass { "PASS" } else { "**FAIL**" },
            c.detail.replace('|', "\\|")
        );
    }
}
