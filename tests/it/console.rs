//! The web console in a real browser: headless Chromium (Debian's package,
//! `scripts/services.sh chromium`) opens the pages of a `weir serve` that
//! runs a deployed job on the real runtime and broker. The jobs list shows
//! it running, its page charts its metrics reports, a run paused on a
//! missing module shows its error, the lineage graph draws the job's topics,
//! and no page logs a console message (a failed load, a CSP refusal, an
//! error). Each page's screenshot is written under the test's output folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::kafka::{brokers, create_topic, produce, producer, unique_topic};
use crate::support::serve::{Serve, ServeOpts};
use crate::support::{eventually, nats, send, Isolation, NATS_URL};

const CHROMIUM: &str = "/usr/bin/chromium";
const T: Duration = Duration::from_secs(90);

/// A deploy workflow that fetches the version's modules first, and pauses
/// (its failure policy by default) when one is missing.
const STUCK: &str = "name: stuck
description: Fetch the modules, then start; pauses on a missing module.
defaults:
  retry: { max_attempts: 1 }
steps:
  - id: fetch
    activity: fetch_modules
    input: { job: $.input.job, version: $.input.version }
  - id: assign
    activity: start
    input: { job: $.input.job, version: $.input.version, generation: $.input.generation, parallelism: 1 }
";

/// What Chromium showed of a page: the DOM after load, and what it logged.
struct Seen {
    dom: String,
    log: String,
}

fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

