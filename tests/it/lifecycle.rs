//! The spine, end to end: commands published on NATS, events in PostgreSQL,
//! outcomes and relayed events back on NATS, state over HTTP.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;
use weir::domain::{OutcomeStatus, RejectionCode};

use crate::support::serve::{free_port, Serve, ServeOpts};
use crate::support::{self, eventually, nats, send, send_expecting, spec, Isolation, NATS_URL};

/// The next outcome on `sub`, or a panic naming `what` after `secs` seconds.
async fn next_outcome(
    sub: &mut async_nats::Subscriber,
    secs: u64,
    what: &str,
) -> weir::domain::Outcome {
    let m = tokio::time::timeout(Duration::from_secs(secs), sub.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("subscription open");
    serde_json::from_slice(&m.payload).expect("an outcome")
}

fn code(o: &weir::domain::Outcome) -> Option<RejectionCode> {
    o.rejection.as_ref().map(|r| r.code)
}

#[track_caller]
fn accepted(o: &weir::domain::Outcome) {
    assert_eq!(o.status, OutcomeStatus::Accepted, "{:?}", o.rejection);
}

#[tokio::test]
async fn full_lifecycle_driven_by_commands() {
    let iso = Isolation::new();
    let serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    let mut relayed = nc
        .subscribe(iso.subjects().event("acme", "job.orders"))
        .await
        .unwrap();

    let steps: Vec<(&str, Value)> = vec![
        ("job.create", json!({"spec": spec()})),
        ("job.compile", json!({})),
        (
            "job.compile_succeeded",
            json!({"version": 1, "plan_digest": "p1", "state_fingerprint": "f1"}),
        ),
        ("job.deploy", json!({})),
        ("job.mark_running", json!({"generation": 1})),
        ("job.mark_stable", json!({"generation": 1})),
        ("job.submit_version", json!({"spec": spec()})),
        ("job.deploy", json!({"version": 2})),
        ("job.mark_running", json!({"generation": 2})),
        ("job.rollback", json!({})),
        ("job.mark_running", json!({"generation": 3})),
        ("job.rescale", json!({"parallelism": 4})),
        ("job.mark_running", json!({"generation": 4})),
        ("job.restore", json!({"checkpoint": "cp-1"})),
        (
            "job.mark_failed",
            json!({"generation": 5, "reason": "task 0 crashed 5 times"}),
        ),
        ("job.restore", json!({})),
        ("job.mark_running", json!({"generation": 6})),
        ("job.stop", json!({})),
        ("job.mark_stopped", json!({"generation": 6})),
        ("job.delete", json!({})),
    ];
    for (kind, payload) in &steps {
        accepted(&send(&nc, &iso, "acme", kind, "orders", payload.clone()).await);
    }

    let (status, job) = serve.get_json("/v1/tenants/acme/jobs/orders").await;
    assert_eq!(status, 200);
    assert_eq!(job["phase"], "deleted");
    assert_eq!(job["latest_version"], 2);
    assert_eq!(job["last_stable_version"], 1);
    assert_eq!(job["generation"], 6);
    assert_eq!(job["stream_version"], steps.len() as u64);

    let (_, versions) = serve
        .get_json("/v1/tenants/acme/jobs/orders/versions")
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // Events page by position, gap-free and in order.
    let (_, page1) = serve
        .get_json("/v1/tenants/acme/jobs/orders/events?limit=5")
        .await;
    let first: Vec<i64> = page1["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    // Positions are global: the tenant's creation came first.
    let base = first[0];
    assert!(base >= 1, "{first:?}");
    assert_eq!(first, (base..base + 5).collect::<Vec<_>>());
    let next = page1["next_after"].as_i64().unwrap();
    let (_, rest) = serve
        .get_json(&format!(
            "/v1/tenants/acme/jobs/orders/events?after={next}&limit=1000"
        ))
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), steps.len() - 5);
    assert!(rest["next_after"].is_null());

    // The outbox relay publishes every event, in order.
    let mut seen = Vec::new();
    while seen.len() < steps.len() {
        let m = tokio::time::timeout(Duration::from_secs(10), relayed.next())
            .await
            .expect("relayed event")
            .unwrap();
        let e: Value = serde_json::from_slice(&m.payload).unwrap();
        seen.push(e["stream_version"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=steps.len() as u64).collect::<Vec<_>>());
}

/// Drives a job into `phase` with accepted commands.
async fn job_in_phase(nc: &async_nats::Client, iso: &Isolation, job: &str, phase: &str) {
    let path: &[(&str, Value)] = &[
        ("job.create", json!({"spec": spec()})),
        ("job.deploy", json!({})),
        ("job.mark_running", json!({"generation": 1})),
        ("job.mark_stable", json!({"generation": 1})),
    ];
    let n = match phase {
        "absent" => 0,
        "idle" | "deleted" => 1,
        "deploying" => 2,
        _ => 4,
    };
    for (kind, payload) in &path[..n] {
        accepted(&send(nc, iso, "acme", kind, job, payload.clone()).await);
    }
    let tail: &[(&str, Value)] = match phase {
        "deleted" => &[("job.delete", json!({}))],
        "stopping" => &[("job.stop", json!({}))],
        "stopped" => &[
            ("job.stop", json!({})),
            ("job.mark_stopped", json!({"generation": 1})),
        ],
        "failed" => &[("job.mark_failed", json!({"generation": 1, "reason": "x"}))],
        _ => &[],
    };
    for (kind, payload) in tail {
        accepted(&send(nc, iso, "acme", kind, job, payload.clone()).await);
    }
}

#[tokio::test]
async fn every_disallowed_transition_is_rejected_with_a_reason() {
    use weir::domain::job::decide::allowed_in;
    use weir::domain::job::{JobCommand, Phase};
    let iso = Isolation::new();
    let _serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    let phases = [
        ("absent", Phase::Absent),
        ("idle", Phase::Idle),
        ("deploying", Phase::Deploying),
        ("running", Phase::Running),
        ("stopping", Phase::Stopping),
        ("stopped", Phase::Stopped),
        ("failed", Phase::Failed),
        ("deleted", Phase::Deleted),
    ];
    let payloads = json!({
        "job.create": {"spec": spec()}, "job.submit_version": {"spec": spec()},
        "job.compile": {}, "job.compile_succeeded": {"version": 1, "plan_digest": "p", "state_fingerprint": "f"},
        "job.compile_failed": {"version": 1, "reason": "r"}, "job.deploy": {},
        "job.mark_running": {"generation": 1}, "job.mark_stable": {"generation": 1}, "job.stop": {},
        "job.mark_stopped": {"generation": 1}, "job.mark_failed": {"generation": 1, "reason": "r"},
        "job.rollback": {}, "job.restore": {}, "job.rescale": {"parallelism": 3}, "job.delete": {},
        "job.record_runtime": {"generation": 1, "incident": {"what": "placed", "worker": "w", "epoch": 1}},
        "job.record_autotune": {"generation": 1, "decision": {}},
        "job.set_autotune": {"mode": "apply"},
        "job.record_alert": {"rule": "lag", "firing": true, "severity": "warning", "condition": "lag_above", "message": "m"},
    });
    let mut checked = 0;
    for (name, phase) in phases {
        let job = format!("j-{name}");
        job_in_phase(&nc, &iso, &job, name).await;
        for kind in JobCommand::KINDS {
            if allowed_in(phase).contains(&kind) {
                continue;
            }
            let o = send(&nc, &iso, "acme", kind, &job, payloads[kind].clone()).await;
            let r = o
                .rejection
                .as_ref()
                .unwrap_or_else(|| panic!("{kind} accepted in {name}"));
            match (name, kind) {
                ("absent", _) | ("deleted", _) => {
                    assert_eq!(r.code, RejectionCode::NotFound, "{kind} in {name}: {r:?}")
                }
                (_, "job.create") => assert_eq!(r.code, RejectionCode::AlreadyExists),
                _ => {
                    assert_eq!(
                        r.code,
                        RejectionCode::InvalidTransition,
                        "{kind} in {name}: {r:?}"
                    );
                    assert!(r.message.contains(&format!("is {name}")), "{}", r.message);
                    assert!(r.message.contains("allowed: "), "{}", r.message);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "checked only {checked} transitions");
}

/// Publishes raw bytes on a command subject with the tenant's token, as a
/// hand-written client would, without waiting for the outcome.
async fn publish_raw(
    nc: &async_nats::Client,
    iso: &Isolation,
    tenant: &str,
    kind: &str,
    body: Vec<u8>,
) {
    let js = async_nats::jetstream::new(nc.clone());
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "Authorization",
        format!("Bearer {}", iso.token(tenant)).as_str(),
    );
    js.publish_with_headers(iso.subjects().command(tenant, kind), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

fn envelope(
    id: Uuid,
    tenant: &str,
    kind: &str,
    target: &str,
    payload: Value,
    expected: Option<u64>,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "tenant": tenant, "kind": kind, "target": target, "actor": "test",
        "issued_at": chrono::Utc::now(), "payload": payload, "expected_version": expected,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_command_delivered_three_times_is_applied_once() {
    let iso = Isolation::new();
    let serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    let id = Uuid::now_v7();
    let mut outcomes = nc
        .subscribe(iso.subjects().outcome("acme", &id.to_string()))
        .await
        .unwrap();
    let body = envelope(
        id,
        "acme",
        "job.create",
        "dup",
        json!({"spec": spec()}),
        None,
    );
    for _ in 0..3 {
        // No Nats-Msg-Id: JetStream stores all three, so Weir's own dedupe is what is tested.
        publish_raw(&nc, &iso, "acme", "job.create", body.clone()).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_outcome(&mut outcomes, 10, "outcome").await);
    }
    accepted(&got[0]);
    assert_eq!(got[0], got[1]);
    assert_eq!(got[1], got[2]);
    let (_, events) = serve.get_json("/v1/tenants/acme/jobs/dup/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_commands_with_the_same_expected_version_one_wins() {
    let iso = Isolation::new();
    let _serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    accepted(
        &send(
            &nc,
            &iso,
            "acme",
            "job.create",
            "race",
            json!({"spec": spec()}),
        )
        .await,
    );
    for round in 0..3u64 {
        let (a, b) = tokio::join!(
            send_expecting(
                &nc,
                &iso,
                "acme",
                "job.submit_version",
                "race",
                json!({"spec": spec()}),
                Some(1 + round)
            ),
            send_expecting(
                &nc,
                &iso,
                "acme",
                "job.submit_version",
                "race",
                json!({"spec": spec()}),
                Some(1 + round)
            ),
        );
        let wins = [&a, &b].iter().filter(|o| o.is_accepted()).count();
        assert_eq!(wins, 1, "round {round}: {a:?} / {b:?}");
        let loser = if a.is_accepted() { &b } else { &a };
        assert_eq!(code(loser), Some(RejectionCode::Conflict));
        assert!(
            loser
                .rejection
                .as_ref()
                .unwrap()
                .message
                .contains("expected"),
            "{loser:?}"
        );
    }
}

#[tokio::test]
async fn crash_between_commit_and_ack_publishes_the_outcome_once_restarted() {
    let iso = Isolation::new();
    // The tenant first, from a serve that does not crash on its first commit.
    let mut setup = Serve::start(&iso).await;
    setup.kill().await;
    let mut crashing = Serve::start_with(
        &iso,
        ServeOpts {
            env: vec![("WEIR_FAULT".into(), "crash_after_commit".into())],
            create_tenant: false,
            ..Default::default()
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    let id = Uuid::now_v7();
    let mut outcomes = nc
        .subscribe(iso.subjects().outcome("acme", &id.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "acme",
        "job.create",
        envelope(
            id,
            "acme",
            "job.create",
            "crashy",
            json!({"spec": spec()}),
            None,
        ),
    )
    .await;
    let status = crashing
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("serve aborted after commit");
    assert!(!status.success());
    // Committed, but no outcome was published and the message was not acked.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), outcomes.next())
            .await
            .is_err()
    );

    let serve = Serve::start(&iso).await;
    let o = next_outcome(&mut outcomes, 30, "outcome after restart").await;
    accepted(&o);
    let (_, events) = serve.get_json("/v1/tenants/acme/jobs/crashy/events").await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        1,
        "no duplicate events"
    );
}

#[tokio::test]
async fn survives_a_nats_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let start_nats = || {
        std::process::Command::new("/usr/sbin/nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start a private nats-server")
    };
    let mut server = start_nats();
    let url = format!("nats://127.0.0.1:{port}");
    eventually(Duration::from_secs(10), "private NATS", || async {
        async_nats::connect(&url).await.ok()
    })
    .await;
    let iso = Isolation::new();
    let _serve = Serve::start_with(
        &iso,
        ServeOpts {
            nats_url: url.clone(),
            ..Default::default()
        },
    )
    .await;
    let nc = nats(&url).await;
    accepted(
        &send(
            &nc,
            &iso,
            "acme",
            "job.create",
            "n",
            json!({"spec": spec()}),
        )
        .await,
    );

    server.kill().unwrap();
    server.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut server = start_nats();
    let nc = eventually(Duration::from_secs(10), "NATS back", || async {
        async_nats::connect(&url).await.ok()
    })
    .await;
    // Serve reconnects on its own and carries on.
    let o = send(&nc, &iso, "acme", "job.deploy", "n", json!({})).await;
    accepted(&o);
    server.kill().unwrap();
    let _ = server.wait();
}

#[tokio::test]
async fn postgres_outage_holds_commands_until_it_is_back() {
    let proxy = support::proxy::Proxy::start("127.0.0.1:5432").await;
    let iso = Isolation::new();
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            database_url: format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port),
            ..Default::default()
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    accepted(
        &send(
            &nc,
            &iso,
            "acme",
            "job.create",
            "pg",
            json!({"spec": spec()}),
        )
        .await,
    );

    proxy.disable();
    let id = Uuid::now_v7();
    let mut outcomes = nc
        .subscribe(iso.subjects().outcome("acme", &id.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "acme",
        "job.deploy",
        envelope(id, "acme", "job.deploy", "pg", json!({}), None),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(2), outcomes.next())
            .await
            .is_err(),
        "no outcome while PostgreSQL is down"
    );
    let (ready, _) = serve.get_json("/readyz").await;
    assert_eq!(ready, 503);

    proxy.enable();
    accepted(&next_outcome(&mut outcomes, 30, "outcome once PostgreSQL is back").await);
    let (_, events) = serve.get_json("/v1/tenants/acme/jobs/pg/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn garbage_is_rejected_and_serve_keeps_running() {
    let iso = Isolation::new();
    let _serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    let mut unknown = nc
        .subscribe(iso.subjects().outcome("acme", "unknown"))
        .await
        .unwrap();
    let mut dlq = nc
        .subscribe(iso.subjects().dead_letter("acme"))
        .await
        .unwrap();

    // Over the 256 KiB command limit, under NATS's 1 MiB with the token header.
    let garbage: Vec<u8> = (0..512 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    publish_raw(&nc, &iso, "acme", "job.create", garbage).await;
    publish_raw(
        &nc,
        &iso,
        "acme",
        "job.create",
        vec![b'{', 0xff, 0xfe, b'}'],
    )
    .await;
    publish_raw(&nc, &iso, "acme", "job.create", b"{\"id\": 1".to_vec()).await;

    let mut codes = Vec::new();
    for _ in 0..3 {
        let o = next_outcome(&mut unknown, 10, "rejection").await;
        codes.push(code(&o).unwrap());
        let d = tokio::time::timeout(Duration::from_secs(10), dlq.next())
            .await
            .expect("dead letter")
            .unwrap();
        assert!(d
            .headers
            .as_ref()
            .and_then(|h| h.get("Weir-Reason"))
            .is_some());
    }
    assert_eq!(
        codes,
        vec![
            RejectionCode::TooLarge,
            RejectionCode::InvalidUtf8,
            RejectionCode::InvalidJson
        ]
    );

    // A schema violation with a readable id is answered on its own subject, naming the field.
    let id = Uuid::now_v7();
    let mut own = nc
        .subscribe(iso.subjects().outcome("acme", &id.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "acme",
        "job.rescale",
        envelope(
            id,
            "acme",
            "job.rescale",
            "x",
            json!({"paralelism": 2}),
            None,
        ),
    )
    .await;
    let o = next_outcome(&mut own, 10, "rejection").await;
    assert_eq!(code(&o), Some(RejectionCode::InvalidCommand));
    assert!(o.rejection.unwrap().message.contains("paralelism"));

    // A body of one kind on another kind's subject is refused, so a
    // permission on one subject cannot carry another command.
    let id = Uuid::now_v7();
    let mut own = nc
        .subscribe(iso.subjects().outcome("acme", &id.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "acme",
        "job.delete",
        envelope(id, "acme", "job.create", "x", json!({"spec": spec()}), None),
    )
    .await;
    let o = next_outcome(&mut own, 10, "kind mismatch").await;
    assert_eq!(code(&o), Some(RejectionCode::KindMismatch));
    assert!(
        o.rejection.unwrap().message.contains("`job.delete`"),
        "names the subject's kind"
    );

    let o = send(&nc, &iso, "acme", "job.fly", "x", json!({})).await;
    assert_eq!(code(&o), Some(RejectionCode::UnknownKind));
    // Still alive.
    accepted(
        &send(
            &nc,
            &iso,
            "acme",
            "job.create",
            "alive",
            json!({"spec": spec()}),
        )
        .await,
    );
}

#[tokio::test]
async fn tenants_are_isolated() {
    let iso = Isolation::new();
    let serve = Serve::start(&iso).await;
    serve.create_tenant("tenant-a").await;
    serve.create_tenant("tenant-b").await;
    let nc = nats(NATS_URL).await;
    let a = send(
        &nc,
        &iso,
        "tenant-a",
        "job.create",
        "shared-name",
        json!({"spec": spec()}),
    )
    .await;
    accepted(&a);

    // B cannot see A's job.
    let (status, _) = serve
        .get_json("/v1/tenants/tenant-b/jobs/shared-name")
        .await;
    assert_eq!(status, 404);
    let (_, list) = serve.get_json("/v1/tenants/tenant-b/jobs").await;
    assert_eq!(list, json!([]));
    // B cannot change it: the same name in B is a different job.
    let o = send(
        &nc,
        &iso,
        "tenant-b",
        "job.deploy",
        "shared-name",
        json!({}),
    )
    .await;
    assert_eq!(code(&o), Some(RejectionCode::NotFound));
    // B cannot act in A's name by lying in the envelope.
    let id = Uuid::now_v7();
    let mut out = nc
        .subscribe(iso.subjects().outcome("tenant-b", &id.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "tenant-b",
        "job.delete",
        envelope(id, "tenant-a", "job.delete", "shared-name", json!({}), None),
    )
    .await;
    let o = next_outcome(&mut out, 10, "outcome").await;
    assert_eq!(code(&o), Some(RejectionCode::TenantMismatch));
    // Reusing A's command id in B does not return A's outcome.
    let reuse = a.command_id.unwrap();
    let mut out = nc
        .subscribe(iso.subjects().outcome("tenant-b", &reuse.to_string()))
        .await
        .unwrap();
    publish_raw(
        &nc,
        &iso,
        "tenant-b",
        "job.deploy",
        envelope(
            reuse,
            "tenant-b",
            "job.deploy",
            "shared-name",
            json!({}),
            None,
        ),
    )
    .await;
    let o = next_outcome(&mut out, 10, "outcome").await;
    assert_eq!(o.tenant, "tenant-b");
    assert_eq!(code(&o), Some(RejectionCode::NotFound));
    // A's job is untouched.
    let (_, job) = serve
        .get_json("/v1/tenants/tenant-a/jobs/shared-name")
        .await;
    assert_eq!(job["phase"], "idle");
}

/// By default a client cannot send what only Weir's own services send: a
/// forged `job.compile_succeeded` or `job.mark_running` is refused as
/// `forbidden`, whatever the job's state; user commands still work.
#[tokio::test]
async fn internal_command_kinds_are_refused_from_clients() {
    let iso = Isolation::new();
    let _serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: vec![
                ("WEIR_RUNTIME".into(), "none".into()),
                ("WEIR_ACCEPT_INTERNAL_COMMANDS".into(), "false".into()),
            ],
            ..Default::default()
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    accepted(
        &send(
            &nc,
            &iso,
            "acme",
            "job.create",
            "j",
            json!({"spec": spec()}),
        )
        .await,
    );
    accepted(&send(&nc, &iso, "acme", "job.compile", "j", json!({})).await);
    for (kind, payload) in [
        (
            "job.compile_succeeded",
            json!({"version": 1, "plan_digest": "forged", "state_fingerprint": "forged"}),
        ),
        ("job.mark_running", json!({"generation": 1})),
        (
            "job.record_runtime",
            json!({"generation": 0, "incident": {"what": "placed", "worker": "w", "epoch": 1}}),
        ),
    ] {
        let o = send(&nc, &iso, "acme", kind, "j", payload).await;
        assert_eq!(code(&o), Some(RejectionCode::Forbidden), "{kind}: {o:?}");
        assert!(o.rejection.unwrap().message.contains("Weir's own services"));
    }
}

/// The job list comes a page at a time, by name; `weir job list` reads
/// every page.
#[tokio::test]
async fn the_job_list_is_paged_by_name() {
    let iso = Isolation::new();
    let serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    for name in ["c-job", "a-job", "b-job"] {
        accepted(
            &send(
                &nc,
                &iso,
                "acme",
                "job.create",
                name,
                json!({"spec": spec()}),
            )
            .await,
        );
    }
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first) = serve.get_json("/v1/tenants/acme/jobs?limit=2").await;
    assert_eq!(names(&first), ["a-job", "b-job"]);
    let (_, next) = serve
        .get_json("/v1/tenants/acme/jobs?limit=2&after=b-job")
        .await;
    assert_eq!(names(&next), ["c-job"]);
    let (_, all) = serve.get_json("/v1/tenants/acme/jobs").await;
    assert_eq!(names(&all), ["a-job", "b-job", "c-job"]);
    let (code, _) = serve.get_json("/v1/tenants/acme/jobs?limit=x").await;
    assert_eq!(code, 400);
    let listed = serve.cli(&["job", "list"]);
    for name in ["a-job", "b-job", "c-job"] {
        assert!(listed.contains(name), "{listed}");
    }
}
