//! Workers, durable placement and failover, driven as a user would: real
//! `weir serve` and `weir worker` processes, killed with SIGKILL mid-stream,
//! on the shared Kafka broker. The sink must hold every output exactly once.

use std::time::Duration;

use serde_json::json;
use tokio::process::Child;
use weir::runtime::checkpoint::store::{CheckpointStore, NewCheckpoint};
use weir::runtime::checkpoint::Trigger;
use weir::runtime::cluster::placement::Move;
use weir::runtime::cluster::store::PlacementStore;
use weir::runtime::control::{DeploymentKey, DeploymentRequest, RestoreFrom, RuntimeError};

use crate::support::bin::{daemon, weir_in};
use crate::support::kafka::{self, brokers, create_topic, unique_topic};
use crate::support::runtime::{assert_exactly_once, user_records};
use crate::support::serve::{Serve, ServeOpts};
use crate::support::{eventually, nats, send, Isolation, DATABASE_URL, NATS_URL};

/// These tests run whole processes against the shared broker: one at a time.
pub(super) static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Short enough that failover happens within seconds.
const TTL: &str = "3s";

pub(super) fn serve_opts(extra: &[(&str, &str)]) -> ServeOpts {
    let mut env = vec![
        ("WEIR_RUNTIME".to_owned(), "embedded".to_owned()),
        ("WEIR_WORKER_TTL".to_owned(), TTL.to_owned()),
    ];
    env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ServeOpts {
        env,
        ..Default::default()
    }
}

/// A `weir worker` child process, killed (SIGKILL) on drop.
pub(super) fn spawn_worker(iso: &Isolation, id: &str) -> Child {
    spawn_worker_with_ttl(iso, id, TTL)
}

fn spawn_worker_with_ttl(iso: &Isolation, id: &str, ttl: &str) -> Child {
    let mut cmd = weir_in(iso);
    cmd.args(["worker", "--worker-id", id])
        .env("WEIR_KAFKA_BROKERS", brokers())
        .env("WEIR_WORKER_TTL", ttl);
    daemon(cmd, iso, id).spawn().expect("spawn weir worker")
}

/// Creates `<tag>-in` and `<tag>-out` (2 partitions each), uploads the UDF,
/// and fills the input with `n` records; returns (input, output, n).
pub(super) async fn topics_with_input(serve: &Serve, tag: &str) -> (String, String, usize) {
    let (input, output) = (
        unique_topic(&format!("{tag}-in")),
        unique_topic(&format!("{tag}-out")),
    );
    create_topic(&brokers(), &input, 2).await;
    create_topic(&brokers(), &output, 2).await;
    crate::support::upload_udf(serve, "uppercase", "upper");
    let n = 3_000;
    kafka::produce(
        &kafka::producer(&brokers()),
        &input,
        &user_records(n, 10, 2, 0),
    )
    .await;
    (input, output, n)
}

/// Creates and deploys job `job` (input → upper → output), rate-limited so
/// a kill lands mid-stream, and waits until it runs.
pub(super) async fn deploy(serve: &Serve, job: &str, input: &str, output: &str, rate: u32) {
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "operators": [{"type": "udf", "id": "up", "module": "upper@1.0.0", "kind": "map"}],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 2,
        "rate_limit": rate,
        "checkpoint": {"interval_ms": 300}
    });
    deploy_spec(serve, job, spec).await;
}

/// Creates and deploys job `job` with `spec` and waits until it runs.
pub(super) async fn deploy_spec(serve: &Serve, job: &str, spec: serde_json::Value) {
    let nc = nats(NATS_URL).await;
    let iso = &serve.iso;
    let created = send(&nc, iso, "acme", "job.create", job, json!({ "spec": spec })).await;
    assert!(created.is_accepted(), "{created:?}");
    let deployed = send(&nc, iso, "acme", "job.deploy", job, json!({})).await;
    assert!(deployed.is_accepted(), "{deployed:?}");
    eventually(Duration::from_secs(90), "job running", || async {
        let (_, j) = serve
            .get_json(&format!("/v1/tenants/acme/jobs/{job}"))
            .await;
        assert_ne!(j["phase"], "failed", "{j}");
        (j["phase"] == "running").then_some(())
    })
    .await;
}

