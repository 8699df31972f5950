//! Built-in parameter-server training: multinomial logistic regression with asynchronous
//! SGD. `ps` nodes hold shards of the model (class `c` lives on shard `c % shards`) and serve
//! them on their registered port; `worker` nodes read their partition of a labelled stream,
//! compute mini-batch gradients, and push them to / pull fresh parameters from every shard at
//! the addresses in the cluster spec. When the cluster stops, every ps node emits its shard;
//! [`assemble_model`] puts the model together from them.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::connection_slots::{ConnectionSlots, Slot};
use crate::node_runner::{NodeContext, NodeRunner};
use crate::wire::{JobSecret, SecureChannel, WireError, DATA_FRAME_LIMIT};

/// A labelled example: features and class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabeledPoint {
    /// Features.
    pub x: Vec<f32>,
    /// Class, `0..classes`.
    pub y: usize,
}

/// The largest weight or bias a model may have. Trained models stay far below it; with it,
/// scores of features of sane magnitude cannot overflow a 32-bit float (so probabilities are
/// finite), which a decoded model whose weights are merely finite does not guarantee.
pub const MAX_PARAMETER: f32 = 1e9;

/// A multinomial logistic-regression model: `classes` rows of `features` weights and a bias.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    /// Number of classes.
    pub classes: usize,
    /// Number of features.
    pub features: usize,
    /// Row-major `[classes, features]`.
    pub weights: Vec<f32>,
    /// One per class.
    pub bias: Vec<f32>,
}

impl LogisticModel {
    /// All zeros.
    pub fn zeros(classes: usize, features: usize) -> Self {
        LogisticModel {
            classes,
            features,
            weights: vec![0.0; classes * features],
            bias: vec![0.0; classes],
        }
    }

    /// Class probabilities (softmax of the scores).
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        let mut scores: Vec<f32> = (0..self.classes)
            .map(|c| {
                let row = &self.weights[c * self.features..(c + 1) * self.features];
                row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>() + self.bias[c]
            })
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for s in &mut scores {
            *s = (*s - max).exp();
            total += *s;
        }
        scores.iter_mut().for_each(|s| *s /= total);
        scores
    }

    /// The most likely class.
    pub fn predict(&self, x: &[f32]) -> usize {
        let p = self.probabilities(x);
        (0..p.len()).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// Share of `points` predicted correctly.
    pub fn accuracy(&self, points: &[LabeledPoint]) -> f64 {
        let right = points.iter().filter(|p| self.predict(&p.x) == p.y).count();
        right as f64 / points.len().max(1) as f64
    }

    /// Writes the model (bincode).
    pub fn save(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let bytes = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        let tmp = path.as_ref().with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    /// Checks that the model is consistent: at least one class and one feature, as many
    /// weights and biases as its shape says, all finite.
    pub fn validate(&self) -> Result<(), String> {
        let (c, f) = (self.classes, self.features);
        if c == 0 || f == 0 {
            return Err(format!("a model of {c} classes and {f} features"));
        }
        let expected = c.checked_mul(f).ok_or("the shape overflows")?;
        if self.weights.len() != expected || self.bias.len() != c {
            return Err(format!(
                "{} weights and {} biases for {c} classes x {f} features (expected {expected} and {c})",
                self.weights.len(),
                self.bias.len()
            ));
        }
        let sane = |v: &f32| v.is_finite() && v.abs() <= MAX_PARAMETER;
        if let Some(i) = self.weights.iter().position(|w| !sane(w)) {
            return Err(format!(
                "weight {i} is {}; a weight must be finite and within ±{MAX_PARAMETER:e}",
                self.weights[i]
            ));
        }
        if let Some(i) = self.bias.iter().position(|b| !sane(b)) {
            return Err(format!(
                "bias {i} is {}; a bias must be finite and within ±{MAX_PARAMETER:e}",
                self.bias[i]
            ));
        }
        Ok(())
    }

    /// Reads a model written by [`LogisticModel::save`]; an inconsistent or non-finite
    /// model is an `InvalidData` error.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)?;
        let invalid = |reason: String| {
            std::io::Error::new(
                ErrorKind::InvalidData,
                format!("{}: {reason}", path.display()),
            )
        };
        let model: LogisticModel = crate::wire::decode_bounded(&bytes, MODEL_FILE_LIMIT)
            .map_err(|e| invalid(e.to_string()))?;
        model.validate().map_err(invalid)?;
        Ok(model)
    }
}

