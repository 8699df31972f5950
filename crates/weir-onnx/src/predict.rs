//! The predict operator: scores a stream with an ONNX model held in the dataflow, one
//! session per instance, micro-batched per epoch, with models swapped live from a model
//! stream (broadcast to every instance).

use std::path::Path;
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use weir_core::state::InstanceCheckpoint;
use weir_core::{BatchOutcome, Data, DataStream, DeadLetter, Op, OperatorMetrics, StateWaker};

use crate::error::OnnxError;
use crate::input_rows::InputRows;
use crate::loaded_model::{load, model_name, Loaded};
use crate::output_row::OutputRow;
use crate::scorer::Scorer;
use crate::session_options::SessionOptions;
use crate::tensor::Tensor;
use crate::tensor_spec::TensorSpec;

/// Where a model's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    /// The `.onnx` file's contents.
    Bytes(Vec<u8>),
    /// A path readable by every worker.
    Path(String),
}

/// The largest model file Weir reads into memory from a directory it watches or a URI a
/// model topic names: 2 GiB, ONNX's protobuf limit.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// One update of the model stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUpdate {
    /// Model name (informational).
    pub name: String,
    /// Version; every prediction carries the version that made it.
    pub version: u64,
    /// The model.
    pub source: ModelSource,
    /// Load into the candidate slot (A/B or shadow) instead of the primary one.
    #[serde(default)]
    pub candidate: bool,
}

impl ModelUpdate {
    /// An update that loads `path`.
    pub fn from_path(name: impl Into<String>, version: u64, path: impl AsRef<Path>) -> Self {
        ModelUpdate {
            name: name.into(),
            version,
            source: ModelSource::Path(path.as_ref().display().to_string()),
            candidate: false,
        }
    }

    /// The same update, for the candidate slot.
    pub fn as_candidate(mut self) -> Self {
        self.candidate = true;
        self
    }
}

/// Class probabilities of one prediction: a vector that keeps up to 16 values inline.
/// It dereferences to `[f32]` and serializes as a sequence.
pub type Probabilities = smallvec::SmallVec<[f32; 16]>;

/// A scored record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction<T> {
    /// The input record.
    pub record: T,
    /// The predicted class.
    pub label: i64,
    /// Class probabilities (empty when the model has no probabilities output). Up to 16
    /// classes are stored inline, without an allocation per prediction.
    pub probabilities: Probabilities,
    /// Version of the model that scored the record.
    pub model_version: u64,
}

/// Which model scores which record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Serving {
    /// The primary model scores everything.
    Primary,
    /// Records whose key hash falls in the first `candidate_fraction` of the hash space go to
    /// the candidate model (once one is loaded); the rest to the primary. Deterministic by key.
    Split {
        /// Share of keys routed to the candidate, 0.0..=1.0.
        candidate_fraction: f64,
    },
    /// The primary scores and emits everything; the candidate scores the same rows and the
    /// operator counts agreement (`shadow_agree` / `shadow_disagree` in the job report).
    Shadow,
}

/// When a model update takes over from the model serving before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SwapPolicy {
    /// From the update's epoch on: records of that epoch and later wait (without blocking the
    /// worker) until the new model has loaded, and earlier records use the old one. The same
    /// input always gets the same versions.
    #[default]
    AtEpoch,
    /// The previous model keeps scoring until the new one has loaded, then the new one takes
    /// over between two batches: no stall at all, but where the switch falls depends on
    /// timing. Updates that queue up while a model loads and are followed by a later one of
    /// the same kind (primary or candidate) are skipped, not loaded (counted as
    /// `models_superseded`), so that a model stream faster than sessions build does not pile up.
    WhenLoaded,
}

/// How the operator talks to the model.
#[derive(Clone, Debug)]
pub struct PredictConfig {
    /// Name of the float32 `[N, F]` input.
    pub input: String,
    /// Name of the int64 `[N]` label output.
    pub label: String,
    /// Name of the float32 `[N, C]` probabilities output, if any.
    pub probabilities: Option<String>,
    /// Largest batch handed to one `Session::run`.
    pub max_batch: usize,
    /// ONNX Runtime intra-op threads per session (parallelism comes from workers).
    pub intra_threads: usize,
    /// Primary only, A/B split, or shadow.
    pub serving: Serving,
    /// When a new model version takes over.
    pub swap: SwapPolicy,
}

