//! Misbehaving: panics (a trap) on a record whose value is `poison`;
//! uppercases every other value.
use weir_udf_sdk::{map, Record, Result};

#[map]
fn poison(record: &Record) -> Result<Vec<u8>> {
    if record.value() == b"poison" {
        panic!("poisoned record at offset {}", record.offset());
    }
    Ok(record.value().to_ascii_uppercase())
}
