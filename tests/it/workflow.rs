//! Durable workflows end to end against PostgreSQL: the shipped workflows'
//! happy paths, retries, pauses and compensation, automatic rollback, the
//! state-loss refusal, pinned definitions, two replicas sharing 50 deploys,
//! and `kill -9` of `weir serve` at every step boundary of deploy.yaml.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::json;
use weir::domain::job::spec::UdfKind;
use weir::domain::job::Phase;
use weir::domain::workflow::state::StepStatus;
use weir::domain::workflow::{RunState, RunStatus};
use weir::domain::ErrorClass;
use weir::workflow::clock::Clock;

use crate::support::bin::weir;
use crate::support::serve::{Serve, ServeOpts};
use crate::support::workflow::{fast_spec, Rig, TENANT};
use crate::support::{eventually, nats, send, Isolation, NATS_URL};

const T: Duration = Duration::from_secs(60);

fn restored_from(effects: &[(String, i64, serde_json::Value)], generation: i64) -> Option<String> {
    effects
        .iter()
        .find(|(op, g, _)| op == "start" && *g == generation)
        .and_then(|(_, _, d)| d["restored_from"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn every_shipped_workflow_runs_its_happy_path() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", None);
    rig.module(
        "counter",
        "1",
        UdfKind::Process,
        Some(json!({"count": "u64"})),
    );
    let ops = json!([{"type": "udf", "id": "count", "module": "counter@1", "kind": "process"}]);
    rig.ok(
        "job.create",
        "orders",
        json!({"spec": fast_spec(2, ops.clone())}),
    )
    .await;

    // deploy.yaml (which asks compile.yaml to compile first).
    rig.ok("job.deploy", "orders", json!({})).await;
    let (_, compile) = rig.settled_run("orders", "compile", 0, T).await;
    assert_eq!(compile.status, RunStatus::Completed, "{:?}", compile.reason);
    let fingerprint = compile.outputs.as_ref().unwrap()["state_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fingerprint.starts_with("sha256:"));
    assert_eq!(
        rig.modules.precompiled(),
        vec!["sha256:counter-1".to_string()]
    );
    rig.stable("orders", 1, 1, T).await;
    let (_, deploy) = rig.settled_run("orders", "deploy", 0, T).await;
    assert_eq!(deploy.status, RunStatus::Completed);
    assert_eq!(deploy.outputs.as_ref().unwrap()["stable"], true);
    assert_eq!(deploy.definition_sha256.len(), 64);

    // upgrade.yaml: same state fingerprint, so state is restored from the final checkpoint of generation 1.
    rig.module(
        "counter",
        "2",
        UdfKind::Process,
        Some(json!({"count": "u64"})),
    );
    let ops2 = json!([{"type": "udf", "id": "count", "module": "counter@2", "kind": "process"}]);
    rig.ok(
        "job.submit_version",
        "orders",
        json!({"spec": fast_spec(2, ops2)}),
    )
    .await;
    rig.ok("job.deploy", "orders", json!({"version": 2})).await;
    rig.stable("orders", 2, 2, T).await;
    let (_, up) = rig.settled_run("orders", "upgrade", 0, T).await;
    assert_eq!(up.outputs.as_ref().unwrap()["state_restored"], true);
    let effects = rig.effects("orders").await;
    let final1 = effects
        .iter()
        .find(|(op, g, _)| op == "stop" && *g == 1)
        .unwrap()
        .2["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(restored_from(&effects, 2).as_deref(), Some(final1.as_str()));

    // rescale.yaml: checkpoint and stop, redeploy at 3, restore.
    rig.ok("job.rescale", "orders", json!({"parallelism": 3}))
        .await;
    eventually(T, "rescale to 3 running", || async {
        let s = rig.job("orders").await;
        (s.phase == Phase::Running && s.generation == 3).then_some(())
    })
    .await;
    let (_, rescale) = rig.settled_run("orders", "rescale", 0, T).await;
    assert_eq!(rescale.status, RunStatus::Completed, "{:?}", rescale.reason);
    let effects = rig.effects("orders").await;
    let start3 = effects
        .iter()
        .find(|(op, g, _)| op == "start" && *g == 3)
        .unwrap();
    assert_eq!(start3.2["parallelism"], 3);
    assert!(restored_from(&effects, 3).unwrap().ends_with("-g2-final"));

    // restore.yaml: from a named checkpoint.
    rig.ok("job.restore", "orders", json!({"checkpoint": final1}))
        .await;
    let (_, restore) = rig.settled_run("orders", "restore", 0, T).await;
    assert_eq!(restore.status, RunStatus::Completed, "{:?}", restore.reason);
    assert_eq!(
        restored_from(&rig.effects("orders").await, 4).as_deref(),
        Some(final1.as_str())
    );
    assert_eq!(rig.job("orders").await.phase, Phase::Running);

    // stop.yaml.
    rig.ok("job.stop", "orders", json!({})).await;
    let (_, stop) = rig.settled_run("orders", "stop", 0, T).await;
    assert_eq!(stop.status, RunStatus::Completed, "{:?}", stop.reason);
    assert_eq!(rig.job("orders").await.phase, Phase::Stopped);

    // Every side effect happened once: one start and at most one stop per generation.
    let mut seen = HashMap::new();
    for (op, g, _) in rig.effects("orders").await {
        *seen.entry((op, g)).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    for g in 1..=4 {
        assert_eq!(
            seen.get(&("start".to_string(), g)),
            Some(&1),
            "start of generation {g}"
        );
    }
}

#[tokio::test]
async fn a_compile_with_a_missing_module_reports_why() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", None);
    let ops = json!([{"type": "udf", "id": "x", "module": "ghost@1", "kind": "map"}]);
    rig.ok("job.create", "ghosts", json!({"spec": fast_spec(1, ops)}))
        .await;
    rig.ok("job.compile", "ghosts", json!({})).await;
    let (_, run) = rig.settled_run("ghosts", "compile", 0, T).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.steps["fetch"].status, StepStatus::Failed);
    let job = rig.job("ghosts").await;
    let status = serde_json::to_value(&job.versions[0].compile).unwrap();
    assert_eq!(status["status"], "failed");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains("module ghost@1 is not uploaded"),
        "{status}"
    );
}

#[tokio::test]
async fn a_failing_step_retries_with_backoff_then_pauses_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "name: deploy
steps:
  - id: assign
    activity: start
    input: { job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: $.input.parallelism }
    retry: { max_attempts: 3, backoff: { initial: 300ms, multiplier: 2, max: 5s } }
    on_failure: pause
  - id: mark_running
    activity: job_command
    input: { job: $.input.job, kind: job.mark_running, payload: { generation: $.input.generation } }
",
    )
    .unwrap();
    let mut rig = Rig::new().await;
    rig.sim
        .set_behaviour(TENANT, "flaky", 1, "unavailable:3")
        .await
        .unwrap();
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "flaky",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.deploy", "flaky", json!({})).await;
    let (run_id, run) = rig.settled_run("flaky", "deploy", 0, T).await;
    assert_eq!(run.status, RunStatus::Paused);
    assert!(
        run.reason
            .as_deref()
            .unwrap()
            .contains("step `assign` failed (unavailable)"),
        "{:?}",
        run.reason
    );
    let failures: Vec<_> = rig
        .run_events(&run_id)
        .await
        .into_iter()
        .filter(|e| e.event_type == "step_failed")
        .collect();
    assert_eq!(failures.len(), 3);
    // Each failure schedules the next attempt by the backoff (300ms, then
    // 600ms, each cut by up to a fifth as jitter), and no attempt starts
    // before its time: read on the engine's clock, as recorded in the
    // events, not on how long the test took.
    let at = |i: usize, field: &str| -> Option<chrono::DateTime<chrono::Utc>> {
        serde_json::from_value(failures[i].payload[field].clone()).unwrap()
    };
    for (i, want) in [(1, 300), (2, 600)] {
        let (failed, retry_at) = (at(i - 1, "at").unwrap(), at(i - 1, "retry_at").unwrap());
        let delay = retry_at - failed;
        let ms = delay.num_milliseconds();
        assert!(ms >= want * 4 / 5 && ms <= want, "backoff {i}: {delay}");
        assert!(
            at(i, "at").unwrap() >= retry_at,
            "attempt {} ran before its time",
            i + 1
        );
    }
    assert_eq!(failures[2].payload["retry_at"], serde_json::Value::Null);
    assert_eq!(rig.calls("flaky").await, vec![("start".to_string(), 1, 3)]);
    assert!(rig.effects("flaky").await.is_empty());

    // An operator resumes; the fourth start succeeds (the runtime refused only 3).
    rig.ok("workflow.resume", &run_id, json!({})).await;
    eventually(T, "resumed run to complete", || async {
        let runs = rig.runs().await;
        let r = runs.iter().find(|(id, _)| id == &run_id)?;
        (r.1.status == RunStatus::Completed).then_some(())
    })
    .await;
    assert_eq!(rig.job("flaky").await.phase, Phase::Running);
    assert_eq!(rig.effects("flaky").await.len(), 1);
}

