//! A tenant's secrets: `PUT`, `GET` (names only) and `DELETE`
//! `/v1/tenants/{t}/secrets…`. No route answers a value.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::{ApiError, ApiState};
use crate::domain::Tenant;
use crate::secrets::{SecretError, SecretInfo};

fn api_error(e: SecretError) -> ApiError {
    let status = match e {
        SecretError::BadName(_) | SecretError::TooLarge(_) | SecretError::NotText => {
            StatusCode::BAD_REQUEST
        }
        SecretError::NoKey | SecretError::Unavailable(_) | SecretError::Key { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    ApiError(status, e.to_string())
}

fn tenant(t: String) -> Result<Tenant, ApiError> {
    Tenant::new(t).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

pub async fn list(
    State(s): State<ApiState>,
    Path(t): Path<String>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    let t = tenant(t)?;
    Ok(Json(s.secrets.list(t.as_str()).await.map_err(api_error)?))
}

pub async fn put(
    State(s): State<ApiState>,
    Path((t, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<SecretInfo>, ApiError> {
    let t = tenant(t)?;
    let info = s
        .secrets
        .set(t.as_str(), &name, &body)
        .await
        .map_err(api_error)?;
    tracing::info!(tenant = %t, secret = %name, "secret set");
    Ok(Json(info))
}

pub async fn delete(
    State(s): State<ApiState>,
    Path((t, name)): Path<(String, String)>,
) -> Result<Json<Vec<SecretInfo>>, ApiError> {
    let t = tenant(t)?;
    if !s
        .secrets
        .delete(t.as_str(), &name)
        .await
        .map_err(api_error)?
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("tenant `{t}` has no secret `{name}`"),
        ));
    }
    tracing::info!(tenant = %t, secret = %name, "secret deleted");
    Ok(Json(s.secrets.list(t.as_str()).await.map_err(api_error)?))
}
