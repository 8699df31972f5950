//! `weir`: the command-line front end. It launches jobs as clusters of processes, runs and
//! explains the built-in jobs, and describes ONNX models.

/// `eprintln!` that drops the line when standard error is gone (a closed pipe, a terminal
/// that hung up) instead of panicking: a server's threads and the launcher go on.
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod bench;
mod builtin_jobs;
mod inspect_checkpoint;
mod json_job;
#[cfg(feature = "kafka")]
mod kafka_cmd;
mod launch;
mod predict_endpoints;
mod predict_file;
mod scoring;
mod serve;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use weir_core::{execute, explain, Config};

/// Workers free records that other workers allocated; mimalloc's per-thread heaps take that
/// without the lock contention of glibc's arenas (see docs/performance.md, keyed exchange).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Weir: a Flink-style dataflow runtime with ML operators, on timely dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program as a timely cluster of processes (locally, or on hosts).
    ///
    /// Each process gets `-w THREADS -n PROCESSES -p INDEX` and `-h HOSTFILE` (local) or
    /// `--addresses H:P,…` (hosts). Output lines are prefixed `[pI]`. When one process fails,
    /// the others are stopped; the exit code is 0 only if every process succeeded.
    Launch {
        /// Number of processes.
        #[arg(short = 'n', long = "processes", default_value_t = 1)]
        processes: usize,
        /// Worker threads per process.
        #[arg(short = 'w', long = "threads", default_value_t = 1)]
        threads: usize,
        /// A file of `host:port` lines, one per process; without it, all processes run on
        /// 127.0.0.1 with free ports.
        #[arg(long)]
        hosts: Option<std::path::PathBuf>,
        /// How to start a process on a host; `{host}` and `{index}` are replaced.
        #[arg(long, default_value = "ssh {host}")]
        remote: String,
        /// Relaunch the whole job up to this many times after a failure.
        #[arg(long, default_value_t = 0)]
        restarts: u32,
        /// Pause before the first relaunch, in milliseconds (doubles each time).
        #[arg(long, default_value_t = 500)]
        backoff_ms: u64,
        /// A local process stopped (SIGSTOP) for this many milliseconds counts as failed.
        /// The processes of a job also fail a silent peer themselves (`--peer-timeout-ms`).
        #[arg(long, default_value_t = 30_000)]
        stall_ms: u64,
        /// The program and its arguments (after `--`).
        #[arg(last = true, required = true)]
        program: Vec<String>,
    },
    /// Benchmark operators at several parallelisms from a Flink-ML-style config file.
    ///
    /// Writes the results JSON (Flink's keys plus min/median/max, p50/p99 latency, peak
    /// memory, speedup) and a throughput chart (`.svg` beside it), and prints a table.
    Bench {
        /// The configuration (see `benches/configs/`).
        config: std::path::PathBuf,
        /// Where to write the results (default: `<config name>-results.json`).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Caps every input generator's `numValues` (runs a file at a smaller scale).
        #[arg(long, value_name = "N")]
        num_values: Option<u64>,
    },
    /// Score a file with any ONNX model on the predict operator.
    ///
    /// `weir predict --model M.onnx --input in.jsonl --output out/ [-w N] [--batch B]`. An
    /// input line is `{"id": ..., "inputs": {"name": nested array, ...}}` (a TensorFlow
    /// Serving `{"instances": [...]}` file works too); an output line is `{"id": ...,
    /// "outputs": {"name": value, ...}}`. Bad lines go to `dead_letters.jsonl`; the summary
    /// line reports records, dead letters and seconds.
    Predict(predict_file::PredictArgs),
    /// Serve the newest model of a model store over HTTP, reloading new versions.
    ///
    /// `POST /predict` with `{"x": [...]}` or `{"instances": [[...], ...]}`, `GET /models`,
    /// `GET /metrics`, and a digit-drawing page at `/`.
    Serve(serve::ServeArgs),
    /// Run a built-in job: `weir run wordcount --input lines.jsonl --output DIR -w 2`.
    ///
    /// Takes timely's and Weir's job flags (`-w -n -p -h --addresses --explain …`).
    Run {
        /// The job: one of the names `weir jobs` lists, or a JSON job file (`job.json`: an
        /// ML pipeline or graph, see docs/flink-ml.md).
        job: String,
        /// `--input PATH --output DIR` and the job flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the job graph (operators, parallelism, edges) of a built-in job without running it.
    Explain {
        /// The job: one of the names `weir jobs` lists.
        job: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Worker threads per process the graph is planned for.
        #[arg(short = 'w', long, default_value_t = 1)]
        threads: usize,
        /// Processes the graph is planned for.
        #[arg(short = 'n', long, default_value_t = 1)]
        processes: usize,
    },
    /// List the built-in jobs.
    Jobs,
    /// Kafka tools: a local broker, topics, producing a JSON Lines file, dumping a topic,
    /// publishing a model version.
    #[cfg(feature = "kafka")]
    #[command(subcommand)]
    Kafka(kafka_cmd::KafkaCommand),
    /// Print an ONNX model's interface, or a checkpoint directory's checkpoints.
    ///
    /// `weir inspect MODEL.onnx`: inputs, outputs, shapes, dtypes, opsets and metadata.
    /// `weir inspect checkpoint DIR`: every checkpoint (complete, or why not), the one a
    /// restore takes, and per operator its keys and bytes of state.
    Inspect {
        /// `MODEL.onnx`, or `checkpoint DIR`.
        #[arg(required = true, num_args = 1..=2, value_names = ["MODEL | checkpoint", "DIR"])]
        target: Vec<std::path::PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
}

fn find_job(job: &str) -> Result<&'static builtin_jobs::BuiltinJob> {
    builtin_jobs::JOBS
        .iter()
        .find(|(name, _, _)| *name == job)
        .ok_or_else(|| {
            let names: Vec<_> = builtin_jobs::JOBS.iter().map(|j| j.0).collect();
            anyhow::anyhow!(
                "unknown job `{job}`; built-in jobs are: {}",
                names.join(", ")
            )
        })
}

