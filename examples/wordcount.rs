//! The demo job: word counts over a text, written as JSON Lines.
//!
//! ```text
//! cargo run --release --example wordcount -- -w 2                  # embedded text
//! cargo run --release --example wordcount -- -w 2 --input book.txt --output out/
//! cargo run --release --example wordcount -- -w 2 --explain=dot    # job graph only
//! ```
//! Lines are read by one source instance, split into words on all workers, counted per
//! word on the worker owning the word (HASH edge), and written as one part file per
//! counting instance (replacing what the output directory held). The count is a running
//! count, as in Flink: after each epoch, every word whose count changed is emitted with its
//! count so far, so a long text gives several lines per word and the last one holds its
//! total (the embedded chapter fits in one epoch). The ten most frequent words are printed
//! at the end.

use std::path::PathBuf;

use anyhow::Context;
use weir::prelude::*;

const EMBEDDED: &str = include_str!("data/pride_and_prejudice_ch1.txt");

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let mut input: Option<PathBuf> = None;
    let mut output = PathBuf::from("target/wordcount-out");
    let mut args = config.program_args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = Some(args.next().context("--input needs a path")?.into()),
            "--output" => output = args.next().context("--output needs a path")?.into(),
            other => {
                anyhow::bail!("unknown argument `{other}` (expected --input FILE, --output DIR)")
            }
        }
    }
    let text = match &input {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => EMBEDDED.to_string(),
    };
    let lines: Vec<String> = text.lines().map(String::from).collect();
    let explaining = config.explain.is_some();
    let first_process = config.process_index() == 0;
    let top = Collector::new();
    let top_sink = top.clone();
    let out_dir = output.clone();
    let report = execute(config, move |job| {
        let counts = job
            .from_vec(op("lines").parallelism(1), lines.clone())
            .flat_map("split", |line: String| {
                line.split(|c: char| !c.is_alphanumeric() && c != '\'')
                    .filter(|w| !w.is_empty())
                    .map(|w| w.to_lowercase())
                    .collect::<Vec<_>>()
            })
            // `key_by(|w| w.clone()).count(..)` without copying each word as its key.
            .count_by_value("count");
        // The counts are disposable demo output: each run replaces the previous one.
        counts
            .clone()
            .write_jsonl(op("write").overwrite(true), &out_dir);
        counts.collect(op("top").parallelism(1), &top_sink);
        Ok(())
    })?;
    if explaining {
        return Ok(());
    }
    eprintln!(
        "{} records counted in {:.1} ms",
        report.operator("count").map_or(0, |o| o.records_in),
        report.elapsed_ms
    );
    // The last update of a running count is the largest.
    let mut totals: std::collections::HashMap<String, u64> = Default::default();
    for (word, n) in top.take() {
        let total = totals.entry(word).or_default();
        *total = (*total).max(n);
    }
    let mut words: Vec<(String, u64)> = totals.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if first_process {
        println!("top words:");
        for (word, n) in words.iter().take(10) {
            println!("  {n:>4} {word}");
        }
        println!(
            "{} distinct words; counts written to {}/",
            words.len(),
            output.display()
        );
    }
    Ok(())
}
