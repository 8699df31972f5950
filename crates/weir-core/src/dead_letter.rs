//! Dead letters: malformed records, kept with the reason instead of crashing a worker.

use serde::{Deserialize, Serialize};

/// A record an operator could not process, with where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The operator that rejected the record.
    pub operator: String,
    /// Where the record came from, e.g. `data/events.jsonl:17`.
    pub location: String,
    /// Why it was rejected (serde's message for decoding errors).
    pub reason: String,
    /// The raw record, as far as it could be recovered.
    pub raw: String,
}

impl DeadLetter {
    /// Longest `raw` a dead letter keeps, in bytes; a longer record is cut, with a note
    /// saying how long it was.
    pub const MAX_RAW_BYTES: usize = 4096;
}

impl std::fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.operator, self.location, self.reason)
    }
}
