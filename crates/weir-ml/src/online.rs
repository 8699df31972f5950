//! Online learning: multinomial logistic regression trained by SGD (learning-rate schedule,
//! L2) or FTRL-Proximal, an online standard scaler, prequential (test-then-train) metrics,
//! and the operator that runs them on a labelled stream with checkpoints to a model store.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_core::state::InstanceCheckpoint;
use weir_core::{Data, DataStream, Op};

use crate::model_store::{Checkpoint, ModelStore, ScalerState, StoreError, MAX_VERSION};
use crate::ps_training::{LabeledPoint, LogisticModel};

/// Softmax probabilities of `model` with raw weights (shared by both learners).
fn probabilities(model: &LogisticModel, x: &[f32]) -> Vec<f32> {
    model.probabilities(x)
}

/// A model that first predicts, then learns from each labelled example.
pub trait OnlineClassifier: Send + 'static {
    /// Class probabilities for `x`.
    fn predict_proba(&self, x: &[f32]) -> Vec<f32>;
    /// One learning step on `(x, y)`.
    fn learn(&mut self, x: &[f32], y: usize);
    /// The current model as plain weights.
    fn model(&self) -> LogisticModel;
    /// Continues from a saved model; a model of another shape is refused.
    fn restore(&mut self, model: &LogisticModel, steps: u64) -> Result<(), String>;
    /// What kind of learner this is (`sgd`, `ftrl`, …), recorded in checkpoints: a trainer
    /// resumes only from checkpoints of its own kind.
    fn kind(&self) -> &'static str;
}

/// Refuses a model whose shape is not `classes` x `features`.
fn same_shape(model: &LogisticModel, classes: usize, features: usize) -> Result<(), String> {
    model.validate()?;
    if (model.classes, model.features) != (classes, features) {
        return Err(format!(
            "a model of {} classes x {} features, this learner has {classes} x {features}",
            model.classes, model.features
        ));
    }
    Ok(())
}

/// Multinomial logistic regression by SGD: `rate_t = learning_rate / (1 + decay * t)`, L2.
#[derive(Clone, Debug)]
pub struct SgdClassifier {
    model: LogisticModel,
    learning_rate: f32,
    decay: f32,
    l2: f32,
    steps: u64,
}

impl SgdClassifier {
    /// A zero model for `classes` × `features`.
    pub fn new(classes: usize, features: usize, learning_rate: f32, decay: f32, l2: f32) -> Self {
        SgdClassifier {
            model: LogisticModel::zeros(classes, features),
            learning_rate,
            decay,
            l2,
            steps: 0,
        }
    }
}

impl OnlineClassifier for SgdClassifier {
    fn predict_proba(&self, x: &[f32]) -> Vec<f32> {
        probabilities(&self.model, x)
    }

    fn learn(&mut self, x: &[f32], y: usize) {
        let p = self.predict_proba(x);
        let rate = self.learning_rate / (1.0 + self.decay * self.steps as f32);
        let f = self.model.features;
        for (c, pc) in p.iter().enumerate() {
            let err = pc - if c == y { 1.0 } else { 0.0 };
            let row = &mut self.model.weights[c * f..(c + 1) * f];
            for (w, v) in row.iter_mut().zip(x) {
                *w -= rate * (err * v + self.l2 * *w);
            }
            self.model.bias[c] -= rate * err;
        }
        self.steps += 1;
    }

    fn model(&self) -> LogisticModel {
        self.model.clone()
    }

    fn restore(&mut self, model: &LogisticModel, steps: u64) -> Result<(), String> {
        same_shape(model, self.model.classes, self.model.features)?;
        self.model = model.clone();
        self.steps = steps;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "sgd"
    }
}

/// Multinomial logistic regression by FTRL-Proximal (McMahan et al.), per-coordinate rates,
/// L1 and L2, as Flink ML's `OnlineLogisticRegression`.
#[derive(Clone, Debug)]
pub struct FtrlClassifier {
    classes: usize,
    features: usize,
    alpha: f64,
    beta: f64,
    l1: f64,
    l2: f64,
    /// Per weight (classes × (features + 1 bias)): z and n.
    z: Vec<f64>,
    n: Vec<f64>,
}

