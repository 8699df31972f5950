//! The operators `weir bench` measures, as stages between a generated source and a counting
//! sink. Every 64th source record carries its emission time; stages carry it through (the
//! latest input's time for aggregates and joins), and the sink turns it into a latency.
//!
//! `ServedPredict` scores like `Predict`, but over HTTP: the bench starts `weir serve
//! --model` as a separate process (a [`ModelServer`]) and each operator instance sends its
//! records to it as TensorFlow Serving REST requests.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use weir_core::{op, Data, DataStream, Job};
use weir_ml::{
    add_am_role, add_role, ps_runner, worker_runner, BatchTransitions, ClusterConfig,
    FailoverStrategy, PsTrainingConfig,
};
use weir_onnx::{ModelUpdate, PredictConfig, PredictExt};

use super::data::{short_name, Dataset};
use super::spec::ClassSpec;

/// Nanoseconds since the first call (never 0, which means "not stamped").
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    (START.get_or_init(Instant::now).elapsed().as_nanos() as u64).max(1)
}

/// Records that reach the sink, and sampled latencies in ns.
#[derive(Clone, Default)]
pub struct Tally {
    pub outputs: Arc<AtomicU64>,
    pub latencies: Arc<Mutex<Vec<u64>>>,
}

/// The class names of Weir's own operator stages (other classes are Flink ML stages).
pub const WEIR_STAGES: &[&str] = &[
    "Map",
    "FlatMap",
    "KeyByAggregate",
    "KeyedSum",
    "Join",
    "Predict",
    "ServedPredict",
    "PsTraining",
];

/// A stage, checked against its input before anything runs.
#[derive(Clone, Debug)]
pub enum Stage {
    Map {
        factor: f32,
        offset: f32,
    },
    FlatMap,
    KeyByAggregate,
    KeyedSum,
    Join {
        table_keys: u64,
    },
    Predict {
        model: PathBuf,
        max_batch: usize,
    },
    /// `Predict` through a model server; `url` is set by [`Stage::start_server`].
    ServedPredict {
        model: PathBuf,
        max_batch: usize,
        url: Option<String>,
    },
    PsTraining {
        epochs: usize,
        batch_size: usize,
        learning_rate: f32,
        classes: usize,
    },
}

impl Stage {
    /// Relative model paths are resolved against `base` (the configuration file's directory).
    pub fn parse(
        stage: &ClassSpec,
        model: Option<&ClassSpec>,
        data: &Dataset,
        base: &std::path::Path,
    ) -> Result<Stage> {
        let class = short_name(&stage.class_name);
        let need = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                bail!(
                    "stage `{class}` needs {what} input, but inputData gives {}",
                    data.kind()
                )
            }
        };
        Ok(match class {
            "Map" => {
                need(matches!(data, Dataset::Dense(_)), "dense-vector")?;
                Stage::Map {
                    factor: stage.float("factor", 2.0)? as f32,
                    offset: stage.float("offset", 0.0)? as f32,
                }
            }
            "FlatMap" => {
                need(matches!(data, Dataset::Strings(_)), "string")?;
                Stage::FlatMap
            }
            "KeyByAggregate" => {
                need(matches!(data, Dataset::Strings(_)), "string")?;
                Stage::KeyByAggregate
            }
            "KeyedSum" => {
                need(matches!(data, Dataset::KeyValues(_)), "key-value")?;
                Stage::KeyedSum
            }
            "Join" => {
                need(matches!(data, Dataset::Strings(_)), "string")?;
                Stage::Join {
                    table_keys: stage.uint("tableKeys", 1000)?,
                }
            }
            "Predict" | "ServedPredict" => {
                need(matches!(data, Dataset::Dense(_)), "dense-vector")?;
                let Some(model) = model else {
                    bail!("stage `{class}` needs `modelData` with paramMap.path (an .onnx file)")
                };
                let path = base.join(model.string("path")?);
                if !path.is_file() {
                    bail!("modelData path {} is not a file", path.display());
                }
                let max_batch = (stage.uint("maxBatch", 256)? as usize).max(1);
                if class == "Predict" {
                    Stage::Predict {
                        model: path,
                        max_batch,
                    }
                } else {
                    Stage::ServedPredict {
                        model: path,
                        max_batch,
                        url: None,
                    }
                }
            }
            "PsTraining" => {
                let Dataset::Labeled(points) = data else {
                    need(false, "labelled-point")?;
                    unreachable!()
                };
                Stage::PsTraining {
                    epochs: stage.uint("epochs", 1)? as usize,
                    batch_size: stage.uint("batchSize", 32)? as usize,
                    learning_rate: stage.float("learningRate", 0.5)? as f32,
                    classes: points.iter().map(|p| p.y + 1).max().unwrap_or(2),
                }
            }
            other => bail!(
                "unknown stage `{other}` (known: Map, FlatMap, KeyByAggregate, KeyedSum, Join, Predict, ServedPredict, PsTraining)"
            ),
        })
    }

    /// Starts what the stage needs outside the dataflow, once for all its runs: for
    /// `ServedPredict`, `weir serve --model` (stopped when the returned guard drops).
    pub fn start_server(&mut self) -> Result<Option<ModelServer>> {
        match self {
            Stage::ServedPredict {
                model,
                max_batch,
                url,
            } => {
                let server = ModelServer::start(model, *max_batch)?;
                *url = Some(server.url.clone());
                Ok(Some(server))
            }
            _ => Ok(None),
        }
    }
}

