//! Keyed aggregates with a combiner (`aggregate_combined`, `count`/`sum`/`min`/`max` built on it,
//! and `count_by_value`) against a sequential fold: many epochs, parallelism 1 to 3, and epochs
//! with more keys than a combiner holds before it sends partials early.

use std::collections::BTreeMap;

use weir::prelude::*;

/// Record `i`: key `i * 7919 % keys`, value `i % 5 + 1` (positive, so running totals grow).
fn record(i: u64, keys: u64) -> (u64, u64) {
    ((i * 7919) % keys, i % 5 + 1)
}

fn reference(n: u64, keys: u64) -> BTreeMap<u64, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for i in 0..n {
        let (k, v) = record(i, keys);
        let t: &mut (u64, u64) = totals.entry(k).or_default();
        t.0 += 1;
        t.1 += v;
    }
    totals
}

/// Runs `(count, sum)` per key with the combiner; returns every update emitted.
fn run_combined(workers: usize, p: usize, n: u64, keys: u64, epoch: u64) -> Vec<(u64, (u64, u64))> {
    let out = Collector::new();
    let sink = out.clone();
    // Epochs close by their record count only (not at the latency bound).
    let config =
        Config::threads(workers).with_epoch_max_delay(std::time::Duration::from_secs(3600));
    execute(config, move |job| {
        job.generate(
            op("src").parallelism(p).epochs(EpochPolicy::Records(epoch)),
            Some(n),
            move |i| record(i, keys),
        )
        .key_by(|r: &(u64, u64)| r.0)
        .aggregate_combined(
            op("totals").parallelism(p),
            |_| (0u64, 0u64),
            |t, r| {
                t.0 += 1;
                t.1 += r.1;
            },
            |t, part| {
                t.0 += part.0;
                t.1 += part.1;
            },
        )
        .collect(op("out").parallelism(1), &sink);
        Ok(())
    })
    .expect("job runs");
    out.take()
}

/// Every key's updates grow strictly (so no key is emitted twice for one epoch) and the last
/// one is the sequential total.
fn check_updates(updates: &[(u64, (u64, u64))], want: &BTreeMap<u64, (u64, u64)>, what: &str) {
    let mut last: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut by_key: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for (k, t) in updates {
        by_key.entry(*k).or_default().push(*t);
    }
    for (k, mut ts) in by_key {
        ts.sort();
        for pair in ts.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{what}: key {k} emitted {:?} twice",
                pair[0]
            );
        }
        last.insert(k, *ts.last().unwrap());
    }
    assert_eq!(&last, want, "{what}: final totals");
}

#[test]
fn combined_totals_match_a_sequential_fold_at_every_parallelism() {
    let (n, keys) = (20_000, 500);
    let want = reference(n, keys);
    for (workers, p) in [(1, 1), (2, 1), (2, 2), (3, 3)] {
        for epoch in [37, 1000] {
            let updates = run_combined(workers, p, n, keys, epoch);
            check_updates(
                &updates,
                &want,
                &format!("-w {workers} p {p} epochs {epoch}"),
            );
        }
    }
}

#[test]
fn an_epoch_with_more_keys_than_a_combiner_holds_is_sent_early_and_still_counted_once() {
    // One epoch of 300,000 records over 150,000 keys: each combiner sends partials early
    // (past 65,536 keys), and the owner merges them before it emits each key once.
    let (n, keys) = (300_000, 150_000);
    let want = reference(n, keys);
    for (workers, p) in [(1, 1), (2, 2)] {
        let updates = run_combined(workers, p, n, keys, n);
        assert_eq!(
            updates.len(),
            keys as usize,
            "-w {workers}: one update per key"
        );
        check_updates(&updates, &want, &format!("-w {workers} one epoch"));
    }
}

