//! Parameter-server training inside the dataflow: an AM, `worker` nodes fed by a JSONL
//! stream, and `ps` nodes holding the model shards, on timely workers of one or more
//! processes.
//!
//! ```text
//! cargo run --release --example ps_training -- -w 3
//! cargo run --release --example ps_training -- -w 2 -n 2 -p 0 -h hosts.txt   # and -p 1
//! cargo run --release --example ps_training -- -w 3 --workers 2 --ps 2 --epochs 30 --fail-once
//! ```
//! Input: the digits set (`{"id","x":[64],"y"}`, 0–16 pixel values); records with `id % 5 == 0`
//! are held out for testing, the rest are the training stream. The model is saved with
//! bincode (`--model-out PATH`), loaded back, and scored on the held-out records. Prints one
//! JSON line: accuracy, seconds, attempts, workers, ps, examples.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::ml::{
    add_am_role, add_role, assemble_model, ps_runner, worker_runner, BatchTransitions,
    ClusterConfig, FailoverStrategy, LabeledPoint, LogisticModel, NodeContext, NodeRunner,
    PsTrainingConfig, TrainingReport,
};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

fn point(d: &Digit) -> LabeledPoint {
    LabeledPoint {
        x: d.x.iter().map(|v| v / 16.0).collect(),
        y: d.y as usize,
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut input = root.join("fixtures/data/digits.jsonl");
    let mut model_out = root.join("target/ps_training/model.bin");
    let (mut workers, mut ps, mut epochs, mut fail_once) = (2usize, 1usize, 30usize, false);
    let mut args = config.program_args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--input" => input = PathBuf::from(value("--input")?),
            "--model-out" => model_out = PathBuf::from(value("--model-out")?),
            "--workers" => workers = value("--workers")?.parse()?,
            "--ps" => ps = value("--ps")?.parse()?,
            "--epochs" => epochs = value("--epochs")?.parse()?,
            "--fail-once" => fail_once = true,
            other => anyhow::bail!(
                "unknown argument `{other}` (expected --input, --model-out, --workers, --ps, --epochs, --fail-once)"
            ),
        }
    }
    let training = PsTrainingConfig {
        classes: 10,
        features: 64,
        learning_rate: 0.5,
        l2: 1e-4,
        epochs,
        batch_size: 16,
    };
    let cluster = ClusterConfig::new()
        .role("worker", workers)
        .role("ps", ps)
        .failover(FailoverStrategy::RestartAll, 3, Duration::from_millis(100))
        .transitions(BatchTransitions);
    let explaining = config.explain.is_some();
    let first_process = config.process_index() == 0;
    let reports = Collector::new();
    let sink = reports.clone();
    let train_path = input.clone();
    let started = Instant::now();
    execute(config, move |job| {
        let am = add_am_role(job, &cluster);
        let stream = job
            .read_jsonl::<Digit>("digits", &train_path)
            .filter("training_split", |d| d.id % 5 != 0)
            .map("to_point", |d| point(&d));
        let runner = worker_runner(training);
        let worker = move |ctx: &mut NodeContext<'_, LabeledPoint, TrainingReport>| {
            if fail_once && ctx.node.index == workers - 1 && ctx.attempt == 0 {
                return Err("injected failure (--fail-once)".into());
            }
            runner.run(ctx)
        };
        let trained = add_role(job, &cluster, &am, "worker", Some(stream), worker);
        let shards = add_role(job, &cluster, &am, "ps", None, ps_runner(training));
        trained
            .union("reports", shards)
            .collect(op("collect_reports").parallelism(1), &sink);
        Ok(())
    })?;
    if explaining || !first_process {
        return Ok(());
    }
    let reports = reports.take();
    let model =
        assemble_model(&reports, &training).context("no complete model in the ps shards")?;
    std::fs::create_dir_all(model_out.parent().unwrap_or(&root))?;
    model.save(&model_out)?;
    let loaded = LogisticModel::load(&model_out)?;
    let held_out: Vec<LabeledPoint> = std::fs::read_to_string(&input)?
        .lines()
        .map(serde_json::from_str::<Digit>)
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .filter(|d| d.id % 5 == 0)
        .map(point)
        .collect();
    let accuracy = loaded.accuracy(&held_out);
    let attempt_of = |r: &TrainingReport| match r {
        TrainingReport::Worker { attempt, .. } | TrainingReport::Shard { attempt, .. } => *attempt,
    };
    let last = reports.iter().map(attempt_of).max().unwrap_or(0);
    let attempts = last + 1;
    let examples: usize = reports
        .iter()
        .filter_map(|r| match r {
            TrainingReport::Worker {
                attempt, examples, ..
            } if *attempt == last => Some(examples),
            _ => None,
        })
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "accuracy": accuracy,
            "seconds": started.elapsed().as_secs_f64(),
            "attempts": attempts,
            "workers": workers,
            "ps": ps,
            "examples": examples,
            "held_out": held_out.len(),
            "model": model_out.display().to_string(),
        })
    );
    Ok(())
}
