//! Filter: keeps JSON objects whose `"level"` field is `"error"`. A value
//! that is not JSON is dead-lettered with the parse error.
use weir_udf_sdk::{filter, Record, Result};

#[filter]
fn errors_only(record: &Record) -> Result<bool> {
    let doc: serde_json::Value = serde_json::from_slice(record.value())?;
    Ok(doc.get("level").and_then(|l| l.as_str()) == Some("error"))
}