impl FtrlClassifier {
    /// A zero model.
    pub fn new(classes: usize, features: usize, alpha: f64, beta: f64, l1: f64, l2: f64) -> Self {
        let size = classes * (features + 1);
        FtrlClassifier {
            classes,
            features,
            alpha,
            beta,
            l1,
            l2,
            z: vec![0.0; size],
            n: vec![0.0; size],
        }
    }

    fn weight(&self, i: usize) -> f64 {
        let z = self.z[i];
        if z.abs() <= self.l1 {
            0.0
        } else {
            -(z - z.signum() * self.l1) / ((self.beta + self.n[i].sqrt()) / self.alpha + self.l2)
        }
    }
}

impl OnlineClassifier for FtrlClassifier {
    fn predict_proba(&self, x: &[f32]) -> Vec<f32> {
        probabilities(&self.model(), x)
    }

    fn learn(&mut self, x: &[f32], y: usize) {
        let p = self.predict_proba(x);
        let stride = self.features + 1;
        for (c, pc) in p.iter().enumerate() {
            let err = (pc - if c == y { 1.0 } else { 0.0 }) as f64;
            // The features, then 1 for the bias.
            let inputs = x.iter().map(|v| *v as f64).chain(std::iter::once(1.0));
            for (j, input) in inputs.enumerate() {
                let i = c * stride + j;
                let g = err * input;
                if g == 0.0 {
                    continue;
                }
                let sigma = ((self.n[i] + g * g).sqrt() - self.n[i].sqrt()) / self.alpha;
                self.z[i] += g - sigma * self.weight(i);
                self.n[i] += g * g;
            }
        }
    }

    fn model(&self) -> LogisticModel {
        let stride = self.features + 1;
        let mut m = LogisticModel::zeros(self.classes, self.features);
        for c in 0..self.classes {
            for j in 0..self.features {
                m.weights[c * self.features + j] = self.weight(c * stride + j) as f32;
            }
            m.bias[c] = self.weight(c * stride + self.features) as f32;
        }
        m
    }

    fn restore(&mut self, model: &LogisticModel, _steps: u64) -> Result<(), String> {
        same_shape(model, self.classes, self.features)?;
        // FTRL's state is (z, n); from plain weights, restart with n = 0 and z = -w·(β/α + λ2).
        let stride = self.features + 1;
        let scale = self.beta / self.alpha + self.l2;
        for c in 0..self.classes {
            for j in 0..=self.features {
                let w = if j < self.features {
                    model.weights[c * self.features + j]
                } else {
                    model.bias[c]
                } as f64;
                let i = c * stride + j;
                self.n[i] = 0.0;
                self.z[i] = -w * scale - w.signum() * self.l1;
            }
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "ftrl"
    }
}

/// Welford's running mean and variance per feature; `transform` standardizes.
#[derive(Clone, Debug, Default)]
pub struct OnlineStandardScaler {
    state: ScalerState,
}

impl OnlineStandardScaler {
    /// Adds one vector to the statistics.
    pub fn update(&mut self, x: &[f32]) {
        let s = &mut self.state;
        if s.mean.len() != x.len() {
            s.mean = vec![0.0; x.len()];
            s.m2 = vec![0.0; x.len()];
            s.count = 0;
        }
        s.count += 1;
        for (i, v) in x.iter().enumerate() {
            let v = *v as f64;
            let delta = v - s.mean[i];
            s.mean[i] += delta / s.count as f64;
            s.m2[i] += delta * (v - s.mean[i]);
        }
    }

    /// `(x - mean) / std` with the statistics so far (std 1 where there is no spread yet).
    pub fn transform(&self, x: &[f32]) -> Vec<f32> {
        self.state.transform(x)
    }

    /// The statistics, as checkpoints keep them.
    pub fn state(&self) -> &ScalerState {
        &self.state
    }

