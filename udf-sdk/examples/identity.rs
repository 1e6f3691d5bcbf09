//! Map: the value unchanged. The trivial map of the overhead benchmark.
use weir_udf_sdk::{map, Record, Result};

#[map]
fn identity<'a>(record: &Record<'a>) -> Result<&'a [u8]> {
    Ok(record.value())
}
