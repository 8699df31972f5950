//! A model loaded for scoring: its session, its name and version, and how it takes batches.

use ort::session::Session;

use crate::error::OnnxError;
use crate::model_check::{check_model, ModelLayout};
use crate::predict::{ModelSource, ModelUpdate, TensorPredictConfig};

/// A model loaded on one instance.
pub(crate) struct Loaded {
    pub(crate) session: Session,
    /// Name and version, for messages: `digits v2`.
    pub(crate) model: String,
    pub(crate) version: u64,
    /// The batch axis and how each configured input's item is laid out.
    pub(crate) layout: ModelLayout,
}

/// `name vVERSION`, how messages name a model update.
pub(crate) fn model_name(update: &ModelUpdate) -> String {
    format!("{} v{}", update.name, update.version)
}

/// Loads a model update and checks it against the configured inputs and outputs.
pub(crate) fn load(
    update: &ModelUpdate,
    config: &TensorPredictConfig,
) -> Result<Loaded, OnnxError> {
    let model = model_name(update);
    let error = |reason: String| OnnxError::Model {
        model: model.clone(),
        reason,
    };
    let bytes = match &update.source {
        ModelSource::Bytes(b) => b.clone(),
        ModelSource::Path(p) => std::fs::read(p).map_err(|e| error(format!("{p}: {e}")))?,
    };
    let session = config.session.session(&bytes).map_err(error)?;
    let info = crate::ModelInfo::from_session(&session, &bytes)?;
    let layout = check_model(&info, config).map_err(error)?;
    Ok(Loaded {
        session,
        version: update.version,
        layout,
        model,
    })
}
