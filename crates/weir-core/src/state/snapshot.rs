//! What one worker writes for one checkpoint: the state of every operator instance it
//! hosts, as bytes in a framed, checksummed file.
//!
//! State comes in three shapes, so that a checkpoint can be restored at another parallelism:
//! - **keyed** entries carry the hash that routes their key, so every worker of the restored
//!   job takes exactly the keys it now owns;
//! - **splits** are pieces of work (a byte range of a file, a run of generator indices) that
//!   can be dealt to any instance;
//! - **instance** state belongs to one instance and is restored to the instance of the same
//!   index (or, for state every instance holds alike, to all of them).

use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// The frame of a worker file: magic, payload length, CRC-32 of the payload, payload.
const MAGIC: &[u8; 8] = b"WEIRSNAP";
const HEADER: usize = 20;

/// One key of keyed state: the hash that routes it, its encoding, and its value's encoding
/// (`None`: removed since the checkpoint this one builds on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedEntry {
    /// [`crate::key_hash`] of the key.
    pub hash: u64,
    /// The key (bincode).
    pub key: Vec<u8>,
    /// The value (bincode), or `None` for a removed key.
    pub value: Option<Vec<u8>>,
}

/// The state of one operator instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StatePart {
    /// Keyed state. `full`: every live key; otherwise only keys changed since the previous
    /// checkpoint (removed ones with `value: None`).
    Keyed {
        /// Whether this is every live key.
        full: bool,
        /// The entries.
        entries: Vec<KeyedEntry>,
    },
    /// Pieces of work that any instance can take over (bincode each).
    Splits(Vec<Vec<u8>>),
    /// The state of this instance alone (bincode).
    Instance(Vec<u8>),
}

/// One operator instance's state in a worker file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    /// The operator's name (its identity across restores, like Flink's `uid`).
    pub operator: String,
    /// The instance, among the operator's instances when the checkpoint was taken.
    pub instance: usize,
    /// The state.
    pub part: StatePart,
}

/// Everything one worker wrote for one checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    /// The checkpoint.
    pub checkpoint: u64,
    /// The global worker index.
    pub worker: usize,
    /// The state of the operator instances on the worker.
    pub operators: Vec<OperatorState>,
}

impl WorkerSnapshot {
    /// The framed bytes.
    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        let payload = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| StateError::Encode(e.to_string()))?;
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Decodes framed bytes, checking the frame and the checksum; nothing inside may claim
    /// more bytes than the file has. The error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<WorkerSnapshot, String> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not a Weir state file (bad header)".into());
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let payload = &bytes[HEADER..];
        if payload.len() as u64 != len {
            return Err(format!(
                "truncated: {} of {len} payload bytes",
                payload.len()
            ));
        }
        if crc32fast::hash(payload) != crc {
            return Err("checksum mismatch".into());
        }
        decode_within(payload).map_err(|e| format!("undecodable payload: {e}"))
    }
}

/// Decodes with a bincode limit of the smallest tier that holds the payload: no length
/// inside can claim more.
fn decode_within<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    fn with<T: serde::de::DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<T, String> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<N>())
            .map(|(v, _)| v)
            .map_err(|e| e.to_string())
    }
    // Lengths in the payload count elements, and an element may decode into more memory
    // than it takes on disk (a bool into a word); 16x the payload leaves room for that.
    match payload.len() {
        n if n <= 64 << 10 => with::<T, { 1 << 20 }>(payload),
        n if n <= 1 << 20 => with::<T, { 16 << 20 }>(payload),
        n if n <= 16 << 20 => with::<T, { 256 << 20 }>(payload),
        n if n <= 256 << 20 => with::<T, { 4 << 30 }>(payload),
        _ => with::<T, { 64 << 30 }>(payload),
    }
}

/// Encodes a piece of state (a key, a value, a split) for a snapshot.
pub fn encode_part<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StateError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| StateError::Encode(e.to_string()))
}

/// Decodes a piece of state written by [`encode_part`].
pub fn decode_part<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    decode_within(bytes).map_err(StateError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WorkerSnapshot {
        WorkerSnapshot {
            checkpoint: 3,
            worker: 1,
            operators: vec![
                OperatorState {
                    operator: "counts".into(),
                    instance: 0,
                    part: StatePart::Keyed {
                        full: true,
                        entries: vec![KeyedEntry {
                            hash: 42,
                            key: encode_part("k").unwrap(),
                            value: Some(encode_part(&7u64).unwrap()),
                        }],
                    },
                },
                OperatorState {
                    operator: "src".into(),
                    instance: 1,
                    part: StatePart::Splits(vec![vec![1, 2, 3]]),
                },
            ],
        }
    }

    #[test]
    fn a_snapshot_round_trips_and_damage_is_named() {
        let bytes = sample().encode().unwrap();
        assert_eq!(WorkerSnapshot::decode(&bytes).unwrap(), sample());
        let truncated = WorkerSnapshot::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(truncated.contains("truncated"), "{truncated}");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(WorkerSnapshot::decode(&flipped)
            .unwrap_err()
            .contains("checksum"));
        assert!(WorkerSnapshot::decode(b"garbage")
            .unwrap_err()
            .contains("header"));
    }

    #[test]
    fn a_length_claim_beyond_the_payload_is_refused() {
        // A payload with a valid frame whose first vector claims 2^40 elements.
        let mut payload = vec![3u8, 1, 253];
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let e = WorkerSnapshot::decode(&bytes).unwrap_err();
        assert!(e.contains("undecodable"), "{e}");
    }
}
