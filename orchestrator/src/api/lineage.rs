//! `GET /v1/tenants/{t}/lineage`: the tenant's lineage graph, derived from
//! its jobs' current specs ([`crate::domain::lineage`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use super::types::LineageQuery;
use super::{ApiError, ApiState};
use crate::domain::lineage::{Direction, Graph};
use crate::domain::Tenant;

pub async fn graph(
    State(s): State<ApiState>,
    Path(tenant): Path<String>,
    Query(q): Query<LineageQuery>,
) -> Result<Json<Graph>, ApiError> {
    let tenant =
        Tenant::new(&tenant).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(graph_of(&s, &tenant, &q).await?))
}

/// The tenant's graph, or the part of it `q` asks for.
pub(crate) async fn graph_of(
    s: &ApiState,
    tenant: &Tenant,
    q: &LineageQuery,
) -> Result<Graph, ApiError> {
    let direction = match q.direction.as_deref() {
        None | Some("both") => Direction::Both,
        Some("upstream") => Direction::Upstream,
        Some("downstream") => Direction::Downstream,
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("direction `{other}`: expected upstream, downstream or both"),
            ))
        }
    };
    let jobs = super::jobs::all(s, tenant).await?;
    let graph = Graph::of(jobs.iter().map(|(v, s)| (v.name.as_str(), s)));
    match &q.node {
        None => Ok(graph),
        Some(node) => graph.around(node, direction).ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no job of tenant `{tenant}` reads or writes `{node}`"),
            )
        }),
    }
}