/// Largest model file [`LogisticModel::load`] decodes.
const MODEL_FILE_LIMIT: usize = 256 << 20;

/// Hyper-parameters of parameter-server training.
#[derive(Clone, Copy, Debug)]
pub struct PsTrainingConfig {
    /// Number of classes.
    pub classes: usize,
    /// Number of features.
    pub features: usize,
    /// SGD step size.
    pub learning_rate: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
    /// Passes over each worker's partition.
    pub epochs: usize,
    /// Examples per gradient.
    pub batch_size: usize,
}

/// One class's parameters: class, weights row, bias.
pub type ClassRow = (usize, Vec<f32>, f32);

#[derive(Debug, Serialize, Deserialize)]
enum PsRequest {
    /// Send this shard's parameters.
    Pull,
    /// Apply `rate * gradient` to these rows, then send the parameters.
    PushPull { rows: Vec<ClassRow>, rate: f32 },
}

/// What the training roles emit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TrainingReport {
    /// A worker finished its epochs.
    Worker {
        /// Worker index.
        worker: usize,
        /// The attempt that produced the report.
        attempt: u32,
        /// Examples in the worker's partition.
        examples: usize,
        /// Gradient steps pushed.
        steps: usize,
    },
    /// A ps node's shard as the cluster stopped.
    Shard {
        /// Shard (ps node) index.
        shard: usize,
        /// The attempt the shard belongs to.
        attempt: u32,
        /// The shard's classes.
        rows: Vec<ClassRow>,
    },
}

