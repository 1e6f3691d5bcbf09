//! Text or JSON output, chosen by `-o`.

use clap::ValueEnum;
use serde::Serialize;

use super::CliError;
use crate::domain::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(v: &T) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{s}");
    Ok(())
}

/// Prints an outcome and turns a rejection into the matching exit code.
pub fn outcome(format: Format, kind: &str, o: &Outcome) -> Result<(), CliError> {
    match format {
        Format::Json => json(o)?,
        Format::Text => {
            if let Some(r) = &o.rejection {
                eprintln!(
                    "rejected: {kind}: {} ({})",
                    r.message,
                    serde_json::to_value(r.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                );
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
