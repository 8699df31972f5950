//! `weir predict`: scores a JSON Lines file (or a TensorFlow Serving request file) with any
//! ONNX model, on the predict operator, and writes one JSON line per record.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use weir_core::{execute, Config, DataStream};
use weir_onnx::{
    tensor_from_json, Batching, ElementType, GraphOptimization, InputRows, ModelInfo, ModelUpdate,
    OutputRow, PredictExt, SessionOptions, Tensor, TensorPredictConfig,
};

use crate::predict_endpoints::{Endpoint, Endpoints};
use crate::scoring::request::{tf_serving_requests, InputTypes, ScoreRequest};
use crate::scoring::scored::ScoredLine;

/// Largest TensorFlow Serving request file read whole, in bytes.
const MAX_TF_FILE: u64 = 1 << 30;

/// `weir predict`'s flags.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// The model (`.onnx`).
    #[arg(long, required_unless_present = "models")]
    pub model: Option<PathBuf>,
    /// Model versions from a model topic, `kafka://HOST:PORT/TOPIC` (see `weir kafka
    /// publish-model`): scoring starts with the newest version the topic holds at the start
    /// (it also gives the interface), and with `--follow` later versions swap in live.
    /// `--model-versions N` replays the topic's first N versions instead.
    #[arg(long)]
    pub models: Option<String>,
    /// JSON Lines, one record a line: `{"id": ..., "inputs": {"name": nested array, ...}}`;
    /// or a TensorFlow Serving request (`{"instances": [...]}` or `{"inputs": ...}`); or a
    /// topic of such lines, `kafka://HOST:PORT/TOPIC`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output directory: `part-NNNNN.jsonl` files of `{"id": ..., "outputs": {...}}` lines,
    /// and `dead_letters.jsonl` for records that could not be scored; or a topic,
    /// `kafka://HOST:PORT/TOPIC` (keyed by id; dead letters then go to the job's log, or to
    /// `--dead-letters FILE` after `--`).
    #[arg(long)]
    pub output: PathBuf,
    /// Keep reading Kafka inputs (records and model versions) until stopped, instead of
    /// reading what the topics hold at the start.
    #[arg(long)]
    pub follow: bool,
    /// End the model stream after this many versions (with `--follow`, so that the job ends).
    #[arg(long)]
    pub model_versions: Option<u64>,
    /// Worker threads.
    #[arg(short = 'w', long = "threads", default_value_t = 1)]
    pub threads: usize,
    /// Largest batch of records a run (for models whose batch axis is dynamic).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Each record is a whole run: inputs are full tensors and outputs are returned whole
    /// (for models without a batch axis).
    #[arg(long)]
    pub whole: bool,
    /// What NaN and infinite inputs do: become dead letters, or go to the model.
    #[arg(long, value_enum, default_value_t = Nan::Reject)]
    pub nan: Nan,
    /// A constant input fed to every run: `NAME=JSON` (repeatable).
    #[arg(long = "constant", value_name = "NAME=JSON")]
    pub constants: Vec<String>,
    /// ONNX Runtime intra-op threads per session.
    #[arg(long, default_value_t = 1)]
    pub intra_threads: usize,
    /// Graph optimisation level.
    #[arg(long, value_enum, default_value_t = Optimization::All)]
    pub optimization: Optimization,
    /// A directory caching optimised models between runs.
    #[arg(long)]
    pub optimized_model_cache: Option<PathBuf>,
    /// Replace what the output directory holds.
    #[arg(long)]
    pub overwrite: bool,
    /// Job flags for a cluster (`-n 2 -p 0 -h hosts.txt`), after `--`.
    #[arg(last = true)]
    pub job_args: Vec<String>,
}

/// `--nan`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Nan {
    /// Dead letters.
    Reject,
    /// Fed to the model.
    Allow,
}

/// `--optimization`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Optimization {
    /// None.
    Disable,
    /// Basic.
    Basic,
    /// Extended.
    Extended,
    /// Extended plus layout optimisations.
    Layout,
    /// All (ONNX Runtime's default).
    All,
}