#[tokio::test]
async fn a_failing_step_can_compensate_the_steps_before_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "name: deploy
steps:
  - id: assign
    activity: start
    input: { job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: $.input.parallelism }
    compensate:
      activity: stop
      input: { job: $.input.job, generation: $.input.generation }
  - id: pick
    activity: pick_checkpoint
    input: { job: $.input.job, version: $.input.version, checkpoint: no-such-checkpoint }
    on_failure: compensate
",
    )
    .unwrap();
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "comp",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.deploy", "comp", json!({})).await;
    let (_, run) = rig.settled_run("comp", "deploy", 0, T).await;
    assert_eq!(run.status, RunStatus::Compensated, "{:?}", run.reason);
    assert_eq!(run.error.as_ref().unwrap().class, ErrorClass::NotFound);
    assert_eq!(run.steps["assign"].status, StepStatus::Compensated);
    let ops: Vec<String> = rig.effects("comp").await.into_iter().map(|e| e.0).collect();
    assert_eq!(ops, vec!["start", "stop"]);
}

#[tokio::test]
async fn an_upgrade_that_does_not_become_stable_rolls_back_with_its_state() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", None);
    rig.ok(
        "job.create",
        "shaky",
        json!({"spec": fast_spec(2, json!([]))}),
    )
    .await;
    rig.ok("job.deploy", "shaky", json!({})).await;
    rig.stable("shaky", 1, 1, T).await;
    rig.ok(
        "job.submit_version",
        "shaky",
        json!({"spec": fast_spec(2, json!([]))}),
    )
    .await;
    rig.sim
        .set_behaviour(TENANT, "shaky", 2, "crashloop")
        .await
        .unwrap();
    rig.ok("job.deploy", "shaky", json!({"version": 2})).await;

    // Version 2 crash-loops; the upgrade gives up and rolls back to version 1 under generation 3.
    let state = rig.stable("shaky", 1, 3, T).await;
    assert_eq!(
        state.deployment.as_ref().unwrap().cause,
        weir::domain::job::DeployCause::Rollback
    );
    let (_, up) = rig.settled_run("shaky", "upgrade", 0, T).await;
    assert_eq!(up.status, RunStatus::Completed);
    assert_eq!(up.outputs.as_ref().unwrap()["rolled_back"], true);
    assert_eq!(up.error.as_ref().unwrap().class, ErrorClass::Unhealthy);
    let events = rig.job_events("shaky").await;
    assert!(events.contains(&"failed".to_string()), "{events:?}");
    // With its state: generation 3 restarts from version 1's final checkpoint, taken when the upgrade stopped it.
    let effects = rig.effects("shaky").await;
    let final1 = effects
        .iter()
        .find(|(op, g, _)| op == "stop" && *g == 1)
        .unwrap()
        .2["checkpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(restored_from(&effects, 3).as_deref(), Some(final1.as_str()));
    // The rollback's own deploy run does not roll back again.
    let (_, rb) = rig.settled_run("shaky", "deploy", 1, T).await;
    assert_eq!(rb.input["cause"], "rollback");
    assert_eq!(rb.outputs.as_ref().unwrap()["stable"], true);
    assert!(!rb.steps.contains_key("rollback"));
}

