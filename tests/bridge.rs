//! `bridge` / `bridge_source`: tasks on threads of their own, started by a side record, fed the
//! instance's input, emitting into the dataflow; task failures fail the job.

use weir::prelude::*;
use weir::BridgeTask;

#[test]
fn a_bridge_source_emits_what_its_tasks_send() {
    for (workers, p) in [(1, 1), (2, 2), (3, 2)] {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(workers), move |job| {
            let go = job.from_vec(op("go").parallelism(1), vec![100u64]);
            job.bridge_source(
                op("tasks").parallelism(p),
                go,
                |base, task: BridgeTask<(), u64>| {
                    std::thread::spawn(move || {
                        for k in 0..5 {
                            task.output.send(base * task.instance as u64 + k);
                        }
                        task.output.finish();
                    });
                },
            )
            .collect("out", &sink);
            Ok(())
        })
        .unwrap();
        let want: Vec<u64> = (0..p as u64)
            .flat_map(|i| (0..5).map(move |k| 100 * i + k))
            .collect();
        let mut want = want;
        want.sort();
        assert_eq!(out.sorted(), want, "-w {workers} p={p}");
    }
}

#[test]
fn a_bridge_feeds_its_input_to_the_task_and_ends_with_it() {
    for (workers, p) in [(1, 1), (2, 2)] {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(workers), move |job| {
            let go = job.from_vec(op("go").parallelism(1), vec![()]);
            let numbers = job.generate(op("numbers").parallelism(workers), Some(1000), |k| k);
            numbers
                .bridge(
                    op("sum").parallelism(p),
                    go,
                    |_, task: BridgeTask<u64, (usize, u64)>| {
                        std::thread::spawn(move || {
                            // Runs until the input ends (the channel disconnects).
                            let sum: u64 = task.input.iter().sum();
                            task.output.send((task.instance, sum));
                            task.output.finish();
                        });
                    },
                )
                .collect("out", &sink);
            Ok(())
        })
        .unwrap();
        let sums = out.sorted();
        assert_eq!(sums.len(), p, "one result per instance");
        assert_eq!(sums.iter().map(|s| s.1).sum::<u64>(), 999 * 1000 / 2);
    }
}

fn failing_job(panic: bool) -> WeirError {
    execute(Config::threads(2), move |job| {
        let go = job.from_vec(op("go").parallelism(1), vec![()]);
        job.bridge_source(
            op("doomed").parallelism(2),
            go,
            move |_, task: BridgeTask<(), u8>| {
                std::thread::spawn(move || {
                    if task.instance == 1 {
                        if panic {
                            let _output = task.output;
                            panic!("boom");
                        }
                        task.output.fail("the node exploded");
                    } else {
                        task.output.finish();
                    }
                });
            },
        )
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err()
}

#[test]
fn a_failing_task_fails_the_job_with_its_message() {
    let error = failing_job(false).to_string();
    assert!(
        error.contains("doomed") && error.contains("the node exploded"),
        "{error}"
    );
    let error = failing_job(true).to_string();
    assert!(
        error.contains("doomed") && error.contains("the task panicked"),
        "{error}"
    );
}

/// A task slower than its input gets back-pressure: the records that passed the operator
/// before the bridge but that the task has not taken stay within its channel and the
/// sources' window of epochs in flight (the channel used to be unbounded: the source ran
/// through its whole input at once).
#[test]
fn a_slow_task_holds_its_input_back_through_flow_control() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    const N: u64 = 6_000;
    const EPOCH: u64 = 100;
    let passed = Arc::new(AtomicU64::new(0));
    let most_ahead = Arc::new(AtomicU64::new(0));
    let (counted, ahead) = (Arc::clone(&passed), Arc::clone(&most_ahead));
    let out = Collector::new();
    let sink = out.clone();
    let config = Config::threads(1)
        .with_epochs(EpochPolicy::Records(EPOCH))
        .with_max_epochs_in_flight(2);
    execute(config, move |job| {
        let go = job.from_vec(op("go").parallelism(1), vec![()]);
        let (count_here, in_task) = (Arc::clone(&counted), Arc::clone(&counted));
        let ahead = Arc::clone(&ahead);
        job.generate("numbers", Some(N), |k| k)
            .map("count", move |k| {
                count_here.fetch_add(1, Ordering::SeqCst);
                k
            })
            .bridge("slow", go, move |_, task: BridgeTask<u64, u64>| {
                let (passed, ahead) = (Arc::clone(&in_task), Arc::clone(&ahead));
                std::thread::spawn(move || {
                    for (taken, k) in task.input.iter().enumerate() {
                        let gap = passed.load(Ordering::SeqCst) - taken as u64;
                        ahead.fetch_max(gap, Ordering::SeqCst);
                        if k % 4 == 0 {
                            std::thread::sleep(std::time::Duration::from_micros(200));
                        }
                        task.output.send(k);
                    }
                    task.output.finish();
                });
            })
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    assert_eq!(out.sorted(), (0..N).collect::<Vec<_>>());
    let ahead = most_ahead.load(Ordering::SeqCst);
    let bound = weir::BRIDGE_INPUT_CAPACITY as u64 + 6 * EPOCH;
    assert!(
        ahead <= bound,
        "{ahead} records passed before the task took them (at most {bound} expected)"
    );
}
