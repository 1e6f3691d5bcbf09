//! Keeps compiled artifacts ready on the orchestrator's machine: at start it
//! replays every `module_uploaded` event, then follows new ones, downloads
//! each version's bytes (digest- and size-checked) and loads them into the
//! artifact cache. A cached artifact is reused, so after a restart nothing
//! is compiled again, and a deploy never waits for a compile (cold start).
//!
//! Settings come from the environment (`WEIR_WASM_CACHE`, default
//! `.weir/wasm-cache`; `WEIR_WASM_WARM=0` turns warming off).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use super::ModuleBytes;
use crate::domain::module::ModuleEvent;
use crate::store::{EventStore, ReadFilter, StoredEvent};
use crate::telemetry::names;
use crate::wasm::WasmHost;

const PAGE: i64 = 500;

/// Where artifacts are cached, from `WEIR_WASM_CACHE`.
pub fn cache_dir_from_env() -> PathBuf {
    std::env::var_os("WEIR_WASM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".weir/wasm-cache"))
}

/// Whether serve should warm modules (`WEIR_WASM_WARM`, default on).
pub fn enabled_from_env() -> bool {
    std::env::var("WEIR_WASM_WARM")
        .map(|v| v != "0" && v != "false")
        .unwrap_or(true)
}

/// Follows module uploads until `shutdown`, warming each version.
pub async fn run<S: EventStore + 'static>(
    store: Arc<S>,
    js: jetstream::Context,
    subject_prefix: String,
    host: WasmHost,
    shutdown: CancellationToken,
) {
    let mut after = 0i64;
    loop {
        let filter = ReadFilter {
            tenant: None,
            stream: None,
        };
        let page = match store.read_all(filter, after, PAGE).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "module warming: cannot read events; retrying");
                Vec::new()
            }
        };
        for e in &page {
            after = e.position;
            if e.event_type == "module_uploaded" {
                warm(&host, &js, &subject_prefix, e).await;
            }
        }
        if page.len() as i64 == PAGE {
            continue;
        }
        let poll = tokio::time::sleep(Duration::from_millis(500));
        if shutdown.run_until_cancelled(poll).await.is_none() {
            return;
        }
    }
}

async fn warm(host: &WasmHost, js: &jetstream::Context, prefix: &str, e: &StoredEvent) {
    let Ok(ModuleEvent::ModuleUploaded {
        version,
        digest,
        size,
        ..
    }) = serde_json::from_value::<ModuleEvent>(e.payload.clone())
    else {
        tracing::warn!(
            position = e.position,
            "module warming: unreadable module_uploaded event"
        );
        return;
    };
    let name = e
        .stream
        .strip_prefix("module.")
        .unwrap_or(&e.stream)
        .to_owned();
    let span = tracing::info_span!("warm_module", tenant = %e.tenant, module = %name, %version);
    let _g = span.enter();
    let bytes = match ModuleBytes::open(js, prefix, &e.tenant).await {
        Ok(b) => b.get(&name, &version, &digest, size).await,
        Err(err) => Err(err),
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(err) => {
            metrics::counter!(names::MODULE_WARM_FAILURES, "reason" => "download").increment(1);
            tracing::warn!(error = %err, "module warming: cannot fetch verified bytes");
            return;
        }
    };
    let host = host.clone();
    let before = host.cache_stats();
    let loaded = tokio::task::spawn_blocking(move || {
        host.load(&name, &version, &bytes)
            .map(|_| host.cache_stats())
    })
    .await;
    match loaded {
        Ok(Ok(after)) => tracing::info!(
            reused = after.hits > before.hits,
            compiled = after.compiles > before.compiles,
            "module ready"
        ),
        Ok(Err(err)) => {
            metrics::counter!(names::MODULE_WARM_FAILURES, "reason" => err.code()).increment(1);
            tracing::warn!(error = %err, "module warming: module does not load");
        }
        Err(err) => tracing::warn!(error = %err, "module warming: task failed"),
    }
}