impl From<Optimization> for GraphOptimization {
    fn from(o: Optimization) -> Self {
        match o {
            Optimization::Disable => GraphOptimization::Disable,
            Optimization::Basic => GraphOptimization::Basic,
            Optimization::Extended => GraphOptimization::Extended,
            Optimization::Layout => GraphOptimization::Layout,
            Optimization::All => GraphOptimization::All,
        }
    }
}

/// What scoring needs to know about the model: the operator's configuration, the types of
/// the inputs records feed, and the outputs' names.
#[derive(Clone)]
struct Scoring {
    config: TensorPredictConfig,
    types: InputTypes,
    outputs: Vec<String>,
}

impl Scoring {
    fn new(args: &PredictArgs, info: &ModelInfo) -> Result<Self> {
        let mut config = TensorPredictConfig::for_model(info);
        let mut types = InputTypes::of(info);
        for constant in &args.constants {
            let (name, tensor) = parse_constant(constant, info)?;
            config.inputs.retain(|s| s.name != name);
            types.0.retain(|(n, _)| *n != name);
            config.constants.push((name, tensor));
        }
        if let Nan::Allow = args.nan {
            config.inputs = config.inputs.into_iter().map(|s| s.allow_nan()).collect();
        }
        config.max_batch = args.batch as usize;
        config.batching = if args.whole {
            Batching::Whole
        } else {
            Batching::Rows
        };
        config.session = SessionOptions {
            intra_threads: args.intra_threads,
            optimization: args.optimization.into(),
            optimized_model_cache: args.optimized_model_cache.clone(),
            ..SessionOptions::default()
        };
        let outputs = config.outputs.iter().map(|s| s.name.clone()).collect();
        Ok(Scoring {
            config,
            types,
            outputs,
        })
    }

    /// The scored line of a request.
    fn scored(&self, request: ScoreRequest, out: &OutputRow<'_>) -> ScoredLine {
        ScoredLine {
            id: request.id,
            outputs: self.outputs.iter().cloned().zip(out.values()).collect(),
        }
    }

    /// Scores `requests` with the versions of `models`.
    fn build<'s>(
        &self,
        requests: DataStream<'s, ScoreRequest>,
        models: DataStream<'s, ModelUpdate>,
    ) -> DataStream<'s, ScoredLine> {
        let this = self.clone();
        let (scored, _dead) = requests.predict_tensors(
            "predict",
            models,
            |_| 0,
            feed,
            move |request, out| this.scored(request, out),
            self.config.clone(),
        );
        scored
    }
}

/// Feeds a request's tensors (or its reason for failing).
pub fn feed(request: &ScoreRequest, rows: &mut InputRows) {
    if let Some(error) = &request.error {
        rows.reject(error.clone());
        return;
    }
    for (i, (_, tensor)) in request.inputs.iter().enumerate() {
        rows.push(i, tensor);
    }
}

