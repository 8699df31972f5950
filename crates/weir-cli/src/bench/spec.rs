//! The benchmark configuration: Flink ML's benchmark format (`{"version": 1, "<name>":
//! {"stage": …, "inputData": …, "modelData": …}}`) with Weir's class names and Weir's own
//! keys for the sweep (`parallelisms`, `warmupRuns`, `repetitions`; per benchmark or at the
//! top level as defaults).

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// A class name and its parameters, as Flink ML writes them.
#[derive(Clone, Debug)]
pub struct ClassSpec {
    pub class_name: String,
    pub params: Map<String, Value>,
}

impl ClassSpec {
    fn parse(name: &str, field: &str, value: &Value) -> Result<Self> {
        let class_name = value
            .get("className")
            .and_then(Value::as_str)
            .with_context(|| format!("benchmark `{name}`: `{field}.className` must be a string"))?
            .to_string();
        let params = match value.get("paramMap") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => bail!("benchmark `{name}`: `{field}.paramMap` must be an object"),
        };
        Ok(ClassSpec { class_name, params })
    }

    /// A non-negative integer parameter.
    pub fn uint(&self, key: &str, default: u64) -> Result<u64> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().with_context(|| {
                format!(
                    "{}: `{key}` must be a non-negative integer, got {v}",
                    self.class_name
                )
            }),
        }
    }

    /// A number parameter.
    pub fn float(&self, key: &str, default: f64) -> Result<f64> {
        match self.params.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .with_context(|| format!("{}: `{key}` must be a number, got {v}", self.class_name)),
        }
    }

    /// A string parameter.
    pub fn string(&self, key: &str) -> Result<String> {
        self.params
            .get(key)
            .and_then(Value::as_str)
            .map(String::from)
            .with_context(|| format!("{}: `{key}` must be a string", self.class_name))
    }
}

/// One benchmark of the file.
#[derive(Clone, Debug)]
pub struct BenchmarkSpec {
    pub name: String,
    pub stage: ClassSpec,
    pub input: ClassSpec,
    pub model: Option<ClassSpec>,
    pub parallelisms: Vec<usize>,
    pub warmup_runs: usize,
    pub repetitions: usize,
    /// The benchmark's JSON as written (copied into the results).
    pub raw: Value,
}

/// A benchmark entry that could not be read: its name and why.
pub type SpecError = (String, String);

/// The most warm-up runs, and the most measured runs, of one benchmark.
const MAX_RUNS: u64 = 100_000;

/// The highest parallelism a benchmark runs at (each is that many worker threads).
const MAX_PARALLELISM: u64 = 1024;

fn sweep(
    value: Option<&Value>,
    defaults: &SweepDefaults,
    name: &str,
) -> Result<(Vec<usize>, usize, usize)> {
    let get_uint = |key: &str, default: usize| -> Result<usize> {
        match value.and_then(|v| v.get(key)) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|&n| n <= MAX_RUNS)
                .map(|n| n as usize)
                .with_context(|| {
                    format!("benchmark `{name}`: `{key}` must be an integer from 0 to {MAX_RUNS}")
                }),
        }
    };
    let parallelisms = match value.and_then(|v| v.get("parallelisms")) {
        None => defaults.parallelisms.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| {
                p.as_u64()
                    .filter(|p| (1..=MAX_PARALLELISM).contains(p))
                    .map(|p| p as usize)
            })
            .collect::<Option<Vec<_>>>()
            .with_context(|| {
                format!(
                    "benchmark `{name}`: `parallelisms` must be integers from 1 to \
                     {MAX_PARALLELISM}"
                )
            })?,
        Some(_) => bail!("benchmark `{name}`: `parallelisms` must be a list"),
    };
    if parallelisms.is_empty() {
        bail!("benchmark `{name}`: `parallelisms` is empty");
    }
    Ok((
        parallelisms,
        get_uint("warmupRuns", defaults.warmup_runs)?,
        get_uint("repetitions", defaults.repetitions)?.max(1),
    ))
}

struct SweepDefaults {
    parallelisms: Vec<usize>,
    warmup_runs: usize,
    repetitions: usize,
}

/// Reads a configuration file's text: the benchmarks that parse, and the entries that do not
/// (each with its error), in file order.
pub fn parse(text: &str) -> Result<(Vec<BenchmarkSpec>, Vec<SpecError>)> {
    // Flink's reader allows `//` and `/* */` comments (Jackson's ALLOW_COMMENTS); Flink ML's
    // own files start with a `//` licence header.
    let stripped = json_comments::StripComments::new(text.as_bytes());
    let root: Value =
        serde_json::from_reader(stripped).context("the benchmark file is not valid JSON")?;
    let Value::Object(entries) = root else {
        bail!("the benchmark file must be a JSON object of benchmarks");
    };
    match entries.get("version").and_then(Value::as_u64) {
        Some(1) => {}
        other => bail!("unsupported benchmark file version {other:?}: expected \"version\": 1"),
    }
    let top = Value::Object(entries.clone());
    let (parallelisms, warmup_runs, repetitions) = sweep(
        Some(&top),
        &SweepDefaults {
            parallelisms: vec![1, 2],
            warmup_runs: 1,
            repetitions: 3,
        },
        "(top level)",
    )?;
    let defaults = SweepDefaults {
        parallelisms,
        warmup_runs,
        repetitions,
    };
    let mut benchmarks = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in &entries {
        if matches!(
            name.as_str(),
            "version" | "parallelisms" | "warmupRuns" | "repetitions"
        ) {
            continue;
        }
        let parsed = (|| -> Result<BenchmarkSpec> {
            if !value.is_object() {
                bail!("benchmark `{name}` must be an object");
            }
            let stage = value
                .get("stage")
                .with_context(|| format!("benchmark `{name}` has no `stage`"))?;
            let input = value
                .get("inputData")
                .with_context(|| format!("benchmark `{name}` has no `inputData`"))?;
            let (parallelisms, warmup_runs, repetitions) = sweep(Some(value), &defaults, name)?;
            Ok(BenchmarkSpec {
                name: name.clone(),
                stage: ClassSpec::parse(name, "stage", stage)?,
                input: ClassSpec::parse(name, "inputData", input)?,
                model: value
                    .get("modelData")
                    .map(|m| ClassSpec::parse(name, "modelData", m))
                    .transpose()?,
                parallelisms,
                warmup_runs,
                repetitions,
                raw: value.clone(),
            })
        })();
        match parsed {
            Ok(b) => benchmarks.push(b),
            Err(e) => errors.push((name.clone(), format!("{e:#}"))),
        }
    }
    Ok((benchmarks, errors))
}
