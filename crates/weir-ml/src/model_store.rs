//! Model checkpoints and where they are kept: a local directory of atomically written,
//! versioned files (the embedded default) or Redis. Every checkpoint is framed with a
//! checksum; a corrupt or truncated one is skipped, with a warning, in favour of the previous.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ps_training::LogisticModel;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory store could not read or write.
    #[error("model store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Redis refused or could not be reached.
    #[error("redis model store {url}: {source}")]
    Redis {
        /// The store's URL.
        url: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A checkpoint could not be encoded.
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    /// One stored version cannot be read (not a regular file, no permission); the others
    /// may be fine.
    #[error("model store {store}: checkpoint v{version} cannot be read: {reason}")]
    Unreadable {
        /// The store.
        store: String,
        /// The version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// A stored value is larger than [`CHECKPOINT_LIMIT`].
    #[error("model store {store}: checkpoint v{version} has {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The store.
        store: String,
        /// The version.
        version: u64,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: usize,
    },
    /// The store address is not usable.
    #[error("model store address `{0}`: expected a directory path or redis://host:port[/db]")]
    Address(String),
}

/// Largest version number and record count a checkpoint may have (2^62): numbering goes
/// on after the newest version without overflowing.
pub const MAX_VERSION: u64 = 1 << 62;

/// The largest mean a scaler may hold for a feature. Standardized features then stay within
/// a 32-bit float (a decoded mean of 3.4e37 turned every probability into NaN).
pub const MAX_MEAN: f64 = 1e15;

/// Largest checkpoint a store reads and decodes (a value that claims more is refused
/// before it is read).
pub const CHECKPOINT_LIMIT: usize = 256 << 20;

/// Feature statistics of an online standard scaler (Welford's running mean and sum of
/// squared deviations): the part of a model that standardizes its input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalerState {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Sum of squared deviations from the mean, per feature.
    pub m2: Vec<f64>,
    /// Vectors seen.
    pub count: u64,
}

impl ScalerState {
    /// Mean and standard deviation of feature `i` as used to standardize: mean 0 and
    /// deviation 1 until two vectors were seen, deviation 1 where there is no spread.
    pub fn mean_and_std(&self, i: usize) -> (f64, f64) {
        let (mean, var) = match (self.mean.get(i), self.count) {
            (Some(m), n) if n > 1 => (*m, self.m2[i] / (n - 1) as f64),
            _ => (0.0, 1.0),
        };
        (mean, if var > 1e-12 { var.sqrt() } else { 1.0 })
    }

    /// `(x - mean) / std`, feature by feature.
    pub fn transform(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(i, v)| {
                let (mean, std) = self.mean_and_std(i);
                ((*v as f64 - mean) / std) as f32
            })
            .collect()
    }

    /// Checks that the statistics cover `features` features and are finite.
    pub fn validate(&self, features: usize) -> Result<(), String> {
        if self.mean.len() != features || self.m2.len() != features {
            return Err(format!(
                "the scaler has {} means and {} deviations for {features} features",
                self.mean.len(),
                self.m2.len()
            ));
        }
        if let Some(i) = (0..features).find(|&i| {
            !self.mean[i].is_finite()
                || self.mean[i].abs() > MAX_MEAN
                || !self.m2[i].is_finite()
                || self.m2[i] < 0.0
        }) {
            return Err(format!(
                "the scaler's statistics of feature {i} are not finite, non-negative and within \
                 bounds (mean {}, at most ±{MAX_MEAN:e}; m2 {})",
                self.mean[i], self.m2[i]
            ));
        }
        Ok(())
    }
}

/// A model and what it had seen when it was saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Increases with every checkpoint of a training job (and across its restarts).
    pub version: u64,
    /// Records trained on so far.
    pub records: u64,
    /// Metrics at save time (accuracy, log loss, …).
    pub metrics: BTreeMap<String, f64>,
    /// What trained it (`sgd`, `ftrl`, …; [`crate::OnlineClassifier::kind`]).
    pub learner: String,
    /// The model.
    pub model: LogisticModel,
    /// The standard scaler the model's input goes through first, if it was trained with one.
    pub scaler: Option<ScalerState>,
}

const MAGIC: &[u8; 8] = b"WEIRCKP2";
/// The first format, without learner and with an untyped scaler: no longer read.
const MAGIC_V1: &[u8; 8] = b"WEIRCKPT";

impl Checkpoint {
    /// Checks that the checkpoint is usable: a consistent, finite model, and a scaler (if
    /// any) for exactly its features.
    pub fn validate(&self) -> Result<(), String> {
        if self.version > MAX_VERSION || self.records > MAX_VERSION {
            return Err(format!(
                "version {} or record count {} is beyond {MAX_VERSION}",
                self.version, self.records
            ));
        }
        self.model.validate()?;
        if let Some(scaler) = &self.scaler {
            scaler.validate(self.model.features)?;
        }
        Ok(())
    }

