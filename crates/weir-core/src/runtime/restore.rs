//! Finding the checkpoint a job restores from, once per process before the workers start.

use std::sync::Arc;

use crate::config::CheckpointConfig;
use crate::error::WeirError;
use crate::state::registry::Restored;
use crate::state::store::CheckpointDir;

/// The newest complete checkpoint in the job's checkpoint directory (with its chain), or
/// `None` for a fresh start. Damaged or half-written checkpoints are reported and skipped.
pub(crate) fn load(config: &CheckpointConfig) -> Result<Option<Arc<Restored>>, WeirError> {
    let error = |e: crate::state::StateError| WeirError::Checkpoint(e.to_string());
    let dir = CheckpointDir::open(&config.dir).map_err(error)?;
    let started = std::time::Instant::now();
    let (chain, skipped) = dir.restorable().map_err(error)?;
    for reason in &skipped {
        tracing::warn!("skipping a checkpoint: {reason}");
    }
    let Some(chain) = chain else {
        return Ok(None);
    };
    let snapshots = chain
        .iter()
        .map(|m| dir.load(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    let restored = Restored { chain, snapshots };
    let m = restored.manifest();
    if m.final_ {
        tracing::info!(
            "checkpoint {} in {} is the final one of a completed job",
            m.id,
            config.dir.display()
        );
    } else {
        tracing::info!(
            "restoring from checkpoint {} (epoch {}) in {}, read in {} ms",
            m.id,
            m.epoch,
            config.dir.display(),
            started.elapsed().as_millis()
        );
    }
    Ok(Some(Arc::new(restored)))
}
