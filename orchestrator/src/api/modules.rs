//! Module queries: `GET /v1/tenants/{t}/modules` and `…/modules/{name}`.

use super::types::{ModuleView, NamePage, VersionView};
use super::{ApiError, ApiState};
use crate::domain::module::ModuleState;
use crate::domain::{ModuleName, Tenant};
use crate::store::EventStore;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

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
    let stream = crate::domain::StreamId::new("module", name.as_str());
    let Some(r) = s.store.stream_summary(tenant.as_str(), &stream).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("module `{name}` not found in tenant `{tenant}`"),
        ));
    };
    Ok(Json(view(
        tenant.as_str(),
        &r.stream,
        r.snapshot,
        r.updated_at,
    )?))
}
