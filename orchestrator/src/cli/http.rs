//! The CLI's side of the HTTP API: the tenant's base URL, GET and POST,
//! answers decoded into the API's own types ([`crate::api::types`]), and
//! failures mapped to exit codes.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::CliError;
use super::globals::Globals;
use crate::api::types::ErrorBody;

/// A client for one tenant's API paths (`{api_url}/v1/tenants/{tenant}/…`).
pub struct Api {
    http: reqwest::Client,
    base: String,
    tenant: String,
    timeout: Duration,
    token: Option<String>,
}

impl Api {
    pub fn new(g: &Globals) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: g.conn.api_url.trim_end_matches('/').to_owned(),
            tenant: g.tenant.clone(),
            timeout: g.timeout.get(),
            token: g.token.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/tenants/{}/{path}", self.base, self.tenant)
    }

    /// `GET` a tenant path.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("GET", &url, self.http.get(&url)).await
    }

    /// `GET` a tenant path with a query string.
    pub async fn get_with<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("GET", &url, self.http.get(&url).query(query))
            .await
    }

    /// Every page of a list paged by name (`limit`, `after`), in order.
    pub async fn get_all_by_name<T: DeserializeOwned>(
        &self,
        path: &str,
        name: impl Fn(&T) -> &str,
    ) -> Result<Vec<T>, CliError> {
        let mut page = crate::api::types::NamePage::default();
        let mut all = Vec::new();
        loop {
            let got: Vec<T> = self.get_with(path, &page).await?;
            let full = got.len() == page.limit();
            page.after = got.last().map(|i| name(i).to_owned());
            all.extend(got);
            if !full {
                return Ok(all);
            }
        }
    }

    /// `GET` an admin path (`{api_url}/v1/admin/…`).
    pub async fn get_admin<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = format!("{}/v1/admin/{path}", self.base);
        self.call("GET", &url, self.http.get(&url)).await
    }

    /// `PUT` a raw body to a tenant path.
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("PUT", &url, self.http.put(&url).body(body)).await
    }

    /// `PUT` to a tenant path with a query string, without a body.
    pub async fn put_with<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("PUT", &url, self.http.put(&url).query(query))
            .await
    }

    /// `POST` a raw body to a tenant path with a query string.
    pub async fn post_bytes_with<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
        body: Vec<u8>,
    ) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("POST", &url, self.http.post(&url).query(query).body(body))
            .await
    }

    /// Whether calls carry a token (a tenant's or the admin's).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `DELETE` a tenant path.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("DELETE", &url, self.http.delete(&url)).await
    }

    /// `POST` to a tenant path, without a body.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = self.url(path);
        self.call("POST", &url, self.http.post(&url)).await
    }

    /// `GET` a tenant path whose answer is bytes, not JSON (a module's component).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, CliError> {
        let url = self.url(path);
        let (status, body) = self.exchange("GET", &url, self.http.get(&url)).await?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(failure("GET", &url, status, &body))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CliError> {
        let (status, body) = self.exchange(method, url, req).await?;
        decode(method, url, status, &body)
    }

    /// Sends `req` with the token; the status and the whole body.
    async fn exchange(
        &self,
        method: &str,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, bytes::Bytes), CliError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.timeout(self.timeout).send().await.map_err(|e| {
            if e.is_timeout() {
                CliError::Timeout(format!(
                    "the Weir API at {} did not answer within {:?}",
                    self.base, self.timeout
                ))
            } else {
                CliError::Unreachable(format!("cannot reach the Weir API at {}: {e}", self.base))
            }
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            CliError::Unreachable(format!("the answer to {method} {url} broke off: {e}"))
        })?;
        Ok((status, body))
    }
}

/// A response as a `T`, or the error its status stands for: 4xx is bad
/// input, other failures mean the service is unavailable, and a success we
/// cannot read as `T` is unexpected (the CLI and the API disagree).
fn decode<T: DeserializeOwned>(
    method: &str,
    url: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, CliError> {
    if status.is_success() {
        let de = &mut serde_json::Deserializer::from_slice(body);
        return serde_path_to_error::deserialize(de)
            .map_err(|e| CliError::unexpected(format!("unexpected answer to {method} {url}"), e));
    }
    Err(failure(method, url, status, body))
}

/// The error a failed answer stands for: 4xx is bad input, the rest means
/// the service is unavailable; the message is the API's when it sent one.
fn failure(method: &str, url: &str, status: StatusCode, body: &[u8]) -> CliError {
    let message = serde_json::from_slice::<ErrorBody>(body).map(|b| b.error);
    if status.is_client_error() {
        CliError::Usage(message.unwrap_or_else(|_| format!("{status} from {method} {url}")))
    } else {
        CliError::Unreachable(format!(
            "{status}: {}",
            message.unwrap_or_else(|_| "request failed".to_owned())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::JobView;

    const URL: &str = "http://api/v1/tenants/t/jobs";

    fn code<T: DeserializeOwned + std::fmt::Debug>(status: u16, body: &str) -> i32 {
        let status = StatusCode::from_u16(status).unwrap();
        decode::<T>("GET", URL, status, body.as_bytes())
            .unwrap_err()
            .exit_code()
    }

    #[test]
    fn reads_the_api_types() {
        let jobs: Vec<JobView> = decode("GET", URL, StatusCode::OK, b"[]").unwrap();
        assert!(jobs.is_empty());
    }

    #[test]
    fn an_answer_of_another_shape_is_unexpected_and_says_where() {
        let body = r#"[{"tenant":"t","name":"j","phase":"runnin"}]"#;
        let e = decode::<Vec<JobView>>("GET", URL, StatusCode::OK, body.as_bytes()).unwrap_err();
        assert_eq!(e.exit_code(), 5);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("unexpected answer to GET {URL}: [0].phase")),
            "{text}"
        );
        assert_eq!(code::<Vec<JobView>>(200, "<html>"), 5);
    }

    #[test]
    fn error_statuses_map_to_usage_or_unreachable() {
        let e = decode::<()>(
            "GET",
            URL,
            StatusCode::NOT_FOUND,
            br#"{"error":"job `x` not found"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string().as_str()),
            (2, "job `x` not found")
        );
        assert_eq!(code::<()>(400, "not json"), 2);
        let e = decode::<()>(
            "GET",
            URL,
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"error":"pg down"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string().as_str()),
            (3, "503 Service Unavailable: pg down")
        );
        assert_eq!(code::<()>(502, ""), 3);
    }
}
