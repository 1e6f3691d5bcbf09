//! Map: the value, ASCII-uppercased.
use weir_udf_sdk::{map, Record, Result};

#[map]
fn uppercase(record: &Record) -> Result<Vec<u8>> {
    Ok(record.value().to_ascii_uppercase())
}
