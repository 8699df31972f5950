//! Scoring without a dataflow: one loaded model and the predict operator's batching and
//! checks, for callers that gather records themselves (`weir serve`'s batcher).

use crate::error::OnnxError;
use crate::input_rows::InputRows;
use crate::loaded_model::{load, Loaded};
use crate::output_row::OutputRow;
use crate::predict::{ModelUpdate, TensorPredictConfig};
use crate::scorer::Scorer;

/// A model loaded with a [`TensorPredictConfig`], scoring batches of records exactly as the
/// predict operator does (same runs along the batch axis, same per-record checks, same
/// outputs), in the caller's thread.
///
/// ```no_run
/// use weir_onnx::{ModelRunner, ModelUpdate, TensorPredictConfig, TensorSpec};
/// let config = TensorPredictConfig {
///     inputs: vec![TensorSpec::f32("input")],
///     outputs: vec![TensorSpec::i64("label")],
///     ..TensorPredictConfig::default()
/// };
/// let mut runner = ModelRunner::load(&ModelUpdate::from_path("digits", 1, "digits.onnx"), config)?;
/// let labels = runner.score(
///     vec![vec![0.0f32; 64]],
///     |x, rows| rows.f32(0).extend_from_slice(x),
///     |_, out| out.i64(0)[0],
/// );
/// assert!(labels[0].is_ok());
/// # Ok::<(), weir_onnx::OnnxError>(())
/// ```
pub struct ModelRunner {
    model: Loaded,
    config: TensorPredictConfig,
}

impl ModelRunner {
    /// Loads `update` and checks it against `config` (as the operator does when a model
    /// arrives).
    pub fn load(update: &ModelUpdate, config: TensorPredictConfig) -> Result<Self, OnnxError> {
        let model = load(update, &config)?;
        Ok(ModelRunner { model, config })
    }

    /// The loaded model's version.
    pub fn version(&self) -> u64 {
        self.model.version
    }

    /// Scores `records`: `features` appends each record's items, `attach` builds its result
    /// from its outputs. A record that cannot be scored gets the reason, in the same words
    /// as the operator's dead letters. Results are in the order of `records`, except that
    /// records rejected before their run come first within it.
    pub fn score<T, U>(
        &mut self,
        records: Vec<T>,
        features: impl Fn(&T, &mut InputRows),
        attach: impl Fn(T, &OutputRow<'_>) -> U,
    ) -> Vec<Result<U, (T, String)>> {
        let reject = |record: T, reason: String, _version: u64| (record, reason);
        let scorer = Scorer {
            features: &features,
            attach: &attach,
            reject: &reject,
            config: &self.config,
            metrics: None,
        };
        scorer.score(&mut self.model, records, None)
    }
}
