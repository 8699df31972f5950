//! Example jobs built into the CLI, so that `weir explain` has something to show and
//! `weir run` / `weir launch` something to run on any machine.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_core::{op, Job, Result, TableUpdate};

/// Where a built-in job reads and writes.
#[derive(Clone, Debug)]
pub struct JobPaths {
    /// The input file or directory.
    pub input: PathBuf,
    /// The output directory (part files).
    pub output: PathBuf,
}

impl JobPaths {
    /// The placeholders `weir explain` shows.
    pub fn placeholders() -> Self {
        JobPaths {
            input: "input".into(),
            output: "output".into(),
        }
    }
}

/// A built-in job: name, one-line description, graph builder.
pub type BuiltinJob = (
    &'static str,
    &'static str,
    for<'s> fn(&mut Job<'s>, &JobPaths) -> Result<()>,
);

/// All built-in jobs.
pub const JOBS: &[BuiltinJob] = &[
    (
        "wordcount",
        "lines (JSON strings) -> split words -> count per word -> JSON Lines",
        wordcount,
    ),
    (
        "enrich",
        "clicks enriched with a changing user table -> revenue per country (input: DIR with users.jsonl and clicks/)",
        enrich,
    ),
];

fn wordcount(job: &mut Job<'_>, paths: &JobPaths) -> Result<()> {
    job.read_jsonl::<String>("lines", &paths.input)
        .flat_map("split", |l: String| {
            l.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .count_by_value("count")
        .write_jsonl("write", &paths.output);
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    user: u64,
    cents: u64,
}

fn enrich(job: &mut Job<'_>, paths: &JobPaths) -> Result<()> {
    let input: &Path = &paths.input;
    let users = job.read_jsonl::<TableUpdate<u64, String>>(
        op("user-updates").parallelism(1),
        input.join("users.jsonl"),
    );
    job.read_jsonl::<Click>("clicks", input.join("clicks"))
        .map("by-user", |c: Click| (c.user, c.cents))
        .enrich("with-country", users)
        .map("country", |(_, cents, country)| {
            (country.unwrap_or_else(|| "unknown".into()), cents)
        })
        .key_by(|r: &(String, u64)| r.0.clone())
        .sum("revenue", |r| r.1)
        .write_csv(op("write").parallelism(1), &paths.output);
    Ok(())
}
