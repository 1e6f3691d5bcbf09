//! The data plane of a job: task status, lag, checkpoints. Answered by the
//! runtime embedded in this `weir serve`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::{ApiError, ApiState};
use crate::domain::{JobName, Tenant};
use crate::runtime::control::{
    CheckpointInfo, DeploymentControl, DeploymentKey, DeploymentStatus, RuntimeError,
};

fn key(tenant: &str, name: &str) -> Result<DeploymentKey, ApiError> {
    let bad = |e: crate::domain::ids::NameError| ApiError(StatusCode::BAD_REQUEST, e.to_string());
    Ok(DeploymentKey {
        tenant: Tenant::new(tenant).map_err(bad)?.to_string(),
        job: JobName::new(name).map_err(bad)?.to_string(),
    })
}

fn runtime_error(e: RuntimeError) -> ApiError {
    let code = match &e {
        RuntimeError::NotDeployed(_) | RuntimeError::CheckpointNotFound(_) => StatusCode::NOT_FOUND,
        RuntimeError::StaleGeneration { .. } => StatusCode::CONFLICT,
        RuntimeError::Invalid(_) => StatusCode::BAD_REQUEST,
        RuntimeError::Unavailable { .. } | RuntimeError::Internal(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    ApiError(code, e.to_string())
}

fn no_runtime() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "this weir serve runs no stream runtime (started with --runtime none or sim)".into(),
    )
}

/// `GET …/jobs/{name}/runtime`: per-task state, records, lag, the guarantee in force.
pub async fn status(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<DeploymentStatus>, ApiError> {
    Ok(Json(deployment(&s, &tenant, &name).await?))
}

/// The status of a job's deployment, as the worker running it reports it.
pub(crate) async fn deployment(
    s: &ApiState,
    tenant: &str,
    name: &str,
) -> Result<DeploymentStatus, ApiError> {
    let rt = s.runtime.as_ref().ok_or_else(no_runtime)?;
    rt.status(&key(tenant, name)?).await.map_err(runtime_error)
}

/// `GET …/jobs/{name}/checkpoints`: completed checkpoints, newest first.
pub async fn checkpoints(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Vec<CheckpointInfo>>, ApiError> {
    Ok(Json(completed(&s, &tenant, &name).await?))
}

/// A job's completed checkpoints, newest first.
pub(crate) async fn completed(
    s: &ApiState,
    tenant: &str,
    name: &str,
) -> Result<Vec<CheckpointInfo>, ApiError> {
    let rt = s.runtime.as_ref().ok_or_else(no_runtime)?;
    rt.checkpoints(&key(tenant, name)?)
        .await
        .map_err(runtime_error)
}

/// `POST …/jobs/{name}/checkpoints`: take a checkpoint now.
pub async fn checkpoint_now(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<CheckpointInfo>, ApiError> {
    let rt = s.runtime.as_ref().ok_or_else(no_runtime)?;
    Ok(Json(
        rt.checkpoint(&key(&tenant, &name)?)
            .await
            .map_err(runtime_error)?,
    ))
}
