//! Epoch boundaries: record-count epochs close at their latency bound on a slow stream, so
//! per-epoch operators (batching, aggregates) emit without waiting for a full epoch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir_core::{PullSource, Pulled};

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

/// Instance 0 of a source reads `N` records in record-count epochs; instance 1 has nothing
/// to read until `all_received` says the sink holds all of them (or 30 s pass).
struct OneIdleInstance {
    instance: usize,
    next: u64,
    all_received: Box<dyn Fn() -> bool>,
    gave_up: Box<dyn Fn()>,
    started: Option<Instant>,
}

const N: u64 = 100_000;

impl PullSource<u64> for OneIdleInstance {
    fn pull(&mut self) -> Pulled<u64> {
        if self.instance == 0 {
            if self.next == N {
                return Pulled::Done;
            }
            self.next += 1;
            return Pulled::Record(self.next - 1);
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        if (self.all_received)() {
            Pulled::Done
        } else if started.elapsed() > Duration::from_secs(30) {
            (self.gave_up)();
            Pulled::Done
        } else {
            Pulled::Pending(Duration::from_millis(10))
        }
    }
}

#[test]
fn an_idle_source_instance_does_not_hold_the_others_back() {
    // With record-count epochs an idle instance keeps its epoch open; before, the sinks'
    // frontier stayed there, and flow control stopped the busy instance 8 epochs later.
    for workers in [2, 3] {
        let received = Arc::new(AtomicU64::new(0));
        let gave_up = Arc::new(AtomicBool::new(false));
        let (r, g) = (Arc::clone(&received), Arc::clone(&gave_up));
        let config = Config::threads(workers).with_epochs(EpochPolicy::Records(1000));
        execute(config, move |job| {
            let (r, g) = (Arc::clone(&r), Arc::clone(&g));
            let counted = Arc::clone(&r);
            job.pull_source(op("skewed").parallelism(2), move |instance, _| {
                OneIdleInstance {
                    instance,
                    next: 0,
                    all_received: Box::new(move || r.load(Ordering::SeqCst) >= N),
                    gave_up: Box::new(move || g.store(true, Ordering::SeqCst)),
                    started: None,
                }
            })
            .for_each("count", move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(received.load(Ordering::SeqCst), N);
        assert!(
            !gave_up.load(Ordering::SeqCst),
            "{workers} workers: the busy instance waited for the idle one"
        );
    }
}

const IDLE_ARGS: &str = "WEIR_TEST_IDLE_ARGS";
const IDLE_DIR: &str = "WEIR_TEST_IDLE_DIR";

/// One process of `an_idle_source_instance_in_another_process_does_not_hold_the_others_back`
/// (nothing when run directly): the busy instance is in process 0, the idle one in process
/// 1, which learns from a file in `IDLE_DIR` that process 0's sink holds every record.
#[test]
fn idle_instance_child() {
    let Ok(args) = std::env::var(IDLE_ARGS) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(IDLE_DIR).unwrap());
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = Config::from_args(argv)
        .unwrap()
        .with_verbose(false)
        .with_epochs(EpochPolicy::Records(1000));
    execute(config, move |job| {
        let (done, gave_up) = (dir.join("all_received"), dir.join("gave_up"));
        let marker = done.clone();
        let mut received = 0;
        job.pull_source(op("skewed").parallelism(2), move |instance, _| {
            OneIdleInstance {
                instance,
                next: 0,
                all_received: Box::new(move || done.exists()),
                gave_up: Box::new(move || std::fs::write(&gave_up, "").unwrap()),
                started: None,
            }
        })
        .for_each("count", move |_| {
            received += 1;
            if received == N {
                std::fs::write(&marker, "").unwrap();
            }
        });
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_idle_source_instance_in_another_process_does_not_hold_the_others_back() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = weir::LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|p| {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["--exact", "idle_instance_child", "--nocapture"])
                .args(["--test-threads", "1"])
                .env(
                    IDLE_ARGS,
                    format!("-w 1 -n 2 -p {p} -h {}", hosts.display()),
                )
                .env(IDLE_DIR, dir.path());
            cluster.pass_listener(p, &mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (p, child) in children.iter_mut().enumerate() {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("process {p} hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "process {p}: {status}");
    }
    assert!(dir.path().join("all_received").exists());
    assert!(
        !dir.path().join("gave_up").exists(),
        "the busy instance waited for the idle one in the other process"
    );
}
