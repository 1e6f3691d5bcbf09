//! The resource auto-tuner's loop on the real services: metrics reports
//! published on NATS are kept in PostgreSQL by the recorder, the engine
//! starts `autotune.yaml` for every tuned running job at each tick, the
//! decision lands in the job's history with its explanation, and in `apply`
//! mode the job is rescaled once through the normal command path, by two
//! engine replicas. Engine time is a manual clock; the data plane is the
//! simulated runtime (the rescale itself is covered by the runtime suite).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use weir::autotune::TunerStore;
use weir::domain::workflow::RunStatus;
use weir::store::{EventStore, StoredEvent};
use weir::workflow::clock::Clock;

use crate::support::workflow::{fast_spec, Rig, TENANT};
use crate::support::{eventually, unique, NATS_URL};

const T: Duration = Duration::from_secs(60);
const PARTITIONS: usize = 8;
const EVERY: Duration = Duration::from_secs(30);

fn tuned_spec(mode: &str) -> Value {
    let mut spec = fast_spec(1, json!([]));
    spec["autotune"] = json!({
        "mode": mode,
        "metric_window": "20s",
        "stabilization": "10s",
        "max_parallelism": PARTITIONS,
    });
    spec
}

/// A minute of reports, every 2 s up to `end`, of one task that processes
/// 1,000 records/s fully busy while 2,000/s arrive on 8 partitions: the
/// backlog grows by 1,000/s.
fn overloaded(job: &str, generation: u64, end: DateTime<Utc>) -> Vec<Value> {
    (0..=30i64)
        .map(|i| {
            let secs = 2 * i;
            let at = end - chrono::Duration::seconds(60 - secs);
            let done = 1000 * secs;
            let lag_each = (8000 + 1000 * secs) / PARTITIONS as i64;
            let lag: serde_json::Map<String, Value> = (0..PARTITIONS)
                .map(|p| (format!("in/{p}"), json!(lag_each)))
                .collect();
            json!({
                "tenant": TENANT, "job": job, "version": 1, "generation": generation,
                "parallelism": 1, "at": at,
                "tasks": [{
                    "task": 0, "records_in": done, "records_out": done, "bytes_in": 0,
                    "bytes_out": 0, "dead_lettered": 0, "errors": 0, "busy_ms": done,
                    "idle_ms": 0, "operator_ns_per_record": 0.0, "restarts": 0, "lag": lag
                }]
            })
        })
        .collect()
}

async fn job_events(rig: &Rig, job: &str, kind: &str) -> Vec<StoredEvent> {
    rig.store
        .read_stream(TENANT, &weir::domain::StreamId::new("job", job), 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == kind)
        .collect()
}