    fn restore(&mut self, state: ScalerState) {
        self.state = state;
    }
}

/// Prequential metrics: accuracy overall and over a sliding window, mean log loss.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OnlineMetrics {
    /// Records predicted and then trained on.
    pub records: u64,
    /// Of those, predicted right.
    pub correct: u64,
    /// Sum of `-ln p(true class)`.
    pub log_loss_sum: f64,
    /// Accuracy over the last `window` records.
    pub window_accuracy: f64,
    /// Current model version (checkpoints written).
    pub model_version: u64,
}

impl OnlineMetrics {
    /// Accuracy so far.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.records.max(1) as f64
    }

    /// Mean log loss so far.
    pub fn log_loss(&self) -> f64 {
        self.log_loss_sum / self.records.max(1) as f64
    }

    /// The ML metrics in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        let gauges = [
            (
                "weir_ml_prequential_accuracy",
                "Accuracy of predictions made before training on each record.",
                self.accuracy(),
            ),
            (
                "weir_ml_window_accuracy",
                "Prequential accuracy over the sliding window.",
                self.window_accuracy,
            ),
            (
                "weir_ml_log_loss",
                "Mean prequential log loss.",
                self.log_loss(),
            ),
            (
                "weir_ml_model_version",
                "Version of the latest checkpoint.",
                self.model_version as f64,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in gauges {
            out += &format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");
        }
        out += &format!(
            "# HELP weir_ml_records_trained_total Records trained on.\n# TYPE weir_ml_records_trained_total counter\nweir_ml_records_trained_total {}\n",
            self.records
        );
        out
    }

    fn as_map(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("accuracy".to_string(), self.accuracy()),
            ("window_accuracy".to_string(), self.window_accuracy),
            ("log_loss".to_string(), self.log_loss()),
            ("records".to_string(), self.records as f64),
        ])
    }
}

/// What the online trainer emits per record: the prediction made before training on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlinePrediction {
    /// Position of the record in the trainer's stream (continues across resumes).
    pub index: u64,
    /// Predicted class.
    pub label: usize,
    /// The true class.
    pub truth: usize,
    /// Probability the model gave the predicted class.
    pub confidence: f32,
    /// Checkpoint version of the model that predicted.
    pub model_version: u64,
}

/// How the trainer checkpoints and measures.
#[derive(Clone)]
pub struct OnlineOptions {
    /// Where checkpoints go (and where the trainer resumes from).
    pub store: Option<Arc<dyn ModelStore>>,
    /// Checkpoint after this many records …
    pub checkpoint_records: u64,
    /// … or this much time, whichever comes first.
    pub checkpoint_interval: Duration,
    /// Standardize features with an online scaler before learning.
    pub scale: bool,
    /// Records in the sliding accuracy window.
    pub window: usize,
    /// Live metrics, readable while the job runs (for `/metrics` and the final summary).
    pub metrics: Arc<Mutex<OnlineMetrics>>,
    /// How often reading the store at resume is retried before the job fails.
    pub store_retries: u32,
    /// The pause before the first retry (doubling after each).
    pub store_backoff: Duration,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        OnlineOptions {
            store: None,
            checkpoint_records: 5000,
            checkpoint_interval: Duration::from_secs(10),
            scale: false,
            window: 1000,
            metrics: Arc::default(),
            store_retries: 5,
            store_backoff: Duration::from_millis(100),
        }
    }
}

/// The trainer's state on its instance.
struct Trainer<C: OnlineClassifier> {
    classifier: C,
    scaler: OnlineStandardScaler,
    options: OnlineOptions,
    metrics: OnlineMetrics,
    window: VecDeque<bool>,
    window_correct: u64,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    resumed: bool,
    /// The version the next checkpoint gets: after every version in the store, including
    /// ones this trainer could not resume from.
    next_version: u64,
    /// Versions taken since the last batch was emitted.
    models: Vec<Checkpoint>,
}

/// What a trainer can resume from: its own kind of learner, model shape and scaling.
struct Resumable {
    learner: &'static str,
    classes: usize,
    features: usize,
    scaled: bool,
}

