//! The operators `weir bench` measures, as stages between a generated source and a counting
//! sink. Every 64th source record carries its emission time; stages carry it through (the
//! latest input's time for aggregates and joins), and the sink turns it into a latency.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
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

/// A stage, checked against its input before anything runs.
#[derive(Clone, Debug)]
pub enum Stage {
    Map {
        factor: f32,
        offset: f32,
    },
    FlatMap,
    KeyByAggregate,
    Join {
        table_keys: u64,
    },
    Predict {
        model: PathBuf,
        max_batch: usize,
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
            "Join" => {
                need(matches!(data, Dataset::Strings(_)), "string")?;
                Stage::Join {
                    table_keys: stage.uint("tableKeys", 1000)?,
                }
            }
            "Predict" => {
                need(matches!(data, Dataset::Dense(_)), "dense-vector")?;
                let Some(model) = model else {
                    bail!("stage `Predict` needs `modelData` with paramMap.path (an .onnx file)")
                };
                let path = base.join(model.string("path")?);
                if !path.is_file() {
                    bail!("modelData path {} is not a file", path.display());
                }
                Stage::Predict {
                    model: path,
                    max_batch: stage.uint("maxBatch", 256)? as usize,
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
                "unknown stage `{other}` (known: Map, FlatMap, KeyByAggregate, Join, Predict, PsTraining)"
            ),
        })
    }
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
    let tally = tally.clone();
    stream.for_each(op("sink").parallelism(p), move |(stamp, record)| {
        tally.outputs.fetch_add(weight(&record), Ordering::Relaxed);
        if stamp != 0 {
            tally
                .latencies
                .lock()
                .unwrap()
                .push(now_ns().saturating_sub(stamp));
        }
    });
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
                .aggregate(
                    stage_op(),
                    |_| (0u64, 0u64),
                    |acc, (s, _)| {
                        acc.0 = acc.0.max(s);
                        acc.1 += 1;
                    },
                )
                .map("unkey", |(key, (s, n))| (s, (key, n)));
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
