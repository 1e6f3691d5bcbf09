//! Tenant queries for admins: `GET /v1/admin/tenants` and `…/tenants/{tenant}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::types::{TenantUsage, TenantView};
use super::{ApiError, ApiState};
use crate::domain::tenant::TenantState;
use crate::domain::Tenant;
use crate::intake::auth::tenant_usage;

async fn view(s: &ApiState, name: &str, state: TenantState) -> Result<TenantView, ApiError> {
    let usage = tenant_usage(s.store.as_ref(), name).await?;
    Ok(TenantView {
        name: name.to_owned(),
        active: state.active,
        quota: state.quota,
        usage: TenantUsage {
            jobs: usage.jobs,
            tasks: usage.tasks(""),
            module_bytes: usage.module_bytes,
        },
        granted_topics: state.granted_topics.into_iter().collect(),
        created_at: state.created_at,
    })
}

pub async fn list(State(s): State<ApiState>) -> Result<Json<Vec<TenantView>>, ApiError> {
    let mut out = Vec::new();
    for (name, state) in crate::store::postgres::tenant_states(s.store.pool()).await? {
        out.push(view(&s, &name, state).await?);
    }
    Ok(Json(out))
}

pub async fn show(
    State(s): State<ApiState>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    let tenant =
        Tenant::new(tenant).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let state = crate::intake::auth::load_tenant(s.store.as_ref(), tenant.as_str()).await?;
    match state.created_at {
        Some(_) => Ok(Json(view(&s, tenant.as_str(), state).await?)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("tenant `{tenant}` was never created"),
        )),
    }
}
