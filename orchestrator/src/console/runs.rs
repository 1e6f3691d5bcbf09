//! Workflow runs: the tenant's runs (paged), one run with its step timeline
//! and history, and the run card the job page shows.

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::{badge, label, layout, listing, tenant, when, ConsoleError, Page, PageQuery};
use crate::api::types::{RunFilter, RunView};
use crate::api::{workflows, ApiState};
use crate::domain::workflow::event::RunEvent;
use crate::domain::workflow::state::RunStatus;
use crate::store::StoredEvent;

/// `/ui/t/{tenant}/runs`: every run of the tenant, newest first.
pub async fn list(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let all = workflows::runs(&s, &t, &RunFilter::default()).await?;
    let empty = html! { "No workflow run yet." };
    Ok(listing(
        &t,
        "Workflow runs",
        &all,
        q,
        "/runs",
        empty,
        |rows| table(t.as_str(), rows),
    ))
}

/// Runs as table rows, with why a paused or failed one stopped.
pub fn table(tenant: &str, runs: &[RunView]) -> Markup {
    html! {
        table.runs {
            tr { th { "run" } th { "workflow" } th { "job" } th { "status" } th { "step" } th { "started" } th { "why" } }
            @for r in runs {
                tr data-status=(label(&r.status)) {
                    td.mono { a href=(format!("/ui/t/{tenant}/runs/{}", r.run_id)) { (short(&r.run_id)) } }
                    td { (r.workflow) }
                    td { @if let Some(j) = &r.job { a href=(format!("/ui/t/{tenant}/jobs/{j}")) { (j) } } }
                    td { (badge(&label(&r.status))) }
                    td { @if let Some(c) = &r.current { (c.step) " (attempt " (c.attempt) ")" } }
                    td { @if let Some(at) = &r.started_at { (when(at)) } }
                    td { @if let Some(why) = &r.reason { span.error { (why) } } }
                }
            }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `/ui/t/{tenant}/runs/{id}`: one run, its timeline, steps and events.
pub async fn show(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Page, ConsoleError> {
    let t = tenant(&t)?;
    let detail = workflows::detail(&s, &t, &id).await?;
    let run = &detail.run;
    Ok(Page(layout(
        &format!("Run {} ({})", short(&run.run_id), run.workflow),
        Some(&t),
        html! {
            dl.facts {
                dt { "run" } dd.mono { (run.run_id) }
                dt { "workflow" } dd { (run.workflow) " from " code { (run.file) } }
                dt { "status" } dd { (badge(&label(&run.status))) }
                @if let Some(j) = &run.job {
                    dt { "job" } dd { a href=(format!("/ui/t/{t}/jobs/{j}")) { (j) } }
                }
                @if let Some(at) = &run.started_at { dt { "started" } dd { (when(at)) } }
                @if let Some(at) = &run.updated_at { dt { "updated" } dd { (when(at)) } }
            }
            (card(t.as_str(), run, &detail.events))
            h2 { "Steps" }
            table {
                tr { th { "step" } th { "status" } th { "attempts" } th { "error" } }
                @for (name, step) in &run.steps {
                    tr {
                        td { (name) }
                        td { (badge(&label(&step.status))) }
                        td.num { (step.starts) }
                        td { @if let Some(e) = &step.error { span.error { (label(&e.class)) ": " (e.message) } } }
                    }
                }
            }
            h2 { "Input" }
            pre { (serde_json::to_string_pretty(&run.input).unwrap_or_default()) }
            h2 { "History" }
            table {
                tr { th { "version" } th { "event" } th { "recorded" } }
                @for e in &detail.events {
                    tr { td.num { (e.stream_version) } td { (e.event_type) } td { (when(&e.recorded_at)) } }
                }
            }
        },
    )))
}

/// A run's status, the error that stopped it (a paused or failed step) and
/// its step timeline.
pub fn card(tenant: &str, run: &RunView, events: &[StoredEvent]) -> Markup {
    let failed: Vec<_> = run
        .steps
        .iter()
        .filter_map(|(name, s)| Some((name, s.error.as_ref()?)))
        .filter(|_| run.status != RunStatus::Completed)
        .collect();
    html! {
        div.run data-run=(run.run_id) data-status=(label(&run.status)) {
            p {
                strong { (run.workflow) } " "
                a.mono href=(format!("/ui/t/{tenant}/runs/{}", run.run_id)) { (short(&run.run_id)) } " "
                (badge(&label(&run.status)))
                @if let Some(at) = &run.started_at { " started " (when(at)) }
            }
            @if let Some(why) = &run.reason {
                div.error.reason { (why) }
            }
            @for (name, e) in &failed {
                @if run.reason.as_deref().is_none_or(|r| !r.contains(&e.message)) {
                    div.error { "step " (name) ", attempt " (e.attempt) ", " (label(&e.class)) ": " (e.message) }
                }
            }
            (timeline(&spans(events), run.updated_at))
        }
    }
}

/// One step's time in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub step: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// `completed`, `failed`, `skipped`, `retrying`, `running`.
    pub status: &'static str,
    pub attempts: u32,
}

/// Each step's span, in the order the steps first ran, from the run's events.
pub fn spans(events: &[StoredEvent]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    fn entry<'a>(out: &'a mut Vec<Span>, step: &str, at: DateTime<Utc>) -> &'a mut Span {
        if let Some(i) = out.iter().position(|s| s.step == step) {
            return &mut out[i];
        }
        out.push(Span {
            step: step.to_owned(),
            start: at,
            end: None,
            status: "running",
            attempts: 0,
        });
        let last = out.len() - 1;
        &mut out[last]
    }
    for e in events {
        let Ok(ev) = serde_json::from_value::<RunEvent>(e.payload.clone()) else {
            continue;
        };
        let at = e.recorded_at;
        match ev {
            RunEvent::StepScheduled { step, .. } => {
                entry(&mut out, &step, at);
            }
            RunEvent::StepStarted { step, at, .. } | RunEvent::WaitStarted { step, at, .. } => {
                let s = entry(&mut out, &step, at);
                s.attempts += 1;
                s.status = "running";
                s.end = None;
            }
            RunEvent::StepSkipped { step } => {
                let s = entry(&mut out, &step, at);
                s.status = "skipped";
                s.end = Some(at);
            }
            RunEvent::StepCompleted { step, at, .. } => {
                let s = entry(&mut out, &step, at);
                s.status = "completed";
                s.end = Some(at);
            }
            RunEvent::StepFailed {
                error,
                retry_at,
                at,
                ..
            } => {
                let s = entry(&mut out, &error.step, at);
                s.end = Some(at);
                s.status = if retry_at.is_some() {
                    "retrying"
                } else {
                    "failed"
                };
            }
            _ => {}
        }
    }
    out
}

const TL_WIDTH: f64 = 720.0;
const TL_LABEL: f64 = 150.0;
const TL_ROW: f64 = 20.0;

fn colour(status: &str) -> &'static str {
    match status {
        "completed" => "#3aa45b",
        "failed" => "#d23c3c",
        "retrying" => "#e0a21b",
        "skipped" => "#b8bec9",
        _ => "#2f6fd6",
    }
}

