//! Per-split watermarks (`WatermarkStrategy::per_split`, Flink's per-partition watermarks):
//! a source instance reading two partitions, one far ahead of the other, keeps the lagging
//! partition's records on time; with one generator per instance they are late, and most of
//! them are when the splits are not announced (a split counts from its first record).

use std::time::Duration;

use weir::prelude::*;
use weir::time::{WatermarkStrategy, Windows};

/// (partition, timestamp): partition 0 runs 10 s ahead of partition 1, interleaved.
fn records() -> Vec<(u32, i64)> {
    (0..100)
        .flat_map(|i| [(0, 10_000 + i * 100), (1, i * 100)])
        .collect()
}

/// Window counts and late records with or without per-split generators, at a parallelism.
#[derive(Clone, Copy)]
enum Splits {
    None,
    Discovered,
    Expected,
}

fn run(per_split: bool, parallelism: usize) -> (Vec<(i64, u64)>, usize) {
    run_with(
        if per_split {
            Splits::Expected
        } else {
            Splits::None
        },
        parallelism,
    )
}

fn run_with(splits: Splits, parallelism: usize) -> (Vec<(i64, u64)>, usize) {
    let (counts, late) = (Collector::new(), Collector::new());
    let (c, l) = (counts.clone(), late.clone());
    execute(Config::threads(2), move |job| {
        let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500))
            .with_timestamp_assigner(|r: &(u32, i64)| r.1);
        let split = |r: &(u32, i64)| u64::from(r.0);
        let strategy = match splits {
            Splits::None => strategy,
            Splits::Discovered => strategy.per_split(split),
            Splits::Expected => strategy.per_split_expecting(split, |_, _| vec![0, 1]),
        };
        // One source instance reads both partitions in the order they interleave.
        let (counts, late) = job
            .from_vec(op("partitions").parallelism(1), records())
            .assign_timestamps(op("ts").parallelism(1), strategy)
            .key_by(|_: &(u32, i64)| 0u8)
            .window(Windows::tumbling(Duration::from_secs(1)))
            .count(op("window").parallelism(parallelism))
            .with_late_data();
        counts
            .map("start", |r| (r.window.start, r.value))
            .collect("counts", &c);
        late.collect("late", &l);
        Ok(())
    })
    .unwrap();
    (counts.sorted(), late.len())
}

#[test]
fn a_partition_read_after_another_is_on_time_with_expected_splits() {
    let mut records = records();
    records.sort_by_key(|r| r.0);
    let (counts, late) = (Collector::new(), Collector::new());
    let (c, l) = (counts.clone(), late.clone());
    execute(Config::threads(2), move |job| {
        let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(500))
            .with_timestamp_assigner(|r: &(u32, i64)| r.1)
            .per_split_expecting(|r: &(u32, i64)| u64::from(r.0), |_, _| vec![0, 1]);
        let (counts, late) = job
            .from_vec(op("partitions").parallelism(1), records.clone())
            .assign_timestamps(op("ts").parallelism(1), strategy)
            .key_by(|r: &(u32, i64)| r.0)
            .window(Windows::tumbling(Duration::from_secs(1)))
            .count("window")
            .with_late_data();
        counts.collect("counts", &c);
        late.map("late-ts", |s| s.ts).collect("late", &l);
        Ok(())
    })
    .unwrap();
    assert_eq!(late.sorted(), Vec::<i64>::new());
    assert_eq!(counts.len(), 20);
}

#[test]
fn a_lagging_partition_holds_the_watermark_back_instead_of_turning_late() {
    for parallelism in [1, 2] {
        let (counts, late) = run(true, parallelism);
        assert_eq!(late, 0, "parallelism {parallelism}");
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 200);
        // Ten windows per partition, ten records each.
        assert_eq!(counts.len(), 20);
        assert!(counts.iter().all(|(_, n)| *n == 10), "{counts:?}");
    }
    // One generator for the instance: partition 1 is ten seconds behind, so late.
    let (_, late) = run_with(Splits::None, 1);
    assert_eq!(late, 100, "without per-split watermarks");
    // Splits not announced: partition 1 first appears when the watermark (9.5 s, which
    // never goes back) has passed most of its records; from then on it holds the watermark
    // there, so only its records of the window still open (9-10 s) are on time.
    let (_, discovered) = run_with(Splits::Discovered, 1);
    assert_eq!(discovered, 90);
}
