//! The tenant's jobs (paged), one job, and the diff between two versions.

use axum::extract::{Path, Query, State};
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::charts;
use super::runs;
use super::{badge, clip, label, layout, listing, tenant, when, ConsoleError, Page, PageQuery};
use crate::api::types::{JobView, Page as EventQuery, VersionInfo};
use crate::api::{jobs, runtime, ApiState};
use crate::autotune::TunerStore;
use crate::domain::job::diff::{diff as version_diff, StateCompat};
use crate::domain::job::state::CompileStatus;
use crate::domain::job::{JobSpec, JobState};
use crate::domain::{JobName, Tenant};
use crate::runtime::control::TaskState;
use crate::runtime::sinks::Guarantee;

/// Events per page of a job's history.
const EVENTS_PER_PAGE: i64 = 50;
/// Runs shown on a job's page (the rest are on the runs page).
const RUNS_SHOWN: usize = 5;
/// Checkpoints shown on a job's page.
const CHECKPOINTS_SHOWN: usize = 20;
/// Reports drawn at most per chart; older ones are thinned out.
const MAX_REPORTS: usize = 400;

fn job_name(name: &str) -> Result<JobName, ConsoleError> {
    JobName::new(name).map_err(|e| ConsoleError::BadRequest(e.to_string()))
}

/// The version that counts: the deployed one, else the latest.
fn current(view: &JobView, state: &JobState) -> Option<u32> {
    view.deployment
        .as_ref()
        .map(|d| d.version)
        .or(state.latest_version())
}

fn spec_of(state: &JobState, version: Option<u32>) -> Option<JobSpec> {
    let info = state.version(version?)?;
    JobSpec::from_value(info.spec.clone()).ok()
}

/// The delivery guarantee the spec's sinks give, weakest last (without
/// Kafka transactions, as the embedded runtime runs by default).
fn guarantee(spec: &JobSpec) -> String {
    let mut words: Vec<&str> = spec
        .sinks
        .iter()
        .map(|s| Guarantee::of(s, false).as_str())
        .collect();
    words.dedup();
    words.sort();
    words.dedup();
    words.join("; ")
}

/// `/ui/t/{tenant}`: the tenant's jobs by name, a page at a time.
pub async fn list(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let all = jobs::all(&s, &t).await?;
    let empty = html! { "No job yet (" code { "weir job create" } ")." };
    Ok(listing(&t, "Jobs", &all, q, "", empty, |rows| {
        html! {
            table.jobs {
                tr { th { "job" } th { "phase" } th { "deployed" } th { "latest" } th { "parallelism" } th { "guarantee" } th { "alerts" } th { "updated" } }
                @for (view, state) in rows {
                    @let spec = spec_of(state, current(view, state));
                    tr data-job=(view.name) data-phase=(label(&view.phase)) {
                        td { a href=(format!("/ui/t/{t}/jobs/{}", view.name)) { (view.name) } }
                        td { (badge(view.phase.name())) }
                        td.num { @if let Some(d) = &view.deployment { "v" (d.version) } @else { "—" } }
                        td.num { @if let Some(v) = view.latest_version { "v" (v) } }
                        td.num {
                            @if let Some(d) = &view.deployment { (d.parallelism) }
                            @else if let Some(sp) = &spec { (sp.parallelism) }
                        }
                        td { @if let Some(sp) = &spec { (guarantee(sp)) } }
                        td.alerts { (alerts_cell(state)) }
                        td { (when(&view.updated_at)) }
                    }
                }
            }
        }
    }))
}

/// What fires for a job (severity and rule, with its message as a
/// tooltip), or how many rules watch it.
fn alerts_cell(state: &JobState) -> Markup {
    let firing: Vec<_> = state.alerts.iter().filter(|(_, a)| a.firing).collect();
    let rules = state.deployed_alert_rules().len();
    html! {
        @if firing.is_empty() {
            @if rules == 0 { "—" } @else { "ok (" (rules) " rules)" }
        }
        @for (rule, a) in &firing {
            span.error title=(a.message) data-alert=(rule) {
                (a.severity.name()) ": " (rule)
            }
            " "
        }
    }
}

/// Query of a job's page.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    /// History events after this position (the history's pages).
    #[serde(default)]
    after: i64,
    /// Minutes of metrics reports to chart (default 15, at most 360).
    #[serde(default)]
    minutes: Option<i64>,
}