/// The spans as bars on one time axis; an open span runs to `until` (the
/// run's last change) or now.
pub fn timeline(spans: &[Span], until: Option<DateTime<Utc>>) -> Markup {
    let Some(t0) = spans.iter().map(|s| s.start).min() else {
        return html! { p.note { "No step has run yet." } };
    };
    let last = spans
        .iter()
        .filter_map(|s| s.end)
        .chain(until)
        .max()
        .unwrap_or(t0);
    let t1 = if spans.iter().any(|s| s.end.is_none()) {
        last.max(Utc::now())
    } else {
        last
    };
    let total = ((t1 - t0).num_milliseconds() as f64).max(1.0);
    let plot = TL_WIDTH - TL_LABEL - 60.0;
    let x = |t: DateTime<Utc>| TL_LABEL + (t - t0).num_milliseconds() as f64 / total * plot;
    let height = TL_ROW * spans.len() as f64 + 18.0;
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" width=(TL_WIDTH) height=(height)
            viewBox=(format!("0 0 {TL_WIDTH} {height}")) role="img" aria-label="step timeline" {
            @for (i, s) in spans.iter().enumerate() {
                @let y = i as f64 * TL_ROW;
                @let x0 = x(s.start);
                @let x1 = x(s.end.unwrap_or(t1)).max(x0 + 2.0);
                g.step data-step=(s.step) data-status=(s.status) {
                    text x=(TL_LABEL - 6.0) y=(y + 14.0) text-anchor="end" font-size="12" fill="#1d2330" { (s.step) }
                    rect x=(x0) y=(y + 3.0) width=(x1 - x0) height=(TL_ROW - 6.0) rx="2" fill=(colour(s.status)) {
                        title { (s.step) ": " (s.status) ", " (s.attempts) " attempt(s)" }
                    }
                    text x=(x1 + 4.0) y=(y + 14.0) font-size="11" fill="#6a7385" {
                        (s.status)
                        @if let Some(end) = s.end { " " (format!("{:.1} s", (end - s.start).num_milliseconds() as f64 / 1000.0)) }
                    }
                }
            }
            text x=(TL_LABEL) y=(height - 4.0) font-size="11" fill="#6a7385" { (when(&t0)) }
            text x=(TL_LABEL + plot) y=(height - 4.0) font-size="11" fill="#6a7385" text-anchor="end" {
                "+" (format!("{:.1} s", total / 1000.0))
            }
        }
    }
}

