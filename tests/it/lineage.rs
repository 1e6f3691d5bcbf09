//! Lineage through `weir serve` and the CLI: three chained jobs give the
//! upstream and downstream graph, a deleted job's edges go, and the DOT
//! output renders with Graphviz.

use serde_json::{json, Value};

use crate::support::serve::Serve;
use crate::support::{nats, send, Isolation, NATS_URL};

fn spec(from: &str, sink: Value) -> Value {
    json!({"sources": [{"topic": from}], "sinks": [sink], "dead_letter_topic": "bad"})
}

fn edges(g: &Value) -> Vec<(String, String, String)> {
    g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
                e["job"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn chained_jobs_make_a_graph_that_follows_deletes_and_renders() {
    let iso = Isolation::new();
    let serve = Serve::start(&iso).await;
    let nc = nats(NATS_URL).await;
    for (job, spec) in [
        (
            "clean",
            spec("orders", json!({"type": "kafka", "topic": "clean"})),
        ),
        (
            "score",
            spec("clean", json!({"type": "kafka", "topic": "scored"})),
        ),
        (
            "store",
            spec(
                "scored",
                json!({"type": "postgres", "table": "alerts", "key_columns": ["id"]}),
            ),
        ),
    ] {
        let o = send(&nc, &iso, "acme", "job.create", job, json!({"spec": spec})).await;
        assert!(o.is_accepted(), "{o:?}");
    }
    let get = |q: &'static str| {
        let serve = &serve;
        async move {
            serve
                .get_json(&format!("/v1/tenants/acme/lineage{q}"))
                .await
        }
    };
    let (code, all) = get("").await;
    assert_eq!(code, 200, "{all}");
    let main: Vec<_> = edges(&all)
        .into_iter()
        .filter(|(_, to, _)| to != "topic:bad")
        .collect();
    assert_eq!(
        main,
        [
            ("topic:clean".into(), "topic:scored".into(), "score".into()),
            ("topic:orders".into(), "topic:clean".into(), "clean".into()),
            ("topic:scored".into(), "table:alerts".into(), "store".into()),
        ]
    );
    let (_, up) = get("?node=table:alerts&direction=upstream").await;
    assert_eq!(edges(&up).len(), 3, "{up}");
    let (_, down) = get("?node=topic:clean&direction=downstream").await;
    let jobs: Vec<String> = edges(&down).into_iter().map(|e| e.2).collect();
    assert!(jobs.contains(&"score".to_owned()) && jobs.contains(&"store".to_owned()));
    assert!(!jobs.contains(&"clean".to_owned()), "{down}");
    let (code, _) = get("?node=topic:nowhere").await;
    assert_eq!(code, 404);
    let (code, _) = get("?node=topic:clean&direction=sideways").await;
    assert_eq!(code, 400);
    // Another tenant sees nothing of it.
    serve.create_tenant("other").await;
    let (_, other) = serve.get_json("/v1/tenants/other/lineage").await;
    assert_eq!(other["edges"], json!([]));

    // The CLI's DOT renders with Graphviz.
    let dot = serve.cli(&["lineage", "--dot"]);
    let file = std::env::temp_dir().join(format!("{}-lineage.dot", iso.prefix));
    std::fs::write(&file, &dot).unwrap();
    let rendered = std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(&file)
        .output()
        .expect("Graphviz `dot` (scripts/services.sh graphviz installs it)");
    assert!(rendered.status.success(), "{dot}");
    let svg = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        svg.contains("<svg") && svg.contains("score v1 idle"),
        "{svg}"
    );
    let text = serve.cli(&["lineage", "--node", "topic:scored", "--upstream"]);
    assert!(
        text.contains("topic:orders -> topic:clean  by clean v1 (idle)"),
        "{text}"
    );

    // A deleted job's edges are gone.
    let o = send(&nc, &iso, "acme", "job.delete", "score", json!({})).await;
    assert!(o.is_accepted(), "{o:?}");
    let (_, after) = get("").await;
    assert!(edges(&after).iter().all(|e| e.2 != "score"), "{after}");
    let (_, down) = get("?node=topic:orders&direction=downstream").await;
    assert!(edges(&down).iter().all(|e| e.1 != "table:alerts"), "{down}");

    // A version diff names what changed, and that state is unknown until compiled.
    let mut v2 = spec("orders", json!({"type": "kafka", "topic": "clean"}));
    v2["parallelism"] = json!(4);
    v2["autotune"] = json!({"mode": "recommend"});
    let o = send(
        &nc,
        &iso,
        "acme",
        "job.submit_version",
        "clean",
        json!({"spec": v2}),
    )
    .await;
    assert!(o.is_accepted(), "{o:?}");
    let diff = serve.cli(&["job", "diff", "clean", "1", "2"]);
    assert!(diff.contains("parallelism: 1 -> 4"), "{diff}");
    assert!(
        diff.contains("autotune.mode: (absent) -> \"recommend\""),
        "{diff}"
    );
    assert!(
        diff.contains("state: unknown until compiled: v1, v2"),
        "{diff}"
    );
    // The lineage follows the version that counts: v2 is the latest now.
    let (_, after) = get("?node=topic:orders").await;
    assert_eq!(after["edges"][0]["version"], 2, "{after}");
}