#[tokio::test]
async fn an_upgrade_that_would_drop_state_is_refused_unless_allowed() {
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", None);
    rig.module(
        "counter",
        "1",
        UdfKind::Process,
        Some(json!({"count": "u64"})),
    );
    rig.module(
        "counter",
        "2",
        UdfKind::Process,
        Some(json!({"count": "string"})),
    );
    let v = |m: &str| {
        fast_spec(
            1,
            json!([{"type": "udf", "id": "count", "module": m, "kind": "process"}]),
        )
    };
    rig.ok("job.create", "counts", json!({"spec": v("counter@1")}))
        .await;
    rig.ok("job.deploy", "counts", json!({})).await;
    rig.stable("counts", 1, 1, T).await;
    rig.ok(
        "job.submit_version",
        "counts",
        json!({"spec": v("counter@2")}),
    )
    .await;
    rig.ok("job.deploy", "counts", json!({"version": 2})).await;

    let (_, up) = rig.settled_run("counts", "upgrade", 0, T).await;
    let err = up.error.as_ref().unwrap();
    assert_eq!(
        (err.step.as_str(), err.class),
        ("compat", ErrorClass::Refused)
    );
    assert!(
        err.message.contains("would drop operator state"),
        "{}",
        err.message
    );
    let state = rig.stable("counts", 1, 3, T).await;
    assert!(state.last_failure.is_none());
    let effects = rig.effects("counts").await;
    assert!(
        !effects.iter().any(|(op, g, _)| op == "start" && *g == 2),
        "refused before starting: {effects:?}"
    );
    assert!(
        !effects.iter().any(|(op, g, _)| op == "stop" && *g == 1),
        "the running version was left alone: {effects:?}"
    );

    // With the explicit flag the upgrade goes ahead, starting fresh.
    rig.ok(
        "job.deploy",
        "counts",
        json!({"version": 2, "allow_state_loss": true}),
    )
    .await;
    rig.stable("counts", 2, 4, T).await;
    let (_, up2) = rig.settled_run("counts", "upgrade", 1, T).await;
    assert_eq!(up2.outputs.as_ref().unwrap()["state_restored"], false);
    assert_eq!(restored_from(&rig.effects("counts").await, 4), None);
}

