//! Whole ML jobs described in JSON (`weir run job.json`): sources, a pipeline, a graph or a
//! saved stage, what to fit on and what to transform, where to write outputs and the model.
//!
//! ```json
//! {
//!   "sources": {
//!     "train": {"path": "train.jsonl", "schema": [["features", "DenseVector"], ["label", "Double"]]},
//!     "gen":   {"className": "DenseVectorGenerator", "paramMap": {"colNames": [["features"]], "numValues": 1000}}
//!   },
//!   "pipeline": [{"className": "StandardScaler", "paramMap": {"inputCol": "features"}}],
//!   "fit": "train",
//!   "transform": "train",
//!   "output": "out/predictions",
//!   "saveModel": "out/model",
//!   "exportOnnx": "out/model.onnx"
//! }
//! ```
//!
//! Instead of `"pipeline"`, `"graph": {"inputs": [...], "nodes": [{"stage": {...}, "inputs":
//! [...], "outputs": [...]}], "outputs": [...]}` names tables by strings, and `"load": "dir"`
//! uses a saved stage. `"exportOnnx"` writes the fitted (or loaded) model as one ONNX graph
//! whose inputs are the columns of the `transform` source (else the `fit` source); see
//! [`crate::onnx`]. Relative paths are relative to the JSON file. JSON Lines rows that do
//! not fit the schema become dead letters naming the source and the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use weir_core::{DeadLetter, Job, RawJsonObject};

use crate::api::{
    load_stage, new_stage, schema_from_json, GraphBuilder, ModelCollector, Pipeline, Stage,
    StageKind, TableId,
};
use crate::benchmark::DataGenerator;
use crate::error::MlError;
use crate::table::{json_row, RowBatch, Schema, Table, DEFAULT_BATCH_ROWS};

/// Where a table of a JSON job comes from.
#[derive(Clone)]
enum Source {
    /// JSON Lines files read with a schema.
    Jsonl { path: PathBuf, schema: Schema },
    /// A Flink ML benchmark data generator.
    Generator(DataGenerator),
}

/// A parsed JSON job.
#[derive(Clone)]
pub struct JsonJob {
    sources: BTreeMap<String, Source>,
    stage: Box<dyn Stage>,
    fit: Vec<String>,
    transform: Vec<String>,
    output: Option<PathBuf>,
    save_model: Option<PathBuf>,
    export_onnx: Option<PathBuf>,
}

fn bad(message: impl Into<String>) -> MlError {
    MlError::Job(message.into())
}

fn names(value: Option<&Json>, key: &str) -> Result<Vec<String>, MlError> {
    match value {
        None => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.clone()]),
        Some(Json::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(format!("`{key}` must be a source name or a list of them"))),
        Some(_) => Err(bad(format!(
            "`{key}` must be a source name or a list of them"
        ))),
    }
}

fn stage_from_json(json: &Json, at: &str) -> Result<Box<dyn Stage>, MlError> {
    let class = json
        .get("className")
        .and_then(Json::as_str)
        .ok_or_else(|| bad(format!("{at}: `className` must be a string")))?;
    let mut stage = new_stage(class)?;
    if let Some(params) = json.get("paramMap") {
        let params = params
            .as_object()
            .ok_or_else(|| bad(format!("{at}: `paramMap` must be an object")))?;
        stage.param_map_mut().update_from_json(params)?;
    }
    Ok(stage)
}

