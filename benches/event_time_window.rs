//! Keyed tumbling event-time windows against a hand-written program, as ratios measured in
//! one run.
//!
//! The input: 1M events as JSON Lines (`{"key":17,"ts":123456,"value":3}`), 1,000 keys,
//! timestamps about 1 ms apart with jitter of up to 5 s back (generated once into a temp
//! file by an inline PRNG). The job: count and sum of `value` per key and 10 s tumbling
//! window, with a bounded-out-of-orderness watermark of 5 s, results written as JSON Lines.
//!
//! - **baseline**: a single-purpose program: read the file, decode each line with serde_json,
//!   watermark = highest timestamp - 5000 - 1, a `HashMap<(key, start), (count, sum)>` of
//!   open windows, fire every window whose end - 1 the watermark has reached (checked after
//!   each record), write the results into a file;
//! - **Weir** at `-w 1` and `-w 2`: `read_jsonl` (the file split over the workers) →
//!   `assign_timestamps` → `key_by` → `window(tumbling 10 s)` → `aggregate` → the baseline's
//!   row → `write_jsonl`.
//!
//! All three outputs are read back and must hold the same (key, start, count, sum) rows.
//! The targets (Weir `-w 1` at least 0.8x the baseline's throughput, at least 1.6x
//! from 1 to 2 workers) are printed with whether they hold; timing is not asserted.
//!
//! The table's `peak MiB` column (JSON `baseline_peak_mib`, `weir_w1_peak_mib`,
//! `weir_w2_peak_mib`) is the peak memory (VmHWM, reset right before each run) of each side's
//! best run. The `stream` scenario holds its JSON lines in memory by design (both sides'
//! peaks include them); the `file` scenario streams the file, and those lines are freed
//! before it runs.
//!
//! `cargo bench --bench event_time_window [-- EVENTS [REPETITIONS]]`, or `WEIR_BENCH_EVENTS`.
//! Prints a table and writes `target/bench/event_time_window.json`. `WEIR_BENCH_ONLY=
//! baseline|w1|w2` runs one side once (for `perf`). Under `cargo test` (no `--bench` flag) it
//! does a small smoke run.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::Run;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::time::{WatermarkStrategy, Windows};

const KEYS: u64 = 1_000;
/// Window size, ms.
const WINDOW: i64 = 10_000;
/// Out-of-orderness bound, ms.
const BOUND: i64 = 5_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    key: u64,
    ts: i64,
    value: u64,
}

/// A window result as both sides write it.
#[derive(Clone, Serialize, Deserialize)]
struct Row {
    key: u64,
    start: i64,
    count: u64,
    sum: u64,
}

/// splitmix64: a deterministic generator without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Writes `events` events: event `i` is at `BOUND + i` ms, minus a jitter of up to 5 s for
/// one event in five (and up to 50 ms for the others). Straight into one buffer: a vector of
/// a line per event, freed before the runs, would stay with the allocator and count in every
/// run's peak memory.
fn generate(events: u64) -> Lines {
    let mut rng = Rng(42);
    let mut lines = Lines::default();
    for i in 0..events {
        let r = rng.next();
        let jitter = if r % 5 == 0 {
            (r >> 8) % (BOUND as u64 + 1)
        } else {
            (r >> 8) % 51
        };
        let e = Event {
            key: (r >> 24) % KEYS,
            ts: BOUND + i as i64 - jitter as i64,
            value: (r >> 40) % 100,
        };
        lines.push(&serde_json::to_string(&e).unwrap());
    }
    lines
}

/// JSON lines in one buffer, as a file read into memory.
struct Lines {
    text: String,
    /// Where each line starts; one more entry for the end.
    starts: Vec<usize>,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            text: String::new(),
            starts: vec![0],
        }
    }
}

impl Lines {
    /// Appends a line (without its newline).
    fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        self.starts.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Line `k` without its newline.
    fn line(&self, k: usize) -> &str {
        &self.text[self.starts[k]..self.starts[k + 1] - 1]
    }
}

/// Where the events come from.
#[derive(Clone)]
enum Input {
    /// Lines in memory, partitioned over the source instances like a topic's partitions:
    /// instance `i` of `n` takes lines `i, i + n, ...`, so every instance covers all of
    /// event time.
    Stream(Arc<Lines>),
    /// A JSON Lines file, cut into blocks that the instances read in turn, so that they move
    /// through event time together.
    File(PathBuf),
}