/// Opens `url` twice: once for a screenshot into `png`, once for the DOM and
/// the console log.
async fn open(profile: &Path, url: String, png: PathBuf) -> Seen {
    let profile = profile.to_owned();
    tokio::task::spawn_blocking(move || {
        let shot = chromium(
            &profile,
            &[
                "--window-size=1400,1600",
                &format!("--screenshot={}", png.display()),
                &url,
            ],
        );
        assert!(
            shot.status.success() && png.exists(),
            "screenshot of {url}: {}",
            String::from_utf8_lossy(&shot.stderr)
        );
        let out = chromium(
            &profile,
            &[
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=3000",
                "--dump-dom",
                &url,
            ],
        );
        assert!(out.status.success(), "{url}: {out:?}");
        Seen {
            dom: String::from_utf8_lossy(&out.stdout).into_owned(),
            log: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// The page logged nothing to its console: no failed load (a 404 asset), no
/// CSP refusal, no error. The console pages have no script, so any console
/// line is a fault.
fn assert_clean(page: &str, seen: &Seen) {
    let console: Vec<&str> = seen
        .log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Failed to load resource"))
        .collect();
    assert!(console.is_empty(), "{page}: console said {console:#?}");
    assert!(seen.dom.contains("</main>"), "{page}: {}", seen.dom);
}

/// The number in `attr="…"` first after `anchor` in `dom`.
fn number_after(dom: &str, anchor: &str, attr: &str) -> Option<u64> {
    let rest = &dom[dom.find(anchor)?..];
    let rest = &rest[rest.find(&format!("{attr}=\""))? + attr.len() + 2..];
    rest[..rest.find('"')?].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_running_job_its_charts_a_paused_run_and_the_lineage() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/services.sh chromium installs it"
    );
    let _turn = crate::support::runtime::heavy_turn().await;
    let iso = Isolation::new();
    let workflows = tempfile::tempdir().unwrap();
    std::fs::write(workflows.path().join("stuck.yaml"), STUCK).unwrap();
    let serve = Serve::start_with(
        &iso,
        ServeOpts {
            env: vec![
                ("WEIR_RUNTIME".into(), "embedded".into()),
                (
                    "WEIR_WORKFLOWS_DIR".into(),
                    workflows.path().display().to_string(),
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    let (input, output) = (unique_topic("ui-in"), unique_topic("ui-out"));
    create_topic(&brokers(), &input, 2).await;
    create_topic(&brokers(), &output, 2).await;

    let nc = nats(NATS_URL).await;
    let spec = json!({
        "description": "orders <b>uppercased</b><script>alert('x')</script>",
        "sources": [{"topic": input, "format": "raw"}],
        "sinks": [{"type": "kafka", "topic": output}],
        "parallelism": 2,
        "checkpoint": {"interval_ms": 500}
    });
    let ok = |o: weir::domain::Outcome| assert!(o.is_accepted(), "{o:?}");
    ok(send(
        &nc,
        &iso,
        "acme",
        "job.create",
        "orders",
        json!({"spec": spec}),
    )
    .await);
    ok(send(&nc, &iso, "acme", "job.deploy", "orders", json!({})).await);
    // A job whose module was never uploaded, deployed by a workflow that
    // pauses when it finds the module missing.
    let broken = json!({
        "sources": [{"topic": input, "format": "raw"}],
        "operators": [{"type": "udf", "id": "up", "module": "ghost@1.0.0", "kind": "map"}],
        "sinks": [{"type": "kafka", "topic": unique_topic("ui-never")}]
    });
    ok(send(
        &nc,
        &iso,
        "acme",
        "job.create",
        "broken",
        json!({"spec": broken}),
    )
    .await);
    ok(send(
        &nc,
        &iso,
        "acme",
        "job.deploy",
        "broken",
        json!({"workflow": "stuck"}),
    )
    .await);

    eventually(T, "orders running", || async {
        let (_, job) = serve.get_json("/v1/tenants/acme/jobs/orders").await;
        assert_ne!(job["phase"], "failed", "{job}");
        (job["phase"] == "running").then_some(())
    })
    .await;
    let records: Vec<(i32, String, String)> = (0..200)
        .map(|i| (i % 2, format!("k{i}"), format!("order-{i}")))
        .collect();
    produce(&producer(&brokers()), &input, &records).await;
    let paused = eventually(T, "the broken deploy to pause", || async {
        let (_, runs) = serve.get_json("/v1/tenants/acme/runs?job=broken").await;
        let run = runs.as_array()?.first()?.clone();
        (run["status"] == "paused").then_some(run)
    })
    .await;
    // The runtime reports every 2 s; the chart draws rates from pairs.
    let job_page = "/ui/t/acme/jobs/orders";
    eventually(T, "two metrics reports of orders kept", || async {
        let html = serve.get(job_page).await.text().await.ok()?;
        // Two rates drawn per task: three reports.
        (number_after(&html, "<polyline", "data-points")? >= 2).then_some(())
    })
    .await;

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{}", iso.prefix));
    std::fs::create_dir_all(&out).unwrap();
    eprintln!("console screenshots: {}", out.display());
    let profile = tempfile::tempdir().unwrap();
    let page = |name: &'static str, path: &str| {
        let (url, png) = (serve.browser_url(path), out.join(format!("{name}.png")));
        let profile = profile.path().to_owned();
        async move {
            let seen = open(&profile, url, png).await;
            assert_clean(name, &seen);
            seen
        }
    };

    let jobs = page("jobs", "/ui/t/acme").await;
    assert!(
        jobs.dom
            .contains(r#"data-job="orders" data-phase="running""#),
        "{}",
        jobs.dom
    );

    let job = page("job", "/ui/t/acme/jobs/orders").await;
    let points = number_after(&job.dom, "id=\"throughput\"", "data-points").unwrap_or(0);
    assert!(
        points >= 2,
        "throughput chart: {points} points\n{}",
        job.dom
    );
    assert!(
        number_after(&job.dom, "<polyline", "data-points").unwrap_or(0) >= 2,
        "{}",
        job.dom
    );
    assert!(job.dom.contains(r#"data-phase="running""#));
    assert!(job.dom.contains("id=\"tasks\""), "{}", job.dom);
    // The description is shown as text, never as markup.
    assert!(!job.dom.contains("<script>alert"), "{}", job.dom);
    assert!(job.dom.contains("&lt;script&gt;"), "{}", job.dom);

    let stuck = page("paused-run", "/ui/t/acme/jobs/broken").await;
    assert!(
        stuck.dom.contains(r#"data-status="paused""#),
        "{}",
        stuck.dom
    );
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("ghost"), "{paused}");
    assert!(stuck.dom.contains("ghost"), "{}", stuck.dom);
    assert!(
        stuck.dom.contains("class=\"error reason\""),
        "{}",
        stuck.dom
    );

    let runs = page("runs", "/ui/t/acme/runs").await;
    assert!(runs.dom.contains(r#"data-status="paused""#), "{}", runs.dom);

    let lineage = page("lineage", "/ui/t/acme/lineage").await;
    for topic in [&input, &output] {
        assert!(
            lineage.dom.contains(&format!(r#"data-id="topic:{topic}""#)),
            "{topic}: {}",
            lineage.dom
        );
    }
    assert!(
        lineage.dom.contains(r#"data-jobs="orders""#),
        "{}",
        lineage.dom
    );

    page("modules", "/ui/t/acme/modules").await;
    page("tenants", "/ui").await;

    // The headers the pages rely on.
    let res = serve.get(job_page).await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let res = serve.get("/ui/static/console.css").await;
    assert_eq!(res.status(), 200);
    let res = serve.get("/ui/t/acme/jobs/nope").await;
    assert_eq!(res.status(), 404);
    let res = serve.get("/ui/t/Not-A-Tenant").await;
    assert_eq!(res.status(), 400);
}
