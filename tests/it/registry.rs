//! The module registry through the real `weir` binary: local validation with
//! precise reasons, upload into the tenant's object store bucket, immutable
//! versions, list/show over HTTP, and `udf run` after a restart of `serve`
//! reusing the precompiled artifact.

use std::path::Path;
use std::process::Output;

use crate::support::bin;
use crate::support::guests::{forbidden_import_component, guest};
use crate::support::serve::{Serve, ServeOpts};
use crate::support::{eventually, Isolation, NATS_URL};

/// Runs `weir <args>` against `iso`'s NATS prefix and `api` URL.
async fn weir(iso: &Isolation, api: &str, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = bin::weir();
    cmd.args(args)
        .env("WEIR_NATS_URL", NATS_URL)
        .env("WEIR_SUBJECT_PREFIX", &iso.prefix)
        .env("WEIR_API_URL", api)
        .env("WEIR_TENANT", "acme")
        .env("WEIR_TOKEN", iso.token("acme"))
        .env("WEIR_WASM_CACHE", cache)
        .env("WEIR_TIMEOUT", "20s");
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("run weir")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn invalid_uploads_are_refused_locally_with_precise_reasons() {
    let iso = Isolation::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    };
    let mut wrong_version = guest("uppercase");
    let from = b"weir:udf/guest@0.1.0";
    for i in 0..wrong_version.len() - from.len() {
        if &wrong_version[i..i + from.len()] == from {
            wrong_version[i + from.len() - 3..i + from.len()].copy_from_slice(b"9.0");
        }
    }
    let cases = [
        (write("text.wasm", b"hello"), "not a WebAssembly binary"),
        (
            write("core.wasm", b"\0asm\x01\0\0\0"),
            "core WebAssembly module, not a component",
        ),
        (
            write("empty.wasm", b"\0asm\x0d\0\x01\0"),
            "does not export `weir:udf/guest`",
        ),
        (
            write("v9.wasm", &wrong_version),
            "targets weir:udf@0.9.0; this host supports weir:udf@0.1.0",
        ),
        (
            write("evil.wasm", &forbidden_import_component()),
            "imports `evil:net/socket`, which the sandbox does not provide",
        ),
    ];
    let cache = dir.path().join("cache");
    for (file, reason) in &cases {
        let o = weir(
            &iso,
            "http://127.0.0.1:9",
            &cache,
            &["udf", "upload", "bad", file],
        )
        .await;
        assert_eq!(o.status.code(), Some(2), "{file}: {}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{file}: {}", stderr(&o));
    }
    let big = write("big.wasm", &guest("uppercase"));
    let o = weir(
        &iso,
        "http://127.0.0.1:9",
        &cache,
        &["udf", "upload", "big", &big, "--max-module-bytes", "1000"],
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bytes; the limit is 1000"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn upload_is_immutable_and_survives_a_restart_with_its_artifact_reused() {
    let iso = Isolation::new();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let upper = dir.path().join("upper.wasm");
    std::fs::write(&upper, guest("uppercase")).unwrap();
    let other = dir.path().join("other.wasm");
    std::fs::write(&other, guest("trap_on_poison")).unwrap();
    let (upper, other) = (upper.display().to_string(), other.display().to_string());

    let opts = ServeOpts {
        env: vec![("WEIR_WASM_CACHE".into(), cache.display().to_string())],
        ..Default::default()
    };
    let mut serve = Serve::start_with(&iso, opts.clone()).await;
    let api = format!("http://{}", serve.http);
    let o = weir(
        &iso,
        &api,
        &cache,
        &["udf", "upload", "upper", &upper, "--version", "1.0"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("module_uploaded"), "{}", stdout(&o));

    // The same bytes again: accepted, no new event.
    let o = weir(
        &iso,
        &api,
        &cache,
        &["udf", "upload", "upper", &upper, "--version", "1.0"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing changed"), "{}", stdout(&o));

    // Other bytes under the same version: refused.
    let o = weir(
        &iso,
        &api,
        &cache,
        &["udf", "upload", "upper", &other, "--version", "1.0"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("already exists with digest"),
        "{}",
        stderr(&o)
    );

    let (status, list) = serve.get_json("/v1/tenants/acme/modules").await;
    assert_eq!(status, 200);
    let versions = &list[0]["versions"];
    assert_eq!(list[0]["name"], "upper");
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["version"], "1.0");
    assert_eq!(versions[0]["module_kind"], "map");
    assert_eq!(
        versions[0]["digest"],
        weir::wasm::digest_of(&guest("uppercase"))
    );

    // serve warms every uploaded module into the artifact cache...
    metric_line(&serve, "weir_wasm_artifact_cache_total{result=\"hit\"}").await;
    serve.kill().await;
    let serve = Serve::start_with(&iso, opts).await;
    // ...and after a restart it reuses the artifact instead of compiling.
    metric_line(&serve, "weir_wasm_artifact_cache_total{result=\"hit\"}").await;
    let (_, text) = (
        0,
        reqwest::get(serve.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(!text.contains("result=\"compiled\""), "{text}");
    let api = format!("http://{}", serve.http);
    let o = weir(&iso, &api, &cache, &["-o", "json", "udf", "show", "upper"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"1.0\""), "{}", stdout(&o));

    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"key\":\"a\",\"value\":\"hello\"}\n{\"value\":\"world\",\"timestamp\":5}\n",
    )
    .unwrap();
    let input = input.display().to_string();
    let o = weir(
        &iso,
        &api,
        &cache,
        &["udf", "run", "upper@1.0", "--input", &input],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    // Validated (and compiled) at upload, reused by the run after the restart.
    assert!(
        stderr(&o).contains("artifact reused from cache"),
        "{}",
        stderr(&o)
    );
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["output"]["value"], "HELLO");
    assert_eq!(lines[0]["output"]["key"], "a");
    assert_eq!(lines[1]["output"]["value"], "WORLD");
    assert_eq!(lines[1]["output"]["timestamp"], 5);

    let o = weir(&iso, &api, &cache, &["udf", "show", "nope"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[tokio::test]
async fn run_prints_dead_letters_for_a_local_file() {
    let iso = Isolation::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trap_on_poison.wasm");
    std::fs::write(&file, guest("trap_on_poison")).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"value\":\"a\"}\n{\"value\":\"poison\"}\n{\"value\":\"b\"}\n",
    )
    .unwrap();
    let o = weir(
        &iso,
        "http://127.0.0.1:9",
        &dir.path().join("cache"),
        &[
            "udf",
            "run",
            &file.display().to_string(),
            "--input",
            &input.display().to_string(),
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["output"]["value"], "A");
    assert_eq!(lines[1]["dead_letter"]["code"], "trap");
    assert!(
        lines[1]["dead_letter"]["reason"]
            .as_str()
            .unwrap()
            .contains("poisoned record"),
        "{lines:?}"
    );
    assert_eq!(lines[2]["output"]["value"], "B");
    assert!(
        stderr(&o).contains("3 records, 1 dead-lettered"),
        "{}",
        stderr(&o)
    );
}

/// Waits until serve's /metrics has a line starting with `prefix`.
async fn metric_line(serve: &Serve, prefix: &str) -> String {
    let url = serve.url("/metrics");
    eventually(std::time::Duration::from_secs(20), prefix, || {
        let url = url.clone();
        async move {
            let text = reqwest::get(url).await.ok()?.text().await.ok()?;
            text.lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        }
    })
    .await
}
