//! Event-time windows: clicks per user in 10 s tumbling windows, with late data aside.
//!
//! ```text
//! cargo run --release --example clickstream_windows -- -w 2                 # generated clicks
//! cargo run --release --example clickstream_windows -- -w 2 --input clicks.jsonl --output out/
//! cargo run --release --example clickstream_windows -- -w 2 --explain       # job graph only
//! ```
//! Input lines are `{"user":<u32>,"page":<string>,"ts":<ms since the Unix epoch>,
//! "dwell_ms":<u32>}`. Without `--input`, one source instance generates 200,000 clicks of
//! 1,000 users over about 17 minutes of event time: timestamps increase with a jitter of up
//! to 5 s (so clicks arrive out of order, within the watermark's bound), and one click in
//! about a thousand is 60 s behind, too late for its window.
//!
//! Timestamps come from `ts`, with a bounded-out-of-orderness watermark of 5 s (as Flink's
//! `WatermarkStrategy.forBoundedOutOfOrderness`). Each user's clicks are counted in 10 s
//! tumbling event-time windows; a window fires once, when the watermark passes its end, as
//! one line `{"user","start","end","clicks","dwell_ms","distinct_pages"}` in
//! `DIR/windows/` (default `DIR`: `target/clickstream-out`). Clicks too late for their
//! window go to `DIR/late/` as `{"ts","data":<the click>,"watermark"}`. Both directories
//! are replaced on every run. `distinct_pages` is approximate (a 64-bit bitmap of page
//! hashes). Lines that do not decode (a missing `ts`, for example) and clicks more than a
//! day ahead of the wall clock are dead letters, written to `DIR/windows.errors.jsonl`.
//!
//! The results do not depend on `-w` or on epoch size: the generated stream has one source
//! instance, and lateness is decided where timestamps are assigned (see
//! `docs/event-time.md`). A file is read by one instance per worker, each with its own
//! watermark, so there which clicks are late depends on `-w`. The program ends by printing
//! the windows fired and the late clicks (for generated clicks, beside the counts a plain
//! loop computes without the dataflow), the throughput and the timestamp assigner's final
//! watermark.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::time::{
    BoundedOutOfOrderness, WatermarkGenerator, WatermarkStrategy, WindowResult, Windows,
    END_OF_TIME, NO_WATERMARK,
};

/// Clicks generated without `--input`.
const EVENTS: u64 = 200_000;
/// Users of the generated clicks.
const USERS: u64 = 1_000;
/// Event time of the first generated click (November 2023, in ms since the Unix epoch).
const START_MS: i64 = 1_700_000_000_000;
/// Event time between two generated clicks, before jitter.
const STEP_MS: i64 = 5;
/// How far a generated click may lag behind its place in the stream (exclusive).
const JITTER_MS: u64 = 5_000;
/// How far the very late clicks lag behind.
const VERY_LATE_MS: i64 = 60_000;
/// The watermark's bound on out-of-orderness.
const BOUND: Duration = Duration::from_secs(5);
/// The size of the tumbling windows.
const WINDOW: Duration = Duration::from_secs(10);

/// One click of the clickstream.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Click {
    user: u32,
    page: String,
    /// Event time, in ms since the Unix epoch.
    ts: i64,
    /// Time spent on the page.
    dwell_ms: u32,
}

/// SplitMix64: a stateless hash of `x`, as the inline pseudo-random generator.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Click {
    /// Whether generated click `k` is one of the very late ones (never among the first
    /// thousand, so the watermark has moved when it comes).
    fn very_late(k: u64) -> bool {
        k >= 1_000 && splitmix64(k ^ 0x5EED) % 1_000 == 7
    }

    /// Generated click number `k`: a pure function of `k`, so every run is the same.
    fn generated(k: u64) -> Click {
        let r = splitmix64(k);
        let lag = if Click::very_late(k) {
            VERY_LATE_MS
        } else {
            ((r >> 40) % JITTER_MS) as i64
        };
        let page = match r % 4 {
            0 => "/".to_string(),
            1 => "/search".to_string(),
            _ => format!("/product/{}", (r >> 8) % 40),
        };
        Click {
            user: ((r >> 16) % USERS) as u32,
            page,
            ts: START_MS + k as i64 * STEP_MS - lag,
            dwell_ms: ((r >> 24) % 30_000) as u32,
        }
    }
}

/// What a window accumulates for a user.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct WindowStats {
    clicks: u64,
    dwell_ms: u64,
    /// Bit `hash(page) % 64` of every page seen.
    pages: u64,
}

impl WindowStats {
    fn add(&mut self, click: &Click) {
        self.clicks += 1;
        self.dwell_ms += u64::from(click.dwell_ms);
        self.pages |= 1 << (weir::key_hash(&click.page) % 64);
    }

    /// Combines two accumulators (needed for merging windows; tumbling windows never do).
    fn merge(&mut self, other: WindowStats) {
        self.clicks += other.clicks;
        self.dwell_ms += other.dwell_ms;
        self.pages |= other.pages;
    }
}

/// One output line per user and window.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct UserWindow {
    user: u32,
    start: i64,
    end: i64,
    clicks: u64,
    dwell_ms: u64,
    distinct_pages: u32,
}

