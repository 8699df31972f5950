//! The predict operator: scores a stream with an ONNX model held in the dataflow, one
//! session per instance, micro-batched per epoch, with models swapped live from a model
//! stream (broadcast to every instance).

use std::path::Path;
use std::sync::mpsc;

use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use weir_core::{BatchOutcome, Data, DataStream, DeadLetter, Op, OperatorMetrics, StateWaker};

use crate::error::OnnxError;
use crate::runtime::runtime;

/// Where a model's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    /// The `.onnx` file's contents.
    Bytes(Vec<u8>),
    /// A path readable by every worker.
    Path(String),
}

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

/// A scored record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction<T> {
    /// The input record.
    pub record: T,
    /// The predicted class.
    pub label: i64,
    /// Class probabilities (empty when the model has no probabilities output).
    pub probabilities: Vec<f32>,
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
    /// timing.
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

/// A model loaded on one instance.
struct Loaded {
    session: Session,
    version: u64,
    width: usize,
}

/// Loads and checks a model update against the configuration.
fn load(update: &ModelUpdate, config: &PredictConfig) -> Result<Loaded, OnnxError> {
    let model = format!("{} v{}", update.name, update.version);
    let error = |reason: String| OnnxError::Model {
        model: model.clone(),
        reason,
    };
    let bytes = match &update.source {
        ModelSource::Bytes(b) => b.clone(),
        ModelSource::Path(p) => std::fs::read(p).map_err(|e| error(format!("{p}: {e}")))?,
    };
    let session = Session::builder(runtime()?.environment())
        .and_then(|b| {
            b.with_intra_threads(config.intra_threads)
                .map_err(Into::into)
        })
        .and_then(|mut b| b.commit_from_memory(&bytes))
        .map_err(|e| error(e.to_string()))?;
    let info = crate::ModelInfo::from_session(&session, &bytes)?;
    let input = info
        .inputs
        .iter()
        .find(|i| i.name == config.input)
        .ok_or_else(|| error(format!("has no input `{}`", config.input)))?;
    if input.dtype != "f32" || input.shape.len() != 2 || input.shape[1] < 1 {
        return Err(error(format!(
            "input `{}` is {} {:?}, expected f32 [N, F]",
            input.name, input.dtype, input.shape
        )));
    }
    let width = input.shape[1] as usize;
    let outputs: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
    for wanted in std::iter::once(&config.label).chain(config.probabilities.iter()) {
        if !outputs.contains(&wanted.as_str()) {
            return Err(error(format!(
                "has no output `{wanted}` (outputs: {})",
                outputs.join(", ")
            )));
        }
    }
    Ok(Loaded {
        session,
        version: update.version,
        width,
    })
}

/// A model update loaded (or rejected) by the loader thread.
struct LoadResult {
    candidate: bool,
    model: Result<Loaded, OnnxError>,
}

/// Loads model updates on a thread of its own, so that reading the file and building the
/// session never stall the worker; wakes the operator when a model is ready.
struct ModelLoader {
    requests: mpsc::Sender<ModelUpdate>,
    results: mpsc::Receiver<LoadResult>,
    in_flight: usize,
}

impl ModelLoader {
    fn start(operator: &str, config: PredictConfig, waker: StateWaker) -> Self {
        let (requests, inbox) = mpsc::channel::<ModelUpdate>();
        let (outbox, results) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("weir-load-{operator}"))
            .spawn(move || {
                for update in inbox {
                    let model = load(&update, &config);
                    let sent = outbox.send(LoadResult {
                        candidate: update.candidate,
                        model,
                    });
                    if sent.is_err() {
                        break;
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

    fn submit(&mut self, update: ModelUpdate) {
        if self.requests.send(update).is_ok() {
            self.in_flight += 1;
        }
    }
}

/// The models an instance holds, and the loader that brings new ones.
struct Slots {
    primary: Option<Loaded>,
    candidate: Option<Loaded>,
    loader: ModelLoader,
}

impl Slots {
    /// Installs the models loaded since the last call, in update order; reports rejected ones.
    fn install_loaded(&mut self, operator: &str, metrics: &OperatorMetrics) {
        while let Ok(result) = self.loader.results.try_recv() {
            self.loader.in_flight -= 1;
            match result.model {
                Ok(model) => {
                    metrics.count("models_loaded", 1);
                    if result.candidate {
                        self.candidate = Some(model);
                    } else {
                        self.primary = Some(model);
                    }
                }
                Err(e) => {
                    metrics.count("models_rejected", 1);
                    eprintln!(
                        "weir: {operator}: rejected model update: {e}; the previous model keeps serving"
                    );
                }
            }
        }
    }
}

/// Scoring with ONNX models, for any stream.
pub trait PredictExt<'s, T> {
    /// Scores every record with the latest model from `models`. `features(record, row)`
    /// appends the record's feature vector to `row`. Records wait until the first model has
    /// arrived; a model update applies from its epoch on and never splits a batch. A model
    /// that fails to load or does not fit `config` is rejected (reported on stderr) and the
    /// previous one keeps serving. Records whose features have the wrong length or are not
    /// finite become dead letters (returned, and routed to the job's dead-letter output).
    /// The job report counts predictions per model version (`v1`, `v2`, …).
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
        let op = op.into();
        let operator = op.name().to_string();
        let (load_config, loader_name) = (config.clone(), operator.clone());
        self.map_batch_with_broadcast(
            op,
            models,
            move |waker| Slots {
                primary: None,
                candidate: None,
                loader: ModelLoader::start(&loader_name, load_config, waker),
            },
            |slots, update: ModelUpdate| slots.loader.submit(update),
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
                        BatchOutcome::Hold(batch)
                    };
                };
                let scorer = Scorer {
                    operator: &operator,
                    features: &features,
                    config: &config,
                    metrics,
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
        )
    }
}

/// What scoring a batch needs besides the models.
struct Scorer<'a, F> {
    operator: &'a str,
    features: &'a F,
    config: &'a PredictConfig,
    metrics: &'a OperatorMetrics,
}

