//! The PostgreSQL event store.
//!
//! `commit` runs the steps of the command path (docs/architecture.md) in one transaction, for a whole batch:
//! expected-version checks as conditional updates, then the gap-free position
//! (a single-row counter, locked last so the lock is held briefly), then the
//! events and the dedupe rows with their outcomes. Streams are touched in
//! sorted order so two replicas can never deadlock on each other.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{
    outcome_for, Decision, EventStore, ReadFilter, StoreError, StoredEvent, StreamKey, StreamState,
    StreamSummary,
};
use crate::domain::{Outcome, StreamId};

/// The embedded migrations in `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// PostgreSQL-backed [`EventStore`].
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e)
}

/// Maps database errors to the typed conflict errors callers retry on.
fn classify(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error() {
        match db.code().as_deref() {
            Some("23505") if db.constraint() == Some("commands_pkey") => {
                return StoreError::DuplicateCommand(Uuid::nil());
            }
            Some("23505") | Some("40001") | Some("40P01") => {
                return StoreError::Conflict {
                    stream: db.constraint().unwrap_or("unknown").to_owned(),
                    expected: 0,
                };
            }
            _ => {}
        }
    }
    StoreError::Unavailable(e)
}

impl PgStore {
    /// Connects, creates `schema` if needed and applies the migrations there.
    pub async fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        let pool = pool(url, schema, 8).await?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => StoreError::Unavailable(e),
            other => StoreError::Corrupt(format!("migration failed: {other}")),
        })?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Cheap liveness check for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Every tenant that has a stream, by name (the console's front page).
    pub async fn tenants(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT tenant FROM streams ORDER BY tenant")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }
}

/// A pool whose connections use `schema` as their search path. Lazy: it does
/// not fail when the database is down, so `serve` can start and wait for it.
/// Every job whose snapshot passes `condition` (SQL over the `streams`
/// row, e.g. `snapshot->>'phase' = 'running'`; a constant, never input),
/// across tenants, as `(tenant, job, state)`. A snapshot that does not read
/// is skipped with a warning.
pub async fn job_states(
    pool: &PgPool,
    condition: &'static str,
) -> Result<Vec<(String, String, crate::domain::job::JobState)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT tenant, stream_id, snapshot FROM streams
         WHERE kind = 'job' AND snapshot IS NOT NULL AND ({condition})
         ORDER BY tenant, stream_id"
    ))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let tenant: String = r.try_get("tenant").map_err(unavailable)?;
        let stream: String = r.try_get("stream_id").map_err(unavailable)?;
        let snapshot: serde_json::Value = r.try_get("snapshot").map_err(unavailable)?;
        match serde_json::from_value(snapshot) {
            Ok(state) => {
                let job = stream.strip_prefix("job.").unwrap_or(&stream).to_owned();
                out.push((tenant, job, state));
            }
            Err(e) => {
                tracing::warn!(%tenant, %stream, error = %e, "a job snapshot that does not read is skipped")
            }
        }
    }
    Ok(out)
}

/// Every tenant that was ever created, by name.
pub async fn tenant_states(
    pool: &PgPool,
) -> Result<Vec<(String, crate::domain::tenant::TenantState)>, StoreError> {
    let rows = sqlx::query(
        "SELECT tenant, snapshot FROM streams
         WHERE kind = 'tenant' AND snapshot IS NOT NULL
         ORDER BY tenant",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let tenant: String = r.try_get("tenant").map_err(unavailable)?;
        let snapshot: serde_json::Value = r.try_get("snapshot").map_err(unavailable)?;
        let state = serde_json::from_value(snapshot)
            .map_err(|e| StoreError::Corrupt(format!("tenant `{tenant}` snapshot: {e}")))?;
        out.push((tenant, state));
    }
    Ok(out)
}

pub async fn pool(url: &str, schema: &str, max: u32) -> Result<PgPool, StoreError> {
    if schema.is_empty()
        || !schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(StoreError::Corrupt(format!(
            "database schema `{schema}` must be letters, digits and '_'"
        )));
    }
    let opts = PgConnectOptions::from_str(url)
        .map_err(unavailable)?
        .options([("search_path", schema)]);
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(opts))
}

