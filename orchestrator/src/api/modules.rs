//! Modules: `GET /v1/tenants/{t}/modules` and `…/modules/{name}`, and
//! uploads, `PUT …/modules/{name}/versions/{version}`: the bytes go to the
//! tenant's bucket from `weir serve`, so a tenant needs no rights on NATS's
//! object store, and every upload is validated here, whoever sent it.
//! `GET …/versions/{version}` gives the bytes back (for `weir udf run`),
//! checked against the digest recorded at upload.

use super::types::{ModuleView, NamePage, VersionView};
use super::{ApiError, ApiState};
use crate::domain::module::ModuleState;
use crate::domain::{ModuleName, Tenant};
use crate::store::EventStore;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `application/wasm`: a module version's bytes.
pub struct WasmBytes(pub Vec<u8>);

pub const WASM: &str = "application/wasm";

impl IntoResponse for WasmBytes {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, WASM)], self.0).into_response()
    }
}

fn view(
    tenant: &str,
    stream: &str,
    snapshot: Option<serde_json::Value>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<ModuleView, ApiError> {
    let state: ModuleState = snapshot
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("module snapshot: {e}"),
            )
        })?
        .unwrap_or_default();
    Ok(ModuleView {
        tenant: tenant.to_owned(),
        name: stream.strip_prefix("module.").unwrap_or(stream).to_owned(),
        latest: state.latest.clone(),
        versions: state
            .versions
            .into_iter()
            .map(|(version, module)| VersionView { version, module })
            .collect(),
        updated_at: at,
    })
}

/// The module store or the command path (NATS) failed.
fn unavailable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn bad(e: crate::domain::ids::NameError) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

pub async fn list(
    State(s): State<ApiState>,
    Path(tenant): Path<String>,
    Query(page): Query<NamePage>,
) -> Result<Json<Vec<ModuleView>>, ApiError> {
    let tenant = Tenant::new(tenant).map_err(bad)?;
    Ok(Json(page.of(all(&s, &tenant).await?, |m| &m.name)))
}

/// Every module of `tenant`, by name.
pub(crate) async fn all(s: &ApiState, tenant: &Tenant) -> Result<Vec<ModuleView>, ApiError> {
    let rows = s.store.list_streams(tenant.as_str(), "module").await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view(tenant.as_str(), &r.stream, r.snapshot, r.updated_at)?);
    }
    Ok(out)
}

pub async fn show(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<ModuleView>, ApiError> {
    let tenant = Tenant::new(tenant).map_err(bad)?;
    let name = ModuleName::new(name).map_err(bad)?;
    Ok(Json(one(&s, &tenant, &name).await?))
}

async fn one(s: &ApiState, tenant: &Tenant, name: &ModuleName) -> Result<ModuleView, ApiError> {
    let stream = crate::domain::StreamId::new("module", name.as_str());
    let Some(r) = s.store.stream_summary(tenant.as_str(), &stream).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("module `{name}` not found in tenant `{tenant}`"),
        ));
    };
    view(tenant.as_str(), &r.stream, r.snapshot, r.updated_at)
}

/// `GET …/modules/{name}/versions/{version}`: the component as uploaded,
/// read from the tenant's bucket and checked against the digest and size
/// its `module_uploaded` event recorded.
pub async fn download(
    State(s): State<ApiState>,
    Path((tenant, name, version)): Path<(String, String, String)>,
) -> Result<WasmBytes, ApiError> {
    let tenant = Tenant::new(tenant).map_err(bad)?;
    let name = ModuleName::new(name).map_err(bad)?;
    let module = one(&s, &tenant, &name).await?;
    let Some(entry) = module.versions.iter().find(|v| v.version == version) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("module `{name}` has no version `{version}`"),
        ));
    };
    let js = async_nats::jetstream::new(s.nats.clone());
    let bytes = crate::registry::ModuleBytes::open(&js, s.subjects.prefix(), tenant.as_str())
        .await
        .map_err(|e| unavailable(&e))?
        .get(
            name.as_str(),
            &version,
            &entry.module.digest,
            entry.module.size,
        )
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(WasmBytes(bytes))
}

/// `PUT …/modules/{name}/versions/{version}`: validates the component,
/// stores it and sends `module.register` with the caller's token (so the
/// command path judges it as it judges any command: quotas, immutability).
/// Answers the command's outcome; a refused upload's bytes are removed.
pub async fn upload(
    State(s): State<ApiState>,
    Path((tenant, name, version)): Path<(String, String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<crate::domain::Outcome>, ApiError> {
    let tenant = Tenant::new(tenant).map_err(bad)?;
    let name = ModuleName::new(name).map_err(bad)?;
    let Some(host) = s.host.clone() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this `weir serve` has no WASM host to validate uploads".into(),
        ));
    };
    let info = tokio::task::spawn_blocking({
        let body = body.clone();
        move || host.validate(&body)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let js = async_nats::jetstream::new(s.nats.clone());
    let bucket = crate::registry::ModuleBytes::open(&js, s.subjects.prefix(), tenant.as_str())
        .await
        .map_err(|e| unavailable(&e))?;
    let object = bucket
        .put(name.as_str(), &version, &body)
        .await
        .map_err(|e| unavailable(&e))?;
    let token = super::auth::request_token(&headers);
    let outcome = crate::client::send_as(
        &s.nats,
        &s.subjects,
        token.as_deref(),
        crate::client::Request {
            tenant: tenant.to_string(),
            kind: "module.register".into(),
            target: name.to_string(),
            payload: crate::registry::register_payload(&version, &info),
            expected_version: None,
            actor: "api".into(),
        },
        std::time::Duration::from_secs(15),
        false,
    )
    .await
    .map_err(|e| unavailable(&e))?;
    if !outcome.is_accepted() {
        if let Err(e) = bucket.delete(&object).await {
            tracing::warn!(%tenant, module = %name, error = %e, "a refused upload's bytes were not removed");
        }
    }
    Ok(Json(outcome))
}
