//! Alert queries: a job's rules and where each stands, and what fires
//! across a tenant.

use axum::extract::{Path, State};
use axum::Json;

use super::jobs::{all, load, newest_events, parse, parse_job};
use super::types::{FiringAlert, JobAlerts, RuleView};
use super::{ApiError, ApiState};

/// The newest alert events a job's view carries.
const HISTORY: usize = 50;

pub async fn job(
    State(s): State<ApiState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<JobAlerts>, ApiError> {
    let (tenant, name) = parse_job(&tenant, &name)?;
    let (_, state) = load(&s, &tenant, &name).await?;
    let rules: Vec<RuleView> = state
        .deployed_alert_rules()
        .into_iter()
        .map(|rule| RuleView {
            status: state.alerts.get(&rule.name).cloned(),
            rule,
        })
        .collect();
    let history = newest_events(
        &s,
        &tenant,
        &name,
        &["alert_fired", "alert_resolved"],
        HISTORY,
    )
    .await?;
    Ok(Json(JobAlerts {
        rules,
        firing: state.firing_alerts().into_iter().collect(),
        history,
    }))
}

pub async fn firing(
    State(s): State<ApiState>,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<FiringAlert>>, ApiError> {
    let (tenant, _) = parse(&tenant, None)?;
    let mut out = Vec::new();
    for (view, state) in all(&s, &tenant).await? {
        for (rule, status) in state.alerts.iter().filter(|(_, s)| s.firing) {
            out.push(FiringAlert {
                job: view.name.clone(),
                rule: rule.clone(),
                severity: status.severity,
                since: status.since,
                message: status.message.clone(),
            });
        }
    }
    // The most severe first, then the oldest.
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.since.cmp(&b.since)));
    Ok(Json(out))
}
