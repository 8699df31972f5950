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
/// `WEIRSNP2`: keyed state in columns ([`KeyedEntries`]); the first format is no longer read.
const MAGIC: &[u8; 8] = b"WEIRSNP2";
const HEADER: usize = 20;

/// One key of keyed state, borrowed from [`KeyedEntries`]: the hash that routes it, its
/// encoding, and its value's encoding (`None`: removed since the checkpoint this one builds
/// on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedEntry<'a> {
    /// [`crate::key_hash`] of the key.
    pub hash: u64,
    /// The key (bincode).
    pub key: &'a [u8],
    /// The value (bincode), or `None` for a removed key.
    pub value: Option<&'a [u8]>,
}

/// The keys of a keyed snapshot, in columns: a few large buffers rather than two small
/// ones per key, so that a million keys encode, decode and filter without a million
/// allocations.
///
/// On disk: the hashes as 8 little-endian bytes each, the key bytes and the value bytes as
/// byte strings, and a length per key and per value (a value's length plus one; 0 for a
/// removed key). Decoding checks that the lengths add up to the bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedEntries {
    hashes: Vec<u64>,
    /// Every key's bytes, one after the other; `key_ends[i]` is where key `i` ends.
    keys: Vec<u8>,
    key_ends: Vec<u64>,
    /// Every present value's bytes; `value_ends[i]` is where value `i` ends (equal to the
    /// previous end for a removed key).
    values: Vec<u8>,
    value_ends: Vec<u64>,
    /// Whether key `i` has a value (`false`: removed).
    present: Vec<bool>,
}

impl KeyedEntries {
    /// Room for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        KeyedEntries {
            hashes: Vec::with_capacity(n),
            key_ends: Vec::with_capacity(n),
            value_ends: Vec::with_capacity(n),
            present: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    /// Adds a key, encoding it and its value (bincode) straight into the buffers.
    pub fn push<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        hash: u64,
        key: &K,
        value: Option<&V>,
    ) -> Result<(), StateError> {
        let encode = |buffer: &mut Vec<u8>, v: &dyn erased::Encode| v.encode_into(buffer);
        encode(&mut self.keys, &key)?;
        if let Some(v) = value {
            encode(&mut self.values, &v)?;
        }
        self.hashes.push(hash);
        self.key_ends.push(self.keys.len() as u64);
        self.value_ends.push(self.values.len() as u64);
        self.present.push(value.is_some());
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> u64 {
        (self.keys.len() + self.values.len()) as u64
    }

    /// Checks that the columns agree (a decoded file may not), so that [`KeyedEntries::iter`]
    /// cannot index out of bounds.
    pub fn check(&self) -> Result<(), StateError> {
        let n = self.hashes.len();
        let monotonic = |ends: &[u64], len: usize| {
            ends.windows(2).all(|w| w[0] <= w[1]) && ends.last().is_none_or(|&e| e == len as u64)
        };
        if self.key_ends.len() != n
            || self.value_ends.len() != n
            || self.present.len() != n
            || !monotonic(&self.key_ends, self.keys.len())
            || !monotonic(&self.value_ends, self.values.len())
        {
            return Err(StateError::Decode(
                "keyed state columns do not agree".into(),
            ));
        }
        Ok(())
    }

    /// Every key, in order. Call [`KeyedEntries::check`] first on decoded entries.
    pub fn iter(&self) -> impl Iterator<Item = KeyedEntry<'_>> + '_ {
        self.iter_where(|_| true)
    }

    /// The keys whose hash passes `wanted`, in order (the others are skipped before their
    /// bytes are looked at).
    pub fn iter_where<'a>(
        &'a self,
        wanted: impl Fn(u64) -> bool + 'a,
    ) -> impl Iterator<Item = KeyedEntry<'a>> + 'a {
        let indices = (0..self.hashes.len()).filter(move |&i| wanted(self.hashes[i]));
        indices.map(move |i| {
            let key_start = if i == 0 {
                0
            } else {
                self.key_ends[i - 1] as usize
            };
            let value_start = if i == 0 {
                0
            } else {
                self.value_ends[i - 1] as usize
            };
            KeyedEntry {
                hash: self.hashes[i],
                key: &self.keys[key_start..self.key_ends[i] as usize],
                value: self.present[i]
                    .then(|| &self.values[value_start..self.value_ends[i] as usize]),
            }
        })
    }
}

/// [`KeyedEntries`] as written.
#[derive(Serialize)]
struct KeyedEntriesOut<'a> {
    #[serde(with = "serde_bytes")]
    hashes: &'a [u8],
    #[serde(with = "serde_bytes")]
    keys: &'a [u8],
    key_lens: Vec<u32>,
    #[serde(with = "serde_bytes")]
    values: &'a [u8],
    value_lens: Vec<u32>,
}