    /// Class probabilities for raw features `x` (standardized first if the model has a
    /// scaler), as the trainer computed them.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        match &self.scaler {
            Some(scaler) => self.model.probabilities(&scaler.transform(x)),
            None => self.model.probabilities(x),
        }
    }

    /// The most likely class for raw features `x`.
    pub fn predict(&self, x: &[f32]) -> usize {
        let p = self.probabilities(x);
        (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// The framed bytes: magic, payload length, CRC-32 of the payload, payload (bincode).
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        let mut bytes = Vec::with_capacity(20 + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Decodes framed bytes, checking length, checksum and then the checkpoint itself
    /// ([`Checkpoint::validate`]); nothing inside may claim more than [`CHECKPOINT_LIMIT`]
    /// bytes. The error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
            return Err("a checkpoint of format 1, which this version no longer reads".into());
        }
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err("not a Weir checkpoint (bad header)".into());
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let payload = &bytes[20..];
        if payload.len() as u64 != len {
            return Err(format!(
                "truncated: {} of {len} payload bytes",
                payload.len()
            ));
        }
        if crc32fast::hash(payload) != crc {
            return Err("checksum mismatch".into());
        }
        let checkpoint: Checkpoint = crate::wire::decode_bounded(payload, CHECKPOINT_LIMIT)
            .map_err(|e| format!("undecodable payload: {e}"))?;
        checkpoint
            .validate()
            .map_err(|e| format!("inconsistent model: {e}"))?;
        Ok(checkpoint)
    }
}

/// Where checkpoints are kept.
pub trait ModelStore: Send + Sync {
    /// Saves a checkpoint under its version.
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// The stored versions, oldest first.
    fn versions(&self) -> Result<Vec<u64>, StoreError>;
    /// The raw bytes of a version (`None` if it is gone); a value larger than
    /// [`CHECKPOINT_LIMIT`] is an error, and is not read whole.
    fn read(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// A description for logs (`dir:/path`, `redis://…`).
    fn describe(&self) -> String;

    /// The newest checkpoint that decodes; corrupt ones are skipped with a warning on stderr.
    /// A store that cannot be read is an error, never "no checkpoint".
    fn latest(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.latest_compatible(&|_| Ok(()))
    }

    /// The newest checkpoint that decodes and that `accept` takes; the others are skipped
    /// with the reason on stderr, and the next older one is tried.
    fn latest_compatible(
        &self,
        accept: &dyn Fn(&Checkpoint) -> Result<(), String>,
    ) -> Result<Option<Checkpoint>, StoreError> {
        for version in self.versions()?.into_iter().rev() {
            let bytes = match self.read(version) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e @ (StoreError::TooLarge { .. } | StoreError::Unreadable { .. })) => {
                    tracing::warn!(
                        "model store {}: skipping checkpoint v{version}: {e}",
                        self.describe()
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            let named = |c: Checkpoint| {
                if c.version == version {
                    Ok(c)
                } else {
                    Err(format!(
                        "stored as v{version}, it says it is v{}",
                        c.version
                    ))
                }
            };
            match Checkpoint::decode(&bytes)
                .and_then(named)
                .and_then(|c| accept(&c).map(|_| c))
            {
                Ok(c) => return Ok(Some(c)),
                Err(reason) => tracing::warn!(
                    "model store {}: skipping checkpoint v{version}: {reason}",
                    self.describe()
                ),
            }
        }
        Ok(None)
    }
}

/// Checkpoints as files `model-<version>.ckpt` in a directory, written to a temporary file,
/// synced, then renamed, so a reader never sees half a file.
#[derive(Clone, Debug)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// A store in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(DirStore { dir })
    }

    /// The file of `version`.
    pub fn path(&self, version: u64) -> PathBuf {
        self.dir.join(format!("model-{version:010}.ckpt"))
    }
}