#[tokio::test]
async fn editing_a_workflow_file_does_not_change_a_run_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let def = |digest: &str| {
        format!(
            "name: compile
steps:
  - id: think
    wait: {{ for: 1s }}
  - id: record
    activity: job_command
    input:
      job: $.input.job
      kind: job.compile_succeeded
      payload: {{ version: $.input.version, plan_digest: {digest}, state_fingerprint: f }}
"
        )
    };
    std::fs::write(dir.path().join("compile.yaml"), def("original")).unwrap();
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "pinned",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.compile", "pinned", json!({})).await;
    eventually(T, "the run to be waiting", || async {
        let runs = rig.runs().await;
        runs.iter()
            .any(|(_, r)| r.current.as_ref().is_some_and(|c| c.step == "think"))
            .then_some(())
    })
    .await;
    std::fs::write(dir.path().join("compile.yaml"), def("edited")).unwrap();
    let (_, first) = rig.settled_run("pinned", "compile", 0, T).await;
    assert_eq!(first.status, RunStatus::Completed);
    let digest = |s: &weir::domain::job::JobState, v: usize| {
        serde_json::to_value(&s.versions[v].compile).unwrap()["plan_digest"].clone()
    };
    assert_eq!(digest(&rig.job("pinned").await, 0), "original");

    // A run started after the edit uses the new text.
    rig.ok(
        "job.submit_version",
        "pinned",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.compile", "pinned", json!({"version": 2})).await;
    let (_, second) = rig.settled_run("pinned", "compile", 1, T).await;
    assert_eq!(digest(&rig.job("pinned").await, 1), "edited");
    assert_ne!(first.definition_sha256, second.definition_sha256);
}

#[tokio::test]
async fn two_serve_replicas_share_fifty_deploys_and_no_step_runs_twice() {
    let iso = Isolation::new();
    let env = |id: &str| ServeOpts {
        env: vec![
            ("WEIR_RUNTIME".to_string(), "sim".to_string()),
            ("WEIR_REPLICA_ID".to_string(), id.to_string()),
        ],
        ..Default::default()
    };
    let _a = Serve::start_with(&iso, env("replica-a")).await;
    let _b = Serve::start_with(&iso, env("replica-b")).await;
    let rig = Rig::in_schema(iso.schema.clone()).await;
    let nc = nats(NATS_URL).await;
    let jobs: Vec<String> = (0..50).map(|i| format!("job-{i:02}")).collect();
    let creates = jobs.iter().map(|j| {
        send(
            &nc,
            &iso,
            TENANT,
            "job.create",
            j,
            json!({"spec": fast_spec(1, json!([]))}),
        )
    });
    for o in futures::future::join_all(creates).await {
        assert!(o.is_accepted(), "{:?}", o.rejection);
    }
    let deploys = jobs
        .iter()
        .map(|j| send(&nc, &iso, TENANT, "job.deploy", j, json!({})));
    for o in futures::future::join_all(deploys).await {
        assert!(o.is_accepted(), "{:?}", o.rejection);
    }
    for j in &jobs {
        rig.stable(j, 1, 1, Duration::from_secs(120)).await;
    }
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    // A job is stable a moment before its run records its own completion.
    let runs = eventually(T, "every run to end", || async {
        let runs = rig.runs().await;
        runs.iter()
            .all(|(_, r)| r.status != RunStatus::Running)
            .then_some(runs)
    })
    .await;
    assert_eq!(runs.len(), 100, "one compile and one deploy run per job");
    for (run_id, run) in runs {
        assert_eq!(
            run.status,
            RunStatus::Completed,
            "{run_id}: {:?}",
            run.reason
        );
        // A retry after a failed attempt starts the step again, as it
        // should (`starts` counts those too); no attempt starts twice.
        let events = rig.run_events(&run_id).await;
        let mut attempts: BTreeMap<(String, u64), usize> = BTreeMap::new();
        for e in events.iter().filter(|e| e.event_type == "step_started") {
            *owners
                .entry(e.payload["owner"].as_str().unwrap().to_owned())
                .or_default() += 1;
            let step = e.payload["step"].as_str().unwrap().to_owned();
            *attempts
                .entry((step, e.payload["attempt"].as_u64().unwrap()))
                .or_default() += 1;
        }
        for ((step, attempt), n) in attempts {
            assert!(
                n <= 1,
                "run {run_id} step {step} attempt {attempt} started {n} times: {:?}",
                events
                    .iter()
                    .map(|e| (&e.event_type, &e.payload))
                    .collect::<Vec<_>>()
            );
        }
    }
    assert_eq!(owners.len(), 2, "both replicas did work: {owners:?}");
    for j in &jobs {
        assert_eq!(rig.calls(j).await, vec![("start".to_string(), 1, 1)], "{j}");
        let events = rig.job_events(j).await;
        for once in [
            "compile_requested",
            "compile_succeeded",
            "running",
            "marked_stable",
        ] {
            assert_eq!(
                events.iter().filter(|e| *e == once).count(),
                1,
                "{j}: {once} in {events:?}"
            );
        }
    }
}