/// The model in the shards of the latest attempt, if every class is there.
pub fn assemble_model(
    reports: &[TrainingReport],
    config: &PsTrainingConfig,
) -> Option<LogisticModel> {
    let last = reports
        .iter()
        .filter_map(|r| match r {
            TrainingReport::Shard { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .max()?;
    let mut model = LogisticModel::zeros(config.classes, config.features);
    let mut seen = vec![false; config.classes];
    for report in reports {
        if let TrainingReport::Shard { attempt, rows, .. } = report {
            if *attempt != last {
                continue;
            }
            for (class, weights, bias) in rows {
                let f = config.features;
                model.weights[class * f..(class + 1) * f].copy_from_slice(weights);
                model.bias[*class] = *bias;
                seen[*class] = true;
            }
        }
    }
    seen.iter().all(|s| *s).then_some(model)
}

/// Connections in their handshake with a ps shard at once: more are closed. A worker's
/// connection that proved the job secret no longer counts.
const MAX_PS_HANDSHAKES: usize = 256;

/// The `ps` role's runner: serves its shard on the node's port until the cluster stops,
/// then emits the shard. Only peers that prove the job secret are served, and an update
/// that is not finite, names a class this shard does not hold or has the wrong width is
/// refused (the connection is closed and the shard is unchanged).
pub fn ps_runner(config: PsTrainingConfig) -> impl NodeRunner<(), TrainingReport> {
    move |ctx: &mut NodeContext<'_, (), TrainingReport>| {
        let shards = ctx.spec.nodes.get("ps").map_or(1, Vec::len);
        let shard: Vec<ClassRow> = (0..config.classes)
            .filter(|c| c % shards == ctx.node.index)
            .map(|c| (c, vec![0.0; config.features], 0.0))
            .collect();
        let shard = Arc::new(Mutex::new(shard));
        ctx.listener()
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let name = ctx.node.to_string();
        let slots = ConnectionSlots::new(MAX_PS_HANDSHAKES);
        while !ctx.stop.is_stopped() {
            match ctx.listener().accept() {
                Ok((stream, _)) => {
                    let (shard, secret, name) =
                        (Arc::clone(&shard), ctx.job_secret().clone(), name.clone());
                    slots.serve(stream, "weir-ps-connection", move |stream, handshake| {
                        serve(stream, handshake, &secret, shard, &name)
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => return Err(format!("ps accept: {e}")),
            }
        }
        let rows = shard.lock().unwrap().clone();
        ctx.emit(TrainingReport::Shard {
            shard: ctx.node.index,
            attempt: ctx.attempt,
            rows,
        });
        Ok(())
    }
}

/// Why an update is refused, if it is: every value finite, every class held by this shard,
/// every row as wide as the model.
fn check_update(rows: &[ClassRow], gradient: &[ClassRow], rate: f32) -> Result<(), String> {
    if !rate.is_finite() {
        return Err(format!("the learning rate {rate} is not finite"));
    }
    for (class, grad, grad_bias) in gradient {
        let Some(row) = rows.iter().find(|r| r.0 == *class) else {
            return Err(format!("class {class} is not held by this shard"));
        };
        if grad.len() != row.1.len() {
            return Err(format!(
                "class {class}: {} gradient values for {} weights",
                grad.len(),
                row.1.len()
            ));
        }
        if !grad_bias.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(format!("class {class}: the gradient is not finite"));
        }
    }
    Ok(())
}

/// Applies `rate * gradient`, unless the result would not be finite.
fn apply_update(rows: &mut [ClassRow], gradient: &[ClassRow], rate: f32) -> Result<(), String> {
    check_update(rows, gradient, rate)?;
    let mut updated = rows.to_vec();
    for (class, grad, grad_bias) in gradient {
        let row = updated
            .iter_mut()
            .find(|r| r.0 == *class)
            .expect("checked above");
        row.1.iter_mut().zip(grad).for_each(|(w, g)| *w -= rate * g);
        row.2 -= rate * grad_bias;
        if !row.2.is_finite() || row.1.iter().any(|w| !w.is_finite()) {
            return Err(format!("class {class}: the update overflows"));
        }
    }
    rows.clone_from_slice(&updated);
    Ok(())
}

fn serve(
    stream: TcpStream,
    handshake: Slot,
    secret: &JobSecret,
    shard: Arc<Mutex<Vec<ClassRow>>>,
    name: &str,
) {
    let mut channel = match SecureChannel::accept(stream, secret, DATA_FRAME_LIMIT) {
        Ok(c) => c,
        Err(e) => return tracing::warn!("node {name}: refused a connection: {e}"),
    };
    drop(handshake);
    loop {
        let request = match channel.recv::<PsRequest>() {
            Ok(r) => r,
            Err(WireError::Closed { .. }) => return,
            Err(e) => return tracing::warn!("node {name}: dropped a connection: {e}"),
        };
        let mut rows = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let PsRequest::PushPull {
            rows: gradient,
            rate,
        } = request
        {
            if let Err(reason) = apply_update(&mut rows, &gradient, rate) {
                drop(rows);
                return tracing::warn!(
                    "node {name}: refused an update from {}: {reason}",
                    channel.peer()
                );
            }
        }
        let reply = rows.clone();
        drop(rows);
        if channel.send(&reply).is_err() {
            return;
        }
    }
}

/// Connections from a worker to every ps shard.
struct PsClient {
    shards: Vec<SecureChannel>,
}

impl PsClient {
    fn connect(
        ctx: &NodeContext<'_, LabeledPoint, TrainingReport>,
        addresses: &[String],
    ) -> Result<Self, String> {
        let shards = addresses
            .iter()
            .map(|a| {
                ctx.connect_peer(a)
                    .map_err(|e| format!("cannot reach ps at {a}: {e}"))
            })
            .collect::<Result<_, String>>()?;
        Ok(PsClient { shards })
    }

    /// Sends `request(shard)` to every shard and assembles the model from the replies,
    /// which must be finite and fit the model.
    fn exchange(
        &mut self,
        model: &mut LogisticModel,
        mut request: impl FnMut(usize) -> PsRequest,
    ) -> Result<(), String> {
        for (i, channel) in self.shards.iter_mut().enumerate() {
            channel
                .send(&request(i))
                .map_err(|e| format!("ps {i}: {e}"))?;
        }
        for (i, channel) in self.shards.iter_mut().enumerate() {
            let rows: Vec<ClassRow> = channel.recv().map_err(|e| format!("ps {i}: {e}"))?;
            for (class, weights, bias) in rows {
                let f = model.features;
                if class >= model.classes || weights.len() != f {
                    return Err(format!(
                        "ps {i}: a row for class {class} with {} weights does not fit the model",
                        weights.len()
                    ));
                }
                if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
                    return Err(format!("ps {i}: class {class} is not finite"));
                }
                model.weights[class * f..(class + 1) * f].copy_from_slice(&weights);
                model.bias[class] = bias;
            }
        }
        Ok(())
    }
}

/// Mini-batch gradient of the softmax loss (plus L2), grouped by ps shard.
fn gradient(
    model: &LogisticModel,
    batch: &[LabeledPoint],
    l2: f32,
    shards: usize,
) -> Vec<Vec<ClassRow>> {
    let (c_n, f_n) = (model.classes, model.features);
    let mut grad = vec![0.0f32; c_n * f_n];
    let mut grad_bias = vec![0.0f32; c_n];
    for point in batch {
        let p = model.probabilities(&point.x);
        for c in 0..c_n {
            let err = p[c] - if c == point.y { 1.0 } else { 0.0 };
            grad_bias[c] += err;
            let row = &mut grad[c * f_n..(c + 1) * f_n];
            row.iter_mut()
                .zip(&point.x)
                .for_each(|(g, v)| *g += err * v);
        }
    }
    let scale = 1.0 / batch.len().max(1) as f32;
    let mut by_shard = vec![Vec::new(); shards];
    for c in 0..c_n {
        let row: Vec<f32> = (0..f_n)
            .map(|f| grad[c * f_n + f] * scale + l2 * model.weights[c * f_n + f])
            .collect();
        by_shard[c % shards].push((c, row, grad_bias[c] * scale));
    }
    by_shard
}

/// The `worker` role's runner: reads its partition from the node's input (kept across
/// attempts), trains with asynchronous SGD against the ps shards, and reports.
pub fn worker_runner(config: PsTrainingConfig) -> impl NodeRunner<LabeledPoint, TrainingReport> {
    // Input records are consumed once; a restarted attempt trains on what was read before.
    let partitions: Mutex<HashMap<usize, Arc<Vec<LabeledPoint>>>> = Mutex::new(HashMap::new());
    move |ctx: &mut NodeContext<'_, LabeledPoint, TrainingReport>| {
        let data = {
            let mut partitions = partitions.lock().unwrap();
            let cached = partitions.entry(ctx.node.index).or_default();
            let fresh: Vec<LabeledPoint> = ctx.input.try_iter().collect();
            if !fresh.is_empty() || cached.is_empty() {
                let mut all = cached.as_ref().clone();
                all.extend(fresh);
                all.extend(ctx.input.iter());
                *cached = Arc::new(all);
            }
            Arc::clone(cached)
        };
        let addresses = ctx.spec.nodes.get("ps").cloned().unwrap_or_default();
        if addresses.is_empty() {
            return Err("the cluster has no ps role".into());
        }
        for (i, p) in data.iter().enumerate() {
            if let Some(j) = p.x.iter().position(|v| !v.is_finite()) {
                return Err(format!(
                    "example {i} of worker {}: feature {j} is {}",
                    ctx.node.index, p.x[j]
                ));
            }
            if p.x.len() != config.features || p.y >= config.classes {
                return Err(format!(
                    "example {i} of worker {}: expected {} features and a class < {}, got {} features and class {}",
                    ctx.node.index, config.features, config.classes, p.x.len(), p.y
                ));
            }
        }
        let mut client = PsClient::connect(ctx, &addresses)?;
        let mut model = LogisticModel::zeros(config.classes, config.features);
        client.exchange(&mut model, |_| PsRequest::Pull)?;
        let mut steps = 0;
        for epoch in 0..config.epochs {
            if ctx.stop.is_stopped() {
                return Ok(());
            }
            let rate = config.learning_rate / (1.0 + epoch as f32 * 0.1);
            for batch in data.chunks(config.batch_size.max(1)) {
                let mut grads = gradient(&model, batch, config.l2, addresses.len());
                client.exchange(&mut model, |shard| PsRequest::PushPull {
                    rows: std::mem::take(&mut grads[shard]),
                    rate,
                })?;
                steps += 1;
            }
        }
        ctx.emit(TrainingReport::Worker {
            worker: ctx.node.index,
            attempt: ctx.attempt,
            examples: data.len(),
            steps,
        });
        Ok(())
    }
}
