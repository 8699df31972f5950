//! `map_batch_with_broadcast`: state from a broadcast side input, applied per epoch; batches
//! wait for the first side update; held records become dead letters, with the state's reason,
//! if none ever comes.

use weir::prelude::*;
use weir::BatchOutcome;

fn run(side: Vec<Option<i64>>, workers: usize, p: usize) -> (Vec<i64>, Vec<DeadLetter>) {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    execute(Config::threads(workers), move |job| {
        let one_per_epoch = |name: &str| op(name).parallelism(1).epochs(EpochPolicy::Records(1));
        let main = job.generate(one_per_epoch("main"), Some(6), |i| i as i64);
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