/// Deploy steps of deploy.yaml, in order.
const DEPLOY_STEPS: [&str; 9] = [
    "info",
    "compile",
    "compiled",
    "pick",
    "assign",
    "running",
    "mark_running",
    "settle",
    "mark_stable",
];

async fn crash_then_recover(step: &str, point: &str) {
    let iso = Isolation::new();
    let env = |fault: Option<String>| {
        let mut env = vec![
            ("WEIR_RUNTIME".to_string(), "sim".to_string()),
            ("WEIR_REPLICA_ID".to_string(), "crashy".to_string()),
        ];
        if let Some(f) = fault {
            env.push(("WEIR_FAULT".into(), f));
        }
        env
    };
    let mut serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: env(Some(format!("workflow_crash:{step}:{point}"))),
            ..Default::default()
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    assert!(send(
        &nc,
        &iso,
        TENANT,
        "job.create",
        "crashy",
        json!({"spec": fast_spec(1, json!([]))})
    )
    .await
    .is_accepted());
    assert!(send(&nc, &iso, TENANT, "job.deploy", "crashy", json!({}))
        .await
        .is_accepted());
    let exit = serve.wait_exit(Duration::from_secs(60)).await;
    assert!(
        exit.is_some_and(|s| !s.success()),
        "serve must die at {step}:{point}"
    );

    let _serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: env(None),
            ..Default::default()
        },
    )
    .await;
    let rig = Rig::in_schema(iso.schema.clone()).await;
    rig.stable("crashy", 1, 1, T).await;
    let (run_id, run) = rig.settled_run("crashy", "deploy", 0, T).await;
    assert_eq!(
        run.status,
        RunStatus::Completed,
        "{step}:{point}: {:?}",
        run.reason
    );
    // Each job command the run sent was applied once, however often it was sent.
    let events = rig.job_events("crashy").await;
    for once in [
        "deploy_requested",
        "compile_requested",
        "compile_succeeded",
        "running",
        "marked_stable",
    ] {
        assert_eq!(
            events.iter().filter(|e| *e == once).count(),
            1,
            "{step}:{point}: {once} in {events:?}"
        );
    }
    // The deployment was started once: one effect, whatever the number of calls.
    let effects = rig.effects("crashy").await;
    assert_eq!(
        effects
            .iter()
            .map(|e| (e.0.as_str(), e.1))
            .collect::<Vec<_>>(),
        vec![("start", 1)],
        "{step}:{point}"
    );
    // The crashed step was taken over by the restarted replica, with the same idempotency key.
    let keys: Vec<String> = rig
        .run_events(&run_id)
        .await
        .iter()
        .filter(|e| e.event_type == "step_started" && e.payload["step"] == step)
        .map(|e| e.payload["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        keys.iter().all(|k| k == &format!("{run_id}/{step}")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn kill_9_at_every_step_boundary_of_deploy_then_the_run_completes_once() {
    for step in DEPLOY_STEPS {
        // The three boundaries of a step, in parallel: lease taken, effect done, report committed.
        let points = ["claimed", "performed", "reported"];
        let is_wait = matches!(step, "compiled" | "running" | "settle");
        let rounds = points
            .iter()
            .filter(|p| !(is_wait && **p == "performed"))
            .map(|p| crash_then_recover(step, p));
        futures::future::join_all(rounds).await;
    }
}

#[tokio::test]
async fn invalid_workflow_files_are_rejected_with_precise_locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "name: broken
steps:
  - id: first
    activity: start
    retry: { max_attempts: 0 }
  - id: second
    wait: { running: true, within: soon }
",
    )
    .unwrap();
    let out = weir()
        .args(["workflow", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:7: steps[1].wait.within: `soon` is not a duration"
        )),
        "{err}"
    );

    std::fs::write(&path, "name: broken\nsteps:\n  - id: first\n    activity: start\n    retry: { max_attempts: 0 }\n    on_failure: { goto: nowhere }\n").unwrap();
    let out = weir()
        .args(["workflow", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}:5: steps[0].retry.max_attempts: must be between 1 and 100"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:6: steps[0].on_failure.goto: no step has id `nowhere`"
        )),
        "{err}"
    );

    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let files: Vec<_> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = weir()
        .args(["workflow", "validate"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn weir_cli(serve: &Serve, args: &[&str]) -> (i32, String, String) {
    let out = weir()
        .args(args)
        .env("WEIR_API_URL", format!("http://{}", serve.http))
        .env("WEIR_NATS_URL", NATS_URL)
        .env("WEIR_SUBJECT_PREFIX", &serve.iso.prefix)
        .env("WEIR_TENANT", TENANT)
        .env("WEIR_TOKEN", serve.iso.token(TENANT))
        .env("WEIR_ACTOR", "operator")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn job_status_shows_the_workflow_and_history_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "name: deploy
steps:
  - id: compile
    activity: job_command
    input: { job: $.input.job, kind: job.compile, payload: { version: $.input.version } }
  - id: assign
    activity: start
    input: { job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: $.input.parallelism }
    retry: { max_attempts: 1 }
  - id: mark_running
    activity: job_command
    input: { job: $.input.job, kind: job.mark_running, payload: { generation: $.input.generation } }
",
    )
    .unwrap();
    let iso = Isolation::new();
    let rig = Rig::in_schema(iso.schema.clone()).await;
    rig.sim
        .set_behaviour(TENANT, "linked", 1, "unavailable:1")
        .await
        .unwrap();
    let env = vec![
        ("WEIR_RUNTIME".to_string(), "sim".to_string()),
        (
            "WEIR_WORKFLOWS_DIR".to_string(),
            dir.path().display().to_string(),
        ),
    ];
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            env,
            ..Default::default()
        },
    )
    .await;
    let nc = nats(NATS_URL).await;
    assert!(send(
        &nc,
        &iso,
        TENANT,
        "job.create",
        "linked",
        json!({"spec": fast_spec(1, json!([]))})
    )
    .await
    .is_accepted());
    assert!(send(&nc, &iso, TENANT, "job.deploy", "linked", json!({}))
        .await
        .is_accepted());
    let (run_id, run) = rig.settled_run("linked", "deploy", 0, T).await;
    assert_eq!(run.status, RunStatus::Paused);

    let (code, out, err) = weir_cli(&serve, &["job", "status", "linked"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "workflow deploy run {run_id} paused: step assign (attempt 1"
        )),
        "{out}"
    );
    assert!(out.contains("step `assign` failed (unavailable)"), "{out}");

    let (code, out, err) = weir_cli(&serve, &["workflow", "resume", &run_id]);
    assert_eq!(code, 0, "{out}{err}");
    rig.settled_run("linked", "deploy", 0, T).await;
    eventually(T, "the resumed run to complete", || async {
        let runs = rig.runs().await;
        runs.iter()
            .any(|(id, r)| id == &run_id && r.status == RunStatus::Completed)
            .then_some(())
    })
    .await;
    let (_, out, _) = weir_cli(&serve, &["job", "history", "linked"]);
    assert!(out.contains(&format!("workflow:{run_id}/compile")), "{out}");
    assert!(
        out.contains(&format!("workflow:{run_id}/mark_running")),
        "{out}"
    );
    let (_, out, _) = weir_cli(&serve, &["workflow", "show", &run_id]);
    assert!(out.contains("run_resumed"), "{out}");
    let (_, out, _) = weir_cli(&serve, &["workflow", "runs", "--job", "linked"]);
    assert!(out.contains(&run_id) && out.contains("completed"), "{out}");
}