impl Default for PredictConfig {
    fn default() -> Self {
        PredictConfig {
            input: "input".into(),
            label: "label".into(),
            probabilities: Some("probabilities".into()),
            max_batch: 256,
            intra_threads: 1,
            serving: Serving::Primary,
            swap: SwapPolicy::AtEpoch,
        }
    }
}

impl PredictConfig {
    /// The general form of this configuration: input `input` (f32), outputs `label` (i64,
    /// one per record: `[N]` or `[N, 1]`) and, if set, `probabilities` (f32).
    pub fn tensors(&self) -> TensorPredictConfig {
        let mut outputs = vec![TensorSpec::i64(&self.label).with_width(1)];
        outputs.extend(self.probabilities.iter().map(TensorSpec::f32));
        TensorPredictConfig {
            inputs: vec![TensorSpec::f32(&self.input)],
            outputs,
            max_batch: self.max_batch,
            session: SessionOptions {
                intra_threads: self.intra_threads,
                ..SessionOptions::default()
            },
            serving: self.serving,
            swap: self.swap,
            ..TensorPredictConfig::default()
        }
    }
}

/// How records meet the model's batch axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Batching {
    /// A record is one item along the model's batch axis (its first dimension): records are
    /// stacked into runs of up to `max_batch` (a fixed batch of 1: one a run; a fixed batch
    /// of k: exactly k a run, the last one padded by repeating its last record, whose
    /// outputs are dropped). Every output must be one item per record.
    #[default]
    Rows,
    /// A record is one whole run: it gives every input's full tensor (with
    /// [`InputRows::push`] or [`InputRows::set_shape`]) and gets every output whole. For
    /// models without a batch axis, and for requests that already are batches (`weir
    /// predict --whole`, the serving protocols' columnar forms).
    Whole,
}

/// How [`PredictExt::predict_tensors`] talks to a model with any named inputs and outputs.
///
/// ```
/// use weir_onnx::{Batching, Tensor, TensorPredictConfig, TensorSpec};
/// // An image classifier: `[N, 1, 8, 8]` f32 pixels in, ZipMap probabilities out, and a
/// // per-run `temperature` constant.
/// let config = TensorPredictConfig {
///     inputs: vec![TensorSpec::f32("image")],
///     outputs: vec![TensorSpec::i64("label").with_width(1), TensorSpec::any("probabilities")],
///     constants: vec![("temperature".into(), Tensor::f32(vec![], vec![1.5]).unwrap())],
///     ..TensorPredictConfig::default()
/// };
/// assert_eq!(config.batching, Batching::Rows);
/// ```
#[derive(Clone, Debug)]
pub struct TensorPredictConfig {
    /// The inputs fed per record, in the order [`InputRows`] addresses them: at least one.
    /// Every input the model has is either fed here or given in `constants`. With
    /// [`Batching::Rows`] each must have the batch as its first dimension (see [`Batching`]).
    pub inputs: Vec<TensorSpec>,
    /// The outputs to read, in the order [`OutputRow`] addresses them: at least one. With
    /// [`Batching::Rows`] each must hold one item per record: a tensor whose first
    /// dimension is the batch, with at least one value per record, or a sequence with one
    /// element per record (ZipMap); this is checked when a model loads and on every run,
    /// whose records become dead letters if it returns anything else. With
    /// [`Serving::Shadow`], the first output is the one compared.
    pub outputs: Vec<TensorSpec>,
    /// Inputs that are not per record (a threshold, a scale, a weight matrix): fed as they
    /// are to every run.
    pub constants: Vec<(String, Tensor)>,
    /// Records as items of a batch, or as whole runs.
    pub batching: Batching,
    /// Largest batch handed to one `Session::run` (for a dynamic batch axis).
    pub max_batch: usize,
    /// Threads, graph optimisation, optimised-model cache, execution providers.
    pub session: SessionOptions,
    /// Primary only, A/B split, or shadow.
    pub serving: Serving,
    /// When a new model version takes over.
    pub swap: SwapPolicy,
}