impl JsonJob {
    /// Reads and checks a JSON job file.
    pub fn from_file(path: &Path) -> Result<JsonJob, MlError> {
        let text = std::fs::read_to_string(path).map_err(MlError::io(path))?;
        let base = path.parent().unwrap_or(Path::new("."));
        JsonJob::parse(&text, base).map_err(|e| match e {
            MlError::Job(m) => MlError::Job(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    /// Parses a JSON job; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<JsonJob, MlError> {
        let json: Json =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let root = json
            .as_object()
            .ok_or_else(|| bad("a job must be a JSON object"))?;
        for key in root.keys() {
            if !matches!(
                key.as_str(),
                "sources"
                    | "pipeline"
                    | "graph"
                    | "load"
                    | "fit"
                    | "transform"
                    | "output"
                    | "saveModel"
                    | "exportOnnx"
            ) {
                return Err(bad(format!(
                    "unknown key `{key}` (expected sources, pipeline | graph | load, fit, transform, output, saveModel, exportOnnx)"
                )));
            }
        }
        let sources = parse_sources(root, base)?;
        let stage = parse_stage(root, base)?;
        let fit = names(root.get("fit"), "fit")?;
        let transform = names(root.get("transform"), "transform")?;
        for name in fit.iter().chain(&transform) {
            if !sources.contains_key(name) {
                return Err(bad(format!("no source named `{name}`")));
            }
        }
        if fit.is_empty() && stage.kind() == StageKind::Estimator {
            return Err(bad(
                "the stages include estimators: say which source to `fit` on",
            ));
        }
        let path = |key: &str| root.get(key).and_then(Json::as_str).map(|p| base.join(p));
        Ok(JsonJob {
            sources,
            stage,
            fit,
            transform,
            output: path("output"),
            save_model: path("saveModel"),
            export_onnx: path("exportOnnx"),
        })
    }

    /// Builds the job's dataflow: sources, fit (the model goes to `models`), transform and
    /// the output sink.
    pub fn build<'s>(&self, job: &mut Job<'s>, models: &ModelCollector) -> Result<(), MlError> {
        let mut tables: BTreeMap<String, Table<'s>> = BTreeMap::new();
        for name in self.fit.iter().chain(&self.transform) {
            if !tables.contains_key(name) {
                tables.insert(name.clone(), self.source_table(job, name)?);
            }
        }
        let pick = |names: &[String]| names.iter().map(|n| tables[n].clone()).collect::<Vec<_>>();
        let outputs = if self.stage.kind() == StageKind::Estimator {
            let fitted = self.stage.fit(job, pick(&self.fit))?;
            let outputs = if self.transform.is_empty() {
                Vec::new()
            } else {
                fitted.transform(job, pick(&self.transform))?
            };
            fitted.collect(job, models);
            outputs
        } else if self.transform.is_empty() {
            Vec::new()
        } else {
            self.stage.transform(job, pick(&self.transform))?
        };
        if let Some(dir) = &self.output {
            for (i, table) in outputs.into_iter().enumerate() {
                let dir = if i == 0 {
                    dir.clone()
                } else {
                    dir.join(format!("output-{i}"))
                };
                write_table(table, &format!("output{i}"), dir);
            }
        }
        Ok(())
    }

    /// Where the fitted model is saved, if the job says so.
    pub fn save_model_path(&self) -> Option<&Path> {
        self.save_model.as_deref()
    }

    /// Where the model is exported to ONNX, if the job says so.
    pub fn export_onnx_path(&self) -> Option<&Path> {
        self.export_onnx.as_deref()
    }

    /// Whether the job fits a model (its stages include estimators).
    pub fn fits(&self) -> bool {
        self.stage.kind() == StageKind::Estimator
    }

    /// The job's stage (a loaded model holds its model data).
    pub fn stage(&self) -> &dyn Stage {
        &*self.stage
    }

    /// The schema of the rows the model scores: the `transform` source's, else the `fit`
    /// source's.
    pub fn scored_schema(&self) -> Result<Schema, MlError> {
        let name = self.transform.first().or(self.fit.first()).ok_or_else(|| {
            bad("`exportOnnx` needs a `transform` or `fit` source for the input columns")
        })?;
        match &self.sources[name] {
            Source::Jsonl { schema, .. } => Ok(schema.clone()),
            Source::Generator(generator) => Ok(generator.schema().clone()),
        }
    }

    fn source_table<'s>(&self, job: &mut Job<'s>, name: &str) -> Result<Table<'s>, MlError> {
        Ok(match &self.sources[name] {
            Source::Generator(generator) => generator.to_table(job, name),
            Source::Jsonl { path, schema } => read_jsonl_table(job, name, path, schema.clone()),
        })
    }
}

fn parse_sources(
    root: &Map<String, Json>,
    base: &Path,
) -> Result<BTreeMap<String, Source>, MlError> {
    let Some(sources) = root.get("sources") else {
        return Ok(BTreeMap::new());
    };
    let sources = sources
        .as_object()
        .ok_or_else(|| bad("`sources` must be an object"))?;
    sources
        .iter()
        .map(|(name, spec)| {
            let at = format!("source `{name}`");
            let source = if let Some(class) = spec.get("className").and_then(Json::as_str) {
                let params = spec
                    .get("paramMap")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default();
                Source::Generator(DataGenerator::parse(class, &params)?)
            } else {
                let path = spec.get("path").and_then(Json::as_str).ok_or_else(|| {
                    bad(format!(
                        "{at}: needs `path` (JSON Lines) or `className` (a generator)"
                    ))
                })?;
                let schema = schema_from_json(spec.get("schema").unwrap_or(&Json::Null))
                    .map_err(|e| bad(format!("{at}: `schema`: {e}")))?;
                Source::Jsonl {
                    path: base.join(path),
                    schema,
                }
            };
            Ok((name.clone(), source))
        })
        .collect()
}

