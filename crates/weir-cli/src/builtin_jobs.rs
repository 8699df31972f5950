//! Example jobs built into the CLI, so `weir explain` has something to show on any machine.

use serde::{Deserialize, Serialize};
use weir_core::{op, Job, Result, TableUpdate};

/// A built-in job: name, one-line description, graph builder.
pub type BuiltinJob = (
    &'static str,
    &'static str,
    for<'s> fn(&mut Job<'s>) -> Result<()>,
);

/// All built-in jobs.
pub const JOBS: &[BuiltinJob] = &[
    (
        "wordcount",
        "lines -> split words -> count per word -> JSON Lines",
        wordcount,
    ),
    (
        "enrich",
        "click events enriched with a changing user table, revenue per country",
        enrich,
    ),
];

fn wordcount(job: &mut Job<'_>) -> Result<()> {
    job.read_jsonl::<String>(op("lines").parallelism(1), "input/lines.jsonl")
        .flat_map("split", |l: String| {
            l.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .key_by(|w: &String| w.clone())
        .count("count")
        .write_jsonl("write", "output/wordcount");
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    user: u64,
    cents: u64,
}

fn enrich(job: &mut Job<'_>) -> Result<()> {
    let users = job.read_jsonl::<TableUpdate<u64, String>>(
        op("user-updates").parallelism(1),
        "input/users.jsonl",
    );
    job.read_jsonl::<Click>("clicks", "input/clicks")
        .map("by-user", |c: Click| (c.user, c.cents))
        .enrich("with-country", users)
        .map("country", |(_, cents, country)| {
            (country.unwrap_or_else(|| "unknown".into()), cents)
        })
        .key_by(|r: &(String, u64)| r.0.clone())
        .sum("revenue", |r| r.1)
        .write_csv(op("write").parallelism(1), "output/revenue");
    Ok(())
}