impl Resumable {
    fn check(&self, c: &Checkpoint) -> Result<(), String> {
        let (m, scaled) = (&c.model, c.scaler.is_some());
        if c.learner != self.learner {
            return Err(format!(
                "trained by `{}`, this trainer is `{}`",
                c.learner, self.learner
            ));
        }
        if (m.classes, m.features) != (self.classes, self.features) {
            return Err(format!(
                "a model of {} classes x {} features, this trainer has {} x {}",
                m.classes, m.features, self.classes, self.features
            ));
        }
        if scaled != self.scaled {
            return Err(format!(
                "trained {} a scaler, this trainer runs {} one",
                if scaled { "with" } else { "without" },
                if self.scaled { "with" } else { "without" }
            ));
        }
        Ok(())
    }
}

/// Runs `read` until it succeeds, retrying `retries` times with a doubling pause.
fn with_retries<T>(
    retries: u32,
    backoff: Duration,
    store: &str,
    mut read: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, String> {
    let mut pause = backoff;
    for attempt in 0.. {
        match read() {
            Ok(value) => return Ok(value),
            Err(e) if attempt < retries => {
                tracing::warn!("online trainer cannot read its model store {store} (try {} of {}): {e}; retrying in {pause:?}", attempt + 1, retries + 1);
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(e) => {
                return Err(format!(
                    "cannot read the model store {store} to resume after {} tries: {e}",
                    retries + 1
                ))
            }
        }
    }
    unreachable!("the loop returns")
}

impl<C: OnlineClassifier> Trainer<C> {
    /// Resumes from the newest compatible checkpoint. A store that cannot be read (after
    /// retries) is an error: starting fresh would overwrite the versions it holds.
    fn resume(&mut self) -> Result<(), String> {
        self.resumed = true;
        let Some(store) = self.options.store.clone() else {
            return Ok(());
        };
        let model = self.classifier.model();
        let wanted = Resumable {
            learner: self.classifier.kind(),
            classes: model.classes,
            features: model.features,
            scaled: self.options.scale,
        };
        let (retries, backoff) = (self.options.store_retries, self.options.store_backoff);
        let describe = store.describe();
        let (newest, found) = with_retries(retries, backoff, &describe, || {
            // Versions beyond the limit are not checkpoints this trainer can follow.
            let newest = store
                .versions()?
                .into_iter()
                .filter(|v| *v <= MAX_VERSION)
                .max()
                .unwrap_or(0);
            Ok((newest, store.latest_compatible(&|c| wanted.check(c))?))
        })?;
        self.next_version = newest + 1;
        let Some(c) = found else {
            if newest > 0 {
                tracing::warn!("online trainer found no checkpoint it can resume from in {describe}; starting fresh at v{}", self.next_version);
            }
            return Ok(());
        };
        tracing::info!(
            "online trainer resumes from checkpoint v{} ({} records) in {describe}",
            c.version,
            c.records
        );
        self.classifier
            .restore(&c.model, c.records)
            .map_err(|e| format!("cannot resume from checkpoint v{}: {e}", c.version))?;
        if let Some(state) = c.scaler {
            self.scaler.restore(state);
        }
        self.metrics.records = c.records;
        self.metrics.correct =
            (c.metrics.get("accuracy").unwrap_or(&0.0) * c.records as f64).round() as u64;
        self.metrics.log_loss_sum = c.metrics.get("log_loss").unwrap_or(&0.0) * c.records as f64;
        self.metrics.model_version = c.version;
        Ok(())
    }

    /// Takes a new model version: saved to the store (if any) and emitted on the models
    /// stream.
    fn checkpoint(&mut self) {
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        let version = self
            .next_version
            .max(self.metrics.model_version.saturating_add(1));
        let checkpoint = Checkpoint {
            version,
            records: self.metrics.records,
            metrics: self.metrics.as_map(),
            learner: self.classifier.kind().to_string(),
            model: self.classifier.model(),
            scaler: self.options.scale.then(|| self.scaler.state().clone()),
        };
        if let Err(e) = checkpoint.validate() {
            tracing::warn!("checkpoint v{version} not taken: the model is unusable: {e}");
            return;
        }
        if let Some(store) = &self.options.store {
            if let Err(e) = store.save(&checkpoint) {
                tracing::error!("checkpoint v{version} failed: {e}");
                return;
            }
        }
        self.next_version = version + 1;
        self.metrics.model_version = version;
        self.models.push(checkpoint);
    }

    fn step(&mut self, point: &LabeledPoint) -> OnlinePrediction {
        let scaled;
        let x: &[f32] = if self.options.scale {
            self.scaler.update(&point.x);
            scaled = self.scaler.transform(&point.x);
            &scaled
        } else {
            &point.x
        };
        let p = self.classifier.predict_proba(x);
        let label = (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best });
        let right = label == point.y;
        self.metrics.records += 1;
        self.metrics.correct += right as u64;
        self.metrics.log_loss_sum -=
            (p.get(point.y).copied().unwrap_or(0.0).max(1e-15) as f64).ln();
        self.window.push_back(right);
        self.window_correct += right as u64;
        if self.window.len() > self.options.window.max(1) {
            self.window_correct -= self.window.pop_front().unwrap() as u64;
        }
        self.metrics.window_accuracy = self.window_correct as f64 / self.window.len() as f64;
        let prediction = OnlinePrediction {
            index: self.metrics.records - 1,
            label,
            truth: point.y,
            confidence: p[label],
            model_version: self.metrics.model_version,
        };
        self.classifier.learn(x, point.y);
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.options.checkpoint_records
            || self.last_checkpoint.elapsed() >= self.options.checkpoint_interval
        {
            self.checkpoint();
        }
        prediction
    }
}

impl<C: OnlineClassifier> Drop for Trainer<C> {
    /// The end of the stream (the operator is dropped when its dataflow completes): one last
    /// checkpoint, so nothing trained is lost.
    fn drop(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
            *self.options.metrics.lock().unwrap() = self.metrics.clone();
        }
    }
}

