//! Misbehaving: on a record whose value is `bomb`, allocates until memory runs
//! out; passes others.
use weir_udf_sdk::{filter, Record, Result};

#[filter]
fn bomb(record: &Record) -> Result<bool> {
    if record.value() == b"bomb" {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            core::hint::black_box(&hoard);
        }
    }
    Ok(true)
}