#[tokio::test]
async fn a_lifecycle_command_can_name_its_workflow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("canary.yaml"),
        "name: canary
steps:
  - id: assign
    activity: start
    input: { job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: 1 }
  - id: mark_running
    activity: job_command
    input: { job: $.input.job, kind: job.mark_running, payload: { generation: $.input.generation } }
",
    )
    .unwrap();
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "canaried",
        json!({"spec": fast_spec(4, json!([]))}),
    )
    .await;
    let bad = rig
        .command(
            "job.deploy",
            "canaried",
            json!({"workflow": "../etc/passwd"}),
        )
        .await;
    assert_eq!(
        bad.rejection.unwrap().code,
        weir::domain::RejectionCode::InvalidCommand
    );
    rig.ok("job.deploy", "canaried", json!({"workflow": "canary"}))
        .await;
    let (_, run) = rig.settled_run("canaried", "canary", 0, T).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.file, "canary.yaml");
    assert_eq!(rig.effects("canaried").await[0].2["parallelism"], 1);
    assert_eq!(rig.job("canaried").await.phase, Phase::Running);
}

#[tokio::test]
async fn compile_resolves_uploaded_modules_through_the_registry() {
    let iso = Isolation::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let upper = dir.path().join("upper.wasm");
    std::fs::write(&upper, crate::support::guests::guest("uppercase")).unwrap();
    let env = vec![
        ("WEIR_RUNTIME".to_string(), "sim".to_string()),
        ("WEIR_WASM_CACHE".to_string(), cache.display().to_string()),
    ];
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            env,
            ..Default::default()
        },
    )
    .await;
    let (code, out, err) = weir_cli(
        &serve,
        &[
            "udf",
            "upload",
            "upper",
            &upper.display().to_string(),
            "--version",
            "1.0",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let rig = Rig::in_schema(iso.schema.clone()).await;
    let nc = nats(NATS_URL).await;
    let job = |kind: &str| json!({"spec": fast_spec(1, json!([{"type": "udf", "id": "up", "module": "upper@1.0", "kind": kind}]))});
    assert!(send(&nc, &iso, TENANT, "job.create", "upper", job("map"))
        .await
        .is_accepted());
    assert!(
        send(&nc, &iso, TENANT, "job.create", "mismatch", job("filter"))
            .await
            .is_accepted()
    );
    for j in ["upper", "mismatch"] {
        assert!(send(&nc, &iso, TENANT, "job.compile", j, json!({}))
            .await
            .is_accepted());
    }
    let status =
        |s: weir::domain::job::JobState| serde_json::to_value(&s.versions[0].compile).unwrap();
    let ok = eventually(T, "upper compiled", || async {
        let s = status(rig.job("upper").await);
        (s["status"] != "compiling" && s["status"] != "not_compiled").then_some(s)
    })
    .await;
    assert_eq!(ok["status"], "compiled", "{ok}");
    assert!(ok["state_fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let bad = eventually(T, "mismatch compiled", || async {
        let s = status(rig.job("mismatch").await);
        (s["status"] != "compiling" && s["status"] != "not_compiled").then_some(s)
    })
    .await;
    assert_eq!(bad["status"], "failed", "{bad}");
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .contains("operator `up` is a Filter UDF, but module upper@1.0 is a Map"),
        "{bad}"
    );
}