impl Default for TensorPredictConfig {
    fn default() -> Self {
        TensorPredictConfig {
            inputs: Vec::new(),
            outputs: Vec::new(),
            constants: Vec::new(),
            batching: Batching::Rows,
            max_batch: 256,
            session: SessionOptions::default(),
            serving: Serving::Primary,
            swap: SwapPolicy::AtEpoch,
        }
    }
}

impl TensorPredictConfig {
    /// A configuration that feeds every input of the model `info` describes (with its
    /// element type, values pushed with [`InputRows::push`]) and reads every output (of
    /// any kind, see [`OutputRow::value`]): what `weir predict` and `weir serve` use.
    pub fn for_model(info: &crate::ModelInfo) -> Self {
        TensorPredictConfig {
            inputs: info
                .inputs
                .iter()
                .map(|t| TensorSpec::any(&t.name))
                .collect(),
            outputs: info
                .outputs
                .iter()
                .map(|t| TensorSpec::any(&t.name))
                .collect(),
            ..TensorPredictConfig::default()
        }
    }
}

/// A model update loaded (or rejected) by the loader thread.
struct LoadResult {
    candidate: bool,
    /// `name vVERSION` of the update.
    name: String,
    /// `None`: not loaded, since a later update of the same kind was already waiting
    /// ([`SwapPolicy::WhenLoaded`]).
    model: Option<Result<Loaded, OnnxError>>,
}

/// Loads model updates on a thread of its own, so that reading the file and building the
/// session never stall the worker; wakes the operator when a model is ready.
struct ModelLoader {
    requests: mpsc::Sender<ModelUpdate>,
    results: mpsc::Receiver<LoadResult>,
    in_flight: usize,
}

impl ModelLoader {
    fn start(operator: &str, config: TensorPredictConfig, waker: StateWaker) -> Self {
        let (requests, inbox) = mpsc::channel::<ModelUpdate>();
        let (outbox, results) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("weir-load-{operator}"))
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    // Everything queued meanwhile: with `WhenLoaded`, only the last primary
                    // and the last candidate update are loaded, so that updates coming faster
                    // than sessions build do not pile up behind each other.
                    let queued: Vec<ModelUpdate> =
                        std::iter::once(first).chain(inbox.try_iter()).collect();
                    let skip = superseded(&queued, config.swap);
                    for (update, skip) in queued.into_iter().zip(skip) {
                        let model = (!skip).then(|| load_caught(&update, &config));
                        let sent = outbox.send(LoadResult {
                            candidate: update.candidate,
                            name: model_name(&update),
                            model,
                        });
                        if sent.is_err() {
                            return;
                        }
                    }
                    waker.wake();
                }
            })
            .expect("spawn the model loader thread");
        ModelLoader {
            requests,
            results,
            in_flight: 0,
        }
    }

    /// Hands an update to the loader thread; false when the thread is gone.
    fn submit(&mut self, update: ModelUpdate) -> bool {
        let sent = self.requests.send(update).is_ok();
        if sent {
            self.in_flight += 1;
        }
        sent
    }
}

/// [`load`], with a panic inside it (in ONNX Runtime's bindings, say) turned into a rejection:
/// the loader thread goes on, and the operator does not wait for it forever.
fn load_caught(update: &ModelUpdate, config: &TensorPredictConfig) -> Result<Loaded, OnnxError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(update, config))).unwrap_or_else(
        |panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(OnnxError::Model {
                model: model_name(update),
                reason: format!("loading it panicked: {what}"),
            })
        },
    )
}

/// Which of the `queued` updates need not load: with [`SwapPolicy::WhenLoaded`], every one
/// but the last primary and the last candidate (each would serve only until the next loaded).
/// With [`SwapPolicy::AtEpoch`] none: each serves the records of its epochs.
fn superseded(queued: &[ModelUpdate], swap: SwapPolicy) -> Vec<bool> {
    let last = |candidate: bool| queued.iter().rposition(|u| u.candidate == candidate);
    let keep = [last(false), last(true)];
    (0..queued.len())
        .map(|i| swap == SwapPolicy::WhenLoaded && !keep.contains(&Some(i)))
        .collect()
}

