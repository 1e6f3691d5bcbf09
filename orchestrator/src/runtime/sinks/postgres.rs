//! The PostgreSQL sink: each output value is a JSON object whose fields name
//! columns; rows are upserted by the key columns. A replay after restore
//! writes the same rows with the same values (operators are deterministic),
//! so the table ends up as if every record was applied once.

use std::collections::HashMap;

use sqlx::PgPool;

use super::SinkError;
use crate::runtime::record::{DeadLetter, Output};

pub struct PgSink {
    pool: PgPool,
    table: String,
    /// The tenant's role, taken for every write.
    role: String,
    sql: String,
    key_columns: Vec<String>,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Where a tenant's sink tables live in a Weir installation whose own
/// schema is `weir_schema`: a schema and a role of their own, named
/// `<weir schema>_t_<tenant>` (both are per installation, so two
/// installations on one database share nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpace {
    pub schema: String,
    pub role: String,
}

impl TenantSpace {
    pub fn of(weir_schema: &str, tenant: &str) -> Self {
        let mut name = format!("{weir_schema}_t_{tenant}");
        if name.len() > 63 {
            // PostgreSQL names stop at 63 bytes; keep them distinct.
            use sha2::Digest;
            let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
            name = format!("{}_{}", &name[..40], &digest[..16]);
        }
        Self {
            schema: name.clone(),
            role: name,
        }
    }

    /// Creates the role (no login, no rights on Weir's schema) and the
    /// schema it owns, if missing. Needs a Weir database user that may
    /// create roles; serialised by an advisory lock, as tasks start at once.
    pub async fn provision(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&self.role)
            .execute(&mut *tx)
            .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&self.role)
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE ROLE {} NOLOGIN", quote(&self.role)))
                .execute(&mut *tx)
                .await?;
        }
        // Weir's user may then act as the role (a superuser always may).
        sqlx::query(&format!("GRANT {} TO CURRENT_USER", quote(&self.role)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}",
            quote(&self.schema),
            quote(&self.role)
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

impl PgSink {
    /// Provisions the tenant's space, reads the table's columns there and
    /// prepares the upsert. `table` is a bare name in the tenant's schema.
    pub async fn connect(
        pool: PgPool,
        tenant: &str,
        table: &str,
        key_columns: &[String],
    ) -> Result<Self, SinkError> {
        let err = |reason: String| SinkError {
            sink: format!("postgres:{table}"),
            reason,
        };
        if let Some(p) = crate::domain::job::sink_rules::table_problem(table) {
            return Err(err(p));
        }
        let weir_schema: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&pool)
            .await
            .map_err(|e| err(format!("cannot read Weir's schema: {e}")))?;
        let space = TenantSpace::of(&weir_schema, tenant);
        space.provision(&pool).await.map_err(|e| {
            err(format!(
                "cannot provision the tenant's schema `{}`: {e}",
                space.schema
            ))
        })?;
        let qualified = format!("{}.{}", quote(&space.schema), quote(table));
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
        )
        .bind(&qualified)
        .fetch_all(&pool)
        .await
        .map_err(|e| err(format!("table not found in schema `{}`: {e}", space.schema)))?;
        for k in key_columns {
            if !columns.contains(k) {
                return Err(err(format!(
                    "key column `{k}` is not a column of the table"
                )));
            }
        }
        let cols: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let keys: Vec<String> = key_columns.iter().map(|c| quote(c)).collect();
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !key_columns.contains(c))
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(c)))
            .collect();
        let on_conflict = if updates.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let sql = format!(
            "INSERT INTO {qualified} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{qualified}, $1) \
             ON CONFLICT ({keys}) {on_conflict}",
            cols = cols.join(", "),
            keys = keys.join(", "),
        );
        Ok(Self {
            pool,
            table: table.to_owned(),
            role: space.role,
            sql,
            key_columns: key_columns.to_vec(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn write(&mut self, outputs: &[Output]) -> Result<Vec<DeadLetter>, SinkError> {
        let mut rejected = Vec::new();
        // Last write per key wins within a batch: one statement cannot update a row twice.
        let mut rows: Vec<serde_json::Value> = Vec::with_capacity(outputs.len());
        let mut index: HashMap<String, usize> = HashMap::new();
        for out in outputs {
            let v: serde_json::Value = match serde_json::from_slice(&out.record.value) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => {
                    rejected.push(DeadLetter {
                        origin: out.origin.clone(),
                        record: out.record.clone(),
                        reason: "postgres sink: value is not a JSON object".into(),
                        module: format!("sink:postgres:{}", self.table),
                    });
                    continue;
                }
            };
            let key = self
                .key_columns
                .iter()
                .map(|k| v.get(k).map(|x| x.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            match index.get(&key) {
                Some(i) => rows[*i] = v,
                None => {
                    index.insert(key, rows.len());
                    rows.push(v);
                }
            }
        }
        if rows.is_empty() {
            return Ok(rejected);
        }
        let fail = |e: sqlx::Error| SinkError {
            sink: format!("postgres:{}", self.table),
            reason: e.to_string(),
        };
        // The write runs as the tenant's role: whatever the statement names,
        // it cannot touch Weir's schema or another tenant's.
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query(&format!("SET LOCAL ROLE {}", quote(&self.role)))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(&self.sql)
            .bind(serde_json::Value::Array(rows))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(rejected)
    }
}
