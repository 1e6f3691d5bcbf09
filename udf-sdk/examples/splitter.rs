//! Flat map: one output per whitespace-separated word, keyed by the word.
use weir_udf_sdk::{flat_map, Output, Record, Result};

#[flat_map]
fn words(record: &Record) -> Result<Vec<Output>> {
    let text = record.value_str()?;
    Ok(text
        .split_whitespace()
        .map(|w| Output::value(w).with_key(w))
        .collect())
}