/// The hand-written program's state: the open windows and the watermark.
struct WindowCounter<W: Write> {
    open: HashMap<(u64, i64), (u64, u64)>,
    max_ts: i64,
    /// The lowest `end - 1` of the open windows: nothing is due before the watermark gets
    /// there.
    next_due: i64,
    out: W,
}

impl<W: Write> WindowCounter<W> {
    fn new(out: W) -> Self {
        WindowCounter {
            open: HashMap::new(),
            max_ts: i64::MIN,
            next_due: i64::MAX,
            out,
        }
    }

    /// Decodes a line and counts its event; fires what the watermark passed.
    fn line(&mut self, line: &[u8]) {
        let e: Event = serde_json::from_slice(line).unwrap();
        // A record at or below the watermark before it would be late; the generator's
        // jitter never exceeds the bound.
        let start = e.ts - e.ts.rem_euclid(WINDOW);
        let acc = self.open.entry((e.key, start)).or_insert((0, 0));
        acc.0 += 1;
        acc.1 += e.value;
        self.next_due = self.next_due.min(start + WINDOW - 1);
        self.max_ts = self.max_ts.max(e.ts);
        let watermark = self.max_ts - BOUND - 1;
        if watermark >= self.next_due {
            self.fire(watermark);
        }
    }

    /// Writes and forgets every window whose last millisecond the watermark has reached.
    fn fire(&mut self, watermark: i64) {
        let mut next = i64::MAX;
        let out = &mut self.out;
        self.open.retain(|&(key, start), &mut (count, sum)| {
            let last = start + WINDOW - 1;
            if last <= watermark {
                let row = Row {
                    key,
                    start,
                    count,
                    sum,
                };
                serde_json::to_writer(&mut *out, &row).unwrap();
                out.write_all(b"\n").unwrap();
                false
            } else {
                next = next.min(last);
                true
            }
        });
        self.next_due = next;
    }

    fn finish(mut self) {
        self.fire(i64::MAX);
        self.out.flush().unwrap();
    }
}

/// The hand-written program: returns its time and peak memory.
fn baseline(input: &Input, output: &Path) -> Run {
    let start = Run::start();
    let out = BufWriter::with_capacity(1 << 16, File::create(output).unwrap());
    let mut counter = WindowCounter::new(out);
    match input {
        Input::Stream(lines) => {
            for k in 0..lines.len() {
                counter.line(lines.line(k).as_bytes());
            }
        }
        Input::File(path) => {
            let mut reader = BufReader::with_capacity(1 << 16, File::open(path).unwrap());
            let mut line = Vec::with_capacity(256);
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                    break;
                }
                let trimmed = line.trim_ascii();
                if !trimmed.is_empty() {
                    counter.line(trimmed);
                }
            }
        }
    }
    counter.finish();
    Run::end(start)
}

/// The same job in Weir on `workers` threads: returns its time and peak memory.
fn weir(workers: usize, input: &Input, output: &Path) -> Run {
    let mut config = Config::threads(workers)
        .with_verbose(false)
        .with_overwrite(true);
    if let Some(n) = std::env::var("WEIR_BENCH_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config = config.with_epochs(EpochPolicy::Records(n));
    }
    let (input, output) = (input.clone(), output.to_path_buf());
    let start = Run::start();
    execute(config, move |job| {
        let events = match &input {
            // Instance i of n decodes lines i, i + n, ... (a partition of the stream).
            Input::Stream(lines) => {
                let lines = Arc::clone(lines);
                job.generate("events", Some(lines.len() as u64), move |k| {
                    serde_json::from_str::<Event>(lines.line(k as usize))
                        .expect("generated lines decode")
                })
            }
            Input::File(path) => job.read_jsonl::<Event>("events", path),
        };
        events
            .assign_timestamps(
                "event-time",
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
                    BOUND as u64,
                ))
                .with_timestamp_assigner(|e: &Event| e.ts),
            )
            .key_by(|e: &Event| e.key)
            .window(Windows::tumbling(Duration::from_millis(WINDOW as u64)))
            .aggregate(
                "window",
                || (0u64, 0u64),
                |a: &mut (u64, u64), e: &Event| {
                    a.0 += 1;
                    a.1 += e.value;
                },
                |a, b| {
                    a.0 += b.0;
                    a.1 += b.1;
                },
            )
            .results()
            .map("row", |r| Row {
                key: r.key,
                start: r.window.start,
                count: r.value.0,
                sum: r.value.1,
            })
            .write_jsonl("out", &output);
        Ok(())
    })
    .unwrap();
    Run::end(start)
}

