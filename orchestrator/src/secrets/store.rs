//! Secrets in PostgreSQL, sealed. Without a key, nothing can be stored or
//! read, and the errors say how to give one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

use super::key::{KeyError, SecretKey};
use super::refs::valid_name;
use super::MAX_SECRET_BYTES;

/// Why a secret could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("this weir serve has no secret key: start it with WEIR_SECRET_KEY or --secret-key-file (64 hex digits)")]
    NoKey,
    #[error("`{0}` is not a secret name: use 1-64 of A-Z a-z 0-9 _ -")]
    BadName(String),
    #[error("the value is {0} bytes; a secret holds at most {MAX_SECRET_BYTES}")]
    TooLarge(usize),
    #[error("the value is not UTF-8 text")]
    NotText,
    #[error("secret `{name}`: {source}")]
    Key {
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("secret store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
}

/// A secret as listed: its name and when it was set, never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: DateTime<Utc>,
}

/// The `secrets` table, with the key.
#[derive(Debug, Clone)]
pub struct SecretStore {
    pool: PgPool,
    key: Option<SecretKey>,
}

impl SecretStore {
    pub fn new(pool: PgPool, key: Option<SecretKey>) -> Self {
        Self { pool, key }
    }

    fn key(&self) -> Result<&SecretKey, SecretError> {
        self.key.as_ref().ok_or(SecretError::NoKey)
    }

    /// Sets (or replaces) `tenant`'s secret `name`.
    pub async fn set(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
    ) -> Result<SecretInfo, SecretError> {
        if !valid_name(name) {
            return Err(SecretError::BadName(name.chars().take(80).collect()));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge(value.len()));
        }
        if std::str::from_utf8(value).is_err() {
            return Err(SecretError::NotText);
        }
        let (nonce, sealed) =
            self.key()?
                .seal(tenant, name, value)
                .map_err(|source| SecretError::Key {
                    name: name.to_owned(),
                    source,
                })?;
        let row = sqlx::query(
            "INSERT INTO secrets (tenant, name, nonce, ciphertext) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, name) DO UPDATE
               SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, updated_at = now()
             RETURNING updated_at",
        )
        .bind(tenant)
        .bind(name)
        .bind(nonce)
        .bind(sealed)
        .fetch_one(&self.pool)
        .await?;
        Ok(SecretInfo {
            name: name.to_owned(),
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// The tenant's secrets by name, without values.
    pub async fn list(&self, tenant: &str) -> Result<Vec<SecretInfo>, SecretError> {
        let rows =
            sqlx::query("SELECT name, updated_at FROM secrets WHERE tenant = $1 ORDER BY name")
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(SecretInfo {
                    name: r.try_get("name")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Deletes a secret; false if there was none.
    pub async fn delete(&self, tenant: &str, name: &str) -> Result<bool, SecretError> {
        let done = sqlx::query("DELETE FROM secrets WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The values of those of `names` the tenant has (absent ones are left out).
    pub async fn values(
        &self,
        tenant: &str,
        names: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, SecretError> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let key = self.key()?;
        let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
        let rows = sqlx::query(
            "SELECT name, nonce, ciphertext FROM secrets WHERE tenant = $1 AND name = ANY($2)",
        )
        .bind(tenant)
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let nonce: Vec<u8> = r.try_get("nonce")?;
            let sealed: Vec<u8> = r.try_get("ciphertext")?;
            let plain =
                key.open(tenant, &name, &nonce, &sealed)
                    .map_err(|source| SecretError::Key {
                        name: name.clone(),
                        source,
                    })?;
            let text = String::from_utf8(plain).map_err(|_| SecretError::NotText)?;
            out.insert(name, text);
        }
        Ok(out)
    }
}
