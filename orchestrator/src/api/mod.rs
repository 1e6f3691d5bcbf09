//! The HTTP query API (axum). Handlers return their own DTOs, never store rows.
//!
//! - `GET /healthz`, `GET /readyz` (checks PostgreSQL and NATS), `GET /metrics`
//! - `GET /v1/tenants/{t}/jobs`, `…/jobs/{name}`, `…/jobs/{name}/versions`,
//!   `…/jobs/{name}/events?after=&limit=`
//! - `GET /v1/tenants/{t}/runs?job=&active=`, `…/runs/{id}`: workflow runs
//! - `GET /v1/tenants/{t}/modules`, `…/modules/{name}`: UDF modules and their versions
//!
//! The bodies are the types in [`types`], which the `weir` CLI decodes too.

mod jobs;
mod modules;
mod runtime;
pub mod types;
mod workflows;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::store::postgres::PgStore;

/// Shared state for handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<PgStore>,
    pub nats: async_nats::Client,
    pub metrics: PrometheusHandle,
    /// The stream runtime embedded in this process, if any.
    pub runtime: Option<std::sync::Arc<crate::runtime::cluster::ClusterRuntime>>,
}

/// Builds the router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/tenants/{tenant}/jobs", get(jobs::list))
        .route("/v1/tenants/{tenant}/jobs/{name}", get(jobs::show))
        .route(
            "/v1/tenants/{tenant}/jobs/{name}/versions",
            get(jobs::versions),
        )
        .route("/v1/tenants/{tenant}/jobs/{name}/events", get(jobs::events))
        .route(
            "/v1/tenants/{tenant}/jobs/{name}/runtime",
            get(runtime::status),
        )
        .route(
            "/v1/tenants/{tenant}/jobs/{name}/checkpoints",
            get(runtime::checkpoints).post(runtime::checkpoint_now),
        )
        .route("/v1/tenants/{tenant}/modules", get(modules::list))
        .route("/v1/tenants/{tenant}/modules/{name}", get(modules::show))
        .route("/v1/tenants/{tenant}/runs", get(workflows::list))
        .route("/v1/tenants/{tenant}/runs/{id}", get(workflows::show))
        .with_state(state)
}

#[derive(Serialize)]
struct Ready {
    postgres: String,
    nats: String,
}

async fn readyz(State(s): State<ApiState>) -> Response {
    let pg = match s.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let nats = match s.nats.connection_state() {
        async_nats::connection::State::Connected => "ok".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    let code = if pg == "ok" && nats == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Ready { postgres: pg, nats })).into_response()
}

async fn metrics_text(State(s): State<ApiState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// An API error as JSON: `{"error": "..."}` with a fitting status.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(types::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}