/// The models an instance holds, and the loader that brings new ones.
struct Slots {
    primary: Option<Loaded>,
    candidate: Option<Loaded>,
    loader: ModelLoader,
    /// Why the last rejected primary update was rejected: `model digits v2 rejected: …`.
    last_rejection: Option<String>,
    /// The same for candidate updates.
    last_candidate_rejection: Option<String>,
    /// What checkpoints save: the updates of the installed models, and those submitted
    /// and not installed yet (in order).
    updates: ModelUpdates,
}

/// The model updates an instance holds, as checkpoints save them: a restored instance
/// submits them again, so it scores with the versions it had.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ModelUpdates {
    primary: Option<ModelUpdate>,
    candidate: Option<ModelUpdate>,
    pending: std::collections::VecDeque<ModelUpdate>,
}

impl Slots {
    /// Hands an update to the loader.
    fn submit(&mut self, update: ModelUpdate) {
        // Loaded in order: the result of each accepted update pops it (`install_loaded`).
        if self.loader.submit(update.clone()) {
            self.updates.pending.push_back(update);
        }
    }

    /// Loads again what a checkpoint saved (installed models first, then pending updates).
    fn restore(&mut self, saved: ModelUpdates) {
        let ModelUpdates {
            primary,
            candidate,
            pending,
        } = saved;
        for update in primary.into_iter().chain(candidate).chain(pending) {
            self.submit(update);
        }
    }

