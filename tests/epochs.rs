//! Epoch boundaries: record-count epochs close at their latency bound on a slow stream, so
//! per-epoch operators (batching, aggregates) emit without waiting for a full epoch.

use std::time::Duration;

use weir::prelude::*;

/// Sizes of the batches `map_batch` sees for 12 records from a source paced at `rate`.
fn batch_sizes(rate: Option<f64>, max_delay: Duration) -> Vec<usize> {
    let sizes = Collector::new();
    let sink = sizes.clone();
    let config = Config::threads(1)
        .with_epochs(EpochPolicy::Records(4096))
        .with_epoch_max_delay(max_delay);
    execute(config, move |job| {
        let source = match rate {
            Some(rate) => op("source").parallelism(1).rate(rate),
            None => op("source").parallelism(1),
        };
        job.generate(source, Some(12), |k| k)
            .map_batch("batch", |batch: Vec<u64>| vec![batch.len()])
            .collect("sizes", &sink);
        Ok(())
    })
    .unwrap();
    sizes.take()
}

#[test]
fn a_slow_stream_is_flushed_at_the_epoch_latency_bound() {
    // 12 records at 40/s take ~300 ms; with a 30 ms bound they cannot all share one epoch.
    let sizes = batch_sizes(Some(40.0), Duration::from_millis(30));
    assert_eq!(sizes.iter().sum::<usize>(), 12, "{sizes:?}");
    assert!(
        sizes.len() >= 2,
        "one 4096-record epoch held everything: {sizes:?}"
    );
}

#[test]
fn a_fast_stream_fills_its_epochs() {
    // Without pacing the 12 records are read in one activation: one epoch, one batch.
    let sizes = batch_sizes(None, Duration::from_secs(60));
    assert_eq!(sizes, vec![12]);
}

#[test]
fn an_infinite_rate_is_no_limit() {
    let out = Collector::new();
    let sink = out.clone();
    execute(Config::threads(1), move |job| {
        job.generate(
            op("fast").parallelism(1).rate(f64::INFINITY),
            Some(100),
            |k| k,
        )
        .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    assert_eq!(out.sorted(), (0..100).collect::<Vec<u64>>());
}