impl ModelStore for DirStore {
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        use std::io::Write;
        let path = self.path(checkpoint.version);
        let tmp = path.with_extension("ckpt.tmp");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&checkpoint.encode()?).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    fn versions(&self) -> Result<Vec<u64>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| StoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut versions: Vec<u64> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("model-")?
                    .strip_suffix(".ckpt")?
                    .parse()
                    .ok()
            })
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    fn read(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(version);
        let unreadable = |reason: String| StoreError::Unreadable {
            store: self.describe(),
            version,
            reason,
        };
        // Non-blocking: a FIFO planted under the name must not hang the reader.
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let size = match file.metadata() {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Err(unreadable("not a regular file".into())),
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let mut bytes = Vec::with_capacity(size.min(CHECKPOINT_LIMIT as u64) as usize + 1);
        // Read one byte past the limit, to tell "at the limit" from "over it".
        file.take(CHECKPOINT_LIMIT as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        if bytes.len() > CHECKPOINT_LIMIT {
            let size = std::fs::metadata(&path).map_or(bytes.len() as u64, |m| m.len());
            return Err(StoreError::TooLarge {
                store: self.describe(),
                version,
                bytes: size,
                limit: CHECKPOINT_LIMIT,
            });
        }
        Ok(Some(bytes))
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }
}

/// How long a Redis store waits to connect, and for each reply.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checkpoints in Redis: the bytes under `<prefix>:v<version>`, the versions in the sorted
/// set `<prefix>:versions`.
pub struct RedisStore {
    url: String,
    client: redis::Client,
    prefix: String,
}

impl RedisStore {
    /// Connects lazily to `url` (`redis://host:port[/db]`); keys start with `prefix`.
    pub fn open(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|source| StoreError::Redis {
            url: url.to_string(),
            source,
        })?;
        Ok(RedisStore {
            url: url.to_string(),
            client,
            prefix: prefix.to_string(),
        })
    }

    fn error(&self, source: redis::RedisError) -> StoreError {
        StoreError::Redis {
            url: self.url.clone(),
            source,
        }
    }

    fn connection(&self) -> Result<redis::Connection, StoreError> {
        // A Redis that accepts and never answers must not hang the trainer or `weir serve`.
        let connection = self
            .client
            .get_connection_with_timeout(REDIS_TIMEOUT)
            .map_err(|e| self.error(e))?;
        connection
            .set_read_timeout(Some(REDIS_TIMEOUT))
            .and_then(|_| connection.set_write_timeout(Some(REDIS_TIMEOUT)))
            .map_err(|e| self.error(e))?;
        Ok(connection)
    }

    /// Overwrites the stored bytes of `version` (to test corruption handling).
    pub fn put_raw(&self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut c = self.connection()?;
        redis::pipe()
            .set(format!("{}:v{version}", self.prefix), bytes)
            .zadd(format!("{}:versions", self.prefix), version, version as f64)
            .query::<()>(&mut c)
            .map_err(|e| self.error(e))
    }
}

impl ModelStore for RedisStore {
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.put_raw(checkpoint.version, &checkpoint.encode()?)
    }

    fn versions(&self) -> Result<Vec<u64>, StoreError> {
        let mut c = self.connection()?;
        redis::cmd("ZRANGE")
            .arg(format!("{}:versions", self.prefix))
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .map_err(|e| self.error(e))
    }

    fn read(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.connection()?;
        let key = format!("{}:v{version}", self.prefix);
        // GETRANGE reads at most the limit (+1 byte to notice a larger value).
        let (exists, bytes): (bool, Vec<u8>) = redis::pipe()
            .exists(&key)
            .getrange(&key, 0, CHECKPOINT_LIMIT as isize)
            .query(&mut c)
            .map_err(|e| self.error(e))?;
        if !exists {
            return Ok(None);
        }
        if bytes.len() > CHECKPOINT_LIMIT {
            let size: u64 = redis::cmd("STRLEN")
                .arg(&key)
                .query(&mut c)
                .map_err(|e| self.error(e))?;
            return Err(StoreError::TooLarge {
                store: self.describe(),
                version,
                bytes: size,
                limit: CHECKPOINT_LIMIT,
            });
        }
        Ok(Some(bytes))
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.url, self.prefix)
    }
}

/// Opens `address`: `redis://…` is Redis (keys under `weir:model`), anything else a directory.
pub fn open_store(address: &str) -> Result<Box<dyn ModelStore>, StoreError> {
    if address.starts_with("redis://") || address.starts_with("rediss://") {
        return Ok(Box::new(RedisStore::open(address, "weir:model")?));
    }
    if address.is_empty() {
        return Err(StoreError::Address(address.into()));
    }
    Ok(Box::new(DirStore::open(Path::new(address))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ps_training::MAX_PARAMETER;

    fn checkpoint(mean: f64, weight: f32) -> Checkpoint {
        let mut model = LogisticModel::zeros(3, 4);
        model.weights[5] = weight;
        Checkpoint {
            version: 7,
            records: 1000,
            metrics: BTreeMap::new(),
            learner: "sgd".into(),
            model,
            scaler: Some(ScalerState {
                mean: vec![mean, 0.1, 0.1, 0.1],
                m2: vec![2.0, 2.0, 0.0, 0.0],
                count: 201,
            }),
        }
    }

    #[test]
    fn checkpoints_whose_probabilities_could_overflow_are_refused() {
        // Found by the wire fuzz test: finite statistics, NaN probabilities.
        let c = checkpoint(3.402823669209385e37, 0.5);
        assert!(c
            .validate()
            .unwrap_err()
            .contains("mean 34028236692093850000000000000000000000"));
        let c = checkpoint(0.1, 1e30);
        assert!(c
            .validate()
            .unwrap_err()
            .starts_with("weight 5 is 1000000000000000000000000000000"));
        let c = checkpoint(MAX_MEAN, MAX_PARAMETER);
        c.validate().unwrap();
        assert!(c.probabilities(&[0.5; 4]).iter().all(|p| p.is_finite()));
    }
}