    /// Installs the models loaded since the last call, in update order; reports rejected ones.
    fn install_loaded(&mut self, operator: &str, metrics: &OperatorMetrics) {
        while let Ok(result) = self.loader.results.try_recv() {
            self.loader.in_flight -= 1;
            let update = self.updates.pending.pop_front();
            let Some(model) = result.model else {
                metrics.count("models_superseded", 1);
                continue;
            };
            match model {
                Ok(model) => {
                    metrics.count("models_loaded", 1);
                    if result.candidate {
                        self.candidate = Some(model);
                        self.updates.candidate = update;
                    } else {
                        self.primary = Some(model);
                        self.updates.primary = update;
                    }
                }
                Err(e) => {
                    metrics.count("models_rejected", 1);
                    let meanwhile = match (result.candidate, &self.primary, &self.candidate) {
                        (false, Some(_), _) => "the previous model keeps serving",
                        (false, None, _) => "no model is serving yet: records wait",
                        (true, _, Some(_)) => "the previous candidate stays",
                        (true, _, None) => "no candidate is loaded",
                    };
                    tracing::warn!("{operator}: rejected model update: {e}; {meanwhile}");
                    let reason = match e {
                        OnnxError::Model { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    let rejection = format!("model {} rejected: {reason}", result.name);
                    if result.candidate {
                        self.last_candidate_rejection = Some(format!("candidate {rejection}"));
                    } else {
                        self.last_rejection = Some(rejection);
                    }
                }
            }
        }
    }

    /// Why records cannot be scored while there is no primary model: the last primary
    /// update's rejection, or that none arrived.
    fn why_no_model(&self) -> String {
        if let Some(rejection) = &self.last_rejection {
            return rejection.clone();
        }
        match (&self.candidate, &self.last_candidate_rejection) {
            (Some(candidate), _) => format!(
                "only a candidate model ({}) has loaded; records wait for a primary one",
                candidate.model
            ),
            (None, Some(rejection)) => format!("no primary model update arrived ({rejection})"),
            (None, None) => "no model update arrived".into(),
        }
    }
}

/// Scoring with ONNX models, for any stream.
pub trait PredictExt<'s, T> {
    /// Scores every record with a classifier from `models` (see [`PredictConfig`]).
    /// `features(record, row)` appends the record's feature vector to `row`.
    ///
    /// Records wait until the first model has arrived. Models load on a background thread;
    /// with [`SwapPolicy::AtEpoch`] an update applies from its epoch on, and a batch never
    /// mixes versions. A model that fails to load or does not fit `config` is rejected
    /// (reported on stderr, counted as `models_rejected`) and the previous one keeps serving;
    /// fitting means: it has the configured input and outputs with their element types, no
    /// other input, the batch as the (dynamic) first dimension of each, and one label per
    /// record (see [`TensorPredictConfig`]). Records whose features have the wrong length or
    /// are not finite become dead letters (returned, and routed to the job's dead-letter
    /// output), and so do the records of a batch whose run fails or returns outputs that are
    /// not one row per record, and records still waiting for a first model when the model
    /// stream ends (saying why: the last rejection, or that no update arrived). The job
    /// report counts predictions per model version (`v1`, `v2`, …).
    fn predict(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        features: impl Fn(&T, &mut Vec<f32>) + 'static,
        config: PredictConfig,
    ) -> (DataStream<'s, Prediction<T>>, DataStream<'s, DeadLetter>);

    /// [`PredictExt::predict`] with a routing key, for [`Serving::Split`]: the same key always
    /// goes to the same model.
    fn predict_with_key(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        key: impl Fn(&T) -> u64 + 'static,
        features: impl Fn(&T, &mut Vec<f32>) + 'static,
        config: PredictConfig,
    ) -> (DataStream<'s, Prediction<T>>, DataStream<'s, DeadLetter>);

    /// Scores every record with a model of any signature: `features(record, rows)` appends
    /// the record's item to every configured input (typed columns of any element type, see
    /// [`InputRows`]); `attach(record, outputs)` builds the output record from the record and
    /// its item of every configured output ([`OutputRow`]: typed slices, shapes, ZipMap maps,
    /// owned values, and the model version). A record whose item has the wrong shape (the
    /// dead letter names the input, the expected and the actual shape) or a NaN where the
    /// input's [`NanPolicy`](crate::NanPolicy) rejects them becomes a dead letter. `key`
    /// routes records for [`Serving::Split`]. See [`TensorPredictConfig`] and [`Batching`]
    /// for what a model must declare. Otherwise as [`PredictExt::predict`].
    ///
    /// ```no_run
    /// # use weir_core::{execute, op, Config};
    /// use weir_onnx::{ModelUpdate, PredictExt, TensorPredictConfig, TensorSpec};
    /// # execute(Config::threads(1), |job| {
    /// let models = job.from_vec("models", vec![ModelUpdate::from_path("m", 1, "mixed_types.onnx")]);
    /// let records = job.from_vec("records", vec![(vec![1.0, 2.0, 3.0], vec![4i64, 5])]);
    /// let config = TensorPredictConfig {
    ///     inputs: vec![TensorSpec::f64("a"), TensorSpec::i64("b")],
    ///     outputs: vec![TensorSpec::f64("total"), TensorSpec::i64("count")],
    ///     ..TensorPredictConfig::default()
    /// };
    /// let (totals, _dead) = records.predict_tensors(
    ///     "score",
    ///     models,
    ///     |_| 0,
    ///     |(a, b), rows| {
    ///         rows.f64(0).extend_from_slice(a);
    ///         rows.i64(1).extend_from_slice(b);
    ///     },
    ///     |_, out| (out.f64(0)[0], out.i64(1)[0], out.model_version()),
    ///     config,
    /// );
    /// # Ok(()) }).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn predict_tensors<U: Data>(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        key: impl Fn(&T) -> u64 + 'static,
        features: impl Fn(&T, &mut InputRows) + 'static,
        attach: impl Fn(T, &OutputRow<'_>) -> U + 'static,
        config: TensorPredictConfig,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>);
}

impl<'s, T: Data> PredictExt<'s, T> for DataStream<'s, T> {
    fn predict(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        features: impl Fn(&T, &mut Vec<f32>) + 'static,
        config: PredictConfig,
    ) -> (DataStream<'s, Prediction<T>>, DataStream<'s, DeadLetter>) {
        self.predict_with_key(op, models, |_| 0, features, config)
    }

