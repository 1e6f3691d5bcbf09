//! Workflow run queries: `GET /v1/tenants/{t}/runs?job=`, `GET …/runs/{id}`.

use super::types::{RunDetail, RunFilter, RunView};
use super::{ApiError, ApiState};
use crate::domain::workflow::RunState;
use crate::domain::{StreamId, Tenant};
use crate::store::EventStore;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

fn view(stream: &str, snapshot: Option<serde_json::Value>) -> Result<RunView, ApiError> {
    let s: RunState = snapshot
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("run snapshot: {e}"),
            )
        })?
        .unwrap_or_default();
    Ok(RunView {
        run_id: stream.strip_prefix("run.").unwrap_or(stream).to_owned(),
        workflow: s.workflow,
        file: s.file,
        definition_sha256: s.definition_sha256,
        status: s.status,
        job: s.job,
        input: s.input,
        current: s.current,
        reason: s.reason,
        outputs: s.outputs,
        steps: s.steps,
        started_at: s.started_at,
        updated_at: s.updated_at,
    })
}

fn tenant(t: &str) -> Result<Tenant, ApiError> {
    Tenant::new(t).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Runs of a tenant, newest first, a page at a time.
pub async fn list(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(f): Query<RunFilter>,
) -> Result<Json<Vec<RunView>>, ApiError> {
    let all = runs(&s, &tenant(&t)?, &f).await?;
    Ok(Json(
        all.into_iter()
            .filter(|r| {
                f.before
                    .is_none_or(|b| r.started_at.is_some_and(|at| at < b))
            })
            .take(f.limit())
            .collect(),
    ))
}

/// Runs of a tenant that pass `f`, newest first.
pub(crate) async fn runs(
    s: &ApiState,
    t: &Tenant,
    f: &RunFilter,
) -> Result<Vec<RunView>, ApiError> {
    let mut out = Vec::new();
    for r in s.store.list_streams(t.as_str(), "run").await? {
        let v = view(&r.stream, r.snapshot)?;
        if f.job.as_ref().is_some_and(|j| v.job.as_ref() != Some(j)) {
            continue;
        }
        if f.active && v.status.is_terminal() {
            continue;
        }
        out.push(v);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    Ok(out)
}

/// One run and its events.
pub async fn show(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(detail(&s, &tenant(&t)?, &id).await?))
}

/// One run of `t` and its events; `404` if there is no such run.
pub(crate) async fn detail(s: &ApiState, t: &Tenant, id: &str) -> Result<RunDetail, ApiError> {
    let stream = StreamId::new("run", id);
    let row = s
        .store
        .stream_summary(t.as_str(), &stream)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("run {id} not found in tenant `{t}`"),
            )
        })?;
    let events = s.store.read_stream(t.as_str(), &stream, 0).await?;
    Ok(RunDetail {
        run: view(&row.stream, row.snapshot)?,
        events,
    })
}
