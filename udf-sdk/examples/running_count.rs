//! Keyed process: a running count per key, kept in host-owned state. Each
//! record emits `<count>`; an event-time timer one second after the first
//! record of a key emits `total=<count>` and resets the count.
use weir_udf_sdk::{counter, process, Context, Emitter, Record, Result, TimeDomain, Timer};

#[process(on_timer = flush)]
fn count(cx: &mut Context, record: &Record, out: &mut Emitter) -> Result<()> {
    let n = cx.get_u64("count").unwrap_or(0) + 1;
    cx.put_u64("count", n);
    if n == 1 {
        cx.register_timer(TimeDomain::EventTime, record.timestamp() + 1000);
    }
    counter("records_counted", 1);
    out.emit(n.to_string());
    Ok(())
}

fn flush(cx: &mut Context, _timer: &Timer, out: &mut Emitter) -> Result<()> {
    let n = cx.get_u64("count").unwrap_or(0);
    cx.delete("count");
    out.emit(format!("total={n}"));
    Ok(())
}