/// `/ui/t/{tenant}/jobs/{job}`: everything about one job.
pub async fn show(
    State(s): State<ApiState>,
    Path((t, name)): Path<(String, String)>,
    Query(q): Query<JobQuery>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let name = job_name(&name)?;
    let (view, state) = jobs::load(&s, &t, &name).await?;
    let minutes = q.minutes.unwrap_or(15).clamp(1, 360);
    let since = Utc::now() - chrono::Duration::minutes(minutes);
    let tuner = TunerStore::new(s.store.pool().clone());
    let page = EventQuery {
        after: q.after,
        limit: Some(EVENTS_PER_PAGE),
    };
    let (events, samples, runs, status, checkpoints) = tokio::join!(
        jobs::event_page(&s, &t, &name, &page),
        tuner.samples(t.as_str(), name.as_str(), since),
        runs::of_job(&s, &t, name.as_str(), RUNS_SHOWN),
        runtime::deployment(&s, t.as_str(), name.as_str()),
        runtime::completed(&s, t.as_str(), name.as_str()),
    );
    let events = events?;
    let mut samples = samples?;
    if samples.len() > MAX_REPORTS {
        let every = samples.len().div_ceil(MAX_REPORTS);
        samples = samples.into_iter().step_by(every).collect();
    }
    let (run_count, runs) = runs?;
    let spec = spec_of(&state, current(&view, &state));
    let charts = charts::task_charts(&samples);
    let base = format!("/ui/t/{t}/jobs/{name}");
    Ok(Page(layout(
        &format!("Job {name}"),
        Some(&t),
        html! {
            dl.facts {
                dt { "phase" } dd id="phase" data-phase=(label(&view.phase)) { (badge(view.phase.name())) }
                dt { "deployed" } dd {
                    @if let Some(d) = &view.deployment {
                        "v" (d.version) ", parallelism " (d.parallelism) ", generation " (d.generation)
                        " (" (label(&d.cause)) ")"
                        @if let Some(c) = &d.checkpoint { ", from checkpoint " code { (c) } }
                    } @else { "never" }
                }
                dt { "latest version" } dd { @if let Some(v) = view.latest_version { "v" (v) } @else { "none" } }
                dt { "last stable" } dd { @if let Some(v) = view.last_stable_version { "v" (v) } @else { "none" } }
                dt { "guarantee" } dd {
                    @match &status {
                        Ok(st) => { (st.guarantee) }
                        Err(_) => { @if let Some(sp) = &spec { (guarantee(sp)) " (from the spec)" } }
                    }
                }
                @if let Some(sp) = &spec {
                    @if let Some(d) = &sp.description { dt { "description" } dd { (d) } }
                }
                @if let Some(f) = &view.last_failure { dt { "last failure" } dd { span.error { (f) } } }
                dt { "alerts" } dd id="alerts" { (alerts_cell(&state)) }
                dt { "updated" } dd { (when(&view.updated_at)) }
            }

            h2 { "Tasks" }
            @match &status {
                Ok(st) => {
                    table id="tasks" {
                        tr { th { "task" } th { "state" } th { "partitions" } th { "records in" } th { "records out" } th { "dead letters" } th { "lag" } th { "restarts" } th { "last error" } }
                        @for task in &st.tasks {
                            tr {
                                td.num { (task.task) }
                                td { @match &task.state {
                                    TaskState::Starting => { (badge("starting")) }
                                    TaskState::Running => { (badge("running")) }
                                    TaskState::Restarting => { (badge("restarting")) }
                                    TaskState::Stopped => { (badge("stopped")) }
                                    TaskState::Failed(why) => { (badge("failed")) " " span.error { (why) } }
                                } }
                                td { (task.partitions.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")) }
                                td.num { (task.records_in) }
                                td.num { (task.records_out) }
                                td.num { (task.dead_lettered) }
                                td.num { @if let Some(l) = task.lag { (l) } }
                                td.num { (task.restarts) }
                                td { @if let Some(e) = &task.last_error { span.error { (e) } } }
                            }
                        }
                    }
                    p.note { (st.completed_checkpoints) " checkpoints completed by this deployment." }
                }
                Err(e) => { p.note { "No live status: " (e.message()) } }
            }
            div.charts {
                @for c in &charts { (charts::render(c)) }
            }
            p.note {
                "From the metrics reports kept for the last " (minutes) " minutes ("
                (samples.len()) " drawn). "
                a href=(format!("{base}?minutes=60")) { "1 h" } " · "
                a href=(format!("{base}?minutes=360")) { "6 h" }
            }

            h2 { "Versions" }
            (versions(t.as_str(), name.as_str(), &state.versions))

            h2 { "Workflow runs" }
            @if runs.is_empty() { p.note { "No workflow run for this job yet." } }
            @for (run, events) in &runs { (runs::card(t.as_str(), run, events)) }
            @if run_count > runs.len() {
                p.note { (run_count - runs.len()) " older runs on " a href=(format!("/ui/t/{t}/runs")) { "the runs page" } "." }
            }

            h2 { "Checkpoints" }
            @match &checkpoints {
                Ok(list) if list.is_empty() => { p.note { "No completed checkpoint." } }
                Ok(list) => {
                    table id="checkpoints" {
                        tr { th { "checkpoint" } th { "version" } th { "generation" } th { "state" } th { "taken" } }
                        @for c in list.iter().take(CHECKPOINTS_SHOWN) {
                            tr {
                                td.mono { (c.id) } td.num { "v" (c.version) } td.num { (c.generation) }
                                td.num { (charts::compact(c.state_bytes as f64)) "B" } td { (when(&c.created_at)) }
                            }
                        }
                    }
                }
                Err(e) => { p.note { "No checkpoints: " (e.message()) } }
            }

            h2 id="history" { "History" }
            table id="events" {
                tr { th { "position" } th { "version" } th { "event" } th { "actor" } th { "recorded" } th { "payload" } }
                @for e in &events.events {
                    tr {
                        td.num { (e.position) } td.num { (e.stream_version) } td { (e.event_type) }
                        td { @if let Some(a) = &e.actor { (a) } }
                        td { (when(&e.recorded_at)) }
                        td.mono.payload { (clip(&e.payload.to_string(), 240)) }
                    }
                }
            }
            p.pager {
                @if q.after > 0 { a href=(format!("{base}#history")) { "← first page" } " " }
                @if let Some(next) = events.next_after {
                    a rel="next" href=(format!("{base}?after={next}#history")) { "next page →" }
                }
            }
        },
    )))
}

fn compile_word(c: &CompileStatus) -> (&'static str, Option<&str>) {
    match c {
        CompileStatus::NotCompiled => ("not_compiled", None),
        CompileStatus::Compiling => ("compiling", None),
        CompileStatus::Compiled { plan_digest, .. } => ("compiled", Some(plan_digest.as_str())),
        CompileStatus::Failed { reason } => ("failed", Some(reason.as_str())),
    }
}

fn versions(t: &str, job: &str, all: &[VersionInfo]) -> Markup {
    html! {
        table id="versions" {
            tr { th { "version" } th { "submitted" } th { "compile" } th { "diff" } th { "spec" } }
            @for (i, v) in all.iter().enumerate().rev() {
                @let (word, detail) = compile_word(&v.compile);
                tr {
                    td.num { "v" (v.version) }
                    td { (when(&v.submitted_at)) }
                    td { (badge(word)) @if let Some(d) = detail { " " span.mono { (clip(d, 80)) } } }
                    td { @if i > 0 { a href=(format!("/ui/t/{t}/jobs/{job}/diff/{}/{}", all[i - 1].version, v.version)) { "from v" (all[i - 1].version) } } }
                    td { details { summary { "spec" } pre { (serde_json::to_string_pretty(&v.spec).unwrap_or_default()) } } }
                }
            }
        }
    }
}

/// `/ui/t/{tenant}/jobs/{job}/diff/{from}/{to}`: what changed, and whether
/// the upgrade keeps state (`weir job diff`).
pub async fn diff(
    State(s): State<ApiState>,
    Path((t, name, from, to)): Path<(String, String, u32, u32)>,
) -> Result<Page, ConsoleError> {
    let t: Tenant = tenant(&t)?;
    let name = job_name(&name)?;
    let (_, state) = jobs::load(&s, &t, &name).await?;
    let find = |v: u32| {
        state
            .version(v)
            .ok_or_else(|| ConsoleError::NotFound(format!("job `{name}` has no version {v}")))
    };
    let d = version_diff(find(from)?, find(to)?);
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "(absent)".to_owned(),
        other => other.to_string(),
    };
    Ok(Page(layout(
        &format!("Job {name}: v{from} → v{to}"),
        Some(&t),
        html! {
            p { a href=(format!("/ui/t/{t}/jobs/{name}")) { "← job " (name) } }
            p id="state" {
                "State: "
                @match &d.state {
                    StateCompat::Kept => { (badge("kept")) " same state fingerprint: state is restored" }
                    StateCompat::Dropped { from, to } => {
                        (badge("dropped")) " fingerprints differ (" code { (from) } " → " code { (to) }
                        "): the upgrade is refused unless state loss is allowed"
                    }
                    StateCompat::Unknown { not_compiled } => {
                        "unknown until compiled: "
                        (not_compiled.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", "))
                    }
                }
            }
            @if d.changes.is_empty() { p.note { "The specs are the same." } }
            @else {
                table id="changes" {
                    tr { th { "field" } th { "v" (from) } th { "v" (to) } }
                    @for c in &d.changes {
                        tr { td.mono { (c.path) } td.mono { (show(&c.from)) } td.mono { (show(&c.to)) } }
                    }
                }
            }
        },
    )))
}
