//! `map_batch_with_broadcast`: state from a broadcast side input, applied per epoch; batches
//! wait for the first side update; held records become dead letters, with the state's reason,
//! if none ever comes.

use weir::prelude::*;
use weir::BatchOutcome;

fn run(side: Vec<Option<i64>>, workers: usize, p: usize) -> (Vec<i64>, Vec<DeadLetter>) {
    run_paced(side, workers, p, None)
}

/// [`run`], with the main input paced to `rate` records a second.
fn run_paced(
    side: Vec<Option<i64>>,
    workers: usize,
    p: usize,
    rate: Option<f64>,
) -> (Vec<i64>, Vec<DeadLetter>) {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    execute(Config::threads(workers), move |job| {
        let one_per_epoch = |name: &str| op(name).parallelism(1).epochs(EpochPolicy::Records(1));
        let main_op = match rate {
            Some(r) => one_per_epoch("main").rate(r),
            None => one_per_epoch("main"),
        };
        let main = job.generate(main_op, Some(6), |i| i as i64);
        let updates = job.from_vec(one_per_epoch("updates"), side.clone());
        let (scored, dead_letters) = main.map_batch_with_broadcast(
            op("add_latest").parallelism(p),
            updates,
            // The latest value, and how many side updates came.
            |_| (None::<i64>, 0),
            |(value, updates), update: Option<i64>| {
                *updates += 1;
                if update.is_some() {
                    *value = update;
                }
            },
            |(value, updates), batch: Vec<i64>, _metrics| match value {
                None => BatchOutcome::Hold(batch, format!("{updates} side updates, none usable")),
                Some(v) => BatchOutcome::Done(batch.into_iter().map(|x| Ok(x + *v)).collect()),
            },
        );
        scored.collect(op("out").parallelism(1), &o);
        dead_letters.collect(op("dead").parallelism(1), &d);
        Ok(())
    })
    .unwrap();
    (out.sorted(), dead.take())
}

#[test]
fn batches_wait_for_the_first_update_and_see_the_state_of_their_epoch() {
    for (workers, p) in [(1, 1), (2, 1), (2, 2)] {
        // Side updates at epoch 2 (100) and epoch 4 (200); main records 0..5 at epochs 0..5.
        let (out, dead) = run(
            vec![None, None, Some(100), None, Some(200), None],
            workers,
            p,
        );
        assert_eq!(
            out,
            vec![100, 101, 102, 103, 204, 205],
            "-w {workers} p={p}"
        );
        assert!(dead.is_empty());
    }
}

/// The side input ends before the main input reaches the epoch of its first usable update
/// (the main input is paced): the records held until then are scored when the update
/// applies. They became dead letters before, as if no update would ever come (seen in CI at
/// `-w 2 p=2`, where the side input sometimes ended first).
#[test]
fn records_held_when_the_side_input_ends_wait_for_the_updates_it_sent() {
    for (workers, p) in [(1, 1), (2, 2)] {
        let (out, dead) = run_paced(
            vec![None, None, Some(100), None, Some(200), None],
            workers,
            p,
            Some(50.0),
        );
        assert_eq!(
            out,
            vec![100, 101, 102, 103, 204, 205],
            "-w {workers} p={p}"
        );
        assert!(dead.is_empty(), "{dead:?}");
    }
}

#[test]
fn records_still_held_when_the_side_input_ends_become_dead_letters_saying_why() {
    let (out, dead) = run(vec![None, None], 2, 2);
    assert!(out.is_empty());
    assert_eq!(dead.len(), 6);
    // The reason is the state's, as of its last try (after both updates).
    assert!(
        dead.iter().all(|d| d.operator == "add_latest"
            && d.reason
                == "the side input ended before the state could process this record: \
                    2 side updates, none usable"),
        "{dead:?}"
    );
}

/// A main input that sends three records, then waits (a live stream) until `released`.
struct LiveUntil {
    sent: i64,
    released: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl weir::PullSource<i64> for LiveUntil {
    fn pull(&mut self) -> weir::Pulled<i64> {
        if self.sent < 3 {
            self.sent += 1;
            weir::Pulled::Record(self.sent)
        } else if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            weir::Pulled::Done
        } else {
            weir::Pulled::Pending(std::time::Duration::from_millis(5))
        }
    }
}

/// Once the side input has ended, held records become dead letters while the main input is
/// still live: no side update can release them any more. They waited for the main input to
/// end too, so a live stream (a followed Kafka topic, say) stalled for good. The main input
/// here ends only after the dead letters have arrived.
#[test]
fn held_records_become_dead_letters_when_the_side_input_ends_while_the_main_input_is_live() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let dead = Collector::new();
    let d = dead.clone();
    // One flag for every worker (the job's closure runs on each).
    let released = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        let result = execute(Config::threads(2), move |job| {
            let (flag, released) = (Arc::clone(&released), Arc::clone(&released));
            let main = job.pull_source(op("live").parallelism(1), move |_, _| LiveUntil {
                sent: 0,
                released: Arc::clone(&flag),
            });
            let updates = job.from_vec(op("updates").parallelism(1), Vec::<i64>::new());
            let (scored, dead_letters) = main.map_batch_with_broadcast(
                op("add_latest").parallelism(2),
                updates,
                |_| None::<i64>,
                |value, update: i64| *value = Some(update),
                |value, batch: Vec<i64>, _metrics| match value {
                    None => BatchOutcome::Hold(batch, "no side update yet".into()),
                    Some(v) => BatchOutcome::Done(batch.into_iter().map(|x| Ok(x + *v)).collect()),
                },
            );
            scored.for_each("out", |_| {});
            dead_letters
                .inspect("release", move |_| released.store(true, Ordering::SeqCst))
                .collect(op("dead").parallelism(1), &d);
            Ok(())
        });
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    let result = done_rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect(
        "the job did not end: held records never became dead letters while the main input was live",
    );
    result.unwrap();
    let dead = dead.take();
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(
        dead.iter().all(|d| d.reason.contains("no side update yet")),
        "{dead:?}"
    );
}