#[tokio::test]
async fn a_workflow_file_broken_after_deploy_fails_the_job_visibly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "name: deploy\nsteps:\n  - id: a\n    activity: strat\n",
    )
    .unwrap();
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "broken",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.deploy", "broken", json!({})).await;
    let state = eventually(T, "the job to fail", || async {
        let s = rig.job("broken").await;
        (s.phase == Phase::Failed).then_some(s)
    })
    .await;
    let why = state.last_failure.unwrap();
    assert!(why.contains("workflow deploy.yaml cannot start"), "{why}");
    assert!(
        why.contains("deploy.yaml:4: steps[0].activity: unknown activity `strat`"),
        "{why}"
    );
    assert!(rig.runs().await.is_empty());
}

/// The run whose current step is `step`, waiting.
async fn waiting_in(rig: &Rig, step: &str) -> Option<String> {
    rig.runs()
        .await
        .into_iter()
        .find(|(_, r)| {
            r.current.as_ref().is_some_and(|c| {
                c.step == step
                    && matches!(
                        c.phase,
                        weir::domain::workflow::state::StepPhase::Waiting { .. }
                    )
            })
        })
        .map(|(id, _)| id)
}

#[tokio::test]
async fn timers_survive_a_restart_of_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compile.yaml"),
        "name: compile
steps:
  - id: deadline
    wait: { event: never_happens, within: 2s }
    on_failure: { goto: nap }
  - id: nap
    wait: { for: 1s }
  - id: record
    activity: job_command
    input: { job: $.input.job, kind: job.compile_succeeded, payload: { version: 1, plan_digest: p, state_fingerprint: f } }
