//! Durable state: keyed state that operators keep, checkpoints of every operator's state
//! taken at epoch boundaries, and the directory they are kept in. See
//! `docs/state-and-checkpoints.md` for the guarantees.

pub mod custom_state;
pub(crate) mod gate;
pub mod instance_state;
pub mod keyed_state;
pub(crate) mod registry;
mod slots;
pub mod snapshot;
pub mod store;

use std::path::PathBuf;

pub use custom_state::CustomState;
pub use instance_state::InstanceCheckpoint;
pub use keyed_state::{KeyedListState, KeyedMapState, KeyedState, StateTtl};
pub use registry::{Barrier, Checkpointed};
pub use snapshot::StatePart;

/// Why state could not be saved or restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A checkpoint file or directory could not be read or written.
    #[error("checkpoint I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint file does not hold what it should.
    #[error("checkpoint file {} is damaged: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// State could not be encoded.
    #[error("cannot encode state: {0}")]
    Encode(String),
    /// State could not be decoded.
    #[error("cannot decode state: {0}")]
    Decode(String),
}