/// Runs of one job, newest first, each with its events (for the job page).
pub async fn of_job(
    s: &ApiState,
    t: &crate::domain::Tenant,
    job: &str,
    newest: usize,
) -> Result<(usize, Vec<(RunView, Vec<StoredEvent>)>), ConsoleError> {
    let filter = RunFilter {
        job: Some(job.to_owned()),
        ..Default::default()
    };
    let runs = workflows::runs(s, t, &filter).await?;
    let total = runs.len();
    let mut out = Vec::new();
    for r in runs.into_iter().take(newest) {
        let d = workflows::detail(s, t, &r.run_id).await?;
        out.push((d.run, d.events));
    }
    Ok((total, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: u64, secs: i64, payload: serde_json::Value) -> StoredEvent {
        StoredEvent {
            position: v as i64,
            tenant: "acme".into(),
            stream: "run.r1".into(),
            stream_version: v,
            event_type: payload["type"].as_str().unwrap_or_default().to_owned(),
            payload,
            command_id: None,
            actor: None,
            recorded_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs),
        }
    }

    #[test]
    fn spans_follow_steps_through_retries_to_their_end() {
        let at = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let events = [
            event(
                1,
                0,
                json!({"type": "step_scheduled", "seq": 1, "step": "info", "attempt": 1}),
            ),
            event(
                2,
                1,
                json!({"type": "step_started", "seq": 1, "step": "info", "attempt": 1,
                "owner": "r", "lease_until": at(30), "idempotency_key": "k", "at": at(1)}),
            ),
            event(
                3,
                2,
                json!({"type": "step_completed", "seq": 1, "step": "info", "attempt": 1, "at": at(2)}),
            ),
            event(4, 2, json!({"type": "step_skipped", "step": "compile"})),
            event(
                5,
                3,
                json!({"type": "step_started", "seq": 2, "step": "assign", "attempt": 1,
                "owner": "r", "lease_until": at(30), "idempotency_key": "k2", "at": at(3)}),
            ),
            event(
                6,
                4,
                json!({"type": "step_failed", "seq": 2, "at": at(4), "retry_at": at(5),
                "error": {"step": "assign", "attempt": 1, "class": "unavailable", "message": "no"}}),
            ),
            event(
                7,
                5,
                json!({"type": "step_started", "seq": 3, "step": "assign", "attempt": 2,
                "owner": "r", "lease_until": at(30), "idempotency_key": "k2", "at": at(5)}),
            ),
            event(
                8,
                6,
                json!({"type": "step_failed", "seq": 3, "at": at(6),
                "error": {"step": "assign", "attempt": 2, "class": "unavailable", "message": "<no>"}}),
            ),
            event(
                9,
                6,
                json!({"type": "run_paused", "reason": "assign failed", "at": at(6)}),
            ),
        ];
        let spans = spans(&events);
        let words: Vec<_> = spans
            .iter()
            .map(|s| (s.step.as_str(), s.status, s.attempts))
            .collect();
        assert_eq!(
            words,
            [
                ("info", "completed", 1),
                ("compile", "skipped", 0),
                ("assign", "failed", 2)
            ]
        );
        assert_eq!(spans[2].start, at(3));
        assert_eq!(spans[2].end, Some(at(6)));
        let svg = timeline(&spans, None).into_string();
        assert_eq!(svg.matches("<g class=\"step\"").count(), 3, "{svg}");
        assert!(svg.contains(r#"data-status="failed""#));
    }

    #[test]
    fn a_run_with_no_step_says_so() {
        assert!(timeline(&[], None).into_string().contains("No step"));
    }
}