/// [`KeyedEntries`] as read.
#[derive(Deserialize)]
struct KeyedEntriesIn {
    #[serde(with = "serde_bytes")]
    hashes: Vec<u8>,
    #[serde(with = "serde_bytes")]
    keys: Vec<u8>,
    key_lens: Vec<u32>,
    #[serde(with = "serde_bytes")]
    values: Vec<u8>,
    value_lens: Vec<u32>,
}

impl Serialize for KeyedEntries {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let hashes: Vec<u8> = self.hashes.iter().flat_map(|h| h.to_le_bytes()).collect();
        let lens = |ends: &[u64]| -> Vec<u64> {
            let mut start = 0;
            ends.iter()
                .map(|&end| {
                    let len = end - start;
                    start = end;
                    len
                })
                .collect()
        };
        let value_lens = lens(&self.value_ends)
            .into_iter()
            .zip(&self.present)
            .map(|(len, &present)| if present { len as u32 + 1 } else { 0 })
            .collect();
        KeyedEntriesOut {
            hashes: &hashes,
            keys: &self.keys,
            key_lens: lens(&self.key_ends).into_iter().map(|l| l as u32).collect(),
            values: &self.values,
            value_lens,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KeyedEntries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = KeyedEntriesIn::deserialize(deserializer)?;
        let n = wire.key_lens.len();
        if wire.hashes.len() != n * 8 || wire.value_lens.len() != n {
            return Err(D::Error::custom("keyed state columns of different lengths"));
        }
        let ends = |lens: &mut dyn Iterator<Item = u64>, total: usize| -> Option<Vec<u64>> {
            let mut end = 0u64;
            let ends: Vec<u64> = lens
                .map(|len| {
                    end = end.saturating_add(len);
                    end
                })
                .collect();
            (end == total as u64).then_some(ends)
        };
        let key_ends = ends(
            &mut wire.key_lens.iter().map(|&l| u64::from(l)),
            wire.keys.len(),
        )
        .ok_or_else(|| D::Error::custom("key lengths do not add up to the key bytes"))?;
        let mut value_lens = wire
            .value_lens
            .iter()
            .map(|&l| u64::from(l.saturating_sub(1)));
        let value_ends = ends(&mut value_lens, wire.values.len())
            .ok_or_else(|| D::Error::custom("value lengths do not add up to the value bytes"))?;
        Ok(KeyedEntries {
            hashes: wire
                .hashes
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            keys: wire.keys,
            key_ends,
            values: wire.values,
            value_ends,
            present: wire.value_lens.iter().map(|&l| l > 0).collect(),
        })
    }
}

/// Encoding through a `dyn` value, so that [`KeyedEntries::push`] has one code path for keys
/// and values.
mod erased {
    use super::StateError;

    pub(super) trait Encode {
        fn encode_into(&self, buffer: &mut Vec<u8>) -> Result<(), StateError>;
    }

    impl<T: serde::Serialize + ?Sized> Encode for &T {
        fn encode_into(&self, buffer: &mut Vec<u8>) -> Result<(), StateError> {
            bincode::serde::encode_into_std_write(self, buffer, bincode::config::standard())
                .map(|_| ())
                .map_err(|e| StateError::Encode(e.to_string()))
        }
    }
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
        entries: KeyedEntries,
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
        let snapshot: WorkerSnapshot =
            decode_within(payload).map_err(|e| format!("undecodable payload: {e}"))?;
        for o in &snapshot.operators {
            if let StatePart::Keyed { entries, .. } = &o.part {
                entries
                    .check()
                    .map_err(|e| format!("operator `{}`: {e}", o.operator))?;
            }
        }
        Ok(snapshot)
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
                        entries: {
                            let mut entries = KeyedEntries::default();
                            entries.push(42, "k", Some(&7u64)).unwrap();
                            entries.push(43, "gone", None::<&u64>).unwrap();
                            entries
                        },
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
    fn keyed_columns_whose_lengths_do_not_add_up_are_refused() {
        let lying = KeyedEntriesOut {
            hashes: &[0; 16],
            keys: b"ab",
            key_lens: vec![1, 5],
            values: b"",
            value_lens: vec![0, 0],
        };
        let bytes = encode_part(&lying).unwrap();
        let e = decode_part::<KeyedEntries>(&bytes).unwrap_err();
        assert!(e.to_string().contains("key lengths do not add up"), "{e}");
        let mut entries = KeyedEntries::default();
        entries.push(7, "k", Some(&1u8)).unwrap();
        entries.push(8, "gone", None::<&u8>).unwrap();
        let back: KeyedEntries = decode_part(&encode_part(&entries).unwrap()).unwrap();
        assert_eq!(back, entries);
        assert_eq!(back.iter().nth(1).unwrap().value, None);
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
