//! A job to kill and restart by hand: running counts per key over a JSON Lines file, with
//! exactly-once output.
//!
//! ```text
//! exactly_once --input FILE --output DIR [--rate RECORDS_PER_SECOND]
//!              [job flags: -w -n -p -h --checkpoint-dir DIR --checkpoint-interval DURATION ...]
//! cargo run --release --example exactly_once -- --input data.jsonl --output out \
//!     -w 2 --checkpoint-dir ckpt --checkpoint-interval 1s
//! ```
//! Every line that is a JSON object is a record; any other line is a dead letter (written
//! to `DIR.errors.jsonl`). A record's key is the FNV-1a 64-bit hash of its text (the line
//! without the whitespace around it) modulo 1000. Per key, checkpointed keyed state keeps
//! the running count of records and the running sum of their lengths in bytes. For each
//! record one line `{"key":k,"count":c}` (the key's count after that record) goes to the
//! part files in `DIR`; once the input is read, one line `{"key":k,"total":n,"bytes":b}` per
//! key goes to `DIR/totals/`.
//!
//! `--rate` paces each reading instance (to give a slow run to kill).
//!
//! Kill it at any moment and start it again with the same flags: it resumes from its last
//! checkpoint, and the committed output, as a multiset of lines, is the output of a run
//! without failure, at any parallelism and epoch size (each key's counts `1..n` once).
//! Under `weir launch --restarts N` the launcher does the restarting.

use std::hash::Hasher;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::RawJsonObject;

/// Keys are the line's hash modulo this.
const KEYS: u64 = 1000;

/// A record reduced to what the job needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Keyed {
    key: u64,
    bytes: u64,
}

impl Keyed {
    fn of(line: RawJsonObject) -> Self {
        let mut hash = fnv::FnvHasher::default();
        hash.write(line.text().as_bytes());
        Keyed {
            key: hash.finish() % KEYS,
            bytes: line.text().len() as u64,
        }
    }
}

/// Per key: records and bytes so far.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Running {
    count: u64,
    bytes: u64,
}

/// One line per record.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CountLine {
    key: u64,
    count: u64,
}

/// One line per key at the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TotalLine {
    key: u64,
    total: u64,
    bytes: u64,
}

/// `--input FILE --output DIR`, from the program's own arguments.
struct Args {
    input: PathBuf,
    output: PathBuf,
    rate: Option<f64>,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let (mut input, mut output, mut rate) = (None, None, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--input" => input = Some(args.next().context("--input needs a file")?.into()),
                "--output" => {
                    output = Some(args.next().context("--output needs a directory")?.into())
                }
                "--rate" => {
                    let value = args.next().context("--rate needs records per second")?;
                    rate = Some(value.parse().with_context(|| {
                        format!("--rate {value}: expected records per second")
                    })?);
                }
                other => anyhow::bail!(
                    "unknown argument `{other}` (expected --input FILE --output DIR [--rate N] and job flags)"
                ),
            }
        }
        Ok(Args {
            input: input.context("--input FILE is required")?,
            output: output.context("--output DIR is required")?,
            rate,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let args = Args::parse(&config.program_args)?;
    let first_process = config.process_index() == 0;
    let report = execute(config, move |job| {
        let read = match args.rate {
            Some(rate) => op("read").rate(rate),
            None => op("read"),
        };
        let keyed = job
            .read_jsonl::<RawJsonObject>(read, &args.input)
            .map("key", Keyed::of);
        keyed
            .clone()
            .key_by(|r: &Keyed| r.key)
            .map_with_state("running", |state: &mut Running, r: Keyed| {
                state.count += 1;
                state.bytes += r.bytes;
                CountLine {
                    key: r.key,
                    count: state.count,
                }
            })
            .write_jsonl("write_counts", &args.output);
        keyed
            .key_by(|r: &Keyed| r.key)
            .aggregate_all(
                "totals",
                |_| Running::default(),
                |total, r: Keyed| {
                    total.count += 1;
                    total.bytes += r.bytes;
                },
            )
            .map("total_line", |(key, t)| TotalLine {
                key,
                total: t.count,
                bytes: t.bytes,
            })
            .write_jsonl("write_totals", args.output.join("totals"));
        Ok(())
    })?;
    if first_process {
        let read = report.operator("read").map_or(0, |o| o.records_out);
        eprintln!(
            "exactly_once: {read} records read in this run, {} dead letters, {} checkpoints, {:.1} ms",
            report.dead_letters,
            report.checkpoints.len(),
            report.elapsed_ms
        );
    }
    Ok(())
}
