//! Event time against plain sequential references: windows (tumbling, sliding, session,
//! count), allowed lateness and late data, early firing, keyed process functions with
//! timers, interval and window joins, on shuffled out-of-order input, at every epoch size,
//! source parallelism and operator parallelism tried, across threads and processes.
//!
//! The references model the documented semantics: a source instance `i` of `n` reads the
//! events at positions `i, i + n, …` (`Job::from_vec`); a record is late for a window when
//! its instance's watermark just before it (highest timestamp so far − bound − 1) has
//! passed the window's end plus the allowed lateness.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::time::{
    KeyedProcessFunction, ProcessContext, Stamped, Timer, Timing, WatermarkStrategy, WindowResult,
    Windows,
};

const BOUND_MS: i64 = 500;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Ev {
    id: u32,
    key: u32,
    ts: i64,
    value: u64,
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` events with unique timestamps about 10 ms apart, emitted out of order by up to
/// `BOUND_MS`; one in `late_every` is held back by 5 s (0: none), which makes it late.
fn events(seed: u64, n: u32, keys: u32, late_every: u32) -> Vec<Ev> {
    let mut rng = Rng(seed);
    let mut ordered: Vec<(i64, Ev)> = (0..n)
        .map(|i| {
            // Unique: event i is in [10 i, 10 i + 9].
            let ts = i as i64 * 10 + rng.below(10) as i64;
            let delay = if late_every > 0 && i % late_every == late_every - 1 {
                5_000
            } else {
                rng.below(BOUND_MS as u64) as i64
            };
            let ev = Ev {
                id: i,
                key: rng.below(keys as u64) as u32,
                ts,
                value: rng.below(100),
            };
            (ts + delay, ev)
        })
        .collect();
    ordered.sort_by_key(|(arrival, ev)| (*arrival, ev.id));
    ordered.into_iter().map(|(_, ev)| ev).collect()
}

/// Each event's source-instance watermark just before it, for `sources` instances that
/// read positions `i, i + n, …`.
fn watermarks_before(events: &[Ev], sources: usize) -> Vec<i64> {
    let mut max_seen = vec![i64::MIN; sources];
    events
        .iter()
        .enumerate()
        .map(|(pos, ev)| {
            let m = &mut max_seen[pos % sources];
            let before = if *m == i64::MIN {
                i64::MIN
            } else {
                *m - BOUND_MS - 1
            };
            *m = (*m).max(ev.ts);
            before
        })
        .collect()
}

fn strategy() -> WatermarkStrategy<Ev> {
    WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(BOUND_MS as u64))
        .with_timestamp_assigner(|e: &Ev| e.ts)
        .field("ts")
}

/// (key, start, end) → (count, sum).
type Finals = BTreeMap<(u32, i64, i64), (u64, u64)>;

/// The reference for tumbling/sliding windows: final values per window, and late ids.
fn reference_windows(
    events: &[Ev],
    sources: usize,
    windows: Windows,
    lateness: i64,
) -> (Finals, BTreeSet<u32>) {
    let before = watermarks_before(events, sources);
    let mut finals = Finals::new();
    let mut late = BTreeSet::new();
    for (ev, wm) in events.iter().zip(before) {
        let assigned = windows.assign(ev.ts);
        let live: Vec<_> = assigned
            .iter()
            .copied()
            .filter(|w| w.max_timestamp() + lateness > wm)
            .collect();
        // A record in a gap between sliding windows is in no window, and not late.
        if live.is_empty() && !assigned.is_empty() {
            late.insert(ev.id);
        }
        for w in live {
            let acc = finals.entry((ev.key, w.start, w.end)).or_default();
            acc.0 += 1;
            acc.1 += ev.value;
        }
    }
    (finals, late)
}

/// One run's settings.
#[derive(Clone, Copy, Debug)]
struct Run {
    threads: usize,
    sources: usize,
    window_parallelism: usize,
    epoch_records: u64,
}

fn runs() -> Vec<Run> {
    let mut out = Vec::new();
    for (threads, sources, window_parallelism) in [(1, 1, 1), (2, 2, 1), (3, 1, 3), (3, 3, 2)] {
        for epoch_records in [1, 13, 4096] {
            out.push(Run {
                threads,
                sources,
                window_parallelism,
                epoch_records,
            });
        }
    }
    out
}

type Results = Vec<WindowResult<u32, (u64, u64)>>;

/// Runs a windowed count+sum; returns every pane and the late ids.
fn run_windows(
    config: Config,
    run: Run,
    events: &[Ev],
    windows: Windows,
    lateness: i64,
    early: Option<Duration>,
) -> (Results, BTreeSet<u32>) {
    let results = Collector::new();
    let late = Collector::new();
    let (r, l) = (results.clone(), late.clone());
    let events = events.to_vec();
    execute(config, move |job| {
        let source = op("events")
            .parallelism(run.sources)
            .epochs(EpochPolicy::Records(run.epoch_records));
        let mut windowed = job
            .from_vec(source, events.clone())
            .assign_timestamps(op("ts").parallelism(run.sources), strategy())
            .key_by(|e: &Ev| e.key)
            .window(windows)
            .allowed_lateness(Duration::from_millis(lateness as u64));
        if let Some(every) = early {
            windowed = windowed.early_firing(every);
        }
        let (results, late) =
            count_sum(windowed, op("window").parallelism(run.window_parallelism)).with_late_data();
        results.collect(op("results").parallelism(1), &r);
        late.map("late-ids", |s: Stamped<Ev>| s.data.id)
            .collect(op("late").parallelism(1), &l);
        Ok(())
    })
    .unwrap();
    (results.take(), late.take().into_iter().collect())
}

/// A window's panes: (index, timing, value).
type Panes = Vec<(u32, Timing, (u64, u64))>;

/// The last pane of every window, and a check that panes are numbered 0, 1, … with the
/// on-time pane first among non-early ones.
fn finals(results: &Results) -> Finals {
    let mut by_window: BTreeMap<(u32, i64, i64), Panes> = BTreeMap::new();
    for r in results {
        by_window
            .entry((r.key, r.window.start, r.window.end))
            .or_default()
            .push((r.pane.index, r.pane.timing, r.value));
    }
    by_window
        .into_iter()
        .map(|(w, mut panes)| {
            panes.sort_by_key(|p| p.0);
            for (i, p) in panes.iter().enumerate() {
                assert_eq!(p.0 as usize, i, "window {w:?}: panes {panes:?}");
            }
            (w, panes.last().unwrap().2)
        })
        .collect()
}

fn config(threads: usize) -> Config {
    Config::threads(threads).with_verbose(false)
}

#[test]
fn tumbling_and_sliding_windows_match_the_reference_at_any_epoch_size_and_parallelism() {
    // (windows, allowed lateness, whether some records are late)
    let cases = [
        (Windows::tumbling(Duration::from_millis(1_000)), 0, true),
        (
            Windows::tumbling(Duration::from_millis(1_000)),
            2_000,
            false,
        ),
        (
            Windows::sliding(Duration::from_millis(1_000), Duration::from_millis(250)),
            0,
            true,
        ),
        (
            Windows::sliding(Duration::from_millis(1_000), Duration::from_millis(250)),
            700,
            false,
        ),
        // Gaps between the windows: records in them are in no window and are not late.
        (
            Windows::sliding(Duration::from_millis(250), Duration::from_millis(1_000)),
            0,
            false,
        ),
    ];
    for (seed, (windows, lateness, some_late)) in cases.into_iter().enumerate() {
        let input = events(seed as u64 + 1, 1_500, 7, 97);
        for run in runs() {
            let (expected, expected_late) =
                reference_windows(&input, run.sources, windows, lateness);
            assert!(!expected_late.is_empty() || !some_late);
            let (results, late) =
                run_windows(config(run.threads), run, &input, windows, lateness, None);
            assert_eq!(
                finals(&results),
                expected,
                "{windows:?} lateness {lateness} {run:?}"
            );
            assert_eq!(
                late, expected_late,
                "{windows:?} lateness {lateness} {run:?}"
            );
            if lateness == 0 {
                // Without lateness every window fires exactly once, on time.
                assert_eq!(results.len(), expected.len(), "{run:?}");
                assert!(results.iter().all(|r| r.pane.timing == Timing::OnTime));
            }
        }
    }
}

#[test]
fn allowed_lateness_emits_corrections_and_only_later_records_are_late() {
    let windows = Windows::tumbling(Duration::from_millis(1_000));
    // Records held back by 5 s: within a lateness of 6 s they correct their window.
    let input = events(42, 1_500, 5, 50);
    let run = Run {
        threads: 2,
        sources: 1,
        window_parallelism: 2,
        epoch_records: 16,
    };
    let (expected, expected_late) = reference_windows(&input, 1, windows, 6_000);
    assert!(expected_late.is_empty());
    let (results, late) = run_windows(config(2), run, &input, windows, 6_000, None);
    assert!(late.is_empty());
    assert_eq!(finals(&results), expected);
    assert!(
        results.iter().any(|r| r.pane.timing == Timing::Late),
        "late records within the lateness fire corrections"
    );
    // With a lateness of 1 s the same records are late and go to the side output.
    let (expected, expected_late) = reference_windows(&input, 1, windows, 1_000);
    assert!(!expected_late.is_empty());
    let (results, late) = run_windows(config(2), run, &input, windows, 1_000, None);
    assert_eq!((finals(&results), late), (expected, expected_late));
}

#[test]
fn early_firing_does_not_change_the_final_results() {
    let windows = Windows::tumbling(Duration::from_millis(2_000));
    let input = events(7, 3_000, 3, 0);
    let run = Run {
        threads: 2,
        sources: 2,
        window_parallelism: 2,
        epoch_records: 8,
    };
    let (expected, _) = reference_windows(&input, 2, windows, 0);
    let (results, _) = run_windows(
        config(2),
        run,
        &input,
        windows,
        0,
        Some(Duration::from_millis(1)),
    );
    assert_eq!(finals(&results), expected);
    let on_time = results
        .iter()
        .filter(|r| r.pane.timing == Timing::OnTime)
        .count();
    assert_eq!(on_time, expected.len(), "every window fires on time once");
    assert!(results.iter().all(|r| r.pane.timing != Timing::Late));
}

/// Sessions per key from the non-late records: (key, start, end) → (count, sum).
fn reference_sessions(events: &[Ev], sources: usize, gap: i64, lateness: i64) -> Finals {
    let before = watermarks_before(events, sources);
    let mut per_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for (ev, wm) in events.iter().zip(before) {
        if ev.ts + gap - 1 + lateness > wm {
            per_key.entry(ev.key).or_default().push(ev);
        }
    }
    let mut out = Finals::new();
    for (key, mut evs) in per_key {
        evs.sort_by_key(|e| e.ts);
        let mut current: Option<(i64, i64, u64, u64)> = None;
        for e in evs {
            current = match current {
                // Sessions that touch merge (Flink's `TimeWindow.intersects`).
                Some((s, end, n, sum)) if e.ts <= end => {
                    Some((s, end.max(e.ts + gap), n + 1, sum + e.value))
                }
                Some((s, end, n, sum)) => {
                    out.insert((key, s, end), (n, sum));
                    Some((e.ts, e.ts + gap, 1, e.value))
                }
                None => Some((e.ts, e.ts + gap, 1, e.value)),
            };
        }
        if let Some((s, end, n, sum)) = current {
            out.insert((key, s, end), (n, sum));
        }
    }
    out
}

#[test]
fn session_windows_match_the_reference() {
    let gap = 300;
    let windows = Windows::session(Duration::from_millis(gap as u64));
    let input = events(3, 1_200, 40, 0);
    for run in runs() {
        let expected = reference_sessions(&input, run.sources, gap, 0);
        let (results, late) = run_windows(config(run.threads), run, &input, windows, 0, None);
        assert!(late.is_empty());
        assert_eq!(finals(&results), expected, "{run:?}");
        assert_eq!(
            results.len(),
            expected.len(),
            "one pane per session: {run:?}"
        );
    }
    // With lateness, late records may merge sessions that already fired: the merged
    // session's last pane is final, and every window emitted lies inside a final session.
    let input = events(4, 1_200, 40, 31);
    let run = runs()[7];
    let expected = reference_sessions(&input, run.sources, gap, 10_000);
    let (results, _) = run_windows(config(run.threads), run, &input, windows, 10_000, None);
    let got = finals(&results);
    for (w, value) in &expected {
        assert_eq!(got.get(w), Some(value), "session {w:?}");
    }
    for (key, start, end) in got.keys() {
        assert!(expected
            .keys()
            .any(|(k, s, e)| k == key && s <= start && end <= e));
    }
}

#[test]
fn count_windows_count_each_keys_records_in_timestamp_order() {
    let input = events(5, 1_000, 4, 0);
    for (size, slide) in [(5u64, 5u64), (4, 2)] {
        let expected = reference_counts(&input, size, slide);
        for run in runs() {
            let windows = Windows::count_sliding(size, slide);
            let (results, _) = run_windows(config(run.threads), run, &input, windows, 0, None);
            assert_eq!(finals(&results), expected, "count {size}/{slide} {run:?}");
        }
    }
}

/// Count windows: per key, records in timestamp order; a window of the last `size` records
/// every `slide` records (no record is late in the inputs this is used with).
fn reference_counts(input: &[Ev], size: u64, slide: u64) -> Finals {
    let mut per_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for ev in input {
        per_key.entry(ev.key).or_default().push(ev);
    }
    let mut expected = Finals::new();
    for (key, mut evs) in per_key {
        evs.sort_by_key(|e| e.ts);
        for end in (slide as usize..=evs.len()).step_by(slide as usize) {
            let start = end.saturating_sub(size as usize);
            let window = &evs[start..end];
            let sum = window.iter().map(|e| e.value).sum();
            expected.insert((key, start as i64, end as i64), (window.len() as u64, sum));
        }
    }
    expected
}

/// What `Sessionise` emits, from the records in timestamp order (none is late in the
/// inputs this is used with).
fn reference_sessionise(input: &[Ev]) -> Vec<(u32, i64, i64, u64)> {
    let mut per_key: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for ev in input {
        per_key.entry(ev.key).or_default().push(ev.ts);
    }
    let mut expected = Vec::new();
    for (key, mut times) in per_key {
        times.sort();
        let (mut first, mut last, mut n) = (times[0], times[0], 0);
        for t in times {
            if t > last + GAP {
                expected.push((key, first, last, n));
                first = t;
                n = 0;
            }
            last = t;
            n += 1;
        }
        expected.push((key, first, last, n));
    }
    expected.sort();
    expected
}

/// Sessionisation with timers: a key's session closes when it has been quiet for `GAP`
/// of event time; emits (key, first, last, records).
struct Sessionise;

const GAP: i64 = 400;

impl KeyedProcessFunction<u32, Ev> for Sessionise {
    type State = Option<(i64, i64, u64)>;
    type Out = (u32, i64, i64, u64);

    fn process_element(
        &mut self,
        r: Stamped<Ev>,
        ctx: &mut ProcessContext<'_, u32, Self::State, Self::Out>,
    ) {
        let next = match *ctx.state() {
            Some((first, last, n)) => {
                ctx.delete_event_time_timer(last + GAP);
                (first, last.max(r.ts), n + 1)
            }
            None => (r.ts, r.ts, 1),
        };
        *ctx.state() = Some(next);
        ctx.register_event_time_timer(next.1 + GAP);
    }

    fn on_timer(
        &mut self,
        _timer: Timer,
        ctx: &mut ProcessContext<'_, u32, Self::State, Self::Out>,
    ) {
        if let Some((first, last, n)) = ctx.state().take() {
            let key = *ctx.key();
            ctx.emit((key, first, last, n));
        }
        ctx.clear();
    }
}

#[test]
fn keyed_process_functions_see_records_in_event_time_order_with_their_timers() {
    let input = events(11, 1_500, 30, 0);
    let expected = reference_sessionise(&input);
    for run in runs() {
        let out = Collector::new();
        let sink = out.clone();
        let events = input.clone();
        execute(config(run.threads), move |job| {
            let source = op("events")
                .parallelism(run.sources)
                .epochs(EpochPolicy::Records(run.epoch_records));
            job.from_vec(source, events.clone())
                .assign_timestamps(op("ts").parallelism(run.sources), strategy())
                .key_by(|e: &Ev| e.key)
                .process(
                    op("sessions").parallelism(run.window_parallelism),
                    Sessionise,
                )
                .records()
                .collect(op("out").parallelism(1), &sink);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.sorted(), expected, "{run:?}");
    }
}

#[test]
fn interval_and_window_joins_match_the_reference() {
    let left = events(21, 600, 6, 53);
    let right: Vec<Ev> = events(22, 600, 6, 0)
        .into_iter()
        .map(|e| Ev {
            id: e.id + 10_000,
            ..e
        })
        .collect();
    let (lower, upper) = (-200i64, 300i64);
    for run in runs() {
        let late_l: Vec<i64> = watermarks_before(&left, run.sources);
        let late_r: Vec<i64> = watermarks_before(&right, run.sources);
        // Interval join: a record is late when its timestamp is at or below its
        // instance's watermark; window join: when its window's end is.
        let live = |evs: &[Ev], wms: &[i64], window: bool| -> Vec<Ev> {
            evs.iter()
                .zip(wms)
                .filter(|(e, w)| {
                    let t = if window {
                        e.ts.div_euclid(1_000) * 1_000 + 999
                    } else {
                        e.ts
                    };
                    t > **w
                })
                .map(|(e, _)| e.clone())
                .collect()
        };
        let mut expected_interval = Vec::new();
        let (l_live, r_live) = (live(&left, &late_l, false), live(&right, &late_r, false));
        for a in &l_live {
            for b in r_live.iter().filter(|b| b.key == a.key) {
                if b.ts >= a.ts + lower && b.ts <= a.ts + upper {
                    expected_interval.push((a.id, b.id));
                }
            }
        }
        let mut expected_window = Vec::new();
        let (l_live, r_live) = (live(&left, &late_l, true), live(&right, &late_r, true));
        for a in &l_live {
            for b in r_live.iter().filter(|b| b.key == a.key) {
                if a.ts.div_euclid(1_000) == b.ts.div_euclid(1_000) {
                    expected_window.push((a.id, b.id));
                }
            }
        }
        expected_interval.sort();
        expected_window.sort();
        let (interval, window) = (Collector::new(), Collector::new());
        let (i_sink, w_sink) = (interval.clone(), window.clone());
        let (l, r) = (left.clone(), right.clone());
        execute(config(run.threads), move |job| {
            let mut side = |name: &str, evs: &Vec<Ev>| {
                let source = op(name)
                    .parallelism(run.sources)
                    .epochs(EpochPolicy::Records(run.epoch_records));
                job.from_vec(source, evs.clone()).assign_timestamps(
                    op(format!("{name}-ts")).parallelism(run.sources),
                    strategy(),
                )
            };
            let (a, b) = (side("left", &l), side("right", &r));
            let p = run.window_parallelism;
            a.clone()
                .key_by(|e: &Ev| e.key)
                .interval_join(
                    op("interval").parallelism(p),
                    b.clone().key_by(|e: &Ev| e.key),
                    lower,
                    upper,
                    |_, a: &Ev, b: &Ev| (a.id, b.id),
                )
                .records()
                .collect(op("interval-out").parallelism(1), &i_sink);
            a.key_by(|e: &Ev| e.key)
                .window_join(
                    op("window").parallelism(p),
                    b.key_by(|e: &Ev| e.key),
                    Windows::tumbling(Duration::from_millis(1_000)),
                    |_, a: &Ev, b: &Ev| (a.id, b.id),
                )
                .with_late_data()
                .0
                .collect(op("window-out").parallelism(1), &w_sink);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            interval.sorted(),
            expected_interval,
            "interval join {run:?}"
        );
        assert_eq!(window.sorted(), expected_window, "window join {run:?}");
    }
}

#[test]
fn running_aggregates_do_not_depend_on_epoch_size_or_parallelism() {
    let input = events(9, 3_000, 50, 0);
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    for ev in &input {
        *expected.entry(ev.key).or_default() += ev.value + 1;
    }
    let total: u64 = expected.values().sum();
    for run in runs() {
        let (sums, global) = (Collector::new(), Collector::new());
        let (s, g) = (sums.clone(), global.clone());
        let events = input.clone();
        execute(config(run.threads), move |job| {
            let source = op("events")
                .parallelism(run.sources)
                .epochs(EpochPolicy::Records(run.epoch_records));
            let evs = job.from_vec(source, events.clone());
            evs.clone()
                .key_by(|e: &Ev| e.key)
                .sum(op("sum").parallelism(run.window_parallelism), |e: &Ev| {
                    e.value + 1
                })
                .collect(op("sums").parallelism(1), &s);
            evs.global_sum("total", |e: &Ev| e.value + 1)
                .collect("totals", &g);
            Ok(())
        })
        .unwrap();
        // Sums of positive values only grow: the largest update is the running total's last.
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (k, v) in sums.take() {
            let e = last.entry(k).or_default();
            *e = (*e).max(v);
        }
        assert_eq!(last, expected, "{run:?}");
        assert_eq!(global.take().into_iter().max(), Some(total), "{run:?}");
    }
}

#[test]
fn records_without_a_timestamp_or_far_in_the_future_are_dead_letters() {
    #[derive(Clone, Debug, Serialize, Deserialize)]
    struct Maybe {
        id: u32,
        ts: Option<i64>,
    }
    let far = i64::MAX / 2;
    let input = vec![
        Maybe {
            id: 1,
            ts: Some(1_000),
        },
        Maybe { id: 2, ts: None },
        Maybe {
            id: 3,
            ts: Some(far),
        },
        Maybe {
            id: 4,
            ts: Some(2_000),
        },
    ];
    let (ok, dead) = (Collector::new(), Collector::new());
    let (o, d) = (ok.clone(), dead.clone());
    execute(config(2), move |job| {
        let strategy = WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|m: &Maybe| m.ts)
            .field("ts");
        job.from_vec("input", input.clone())
            .assign_timestamps("stamp", strategy)
            .records()
            .map("ids", |m: Maybe| m.id)
            .collect("ok", &o);
        job.dead_letters("dead").collect("dead-out", &d);
        Ok(())
    })
    .unwrap();
    assert_eq!(ok.sorted(), vec![1, 4]);
    let mut dead = dead.take();
    dead.sort_by(|a, b| a.raw.cmp(&b.raw));
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0]
            .reason
            .contains("timestamp field `ts`: the record has no timestamp"),
        "{:?}",
        dead[0]
    );
    assert!(
        dead[1].reason.contains("timestamp field `ts`")
            && dead[1].reason.contains("ahead of the wall clock"),
        "{:?}",
        dead[1]
    );
    assert_eq!(dead[0].operator, "stamp");
}

#[test]
fn the_report_shows_each_event_time_operators_watermark() {
    let input = events(1, 500, 3, 0);
    let max_ts = input.iter().map(|e| e.ts).max().unwrap();
    let report = execute(config(2), move |job| {
        job.from_vec("events", input.clone())
            .assign_timestamps("ts", strategy())
            .filter("all", |_| true)
            .key_by(|e: &Ev| e.key)
            .window(Windows::tumbling(Duration::from_secs(1)))
            .count("window")
            .results()
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    // Finished inputs send the end of time, which element-wise operators pass on.
    assert_eq!(report.operator("window").unwrap().watermark, Some(i64::MAX));
    assert_eq!(report.operator("all").unwrap().watermark, Some(i64::MAX));
    let assigner = report.operator("ts").unwrap().watermark;
    assert!(
        assigner.is_some_and(|w| w == i64::MAX || w >= max_ts - BOUND_MS - 1),
        "{assigner:?}"
    );
    assert!(report.to_string().contains("watermark"), "{report}");
}

// ---- across processes ----

const PROCESS_ENV: &str = "WEIR_EVENT_TIME_CHILD";
const OUT_ENV: &str = "WEIR_EVENT_TIME_OUT";

/// One process of `windows_match_the_reference_across_processes` (run directly, it runs
/// the same job on threads).
#[test]
fn windows_across_processes_child() {
    let child = std::env::var(PROCESS_ENV).ok().map(|args| {
        let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
        Config::from_args(argv).unwrap().with_verbose(false)
    });
    let is_child = child.is_some();
    let config = child.unwrap_or_else(|| config(4));
    let first = config.process_index() == 0;
    // Sliding windows with lateness and late data.
    let input = events(77, 1_500, 9, 41);
    let run = Run {
        threads: 4,
        sources: 2,
        window_parallelism: 3,
        epoch_records: 32,
    };
    // Every other family in the same job (a process joins one job only), on input without
    // late records.
    let calm = events(78, 1_200, 7, 0);
    let many = run_many(config, run, &input, &calm);
    if first {
        let (expected, expected_late) = reference_windows(&input, run.sources, sliding(), 800);
        assert_eq!(finals(&many.sliding), expected);
        assert_eq!(many.late, expected_late);
        many.check(&calm, run.sources);
        if let Ok(path) = std::env::var(OUT_ENV) {
            std::fs::write(path, format!("{} windows", expected.len())).unwrap();
        }
    }
    if is_child {
        std::process::exit(0);
    }
}

/// The sliding windows of the multi-process job.
fn sliding() -> Windows {
    Windows::sliding(Duration::from_millis(1_000), Duration::from_millis(500))
}

/// The outputs of [`run_many`].
struct Many {
    sliding: Results,
    late: BTreeSet<u32>,
    tumbling: Results,
    sessions: Results,
    counts: Results,
    sessionised: Vec<(u32, i64, i64, u64)>,
    pairs: Vec<(u32, u32)>,
    sums: Vec<(u32, u64)>,
}

impl Many {
    /// Compares every output with its reference.
    fn check(&self, input: &[Ev], sources: usize) {
        let tumbling = Windows::tumbling(Duration::from_millis(700));
        assert_eq!(
            finals(&self.tumbling),
            reference_windows(input, sources, tumbling, 0).0
        );
        assert_eq!(
            finals(&self.sessions),
            reference_sessions(input, sources, 300, 0)
        );
        assert_eq!(finals(&self.counts), reference_counts(input, 6, 3));
        let mut sessionised = self.sessionised.clone();
        sessionised.sort();
        assert_eq!(sessionised, reference_sessionise(input));
        let mut pairs = self.pairs.clone();
        pairs.sort();
        let mut expected = Vec::new();
        for a in input.iter().filter(|e| e.id % 2 == 0) {
            for b in input.iter().filter(|b| b.id % 2 == 1 && b.key == a.key) {
                if (a.ts - 100..=a.ts + 100).contains(&b.ts) {
                    expected.push((a.id, b.id));
                }
            }
        }
        expected.sort();
        assert_eq!(pairs, expected);
        let mut totals: BTreeMap<u32, u64> = BTreeMap::new();
        for (k, v) in &self.sums {
            let t = totals.entry(*k).or_default();
            *t = (*t).max(*v);
        }
        let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
        for e in input {
            *expected.entry(e.key).or_default() += e.value + 1;
        }
        assert_eq!(totals, expected);
    }
}

/// Count and sum of `value` per window, and the late records.
fn count_sum<'s, F: Fn(&Ev) -> u32 + Clone + 'static>(
    windowed: weir::time::WindowedStream<'s, u32, Ev, F>,
    at: weir::Op,
) -> weir::time::WindowOutput<'s, WindowResult<u32, (u64, u64)>, Ev> {
    windowed.aggregate(
        at,
        || (0u64, 0u64),
        |a, e: &Ev| {
            a.0 += 1;
            a.1 += e.value;
        },
        |a, b| {
            a.0 += b.0;
            a.1 += b.1;
        },
    )
}

/// Sliding windows with allowed lateness and late data over `late_input`; tumbling,
/// session and count windows, a process function, an interval join and a running sum over
/// `input`; all in one job, outputs collected on worker 0.
fn run_many(config: Config, run: Run, late_input: &[Ev], input: &[Ev]) -> Many {
    let outs = (Collector::new(), Collector::new(), Collector::new());
    let more = (Collector::new(), Collector::new(), Collector::new());
    let lateness = (Collector::new(), Collector::new());
    let (o, m, l) = (outs.clone(), more.clone(), lateness.clone());
    let (input, late_input) = (input.to_vec(), late_input.to_vec());
    execute(config, move |job| {
        let source = op("events")
            .parallelism(run.sources)
            .epochs(EpochPolicy::Records(run.epoch_records));
        let windowed = job
            .from_vec(source, late_input.clone())
            .assign_timestamps(op("ts").parallelism(run.sources), strategy())
            .key_by(|e: &Ev| e.key)
            .window(sliding())
            .allowed_lateness(Duration::from_millis(800));
        let (results, late) =
            count_sum(windowed, op("sliding").parallelism(run.window_parallelism)).with_late_data();
        results.collect(op("sliding-out").parallelism(1), &l.0);
        late.map("late-ids", |s: Stamped<Ev>| s.data.id)
            .collect(op("late-out").parallelism(1), &l.1);
        let at = |name: &str| op(name).parallelism(run.window_parallelism);
        let source = op("calm")
            .parallelism(run.sources)
            .epochs(EpochPolicy::Records(run.epoch_records));
        let events = job
            .from_vec(source, input.clone())
            .assign_timestamps(op("calm-ts").parallelism(run.sources), strategy());
        let keyed = || events.clone().key_by(|e: &Ev| e.key);
        count_sum(
            keyed().window(Windows::tumbling(Duration::from_millis(700))),
            at("tumbling"),
        )
        .results()
        .collect(op("tumbling-out").parallelism(1), &o.0);
        count_sum(
            keyed().window(Windows::session(Duration::from_millis(300))),
            at("sessions"),
        )
        .results()
        .collect(op("sessions-out").parallelism(1), &o.1);
        count_sum(keyed().window(Windows::count_sliding(6, 3)), at("counts"))
            .results()
            .collect(op("counts-out").parallelism(1), &o.2);
        keyed()
            .process(at("sessionise"), Sessionise)
            .records()
            .collect(op("sessionised-out").parallelism(1), &m.0);
        let odd = events.clone().filter("odd", |e: &Ev| e.id % 2 == 1);
        events
            .clone()
            .filter("even", |e: &Ev| e.id % 2 == 0)
            .key_by(|e: &Ev| e.key)
            .interval_join(
                at("pairs"),
                odd.key_by(|e: &Ev| e.key),
                -100,
                100,
                |_, a: &Ev, b: &Ev| (a.id, b.id),
            )
            .records()
            .collect(op("pairs-out").parallelism(1), &m.1);
        events
            .records()
            .key_by(|e: &Ev| e.key)
            .sum(at("sums"), |e: &Ev| e.value + 1)
            .collect(op("sums-out").parallelism(1), &m.2);
        Ok(())
    })
    .unwrap();
    Many {
        sliding: lateness.0.take(),
        late: lateness.1.take().into_iter().collect(),
        tumbling: outs.0.take(),
        sessions: outs.1.take(),
        counts: outs.2.take(),
        sessionised: more.0.take(),
        pairs: more.1.take(),
        sums: more.2.take(),
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a process did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn windows_match_the_reference_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = weir::LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let out = dir.path().join("done.txt");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..2)
        .map(|p| {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "--exact",
                "windows_across_processes_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(
                PROCESS_ENV,
                format!("-w 2 -n 2 -p {p} -h {}", hosts.display()),
            )
            .env(OUT_ENV, &out);
            cluster.pass_listener(p, &mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for child in &mut children {
        assert!(wait_until(child, deadline).success(), "a process failed");
    }
    let done = std::fs::read_to_string(Path::new(&out)).expect("process 0 checked the results");
    assert!(done.ends_with("windows"));
}

/// A source that reads nothing until `release` is set (or a minute passed), then reads
/// `then` and ends.
struct Quiet {
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
    then: Vec<Ev>,
}

impl weir::PullSource<Ev> for Quiet {
    fn pull(&mut self) -> weir::Pulled<Ev> {
        let released = self.release.load(std::sync::atomic::Ordering::SeqCst);
        if released || self.started.elapsed() > Duration::from_secs(60) {
            match self.then.pop() {
                Some(ev) => weir::Pulled::Record(ev),
                None => weir::Pulled::Done,
            }
        } else {
            weir::Pulled::Pending(Duration::from_millis(5))
        }
    }
}

/// Runs `input` beside a quiet source that, once a window has fired, reads `then`: the
/// window results and the late records.
fn run_with_quiet_source(input: Vec<Ev>, then: Vec<Ev>) -> (Results, BTreeSet<u32>, Duration) {
    run_with_quiet_source_in(
        input,
        then,
        EpochPolicy::Interval(Duration::from_millis(10)),
    )
}

/// [`run_with_quiet_source`] with the sources' epochs cut by `epochs`.
fn run_with_quiet_source_in(
    input: Vec<Ev>,
    then: Vec<Ev>,
    epochs: EpochPolicy,
) -> (Results, BTreeSet<u32>, Duration) {
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (out, late) = (Collector::new(), Collector::new());
    let (sink, late_sink) = (out.clone(), late.clone());
    let started = Instant::now();
    let config = config(2).with_epochs(epochs);
    execute(config, move |job| {
        let idle = || strategy().with_idleness(Duration::from_millis(50));
        let busy = job
            .from_vec(op("busy").parallelism(1).rate(2_000.0), input.clone())
            .assign_timestamps(op("busy-ts").parallelism(1), idle());
        let (gate, then) = (std::sync::Arc::clone(&release), then.clone());
        let quiet = job
            .pull_source(op("quiet").parallelism(1), move |_, _| Quiet {
                release: gate,
                started,
                then: then.clone(),
            })
            .assign_timestamps(op("quiet-ts").parallelism(1), idle());
        let release = std::sync::Arc::clone(&release);
        let (results, late) = busy
            .union("both", quiet)
            .key_by(|e: &Ev| e.key)
            .window(Windows::tumbling(Duration::from_millis(500)))
            .aggregate(
                "window",
                || (0u64, 0u64),
                |a, e: &Ev| {
                    a.0 += 1;
                    a.1 += e.value
                },
                |a, b| {
                    a.0 += b.0;
                    a.1 += b.1
                },
            )
            .with_late_data();
        results
            .inspect("release", move |_| {
                release.store(true, std::sync::atomic::Ordering::SeqCst)
            })
            .collect("out", &sink);
        late.map("late-ids", |s: Stamped<Ev>| s.data.id)
            .collect("late", &late_sink);
        Ok(())
    })
    .unwrap();
    (
        out.take(),
        late.take().into_iter().collect(),
        started.elapsed(),
    )
}

#[test]
fn an_idle_source_stops_holding_the_watermark_back() {
    // The quiet source ends only once a window has fired, which its watermark (none)
    // would prevent for a minute if idleness did not leave it out of the minimum.
    let input = events(8, 400, 3, 0);
    let (results, late, took) = run_with_quiet_source(input, Vec::new());
    assert!(
        took < Duration::from_secs(60),
        "windows fired while the quiet source was idle"
    );
    assert!(late.is_empty());
    assert_eq!(results.iter().map(|r| r.value.0).sum::<u64>(), 400);
}

#[test]
fn an_idle_source_with_record_count_epochs_stops_holding_the_watermark_back() {
    // Before, the quiet source's empty record-count epoch held every later epoch back, so
    // its idleness was never applied and no window fired until it ended (after a minute).
    // Now it follows the busy source's epochs.
    let input = events(8, 400, 3, 0);
    let (results, late, took) =
        run_with_quiet_source_in(input, Vec::new(), EpochPolicy::Records(50));
    assert!(
        took < Duration::from_secs(60),
        "windows fired while the quiet source was idle"
    );
    assert!(late.is_empty());
    assert_eq!(results.iter().map(|r| r.value.0).sum::<u64>(), 400);
}

#[test]
fn records_of_a_source_back_from_idleness_behind_the_watermark_are_late() {
    // Once windows have fired, the quiet source reads records from the start of time: its
    // own watermark says nothing about them, the window's does, and they are late instead
    // of reopening windows that fired.
    let input = events(8, 400, 3, 0);
    let old: Vec<Ev> = (0..5u32)
        .map(|i| Ev {
            id: 1_000 + i,
            key: i % 3,
            ts: i as i64,
            value: 1,
        })
        .collect();
    let (results, late, _) = run_with_quiet_source(input.clone(), old);
    assert_eq!(late, (1_000..1_005).collect::<BTreeSet<u32>>());
    let (expected, _) =
        reference_windows(&input, 1, Windows::tumbling(Duration::from_millis(500)), 0);
    assert_eq!(finals(&results), expected);
    assert_eq!(results.len(), expected.len(), "no window fired twice");
}

#[test]
fn processing_time_windows_and_timers_follow_the_wall_clock() {
    /// Emits (key, timer time, wall clock at firing) for a processing-time timer 20 ms
    /// after each key's first record.
    struct Later;
    impl KeyedProcessFunction<u32, Ev> for Later {
        type State = bool;
        type Out = (u32, i64, i64);
        fn process_element(
            &mut self,
            _r: Stamped<Ev>,
            ctx: &mut ProcessContext<'_, u32, bool, Self::Out>,
        ) {
            if !*ctx.state() {
                *ctx.state() = true;
                let at = ctx.current_processing_time() + 20;
                ctx.register_processing_time_timer(at);
            }
        }
        fn on_timer(&mut self, timer: Timer, ctx: &mut ProcessContext<'_, u32, bool, Self::Out>) {
            assert_eq!(timer.domain, weir::time::TimeDomain::ProcessingTime);
            let (key, now) = (*ctx.key(), ctx.current_processing_time());
            ctx.emit((key, timer.time, now));
        }
    }
    let input = events(12, 600, 4, 0);
    let (windows, timers) = (Collector::new(), Collector::new());
    let (w, t) = (windows.clone(), timers.clone());
    execute(config(2), move |job| {
        let events = job
            .from_vec(op("events").rate(3_000.0), input.clone())
            .ingestion_time("now");
        events
            .clone()
            .key_by(|e: &Ev| e.key)
            .window(Windows::tumbling(Duration::from_millis(50)).processing_time())
            .count("per-50ms")
            .results()
            .collect("windows", &w);
        events
            .key_by(|e: &Ev| e.key)
            .process("later", Later)
            .records()
            .collect("timers", &t);
        Ok(())
    })
    .unwrap();
    let windows = windows.take();
    // Every record is in exactly one processing-time window.
    assert_eq!(windows.iter().map(|r| r.value).sum::<u64>(), 600);
    assert!(windows.len() > 4, "the stream spans several 50 ms windows");
    let timers = timers.take();
    assert!(!timers.is_empty());
    assert!(timers.iter().all(|(_, at, now)| now >= at), "{timers:?}");
}

/// A window size, slide or gap of less than a millisecond fails the job's build with the
/// operator named (Flink refuses them). Before, 0 became 1 ms: `sliding(1 min, 0)` put every
/// record into 60,000 windows.
#[test]
fn windows_of_zero_size_slide_or_gap_fail_the_build() {
    let zero_windows = [
        (
            "zero-size",
            Windows::tumbling(Duration::ZERO),
            "size is 0 ms",
        ),
        (
            "zero-slide",
            Windows::sliding(Duration::from_secs(60), Duration::ZERO),
            "slide is 0 ms",
        ),
        ("zero-gap", Windows::session(Duration::ZERO), "gap is 0 ms"),
    ];
    for (name, windows, reason) in zero_windows {
        let result = execute(config(1), move |job| {
            let events = job
                .from_vec("events", events(1, 10, 2, 0))
                .assign_timestamps("ts", strategy());
            count_sum(events.key_by(|e: &Ev| e.key).window(windows), op(name))
                .results()
                .for_each("out", |_| {});
            Ok(())
        });
        let e = result.unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(reason), "{e}");
    }
}