/// What the online trainer emits, in one stream before it is split.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum OnlineEvent {
    Prediction(OnlinePrediction),
    Model(Checkpoint),
}

/// The online trainer's outputs.
pub struct OnlineStreams<'s> {
    /// One prediction per record, made before training on it.
    pub predictions: DataStream<'s, OnlinePrediction>,
    /// Every model version the trainer takes (at each checkpoint), e.g. for the ONNX predict
    /// operator's live swap via [`Checkpoint::to_onnx`] (which includes the scaler).
    pub models: DataStream<'s, Checkpoint>,
}

/// Test-then-train on a labelled stream.
pub trait OnlineLearnExt<'s, T> {
    /// For each record (in stream order on one instance): predict with the current model,
    /// score the prediction (prequential metrics), then learn from it. Resumes from the
    /// latest checkpoint in `options.store`; takes a new model version every
    /// `checkpoint_records` records or `checkpoint_interval` (saved to the store and emitted
    /// on `models`), and saves one more at the end of the stream. `point` turns a record into
    /// a labelled point. Runs at parallelism 1 (one model, in stream order).
    fn learn_online<C: OnlineClassifier + Clone>(
        self,
        op: impl Into<Op>,
        classifier: C,
        point: impl Fn(T) -> LabeledPoint + 'static,
        options: OnlineOptions,
    ) -> OnlineStreams<'s>;
}

