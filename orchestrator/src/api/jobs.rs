//! Job queries.

use super::types::{AutotuneView, EventPage, JobView, NamePage, Page, VersionInfo};
use super::{ApiError, ApiState};
use crate::domain::job::JobState;
use crate::domain::{JobName, StreamId, Tenant};
use crate::store::{EventStore, ReadFilter};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

pub(crate) fn parse(
    tenant: &str,
    name: Option<&str>,
) -> Result<(Tenant, Option<JobName>), ApiError> {
    let bad = |e: crate::domain::ids::NameError| ApiError(StatusCode::BAD_REQUEST, e.to_string());
    let t = Tenant::new(tenant).map_err(bad)?;
    let n = name.map(JobName::new).transpose().map_err(bad)?;
    Ok((t, n))
}

/// A `…/jobs/{name}/…` path's tenant and job.
pub(crate) fn parse_job(tenant: &str, name: &str) -> Result<(Tenant, JobName), ApiError> {
    let (t, n) = parse(tenant, Some(name))?;
    let n = n.ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "job name required".into()))?;
    Ok((t, n))
}

/// The job's newest `n` events of the given types, newest first.
pub(crate) async fn newest_events(
    s: &ApiState,
    tenant: &Tenant,
    name: &JobName,
    types: &[&str],
    n: usize,
) -> Result<Vec<crate::store::StoredEvent>, ApiError> {
    let mut events: Vec<_> = s
        .store
        .read_stream(tenant.as_str(), &StreamId::new("job", name.as_str()), 0)
        .await?
        .into_iter()
        .filter(|e| types.contains(&e.event_type.as_str()))
        .collect();
    events.reverse();
    events.truncate(n);
    Ok(events)
}

fn view(
    tenant: &str,
    name: &str,
    version: u64,
    snapshot: Option<serde_json::Value>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(JobView, JobState), ApiError> {
    let state: JobState = snapshot
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("job snapshot: {e}"),
            )
        })?
        .unwrap_or_default();
    Ok((
        JobView {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            phase: state.phase,
            stream_version: version,
            latest_version: state.latest_version(),
            last_stable_version: state.last_stable_version,
            generation: state.generation,
            deployment: state.deployment.clone(),
            last_failure: state.last_failure.clone(),
            updated_at: at,
        },
        state,
    ))
}

/// One job, as shown and as folded; `404` if the tenant has no such job.
pub(crate) async fn load(
    s: &ApiState,
    tenant: &Tenant,
    name: &JobName,
) -> Result<(JobView, JobState), ApiError> {
    let stream = StreamId::new("job", name.as_str());
    let Some(row) = s.store.stream_summary(tenant.as_str(), &stream).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("job `{name}` not found in tenant `{tenant}`"),
        ));
    };
    view(
        tenant.as_str(),
        name.as_str(),
        row.version,
        row.snapshot,
        row.updated_at,
    )
}

pub async fn list(
    State(s): State<ApiState>,
    Path(tenant): Path<String>,
    Query(page): Query<NamePage>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let (tenant, _) = parse(&tenant, None)?;
    let jobs = all(&s, &tenant).await?;
    Ok(Json(
        page.of(jobs.into_iter().map(|(v, _)| v).collect(), |v| &v.name),
    ))
}

/// Every job of `tenant`, as listed and as folded.
pub(crate) async fn all(
    s: &ApiState,
    tenant: &Tenant,
) -> Result<Vec<(JobView, JobState)>, ApiError> {
    let rows = s.store.list_streams(tenant.as_str(), "job").await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name = r
            .stream
            .strip_prefix("job.")
            .unwrap_or(&r.stream)
            .to_owned();
        out.push(view(
            tenant.as_str(),
            &name,
            r.version,
            r.snapshot,
            r.updated_at,
        )?);
    }
    Ok(out)
}

pub async fn show(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<JobView>, ApiError> {
    let (tenant, name) = parse_job(&tenant, &name)?;
    Ok(Json(load(&s, &tenant, &name).await?.0))
}

pub async fn versions(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    let (tenant, name) = parse_job(&tenant, &name)?;
    Ok(Json(load(&s, &tenant, &name).await?.1.versions))
}

pub async fn events(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<EventPage>, ApiError> {
    let (tenant, name) = parse_job(&tenant, &name)?;
    Ok(Json(event_page(&s, &tenant, &name, &page).await?))
}

/// A page of the job stream's events; `404` when the first page is empty
/// because the job does not exist.
pub(crate) async fn event_page(
    s: &ApiState,
    tenant: &Tenant,
    name: &JobName,
    page: &Page,
) -> Result<EventPage, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let stream = StreamId::new("job", name.as_str());
    let events = s
        .store
        .read_all(
            ReadFilter {
                tenant: Some(tenant.as_str()),
                stream: Some(stream.as_str()),
            },
            page.after,
            limit,
        )
        .await?;
    if events.is_empty() && page.after == 0 {
        load(s, tenant, name).await?;
    }
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.position))
        .flatten();
    Ok(EventPage { events, next_after })
}

pub async fn autotune(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<AutotuneView>, ApiError> {
    let (tenant, name) = parse_job(&tenant, &name)?;
    let (_, state) = load(&s, &tenant, &name).await?;
    let version = state
        .deployment
        .as_ref()
        .map(|d| d.version)
        .or(state.latest_version());
    let policy = version.and_then(|v| state.autotune_policy(v));
    let tuner = crate::autotune::TunerStore::new(s.store.pool().clone());
    let last = tuner
        .load(tenant.as_str(), name.as_str())
        .await?
        .and_then(|m| serde_json::to_value(m.decision).ok());
    let history = newest_events(&s, &tenant, &name, &["autotune_decided"], 20).await?;
    Ok(Json(AutotuneView {
        policy,
        mode_override: state.autotune_mode,
        last,
        history,
    }))
}
