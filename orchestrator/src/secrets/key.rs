//! The key secrets are sealed with, and sealing itself: XChaCha20-Poly1305
//! with a random 192-bit nonce per value, and `tenant/name` as associated
//! data.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Why a key could not be read, or a value not sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")]
    BadKey,
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
    /// Wrong key, or the row was changed or moved to another tenant or name.
    #[error("the stored secret does not open with this key")]
    Tampered,
}

/// The 256-bit key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SecretKey(Key);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

fn aad(tenant: &str, name: &str) -> Vec<u8> {
    format!("weir-secret/{tenant}/{name}").into_bytes()
}

impl SecretKey {
    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::BadKey)?;
        if bytes.len() != 32 {
            return Err(KeyError::BadKey);
        }
        Ok(Self(*Key::from_slice(&bytes)))
    }

    /// Seals `value` for `tenant`'s secret `name`: (nonce, ciphertext).
    pub fn seal(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Random(e.to_string()))?;
        let sealed = XChaCha20Poly1305::new(&self.0)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad(tenant, name),
                },
            )
            .map_err(|_| KeyError::Tampered)?;
        Ok((nonce.to_vec(), sealed))
    }

    /// Opens what [`seal`](Self::seal) made for the same tenant and name.
    pub fn open(
        &self,
        tenant: &str,
        name: &str,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        if nonce.len() != 24 {
            return Err(KeyError::Tampered);
        }
        XChaCha20Poly1305::new(&self.0)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad(tenant, name),
                },
            )
            .map_err(|_| KeyError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_hex(&hex::encode([byte; 32])).unwrap()
    }

    #[test]
    fn a_value_opens_only_with_its_key_tenant_and_name() {
        let k = key(7);
        let (nonce, sealed) = k.seal("alice", "hook", b"Bearer s3cret").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "the value is not in clear"
        );
        assert_eq!(
            k.open("alice", "hook", &nonce, &sealed).unwrap(),
            b"Bearer s3cret"
        );
        for (tenant, name) in [("mallory", "hook"), ("alice", "other")] {
            assert!(matches!(
                k.open(tenant, name, &nonce, &sealed),
                Err(KeyError::Tampered)
            ));
        }
        assert!(key(8).open("alice", "hook", &nonce, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(k.open("alice", "hook", &nonce, &flipped).is_err());
        // Two seals of one value differ (fresh nonce).
        let (nonce2, sealed2) = k.seal("alice", "hook", b"Bearer s3cret").unwrap();
        assert_ne!((nonce, sealed), (nonce2, sealed2));
    }

    #[test]
    fn a_key_is_64_hex_digits() {
        assert!(SecretKey::from_hex(&"ab".repeat(32)).is_ok());
        assert!(SecretKey::from_hex(&format!(" {}\n", "ab".repeat(32))).is_ok());
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &"ab".repeat(33),
        ] {
            assert!(SecretKey::from_hex(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", key(1)), "SecretKey(…)");
    }
}
