//! A source instance that has ended keeps its last position in later checkpoints (a Kafka
//! instance that stopped must not have its partitions taken for new ones after a restore),
//! and a completed job run again with its checkpoint directory does nothing (the restored
//! final checkpoint's epoch is the end of time: no overflow).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir::prelude::*;
use weir::sources::{Decoded, SplitDealing};
use weir::{CheckpointConfig, PullSource, Pulled};

/// Instance 0 emits 3 records and ends; instance 1 emits slowly until stopped. Each one's
/// position is one split, `"i:n"` (instance, records emitted).
struct Counting {
    instance: usize,
    emitted: u64,
    limit: u64,
    /// Instance 1 waits between records.
    waited: bool,
}

impl PullSource<Decoded<u64>> for Counting {
    fn pull(&mut self) -> Pulled<Decoded<u64>> {
        if self.emitted >= self.limit {
            return Pulled::Done;
        }
        if self.instance == 1 && self.emitted > 0 && !self.waited {
            self.waited = true;
            return Pulled::Pending(Duration::from_millis(2));
        }
        self.waited = false;
        self.emitted += 1;
        Pulled::Record(Ok(self.emitted))
    }

    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        Some(vec![
            format!("{}:{}", self.instance, self.emitted).into_bytes()
        ])
    }
}

fn manifests(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("MANIFEST").exists())
        .count()
}

#[test]
fn an_ended_instance_keeps_its_position_in_later_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    let config = || {
        Config::threads(2)
            .with_checkpoints(CheckpointConfig::new(&ckpt).interval(Duration::from_millis(20)))
            .with_verbose(false)
    };
    // Run 1 fails once instance 0 has ended and three checkpoints completed.
    let watched = ckpt.clone();
    let error = execute(config(), move |job| {
        let make = |i, _, _| Counting {
            instance: i,
            emitted: 0,
            limit: if i == 0 { 3 } else { u64::MAX },
            waited: false,
        };
        let watched = watched.clone();
        let mut seen = 0u64;
        job.pull_source_decoding(
            op("counting").parallelism(2),
            "source:counting",
            SplitDealing::All,
            make,
        )
        .try_map_batch(op("fail").parallelism(1), move |batch: Vec<u64>| {
            seen += batch.len() as u64;
            if seen > 20 && manifests(&watched) >= 3 {
                return Err("stop".to_string());
            }
            Ok(batch)
        })
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    assert!(error.to_string().contains("stop"), "{error}");
    // Run 2 restores: every instance gets every split; instance 0's ended position is there.
    let restored: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = Arc::clone(&restored);
    execute(config(), move |job| {
        let r = Arc::clone(&r);
        let make = move |i, _, splits: Option<Vec<Vec<u8>>>| {
            if i == 0 {
                let splits = splits.unwrap_or_default();
                r.lock().unwrap().extend(
                    splits
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned()),
                );
            }
            Counting {
                instance: i,
                emitted: 0,
                limit: 1,
                waited: false,
            }
        };
        job.pull_source_decoding(
            op("counting").parallelism(2),
            "source:counting",
            SplitDealing::All,
            make,
        )
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    let restored = restored.lock().unwrap().clone();
    assert!(restored.contains(&"0:3".to_string()), "{restored:?}");
    assert!(restored.iter().any(|s| s.starts_with("1:")), "{restored:?}");

    // Run 2 completed: a third run finds its final checkpoint and does nothing.
    let report = execute(config(), move |job| {
        let make = |i, _, _| Counting {
            instance: i,
            emitted: 0,
            limit: 5,
            waited: false,
        };
        job.pull_source_decoding(
            op("counting").parallelism(2),
            "source:counting",
            SplitDealing::All,
            make,
        )
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    assert_eq!(report.operator("counting").map_or(0, |o| o.records_out), 0);
}