    fn predict_with_key(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        key: impl Fn(&T) -> u64 + 'static,
        features: impl Fn(&T, &mut Vec<f32>) + 'static,
        config: PredictConfig,
    ) -> (DataStream<'s, Prediction<T>>, DataStream<'s, DeadLetter>) {
        let with_probabilities = config.probabilities.is_some();
        self.predict_tensors(
            op,
            models,
            key,
            move |record, rows| features(record, rows.f32(0)),
            move |record, out| Prediction {
                record,
                label: out.i64(0)[0],
                probabilities: if with_probabilities {
                    Probabilities::from_slice(out.f32(1))
                } else {
                    Probabilities::new()
                },
                model_version: out.model_version(),
            },
            config.tensors(),
        )
    }

    fn predict_tensors<U: Data>(
        self,
        op: impl Into<Op>,
        models: DataStream<'s, ModelUpdate>,
        key: impl Fn(&T) -> u64 + 'static,
        features: impl Fn(&T, &mut InputRows) + 'static,
        attach: impl Fn(T, &OutputRow<'_>) -> U + 'static,
        config: TensorPredictConfig,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>) {
        let op = op.into().kind("predict");
        let operator = op.name().to_string();
        let (load_config, loader_name) = (config.clone(), operator.clone());
        self.map_batch_with_broadcast_checkpointed(
            op,
            models,
            move |waker| Slots {
                primary: None,
                candidate: None,
                loader: ModelLoader::start(&loader_name, load_config, waker),
                last_rejection: None,
                last_candidate_rejection: None,
                updates: ModelUpdates::default(),
            },
            |slots, update: ModelUpdate| slots.submit(update),
            move |slots, batch: Vec<T>, metrics| {
                slots.install_loaded(&operator, metrics);
                let loading = slots.loader.in_flight > 0;
                if loading && config.swap == SwapPolicy::AtEpoch {
                    return BatchOutcome::Wait(batch);
                }
                let Some(primary) = slots.primary.as_mut() else {
                    return if loading {
                        BatchOutcome::Wait(batch)
                    } else {
                        BatchOutcome::Hold(batch, slots.why_no_model())
                    };
                };
                let reject = |record: T, reason: String, version: u64| {
                    DeadLetter::for_record(&operator, format!("model v{version}"), reason, &record)
                };
                let scorer = Scorer {
                    features: &features,
                    attach: &attach,
                    reject: &reject,
                    config: &config,
                    metrics: Some(metrics),
                };
                let out = match (config.serving, slots.candidate.as_mut()) {
                    (Serving::Split { candidate_fraction }, Some(candidate)) => {
                        let threshold =
                            (candidate_fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
                        let (to_candidate, to_primary): (Vec<T>, Vec<T>) = batch
                            .into_iter()
                            .partition(|r| weir_core::key_hash(&key(r)) < threshold);
                        let mut out = scorer.score(primary, to_primary, None);
                        out.extend(scorer.score(candidate, to_candidate, None));
                        out
                    }
                    (Serving::Shadow, Some(candidate)) => {
                        scorer.score(primary, batch, Some(candidate))
                    }
                    _ => scorer.score(primary, batch, None),
                };
                BatchOutcome::Done(out)
            },
            // Every instance holds the same models (the model stream is broadcast).
            InstanceCheckpoint::shared(
                |slots: &Slots| slots.updates.clone(),
                |slots, saved| slots.restore(saved),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `WhenLoaded`, of the updates queued while a model loads only the last primary
    /// and the last candidate load (updates faster than sessions build piled up without
    /// bound, each loaded in turn); with `AtEpoch` every one loads, since each serves the
    /// records of its epochs.
    #[test]
    fn queued_updates_superseded_by_a_later_one_of_their_kind_skip_loading_when_loaded() {
        let update = |version, candidate| ModelUpdate {
            candidate,
            ..ModelUpdate::from_path("m", version, "m.onnx")
        };
        let queued = [
            update(1, false),
            update(1, true),
            update(2, false),
            update(3, false),
            update(2, true),
        ];
        assert_eq!(
            superseded(&queued, SwapPolicy::WhenLoaded),
            [true, true, true, false, false]
        );
        assert_eq!(superseded(&queued, SwapPolicy::AtEpoch), [false; 5]);
        assert_eq!(superseded(&queued[..1], SwapPolicy::WhenLoaded), [false]);
    }
}
