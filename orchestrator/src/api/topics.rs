//! Topics: `PUT /v1/tenants/{t}/topics/{topic}` creates one, `GET` describes
//! it, `POST …/records` produces lines and `GET …/records` reads a page of a
//! partition. `weir serve` talks to the broker for the tenant, and only on
//! topics the tenant may use (its `<tenant>.` namespace and its grants, the
//! rule its jobs follow), so tenants need no access to the broker.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use super::types::{
    ProduceQuery, Produced, ReadQuery, RecordsPage, TopicCreateQuery, TopicCreated, TopicView,
};
use super::{ApiError, ApiState};
use crate::domain::Tenant;
use crate::intake::auth::Access;
use crate::runtime::topics::{self, TopicError};

/// The most records one read returns, and the longest it waits.
pub const MAX_READ: usize = 1_000;
pub const MAX_WAIT_MS: u64 = 10_000;
/// The largest body one produce takes.
pub const MAX_PRODUCE_BYTES: usize = 8 << 20;

fn broker_error(e: TopicError) -> ApiError {
    match e {
        TopicError::NoSuchTopic(_) | TopicError::NoSuchPartition { .. } => {
            ApiError(StatusCode::NOT_FOUND, e.to_string())
        }
        TopicError::Broker { .. } => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Kafka's own rule for names: 1-249 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
fn name_problem(topic: &str) -> Option<String> {
    let ok_chars = topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if topic.is_empty() || topic.len() > 249 || !ok_chars || topic == "." || topic == ".." {
        Some(format!(
            "`{topic}` is not a topic name: use 1-249 of A-Z a-z 0-9 . _ - (not `.` or `..`)"
        ))
    } else {
        None
    }
}

/// The brokers, once `tenant` may use `topic`.
async fn gate(s: &ApiState, tenant: String, topic: &str) -> Result<String, ApiError> {
    let tenant =
        Tenant::new(tenant).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    if let Some(p) = name_problem(topic) {
        return Err(ApiError(StatusCode::BAD_REQUEST, p));
    }
    let Some(brokers) = s.kafka_brokers.clone() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "this `weir serve` has no Kafka brokers configured".into(),
        ));
    };
    if s.access.access != Access::InsecureDev {
        let state = crate::intake::auth::load_tenant(s.store.as_ref(), tenant.as_str()).await?;
        if let Some(p) = state.topic_problem(tenant.as_str(), topic) {
            return Err(ApiError(StatusCode::FORBIDDEN, p));
        }
    }
    Ok(brokers)
}

fn blocking_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the Kafka client thread failed: {e}"),
    )
}

pub async fn create(
    State(s): State<ApiState>,
    Path((tenant, topic)): Path<(String, String)>,
    Query(q): Query<TopicCreateQuery>,
) -> Result<Json<TopicCreated>, ApiError> {
    let brokers = gate(&s, tenant.clone(), &topic).await?;
    let (partitions, retention) = q
        .checked()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let created = topics::create(&brokers, &topic, partitions, retention)
        .await
        .map_err(broker_error)?;
    tracing::info!(%tenant, %topic, partitions, created, "topic create");
    Ok(Json(TopicCreated { topic, created }))
}

pub async fn show(
    State(s): State<ApiState>,
    Path((tenant, topic)): Path<(String, String)>,
) -> Result<Json<TopicView>, ApiError> {
    let brokers = gate(&s, tenant, &topic).await?;
    let t = topic.clone();
    let partitions = tokio::task::spawn_blocking(move || topics::describe(&brokers, &t))
        .await
        .map_err(blocking_failed)?
        .map_err(broker_error)?;
    Ok(Json(TopicView { topic, partitions }))
}

pub async fn produce(
    State(s): State<ApiState>,
    Path((tenant, topic)): Path<(String, String)>,
    Query(q): Query<ProduceQuery>,
    body: Bytes,
) -> Result<Json<Produced>, ApiError> {
    let brokers = gate(&s, tenant.clone(), &topic).await?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the body is not UTF-8 text (one record per line): {e}"),
        )
    })?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let t = topic.clone();
    let produced = tokio::task::spawn_blocking(move || {
        topics::produce_lines(
            &brokers,
            &t,
            lines.iter().map(String::as_str),
            q.key_field.as_deref(),
        )
    })
    .await
    .map_err(blocking_failed)?
    .map_err(broker_error)?;
    tracing::info!(%tenant, %topic, produced, "topic produce");
    Ok(Json(Produced { produced }))
}

pub async fn read(
    State(s): State<ApiState>,
    Path((tenant, topic)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<RecordsPage>, ApiError> {
    let brokers = gate(&s, tenant, &topic).await?;
    let limit = q.limit.unwrap_or(100).min(MAX_READ);
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    let (t, partition, offset) = (topic.clone(), q.partition, q.offset.unwrap_or(0));
    let records = tokio::task::spawn_blocking(move || {
        topics::read(&brokers, &t, partition, offset, limit, wait)
    })
    .await
    .map_err(blocking_failed)?
    .map_err(broker_error)?;
    let next_offset = records.last().map_or(offset, |r| r.offset + 1);
    Ok(Json(RecordsPage {
        records,
        next_offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_s_rule() {
        assert_eq!(name_problem("alice.orders-1_x"), None);
        for bad in ["", ".", "..", "a/b", "a b", "ä", &"x".repeat(250)] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
