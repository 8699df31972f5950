//! One benchmark of a Flink ML benchmark file: the stage and the generators, checked before
//! any data is made, then run as a Weir job (Flink's `BenchmarkUtils.runBenchmark`):
//! estimators are fitted and their model data rows counted; transformers and models
//! transform, and every output row is counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json};
use weir_core::{execute, Config};

use super::generator::DataGenerator;
use crate::api::{new_stage, Stage, StageKind};
use crate::error::MlError;
use crate::table::Table;

/// A benchmark whose stage and generators are known and whose params are valid.
#[derive(Clone)]
pub struct FlinkBenchmark {
    /// The benchmark's name.
    pub name: String,
    stage: Box<dyn Stage>,
    input: DataGenerator,
    model: Option<DataGenerator>,
}

/// What one run measured.
#[derive(Clone, Copy, Debug)]
pub struct BenchmarkRun {
    /// Wall time of the whole job (generation included, as in Flink).
    pub time: Duration,
    /// `numValues` of the input generator.
    pub input_records: u64,
    /// Rows of all output tables (model data rows for estimators).
    pub output_records: u64,
}

/// A class name and its `paramMap`.
type ClassSpec<'a> = (&'a str, Map<String, Json>);

fn class_and_params<'a>(
    benchmark: &'a Map<String, Json>,
    key: &str,
) -> Result<Option<ClassSpec<'a>>, MlError> {
    let Some(value) = benchmark.get(key) else {
        return Ok(None);
    };
    let class = value
        .get("className")
        .and_then(Json::as_str)
        .ok_or_else(|| MlError::Job(format!("`{key}.className` must be a string")))?;
    let params = match value.get("paramMap") {
        None => Map::new(),
        Some(Json::Object(m)) => m.clone(),
        Some(_) => return Err(MlError::Job(format!("`{key}.paramMap` must be an object"))),
    };
    Ok(Some((class, params)))
}

impl FlinkBenchmark {
    /// Checks a benchmark entry (`{"stage": ..., "inputData": ..., "modelData"?: ...}`): the
    /// stage class and generators must be known and every param valid.
    pub fn parse(name: &str, benchmark: &Map<String, Json>) -> Result<FlinkBenchmark, MlError> {
        let (class, params) = class_and_params(benchmark, "stage")?
            .ok_or_else(|| MlError::Job("the benchmark has no `stage`".into()))?;
        let mut stage = new_stage(class)?;
        stage.param_map_mut().update_from_json(&params)?;
        let (class, params) = class_and_params(benchmark, "inputData")?
            .ok_or_else(|| MlError::Job("the benchmark has no `inputData`".into()))?;
        let input = DataGenerator::parse(class, &params)?;
        let model = class_and_params(benchmark, "modelData")?
            .map(|(class, params)| DataGenerator::parse(class, &params))
            .transpose()?;
        if model.is_some() && stage.kind() != StageKind::Model {
            return Err(MlError::Job(format!(
                "`modelData` is given, but {} is not a model",
                stage.short_name()
            )));
        }
        Ok(FlinkBenchmark {
            name: name.to_string(),
            stage,
            input,
            model,
        })
    }

    /// Caps the input generator's `numValues`.
    pub fn cap_num_values(&mut self, cap: u64) {
        self.input.cap_num_values(cap);
    }

    /// The number of input records.
    pub fn input_records(&self) -> u64 {
        self.input.num_values()
    }

    /// Runs the benchmark once on `workers` threads.
    pub fn run(&self, workers: usize) -> Result<BenchmarkRun, MlError> {
        let count = Arc::new(AtomicU64::new(0));
        let (this, sink) = (self.clone(), Arc::clone(&count));
        let started = Instant::now();
        execute(Config::threads(workers).with_verbose(false), move |job| {
            let input = this.input.to_table(job, "inputData");
            let outputs: Vec<Table> = match (&this.model, this.stage.kind()) {
                (Some(model), _) => {
                    let data = model.to_table(job, "modelData");
                    this.stage.transform_with(job, vec![input], vec![data])?
                }
                (None, StageKind::Estimator) => this.stage.fit(job, vec![input])?.model_data,
                (None, _) => this.stage.transform(job, vec![input])?,
            };
            for (i, output) in outputs.into_iter().enumerate() {
                let sink = Arc::clone(&sink);
                output.stream.for_each(format!("count{i}"), move |batch| {
                    sink.fetch_add(batch.rows() as u64, Ordering::Relaxed);
                });
            }
            Ok(())
        })?;
        Ok(BenchmarkRun {
            time: started.elapsed(),
            input_records: self.input.num_values(),
            output_records: count.load(Ordering::Relaxed),
        })
    }
}