#[test]
fn with_one_source_instance_the_combiner_emits_what_aggregate_emits() {
    let (n, keys) = (10_000, 300);
    let run = |combined: bool| {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(2), move |job| {
            let keyed = job
                .generate(
                    op("src").parallelism(1).epochs(EpochPolicy::Records(250)),
                    Some(n),
                    move |i| record(i, keys),
                )
                .key_by(|r: &(u64, u64)| r.0);
            let totals = if combined {
                keyed.sum(op("sum").parallelism(2), |r| r.1)
            } else {
                keyed.aggregate(op("sum").parallelism(2), |_| 0u64, |t, r| *t += r.1)
            };
            totals.collect(op("out").parallelism(1), &sink);
            Ok(())
        })
        .expect("job runs");
        out.sorted()
    };
    let combined = run(true);
    assert!(combined.len() > keys as usize, "several updates per key");
    assert_eq!(combined, run(false));
}

/// Runs `min` and `max` per key over records `record(0..n)` on `workers` workers (one source
/// instance each) with epochs of `epoch` records; returns each key's last min and last max
/// (a key's updates come from its one owner, in epoch order).
fn last_min_and_max<V>(
    workers: usize,
    epoch: u64,
    n: u64,
    record: fn(u64) -> (u64, V),
) -> (BTreeMap<u64, V>, BTreeMap<u64, V>)
where
    V: weir::Data + PartialOrd + Send,
{
    let out = Collector::new();
    let sink = out.clone();
    execute(Config::threads(workers), move |job| {
        let src = job.generate(
            op("src")
                .parallelism(workers)
                .epochs(EpochPolicy::Records(epoch)),
            Some(n),
            record,
        );
        let lo = src
            .clone()
            .key_by(|r: &(u64, V)| r.0)
            .min("min", |r| r.1.clone());
        let hi = src.key_by(|r: &(u64, V)| r.0).max("max", |r| r.1.clone());
        lo.map("lo", |(k, v)| (k, v, true))
            .union("both", hi.map("hi", |(k, v)| (k, v, false)))
            .collect(op("out").parallelism(1), &sink);
        Ok(())
    })
    .expect("job runs");
    let (mut lows, mut highs) = (BTreeMap::new(), BTreeMap::new());
    for (k, v, low) in out.take() {
        if low {
            lows.insert(k, v)
        } else {
            highs.insert(k, v)
        };
    }
    (lows, highs)
}

fn int_value(i: u64) -> (u64, i64) {
    (i % 11, ((i * 2654435761) % 10_007) as i64 - 5_000)
}

#[test]
fn min_and_max_merge_partials_from_several_instances() {
    let n = 5_000u64;
    let (lows, highs) = last_min_and_max(3, 64, n, int_value);
    for k in 0..11 {
        let values = (0..n).map(int_value).filter(|r| r.0 == k).map(|r| r.1);
        assert_eq!(lows[&k], values.clone().min().unwrap(), "min of key {k}");
        assert_eq!(highs[&k], values.max().unwrap(), "max of key {k}");
    }
}

/// Value `i` of the float stream: key `i % 5`; key 4 has only NaNs, the others one NaN in 97.
fn float_value(i: u64) -> (u64, f64) {
    let k = i % 5;
    let v = if k == 4 || i % 97 == 3 {
        f64::NAN
    } else {
        ((i * 2654435761) % 10_007) as f64 - 5_000.0
    };
    (k, v)
}