/// The baseline's rows, sorted.
fn read_baseline(path: &Path) -> Vec<(u64, i64, u64, u64)> {
    let mut rows: Vec<_> = BufReader::new(File::open(path).unwrap())
        .lines()
        .map(|l| {
            let r: Row = serde_json::from_str(&l.unwrap()).unwrap();
            (r.key, r.start, r.count, r.sum)
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// The rows of Weir's part files in `dir`, sorted.
fn read_weir(dir: &Path) -> Vec<(u64, i64, u64, u64)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for line in BufReader::new(File::open(&path).unwrap()).lines() {
            let r: Row = serde_json::from_str(&line.unwrap()).unwrap();
            rows.push((r.key, r.start, r.count, r.sum));
        }
    }
    rows.sort_unstable();
    rows
}

/// Prints what differs between Weir's results and the baseline's.
fn explain_difference(
    workers: usize,
    got: &[(u64, i64, u64, u64)],
    expected: &[(u64, i64, u64, u64)],
) {
    let total = |rows: &[(u64, i64, u64, u64)]| rows.iter().map(|r| r.2).sum::<u64>();
    eprintln!(
        "weir -w {workers}: {} results holding {} events; baseline: {} results holding {} events",
        got.len(),
        total(got),
        expected.len(),
        total(expected)
    );
    let want: std::collections::HashSet<_> = expected.iter().collect();
    let have: std::collections::HashSet<_> = got.iter().collect();
    let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(10).collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|r| !have.contains(r))
        .take(10)
        .collect();
    eprintln!("  only in weir (key, start, count, sum): {extra:?}");
    eprintln!("  only in the baseline: {missing:?}");
}

/// Best and median time of some runs, and the best run's peak memory in MiB.
fn best_and_median(mut runs: Vec<Run>) -> (Duration, Duration, f64) {
    runs.sort_by_key(|r| r.took);
    (runs[0].took, runs[runs.len() / 2].took, runs[0].peak_mib())
}

/// Times of one scenario: baseline, weir -w 1, weir -w 2 (best, median, best run's peak MiB).
struct Timings {
    rows: [(&'static str, (Duration, Duration, f64)); 3],
}

impl Timings {
    fn ratio_w1(&self) -> f64 {
        self.rows[0].1 .0.as_secs_f64() / self.rows[1].1 .0.as_secs_f64()
    }
    fn ratio_w2(&self) -> f64 {
        self.rows[0].1 .0.as_secs_f64() / self.rows[2].1 .0.as_secs_f64()
    }
    fn speedup(&self) -> f64 {
        self.rows[1].1 .0.as_secs_f64() / self.rows[2].1 .0.as_secs_f64()
    }

    fn print(&self, events: u64) {
        let rate = |d: Duration| events as f64 / d.as_secs_f64() / 1e6;
        println!(
            "{:>10} {:>12} {:>12} {:>12} {:>14} {:>9}",
            "side", "best ms", "median ms", "best M ev/s", "vs baseline", "peak MiB"
        );
        let base_best = self.rows[0].1 .0;
        for (name, (best, median, peak)) in &self.rows {
            println!(
                "{name:>10} {:>12.1} {:>12.1} {:>12.3} {:>13.3}x {peak:>9.0}",
                best.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                rate(*best),
                base_best.as_secs_f64() / best.as_secs_f64()
            );
        }
        let verdict = |ok: bool| if ok { "holds" } else { "MISSED" };
        println!(
            "weir -w 1 / baseline throughput: {:.3}x (target >= 0.8x: {})",
            self.ratio_w1(),
            verdict(self.ratio_w1() >= 0.8)
        );
        println!("weir -w 2 / baseline throughput: {:.3}x", self.ratio_w2());
        println!(
            "weir speedup -w 2 vs -w 1:       {:.3}x (target >= 1.6x: {})",
            self.speedup(),
            verdict(self.speedup() >= 1.6)
        );
    }

    fn json(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "{{\"baseline_best_ms\":{:.1},\"weir_w1_best_ms\":{:.1},\"weir_w2_best_ms\":{:.1},\
             \"weir_w1_vs_baseline\":{:.4},\"weir_w2_vs_baseline\":{:.4},\"speedup_w2_vs_w1\":{:.4},\
             \"baseline_peak_mib\":{:.1},\"weir_w1_peak_mib\":{:.1},\"weir_w2_peak_mib\":{:.1}}}",
            ms(self.rows[0].1 .0),
            ms(self.rows[1].1 .0),
            ms(self.rows[2].1 .0),
            self.ratio_w1(),
            self.ratio_w2(),
            self.speedup(),
            self.rows[0].1 .2,
            self.rows[1].1 .2,
            self.rows[2].1 .2
        )
    }
}

/// Checks that Weir's outputs hold the baseline's rows.
fn check_outputs(base_out: &Path, outs: &[PathBuf; 2], events: u64) -> usize {
    let expected = read_baseline(base_out);
    assert_eq!(
        expected.iter().map(|r| r.2).sum::<u64>(),
        events,
        "the baseline lost events"
    );
    for (workers, out) in [1, 2].iter().zip(outs) {
        let got = read_weir(out);
        if got != expected {
            explain_difference(*workers, &got, &expected);
        }
        assert!(
            got == expected,
            "weir -w {workers}: {} window results differ from the baseline's {}",
            got.len(),
            expected.len()
        );
    }
    expected.len()
}

/// Runs one scenario: a warm-up run of each side whose outputs must agree, then `reps`
/// interleaved timed runs (whose outputs must agree too).
fn scenario(input: &Input, dir: &Path, events: u64, reps: usize) -> Timings {
    let base_out = dir.join("baseline.jsonl");
    let outs: [PathBuf; 2] = [dir.join("weir-w1"), dir.join("weir-w2")];
    baseline(input, &base_out);
    weir(1, input, &outs[0]);
    weir(2, input, &outs[1]);
    let results = check_outputs(&base_out, &outs, events);
    println!("outputs agree: {results} window results from each of baseline, weir -w 1, weir -w 2");
    let (mut base, mut w1, mut w2) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        base.push(baseline(input, &base_out));
        w1.push(weir(1, input, &outs[0]));
        w2.push(weir(2, input, &outs[1]));
    }
    check_outputs(&base_out, &outs, events);
    Timings {
        rows: [
            ("baseline", best_and_median(base)),
            ("weir -w 1", best_and_median(w1)),
            ("weir -w 2", best_and_median(w2)),
        ],
    }
}

