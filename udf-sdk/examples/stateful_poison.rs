//! Misbehaving, with state: counts every record per key before looking at
//! it, then panics on `poison` and returns an error on `reject`. The host
//! must drop the count of both, so the others count 1, 2, 3… without gaps.
use weir_udf_sdk::{process, Context, Emitter, Error, Record, Result};

#[process]
fn count(cx: &mut Context, record: &Record, out: &mut Emitter) -> Result<()> {
    let n = cx.get_u64("count").unwrap_or(0) + 1;
    cx.put_u64("count", n);
    match record.value() {
        b"poison" => panic!("poisoned after counting to {n}"),
        b"reject" => Err(Error::msg(format!("rejected after counting to {n}"))),
        _ => {
            out.emit(n.to_string());
            Ok(())
        }
    }
}
