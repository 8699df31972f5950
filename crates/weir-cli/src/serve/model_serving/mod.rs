//! `weir serve --model`: any ONNX model behind TensorFlow Serving's REST API and KServe's
//! Open Inference Protocol v2, with requests of concurrent clients batched into shared
//! `Session::run` calls by the predict operator's scorer.

mod batcher;
mod protocols;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use weir_onnx::{ModelInfo, ModelRunner, ModelUpdate, SessionOptions, TensorPredictConfig};

use super::answer::Answer;
use super::server::{HttpStats, Server};
use crate::scoring::request::InputTypes;
use batcher::Batcher;

/// The model being served.
pub struct ServedModel {
    /// The name clients address it by.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// What it declares.
    pub info: ModelInfo,
    /// The inputs requests feed.
    pub types: InputTypes,
    /// The outputs' names.
    pub outputs: Vec<String>,
    /// Most rows one request may hold.
    pub max_rows: usize,
    batcher: Batcher,
    http: Arc<HttpStats>,
}

/// Where the model file is: `PATH` itself, or in a `NAME/VERSION/` layout (TensorFlow
/// Serving's), the `.onnx` file of the highest numbered version directory. Returns the file,
/// the name and the version.
fn locate(path: &Path, name: Option<&str>) -> Result<(PathBuf, String, u64)> {
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    if path.is_file() {
        let name = name
            .map(str::to_string)
            .or_else(|| stem(path))
            .unwrap_or("model".into());
        return Ok((path.to_path_buf(), name, 1));
    }
    let versions = std::fs::read_dir(path).with_context(|| format!("{}", path.display()))?;
    let newest = versions
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u64>().ok()?, e.path())))
        .filter(|(_, p)| p.is_dir())
        .max_by_key(|(v, _)| *v);
    let Some((version, dir)) = newest else {
        bail!(
            "{}: neither a model file nor a NAME/ directory of numbered VERSION/ directories",
            path.display()
        );
    };
    let file = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .min()
        .with_context(|| format!("{}: no .onnx file", dir.display()))?;
    let name = name.map(str::to_string).or_else(|| {
        let base = path.canonicalize().ok()?;
        stem(&base)
    });
    Ok((file, name.unwrap_or("model".into()), version))
}

/// What `--model` serving is configured with.
pub struct ModelServingArgs<'a> {
    pub model: &'a Path,
    pub name: Option<&'a str>,
    pub max_batch: usize,
    pub batch_wait: Duration,
    pub max_rows: usize,
    pub intra_threads: usize,
}

/// Loads the model and builds the server that serves it.
pub fn server(args: &ModelServingArgs<'_>, limits: super::server::Limits) -> Result<Server> {
    let (file, name, version) = locate(args.model, args.name)?;
    let info = weir_onnx::inspect(&file)?;
    let config = TensorPredictConfig {
        max_batch: args.max_batch,
        session: SessionOptions {
            intra_threads: args.intra_threads,
            ..SessionOptions::default()
        },
        ..TensorPredictConfig::for_model(&info)
    };
    let outputs = config.outputs.iter().map(|s| s.name.clone()).collect();
    let runner = ModelRunner::load(&ModelUpdate::from_path(&name, version, &file), config)?;
    stderr_line!(
        "weir serve: serving {} as `{name}` version {version}",
        file.display()
    );
    let http = Arc::new(HttpStats::default());
    let served = Arc::new(ServedModel {
        types: InputTypes::of(&info),
        name,
        version,
        info,
        outputs,
        max_rows: args.max_rows,
        batcher: Batcher::start(runner, args.max_batch, args.batch_wait),
        http: Arc::clone(&http),
    });
    Ok(Server {
        limits,
        stats: http,
        // Handlers wait for the batcher: let tokio move other connections off this thread.
        handler: Box::new(move |method, path, body| {
            tokio::task::block_in_place(|| protocols::route(&served, method, path, body))
        }),
    })
}

/// Prometheus text for `GET /metrics`.
fn metrics(model: &ServedModel) -> Answer {
    let stats = &model.batcher.stats;
    let mut metrics = model.http.metrics().to_vec();
    metrics.extend([
        (
            "weir_serve_rows_total",
            "counter",
            "Rows scored.",
            stats.rows.load(Ordering::Relaxed),
        ),
        (
            "weir_serve_batches_total",
            "counter",
            "Session::run batches (rows of concurrent requests together).",
            stats.batches.load(Ordering::Relaxed),
        ),
    ]);
    Answer::prometheus(&metrics)
}