impl<'s, T: Data> OnlineLearnExt<'s, T> for DataStream<'s, T> {
    fn learn_online<C: OnlineClassifier + Clone>(
        self,
        op: impl Into<Op>,
        classifier: C,
        point: impl Fn(T) -> LabeledPoint + 'static,
        options: OnlineOptions,
    ) -> OnlineStreams<'s> {
        let op: Op = op.into().parallelism(1);
        let name = op.name().to_string();
        let mut trainer = Trainer {
            classifier,
            scaler: OnlineStandardScaler::default(),
            metrics: OnlineMetrics::default(),
            window: VecDeque::new(),
            window_correct: 0,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            resumed: false,
            next_version: 1,
            models: Vec::new(),
            options,
        };
        let events = self.try_map_batch(op, move |batch: Vec<T>| {
            if !trainer.resumed {
                trainer.resume()?;
            }
            let mut out: Vec<OnlineEvent> = batch
                .into_iter()
                .map(|r| OnlineEvent::Prediction(trainer.step(&point(r))))
                .collect();
            out.extend(trainer.models.drain(..).map(OnlineEvent::Model));
            *trainer.options.metrics.lock().unwrap() = trainer.metrics.clone();
            Ok(out)
        });
        let predictions = events.clone().flat_map(
            Op::from(format!("{name}.predictions")).parallelism(1),
            |e| match e {
                OnlineEvent::Prediction(p) => Some(p),
                OnlineEvent::Model(_) => None,
            },
        );
        let models = events.flat_map(
            Op::from(format!("{name}.models")).parallelism(1),
            |e| match e {
                OnlineEvent::Model(m) => Some(m),
                OnlineEvent::Prediction(_) => None,
            },
        );
        OnlineStreams {
            predictions,
            models,
        }
    }
}

/// What a parallel trainer instance emits per epoch, before the split.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum ParallelEvent {
    Prediction(OnlinePrediction),
    /// The instance's model after the epoch, and the records it trained on in it.
    Local(LogisticModel, u64, u64),
}

/// The instances' models of one epoch: each model, the records it trained on in the epoch,
/// and the merged version it started from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Locals(Vec<(LogisticModel, u64, u64)>);

