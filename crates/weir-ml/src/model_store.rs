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
    /// The store address is not usable.
    #[error("model store address `{0}`: expected a directory path or redis://host:port[/db]")]
    Address(String),
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
    /// The model.
    pub model: LogisticModel,
    /// Feature means and variances of an online standard scaler, if one is used.
    pub scaler: Option<(Vec<f64>, Vec<f64>, u64)>,
}

const MAGIC: &[u8; 8] = b"WEIRCKPT";

impl Checkpoint {
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

    /// Decodes framed bytes, checking length and checksum; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err("not a Weir checkpoint (bad header)".into());
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        let payload = &bytes[20..];
        if payload.len() != len {
            return Err(format!(
                "truncated: {} of {len} payload bytes",
                payload.len()
            ));
        }
        if crc32fast::hash(payload) != crc {
            return Err("checksum mismatch".into());
        }
        bincode::serde::decode_from_slice(payload, bincode::config::standard())
            .map(|(c, _)| c)
            .map_err(|e| format!("undecodable payload: {e}"))
    }
}

/// Where checkpoints are kept.
pub trait ModelStore: Send + Sync {
    /// Saves a checkpoint under its version.
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    /// The stored versions, oldest first.
    fn versions(&self) -> Result<Vec<u64>, StoreError>;
    /// The raw bytes of a version.
    fn read(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// A description for logs (`dir:/path`, `redis://…`).
    fn describe(&self) -> String;

    /// The newest checkpoint that decodes; corrupt ones are skipped with a warning on stderr.
    fn latest(&self) -> Result<Option<Checkpoint>, StoreError> {
        for version in self.versions()?.into_iter().rev() {
            let Some(bytes) = self.read(version)? else {
                continue;
            };
            match Checkpoint::decode(&bytes) {
                Ok(c) => return Ok(Some(c)),
                Err(reason) => eprintln!(
                    "weir: model store {}: skipping checkpoint v{version}: {reason}",
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
        let path = self.path(version);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }
}

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
        self.client.get_connection().map_err(|e| self.error(e))
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
        redis::cmd("GET")
            .arg(format!("{}:v{version}", self.prefix))
            .query(&mut c)
            .map_err(|e| self.error(e))
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
