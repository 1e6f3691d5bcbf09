//! Misbehaving: on a record whose value is `huge`, emits 200,000 outputs
//! (about 7 MB); echoes every other record once.
use weir_udf_sdk::{flat_map, Record, Result};

#[flat_map]
fn huge(record: &Record) -> Result<Vec<Vec<u8>>> {
    if record.value() == b"huge" {
        return Ok((0..200_000)
            .map(|i| format!("{i:032}").into_bytes())
            .collect());
    }
    Ok(vec![record.value().to_vec()])
}
