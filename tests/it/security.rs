//! The attack suite: `weir serve` with authentication on (an admin token),
//! tenants `alice` and `mallory` created by the admin with `weir tenant
//! create`, and mallory trying every door this suite knows of. Each attempt
//! must be refused with a reason that names what is wrong, and alice's job
//! must come out of it unchanged.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;
use weir::client::{self, Request};
use weir::domain::{Outcome, RejectionCode};

use crate::support::kafka::{brokers, create_topic, produce, producer};
use crate::support::nats_server::NatsServer;
use crate::support::serve::{Serve, ServeOpts};
use crate::support::{eventually, nats, Isolation, NATS_URL};

const ADMIN: &str = "admin-token-of-the-security-suite-0123456789";

struct Rig {
    serve: Serve,
    nc: async_nats::Client,
    alice: String,
    mallory: String,
}

impl Rig {
    async fn start() -> Rig {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> Rig {
        let iso = Isolation::new();
        let mut env = vec![
            ("WEIR_ADMIN_TOKEN".to_owned(), ADMIN.to_owned()),
            ("WEIR_RUNTIME".to_owned(), "embedded".to_owned()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let serve = Serve::start_with(
            &iso,
            ServeOpts {
                env,
                ..Default::default()
            },
        )
        .await;
        let alice = create_tenant(&serve, "alice", &[]);
        let mallory = create_tenant(&serve, "mallory", &["--max-jobs", "2"]);
        Rig {
            serve,
            nc: nats(NATS_URL).await,
            alice,
            mallory,
        }
    }

    /// Sends a command for `tenant` with `token` (the header), as any NATS client could.
    async fn send(
        &self,
        token: Option<&str>,
        tenant: &str,
        kind: &str,
        target: &str,
        payload: Value,
    ) -> Outcome {
        self.send_id(Uuid::now_v7(), token, tenant, kind, target, payload)
            .await
    }

    async fn send_id(
        &self,
        id: Uuid,
        token: Option<&str>,
        tenant: &str,
        kind: &str,
        target: &str,
        payload: Value,
    ) -> Outcome {
        client::send_with_id(
            &self.nc,
            &self.serve.iso.subjects(),
            token,
            id,
            Request {
                tenant: tenant.into(),
                kind: kind.into(),
                target: target.into(),
                payload,
                expected_version: None,
                actor: "someone".into(),
            },
            Duration::from_secs(20),
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind} for {tenant}: {e}"))
    }

    /// Publishes `body` on `subject_tenant`'s subject for `kind` with
    /// `token`, as a hand-written client would (its own `Nats-Msg-Id`), and
    /// returns the outcome published for `outcome_tenant`.
    async fn publish_raw(
        &self,
        subject_tenant: &str,
        outcome_tenant: &str,
        kind: &str,
        token: &str,
        body: Value,
    ) -> Outcome {
        let subjects = self.serve.iso.subjects();
        let id = body["id"].as_str().unwrap().to_owned();
        let mut out = self
            .nc
            .subscribe(subjects.outcome(outcome_tenant, &id))
            .await
            .unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Authorization", format!("Bearer {token}").as_str());
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        async_nats::jetstream::new(self.nc.clone())
            .publish_with_headers(
                subjects.command(subject_tenant, kind),
                headers,
                serde_json::to_vec(&body).unwrap().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let m = tokio::time::timeout(Duration::from_secs(20), futures::StreamExt::next(&mut out))
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice(&m.payload).unwrap()
    }

    /// Sends `job.create` with `spec`, then `job.deploy`; both must be accepted.
    async fn create_and_deploy(&self, token: &str, tenant: &str, job: &str, spec: Value) {
        for (kind, payload) in [
            ("job.create", json!({ "spec": spec })),
            ("job.deploy", json!({})),
        ] {
            let o = self.send(Some(token), tenant, kind, job, payload).await;
            assert!(o.is_accepted(), "{o:?}");
        }
    }

    /// Waits until the job's phase is `phase` and returns the job; waiting
    /// for any other phase, `failed` fails the test.
    async fn wait_phase(&self, token: &str, tenant: &str, job: &str, phase: &str) -> Value {
        let path = format!("/v1/tenants/{tenant}/jobs/{job}");
        eventually(
            Duration::from_secs(90),
            &format!("job {job} {phase}"),
            || async {
                let (_, v) = self.get(&path, Some(token)).await;
                if phase != "failed" {
                    assert_ne!(v["phase"], "failed", "{v}");
                }
                (v["phase"] == phase).then_some(v)
            },
        )
        .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new().get(self.serve.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// `weir ARGS` as the admin, on `serve`'s NATS server; it must succeed.
/// Returns what it printed.
fn admin(serve: &Serve, args: &[&str]) -> Vec<u8> {
    let out = crate::support::bin::weir_in(&serve.iso)
        .args(args)
        .envs(
            serve
                .env
                .iter()
                .filter(|(k, _)| k == "WEIR_NATS_URL")
                .cloned(),
        )
        .env("WEIR_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weir {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `weir tenant create NAME` as the admin; returns the printed token.
fn create_tenant(serve: &Serve, name: &str, quota: &[&str]) -> String {
    let mut args = vec!["-o", "json", "tenant", "create", name];
    args.extend_from_slice(quota);
    let v: Value = serde_json::from_slice(&admin(serve, &args)).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn refused(o: &Outcome, code: RejectionCode, says: &str) {
    let r = o
        .rejection
        .as_ref()
        .unwrap_or_else(|| panic!("accepted, expected {code:?}: {o:?}"));
    assert_eq!(r.code, code, "{r:?}");
    assert!(r.message.contains(says), "`{}` lacks `{says}`", r.message);
}

fn spec(input: &str, output: &str) -> Value {
    json!({
        "sources": [{"topic": input}],
        "sinks": [{"type": "kafka", "topic": output}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mallory_cannot_act_for_alice_over_nats() {
    let rig = Rig::start().await;
    let (alice, mallory) = (rig.alice.as_str(), rig.mallory.as_str());
    let created = rig
        .send(
            Some(alice),
            "alice",
            "job.create",
            "orders",
            json!({"spec": spec("alice.in", "alice.out")}),
        )
        .await;
    assert!(created.is_accepted(), "{created:?}");

    // Mallory's token on alice's subject, no token, a made-up token.
    let o = rig
        .send(Some(mallory), "alice", "job.delete", "orders", json!({}))
        .await;
    refused(
        &o,
        RejectionCode::Unauthorized,
        "not valid for tenant `alice`",
    );
    let o = rig
        .send(None, "alice", "job.delete", "orders", json!({}))
        .await;
    refused(&o, RejectionCode::Unauthorized, "no token");
    let o = rig
        .send(
            Some("weir_forged"),
            "alice",
            "job.delete",
            "orders",
            json!({}),
        )
        .await;
    refused(&o, RejectionCode::Unauthorized, "not valid");

    // An envelope claiming alice, published on mallory's own subject.
    let envelope = |id: Uuid, kind: &str, payload: Value| {
        json!({
            "id": id, "tenant": "alice", "kind": kind, "target": "orders",
            "actor": "mallory", "issued_at": chrono::Utc::now(), "payload": payload
        })
    };
    let o = rig
        .publish_raw(
            "mallory",
            "mallory",
            "job.delete",
            mallory,
            envelope(Uuid::now_v7(), "job.delete", json!({})),
        )
        .await;
    refused(&o, RejectionCode::TenantMismatch, "does not match");

    // Admin commands and internal kinds, with mallory's own valid token.
    let o = rig
        .send(
            Some(mallory),
            "mallory",
            "tenant.set_quota",
            "mallory",
            json!({"max_jobs": 1000}),
        )
        .await;
    refused(&o, RejectionCode::Forbidden, "admin command");
    rig.send(
        Some(mallory),
        "mallory",
        "job.create",
        "m1",
        json!({"spec": spec("mallory.in", "mallory.out")}),
    )
    .await;
    for (kind, payload) in [
        (
            "job.compile_succeeded",
            json!({"version": 1, "plan_digest": "x", "state_fingerprint": "y"}),
        ),
        ("job.mark_stable", json!({"generation": 1})),
    ] {
        let o = rig
            .send(Some(mallory), "mallory", kind, "m1", payload)
            .await;
        refused(&o, RejectionCode::Forbidden, "Weir's own services");
    }

    // A forged message under an id alice will use does not take that id:
    // alice's own command under it is decided afresh. (JetStream's own
    // duplicate window is keyed by `Nats-Msg-Id`, which the forger chose.)
    let next = Uuid::now_v7();
    let o = rig
        .publish_raw(
            "alice",
            "alice",
            "job.delete",
            mallory,
            envelope(next, "job.delete", json!({})),
        )
        .await;
    refused(&o, RejectionCode::Unauthorized, "not valid");
    let o = rig
        .send_id(
            next,
            Some(alice),
            "alice",
            "job.submit_version",
            "orders",
            json!({"spec": spec("alice.in", "alice.out2")}),
        )
        .await;
    assert!(o.is_accepted(), "{o:?}");

    // Alice's job: two versions, both hers, nothing of mallory's.
    let (status, history) = rig
        .get("/v1/tenants/alice/jobs/orders/events", Some(alice))
        .await;
    assert_eq!(status, 200, "{history}");
    let actors: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(
        actors.contains(&"someone@alice"),
        "the authenticated tenant is recorded with the claimed actor: {actors:?}"
    );
    assert!(actors.iter().all(|a| !a.contains("mallory")), "{actors:?}");
    let (_, job) = rig.get("/v1/tenants/alice/jobs/orders", Some(alice)).await;
    assert_ne!(job["phase"], "deleted", "{job}");
}

#[tokio::test]
async fn serve_refuses_to_start_without_an_admin_token() {
    let iso = Isolation::new();
    for (env, says) in [
        (None, "needs an admin token"),
        (Some("short"), "at least 32 are needed"),
    ] {
        let mut cmd = crate::support::bin::weir_in(&iso);
        cmd.arg("serve")
            .env("WEIR_HTTP_ADDR", "127.0.0.1:0")
            .env_remove("WEIR_INSECURE_DEV")
            .env_remove("WEIR_ADMIN_TOKEN");
        if let Some(t) = env {
            cmd.env("WEIR_ADMIN_TOKEN", t);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mallory_cannot_read_alice_over_http() {
    let rig = Rig::start().await;
    let path = "/v1/tenants/alice/jobs";
    assert_eq!(rig.get(path, Some(&rig.alice)).await.0, 200);
    assert_eq!(rig.get(path, Some(ADMIN)).await.0, 200);
    let (status, body) = rig.get(path, Some(&rig.mallory)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("not valid for tenant `alice`"));
    assert_eq!(rig.get(path, None).await.0, 401);
    // Nor alice's modules' bytes (what `weir udf run NAME@VERSION` fetches).
    let module = "/v1/tenants/alice/modules/counter/versions/1";
    assert_eq!(rig.get(module, Some(&rig.mallory)).await.0, 403);
    assert_eq!(rig.get(module, Some(&rig.alice)).await.0, 404);
    assert_eq!(rig.get(path, Some("weir_forged")).await.0, 403);
    // The console's pages of alice, and the admin's pages.
    assert_eq!(rig.get("/ui/t/alice", Some(&rig.mallory)).await.0, 403);
    // A browser on the console: asked for Basic credentials, the token as password.
    let page = rig.serve.url("/ui/t/alice");
    let r = reqwest::get(&page).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        "Basic realm=\"weir\""
    );
    let r = reqwest::Client::new()
        .get(&page)
        .basic_auth("anyone", Some(&rig.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("alice"));
    assert_eq!(rig.get("/v1/admin/tenants", Some(&rig.alice)).await.0, 403);
    // Probes stay open.
    assert_eq!(rig.get("/healthz", None).await.0, 200);

    // The admin sees both tenants, and no token or hash of one.
    let (status, tenants) = rig.get("/v1/admin/tenants", Some(ADMIN)).await;
    assert_eq!(status, 200, "{tenants}");
    let names: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["alice", "mallory"]);
    let text = tenants.to_string();
    assert!(
        !text.contains(&rig.alice) && !text.contains("sha256"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mallory_s_jobs_cannot_use_alice_s_topics() {
    let rig = Rig::start().await;
    let m = rig.mallory.as_str();
    let attempts = [
        (
            "steal",
            spec("alice.orders", "mallory.out"),
            "sources[0].topic",
        ),
        (
            "spoil",
            spec("mallory.in", "alice.orders"),
            "sinks[0].topic",
        ),
        (
            "eavesdrop",
            json!({
                "sources": [{"topic": "mallory.in", "format": "raw"}],
                "sinks": [{"type": "nats", "subject": "data.alice.alerts"}],
            }),
            "sinks[0].subject",
        ),
    ];
    for (job, spec, field) in attempts {
        rig.create_and_deploy(m, "mallory", job, spec).await;
        let view = rig.wait_phase(m, "mallory", job, "failed").await;
        let text = view.to_string();
        assert!(
            text.contains(field) && text.contains("is outside tenant `mallory`'s"),
            "{text}"
        );
        // The third attempt exceeds mallory's quota of two jobs; delete this one.
        let o = rig
            .send(Some(m), "mallory", "job.delete", job, json!({}))
            .await;
        assert!(o.is_accepted(), "{o:?}");
    }
    // An admin's grant opens one topic, and only that one.
    admin(
        &rig.serve,
        &["tenant", "grant-topic", "mallory", "shared.rates"],
    );
    let (_, shown) = rig.get("/v1/admin/tenants/mallory", Some(ADMIN)).await;
    assert_eq!(shown["granted_topics"], json!(["shared.rates"]), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mallory_s_sinks_cannot_reach_weir_alice_or_private_networks() {
    // A refused post fails the job at the first crash rather than the tenth.
    let rig = Rig::start_with(&[("WEIR_TASK_RESTART_BUDGET", "1")]).await;
    let m = rig.mallory.as_str();
    let prefix = rig.serve.iso.prefix.clone();
    // Refused with the spec: Weir's command subjects, a schema-qualified table.
    for (sink, field) in [
        (
            json!({"type": "nats", "subject": "weir.cmd.alice.job.stop"}),
            "sinks[0].subject",
        ),
        (
            json!({"type": "postgres", "table": "weir.outbox_cursors", "key_columns": ["id"]}),
            "sinks[0].table",
        ),
        (
            json!({"type": "postgres", "table": "weir_t_alice.orders", "key_columns": ["id"]}),
            "sinks[0].table",
        ),
    ] {
        let spec = json!({"sources": [{"topic": "mallory.in"}], "sinks": [sink]});
        let o = rig
            .send(
                Some(m),
                "mallory",
                "job.create",
                "forge",
                json!({ "spec": spec }),
            )
            .await;
        refused(&o, RejectionCode::InvalidCommand, field);
    }

    // Refused by the compile step: this installation's command subject, which
    // is outside mallory's data subjects whatever the prefix.
    let input = format!("mallory.in-{}", Uuid::new_v4().simple());
    create_topic(&brokers(), &input, 1).await;
    let forged_stop = format!("{prefix}.cmd.alice.job.stop");
    let spec = json!({
        "sources": [{"topic": input}],
        "sinks": [{"type": "nats", "subject": forged_stop}],
    });
    rig.create_and_deploy(m, "mallory", "forge", spec).await;
    let failed = rig.wait_phase(m, "mallory", "forge", "failed").await;
    assert!(failed.to_string().contains("sinks[0].subject"), "{failed}");
    let o = rig
        .send(Some(m), "mallory", "job.delete", "forge", json!({}))
        .await;
    assert!(o.is_accepted(), "{o:?}");

    // Refused by the runtime, which resolves names: loopback, cloud
    // metadata, a private range, and a name that resolves to loopback.
    let mut targets = vec![
        (
            "http://127.0.0.1:9/steal".to_owned(),
            "127.0.0.1 is not a public address",
        ),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "169.254.169.254 is not a public address",
        ),
        (
            "http://10.1.2.3/x".to_owned(),
            "10.1.2.3 is not a public address",
        ),
        (
            "http://localhost:9/x".to_owned(),
            "`localhost` is not a public address",
        ),
    ];
    // The machine's own name resolves to loopback on Debian (/etc/hosts).
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    let loopback = std::net::ToSocketAddrs::to_socket_addrs(&(host, 80))
        .map(|mut a| a.all(|a| a.ip().is_loopback()))
        .unwrap_or(false);
    if !host.is_empty() && loopback {
        targets.push((
            format!("http://{host}:9/x"),
            "resolves to no public address",
        ));
    } else {
        eprintln!(
            "this machine's name `{host}` does not resolve to loopback; that case is not run"
        );
    }
    for (i, (url, says)) in targets.iter().enumerate() {
        let job = format!("egress-{i}");
        let spec = json!({
            "sources": [{"topic": input}],
            "sinks": [{"type": "http", "url": url, "max_attempts": 1}],
        });
        rig.create_and_deploy(m, "mallory", &job, spec).await;
        if says.starts_with("resolves") {
            // Names are resolved when the sink posts: give it a record.
            produce(
                &producer(&brokers()),
                &input,
                &[(0, "k".into(), r#"{"n": 1}"#.into())],
            )
            .await;
        }
        let failed = rig.wait_phase(m, "mallory", &job, "failed").await;
        assert!(failed.to_string().contains(says), "{url}: {failed}");
        let o = rig
            .send(Some(m), "mallory", "job.delete", &job, json!({}))
            .await;
        assert!(o.is_accepted(), "{o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_quota_refuses_what_goes_past_it() {
    let rig = Rig::start().await;
    let m = rig.mallory.as_str();
    // Jobs: two allowed.
    for (job, accepted) in [("a", true), ("b", true), ("c", false)] {
        let o = rig
            .send(
                Some(m),
                "mallory",
                "job.create",
                job,
                json!({"spec": spec("mallory.in", "mallory.out")}),
            )
            .await;
        if accepted {
            assert!(o.is_accepted(), "{o:?}");
        } else {
            refused(&o, RejectionCode::QuotaExceeded, "max_jobs");
        }
    }
    // Module bytes.
    admin(
        &rig.serve,
        &[
            "tenant",
            "quota",
            "mallory",
            "--max-module-bytes",
            "1000",
            "--commands-per-second",
            "5",
            "--max-parallelism",
            "3",
        ],
    );
    let register = |size: u64| {
        json!({
            "version": format!("v{size}"), "digest": format!("sha256:{}", "ab".repeat(32)),
            "size": size, "interface": "weir:udf/guest@0.1.0", "module_kind": "map"
        })
    };
    let o = rig
        .send(Some(m), "mallory", "module.register", "big", register(1001))
        .await;
    refused(&o, RejectionCode::QuotaExceeded, "max_module_bytes");
    // Tasks: three in all.
    let o = rig
        .send(
            Some(m),
            "mallory",
            "job.deploy",
            "a",
            json!({"parallelism": 4}),
        )
        .await;
    refused(&o, RejectionCode::QuotaExceeded, "max_parallelism (3)");

    // Commands per second: a burst of 40 at once, 5 a second allowed.
    let burst = futures::future::join_all((0..40).map(|i| {
        rig.send(
            Some(m),
            "mallory",
            "job.rescale",
            "a",
            json!({"parallelism": 1 + i % 3}),
        )
    }))
    .await;
    let limited = burst
        .iter()
        .filter(|o| {
            o.rejection
                .as_ref()
                .is_some_and(|r| r.code == RejectionCode::QuotaExceeded)
        })
        .count();
    // However slowly a busy machine works through the burst, far fewer than
    // 40 fit in 5/s, and the bucket's first tokens let some through.
    assert!(
        (10..40).contains(&limited),
        "{limited} of 40 refused at 5/s"
    );
    // Mallory cannot be deleted while her jobs would run on unowned.
    let o = rig
        .send(
            Some(ADMIN),
            "mallory",
            "tenant.delete",
            "mallory",
            json!({}),
        )
        .await;
    refused(&o, RejectionCode::InvalidTransition, "still has 2 jobs");
    // Alice is not slowed by mallory's flood.
    let o = rig
        .send(
            Some(&rig.alice),
            "alice",
            "job.create",
            "calm",
            json!({"spec": spec("alice.in", "alice.out")}),
        )
        .await;
    assert!(o.is_accepted(), "{o:?}");
}

/// A receiver of HTTP sink batches that records each POST's `Authorization`.
async fn hook() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let s = s.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    s.lock().unwrap().push((auth, body.0));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_its_sink_and_no_verb_or_api_shows_it() {
    const VALUE: &str = "Bearer s3cret-only-the-hook-sees";
    let key = "42".repeat(32);
    let rig = Rig::start_with(&[
        ("WEIR_SECRET_KEY", key.as_str()),
        ("WEIR_HTTP_SINK_ALLOW_PRIVATE", "true"),
    ])
    .await;
    let alice = rig.alice.as_str();
    let weir = |args: &[&str], token: &str, stdin: Option<&str>| {
        use std::io::Write;
        let mut cmd = crate::support::bin::weir_in(&rig.serve.iso);
        cmd.args(["-t", "alice"])
            .args(args)
            .env("WEIR_TOKEN", token)
            .env("WEIR_API_URL", format!("http://{}", rig.serve.http))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };
    let set = weir(
        &["secret", "set", "hook"],
        alice,
        Some(&format!("{VALUE}\n")),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let listed = weir(&["secret", "list"], alice, None);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("hook") && !listed.contains("s3cret"),
        "{listed}"
    );
    // Mallory can neither list nor overwrite alice's secrets.
    let stolen = weir(&["secret", "list"], &rig.mallory, None);
    assert!(!stolen.status.success());
    assert!(String::from_utf8_lossy(&stolen.stderr).contains("not valid for tenant `alice`"));

    // At rest: sealed.
    let db = sqlx::PgPool::connect(crate::support::DATABASE_URL)
        .await
        .unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT ciphertext FROM {}.secrets WHERE tenant = 'alice' AND name = 'hook'",
        rig.serve.iso.schema
    ))
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(!sealed.windows(6).any(|w| w == b"s3cret"));

    // A job posts with the secret as its header.
    let (url, seen) = hook().await;
    let input = format!("alice.in-{}", Uuid::new_v4().simple());
    create_topic(&brokers(), &input, 1).await;
    let spec = json!({
        "sources": [{"topic": input}],
        "sinks": [{"type": "http", "url": url, "headers": {"Authorization": "${secret:hook}"}}],
        "checkpoint": {"interval_ms": 500}
    });
    rig.create_and_deploy(alice, "alice", "hooked", spec).await;
    rig.wait_phase(alice, "alice", "hooked", "running").await;
    let records: Vec<(i32, String, String)> = (0..3)
        .map(|i| (0, format!("k{i}"), format!("{{\"n\": {i}}}")))
        .collect();
    produce(&producer(&brokers()), &input, &records).await;
    let auths = eventually(Duration::from_secs(60), "the hook is called", || async {
        let got = seen.lock().unwrap().clone();
        let n: usize = got
            .iter()
            .map(|(_, b)| b.as_array().map_or(0, Vec::len))
            .sum();
        (n >= 3).then(|| got.into_iter().map(|(a, _)| a).collect::<Vec<_>>())
    })
    .await;
    assert!(auths.iter().all(|a| a == VALUE), "{auths:?}");

    // Nothing Weir shows holds the value: the job, its versions, its history,
    // the runtime's view, the secret list.
    for path in [
        "/v1/tenants/alice/jobs/hooked",
        "/v1/tenants/alice/jobs/hooked/versions",
        "/v1/tenants/alice/jobs/hooked/events",
        "/v1/tenants/alice/jobs/hooked/runtime",
        "/v1/tenants/alice/secrets",
    ] {
        let (status, body) = rig.get(path, Some(ADMIN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.to_string().contains("s3cret"), "{path}: {body}");
    }
    let (_, versions) = rig
        .get("/v1/tenants/alice/jobs/hooked/versions", Some(alice))
        .await;
    assert!(
        versions.to_string().contains("${secret:hook}"),
        "{versions}"
    );

    // A reference to a secret that does not exist fails the start, by name.
    let missing = json!({
        "sources": [{"topic": input}],
        "sinks": [{"type": "http", "url": url, "headers": {"X-Key": "${secret:nope}"}}],
    });
    rig.create_and_deploy(alice, "alice", "unhooked", missing)
        .await;
    let failed = rig.wait_phase(alice, "alice", "unhooked", "failed").await;
    assert!(failed.to_string().contains("no secret `nope`"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_over_the_state_quota_fails_naming_it() {
    let rig = Rig::start().await;
    let alice = rig.alice.as_str();
    admin(
        &rig.serve,
        &["tenant", "quota", "alice", "--max-state-bytes", "500"],
    );
    let wasm = std::env::temp_dir().join(format!("{}-count.wasm", rig.serve.iso.prefix));
    std::fs::write(&wasm, crate::support::guests::guest("running_count")).unwrap();
    let up = crate::support::bin::weir_in(&rig.serve.iso)
        .args(["-t", "alice", "udf", "upload", "counter"])
        .env("WEIR_API_URL", format!("http://{}", rig.serve.http))
        .arg(&wasm)
        .args(["--version", "1.0.0"])
        .env("WEIR_TOKEN", alice)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let id = Uuid::new_v4().simple().to_string();
    let (input, output) = (format!("alice.cnt-{id}"), format!("alice.cnt-out-{id}"));
    create_topic(&brokers(), &input, 1).await;
    create_topic(&brokers(), &output, 1).await;
    let spec = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "operators": [{"type": "udf", "id": "count", "module": "counter@1.0.0", "kind": "process"}],
        "sinks": [{"type": "kafka", "topic": output}],
        "checkpoint": {"interval_ms": 300}
    });
    rig.create_and_deploy(alice, "alice", "counts", spec).await;
    rig.wait_phase(alice, "alice", "counts", "running").await;
    // A count per key: 300 keys hold far more than 500 bytes of state.
    let records: Vec<(i32, String, String)> = (0..300)
        .map(|i| (0, format!("user-{i}"), format!("r{i}")))
        .collect();
    produce(&producer(&brokers()), &input, &records).await;
    let failed = rig.wait_phase(alice, "alice", "counts", "failed").await;
    assert!(
        failed.to_string().contains("max_state_bytes (500)"),
        "{failed}"
    );
}

/// Logs in to NATS as the holder of `token`, as the weir CLI does, with the
/// server's errors (permission violations) sent to the receiver.
async fn login(
    url: &str,
    token: &str,
) -> Option<(
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    weir::nats_auth::login(async_nats::ConnectOptions::new(), Some(token))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = e {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(url)
        .await
        .ok()
        .map(|c| (c, rx))
}

/// Waits for the server to report a permissions violation on `subject`.
async fn violation(errors: &mut tokio::sync::mpsc::UnboundedReceiver<String>, subject: &str) {
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = errors.recv().await {
            if e.to_lowercase().contains("permissions violation") && e.contains(subject) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        seen,
        Ok(true),
        "no permissions violation reported for `{subject}`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_itself_keeps_mallory_out_of_alice_s_subjects() {
    let mut server = NatsServer::prepare();
    let iso = Isolation::new();
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            nats_url: server.url.clone(),
            env: vec![
                ("WEIR_ADMIN_TOKEN".into(), ADMIN.into()),
                ("WEIR_NATS_URL".into(), server.url.clone()),
                (
                    "WEIR_NATS_USERS_FILE".into(),
                    server.users_file.display().to_string(),
                ),
                (
                    "WEIR_NATS_PID_FILE".into(),
                    server.pid_file.display().to_string(),
                ),
            ],
            wait_ready: false,
            ..Default::default()
        },
    )
    .await;
    // weir serve writes the users before it connects; the server needs them.
    server.start().await;
    serve.wait_healthy().await;
    let alice = create_tenant(&serve, "alice", &[]);
    let mallory = create_tenant(&serve, "mallory", &[]);
    let subjects = iso.subjects();
    let url = server.url.clone();

    // No user, or a made-up token: no connection at all.
    assert!(async_nats::connect(&url).await.is_err(), "anonymous login");
    assert!(login(&url, "weir_made_up").await.is_none(), "forged login");

    // A tenant's user exists once serve has rewritten the file and the
    // server has reloaded it.
    let (a, _) = eventually(Duration::from_secs(30), "alice's NATS user", || {
        login(&url, &alice)
    })
    .await;
    let (m, mut errors) = eventually(Duration::from_secs(30), "mallory's NATS user", || {
        login(&url, &mallory)
    })
    .await;
    let create = |tenant: &str, job: &str| Request {
        tenant: tenant.into(),
        kind: "job.create".into(),
        target: job.into(),
        payload: json!({ "spec": spec(&format!("{tenant}.in"), &format!("{tenant}.out")) }),
        expected_version: None,
        actor: "someone".into(),
    };
    // Each works in its own space: commands in, outcomes back on its inbox.
    for (c, token, tenant) in [(&a, &alice, "alice"), (&m, &mallory, "mallory")] {
        let o = client::send_as(
            c,
            &subjects,
            Some(token),
            create(tenant, "orders"),
            Duration::from_secs(20),
            false,
        )
        .await
        .unwrap();
        assert!(o.is_accepted(), "{o:?}");
    }

    // Reading anything of alice's, or of Weir's, is refused by the server.
    let alice_inbox = weir::nats_auth::inbox_prefix(&weir::nats_auth::user_of_token(&alice));
    for subject in [
        subjects.outcome("alice", ">"),
        subjects.event("alice", ">"),
        subjects.dead_letter("alice"),
        "data.alice.>".to_owned(),
        format!("{alice_inbox}.>"),
        "_INBOX.>".to_owned(),
        format!("{}.>", subjects.prefix()),
    ] {
        let _sub = m.subscribe(subject.clone()).await.unwrap();
        violation(&mut errors, &subject).await;
    }
    // So is publishing on alice's command subjects or the JetStream API.
    for subject in [
        subjects.command("alice", "job.delete"),
        format!("$JS.API.STREAM.DELETE.{}", subjects.command_stream()),
        format!("$JS.API.STREAM.PURGE.{}", subjects.command_stream()),
    ] {
        m.publish(subject.clone(), "{}".into()).await.unwrap();
        m.flush().await.unwrap();
        violation(&mut errors, &subject).await;
    }

    // alice carries on: her job is there and her next command is accepted.
    let job: Value = reqwest::Client::new()
        .get(serve.url("/v1/tenants/alice/jobs/orders"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["name"], "orders", "{job}");
    let o = client::send_as(
        &a,
        &subjects,
        Some(&alice),
        create("alice", "more"),
        Duration::from_secs(20),
        false,
    )
    .await
    .unwrap();
    assert!(o.is_accepted(), "{o:?}");

    // A rotated token stops logging in.
    admin(&serve, &["tenant", "rotate-token", "mallory"]);
    eventually(
        Duration::from_secs(30),
        "mallory's old token refused",
        || {
            let url = url.clone();
            let old = mallory.clone();
            async move { login(&url, &old).await.is_none().then_some(()) }
        },
    )
    .await;
    assert!(
        !server.log().contains("[FTL]"),
        "the server failed on its users: {}",
        server.log()
    );
}

/// `weir -t TENANT ARGS` with `token`, through `serve`'s API.
fn as_tenant(serve: &Serve, token: &str, tenant: &str, args: &[&str]) -> std::process::Output {
    crate::support::bin::weir_in(&serve.iso)
        .args(["-t", tenant])
        .args(args)
        .env("WEIR_TOKEN", token)
        .env("WEIR_API_URL", format!("http://{}", serve.http))
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_verbs_keep_each_tenant_to_its_own_topics() {
    let rig = Rig::start().await;
    let (a, m) = (rig.alice.as_str(), rig.mallory.as_str());
    let id = &Uuid::now_v7().simple().to_string()[20..];
    let orders = format!("alice.orders-{id}");
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let no = |o: std::process::Output, says: &str| {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "`{err}` lacks `{says}`");
    };

    // alice creates, fills and reads her topic through the API.
    let out = ok(as_tenant(
        &rig.serve,
        a,
        "alice",
        &["topic", "create", &orders, "--partitions", "2"],
    ));
    assert!(out.contains(&format!("created {orders}")), "{out}");
    let lines = std::env::temp_dir().join(format!("orders-{id}.jsonl"));
    std::fs::write(
        &lines,
        "{\"c\":\"ann\",\"n\":1}\n\n{\"c\":\"bob\",\"n\":2}\n{\"c\":\"ann\",\"n\":3}\n",
    )
    .unwrap();
    let file = lines.to_str().unwrap();
    ok(as_tenant(
        &rig.serve,
        a,
        "alice",
        &[
            "topic",
            "produce",
            &orders,
            "--file",
            file,
            "--key-field",
            "c",
        ],
    ));
    let tail = |token: &str| {
        as_tenant(
            &rig.serve,
            token,
            "alice",
            &[
                "-o", "json", "topic", "tail", &orders, "--count", "3", "--idle", "10s",
            ],
        )
    };
    let read: Vec<Value> = ok(tail(a))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), 3, "{read:?}");
    let mut keyed: Vec<(String, i64)> = read
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
            (
                r["key"].as_str().unwrap().to_owned(),
                v["n"].as_i64().unwrap(),
            )
        })
        .collect();
    keyed.sort();
    assert_eq!(
        keyed,
        [("ann".into(), 1), ("ann".into(), 3), ("bob".into(), 2)]
    );

    // mallory, in her own name, reaches none of it.
    let outside = "is outside tenant `mallory`'s namespace";
    for args in [
        vec!["topic", "create", orders.as_str()],
        vec!["topic", "produce", orders.as_str(), "--file", file],
        vec!["topic", "tail", orders.as_str(), "--count", "1"],
        vec!["topic", "create", "weir.acme.job.stage-1.repartition"],
    ] {
        no(as_tenant(&rig.serve, m, "mallory", &args), outside);
    }
    // …nor in alice's: her token is not alice's.
    no(tail(m), "the token is not valid for tenant `alice`");
    // alice's topic holds what alice wrote, and only that.
    let (status, view) = rig
        .get(&format!("/v1/tenants/alice/topics/{orders}"), Some(a))
        .await;
    assert_eq!(status, 200, "{view}");
    let held: i64 = view["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high"].as_i64().unwrap() - p["low"].as_i64().unwrap())
        .sum();
    assert_eq!(held, 3, "{view}");
    // The raw routes say the same, and refuse what is not a topic name.
    let page = format!("/v1/tenants/mallory/topics/{orders}/records?partition=0");
    let (status, body) = rig.get(&page, Some(m)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains(outside), "{body}");
    let (status, body) = rig.get("/v1/tenants/mallory/topics/..", Some(m)).await;
    assert!(status == 400 || status == 404, "{status} {body}");
    let (status, body) = rig
        .get("/v1/tenants/mallory/topics/mallory.a$b", Some(m))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not a topic name"),
        "{body}"
    );

    // An admin's grant opens one topic to mallory.
    let shared = format!("shared.rates-{id}");
    no(
        as_tenant(&rig.serve, m, "mallory", &["topic", "create", &shared]),
        outside,
    );
    admin(&rig.serve, &["tenant", "grant-topic", "mallory", &shared]);
    let out = ok(as_tenant(
        &rig.serve,
        m,
        "mallory",
        &["topic", "create", &shared],
    ));
    assert!(out.contains(&format!("created {shared}")), "{out}");
    let _ = std::fs::remove_file(&lines);
}