/// Waits until the job's tasks have written at least `n` outputs (as its
/// runtime status reports them, routed to whichever worker runs it) and
/// returns the count. A consumer of the sink topic lags too much on a busy
/// broker to time a kill by.
pub(super) async fn wait_written(serve: &Serve, job: &str, n: u64) -> u64 {
    eventually(Duration::from_secs(240), "outputs written", || async {
        let (code, rt) = serve
            .get_json(&format!("/v1/tenants/acme/jobs/{job}/runtime"))
            .await;
        let out: u64 = rt["tasks"]
            .as_array()?
            .iter()
            .map(|t| t["records_out"].as_u64().unwrap_or(0))
            .sum();
        (code == 200 && out >= n).then_some(out)
    })
    .await
}

/// Waits until worker `id` heartbeats.
pub(super) async fn wait_live(iso: &Isolation, id: &str) {
    let js = async_nats::jetstream::new(nats(NATS_URL).await);
    eventually(
        Duration::from_secs(60),
        "the worker's heartbeat",
        || async {
            let kv = js
                .get_key_value(format!("{}-workers", iso.prefix))
                .await
                .ok()?;
            kv.get(id).await.ok().flatten().map(|_| ())
        },
    )
    .await;
}

/// Reads the sink until `n` outputs arrived and it stayed quiet for 2 s.
/// The deadline is generous: the shared sqlite broker stalls for seconds
/// when the machine is busy, and a restore scans the sink first.
pub(super) async fn read_outputs(topic: &str, n: usize) -> Vec<kafka::ReadRecord> {
    let t = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let c = kafka::assigned_consumer(&brokers(), &t, 2);
        kafka::read_until(&c, n, Duration::from_secs(2), Duration::from_secs(300))
    })
    .await
    .unwrap()
}

pub(super) async fn placement_pool(iso: &Isolation) -> sqlx::PgPool {
    weir::store::postgres::pool(DATABASE_URL, &iso.schema, 2)
        .await
        .unwrap()
}

pub(super) async fn placed_on(pool: &sqlx::PgPool, job: &str) -> Option<(String, i64)> {
    sqlx::query_as(
        "SELECT worker, epoch FROM runtime_placements WHERE tenant = 'acme' AND job = $1",
    )
    .bind(job)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// The acceptance test: the whole `weir serve` process (orchestrator and
/// its embedded worker) dies with SIGKILL mid-stream; started again, its
/// worker claims its placement and restores the job from the last
/// checkpoint. The sink holds every output exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_with_sigkill_mid_stream_restores_exactly_once() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let mut serve = Serve::start_with(&iso, serve_opts(&[])).await;
    let (input, output, n) = topics_with_input(&serve, "ck").await;
    deploy(&serve, "orders", &input, &output, 250).await;

    let at_kill = wait_written(&serve, "orders", n as u64 / 5).await;
    serve.kill().await; // SIGKILL: no final checkpoint, no goodbye
    assert!(
        at_kill < n as u64 * 4 / 5,
        "the kill came too late to prove anything ({at_kill})"
    );

    let serve = Serve::start_with(&iso, serve_opts(&[])).await;
    let outs = read_outputs(&output, n).await;
    let by_pos = assert_exactly_once(&outs, n);
    assert!(by_pos.values().all(|r| r.value.contains("\"USER\":\"U")));

    // The restarted process runs the job: status through its API.
    let (code, rt) = serve.get_json("/v1/tenants/acme/jobs/orders/runtime").await;
    assert_eq!(code, 200, "{rt}");
    assert_eq!(rt["tasks"].as_array().map(Vec::len), Some(2), "{rt}");
    let pool = placement_pool(&iso).await;
    let (worker, epoch) = placed_on(&pool, "orders").await.expect("placement");
    assert_eq!(worker, "serve");
    assert!(epoch >= 2, "the restarted worker claimed it: epoch {epoch}");
}

