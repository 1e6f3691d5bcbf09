//! Who may read what over HTTP: every `/v1/tenants/{t}/…` and `/ui/t/{t}/…`
//! request carries the admin's token or tenant `t`'s; `/v1/admin/…` and the
//! console's front pages the admin's. `/healthz` and `/readyz` stay open;
//! `/metrics` too unless `--protect-metrics`.
//!
//! The token comes as `Authorization: Bearer <token>`, or, for browsers on
//! the console, as the password of HTTP Basic authentication.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::ApiState;
use crate::domain::tenant::token_hash;
use crate::intake::auth::{load_tenant, Access};

/// The access mode the API enforces.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    pub access: Access,
    pub protect_metrics: bool,
}

/// Who must present a token for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard<'a> {
    Open,
    Admin,
    /// The admin, or this tenant.
    Tenant(&'a str),
}

/// The guard of `path`. Pure: the whole policy is here.
pub fn guard(path: &str, protect_metrics: bool) -> Guard<'_> {
    let tenant_of = |rest: &'static str| {
        path.strip_prefix(rest)
            .map(|r| r.split('/').next().unwrap_or_default())
    };
    if let Some(t) = tenant_of("/v1/tenants/").or_else(|| tenant_of("/ui/t/")) {
        return Guard::Tenant(t);
    }
    match path {
        "/healthz" | "/readyz" => Guard::Open,
        "/metrics" if !protect_metrics => Guard::Open,
        // The stylesheet holds nothing of anyone's, and the login prompt needs it.
        p if p.starts_with("/ui/static/") => Guard::Open,
        // Everything else, /v1/admin/…, the console's index and unknown paths
        // (so a 404 tells nothing about what exists).
        _ => Guard::Admin,
    }
}

/// The token a request carries: a bearer token, or a Basic password.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_owned()).filter(|t| !t.is_empty());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_owned()).filter(|p| !p.is_empty())
}

/// Middleware: refuses a request whose token does not open its path.
pub async fn require(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let Access::Tokens { admin_sha256 } = &s.access.access else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    let g = guard(&path, s.access.protect_metrics);
    if g == Guard::Open {
        return next.run(req).await;
    }
    let console = path.starts_with("/ui");
    let Some(token) = request_token(req.headers()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            console,
            "no token: send `Authorization: Bearer <token>` (the weir CLI reads WEIR_TOKEN)",
        );
    };
    if token_hash(&token) == *admin_sha256 {
        return next.run(req).await;
    }
    let Guard::Tenant(tenant) = g else {
        return refuse(
            StatusCode::FORBIDDEN,
            console,
            "only the admin's token opens this path",
        );
    };
    let state = match load_tenant(s.store.as_ref(), tenant).await {
        Ok(state) => state,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    if state.accepts(&token) {
        return next.run(req).await;
    }
    refuse(
        StatusCode::FORBIDDEN,
        console,
        &format!("the token is not valid for tenant `{tenant}`"),
    )
}

fn refuse(status: StatusCode, console: bool, message: &str) -> Response {
    let mut r = super::ApiError(status, message.to_owned()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if console {
            // Lets a browser ask for the token (as the password).
            "Basic realm=\"weir\""
        } else {
            "Bearer"
        };
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_the_guard_its_owner_needs() {
        assert_eq!(guard("/healthz", false), Guard::Open);
        assert_eq!(guard("/readyz", true), Guard::Open);
        assert_eq!(guard("/metrics", false), Guard::Open);
        assert_eq!(guard("/metrics", true), Guard::Admin);
        assert_eq!(
            guard("/v1/tenants/alice/jobs", false),
            Guard::Tenant("alice")
        );
        assert_eq!(guard("/v1/tenants/alice", false), Guard::Tenant("alice"));
        assert_eq!(guard("/ui/t/bob/jobs/x", false), Guard::Tenant("bob"));
        assert_eq!(guard("/v1/admin/tenants", false), Guard::Admin);
        assert_eq!(guard("/ui", false), Guard::Admin);
        assert_eq!(guard("/ui/tenant", false), Guard::Admin);
        assert_eq!(guard("/ui/static/console.css", false), Guard::Open);
        assert_eq!(guard("/nothing", false), Guard::Admin);
        // An empty tenant token matches no tenant's state.
        assert_eq!(guard("/v1/tenants//jobs", false), Guard::Tenant(""));
    }

    #[test]
    fn a_token_comes_as_bearer_or_as_a_basic_password() {
        let mut h = HeaderMap::new();
        assert_eq!(request_token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(request_token(&h).as_deref(), Some("abc"));
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(request_token(&h), None);
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {basic}").parse().unwrap(),
        );
        assert_eq!(request_token(&h).as_deref(), Some("s3cret"));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(request_token(&h), None);
    }
}
