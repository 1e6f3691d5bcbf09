//! The web console: read-only, server-rendered HTML pages at `/ui`, served
//! by `weir serve` beside the HTTP API (docs/console.md).
//!
//! Pages read through the same functions the API handlers use
//! (`crate::api::{jobs, runtime, workflows, modules}`), so the console shows
//! exactly what `GET /v1/…` answers. Charts, run timelines and the lineage
//! graph are inline SVG drawn here; there is no script at all, and the
//! Content-Security-Policy forbids any. Every value is escaped by the
//! templates ([`maud`]): tenants' names, specs and error texts are untrusted.
//!
//! - [`jobs`]: the tenant's jobs, one job (tasks, charts, versions, runs,
//!   checkpoints, history) and a diff between two versions
//! - [`runs`]: workflow runs, one run, and the step timeline both draw
//! - [`modules`]: UDF modules and their versions
//! - [`lineage`]: the lineage graph, laid out in layers
//! - [`charts`]: line charts of the kept metrics reports

mod charts;
mod jobs;
mod lineage;
mod modules;
mod runs;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState};
use crate::domain::Tenant;
use crate::store::StoreError;

/// No script, no plugin, no frame; styles and images only from here (the
/// favicon is an empty `data:` image).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Rows per page of the paged lists.
pub const PAGE_SIZE: usize = 50;

const STYLESHEET: &str = include_str!("console.css");

/// The console's routes, all under `/ui`. Mounted next to [`crate::api::router`].
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/tenant", get(pick_tenant))
        .route("/ui/static/console.css", get(stylesheet))
        .route("/ui/t/{tenant}", get(jobs::list))
        .route("/ui/t/{tenant}/jobs/{job}", get(jobs::show))
        .route(
            "/ui/t/{tenant}/jobs/{job}/diff/{from}/{to}",
            get(jobs::diff),
        )
        .route("/ui/t/{tenant}/runs", get(runs::list))
        .route("/ui/t/{tenant}/runs/{id}", get(runs::show))
        .route("/ui/t/{tenant}/modules", get(modules::list))
        .route("/ui/t/{tenant}/lineage", get(lineage::show))
        .with_state(state)
}

/// Why a page cannot be shown; rendered as an HTML page with its status.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// What the API would answer with this status.
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api {
            status: e.status(),
            message: e.message().to_owned(),
        }
    }
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Api { status, .. } => *status,
            ConsoleError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = layout(
            status.canonical_reason().unwrap_or("Error"),
            None,
            html! { p.error { (self.to_string()) } },
        );
        let mut res = Page(body).into_response();
        *res.status_mut() = status;
        res
    }
}

/// A rendered page, sent with the console's security headers.
pub struct Page(pub Markup);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = self.0.into_string().into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// The tenant of a path, checked as the API checks it.
fn tenant(name: &str) -> Result<Tenant, ConsoleError> {
    Tenant::new(name).map_err(|e| ConsoleError::BadRequest(e.to_string()))
}

/// The frame of every page: title, the tenant's menu, the body.
fn layout(title: &str, tenant: Option<&Tenant>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Weir" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/ui/static/console.css";
            }
            body {
                nav {
                    a.brand href="/ui" { "Weir" }
                    @if let Some(t) = tenant {
                        span.tenant { (t.as_str()) }
                        a href=(format!("/ui/t/{t}")) { "Jobs" }
                        a href=(format!("/ui/t/{t}/runs")) { "Workflow runs" }
                        a href=(format!("/ui/t/{t}/modules")) { "Modules" }
                        a href=(format!("/ui/t/{t}/lineage")) { "Lineage" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page number in the query (`?page=2`, from 1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub page: Option<usize>,
}

/// One page of `items`, and the links to the pages around it.
fn paged<'a, T>(items: &'a [T], q: PageQuery, base: &str) -> (&'a [T], Markup) {
    let pages = items.len().div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let end = (start + PAGE_SIZE).min(items.len());
    let links = html! {
        p.pager {
            @if page > 1 { a rel="prev" href=(format!("{base}?page={}", page - 1)) { "← previous" } " " }
            "page " (page) " of " (pages) " (" (items.len()) ")"
            @if page < pages { " " a rel="next" href=(format!("{base}?page={}", page + 1)) { "next →" } }
        }
    };
    (&items[start..end], links)
}

/// A paged list page of the tenant: `empty` when there is nothing, else
/// `rows` of the page asked for and the links to the pages around it.
fn listing<T>(
    t: &Tenant,
    title: &str,
    all: &[T],
    q: PageQuery,
    path: &str,
    empty: Markup,
    rows: impl FnOnce(&[T]) -> Markup,
) -> Page {
    let (page, pager) = paged(all, q, &format!("/ui/t/{t}{path}"));
    Page(layout(
        title,
        Some(t),
        html! {
            @if all.is_empty() { p.note { (empty) } }
            @else { (rows(page)) (pager) }
        },
    ))
}

/// A snake_case enum as its JSON spelling (`running`, `upgrade`, …).
fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `s` cut to `max` characters, with `…` where it was cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).chain(['…']).collect()
    }
}

/// A timestamp as people read it, in UTC.
fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A status badge, coloured by its word.
fn badge(word: &str) -> Markup {
    html! { span class=(format!("badge {word}")) { (word) } }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `/ui`: the tenants that have anything, and a box to name one.
async fn index(State(s): State<ApiState>) -> Result<Page, ConsoleError> {
    let tenants = s.store.tenants().await?;
    Ok(Page(layout(
        "Tenants",
        None,
        html! {
            form action="/ui/tenant" method="get" {
                label { "Tenant " input name="name" required pattern="[a-z0-9][a-z0-9_-]*"; }
                " " button type="submit" { "Open" }
            }
            @if tenants.is_empty() {
                p { "No tenant has a job, module or run yet." }
            } @else {
                ul.tenants {
                    @for t in &tenants {
                        li { a href=(format!("/ui/t/{t}")) { (t) } }
                    }
                }
            }
        },
    )))
}

#[derive(Debug, Deserialize)]
struct TenantQuery {
    name: String,
}

/// The form on `/ui`: to the tenant's jobs, if the name is one.
async fn pick_tenant(Query(q): Query<TenantQuery>) -> Result<Redirect, ConsoleError> {
    let t = tenant(q.name.trim())?;
    Ok(Redirect::to(&format!("/ui/t/{t}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_cut_with_links_either_side() {
        let items: Vec<u32> = (0..120).collect();
        let (rows, links) = paged(&items, PageQuery { page: Some(2) }, "/ui/t/acme");
        assert_eq!(rows.first(), Some(&50));
        assert_eq!(rows.len(), 50);
        let links = links.into_string();
        assert!(links.contains("/ui/t/acme?page=1") && links.contains("/ui/t/acme?page=3"));
        let (rows, links) = paged(&items, PageQuery { page: Some(99) }, "/x");
        assert_eq!(rows.len(), 20);
        assert!(!links.into_string().contains("next"));
        let (rows, _) = paged::<u32>(&[], PageQuery::default(), "/x");
        assert!(rows.is_empty());
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let page = layout(
            "<script>alert(1)</script>",
            None,
            html! { p title=("\"><img src=x onerror=alert(1)>") { ("<b>") } },
        )
        .into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("&lt;b&gt;"), "{page}");
    }
}
