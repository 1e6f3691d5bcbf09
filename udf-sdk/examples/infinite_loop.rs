//! Misbehaving: loops forever on a record whose value is `spin`; passes others.
use weir_udf_sdk::{filter, log, Level, Record, Result};

#[filter]
fn spin(record: &Record) -> Result<bool> {
    if record.value() == b"spin" {
        log(Level::Warn, "about to spin forever");
        let mut i: u64 = 0;
        loop {
            i = core::hint::black_box(i.wrapping_add(1));
        }
    }
    Ok(true)
}