fn summary_of(r: &sqlx::postgres::PgRow) -> Result<StreamSummary, StoreError> {
    Ok(StreamSummary {
        stream: r.try_get("stream_id").map_err(unavailable)?,
        version: r.try_get::<i64, _>("version").map_err(unavailable)? as u64,
        snapshot: r.try_get("snapshot").map_err(unavailable)?,
        updated_at: r.try_get("updated_at").map_err(unavailable)?,
    })
}

fn row_to_event(r: &sqlx::postgres::PgRow) -> Result<StoredEvent, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(StoredEvent {
        position: r.try_get("position").map_err(get)?,
        tenant: r.try_get("tenant").map_err(get)?,
        stream: r.try_get("stream_id").map_err(get)?,
        stream_version: r.try_get::<i64, _>("stream_version").map_err(get)? as u64,
        event_type: r.try_get("event_type").map_err(get)?,
        payload: r.try_get("payload").map_err(get)?,
        command_id: r.try_get("command_id").map_err(get)?,
        actor: r.try_get("actor").map_err(get)?,
        recorded_at: r.try_get("recorded_at").map_err(get)?,
    })
}

const EVENT_COLUMNS: &str =
    "position, tenant, stream_id, stream_version, event_type, payload, command_id, actor, recorded_at";

impl EventStore for PgStore {
    async fn stored_outcomes(
        &self,
        ids: &[(String, Uuid)],
    ) -> Result<HashMap<(String, Uuid), Outcome>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (tenants, uuids): (Vec<String>, Vec<Uuid>) = ids.iter().cloned().unzip();
        let rows = sqlx::query(
            "SELECT c.tenant, c.command_id, c.outcome FROM commands c
             JOIN UNNEST($1::text[], $2::uuid[]) AS q(tenant, command_id)
               ON c.tenant = q.tenant AND c.command_id = q.command_id",
        )
        .bind(&tenants)
        .bind(&uuids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let tenant: String = r.try_get("tenant").map_err(unavailable)?;
            let id: Uuid = r.try_get("command_id").map_err(unavailable)?;
            let outcome: serde_json::Value = r.try_get("outcome").map_err(unavailable)?;
            let outcome: Outcome = serde_json::from_value(outcome)
                .map_err(|e| StoreError::Corrupt(format!("outcome of command {id}: {e}")))?;
            out.insert((tenant, id), outcome);
        }
        Ok(out)
    }

    async fn load_streams(
        &self,
        keys: &[StreamKey],
    ) -> Result<HashMap<StreamKey, StreamState>, StoreError> {
        let tenants: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
        let streams: Vec<&str> = keys.iter().map(|(_, s)| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT s.tenant, s.stream_id, s.version, s.snapshot FROM streams s
             JOIN UNNEST($1::text[], $2::text[]) AS q(tenant, stream_id)
               ON s.tenant = q.tenant AND s.stream_id = q.stream_id",
        )
        .bind(&tenants)
        .bind(&streams)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = HashMap::with_capacity(keys.len());
        for r in rows {
            let tenant: String = r.try_get("tenant").map_err(unavailable)?;
            let stream: String = r.try_get("stream_id").map_err(unavailable)?;
            let version: i64 = r.try_get("version").map_err(unavailable)?;
            let snapshot: Option<serde_json::Value> = r.try_get("snapshot").map_err(unavailable)?;
            out.insert(
                (tenant, StreamId::from_raw(stream)),
                StreamState {
                    version: version as u64,
                    snapshot,
                },
            );
        }
        Ok(out)
    }

    async fn commit(&self, decisions: Vec<Decision>) -> Result<Vec<Outcome>, StoreError> {
        // Fold the batch per stream: first expected version, last version and snapshot.
        struct StreamChange {
            kind: String,
            expected: u64,
            last: u64,
            snapshot: serde_json::Value,
        }
        let mut changes: BTreeMap<(String, String), StreamChange> = BTreeMap::new();
        let mut event_count = 0usize;
        for d in &decisions {
            if let Decision::Accepted {
                meta,
                stream,
                expected_version,
                events,
                snapshot,
            } = d
            {
                event_count += events.len();
                let last = expected_version + events.len() as u64;
                changes
                    .entry((meta.tenant.clone(), stream.to_string()))
                    .and_modify(|c| {
                        c.last = last;
                        c.snapshot = snapshot.clone();
                    })
                    .or_insert(StreamChange {
                        kind: stream.kind().to_owned(),
                        expected: *expected_version,
                        last,
                        snapshot: snapshot.clone(),
                    });
            }
        }

        let mut tx = self.pool.begin().await.map_err(unavailable)?;

        // Expected-version checks: existing streams by conditional update, new ones by insert.
        let (mut u_t, mut u_s, mut u_e, mut u_v, mut u_snap) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut i_t, mut i_s, mut i_k, mut i_v, mut i_snap) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((tenant, stream), c) in &changes {
            if c.expected == 0 {
                i_t.push(tenant.as_str());
                i_s.push(stream.as_str());
                i_k.push(c.kind.as_str());
                i_v.push(c.last as i64);
                i_snap.push(c.snapshot.clone());
            } else {
                u_t.push(tenant.as_str());
                u_s.push(stream.as_str());
                u_e.push(c.expected as i64);
                u_v.push(c.last as i64);
                u_snap.push(c.snapshot.clone());
            }
        }
        if !u_t.is_empty() {
            let updated = sqlx::query(
                "UPDATE streams s SET version = u.last, snapshot = u.snapshot, updated_at = now()
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::jsonb[])
                      AS u(tenant, stream_id, expected, last, snapshot)
                 WHERE s.tenant = u.tenant AND s.stream_id = u.stream_id AND s.version = u.expected",
            )
            .bind(&u_t)
            .bind(&u_s)
            .bind(&u_e)
            .bind(&u_v)
            .bind(&u_snap)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if updated.rows_affected() != u_t.len() as u64 {
                return Err(StoreError::Conflict {
                    stream: u_s.join(","),
                    expected: u_e.first().copied().unwrap_or(0) as u64,
                });
            }
        }
        if !i_t.is_empty() {
            let inserted = sqlx::query(
                "INSERT INTO streams (tenant, stream_id, kind, version, snapshot)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[])
                 ON CONFLICT DO NOTHING",
            )
            .bind(&i_t)
            .bind(&i_s)
            .bind(&i_k)
            .bind(&i_v)
            .bind(&i_snap)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
            if inserted.rows_affected() != i_t.len() as u64 {
                return Err(StoreError::Conflict {
                    stream: i_s.join(","),
                    expected: 0,
                });
            }
        }

        // Last: take the positions. The row lock is held until commit.
        let mut first_position = 0i64;
        if event_count > 0 {
            let last: i64 = sqlx::query_scalar(
                "UPDATE event_position SET last = last + $1 WHERE only_row RETURNING last",
            )
            .bind(event_count as i64)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
            first_position = last - event_count as i64 + 1;
        }

        let mut outcomes = Vec::with_capacity(decisions.len());
        let (mut e_pos, mut e_t, mut e_s, mut e_v, mut e_ty, mut e_p, mut e_c, mut e_a) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        let (mut c_t, mut c_id, mut c_k, mut c_tg, mut c_o) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut next = first_position;
        for d in &decisions {
            let meta = d.meta();
            let outcome = match d {
                Decision::Accepted {
                    stream,
                    expected_version,
                    events,
                    ..
                } => {
                    for (i, e) in events.iter().enumerate() {
                        e_pos.push(next + i as i64);
                        e_t.push(meta.tenant.as_str());
                        e_s.push(stream.as_str());
                        e_v.push((expected_version + 1 + i as u64) as i64);
                        e_ty.push(e.event_type.as_str());
                        e_p.push(e.payload.clone());
                        e_c.push(meta.command_id);
                        e_a.push(meta.actor.as_str());
                    }
                    let o = outcome_for(d, next, expected_version + events.len() as u64);
                    next += events.len() as i64;
                    o
                }
                Decision::Rejected { .. } => outcome_for(d, 0, 0),
            };
            c_t.push(meta.tenant.as_str());
            c_id.push(meta.command_id);
            c_k.push(meta.kind.as_str());
            c_tg.push(meta.target.as_str());
            c_o.push(
                serde_json::to_value(&outcome)
                    .map_err(|e| StoreError::Corrupt(format!("outcome encoding: {e}")))?,
            );
            outcomes.push(outcome);
        }
        if !e_pos.is_empty() {
            sqlx::query(
                "INSERT INTO events (position, tenant, stream_id, stream_version, event_type, payload, command_id, actor)
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::jsonb[], $7::uuid[], $8::text[])",
            )
            .bind(&e_pos)
            .bind(&e_t)
            .bind(&e_s)
            .bind(&e_v)
            .bind(&e_ty)
            .bind(&e_p)
            .bind(&e_c)
            .bind(&e_a)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        if !c_t.is_empty() {
            sqlx::query(
                "INSERT INTO commands (tenant, command_id, kind, target, outcome)
                 SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[])",
            )
            .bind(&c_t)
            .bind(&c_id)
            .bind(&c_k)
            .bind(&c_tg)
            .bind(&c_o)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(outcomes)
    }

    async fn read_stream(
        &self,
        tenant: &str,
        stream: &StreamId,
        after_version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE tenant = $1 AND stream_id = $2 AND stream_version > $3
             ORDER BY stream_version"
        ))
        .bind(tenant)
        .bind(stream.as_str())
        .bind(after_version as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(row_to_event).collect()
    }

    async fn read_all(
        &self,
        filter: ReadFilter<'_>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE position > $1
               AND ($2::text IS NULL OR tenant = $2)
               AND ($3::text IS NULL OR stream_id = $3)
             ORDER BY position LIMIT $4"
        ))
        .bind(after)
        .bind(filter.tenant)
        .bind(filter.stream)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(row_to_event).collect()
    }

    async fn stream_summary(
        &self,
        tenant: &str,
        stream: &StreamId,
    ) -> Result<Option<StreamSummary>, StoreError> {
        let row = sqlx::query(
            "SELECT stream_id, version, snapshot, updated_at FROM streams
             WHERE tenant = $1 AND stream_id = $2",
        )
        .bind(tenant)
        .bind(stream.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(summary_of).transpose()
    }

    async fn list_streams(
        &self,
        tenant: &str,
        kind: &str,
    ) -> Result<Vec<StreamSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream_id, version, snapshot, updated_at FROM streams
             WHERE tenant = $1 AND kind = $2 ORDER BY stream_id",
        )
        .bind(tenant)
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(summary_of).collect()
    }

    async fn count_streams(&self, tenant: &str, kind: &str) -> Result<u64, StoreError> {
        // Answered from the (tenant, kind, stream_id) index; no snapshot is read.
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM streams WHERE tenant = $1 AND kind = $2")
                .bind(tenant)
                .bind(kind)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(n.max(0) as u64)
    }

    async fn count_streams_not_in_phase(
        &self,
        tenant: &str,
        kind: &str,
        phase: &str,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM streams WHERE tenant = $1 AND kind = $2
               AND (snapshot->>'phase') IS DISTINCT FROM $3",
        )
        .bind(tenant)
        .bind(kind)
        .bind(phase)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(n.max(0) as u64)
    }

    async fn streams_in_phases(
        &self,
        tenant: &str,
        kind: &str,
        phases: &[&str],
    ) -> Result<Vec<StreamSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream_id, version, snapshot, updated_at FROM streams
             WHERE tenant = $1 AND kind = $2 AND snapshot->>'phase' = ANY($3)
             ORDER BY stream_id",
        )
        .bind(tenant)
        .bind(kind)
        .bind(phases)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(summary_of).collect()
    }

    async fn cursor(&self, relay: &str) -> Result<i64, StoreError> {
        let pos: Option<i64> =
            sqlx::query_scalar("SELECT position FROM outbox_cursors WHERE relay = $1")
                .bind(relay)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(pos.unwrap_or(0))
    }

    async fn set_cursor(&self, relay: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox_cursors (relay, position) VALUES ($1, $2)
             ON CONFLICT (relay) DO UPDATE SET position = GREATEST(outbox_cursors.position, EXCLUDED.position)",
        )
        .bind(relay)
        .bind(position)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}