",
    )
    .unwrap();
    let mut rig = Rig::new().await;
    // Engine time is the test's: nothing here waits for a wall clock.
    let clock = rig.manual_clock();
    let began = clock.now();
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok(
        "job.create",
        "sleepy",
        json!({"spec": fast_spec(1, json!([]))}),
    )
    .await;
    rig.ok("job.compile", "sleepy", json!({})).await;
    let run_id = eventually(T, "the wait to start", || waiting_in(&rig, "deadline")).await;
    // No engine runs while the deadline passes; the next one fires the recorded timer at once.
    rig.stop_engines().await;
    clock.advance(chrono::Duration::seconds(3));
    let restarted = clock.now();
    rig.spawn_engine("r2", Some(dir.path().to_path_buf()));
    // The timeout sends the run to `nap`, a timer of its own: let it pass too.
    eventually(T, "the nap to start", || waiting_in(&rig, "nap")).await;
    clock.advance(chrono::Duration::seconds(1));
    let (_, run) = rig.settled_run("sleepy", "compile", 0, T).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.reason);
    assert_eq!(run.error.as_ref().unwrap().class, ErrorClass::Timeout);
    let events = rig.run_events(&run_id).await;
    let at = |t: &str, field: &str| -> chrono::DateTime<chrono::Utc> {
        let e = events.iter().find(|e| e.event_type == t).unwrap();
        serde_json::from_value(e.payload[field].clone()).unwrap()
    };
    assert_eq!(
        at("wait_started", "at"),
        began,
        "the wait began before the stop"
    );
    assert_eq!(
        at("wait_started", "deadline"),
        began + chrono::Duration::seconds(2)
    );
    // The clock did not move between the restart and the nap: the restarted
    // engine fired the timer as soon as it looked.
    assert_eq!(
        at("timer_fired", "at"),
        restarted,
        "fired at once by the restarted engine"
    );
    assert_eq!(
        rig.job("sleepy").await.versions[0].compile,
        weir::domain::job::state::CompileStatus::Compiled {
            plan_digest: "p".into(),
            state_fingerprint: "f".into()
        }
    );
}

fn notifying_deploy(url: &str) -> String {
    format!(
        "name: deploy
steps:
  - id: tell
    activity: notify
    input: {{ url: \"{url}\", body: {{ job: $.input.job, generation: $.input.generation }} }}
    retry: {{ max_attempts: 4, backoff: {{ initial: 100ms, multiplier: 2, max: 1s }} }}
    on_failure: fail
  - id: assign
    activity: start
    input: {{ job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: $.input.parallelism }}
  - id: mark_running
    activity: job_command
    input: {{ job: $.input.job, kind: job.mark_running, payload: {{ generation: $.input.generation }} }}
"
    )
}

/// Deploys `job` with a deploy workflow that notifies a webhook answering
/// `script` first; returns once the run settled.
async fn deploy_notifying(
    job: &str,
    script: Vec<u16>,
) -> (Rig, crate::support::webhook::Seen, String, RunState) {
    let (url, seen) = crate::support::webhook::receiver(script).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deploy.yaml"), notifying_deploy(&url)).unwrap();
    let mut rig = Rig::new().await;
    rig.spawn_engine("r1", Some(dir.path().to_path_buf()));
    rig.ok("job.create", job, json!({"spec": fast_spec(1, json!([]))}))
        .await;
    rig.ok("job.deploy", job, json!({})).await;
    let (run_id, run) = rig.settled_run(job, "deploy", 0, T).await;
    // The run read its file at start; the directory may go now.
    drop(dir);
    (rig, seen, run_id, run)
}

/// `notify` delivers its body to the webhook, retries a receiver that
/// answers 503 with backoff under one idempotency key, and the run goes on.
#[tokio::test]
async fn notify_delivers_and_retries_a_failing_webhook() {
    let (rig, seen, run_id, run) = deploy_notifying("hooked", vec![503, 503]).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.reason);
    assert_eq!(rig.job("hooked").await.phase, Phase::Running);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two 503s, then delivered: {seen:?}");
    let keys: std::collections::BTreeSet<_> = seen.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys.len(),
        1,
        "one idempotency key for every attempt: {keys:?}"
    );
    assert!(keys.iter().all(|k| k.contains(&run_id)), "{keys:?}");
    let body = &seen[2].1;
    assert_eq!(body["body"], json!({"job": "hooked", "generation": 1}));
    assert_eq!(body["weir"]["run_id"], json!(run_id));
    assert_eq!(body["weir"]["step"], "tell");
    let failed: Vec<_> = rig
        .run_events(&run_id)
        .await
        .into_iter()
        .filter(|e| e.event_type == "step_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].payload.to_string().contains("answered 503"),
        "{:?}",
        failed[0].payload
    );
}

/// A receiver that refuses the request (4xx) is not retried: the step fails
/// at once with the status, and `on_failure: fail` ends the run.
#[tokio::test]
async fn notify_does_not_retry_a_refused_webhook() {
    let (rig, seen, _, run) = deploy_notifying("refused", vec![400]).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert!(
        run.reason
            .as_deref()
            .unwrap_or_default()
            .contains("answered 400"),
        "{:?}",
        run.reason
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert!(rig.effects("refused").await.is_empty(), "nothing started");
}
