//! `weir bench CONFIG.json [--output RESULTS.json]`: benchmarks Weir's operators at several
//! parallelisms from a Flink-ML-style configuration, and writes results JSON, a table and a
//! throughput chart (SVG next to the results).

mod chart;
mod data;
mod spec;
mod stages;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use weir_core::{execute, Config};

use data::Dataset;
use spec::BenchmarkSpec;
use stages::{Stage, Tally};
use weir_flink_ml::benchmark::FlinkBenchmark;

/// One measured run.
struct Run {
    time: Duration,
    outputs: u64,
    latencies: Vec<u64>,
    peak_memory: Option<u64>,
}

/// Resets the kernel's peak-RSS mark of this process (Linux), so that each run's peak is
/// its own.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, in bytes (Linux `VmHWM`).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn run_once(stage: &Stage, data: &Dataset, p: usize) -> Result<Run> {
    let tally = Tally::default();
    let (stage, data, sink) = (stage.clone(), data.clone(), tally.clone());
    reset_peak_memory();
    let started = Instant::now();
    execute(Config::threads(p).with_verbose(false), move |job| {
        stages::build(job, &stage, &data, p, &sink);
        Ok(())
    })?;
    let time = started.elapsed();
    let latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
    Ok(Run {
        time,
        outputs: tally.outputs.load(Ordering::Relaxed),
        latencies,
        peak_memory: peak_memory(),
    })
}

fn percentile(sorted: &[u64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i] as f64 / 1e6)
}