async fn autotune_runs_settled(rig: &Rig, job: &str) -> usize {
    rig.runs()
        .await
        .into_iter()
        .filter(|(_, r)| {
            r.job.as_deref() == Some(job)
                && r.workflow == "autotune"
                && r.status != RunStatus::Running
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tuner_rescales_an_overloaded_job_once_and_history_says_why() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("setup", None);
    for (job, mode) in [("orders", "apply"), ("hints", "recommend")] {
        rig.ok("job.create", job, json!({"spec": tuned_spec(mode)}))
            .await;
        rig.ok("job.deploy", job, json!({})).await;
        rig.stable(job, 1, 1, T).await;
    }
    rig.stop_engines().await;

    // From here engine time is the test's.
    let clock = rig.manual_clock();
    let prefix = unique("at");
    let nats = async_nats::connect(NATS_URL).await.unwrap();
    let stop_recorder = CancellationToken::new();
    let recorder = tokio::spawn(weir::autotune::recorder::run(
        nats.clone(),
        prefix.clone(),
        TunerStore::new(rig.store.pool().clone()),
        stop_recorder.clone(),
    ));
    let tuner = TunerStore::new(rig.store.pool().clone());
    // Publish until both jobs' windows are kept (the first round may come
    // before the subscription; a repeated report is kept once), a round a
    // second so the recorder is not flooded.
    let polls = std::sync::atomic::AtomicUsize::new(0);
    eventually(T, "the recorder to keep every report", || async {
        let mut kept = Vec::new();
        for job in ["orders", "hints"] {
            let n = tuner
                .samples(TENANT, job, clock.now() - chrono::Duration::hours(1))
                .await
                .unwrap()
                .len();
            kept.push(n);
        }
        if kept == [31, 31] {
            return Some(());
        }
        if polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 20 != 0 {
            return None;
        }
        for job in ["orders", "hints"] {
            for r in overloaded(job, 1, clock.now()) {
                let subject = format!("{prefix}.metrics.{TENANT}.{job}");
                nats.publish(subject, serde_json::to_vec(&r).unwrap().into())
                    .await
                    .unwrap();
            }
        }
        nats.flush().await.unwrap();
        None
    })
    .await;
    // A report that does not read, or names no job, is skipped.
    nats.publish(format!("{prefix}.metrics.{TENANT}.orders"), "{".into())
        .await
        .unwrap();
    nats.publish(format!("{prefix}.metrics.{TENANT}"), "{}".into())
        .await
        .unwrap();
    nats.flush().await.unwrap();
    // The window outlives the process that kept it.
    stop_recorder.cancel();
    recorder.await.unwrap();
    assert_eq!(
        tuner
            .samples(TENANT, "orders", clock.now() - chrono::Duration::hours(1))
            .await
            .unwrap()
            .len(),
        31
    );

    // Two replicas; each proposes the tick's runs, each run starts once.
    rig.autotune_every = Some(EVERY);
    rig.spawn_engine("r1", None);
    rig.spawn_engine("r2", None);
    let decided = eventually(T, "the scale-up decision", || async {
        job_events(&rig, "orders", "autotune_decided")
            .await
            .into_iter()
            .next()
    })
    .await;
    let d = &decided.payload["decision"];
    assert_eq!(d["rule"]["rule"], "scale_up", "{d:#}");
    assert_eq!(d["outcome"]["action"], "rescale", "{d:#}");
    assert_eq!(d["outcome"]["from"], 1);
    let to = d["outcome"]["to"].as_u64().unwrap();
    assert!((2..=PARTITIONS as u64).contains(&to), "{d:#}");
    assert_eq!(decided.payload["generation"], 1);
    // The explanation carries the figures the rule used.
    let stage = &d["stages"][0];
    let true_rate = stage["true_rate"].as_f64().unwrap();
    assert!((true_rate - 1000.0).abs() < 1.0, "{stage:#}");
    let input_rate = stage["input_rate"].as_f64().unwrap();
    assert!((input_rate - 2000.0).abs() < 1.0, "{stage:#}");
    assert!(d["utilization"].as_f64().unwrap() > 0.99, "{d:#}");
    assert!(
        decided.actor.as_deref().unwrap().starts_with("workflow:"),
        "{:?}",
        decided.actor
    );

    // The rescale goes through job.rescale and rescale.yaml.
    let rescaled = eventually(T, "the job to run at the new parallelism", || async {
        clock.advance(chrono::Duration::milliseconds(200));
        let s = rig.job("orders").await;
        let dep = s.deployment.as_ref()?;
        (dep.parallelism as u64 == to
            && s.phase == weir::domain::job::Phase::Running
            && s.generation == 2)
            .then_some(s)
    })
    .await;
    assert_eq!(rescaled.deployment.unwrap().generation, 2);

    // Recommend mode records the same decision and changes nothing.
    let hint = eventually(T, "the recommendation", || async {
        job_events(&rig, "hints", "autotune_decided")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(hint.payload["decision"]["outcome"]["action"], "recommend");
    assert_eq!(hint.payload["decision"]["outcome"]["to"], to);

    // Later ticks: the old reports are stale and no new ones come, so
    // nothing more is decided; a rule that holds is recorded once, not per tick.
    for tick in 1..=3 {
        clock.advance(chrono::Duration::from_std(EVERY).unwrap());
        eventually(T, &format!("tick {tick}'s runs to settle"), || async {
            let n = autotune_runs_settled(&rig, "hints").await;
            (n > tick).then_some(())
        })
        .await;
    }
    let rescales: Vec<_> = job_events(&rig, "orders", "deploy_requested")
        .await
        .into_iter()
        .filter(|e| e.payload["cause"] == "rescale")
        .collect();
    assert_eq!(rescales.len(), 1, "{rescales:?}");
    assert_eq!(rescales[0].payload["parallelism"], to);
    for job in ["orders", "hints"] {
        let rules: Vec<Value> = job_events(&rig, job, "autotune_decided")
            .await
            .iter()
            .map(|e| e.payload["decision"]["rule"]["rule"].clone())
            .collect();
        assert!(rules.len() <= 3, "{job}: {rules:?}");
        assert!(rules.windows(2).all(|w| w[0] != w[1]), "{job}: {rules:?}");
    }
    assert!(job_events(&rig, "hints", "deploy_requested").await.len() == 1);
    let (_, first) = rig.settled_run("orders", "autotune", 0, T).await;
    assert_eq!(first.status, RunStatus::Completed, "{:?}", first.reason);
    assert_eq!(first.outputs.as_ref().unwrap()["rescaled"], true);
}

/// A job whose policy is `off`, or that is not running, gets no runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untuned_and_stopped_jobs_get_no_decisions() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("setup", None);
    rig.ok(
        "job.create",
        "plain",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.deploy", "plain", json!({})).await;
    rig.stable("plain", 1, 1, T).await;
    rig.ok("job.create", "parked", json!({"spec": tuned_spec("apply")}))
        .await;
    let tuner = TunerStore::new(rig.store.pool().clone());
    assert_eq!(tuner.tunable_jobs().await.unwrap(), vec![]);
    rig.ok("job.deploy", "parked", json!({})).await;
    rig.stable("parked", 1, 1, T).await;
    let jobs = tuner.tunable_jobs().await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.job.as_str()).collect::<Vec<_>>(),
        ["parked"]
    );
    rig.ok("job.stop", "parked", json!({})).await;
    eventually(T, "the stop", || async {
        (rig.job("parked").await.phase == weir::domain::job::Phase::Stopped).then_some(())
    })
    .await;
    assert_eq!(tuner.tunable_jobs().await.unwrap(), vec![]);
}

/// The whole loop on the real broker and runtime, in `weir serve`: an
/// expensive UDF at parallelism 1 on an 8-partition topic falls behind a
/// load generator; the tuner scales it up, the backlog drains, the load
/// stops and the tuner scales it back down. Every output exactly once
/// across the rescales, and every rescale in the history with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_job_is_scaled_up_then_down_and_loses_nothing() {
    use crate::support::kafka::{brokers, create_topic, produce, producer, read_all, unique_topic};
    use crate::support::serve::{Serve, ServeOpts};
    use crate::support::{nats, send, Isolation};

    let _turn = crate::support::runtime::heavy_turn().await;
    const RECORDS: usize = 24_000;
    // xorshift rounds per record: about a millisecond of WASM.
    const WORK: u64 = 1_000_000;
    let iso = Isolation::new();
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: vec![
                ("WEIR_RUNTIME".into(), "embedded".into()),
                ("WEIR_AUTOTUNE_EVERY".into(), "2s".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let (input, output) = (unique_topic("tune-in"), unique_topic("tune-out"));
    create_topic(&brokers(), &input, PARTITIONS as i32).await;
    create_topic(&brokers(), &output, 2).await;
    crate::support::upload_udf(&serve, "busy_map", "busy");

    let nc = nats(NATS_URL).await;
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "operators": [{"type": "udf", "id": "busy", "module": "busy@1.0.0", "kind": "map", "timeout": "30s"}],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 1,
        "checkpoint": {"interval_ms": 1000},
        "autotune": {
            "mode": "apply", "metric_window": "10s", "stabilization": "4s",
            "catch_up": "20s", "scale_down_delay": "10s", "max_parallelism": 4,
            "max_rescales_per_hour": 20
        }
    });
    assert!(send(
        &nc,
        &iso,
        "acme",
        "job.create",
        "tuned",
        json!({"spec": spec})
    )
    .await
    .is_accepted());
    assert!(send(&nc, &iso, "acme", "job.deploy", "tuned", json!({}))
        .await
        .is_accepted());
    eventually(T, "job running", || async {
        let (_, job) = serve.get_json("/v1/tenants/acme/jobs/tuned").await;
        assert_ne!(job["phase"], "failed", "{job}");
        (job["phase"] == "running").then_some(())
    })
    .await;

    // When each output arrives, for the rescale pauses.
    let tail_stop = Arc::new(AtomicBool::new(false));
    let tail = {
        let (stop, topic) = (tail_stop.clone(), output.clone());
        tokio::task::spawn_blocking(move || arrivals(&topic, 2, &stop))
    };

    // The load: a steady stream for about 30 s, above one task's capacity.
    let load = tokio::spawn(async move {
        let p = producer(&brokers());
        for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(400) {
            let records: Vec<(i32, String, String)> = chunk
                .iter()
                .map(|i| {
                    let v = json!({"id": i, "work": WORK}).to_string();
                    ((*i % PARTITIONS) as i32, format!("k{i}"), v)
                })
                .collect();
            produce(&p, &input, &records).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let rescales = |evs: &[Value]| -> Vec<u64> {
        evs.iter()
            .filter(|e| e["type"] == "deploy_requested" && e["payload"]["cause"] == "rescale")
            .map(|e| e["payload"]["parallelism"].as_u64().unwrap_or(0))
            .collect()
    };
    let up = eventually(Duration::from_secs(180), "a scale-up", || async {
        let r = rescales(&api_events(&serve).await);
        r.iter().copied().find(|p| *p > 1)
    })
    .await;
    load.await.unwrap();
    let outs = tokio::task::spawn_blocking(move || read_all(&brokers(), &output, 2, RECORDS))
        .await
        .unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for r in &outs {
        let v: Value = serde_json::from_str(&r.value).unwrap();
        assert!(ids.insert(v["id"].as_u64().unwrap()), "duplicate {v}");
    }
    assert_eq!((outs.len(), ids.len()), (RECORDS, RECORDS));

    // Drained and idle: back down.
    let down = eventually(Duration::from_secs(180), "a scale-down", || async {
        let r = rescales(&api_events(&serve).await);
        let last = *r.last()?;
        (r.len() >= 2 && last < up).then_some(last)
    })
    .await;
    let evs = api_events(&serve).await;
    // Each rescale follows a decision that asked for it, with its reason.
    for (i, e) in evs.iter().enumerate() {
        if e["type"] != "deploy_requested" || e["payload"]["cause"] != "rescale" {
            continue;
        }
        let to = &e["payload"]["parallelism"];
        let why = evs[..i]
            .iter()
            .rev()
            .find(|d| d["type"] == "autotune_decided")
            .unwrap_or_else(|| panic!("no decision before {e}"));
        let d = &why["payload"]["decision"];
        assert_eq!(d["outcome"]["action"], "rescale", "{d:#}");
        assert_eq!(&d["outcome"]["to"], to, "{d:#}");
        assert!(d["window"]["samples"].as_u64().unwrap() >= 2, "{d:#}");
        eprintln!(
            "autotune e2e: rescale to {to} by rule {} at utilization {}",
            d["rule"]["rule"], d["utilization"]
        );
    }
    // The rescale pause: the longest time without output around each
    // rescale (outputs flow all along otherwise: the job is behind).
    tail_stop.store(true, Ordering::Relaxed);
    let arrived = tail.await.unwrap();
    let at = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["recorded_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    for (i, e) in evs.iter().enumerate() {
        if e["type"] == "deploy_requested" && e["payload"]["cause"] == "rescale" {
            if let Some(r) = evs[i..].iter().find(|r| r["type"] == "running") {
                let (from, to) = (at(e), at(r) + chrono::Duration::seconds(10));
                let pause = arrived
                    .windows(2)
                    .filter(|w| w[1] >= from && w[0] <= to)
                    .map(|w| (w[1] - w[0]).num_milliseconds())
                    .max()
                    .unwrap_or(-1);
                eprintln!(
                    "autotune e2e: rescale to {}: {} ms from request to running, output paused {pause} ms",
                    e["payload"]["parallelism"],
                    (at(r) - at(e)).num_milliseconds(),
                );
            }
        }
    }
    assert!(down < up);

    // What an operator sees: the CLI's summary, the explanation, the history.
    // (A decision made while a rescale stabilizes reads no window and so
    // recommends no memory: wait for one that does.)
    let shown = eventually(
        Duration::from_secs(60),
        "a memory recommendation",
        || async {
            let shown = serve.cli(&["job", "autotune", "tuned"]);
            shown
                .contains("recommended memory_mb for `busy`")
                .then_some(shown)
        },
    )
    .await;
    assert!(shown.contains("policy: mode apply"), "{shown}");
    assert!(
        shown.contains(&format!("scale_up: rescale 1 -> {up}")),
        "{shown}"
    );
    let explained = serve.cli(&["job", "autotune", "tuned", "--explain"]);
    assert!(explained.len() > 100, "{explained}");
    let history = serve.cli(&["job", "history", "tuned"]);
    assert!(history.contains("autotune_decided"), "{history}");
    assert!(history.contains(&format!("rescale 1 -> {up}")), "{history}");
    // The mode is set without a new version.
    serve.cli(&["job", "autotune", "tuned", "--mode", "recommend"]);
    let (_, view) = serve.get_json("/v1/tenants/acme/jobs/tuned/autotune").await;
    assert_eq!(view["mode_override"], "recommend", "{view}");
    assert_eq!(view["policy"]["mode"], "recommend", "{view}");
    let metrics = reqwest::get(serve.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("weir_autotune_desired_parallelism{"),
        "{metrics}"
    );
    assert!(metrics.contains("weir_udf_peak_memory_bytes{"), "{metrics}");
    assert!(metrics.contains("weir_autotune_wanted_tasks "), "{metrics}");
    assert!(
        metrics.contains("weir_autotune_workers_needed 1"),
        "{metrics}"
    );

    // A run every tick: the run list comes a page at a time, newest first.
    let (_, first) = serve
        .get_json("/v1/tenants/acme/runs?job=tuned&limit=5")
        .await;
    let first = first.as_array().unwrap().clone();
    assert_eq!(first.len(), 5);
    let last = first[4]["started_at"].as_str().unwrap().to_owned();
    let (_, next) = serve
        .get_json(&format!(
            "/v1/tenants/acme/runs?job=tuned&limit=5&before={}",
            urlencode(&last)
        ))
        .await;
    let next = next.as_array().unwrap();
    assert_eq!(next.len(), 5, "more than ten runs were started");
    assert!(next
        .iter()
        .all(|r| r["started_at"].as_str().unwrap() < last.as_str()));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// When each record of `topic` arrived, read until `stop` (wall clock, to
/// compare with the times of the job's events).
fn arrivals(topic: &str, partitions: i32, stop: &AtomicBool) -> Vec<DateTime<Utc>> {
    use rdkafka::consumer::Consumer;
    let consumer = crate::support::kafka::assigned_consumer(
        &crate::support::kafka::brokers(),
        topic,
        partitions,
    );
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(20)) {
            out.push(Utc::now());
        }
    }
    consumer.unassign().ok();
    out
}

/// A job's events as the HTTP API lists them.
async fn api_events(serve: &crate::support::serve::Serve) -> Vec<Value> {
    let (_, page) = serve
        .get_json("/v1/tenants/acme/jobs/tuned/events?limit=1000")
        .await;
    page["events"].as_array().cloned().unwrap_or_default()
}
