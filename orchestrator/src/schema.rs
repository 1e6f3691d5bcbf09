//! JSON Schemas of every user-facing format, and the OpenAPI description of
//! the HTTP API, generated from the Rust types. `weir schema` writes them to
//! `docs/schemas/`; a test fails when the committed files drift from the code.

use std::path::Path;

use schemars::generate::SchemaSettings;
use schemars::schema_for;

use crate::domain::envelope::{CommandEnvelope, Outcome};
use crate::domain::job::{JobEvent, JobSpec};
use crate::domain::module::ModuleEvent;
use crate::domain::workflow::{RunEvent, WorkflowSpec};
use crate::store::StoredEvent;

/// (file name, pretty JSON) for every schema.
pub fn all() -> Vec<(&'static str, String)> {
    let pretty = |s: schemars::Schema| serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
    let openapi = serde_json::to_string_pretty(&crate::api::openapi_document()).unwrap_or_default();
    vec![
        ("command-envelope.schema.json", pretty(envelope())),
        ("outcome.schema.json", pretty(schema_for!(Outcome))),
        ("job-event.schema.json", pretty(schema_for!(JobEvent))),
        ("job-spec.schema.json", pretty(schema_for!(JobSpec))),
        ("module-event.schema.json", pretty(schema_for!(ModuleEvent))),
        ("workflow.schema.json", pretty(schema_for!(WorkflowSpec))),
        ("run-event.schema.json", pretty(schema_for!(RunEvent))),
        ("event-message.schema.json", pretty(event_message())),
        ("openapi.json", openapi + "\n"),
    ]
}

/// The envelope: its own fields plus one command kind, flattened. schemars
/// gives each kind's variant `additionalProperties: false`, which would call
/// the envelope's own fields (`id`, `tenant`, ...) unexpected and so refuse
/// every envelope. Unknown fields are refused once instead, at the top, with
/// `unevaluatedProperties`, which counts the properties every matching
/// subschema evaluated (JSON Schema 2020-12).
fn envelope() -> schemars::Schema {
    let mut schema = schema_for!(CommandEnvelope);
    if let Some(defs) = schema.get_mut("$defs").and_then(|d| d.as_object_mut()) {
        for name in ["JobCommand", "WorkflowCommand", "ModuleCommand"] {
            let variants = defs
                .get_mut(name)
                .and_then(|d| d.get_mut("oneOf"))
                .and_then(|v| v.as_array_mut());
            for variant in variants.into_iter().flatten() {
                if let Some(v) = variant.as_object_mut() {
                    v.remove("additionalProperties");
                }
            }
        }
    }
    schema.insert("unevaluatedProperties".into(), false.into());
    schema
}

/// The body of a message on `<prefix>.evt.<tenant>.<stream>`, as the outbox
/// relay sends it: described as serialized, since Weir only ever writes it.
fn event_message() -> schemars::Schema {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<StoredEvent>()
}

/// Writes every schema into `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in all() {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn envelope_validator() -> jsonschema::Validator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
        let text = std::fs::read_to_string(dir.join("command-envelope.schema.json")).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn envelope(kind: &str, payload: serde_json::Value) -> serde_json::Value {
        json!({
            "id": "0190f3c4-8d2e-7a3b-9c4d-5e6f7a8b9c0d", "tenant": "acme", "kind": kind,
            "target": "orders", "actor": "alice", "issued_at": "2026-12-03T10:00:00Z",
            "payload": payload
        })
    }

    /// The published file, read as a client reads it: valid envelopes of
    /// every shape pass, and each kind of mistake fails.
    #[test]
    fn the_published_envelope_schema_accepts_envelopes_and_refuses_mistakes() {
        let v = envelope_validator();
        let good = [
            envelope("job.deploy", json!({})),
            envelope("job.rescale", json!({"parallelism": 4})),
            envelope("job.stop", json!({})),
            envelope("job.delete", json!({})),
        ];
        for e in &good {
            let errors: Vec<_> = v.iter_errors(e).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{e}: {errors:?}");
        }
        let mut with_version = envelope("job.deploy", json!({}));
        with_version["expected_version"] = json!(3);
        assert!(v.is_valid(&with_version));

        let mut unknown_field = envelope("job.deploy", json!({}));
        unknown_field["colour"] = json!("red");
        let mut no_id = envelope("job.deploy", json!({}));
        no_id.as_object_mut().unwrap().remove("id");
        let bad = [
            unknown_field,
            no_id,
            envelope("job.fly", json!({})),
            envelope("job.rescale", json!({"parallelism": "lots"})),
            envelope("job.rescale", json!({"parallelism": 2, "extra": 1})),
        ];
        for e in &bad {
            assert!(!v.is_valid(e), "accepted: {e}");
        }
    }

    /// Every JSON example in docs/commands.md that is an envelope validates.
    #[test]
    fn the_docs_envelope_examples_validate() {
        let v = envelope_validator();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let page = std::fs::read_to_string(dir.join("commands.md")).unwrap();
        let mut seen = 0;
        for block in page.split("```json").skip(1) {
            let text = block.split("```").next().unwrap_or_default();
            let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            if value.get("kind").is_some() && value.get("id").is_some() {
                seen += 1;
                let errors: Vec<_> = v.iter_errors(&value).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{value}: {errors:?}");
            }
        }
        assert!(seen > 0, "docs/commands.md has no envelope example");
    }

    /// Regenerate with `cargo run -p weir -- schema docs/schemas`.
    #[test]
    fn committed_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
        for (name, text) in super::all() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                committed == text,
                "docs/schemas/{name} is out of date; run `cargo run -p weir -- schema docs/schemas`"
            );
        }
    }
}