/// `NAME=JSON` as a constant of the model's input `NAME`.
pub fn parse_constant(text: &str, info: &ModelInfo) -> Result<(String, Tensor)> {
    let (name, json) = text
        .split_once('=')
        .with_context(|| format!("--constant {text}: expected NAME=JSON"))?;
    let input = info
        .inputs
        .iter()
        .find(|t| t.name == name)
        .with_context(|| {
            let names: Vec<&str> = info.inputs.iter().map(|t| t.name.as_str()).collect();
            format!("--constant {name}: the model has no such input (its inputs: {names:?})")
        })?;
    let ty = ElementType::from_name(&input.dtype).with_context(|| {
        format!(
            "--constant {name}: the input is {}, not a tensor",
            input.dtype
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("--constant {name}: not JSON"))?;
    let tensor =
        tensor_from_json(&value, ty).map_err(|e| anyhow::anyhow!("--constant {name}: {e}"))?;
    Ok((name.to_string(), tensor))
}

/// The requests of a TensorFlow Serving file, if `path` is one: a JSON object with
/// `instances` or `inputs` (read whole, up to 1 GiB). JSON Lines files are not.
fn tf_serving_file(
    path: &Path,
    types: &InputTypes,
    whole: bool,
) -> Result<Option<Vec<ScoreRequest>>> {
    use std::io::BufRead;
    if path.is_dir() {
        return Ok(None);
    }
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut first = String::new();
    std::io::BufReader::new(&file)
        .take(64 << 10)
        .read_line(&mut first)?;
    let first_line: Option<serde_json::Value> = serde_json::from_str(&first).ok();
    let looks_tf = match &first_line {
        Some(v) => {
            v.get("instances").is_some() || v.get("inputs").is_some() && v.get("id").is_none()
        }
        // A pretty-printed request starts with a line that is not JSON on its own.
        None => first.trim_start().starts_with('{'),
    };
    if !looks_tf {
        return Ok(None);
    }
    let size = file.metadata()?.len();
    if size > MAX_TF_FILE {
        bail!("{}: a TensorFlow Serving request file of {size} bytes is over the 1 GiB limit; use JSON Lines", path.display());
    }
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)
        .with_context(|| format!("{}: not a JSON request", path.display()))?;
    Ok(tf_serving_requests(&body, types, whole))
}

use std::io::Read as _;

/// Runs `weir predict`; prints the summary line.
pub fn predict(args: PredictArgs) -> Result<()> {
    let mut endpoints = Endpoints::of(&args)?;
    let (info, _model_file) = endpoints.model_interface(&args)?;
    let scoring = Scoring::new(&args, &info)?;
    let tf_requests = match &endpoints.input {
        Endpoint::File(path) => tf_serving_file(path, &scoring.types, args.whole)?,
        Endpoint::Kafka { .. } => None,
    };
    let mut flags = vec![
        "weir predict".to_string(),
        "-w".into(),
        args.threads.to_string(),
    ];
    if let Endpoint::File(dir) = &endpoints.output {
        flags.push("--dead-letters".into());
        flags.push(dir.join("dead_letters.jsonl").display().to_string());
    }
    if args.overwrite {
        flags.push("--overwrite".into());
    }
    flags.extend(args.job_args.iter().cloned());
    let config = Config::from_args(flags)?;
    let first_process = config.process_index() == 0;
    // ONNX Runtime is provisioned (installed on first use) before the clock starts.
    if config.explain.is_none() {
        weir_onnx::runtime()?;
    }
    let started = Instant::now();
    let output_name = args.output.display().to_string();
    let report = execute(config, move |job| {
        let requests = match (&tf_requests, &endpoints.input) {
            (Some(requests), _) => job.from_vec("input", requests.clone()),
            (None, input) => endpoints.read_requests(job, input, &scoring.types)?,
        };
        let models = endpoints.models(job)?;
        let scored = scoring.build(requests, models);
        endpoints.write(scored)
    })?;
    if !first_process {
        return Ok(());
    }
    let seconds = started.elapsed().as_secs_f64();
    let records = report.operator("input").map_or(0, |o| o.records_out);
    let scored = report.operator("write").map_or(0, |o| o.records_in);
    // Predictions per model version (the predict operator counts them as `v1`, `v2`, …).
    let versions: std::collections::BTreeMap<&String, &u64> = report
        .operator("predict")
        .into_iter()
        .flat_map(|o| o.counters.iter())
        .filter(|(k, _)| {
            k.strip_prefix('v')
                .is_some_and(|v| v.parse::<u64>().is_ok())
        })
        .collect();
    let summary = serde_json::json!({
        "records": records + report.operator("input").map_or(0, |o| o.dead_letters),
        "scored": scored,
        "versions": versions,
        "dead_letters": report.dead_letters,
        "seconds": seconds,
        "records_per_s": scored as f64 / seconds.max(1e-9),
        "output": output_name,
    });
    println!("{summary}");
    Ok(())
}
