//! Map: spends `work` rounds of arithmetic on each JSON record
//! (`{"id": …, "work": N}`), then outputs `{"id": …, "h": …}`. A stand-in
//! for an expensive UDF whose cost is set by the record, for load tests of
//! the auto-tuner. A value that is not JSON is dead-lettered.
use weir_udf_sdk::{map, Record, Result};

#[map]
fn busy_map(record: &Record) -> Result<Vec<u8>> {
    let doc: serde_json::Value = serde_json::from_slice(record.value())?;
    let work = doc.get("work").and_then(|w| w.as_u64()).unwrap_or(0);
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..work {
        // xorshift: cheap, and the result is output, so it is not optimised away.
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        h = h.wrapping_add(i);
    }
    let out = serde_json::json!({"id": doc.get("id"), "h": h});
    Ok(serde_json::to_vec(&out)?)
}
