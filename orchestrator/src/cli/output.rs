//! Text or JSON output, chosen by `-o`.

use clap::ValueEnum;
use serde::Serialize;

use super::error::CliError;
use crate::domain::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::unexpected("cannot print JSON", e))?;
    println!("{s}");
    Ok(())
}

/// The name a unit enum has on the wire (`running`, `invalid_transition`), or `?`.
pub fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_owned(),
    }
}

/// Prints an outcome and turns a rejection into the matching exit code.
pub fn outcome(format: Format, kind: &str, o: &Outcome) -> Result<(), CliError> {
    match format {
        Format::Json => json(o)?,
        Format::Text => {
            if let Some(r) = &o.rejection {
                eprintln!("rejected: {kind}: {} ({})", r.message, label(&r.code));
            } else {
                let events: Vec<&str> = o.events.iter().map(|e| e.event_type.as_str()).collect();
                println!(
                    "accepted: {kind} → {} v{} [{}]",
                    o.stream.as_deref().unwrap_or("-"),
                    o.stream_version.unwrap_or(0),
                    events.join(", ")
                );
            }
        }
    }
    if o.is_accepted() {
        Ok(())
    } else {
        Err(CliError::Rejected)
    }
}