fn parse_stage(root: &Map<String, Json>, base: &Path) -> Result<Box<dyn Stage>, MlError> {
    let given: Vec<&str> = ["pipeline", "graph", "load"]
        .into_iter()
        .filter(|k| root.contains_key(*k))
        .collect();
    if given.len() != 1 {
        return Err(bad(
            "a job needs exactly one of `pipeline`, `graph` or `load`",
        ));
    }
    match given[0] {
        "pipeline" => {
            let stages = root["pipeline"]
                .as_array()
                .ok_or_else(|| bad("`pipeline` must be a list of stages"))?;
            let stages = stages
                .iter()
                .enumerate()
                .map(|(i, s)| stage_from_json(s, &format!("pipeline stage {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Box::new(Pipeline::new(stages)))
        }
        "graph" => parse_graph(&root["graph"]),
        _ => {
            let dir = root["load"]
                .as_str()
                .ok_or_else(|| bad("`load` must be a directory"))?;
            load_stage(&base.join(dir))
        }
    }
}

fn parse_graph(graph: &Json) -> Result<Box<dyn Stage>, MlError> {
    let mut builder = GraphBuilder::new();
    let mut ids: BTreeMap<String, TableId> = BTreeMap::new();
    let inputs = names(graph.get("inputs"), "graph.inputs")?;
    for name in &inputs {
        ids.insert(name.clone(), builder.create_table_id());
    }
    let lookup =
        |ids: &BTreeMap<String, TableId>, names: &[String]| -> Result<Vec<TableId>, MlError> {
            names
                .iter()
                .map(|n| {
                    ids.get(n)
                        .copied()
                        .ok_or_else(|| bad(format!("graph: no table `{n}` yet")))
                })
                .collect()
        };
    let nodes = graph
        .get("nodes")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("`graph.nodes` must be a list"))?;
    let mut estimator = false;
    for (i, node) in nodes.iter().enumerate() {
        let stage = stage_from_json(
            node.get("stage").unwrap_or(&Json::Null),
            &format!("graph node {i}"),
        )?;
        let node_inputs = lookup(&ids, &names(node.get("inputs"), "inputs")?)?;
        let node_outputs = names(node.get("outputs"), "outputs")?;
        estimator |= stage.kind() == StageKind::Estimator;
        let out = if stage.kind() == StageKind::Estimator {
            builder.add_estimator(stage, &node_inputs)
        } else {
            builder.add_algo_operator_with_outputs(stage, &node_inputs, node_outputs.len().max(1))
        };
        for (name, id) in node_outputs.into_iter().zip(out) {
            ids.insert(name, id);
        }
    }
    let input_ids = lookup(&ids, &inputs)?;
    let output_ids = lookup(&ids, &names(graph.get("outputs"), "graph.outputs")?)?;
    Ok(if estimator {
        Box::new(builder.build_estimator(&input_ids, &output_ids))
    } else {
        Box::new(builder.build_model(&input_ids, &output_ids))
    })
}

/// A JSON Lines source as a table: lines that are not JSON objects, and objects that do not
/// fit the schema, become dead letters.
fn read_jsonl_table<'s>(job: &mut Job<'s>, name: &str, path: &Path, schema: Schema) -> Table<'s> {
    let row_schema = schema.clone();
    let source = name.to_string();
    let rows = job.read_jsonl::<RawJsonObject>(name, path).try_map(
        format!("{name}.rows"),
        move |object: RawJsonObject| {
            let fail = |reason: String| {
                DeadLetter::new(&source, &source, reason, object.text().as_bytes())
            };
            let json: Json =
                serde_json::from_str(object.text()).map_err(|e| fail(e.to_string()))?;
            json_row(&row_schema, &json).map_err(fail)
        },
    );
    let batch_schema = schema.clone();
    let stream = rows.map_batch(format!("{name}.batches"), move |rows| {
        RowBatch::from_rows(&batch_schema, rows, DEFAULT_BATCH_ROWS)
            .expect("rows were checked against the schema")
    });
    Table::new(schema, stream)
}

/// Writes a table as JSON Lines part files into `dir`.
fn write_table(table: Table<'_>, op: &str, dir: PathBuf) {
    let schema = table.schema.clone();
    table
        .stream
        .flat_map(format!("{op}.json"), move |batch: RowBatch| {
            (0..batch.rows())
                .map(|i| {
                    let text = batch.json_row(&schema, i).to_string();
                    serde_json::from_str::<RawJsonObject>(&text).expect("a row is a JSON object")
                })
                .collect::<Vec<_>>()
        })
        .write_jsonl(op, dir);
}