impl UserWindow {
    fn of(r: WindowResult<u32, WindowStats>) -> Self {
        UserWindow {
            user: r.key,
            start: r.window.start,
            end: r.window.end,
            clicks: r.value.clicks,
            dwell_ms: r.value.dwell_ms,
            distinct_pages: r.value.pages.count_ones(),
        }
    }
}

/// The program's own arguments: `--input FILE`, `--output DIR`.
#[derive(Clone)]
struct Args {
    input: Option<PathBuf>,
    output: PathBuf,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Args> {
        let mut parsed = Args {
            input: None,
            output: PathBuf::from("target/clickstream-out"),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--input" => {
                    parsed.input = Some(args.next().context("--input needs a path")?.into())
                }
                "--output" => parsed.output = args.next().context("--output needs a path")?.into(),
                other => {
                    anyhow::bail!(
                        "unknown argument `{other}` (expected --input FILE, --output DIR)"
                    )
                }
            }
        }
        Ok(parsed)
    }
}

/// The clicks: read from `--input` on every worker, or generated by one instance.
fn clicks<'s>(job: &mut Job<'s>, args: &Args) -> (DataStream<'s, Click>, usize) {
    match &args.input {
        Some(path) => (job.read_jsonl::<Click>("clicks", path), job.workers()),
        None => {
            let source = op("clicks").parallelism(1);
            (job.generate(source, Some(EVENTS), Click::generated), 1)
        }
    }
}

/// The job: timestamps and watermarks, per-user tumbling windows, results and late clicks.
fn build(job: &mut Job<'_>, args: &Args) -> Result<(), WeirError> {
    let (clicks, parallelism) = clicks(job, args);
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(BOUND)
        .with_timestamp_assigner(|c: &Click| c.ts)
        .field("ts");
    // Same parallelism as the source: each assigner instance sees one source instance's
    // clicks in their order.
    let (windows, late) = clicks
        .assign_timestamps(op("event-time").parallelism(parallelism), strategy)
        .key_by(|c: &Click| c.user)
        .window(Windows::tumbling(WINDOW))
        .aggregate(
            "clicks-per-user",
            WindowStats::default,
            WindowStats::add,
            WindowStats::merge,
        )
        .with_late_data();
    windows
        .map("to-row", UserWindow::of)
        .write_jsonl(op("write").overwrite(true), args.output.join("windows"));
    late.write_jsonl(op("write-late").overwrite(true), args.output.join("late"));
    Ok(())
}

/// What the job must produce from the generated clicks, computed in one pass without the
/// dataflow: (windows, late clicks). A click is late when the watermark before it (one
/// instance stamps them all) has reached the last millisecond of its window.
fn reference() -> (u64, u64) {
    let windows = Windows::tumbling(WINDOW);
    let mut watermark = BoundedOutOfOrderness::new(BOUND);
    let mut fired = HashSet::new();
    let mut late = 0;
    for k in 0..EVENTS {
        let click = Click::generated(k);
        let window = windows.assign(click.ts)[0];
        if window.max_timestamp() <= watermark.current_watermark() {
            late += 1;
        } else {
            fired.insert((click.user, window.start));
        }
        watermark.on_event(click.ts);
    }
    (fired.len() as u64, late)
}

/// A watermark for people, as the job report shows it.
fn describe_watermark(watermark: Option<i64>) -> String {
    match watermark {
        None | Some(NO_WATERMARK) => "none yet".into(),
        Some(END_OF_TIME) => "end of input".into(),
        Some(ms) => format!("{ms} ms"),
    }
}

/// The summary of the run (process 0); an error when generated clicks did not give the
/// counts of the plain loop.
fn print_summary(report: &JobReport, args: &Args) -> anyhow::Result<()> {
    let count = |name: &str| report.operator(name).map_or(0, |o| o.records_in);
    let records = count("clicks");
    let late = count("write-late");
    let seconds = report.elapsed_ms / 1e3;
    let windows = count("write");
    match args.input {
        Some(_) => println!("windows fired: {windows}\nlate clicks:   {late}"),
        None => {
            let (want_windows, want_late) = reference();
            println!("windows fired: {windows} (reference: {want_windows})");
            println!("late clicks:   {late} (reference: {want_late})");
            anyhow::ensure!(
                (windows, late) == (want_windows, want_late),
                "the job's windows and late clicks differ from the plain loop's"
            );
        }
    }
    println!(
        "{records} clicks in {seconds:.2} s ({:.0} records/s), {} dead letter(s)",
        records as f64 / seconds.max(1e-9),
        report.dead_letters
    );
    let watermark = report.operator("event-time").and_then(|o| o.watermark);
    println!(
        "watermark of the timestamp assigner: {}",
        describe_watermark(watermark)
    );
    println!("output: {}/{{windows,late}}/", args.output.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let args = Args::parse(&config.program_args)?;
    let explaining = config.explain.is_some();
    let first_process = config.process_index() == 0;
    let job_args = args.clone();
    let report = execute(config, move |job| build(job, &job_args))?;
    if !explaining && first_process {
        print_summary(&report, &args)?;
    }
    Ok(())
}
