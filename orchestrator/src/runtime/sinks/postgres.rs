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
    sql: String,
    key_columns: Vec<String>,
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

impl PgSink {
    /// Reads the table's columns and prepares the upsert. `table` may be
    /// `schema.table`; names are letters, digits and `_`.
    pub async fn connect(
        pool: PgPool,
        table: &str,
        key_columns: &[String],
    ) -> Result<Self, SinkError> {
        let err = |reason: String| SinkError {
            sink: format!("postgres:{table}"),
            reason,
        };
        let (schema, name) = match table.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, table),
        };
        if !valid_ident(name) || schema.is_some_and(|s| !valid_ident(s)) {
            return Err(err("table names are letters, digits and '_'".into()));
        }
        let qualified = match schema {
            Some(s) => format!("{}.{}", quote(s), quote(name)),
            None => quote(name),
        };
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
        )
        .bind(&qualified)
        .fetch_all(&pool)
        .await
        .map_err(|e| err(format!("table not found: {e}")))?;
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
        sqlx::query(&self.sql)
            .bind(serde_json::Value::Array(rows))
            .execute(&self.pool)
            .await
            .map_err(|e| SinkError {
                sink: format!("postgres:{}", self.table),
                reason: e.to_string(),
            })?;
        Ok(rejected)
    }
}