impl<F> Scorer<'_, F> {
    /// Scores records in batches of at most `max_batch` with `model`; with a `shadow` model,
    /// scores the same rows with it too and counts agreement.
    fn score<T: Data>(
        &self,
        model: &mut Loaded,
        batch: Vec<T>,
        mut shadow: Option<&mut Loaded>,
    ) -> Vec<Result<Prediction<T>, DeadLetter>>
    where
        F: Fn(&T, &mut Vec<f32>),
    {
        let (operator, config) = (self.operator, self.config);
        let mut out = Vec::with_capacity(batch.len());
        let mut rows: Vec<f32> = Vec::with_capacity(config.max_batch * model.width);
        let mut pending: Vec<T> = Vec::with_capacity(config.max_batch);
        let dead = |record: &T, reason: String, version: u64| DeadLetter {
            operator: operator.to_string(),
            location: format!("model v{version}"),
            reason,
            raw: serde_json::to_string(record).unwrap_or_default(),
        };
        let mut records = batch.into_iter().peekable();
        while records.peek().is_some() {
            rows.clear();
            pending.clear();
            for record in records.by_ref() {
                // Append the features straight into the batch; take them back if they are bad.
                let start = rows.len();
                (self.features)(&record, &mut rows);
                let row = &rows[start..];
                let reason = if row.len() != model.width {
                    Some(format!(
                        "expected {} features, got {}",
                        model.width,
                        row.len()
                    ))
                } else {
                    row.iter()
                        .position(|v| !v.is_finite())
                        .map(|i| format!("feature {i} is {}", row[i]))
                };
                match reason {
                    Some(reason) => {
                        rows.truncate(start);
                        out.push(Err(dead(&record, reason, model.version)));
                    }
                    None => {
                        pending.push(record);
                        if pending.len() == config.max_batch {
                            break;
                        }
                    }
                }
            }
            if pending.is_empty() {
                continue;
            }
            match run(model, &rows, pending.len(), config) {
                Ok((labels, probabilities, classes)) => {
                    if let Some(shadow) = shadow.as_deref_mut() {
                        if let Ok((shadow_labels, _, _)) = run(shadow, &rows, pending.len(), config)
                        {
                            let agree = labels
                                .iter()
                                .zip(&shadow_labels)
                                .filter(|(a, b)| a == b)
                                .count() as u64;
                            self.metrics.count("shadow_agree", agree);
                            self.metrics
                                .count("shadow_disagree", labels.len() as u64 - agree);
                        }
                    }
                    self.metrics
                        .count(&format!("v{}", model.version), pending.len() as u64);
                    for (i, record) in pending.drain(..).enumerate() {
                        let probabilities = if classes == 0 {
                            Vec::new()
                        } else {
                            probabilities[i * classes..(i + 1) * classes].to_vec()
                        };
                        out.push(Ok(Prediction {
                            record,
                            label: labels[i],
                            probabilities,
                            model_version: model.version,
                        }));
                    }
                }
                Err(reason) => out.extend(
                    pending
                        .drain(..)
                        .map(|r| Err(dead(&r, reason.clone(), model.version))),
                ),
            }
        }
        out
    }
}

/// One `Session::run` on `n` rows; returns labels, flattened probabilities and class count.
fn run(
    model: &mut Loaded,
    rows: &[f32],
    n: usize,
    config: &PredictConfig,
) -> Result<(Vec<i64>, Vec<f32>, usize), String> {
    let input = TensorRef::from_array_view(([n, model.width], rows)).map_err(|e| e.to_string())?;
    let outputs = model
        .session
        .run(ort::inputs![config.input.as_str() => input])
        .map_err(|e| e.to_string())?;
    let (_, labels) = outputs[config.label.as_str()]
        .try_extract_tensor::<i64>()
        .map_err(|e| e.to_string())?;
    let labels = labels.to_vec();
    let (probabilities, classes) = match &config.probabilities {
        Some(name) => {
            let (shape, p) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            (p.to_vec(), shape.get(1).copied().unwrap_or(0) as usize)
        }
        None => (Vec::new(), 0),
    };
    Ok((labels, probabilities, classes))
}
