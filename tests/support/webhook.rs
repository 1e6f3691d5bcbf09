//! A local webhook receiver for tests of notifications.

/// What the receiver got: `(Idempotency-Key, JSON body)` per POST.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook receiver: answers each POST with the next status of `script`
/// (then 200), recording the `Idempotency-Key` header and the JSON body.
pub async fn receiver(script: Vec<u16>) -> (String, Seen) {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
    let (s, sc) = (seen.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::Json<serde_json::Value>| {
                let (s, sc) = (s.clone(), sc.clone());
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    s.lock().unwrap().push((key, body.0));
                    let code = sc.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}