/// Flink's result keys plus Weir's, for one parallelism.
fn summarize(p: usize, inputs: usize, runs: &[Run]) -> Value {
    let mut times: Vec<f64> = runs.iter().map(|r| r.time.as_secs_f64() * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let outputs = runs.last().map_or(0, |r| r.outputs);
    let mut latencies: Vec<u64> = runs
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    let per_s = |n: u64| n as f64 / (median / 1e3);
    json!({
        "parallelism": p,
        "totalTimeMs": median,
        "inputRecordNum": inputs,
        "inputThroughput": per_s(inputs as u64),
        "outputRecordNum": outputs,
        "outputThroughput": per_s(outputs),
        "minTimeMs": times[0],
        "medianTimeMs": median,
        "maxTimeMs": times[times.len() - 1],
        "repetitions": runs.len(),
        "latencyP50Ms": percentile(&latencies, 0.5),
        "latencyP99Ms": percentile(&latencies, 0.99),
        "latencySamples": latencies.len(),
        "peakMemoryBytes": runs.iter().filter_map(|r| r.peak_memory).max(),
    })
}

/// A benchmark checked and ready to run: one of Weir's operator stages, or a Flink ML stage
/// from the class registry of `weir-flink-ml`.
enum Prepared {
    Weir {
        spec: BenchmarkSpec,
        stage: Stage,
    },
    FlinkMl {
        spec: BenchmarkSpec,
        bench: FlinkBenchmark,
    },
}

impl Prepared {
    fn spec(&self) -> &BenchmarkSpec {
        match self {
            Prepared::Weir { spec, .. } | Prepared::FlinkMl { spec, .. } => spec,
        }
    }
}

/// Checks a benchmark before any data is generated: its stage is known, its params are
/// valid, its generators are known. Weir's stages are checked against a one-record input.
fn prepare(mut spec: BenchmarkSpec, base: &Path, num_values: Option<u64>) -> Result<Prepared> {
    let class = data::short_name(&spec.stage.class_name);
    let weir_stage = stages::WEIR_STAGES.contains(&class)
        && !spec.stage.class_name.starts_with("org.apache.flink");
    if weir_stage {
        if let Some(cap) = num_values {
            let n = spec.input.uint("numValues", 10_000)?.min(cap);
            spec.input.params.insert("numValues".into(), json!(n));
        }
        let mut probe = spec.input.clone();
        probe.params.insert("numValues".into(), json!(1));
        let data = data::generate(&probe).context("inputData")?;
        let stage = Stage::parse(&spec.stage, spec.model.as_ref(), &data, base)?;
        return Ok(Prepared::Weir { spec, stage });
    }
    let object = spec.raw.as_object().cloned().unwrap_or_default();
    let mut bench = FlinkBenchmark::parse(&spec.name, &object)?;
    if let Some(cap) = num_values {
        bench.cap_num_values(cap);
    }
    Ok(Prepared::FlinkMl { spec, bench })
}

/// Runs one benchmark at all its parallelisms; errors of a parallelism are recorded there.
fn run_benchmark(prepared: &mut Prepared, progress: &ProgressBar) -> Result<Vec<Value>> {
    let spec = prepared.spec().clone();
    let mut results: Vec<Value> = Vec::new();
    let mut weir = None;
    if let Prepared::Weir { spec, stage } = prepared {
        let data =
            data::generate(&spec.input).with_context(|| format!("inputData of `{}`", spec.name))?;
        // Once for all runs (before the warm-up); stopped when this benchmark is done.
        let server = stage
            .start_server()
            .with_context(|| format!("the model server of `{}`", spec.name))?;
        weir = Some((stage.clone(), data, server));
    }
    for &p in &spec.parallelisms {
        progress.set_message(format!("{} at parallelism {p}", spec.name));
        let mut runs = Vec::new();
        let mut error = None;
        let mut inputs = 0;
        for i in 0..spec.warmup_runs + spec.repetitions {
            let run = match (&weir, &*prepared) {
                (Some((stage, data, _)), _) => {
                    inputs = data.len() as u64;
                    run_once(stage, data, p)
                }
                (None, Prepared::FlinkMl { bench, .. }) => {
                    inputs = bench.input_records();
                    run_flink_ml(bench, p)
                }
                (None, Prepared::Weir { .. }) => unreachable!("weir stages have data"),
            };
            match run {
                Ok(run) if i >= spec.warmup_runs => runs.push(run),
                Ok(_) => {}
                Err(e) => {
                    error = Some(format!("{e:#}"));
                    break;
                }
            }
            progress.inc(1);
        }
        results.push(match error {
            Some(e) => json!({"parallelism": p, "exception": e}),
            None => summarize(p, inputs as usize, &runs),
        });
    }
    // Speedup over the smallest parallelism that ran.
    let base = results
        .iter()
        .find_map(|r| r.get("inputThroughput").and_then(Value::as_f64));
    for r in &mut results {
        if let (Some(base), Some(t)) = (base, r.get("inputThroughput").and_then(Value::as_f64)) {
            r["speedup"] = json!(t / base);
        }
    }
    Ok(results)
}

fn run_flink_ml(bench: &FlinkBenchmark, p: usize) -> Result<Run> {
    reset_peak_memory();
    let run = bench.run(p)?;
    Ok(Run {
        time: run.time,
        outputs: run.output_records,
        latencies: Vec::new(),
        peak_memory: peak_memory(),
    })
}

/// Flink's `results` object: the measurement at the largest parallelism of the sweep (with
/// Flink's keys), and the whole sweep under `sweep`; `{"exception": ...}` if a run failed.
fn results_object(sweep: Vec<Value>) -> Value {
    if let Some(failed) = sweep.iter().find(|r| r.get("exception").is_some()) {
        return json!({"exception": failed["exception"], "sweep": sweep});
    }
    let mut headline = sweep.last().cloned().unwrap_or_else(|| json!({}));
    headline["sweep"] = Value::Array(sweep);
    headline
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(results: &Map<String, Value>) {
    println!(
        "{:<22} {:>3} {:>10} {:>10} {:>10} {:>13} {:>13} {:>9} {:>9} {:>8} {:>7}",
        "benchmark",
        "p",
        "records",
        "median ms",
        "min-max",
        "in rec/s",
        "out rec/s",
        "p50 ms",
        "p99 ms",
        "peak MiB",
        "speedup"
    );
    for (name, entry) in results {
        let sweep = entry["results"].get("sweep").and_then(Value::as_array);
        if let (None, Some(e)) = (sweep, entry["results"].get("exception")) {
            println!("{name:<22} error: {}", e.as_str().unwrap_or_default());
            continue;
        }
        for r in sweep.into_iter().flatten() {
            let p = r["parallelism"].as_u64().unwrap_or(0);
            if let Some(e) = r.get("exception") {
                println!(
                    "{name:<22} {p:>3} error: {}",
                    e.as_str().unwrap_or_default()
                );
                continue;
            }
            let f = |k: &str| r.get(k).and_then(Value::as_f64);
            println!(
                "{name:<22} {p:>3} {:>10} {:>10.1} {:>10} {:>13.0} {:>13.0} {:>9} {:>9} {:>8} {:>7}",
                r["inputRecordNum"],
                f("medianTimeMs").unwrap_or(0.0),
                format!("{:.0}-{:.0}", f("minTimeMs").unwrap_or(0.0), f("maxTimeMs").unwrap_or(0.0)),
                f("inputThroughput").unwrap_or(0.0),
                f("outputThroughput").unwrap_or(0.0),
                fmt_opt(f("latencyP50Ms"), 2),
                fmt_opt(f("latencyP99Ms"), 2),
                fmt_opt(f("peakMemoryBytes").map(|b| b / (1 << 20) as f64), 0),
                fmt_opt(f("speedup"), 2),
            );
        }
    }
}

/// Runs every benchmark of `config_path` (Weir's configs and Flink ML's benchmark files,
/// `//` comments allowed); writes `output` (default: `<config name>-results.json` in the
/// current directory) and the chart next to it. `num_values` caps every input generator's
/// `numValues`. Returns whether every benchmark succeeded.
pub fn bench(config_path: &Path, output: Option<PathBuf>, num_values: Option<u64>) -> Result<bool> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?;
    let (benchmarks, broken) =
        spec::parse(&text).with_context(|| format!("in {}", config_path.display()))?;
    let output = output.unwrap_or_else(|| {
        let stem = config_path
            .file_stem()
            .map_or("bench".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("{stem}-results.json"))
    });
    let base = config_path.parent().unwrap_or(Path::new("."));
    let mut results = Map::new();
    let mut all_ok = broken.is_empty();
    for (name, error) in broken {
        results.insert(name, json!({ "results": { "exception": error } }));
    }
    // Every benchmark is checked before any data is generated.
    let mut prepared = Vec::new();
    for spec in benchmarks {
        let (name, raw) = (spec.name.clone(), spec.raw.clone());
        match prepare(spec, base, num_values) {
            Ok(p) => prepared.push(p),
            Err(e) => {
                all_ok = false;
                let mut entry = raw;
                entry["results"] = json!({ "exception": format!("{e:#}") });
                results.insert(name, entry);
            }
        }
    }
    let total: u64 = prepared
        .iter()
        .map(|b| {
            let s = b.spec();
            (s.parallelisms.len() * (s.warmup_runs + s.repetitions)) as u64
        })
        .sum();
    let progress = ProgressBar::new(total);
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {msg}").expect("a valid template"),
    );
    for mut bench in prepared {
        let spec = bench.spec().clone();
        let mut entry = spec.raw.clone();
        let result = match run_benchmark(&mut bench, &progress) {
            Ok(sweep) => results_object(sweep),
            Err(e) => {
                progress
                    .inc((spec.parallelisms.len() * (spec.warmup_runs + spec.repetitions)) as u64);
                json!({ "exception": format!("{e:#}") })
            }
        };
        all_ok &= result.get("exception").is_none();
        entry["results"] = result;
        results.insert(spec.name.clone(), entry);
    }
    progress.finish_and_clear();
    print_table(&results);
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let document = Value::Object(results);
    std::fs::write(&output, serde_json::to_string_pretty(&document)? + "\n")
        .with_context(|| format!("cannot write {}", output.display()))?;
    let chart_path = output.with_extension("svg");
    chart::throughput_chart(&document, &chart_path)?;
    println!(
        "results: {}  chart: {}",
        output.display(),
        chart_path.display()
    );
    Ok(all_ok)
}
