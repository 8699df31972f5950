//! The job secret: a 32-byte key shared by every process of one job, with which they prove
//! to each other (and the ML cluster's nodes to the AM) that they belong to the job.
//! HMAC-SHA256 throughout; see `docs/security.md`.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The environment variable a job secret can come from: 64 hex digits (`weir launch` sets
/// it for the processes it starts).
pub const SECRET_ENV: &str = "WEIR_JOB_SECRET";

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The text is not 64 hex digits.
    #[error("a job secret is 64 hex digits; got {0} characters that are not")]
    Malformed(usize),
    /// `WEIR_JOB_SECRET` is set but malformed.
    #[error("{SECRET_ENV}: {0}")]
    Environment(Box<SecretError>),
    /// The operating system gave no random numbers.
    #[error("no secure random numbers: {0}")]
    Random(String),
}

/// The shared key of one job. Every process of the job must hold the same one. `Debug`
/// does not print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSecret([u8; 32]);

impl JobSecret {
    /// A fresh random secret from the operating system.
    pub fn generate() -> Result<Self, SecretError> {
        Ok(JobSecret(random_bytes()?))
    }

    /// A secret from 64 hex digits.
    ///
    /// ```
    /// use weir_core::JobSecret;
    /// let secret = JobSecret::generate().unwrap();
    /// assert_eq!(JobSecret::from_hex(&secret.to_hex()).unwrap(), secret);
    /// assert!(JobSecret::from_hex("abc").is_err());
    /// assert_eq!(format!("{secret:?}"), "JobSecret(…)");
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bad = || SecretError::Malformed(text.chars().count());
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(JobSecret(bytes))
    }

    /// The secret as 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The secret in [`SECRET_ENV`], if that is set.
    pub fn from_env() -> Result<Option<Self>, SecretError> {
        match std::env::var(SECRET_ENV) {
            Ok(text) => Self::from_hex(&text)
                .map(Some)
                .map_err(|e| SecretError::Environment(Box::new(e))),
            Err(_) => Ok(None),
        }
    }

    /// `HMAC-SHA256(secret, parts…)`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(&self.0, parts)
    }

    /// Whether `tag` is `HMAC-SHA256(secret, parts…)`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        verify(&self.0, parts, tag)
    }
}

impl fmt::Debug for JobSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobSecret(…)")
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    parts.iter().for_each(|p| m.update(p));
    m
}

/// `HMAC-SHA256(key, parts…)`.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac(key, parts).finalize().into_bytes().into()
}

/// Whether `tag` is `HMAC-SHA256(key, parts…)`, compared in constant time.
pub fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    hmac(key, parts).verify_slice(tag).is_ok()
}

/// 32 random bytes from the operating system (nonces, secrets).
pub fn random_bytes() -> Result<[u8; 32], SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}