/// A `weir worker` joins and runs a job; killed with SIGKILL, its heartbeat
/// expires, the job moves to another worker (epoch + 1) and resumes from
/// the last checkpoint, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_job_fails_over_to_another_worker_exactly_once() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    // No worker inside serve: the job must go to `weir worker`s.
    let serve = Serve::start_with(&iso, serve_opts(&[("WEIR_EMBEDDED_WORKER", "false")])).await;
    let mut w1 = spawn_worker(&iso, "w1");
    let (input, output, n) = topics_with_input(&serve, "fo").await;
    wait_live(&iso, "w1").await;
    deploy(&serve, "fo", &input, &output, 250).await;
    let pool = placement_pool(&iso).await;
    let (worker, epoch) = placed_on(&pool, "fo").await.expect("placement");
    assert_eq!(worker, "w1");
    let (code, rt) = serve.get_json("/v1/tenants/acme/jobs/fo/runtime").await;
    assert_eq!(code, 200, "status is routed to w1: {rt}");

    let _w2 = spawn_worker(&iso, "w2");
    wait_live(&iso, "w2").await;
    let at_kill = wait_written(&serve, "fo", n as u64 / 5).await;
    w1.kill().await.unwrap(); // SIGKILL
    assert!(
        at_kill < n as u64 * 4 / 5,
        "the kill came too late to prove anything ({at_kill})"
    );

    eventually(Duration::from_secs(30), "the job moved to w2", || async {
        placed_on(&pool, "fo")
            .await
            .filter(|(w, e)| w == "w2" && *e > epoch)
    })
    .await;
    let outs = read_outputs(&output, n).await;
    assert_exactly_once(&outs, n);
    eventually(Duration::from_secs(120), "status routed to w2", || async {
        let (code, _) = serve.get_json("/v1/tenants/acme/jobs/fo/runtime").await;
        (code == 200).then_some(())
    })
    .await;
}

/// Epoch fencing in the checkpoint store: once the placement moves, the
/// worker that held it can no longer record a checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_placement_fences_the_old_worker_s_checkpoints() {
    let iso = Isolation::new();
    let store = weir::store::postgres::PgStore::connect(DATABASE_URL, &iso.schema)
        .await
        .unwrap();
    let pool = store.pool().clone();
    let key = DeploymentKey {
        tenant: "acme".into(),
        job: "fenced".into(),
    };
    let req = DeploymentRequest {
        key: key.clone(),
        version: 1,
        generation: 1,
        parallelism: 1,
        spec: weir::domain::job::JobSpec::parse(
            "sources: [{ topic: a }]\nsinks: [{ type: kafka, topic: b }]\n",
        )
        .unwrap(),
        restore: RestoreFrom::Nothing,
        state_limit: None,
    };
    let placements = PlacementStore::new(pool.clone());
    let placed = placements.place(&req, |_| Ok("a".into())).await.unwrap();
    assert_eq!((placed.worker.as_str(), placed.epoch), ("a", 1));
    // A redeploy to the same live worker keeps the epoch.
    let again = placements
        .place(&req, |cur| Ok(cur.unwrap().worker.clone()))
        .await
        .unwrap();
    assert_eq!(again.epoch, 1);

    let checkpoints = CheckpointStore::new(pool.clone());
    checkpoints.fence(&key, 1, 1, 1).await.unwrap();
    let save = |store: CheckpointStore| {
        let key = key.clone();
        async move {
            store
                .save(NewCheckpoint {
                    key: &key,
                    version: 1,
                    generation: 1,
                    trigger: Trigger::OnDemand,
                    duration_ms: 1,
                    partitions: &[],
                    retain: 5,
                })
                .await
        }
    };
    checkpoints.hold(&key, "a", 1);
    save(checkpoints.clone()).await.expect("the holder saves");

    let moved = placements
        .move_to(&Move {
            key: key.clone(),
            from: "a".into(),
            to: "b".into(),
            epoch: 1,
        })
        .await
        .unwrap()
        .expect("moved");
    assert_eq!((moved.worker.as_str(), moved.epoch), ("b", 2));
    // A second replica racing with the same read loses.
    assert!(placements
        .move_to(&Move {
            key: key.clone(),
            from: "a".into(),
            to: "c".into(),
            epoch: 1,
        })
        .await
        .unwrap()
        .is_none());

    let err = save(checkpoints.clone()).await.unwrap_err();
    assert!(matches!(err, RuntimeError::StaleGeneration { .. }), "{err}");
    // The new holder saves; a store without holds only checks generations.
    let b = CheckpointStore::new(pool.clone());
    b.hold(&key, "b", 2);
    save(b).await.expect("the new holder saves");
    save(CheckpointStore::new(pool))
        .await
        .expect("no hold, no epoch fence");
}