impl Locals {
    /// The average of the models weighted by records, as the next merged version. The sum
    /// runs in an order given by the models themselves, not by when they arrived, so the
    /// average is the same bits in every run.
    fn merged(mut self, learner: &str) -> Checkpoint {
        self.0.sort_by(|(a, ra, va), (b, rb, vb)| {
            (ra, va, bits(&a.weights), bits(&a.bias)).cmp(&(
                rb,
                vb,
                bits(&b.weights),
                bits(&b.bias),
            ))
        });
        let (classes, features) = self
            .0
            .first()
            .map(|(m, _, _)| (m.classes, m.features))
            .unwrap_or_default();
        let mut weights = vec![0.0f32; classes * features];
        let mut bias = vec![0.0f32; classes];
        let (mut records, mut version) = (0u64, 0u64);
        for (model, n, v) in &self.0 {
            let w = (*n).max(1) as f32;
            weights
                .iter_mut()
                .zip(&model.weights)
                .for_each(|(s, x)| *s += w * x);
            bias.iter_mut()
                .zip(&model.bias)
                .for_each(|(s, x)| *s += w * x);
            records += (*n).max(1);
            version = version.max(*v);
        }
        let total = records.max(1) as f32;
        Checkpoint {
            version: version + 1,
            records,
            metrics: BTreeMap::new(),
            learner: learner.to_string(),
            model: LogisticModel {
                classes,
                features,
                weights: weights.iter().map(|v| v / total).collect(),
                bias: bias.iter().map(|v| v / total).collect(),
            },
            scaler: None,
        }
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// How a parallel trainer instance is checkpointed: its model, the records it has seen and
/// the merged version it is on. Restored at another parallelism, an instance continues from
/// the first model dealt to it and counts the records of all of them; the merged model that
/// was on its way back when the checkpoint was taken arrives next (the feedback edge keeps
/// it), so every instance continues from the same average.
fn trainer_checkpoint<C: OnlineClassifier>() -> InstanceCheckpoint<(C, u64, u64)> {
    InstanceCheckpoint::new(
        |(classifier, seen, version): &(C, u64, u64)| (classifier.model(), *seen, *version),
        |(classifier, seen, version), parts: Vec<(LogisticModel, u64, u64)>| {
            if let Some((model, _, v)) = parts.first() {
                *seen = parts.iter().map(|(_, s, _)| s).sum();
                *version = *v;
                // A model of another shape is another job's: start afresh (the restore of
                // the job's state names the operator if it fails altogether).
                if let Err(e) = classifier.restore(model, *seen) {
                    tracing::warn!("cannot continue from the checkpointed model: {e}");
                }
            }
        },
    )
}

/// Test-then-train at parallelism > 1 with synchronous model averaging: each instance of
/// `op` trains on its share of `stream`; after every epoch the instances' models are averaged,
/// weighted by the records each trained on, and every instance continues from the average at
/// the next epoch (a feedback edge). Epoch size is the merge interval (`--epoch-records`, or
/// the source's `EpochPolicy`). `models` carries each merged version. In a job that
/// checkpoints (`--checkpoint-dir`), every instance's model and the merged model in flight
/// are part of the checkpoints, so a restored job goes on with the model an uninterrupted
/// run would have at the same epochs. Prediction indices count per instance.
pub fn learn_online_parallel<'s, T: Data, C: OnlineClassifier + Clone>(
    job: &mut weir_core::Job<'s>,
    stream: DataStream<'s, T>,
    op: impl Into<Op>,
    classifier: C,
    point: impl Fn(T) -> LabeledPoint + 'static,
) -> OnlineStreams<'s> {
    let op: Op = op.into();
    let name = op.name().to_string();
    let learner = classifier.kind();
    let (loopback, merged) =
        job.feedback::<Checkpoint>(Op::from(format!("{name}.merged")).parallelism(1));
    let (events, _dead) = stream.map_batch_with_broadcast_checkpointed(
        op,
        merged,
        // Per instance: the classifier, records it has seen, the merged version it is on.
        move |_waker| (classifier, 0u64, 0u64),
        |(classifier, seen, version), merged: Checkpoint| {
            if merged.version > *version {
                // Continue from the average; the learning-rate schedule follows own steps.
                // The average of same-shaped models has that shape: a refusal is a bug.
                if let Err(e) = classifier.restore(&merged.model, *seen) {
                    tracing::warn!(
                        "cannot continue from the merged model v{}: {e}",
                        merged.version
                    );
                }
                *version = merged.version;
            }
        },
        move |(classifier, seen, version), batch: Vec<T>, _metrics| {
            let n = batch.len() as u64;
            let mut out: Vec<Result<ParallelEvent, weir_core::DeadLetter>> = batch
                .into_iter()
                .map(|r| {
                    let p = point(r);
                    let probabilities = classifier.predict_proba(&p.x);
                    let label = (0..probabilities.len()).fold(0, |b, c| {
                        if probabilities[c] > probabilities[b] {
                            c
                        } else {
                            b
                        }
                    });
                    classifier.learn(&p.x, p.y);
                    *seen += 1;
                    Ok(ParallelEvent::Prediction(OnlinePrediction {
                        index: *seen - 1,
                        label,
                        truth: p.y,
                        confidence: probabilities[label],
                        model_version: *version,
                    }))
                })
                .collect();
            out.push(Ok(ParallelEvent::Local(classifier.model(), n, *version)));
            weir_core::BatchOutcome::Done(out)
        },
        trainer_checkpoint(),
    );
    let averaged = events
        .clone()
        .flat_map(Op::from(format!("{name}.locals")), |e| match e {
            ParallelEvent::Local(model, records, version) => Some((model, records, version)),
            ParallelEvent::Prediction(_) => None,
        })
        .key_by(|_| 0u8)
        .aggregate_per_epoch(
            Op::from(format!("{name}.merge")).parallelism(1),
            |_| Locals::default(),
            |locals, local| locals.0.push(local),
        )
        .map(
            Op::from(format!("{name}.averaged")).parallelism(1),
            move |(_, locals)| locals.merged(learner),
        );
    loopback.connect(averaged.clone());
    let predictions = events.flat_map(Op::from(format!("{name}.predictions")), |e| match e {
        ParallelEvent::Prediction(p) => Some(p),
        ParallelEvent::Local(..) => None,
    });
    OnlineStreams {
        predictions,
        models: averaged,
    }
}