fn main() -> Result<()> {
    weir_core::logging::init();
    match Cli::parse().command {
        Command::Launch {
            processes,
            threads,
            hosts,
            remote,
            restarts,
            backoff_ms,
            stall_ms,
            program,
        } => {
            let code = launch::launch(&launch::LaunchOptions {
                processes,
                threads,
                hosts,
                remote,
                restarts,
                backoff: std::time::Duration::from_millis(backoff_ms),
                stall: std::time::Duration::from_millis(stall_ms),
                program,
            })?;
            std::process::exit(code);
        }
        Command::Bench {
            config,
            output,
            num_values,
        } => {
            if !bench::bench(&config, output, num_values)? {
                eprintln!("error: some benchmarks failed (see `results.exception` in the results)");
                std::process::exit(1);
            }
        }
        Command::Predict(args) => predict_file::predict(args)?,
        Command::Serve(args) => serve::serve(args)?,
        Command::Run { job, args } if job.ends_with(".json") => json_job::run(&job, args)?,
        Command::Run { job, args } => {
            let (_, _, build) = find_job(&job)?;
            let config = Config::from_args(std::iter::once(format!("weir run {job}")).chain(args))?;
            let mut paths = builtin_jobs::JobPaths::placeholders();
            let mut rest = config.program_args.iter();
            while let Some(arg) = rest.next() {
                let value = rest.next().with_context(|| format!("{arg} needs a path"));
                match arg.as_str() {
                    "--input" => paths.input = value?.into(),
                    "--output" => paths.output = value?.into(),
                    other => bail!("unknown argument `{other}` (expected --input PATH, --output DIR, or job flags)"),
                }
            }
            let build = *build;
            execute(config, move |job| build(job, &paths))?;
        }
        Command::Inspect { target, json } => {
            let model = match target.as_slice() {
                [what, dir] if what.as_os_str() == "checkpoint" => {
                    return inspect_checkpoint::inspect_checkpoints(dir, json);
                }
                [model] => model.clone(),
                _ => bail!("expected `weir inspect MODEL.onnx` or `weir inspect checkpoint DIR`"),
            };
            let info = weir_onnx::inspect(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{}", model.display());
                print!("{info}");
            }
        }
        #[cfg(feature = "kafka")]
        Command::Kafka(command) => kafka_cmd::run(command)?,
        Command::Jobs => {
            for (name, about, _) in builtin_jobs::JOBS {
                println!("{name:<12} {about}");
            }
        }
        Command::Explain {
            job,
            format,
            threads,
            processes,
        } => {
            let (_, _, build) = find_job(&job)?;
            let args = [
                "weir".to_string(),
                "-w".into(),
                threads.to_string(),
                "-n".into(),
                processes.to_string(),
            ];
            let config = Config::from_args(args)?;
            let build = *build;
            let paths = builtin_jobs::JobPaths::placeholders();
            let plan = explain(config, move |job| build(job, &paths))?;
            match format {
                Format::Text => print!("{plan}"),
                Format::Json => println!("{}", plan.to_json()),
                Format::Dot => print!("{}", plan.to_dot()),
            }
        }
    }
    Ok(())
}