/// A `weir worker` stopped with SIGTERM takes a final checkpoint, exits
/// cleanly and leaves at once: its job moves to another worker well before
/// the (long) TTL would have expired, and the sink holds every output once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_hands_its_job_over_at_once() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let ttl = "60s";
    let serve = Serve::start_with(
        &iso,
        serve_opts(&[("WEIR_EMBEDDED_WORKER", "false"), ("WEIR_WORKER_TTL", ttl)]),
    )
    .await;
    let mut w1 = spawn_worker_with_ttl(&iso, "w1", ttl);
    let (input, output, n) = topics_with_input(&serve, "gr").await;
    wait_live(&iso, "w1").await;
    // Slower than the others: a graceful stop waits for the batch in flight.
    deploy(&serve, "gr", &input, &output, 100).await;
    let pool = placement_pool(&iso).await;
    let (worker, epoch) = placed_on(&pool, "gr").await.expect("placement");
    assert_eq!(worker, "w1");
    let _w2 = spawn_worker_with_ttl(&iso, "w2", ttl);
    wait_live(&iso, "w2").await;
    let at_stop = wait_written(&serve, "gr", n as u64 / 5).await;
    let pid = w1.id().expect("w1 runs").to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), w1.wait())
        .await
        .expect("w1 exits after its final checkpoint")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        at_stop < n as u64 * 4 / 5,
        "the stop came too late to prove anything ({at_stop})"
    );
    eventually(
        Duration::from_secs(20),
        "the job moved to w2 before the TTL",
        || async {
            placed_on(&pool, "gr")
                .await
                .filter(|(w, e)| w == "w2" && *e > epoch)
        },
    )
    .await;
    let outs = read_outputs(&output, n).await;
    assert_exactly_once(&outs, n);
    // w2 runs it now. (On the busy shared broker the final checkpoint has
    // so far landed at the end of the input: the stop waits for the batch in
    // flight. The mid-stream restore across processes is what the SIGKILL
    // tests above show.)
    eventually(Duration::from_secs(120), "status routed to w2", || async {
        let (code, _) = serve.get_json("/v1/tenants/acme/jobs/gr/runtime").await;
        (code == 200).then_some(())
    })
    .await;
}

/// Two `weir serve` replicas, each with its own embedded worker, share the
/// command path, the workflows and the data plane: two jobs spread over
/// the two workers. One replica killed with SIGKILL mid-stream: its job
/// fails over to the other replica's worker and every sink holds every
/// output once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_replicas_spread_jobs_and_survive_one_killed() {
    let _turn = TURN.lock().await;
    let iso = Isolation::new();
    let replica = |id: &str| {
        serve_opts(&[
            ("WEIR_WORKER_ID", id),
            ("WEIR_REPLICA_ID", id),
            ("WEIR_WORKER_CAPACITY", "2"),
        ])
    };
    let mut s1 = Serve::start_with(&iso, replica("s1")).await;
    let s2 = Serve::start_with(&iso, replica("s2")).await;
    wait_live(&iso, "s1").await;
    wait_live(&iso, "s2").await;
    let (in_a, out_a, n) = topics_with_input(&s1, "ra").await;
    let (in_b, out_b) = (unique_topic("rb-in"), unique_topic("rb-out"));
    create_topic(&brokers(), &in_b, 2).await;
    create_topic(&brokers(), &out_b, 2).await;
    kafka::produce(
        &kafka::producer(&brokers()),
        &in_b,
        &user_records(n, 10, 2, 0),
    )
    .await;
    // Commands go to either replica: they share the schema and the prefix.
    deploy(&s1, "ja", &in_a, &out_a, 250).await;
    deploy(&s2, "jb", &in_b, &out_b, 250).await;

    let pool = placement_pool(&iso).await;
    let (wa, _) = placed_on(&pool, "ja").await.expect("placement of ja");
    let (wb, _) = placed_on(&pool, "jb").await.expect("placement of jb");
    assert_ne!(
        wa, wb,
        "the second deployment goes to the less loaded worker"
    );
    let (victim_job, survivor) = if wa == "s1" {
        ("ja", "s2")
    } else {
        ("jb", "s2")
    };

    wait_written(&s2, victim_job, n as u64 / 5).await;
    s1.kill().await; // SIGKILL: the orchestrator and its worker die together
    eventually(
        Duration::from_secs(60),
        "the job moved to the survivor",
        || async {
            placed_on(&pool, victim_job)
                .await
                .filter(|(w, _)| w == survivor)
                .map(|_| ())
        },
    )
    .await;
    // The survivor now runs both.
    for (out, job) in [(&out_a, "ja"), (&out_b, "jb")] {
        let outs = read_outputs(out, n).await;
        assert_exactly_once(&outs, n);
        let (code, rt) = s2
            .get_json(&format!("/v1/tenants/acme/jobs/{job}/runtime"))
            .await;
        assert_eq!(code, 200, "{job}: {rt}");
    }
}
