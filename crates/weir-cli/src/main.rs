//! `weir`: the command-line front end. It prints the job graphs of the built-in example
//! jobs and describes ONNX models; `launch` and `bench` come next.

mod builtin_jobs;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use weir_core::{explain, Config};

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
    /// Print an ONNX model's inputs, outputs, shapes, dtypes, opsets and metadata.
    Inspect {
        /// The `.onnx` file.
        model: std::path::PathBuf,
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

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Inspect { model, json } => {
            let info = weir_onnx::inspect(&model)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{}", model.display());
                print!("{info}");
            }
        }
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
            let Some((_, _, build)) = builtin_jobs::JOBS.iter().find(|(name, _, _)| *name == job)
            else {
                let names: Vec<_> = builtin_jobs::JOBS.iter().map(|j| j.0).collect();
                bail!(
                    "unknown job `{job}`; built-in jobs are: {}",
                    names.join(", ")
                );
            };
            let args = [
                "weir".to_string(),
                "-w".into(),
                threads.to_string(),
                "-n".into(),
                processes.to_string(),
            ];
            let config = Config::from_args(args)?;
            let plan = explain(config, *build)?;
            match format {
                Format::Text => print!("{plan}"),
                Format::Json => println!("{}", plan.to_json()),
                Format::Dot => print!("{}", plan.to_dot()),
            }
        }
    }
    Ok(())
}
