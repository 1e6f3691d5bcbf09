//! Soak and fault suite (issue 17, docs/soak.md): a WASM map job, a keyed
//! stateful job and a CEP job under a steady load for a configurable time, through
//! real `weir serve` and `weir worker` processes on a private PostgreSQL,
//! NATS and tansu (sqlite engine, behind the test proxy), with a schedule of
//! faults. Prints a row of figures per minute, each fault's recovery time,
//! and final checks; exits non-zero when a check fails.
//!
//! `cargo bench -p weir --bench soak -- --duration 3m --records 300000`
//! (`--help` lists the options). Not part of `cargo test` or the suite.

#[path = "../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;
#[path = "../../../tests/support/proxy.rs"]
#[allow(dead_code)]
mod proxy;

mod checks;
mod config;
mod faults;
mod load;
mod measure;
mod procs;
mod report;
mod services;
mod system;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::checks::Check;
use crate::config::Config;
use crate::faults::{Fault, FaultResult};
use crate::load::LoadStats;
use crate::measure::{Heartbeats, Probe, SinkView};
use crate::services::Services;
use crate::system::{Job, Weir, CEP_LATE, INPUT};

fn main() -> ExitCode {
    let cfg = match Config::from_env_and_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: cannot start tokio: {e}");
            return ExitCode::from(2);
        }
    };
    // Interrupted, the run is dropped: every child process it started is
    // killed with it (kill_on_drop), so nothing outlives the soak.
    let interruptible = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run(cfg) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        }
    };
    match rt.block_on(interruptible) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cfg: Config) -> Result<bool> {
    let dir = std::env::temp_dir().join(format!(
        "weir-soak-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir)?;
    println!(
        "weir soak: {:?}, {} records at {:.0} records/s, {} partitions, {} keys, parallelism {}, faults: {}",
        cfg.duration,
        cfg.records,
        cfg.rate,
        cfg.partitions,
        cfg.keys,
        cfg.parallelism,
        if cfg.faults.is_empty() {
            "none".to_owned()
        } else {
            cfg.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        }
    );
    println!("logs and data: {}", dir.display());
    // Build the UDFs and the stock rule component before anything runs (a
    // nested cargo build).
    let cep_component = tokio::task::spawn_blocking(|| {
        guests::guest("uppercase");
        guests::cep_rule_path()
    })
    .await
    .context("building the example UDFs")?;

    let mut svc = Services::start(&dir).await?;
    let mut weir = Weir::new(&svc, &cfg, &cep_component)?;
    let outcome = soak(&cfg, &mut svc, &mut weir).await;
    weir.serve.stop("TERM", Duration::from_secs(30)).await.ok();
    weir.worker.stop("TERM", Duration::from_secs(30)).await.ok();
    svc.stop().await;
    if !cfg.keep_data {
        for sub in ["pg", "nats", "tansu", "wasm-cache"] {
            std::fs::remove_dir_all(dir.join(sub)).ok();
        }
    }
    println!("logs: {}", svc.logs.display());
    outcome
}

async fn soak(cfg: &Config, svc: &mut Services, weir: &mut Weir) -> Result<bool> {
    weir.serve.start()?;
    weir.wait_healthy(Duration::from_secs(60)).await?;
    weir.worker.start()?;
    weir.wait_worker_live(Duration::from_secs(60)).await?;
    weir.setup(svc, cfg).await?;
    for (job, worker, epoch, _) in weir.placements().await? {
        println!("job {job} placed on {worker} (epoch {epoch})");
    }

    let brokers = svc.brokers();
    let stop_readers = Arc::new(AtomicBool::new(false));
    let stop_load = Arc::new(AtomicBool::new(false));
    let views = Job::ALL.map(|_| Arc::new(SinkView::default()));
    let mut threads = Vec::new();
    for (job, view) in Job::ALL.into_iter().zip(&views) {
        threads.push(measure::read_sink(
            brokers.clone(),
            job,
            cfg.partitions,
            view.clone(),
            stop_readers.clone(),
        ));
    }
    let probe = Arc::new(Probe::default());
    threads.push(measure::probe_metadata(
        brokers.clone(),
        probe.clone(),
        stop_readers.clone(),
    ));
    let heartbeats = Arc::new(Heartbeats::default());
    let watcher = tokio::spawn(measure::watch_heartbeats(
        svc.nats_url(),
        format!("{}-workers", system::PREFIX),
        vec!["serve".into(), system::WORKER_ID.into()],
        heartbeats.clone(),
        stop_readers.clone(),
    ));
    let stats = Arc::new(LoadStats::default());
    let start = Instant::now();
    let generator = load::run(brokers.clone(), cfg, stats.clone(), stop_load.clone());
    let events = Arc::new(Mutex::new(Vec::new()));
    let stop_rows = Arc::new(AtomicBool::new(false));
    let rows = tokio::spawn(report::rows(
        report::Sources {
            brokers: brokers.clone(),
            partitions: cfg.partitions,
            load: stats.clone(),
            sinks: [
                (Job::Map, views[0].clone()),
                (Job::Keyed, views[1].clone()),
                (Job::Cep, views[2].clone()),
            ],
            probe,
            heartbeats,
            events: events.clone(),
        },
        start,
        cfg.report_every,
        stop_rows.clone(),
    ));

    let newest = |job: Job| -> i64 {
        let i = Job::ALL.iter().position(|j| *j == job).unwrap_or(0);
        views[i].ledger.lock().map(|l| l.newest_ts).unwrap_or(0)
    };
    let note = |events: &Arc<Mutex<Vec<String>>>, s: String| {
        if let Ok(mut e) = events.lock() {
            e.push(s);
        }
    };

    let mut results: Vec<FaultResult> = Vec::new();
    for (at, fault) in faults::schedule(&cfg.faults, cfg.duration) {
        // A fault is never injected before the previous one healed.
        let due = start + at;
        if Instant::now() < due {
            tokio::time::sleep_until(due.into()).await;
        }
        let at = start.elapsed();
        note(&events, format!("{} at {}s", fault.name(), at.as_secs()));
        // Where the jobs run when it strikes: a kill only hits what its process runs.
        let placed = match weir.placements().await {
            Ok(ps) => ps
                .iter()
                .map(|(job, worker, epoch, _)| format!("{job} on {worker} (epoch {epoch})"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("placements unknown: {e:#}"),
        };
        let injected = Instant::now();
        let done = inject(fault, svc, weir).await;
        let injected_for = injected.elapsed();
        let since_ms = chrono::Utc::now().timestamp_millis();
        let (recovered_in, mut seen) = match done {
            Ok(()) => faults::wait_recovered(weir, newest, since_ms, cfg.recovery_timeout).await,
            Err(e) => (None, format!("injecting it failed: {e:#}")),
        };
        for (name, d) in [
            ("weir serve", &mut weir.serve),
            ("weir worker", &mut weir.worker),
        ] {
            if let Some(status) = d.exited() {
                seen += &format!(
                    "; {name} exited by itself ({status}), see {}",
                    d.log.display()
                );
            }
        }
        note(
            &events,
            match recovered_in {
                Some(d) => format!("{} recovered in {:.1}s", fault.name(), d.as_secs_f64()),
                None => format!("{} NOT recovered", fault.name()),
            },
        );
        results.push(FaultResult {
            fault,
            at,
            injected_for,
            recovered_in,
            note: if seen.is_empty() {
                format!("before: {placed}")
            } else {
                format!("before: {placed}; {seen}")
            },
        });
    }

    // The load ends by itself once every record is produced and acknowledged.
    while !stats.done.load(Ordering::SeqCst) {
        if start.elapsed() > cfg.duration + cfg.drain_timeout {
            stop_load.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    generator.join().ok();
    let load_over = start.elapsed();
    note(&events, format!("load over at {}s", load_over.as_secs()));

    // Drain: until each sink holds an output per source record, two minutes
    // pass without a new one, or the drain timeout. A broker that does not
    // answer fails the sink checks below instead of ending the soak.
    let inputs_ends = end_offsets_retrying(&brokers, INPUT.to_owned(), cfg.partitions).await;
    let repartition_ends =
        end_offsets_retrying(&brokers, Job::Keyed.source_topic(), cfg.partitions).await;
    let late_ends = end_offsets_retrying(&brokers, CEP_LATE.to_owned(), cfg.partitions).await;
    let inputs: i64 = inputs_ends.as_ref().map_or(0, |e| e.iter().sum());
    let drain_start = Instant::now();
    let mut last_progress = (Instant::now(), 0u64);
    while inputs_ends.is_ok() && drain_start.elapsed() < cfg.drain_timeout {
        // The CEP job emits a match per three inputs, so its progress
        // counts but its total does not end the drain.
        let distinct: Vec<u64> = views
            .iter()
            .map(|v| v.ledger.lock().map(|l| l.distinct).unwrap_or(0))
            .collect();
        let per_input = &distinct[..2];
        if per_input.iter().all(|d| *d as i64 >= inputs) {
            // A little longer, for anything written twice after the last one.
            tokio::time::sleep(Duration::from_secs(5)).await;
            break;
        }
        let total: u64 = distinct.iter().sum();
        if total > last_progress.1 {
            last_progress = (Instant::now(), total);
        } else if last_progress.0.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained = start.elapsed();
    note(&events, format!("drained at {}s", drained.as_secs()));
    stop_rows.store(true, Ordering::SeqCst);
    rows.await.ok();
    stop_readers.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().ok();
    }
    watcher.await.ok();

    report::faults(&results);

    let mut all: Vec<Check> = Vec::new();
    let failed_inputs = stats.failed.load(Ordering::Relaxed);
    let acked = stats.acked.load(Ordering::Relaxed);
    let last_error = stats
        .last_error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default();
    match (&inputs_ends, &repartition_ends) {
        (Ok(input_ends), Ok(repartition_ends)) => {
            let (b, parts) = (brokers.clone(), cfg.partitions);
            let (ends, keys) = (input_ends.clone(), cfg.keys);
            let per_key = tokio::task::spawn_blocking(move || {
                measure::read_input(&b, INPUT, parts, &ends, keys)
            })
            .await?;
            all.push(Check {
                name: "load: the input holds what was acknowledged".into(),
                pass: per_key.is_ok() && inputs >= acked as i64,
                detail: format!(
                    "{acked} acknowledged, {failed_inputs} failed, {inputs} in {INPUT}{last_error}{}",
                    per_key.as_ref().err().map(|e| format!("; reading it back: {e:#}")).unwrap_or_default()
                ),
            });
            let counts: Vec<u64> = per_key
                .as_ref()
                .map(|k| k.iter().map(|r| r.len() as u64).collect())
                .unwrap_or_default();
            {
                let map = views[0]
                    .ledger
                    .lock()
                    .map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
                all.push(checks::exactly_once(Job::Map, &map, input_ends));
            }
            {
                let keyed = views[1]
                    .ledger
                    .lock()
                    .map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
                all.push(checks::repartition(repartition_ends, inputs));
                all.push(checks::exactly_once(Job::Keyed, &keyed, repartition_ends));
                all.push(checks::keyed_state(&keyed, &counts));
            }
            all.push(match (&per_key, &late_ends) {
                (Ok(inputs), Ok(late_ends)) => {
                    let (b, ends) = (brokers.clone(), late_ends.clone());
                    let late = tokio::task::spawn_blocking(move || {
                        measure::read_late(&b, CEP_LATE, parts, &ends)
                    })
                    .await?;
                    match late {
                        Ok((late, late_records)) => {
                            // The last records wait for a watermark that
                            // only a later record would move.
                            let newest = inputs.iter().flatten().map(|r| r.ts).max().unwrap_or(0);
                            let open_after = newest - system::OUT_OF_ORDERNESS_MS - 1_000;
                            let matches = views[2]
                                .ledger
                                .lock()
                                .map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
                            checks::cep_matches(&matches, inputs, &late, late_records, open_after)
                        }
                        Err(e) => cep_unchecked(format!("cannot read {CEP_LATE} back: {e:#}")),
                    }
                }
                (Err(e), _) => cep_unchecked(format!("cannot read the input back: {e:#}")),
                (_, Err(e)) => cep_unchecked(format!("cannot read {CEP_LATE}'s end offsets: {e}")),
            });
        }
        (Err(e), _) | (_, Err(e)) => {
            for name in [
                "load: the input holds what was acknowledged",
                "upper: each input's output exactly once",
                "counts: each input's output exactly once",
                "counts: final per-key state exact",
                checks::CEP_CHECK,
            ] {
                all.push(Check {
                    name: name.into(),
                    pass: false,
                    detail: format!(
                        "cannot be checked: the broker did not answer for the topics' end offsets ({e}); {acked} inputs acknowledged, {failed_inputs} failed{last_error}"
                    ),
                });
            }
        }
    }
    for r in &results {
        all.push(Check {
            name: format!("fault {}: recovered without help", r.fault.name()),
            pass: r.recovered_in.is_some(),
            detail: match r.recovered_in {
                Some(d) => format!(
                    "{:.1} s after a {:.1} s outage",
                    d.as_secs_f64(),
                    r.injected_for.as_secs_f64()
                ),
                None => r.note.clone(),
            },
        });
    }
    match checks::commands(weir).await {
        Ok(cs) => all.extend(cs),
        Err(e) => all.push(Check {
            name: "commands: none lost, none applied twice".into(),
            pass: false,
            detail: format!("could not check: {e:#}"),
        }),
    }
    all.push(checks::workflow_runs(weir).await);
    for job in Job::ALL {
        match checks::phase_agrees(weir, job).await {
            Ok(c) => all.push(c),
            Err(e) => all.push(Check {
                name: format!("{}: phase agrees with its deployment", job.name()),
                pass: false,
                detail: format!("could not check: {e:#}"),
            }),
        }
    }
    report::checks(&all);
    println!();
    for job in Job::ALL {
        if let Ok(h) = checks::history(weir, job).await {
            println!("history of {}: {h}", job.name());
        }
    }
    let passed = all.iter().all(|c| c.pass);
    println!(
        "\nsoak {}: load {}s, drained at {}s, {} of {} checks passed",
        if passed { "PASSED" } else { "FAILED" },
        load_over.as_secs(),
        drained.as_secs(),
        all.iter().filter(|c| c.pass).count(),
        all.len()
    );
    Ok(passed)
}

/// The CEP check, failed because its inputs could not be read.
fn cep_unchecked(detail: String) -> Check {
    Check {
        name: checks::CEP_CHECK.into(),
        pass: false,
        detail,
    }
}

/// The topic's end offsets, asking for up to a minute: the broker may be
/// restarting.
async fn end_offsets_retrying(
    brokers: &str,
    topic: String,
    partitions: i32,
) -> Result<Vec<i64>, String> {
    let mut last = String::new();
    for _ in 0..6 {
        let (b, t) = (brokers.to_owned(), topic.clone());
        match tokio::task::spawn_blocking(move || measure::end_offsets(&b, &t, partitions)).await {
            Ok(Ok(ends)) => return Ok(ends),
            Ok(Err(e)) => last = format!("{e:#}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Err(format!("{topic}: {last}"))
}

/// Injects one fault; returns once the outage is over (the process is
/// started again, the stall released).
async fn inject(fault: Fault, svc: &mut Services, weir: &mut Weir) -> Result<()> {
    match fault {
        Fault::KillServe => {
            weir.serve.kill().await?;
            weir.serve.start()
        }
        Fault::KillWorker => {
            weir.worker.kill().await?;
            weir.worker.start()
        }
        Fault::RestartBroker => svc.restart_broker().await,
        Fault::RestartPostgres => svc.restart_postgres().await,
        Fault::RestartNats => svc.restart_nats().await,
        Fault::StallBroker => {
            svc.proxy.stall_answers();
            tokio::time::sleep(Duration::from_secs(10)).await;
            svc.proxy.release();
            Ok(())
        }
    }
}
