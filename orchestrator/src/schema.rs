//! JSON Schemas of every user-facing format, generated from the Rust types.
//! `weir schema` writes them to `docs/schemas/`; a test fails when the
//! committed files drift from the types.

use std::path::Path;

use schemars::schema_for;

use crate::domain::envelope::{CommandEnvelope, Outcome};
use crate::domain::job::{JobEvent, JobSpec};
use crate::domain::module::ModuleEvent;
use crate::domain::workflow::{RunEvent, WorkflowSpec};

/// (file name, pretty JSON) for every schema.
pub fn all() -> Vec<(&'static str, String)> {
    let pretty = |s: schemars::Schema| serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
    vec![
        (
            "command-envelope.schema.json",
            pretty(schema_for!(CommandEnvelope)),
        ),
        ("outcome.schema.json", pretty(schema_for!(Outcome))),
        ("job-event.schema.json", pretty(schema_for!(JobEvent))),
        ("job-spec.schema.json", pretty(schema_for!(JobSpec))),
        ("module-event.schema.json", pretty(schema_for!(ModuleEvent))),
        ("workflow.schema.json", pretty(schema_for!(WorkflowSpec))),
        ("run-event.schema.json", pretty(schema_for!(RunEvent))),
    ]
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