/// The name the bench's model server serves its model under.
const SERVED_NAME: &str = "bench";

/// A `weir serve --model` process of this binary; killed when dropped.
pub struct ModelServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's stderr, read by a thread of its own (so that it never blocks on it).
    stderr: Option<JoinHandle<String>>,
}

impl ModelServer {
    /// Starts `weir serve --model MODEL --listen 127.0.0.1:0 --max-batch MAX_BATCH` and
    /// waits until it listens.
    fn start(model: &Path, max_batch: usize) -> Result<ModelServer> {
        let exe =
            std::env::current_exe().context("cannot find the weir binary to run `weir serve`")?;
        let mut child = Command::new(&exe)
            .arg("serve")
            .arg("--model")
            .arg(model)
            .args(["--name", SERVED_NAME, "--listen", "127.0.0.1:0"])
            .args(["--max-batch", &max_batch.to_string()])
            .args(["--max-rows", &max_batch.max(4096).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{} serve`", exe.display()))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take().map(|mut err| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                text
            })
        });
        // The guard exists from here on: an error below kills the process.
        let mut server = ModelServer {
            child,
            url: String::new(),
            stderr,
        };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            // The first line is all `weir serve` prints on stdout.
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match line.trim().strip_prefix("serving on ") {
            Some(url) => {
                server.url = url.to_string();
                Ok(server)
            }
            None => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                let stderr = server
                    .stderr
                    .take()
                    .and_then(|t| t.join().ok())
                    .unwrap_or_default();
                // The error, without the backtrace `RUST_BACKTRACE` adds to it.
                let stderr = stderr.split("Stack backtrace:").next().unwrap_or_default();
                bail!(
                    "the model server `weir serve --model {}` did not start: {}",
                    model.display(),
                    stderr.trim()
                )
            }
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Scores `rows` with one TensorFlow Serving REST request: the label of each row.
fn score_remote(agent: &ureq::Agent, endpoint: &str, rows: &[&[f32]]) -> Result<Vec<i64>, String> {
    let body = format!(
        "{{\"instances\":{}}}",
        serde_json::to_string(rows).map_err(|e| e.to_string())?
    );
    let mut response = agent
        .post(endpoint)
        .header("Content-Type", "application/json")
        .send(&body)
        .map_err(|e| format!("POST {endpoint}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("POST {endpoint}: reading the answer: {e}"))?;
    if status != 200 {
        return Err(format!("POST {endpoint}: status {status}: {text}"));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| format!("POST {endpoint}: the answer is not JSON: {e}"))?;
    let predictions = answer
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("POST {endpoint}: no `predictions` in the answer"))?;
    if predictions.len() != rows.len() {
        return Err(format!(
            "POST {endpoint}: {} predictions for {} instances",
            predictions.len(),
            rows.len()
        ));
    }
    predictions
        .iter()
        .map(|p| {
            // One output: the label itself; several: an object of outputs.
            p.get("label")
                .unwrap_or(p)
                .as_i64()
                .ok_or_else(|| format!("POST {endpoint}: a prediction without a label: {p}"))
        })
        .collect()
}

/// Source over generated data: instance `i` of `p` emits records `i, i + p, …`; every 64th
/// record is stamped.
fn source<'s, T: Data>(
    job: &mut Job<'s>,
    data: &Arc<Vec<T>>,
    p: usize,
) -> DataStream<'s, (u64, T)> {
    let data = Arc::clone(data);
    job.generate(
        op("source").parallelism(p),
        Some(data.len() as u64),
        move |k| {
            let stamp = if k % 64 == 0 { now_ns() } else { 0 };
            (stamp, data[k as usize].clone())
        },
    )
}

fn sink<T: Data>(stream: DataStream<'_, (u64, T)>, p: usize, tally: &Tally) {
    weighted_sink(stream, p, tally, |_| 1);
}

/// A sink where a record stands for `weight(record)` outputs (a consolidated join change).
fn weighted_sink<T: Data>(
    stream: DataStream<'_, (u64, T)>,
    p: usize,
    tally: &Tally,
    weight: impl Fn(&T) -> u64 + 'static,
) {
    let mut counts = SinkCounts::new(tally);
    stream.for_each(op("sink").parallelism(p), move |(stamp, record)| {
        counts.outputs += weight(&record);
        if stamp != 0 {
            counts.stamped(stamp);
        }
    });
}

/// One sink instance's counts, added to the run's [`Tally`] when the job drops the sink: the
/// workers do not share a counter or a lock per record (at `-w 2` that contention alone cost
/// more than the keyed stages' scaling gained).
struct SinkCounts {
    outputs: u64,
    stamped: u64,
    latencies: Vec<u64>,
    tally: Tally,
}

/// A latency is measured for one stamped output in this many (aggregates stamp nearly every
/// output; the clock read is not free).
const LATENCY_SAMPLE_EVERY: u64 = 8;

impl SinkCounts {
    fn new(tally: &Tally) -> Self {
        SinkCounts {
            outputs: 0,
            stamped: 0,
            latencies: Vec::new(),
            tally: tally.clone(),
        }
    }

    fn stamped(&mut self, stamp: u64) {
        if self.stamped % LATENCY_SAMPLE_EVERY == 0 {
            self.latencies.push(now_ns().saturating_sub(stamp));
        }
        self.stamped += 1;
    }
}

impl Drop for SinkCounts {
    fn drop(&mut self) {
        self.tally
            .outputs
            .fetch_add(self.outputs, Ordering::Relaxed);
        let mut latencies = self
            .tally
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        latencies.append(&mut self.latencies);
    }
}

/// A keyed total with the latest latency stamp of the records in it (so that the sink
/// measures latency through keyed aggregates too).
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct StampedTotal<V> {
    stamp: u64,
    total: V,
}

impl StampedTotal<u64> {
    fn count<T>(&mut self, (stamp, _): (u64, T)) {
        self.stamp = self.stamp.max(stamp);
        self.total += 1;
    }
}

impl StampedTotal<f64> {
    fn add(&mut self, (stamp, (_, value)): (u64, (u64, f64))) {
        self.stamp = self.stamp.max(stamp);
        self.total += value;
    }
}

impl<V: std::ops::AddAssign> StampedTotal<V> {
    fn merge(&mut self, part: StampedTotal<V>) {
        self.stamp = self.stamp.max(part.stamp);
        self.total += part.total;
    }
}

/// Builds source → stage → sink on one worker.
pub fn build(job: &mut Job<'_>, stage: &Stage, data: &Dataset, p: usize, tally: &Tally) {
    let stage_op = || op("stage").parallelism(p);
    match (stage, data) {
        (Stage::Map { factor, offset }, Dataset::Dense(d)) => {
            let (factor, offset) = (*factor, *offset);
            let out = source(job, d, p).map(stage_op(), move |(s, mut v)| {
                v.iter_mut().for_each(|x| *x = *x * factor + offset);
                (s, v)
            });
            sink(out, p, tally);
        }
        (Stage::FlatMap, Dataset::Strings(d)) => {
            let out = source(job, d, p).flat_map(stage_op(), |(s, line)| {
                line.split_whitespace()
                    .map(|w| (s, w.to_string()))
                    .collect::<Vec<_>>()
            });
            sink(out, p, tally);
        }
        (Stage::KeyByAggregate, Dataset::Strings(d)) => {
            let out = source(job, d, p)
                .key_by(|r: &(u64, String)| r.1.clone())
                .aggregate_combined(
                    stage_op(),
                    |_| StampedTotal::default(),
                    StampedTotal::count,
                    StampedTotal::merge,
                )
                .map("unkey", |(key, t)| (t.stamp, (key, t.total)));
            sink(out, p, tally);
        }
        (Stage::KeyedSum, Dataset::KeyValues(d)) => {
            let out = source(job, d, p)
                .key_by(|r: &(u64, (u64, f64))| r.1 .0)
                .aggregate_combined(
                    stage_op(),
                    |_| StampedTotal::default(),
                    StampedTotal::add,
                    StampedTotal::merge,
                )
                .map("unkey", |(key, t)| (t.stamp, (key, t.total)));
            sink(out, p, tally);
        }
        (Stage::Join { table_keys }, Dataset::Strings(d)) => {
            let table: Vec<(String, u64)> =
                (0..*table_keys).map(|k| (format!("w{k}"), k)).collect();
            let dimension = job.from_vec(op("table").parallelism(p), table);
            let out = source(job, d, p)
                .map("by_key", |(s, w)| (w, s))
                .join(stage_op(), dimension)
                .map("unkey", |change| {
                    // Equal matches within an epoch are consolidated into one change.
                    let (key, s, value) = change.data;
                    (s, (key, value, change.diff))
                });
            weighted_sink(out, p, tally, |r| r.2.max(0) as u64);
        }
        (Stage::Predict { model, max_batch }, Dataset::Dense(d)) => {
            let models = job.from_vec(
                op("model").parallelism(1),
                vec![ModelUpdate::from_path("bench", 1, model)],
            );
            let (scored, _dead) = source(job, d, p).predict(
                stage_op(),
                models,
                |r: &(u64, Vec<f32>), row: &mut Vec<f32>| row.extend_from_slice(&r.1),
                PredictConfig {
                    max_batch: *max_batch,
                    ..PredictConfig::default()
                },
            );
            sink(scored.map("label", |p| (p.record.0, p.label)), p, tally);
        }
        (Stage::ServedPredict { max_batch, url, .. }, Dataset::Dense(d)) => {
            let max_batch = *max_batch;
            let server = url.clone();
            let endpoint = url
                .as_ref()
                .map(|url| format!("{url}/v1/models/{SERVED_NAME}:predict"));
            // One keep-alive agent per operator instance.
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into();
            let scored = source(job, d, p).try_map_batch(
                stage_op(),
                move |batch: Vec<(u64, Vec<f32>)>| -> Result<Vec<(u64, i64)>, String> {
                    let (Some(server), Some(endpoint)) = (&server, &endpoint) else {
                        return Err("no model server was started for this stage".into());
                    };
                    let mut out = Vec::with_capacity(batch.len());
                    for chunk in batch.chunks(max_batch) {
                        let rows: Vec<&[f32]> = chunk.iter().map(|r| r.1.as_slice()).collect();
                        let labels = score_remote(&agent, endpoint, &rows)
                            .map_err(|e| format!("model server {server}: {e}"))?;
                        out.extend(chunk.iter().map(|r| r.0).zip(labels));
                    }
                    Ok(out)
                },
            );
            sink(scored, p, tally);
        }
        (
            Stage::PsTraining {
                epochs,
                batch_size,
                learning_rate,
                classes,
            },
            Dataset::Labeled(d),
        ) => {
            let training = PsTrainingConfig {
                classes: *classes,
                features: d.first().map_or(0, |x| x.x.len()),
                learning_rate: *learning_rate,
                l2: 1e-4,
                epochs: *epochs,
                batch_size: *batch_size,
            };
            let cluster = ClusterConfig::new()
                .role("worker", p)
                .role("ps", 1)
                .failover(FailoverStrategy::RestartAll, 1, Duration::ZERO)
                .transitions(BatchTransitions);
            let am = add_am_role(job, &cluster);
            let points = source(job, d, p).map("unstamp", |(_, point)| point);
            let trained = add_role(
                job,
                &cluster,
                &am,
                "worker",
                Some(points),
                worker_runner(training),
            );
            let shards = add_role(job, &cluster, &am, "ps", None, ps_runner(training));
            // Training has no per-record output: the sink counts the reports.
            sink(
                trained
                    .union("reports", shards)
                    .map("unstamped", |r| (0u64, r)),
                p,
                tally,
            );
        }
        _ => unreachable!("Stage::parse checked the input kind"),
    }
}
