//! The module registry: uploaded UDF modules as a [`ModuleSource`]
//! ([`RegistryModules`]), resolved into runtime operators ([`resolver`]) and
//! warmed on workers ([`warm`]).
//!
//! Bytes live in one NATS JetStream Object Store bucket per tenant
//! (`<PREFIX>_MODULES_<TENANT>`).
//!
//! Objects are named `<module>/<version>/<sha256 hex>`, so an upload that
//! the command handler later refuses (a duplicate version with other bytes)
//! can never overwrite the bytes of the version that exists. Every download
//! is checked against the digest and size recorded in the `module_uploaded`
//! event: the handler stays pure and trusts the uploader's digest, and no
//! worker ever loads bytes that do not match it.

mod modules;
pub mod resolver;
mod source;
pub mod warm;

use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncReadExt;

use crate::wasm::digest_of;
pub use modules::RegistryModules;
pub use source::{FetchedModule, ModuleError, ModuleSource, StaticModules};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("object store bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
    #[error("storing {object} in {bucket}: {message}")]
    Put {
        bucket: String,
        object: String,
        message: String,
    },
    #[error("module object {object} not found in {bucket}: {message}")]
    NotFound {
        bucket: String,
        object: String,
        message: String,
    },
    #[error("module object {object} is corrupt: expected {expected_digest} ({expected_size} bytes), got {actual_digest} ({actual_size} bytes)")]
    DigestMismatch {
        object: String,
        expected_digest: String,
        expected_size: u64,
        actual_digest: String,
        actual_size: u64,
    },
}

/// The bucket holding a tenant's modules.
pub fn bucket_name(subject_prefix: &str, tenant: &str) -> String {
    let up = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}_MODULES_{}", up(subject_prefix), up(tenant))
}

/// The object name of one version's bytes.
pub fn object_name(module: &str, version: &str, digest: &str) -> String {
    format!(
        "{module}/{version}/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

/// The `module.register` payload for `version` of a validated module.
pub fn register_payload(version: &str, info: &crate::wasm::ModuleInfo) -> serde_json::Value {
    serde_json::json!({
        "version": version,
        "digest": info.digest,
        "size": info.size,
        "interface": info.interface,
        "module_kind": info.kind,
        "sdk_version": info.sdk_version,
    })
}

/// A tenant's module bytes.
pub struct ModuleBytes {
    store: object_store::ObjectStore,
    bucket: String,
}

impl ModuleBytes {
    /// Opens the tenant's bucket, creating it on first use.
    pub async fn open(
        js: &jetstream::Context,
        subject_prefix: &str,
        tenant: &str,
    ) -> Result<Self, RegistryError> {
        let bucket = bucket_name(subject_prefix, tenant);
        let err = |e: &dyn std::fmt::Display| RegistryError::Bucket {
            bucket: bucket.clone(),
            message: e.to_string(),
        };
        let store = match js.get_object_store(&bucket).await {
            Ok(s) => s,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    description: Some(format!("Weir UDF modules of tenant {tenant}")),
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&e))?,
        };
        Ok(Self { store, bucket })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores the bytes of `module@version` (named by their digest).
    pub async fn put(
        &self,
        module: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let object = object_name(module, version, &digest_of(bytes));
        let mut reader = bytes;
        self.store
            .put(object.as_str(), &mut reader)
            .await
            .map_err(|e| RegistryError::Put {
                bucket: self.bucket.clone(),
                object: object.clone(),
                message: e.to_string(),
            })?;
        Ok(object)
    }

    /// Removes an object [`put`](Self::put) stored (a refused upload's).
    pub async fn delete(&self, object: &str) -> Result<(), RegistryError> {
        self.store
            .delete(object)
            .await
            .map_err(|e| RegistryError::Put {
                bucket: self.bucket.clone(),
                object: object.to_owned(),
                message: e.to_string(),
            })
    }

    /// Downloads `module@version` and checks it against the recorded digest and size.
    pub async fn get(
        &self,
        module: &str,
        version: &str,
        digest: &str,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let object = object_name(module, version, digest);
        let mut obj = self
            .store
            .get(&object)
            .await
            .map_err(|e| RegistryError::NotFound {
                bucket: self.bucket.clone(),
                object: object.clone(),
                message: e.to_string(),
            })?;
        let limit = size as usize + 1;
        let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
        (&mut obj)
            .take(limit as u64)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| RegistryError::NotFound {
                bucket: self.bucket.clone(),
                object: object.clone(),
                message: e.to_string(),
            })?;
        let actual = digest_of(&bytes);
        if actual != digest || bytes.len() as u64 != size {
            return Err(RegistryError::DigestMismatch {
                object,
                expected_digest: digest.to_owned(),
                expected_size: size,
                actual_digest: actual,
                actual_size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}