/// Float `min` and `max` with NaNs give the same result at any parallelism and epoch size:
/// NaN counts as the largest value (as Flink and Spark order doubles), so `min` skips NaNs
/// unless a key has nothing else and `max` is NaN once a key had one. Before, a NaN that came
/// first stuck and one that came later was skipped, so the result depended on how the
/// partials were grouped.
#[test]
fn float_min_and_max_with_nans_do_not_depend_on_the_grouping() {
    let n = 3_000u64;
    let same = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a == b;
    for (workers, epoch) in [(1, 7), (1, 1_000), (3, 13), (3, 256)] {
        let (lows, highs) = last_min_and_max(workers, epoch, n, float_value);
        for k in 0..5 {
            let values: Vec<f64> = (0..n)
                .map(float_value)
                .filter(|r| r.0 == k)
                .map(|r| r.1)
                .collect();
            let numbers = values.iter().copied().filter(|v| !v.is_nan());
            let want_min = numbers.clone().reduce(f64::min).unwrap_or(f64::NAN);
            let want_max = if values.iter().any(|v| v.is_nan()) {
                f64::NAN
            } else {
                numbers.reduce(f64::max).unwrap()
            };
            let at = format!("key {k} at -w {workers}, epochs of {epoch}");
            assert!(
                same(lows[&k], want_min),
                "min of {at}: {} != {want_min}",
                lows[&k]
            );
            assert!(
                same(highs[&k], want_max),
                "max of {at}: {} != {want_max}",
                highs[&k]
            );
        }
    }
}

#[test]
fn records_of_mostly_distinct_keys_pass_through_the_combiner_and_still_add_up() {
    // 2,048-record epochs over 50,000 keys: nearly every record is its own key in its epoch,
    // so the combiner passes records through (re-measuring every 16 epochs).
    let (n, keys) = (120_000, 50_000);
    let want = reference(n, keys);
    for (workers, p) in [(1, 1), (2, 2)] {
        let updates = run_combined(workers, p, n, keys, 2048);
        check_updates(&updates, &want, &format!("-w {workers} pass-through"));
    }
}

/// Words of `record(i, keys)`'s key, counted with `count_by_value` or with
/// `key_by(|w| w.clone()).count()`; every update emitted, sorted.
fn run_word_counts(
    workers: usize,
    p: usize,
    n: u64,
    keys: u64,
    epoch: u64,
    by_value: bool,
) -> Vec<(String, u64)> {
    let out = Collector::new();
    let sink = out.clone();
    let config =
        Config::threads(workers).with_epoch_max_delay(std::time::Duration::from_secs(3600));
    execute(config, move |job| {
        let words = job.generate(
            op("src").parallelism(p).epochs(EpochPolicy::Records(epoch)),
            Some(n),
            move |i| format!("w{}", record(i, keys).0),
        );
        let counts = if by_value {
            words.count_by_value(op("counts").parallelism(p))
        } else {
            words
                .key_by(|w: &String| w.clone())
                .count(op("counts").parallelism(p))
        };
        counts.collect(op("out").parallelism(1), &sink);
        Ok(())
    })
    .expect("job runs");
    out.sorted()
}

#[test]
fn count_by_value_counts_like_a_sequential_fold_and_like_key_by_count() {
    let n = 12_000;
    // 400 words are combined; 5,000 are mostly distinct within an epoch of 2,000 records,
    // so the combiner passes them through.
    for (keys, epoch, workers, p) in [
        (400, 29, 1, 1),
        (400, 29, 2, 2),
        (400, 5_000, 2, 1),
        (400, 5_000, 3, 3),
        (5_000, 2_000, 1, 1),
        (5_000, 2_000, 2, 2),
    ] {
        let what = format!("{keys} words, -w {workers} p {p} epochs {epoch}");
        let want: BTreeMap<String, u64> = reference(n, keys)
            .into_iter()
            .map(|(k, (count, _))| (format!("w{k}"), count))
            .collect();
        let updates = run_word_counts(workers, p, n, keys, epoch, true);
        // The same updates, epoch by epoch, as the count keyed by a copy of each word.
        assert_eq!(
            updates,
            run_word_counts(workers, p, n, keys, epoch, false),
            "{what}: count_by_value against key_by(clone).count()"
        );
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for (w, c) in &updates {
            let seen = last.entry(w.clone()).or_default();
            assert!(c > seen, "{what}: {w} emitted {c} after {seen}");
            *seen = *c;
        }
        assert_eq!(last, want, "{what}: final counts");
    }
}