/// `WEIR_BENCH_ONLY=<side>`: runs one side once on the input `WEIR_BENCH_INPUT` names.
fn run_only(side: &str, inputs: &[(&str, Input); 2], dir: &Path, events: u64) {
    let (name, input) = match std::env::var("WEIR_BENCH_INPUT").as_deref() {
        Ok("file") => &inputs[1],
        _ => &inputs[0],
    };
    let out = dir.join("out");
    let run = match side {
        "baseline" => baseline(input, &out),
        "w1" => weir(1, input, &out),
        "w2" => weir(2, input, &out),
        other => panic!("WEIR_BENCH_ONLY must be baseline, w1 or w2, not {other}"),
    };
    println!(
        "{side} ({name}): {events} events in {:.1} ms ({:.0} MiB peak)",
        run.took.as_secs_f64() * 1e3,
        run.peak_mib()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then a quick smoke run (same code, small input) is enough.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let default_events = if benchmarking { 1_000_000 } else { 20_000 };
    let events: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .or_else(|| std::env::var("WEIR_BENCH_EVENTS").ok()?.parse().ok())
        .unwrap_or(default_events);
    let reps: usize = bench_process::number_arg(&args, 1, if benchmarking { 3 } else { 1 }).max(1);
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench event_time_window` for real numbers)");
    }
    let dir = tempfile::tempdir().unwrap();
    let lines = Arc::new(generate(events));
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, &lines.text).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let inputs = [
        ("stream", Input::Stream(lines)),
        ("file", Input::File(path)),
    ];
    if let Ok(side) = std::env::var("WEIR_BENCH_ONLY") {
        run_only(&side, &inputs, dir.path(), events);
        return;
    }
    println!(
        "keyed tumbling 10 s event-time windows (count + sum), {events} events ({:.1} MB JSON \
         Lines), {KEYS} keys, up to 5 s out of order; {reps} interleaved runs per side",
        size as f64 / 1e6
    );
    let mut json = Vec::new();
    // By value: the stream's lines are freed before the file scenario runs.
    for (name, input) in inputs {
        println!("\n== {name}: {}", match &input {
            Input::Stream(_) => "JSON lines in memory, partitioned over the source instances (as a topic's partitions)",
            Input::File(_) => "a JSON Lines file, its blocks read by the instances in turn",
        });
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let timings = scenario(&input, &sub, events, reps);
        timings.print(events);
        json.push(format!("\"{name}\":{}", timings.json()));
    }
    if benchmarking {
        let _ = std::fs::create_dir_all("target/bench");
        let _ = std::fs::write(
            "target/bench/event_time_window.json",
            format!(
                "{{\"events\":{events},\"keys\":{KEYS},\"runs\":{reps},{}}}\n",
                json.join(",")
            ),
        );
    }
}
