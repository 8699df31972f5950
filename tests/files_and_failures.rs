//! File sources (exactly-once splits, malformed lines), file sinks, dead letters,
//! fail-fast, flow control, worker panics, build errors and the job graph export.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Event {
    id: u64,
    user: String,
    amount: i64,
}

fn event(id: u64) -> Event {
    Event {
        id,
        user: format!("u{}", id % 13),
        amount: (id as i64 * 37) % 101 - 50,
    }
}

fn write_jsonl(path: &Path, ids: impl Iterator<Item = u64>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for id in ids {
        serde_json::to_writer(&mut f, &event(id)).unwrap();
        f.write_all(b"\n").unwrap();
    }
}

fn write_csv(path: &Path, ids: impl Iterator<Item = u64>) {
    let mut w = csv::Writer::from_path(path).unwrap();
    for id in ids {
        w.serialize(event(id)).unwrap();
    }
}

fn read_ids(config: Config, path: &Path, instances: usize, csv: bool) -> (Vec<u64>, JobReport) {
    let out = Collector::new();
    let sink = out.clone();
    let path = path.to_path_buf();
    let report = execute(config, move |job| {
        let o = op("read").parallelism(instances);
        let s: DataStream<Event> = if csv {
            job.read_csv(o, &path)
        } else {
            job.read_jsonl(o, &path)
        };
        s.map("id", |e| e.id).collect("out", &sink);
        Ok(())
    })
    .unwrap();
    (out.sorted(), report)
}

#[test]
fn one_file_is_read_exactly_once_by_1_to_4_instances() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("events.jsonl");
    let csv = dir.path().join("events.csv");
    write_jsonl(&jsonl, 0..5000);
    write_csv(&csv, 0..5000);
    let want: Vec<u64> = (0..5000).collect();
    for instances in 1..=4 {
        for (path, is_csv) in [(&jsonl, false), (&csv, true)] {
            let (got, report) = read_ids(Config::threads(4), path, instances, is_csv);
            assert_eq!(got, want, "{} with {instances} instances", path.display());
            assert_eq!(report.operator("read").unwrap().parallelism, instances);
            assert_eq!(report.dead_letters, 0);
        }
    }
}

#[test]
fn a_directory_is_read_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    // Uneven files, including an empty one and a hidden one that must be ignored.
    write_jsonl(&dir.path().join("a.jsonl"), 0..1000);
    write_jsonl(&dir.path().join("b.jsonl"), 1000..1003);
    write_jsonl(&dir.path().join("c.jsonl"), 1003..1003);
    write_jsonl(&dir.path().join("d.jsonl"), 1003..3000);
    write_jsonl(&dir.path().join(".hidden.jsonl"), 9000..9010);
    for instances in 1..=4 {
        let (got, _) = read_ids(Config::threads(4), dir.path(), instances, false);
        assert_eq!(got, (0..3000).collect::<Vec<_>>(), "{instances} instances");
    }
}

#[test]
fn malformed_lines_become_dead_letters_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for id in 0..100u64 {
        match id {
            10 => text.push_str("{\"id\": 10, \"user\": \"x\"\n"), // truncated JSON
            20 => text.push_str("{\"id\": \"twenty\", \"user\": \"x\", \"amount\": 1}\n"), // wrong type
            30 => text.push_str("not json at all\n"),
            _ => text.push_str(&format!("{}\n", serde_json::to_string(&event(id)).unwrap())),
        }
    }
    std::fs::write(&input, text).unwrap();
    let output = dir.path().join("out");
    let out2 = output.clone();
    let input2 = input.clone();
    let report = execute(Config::threads(2), move |job| {
        job.read_jsonl::<Event>(op("read").parallelism(2), &input2)
            .write_jsonl("write", &out2);
        Ok(())
    })
    .unwrap();
    assert_eq!(report.dead_letters, 3);
    assert_eq!(report.operator("read").unwrap().dead_letters, 3);
    // The good records are all written, in two part files renamed on completion.
    let mut ids = Vec::new();
    for part in ["part-00000.jsonl", "part-00001.jsonl"] {
        let text = std::fs::read_to_string(output.join(part)).unwrap();
        ids.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Event>(l).unwrap().id),
        );
    }
    ids.sort();
    assert_eq!(
        ids,
        (0..100)
            .filter(|i| ![10, 20, 30].contains(i))
            .collect::<Vec<_>>()
    );
    assert!(!output.join("part-00000.jsonl.inprogress").exists());
    // Dead letters land next to the output by default.
    let errors = std::fs::read_to_string(dir.path().join("out.errors.jsonl")).unwrap();
    let mut dead: Vec<DeadLetter> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    dead.sort_by_key(|d| d.location.clone());
    assert_eq!(dead.len(), 3);
    let file = input.display().to_string();
    assert_eq!(dead[0].location, format!("{file}:11"));
    assert!(dead[0].reason.contains("EOF"), "{}", dead[0].reason);
    assert_eq!(dead[1].location, format!("{file}:21"));
    assert!(
        dead[1].reason.contains("invalid type"),
        "{}",
        dead[1].reason
    );
    assert_eq!(dead[2].location, format!("{file}:31"));
    assert_eq!(dead[2].raw, "not json at all");
    assert_eq!(dead[0].operator, "read");
}

#[test]
fn malformed_csv_rows_are_dead_lettered_and_claimable() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(
        &input,
        "id,user,amount\n1,a,5\n2,b,notanumber\n3,c\n4,d,-7\n",
    )
    .unwrap();
    let good = Collector::new();
    let bad = Collector::new();
    let (g, b) = (good.clone(), bad.clone());
    let report = execute(Config::threads(2), move |job| {
        job.read_csv::<Event>(op("read").parallelism(2), &input)
            .map("id", |e| e.id)
            .collect("good", &g);
        job.dead_letters("dead")
            .collect(op("bad").parallelism(1), &b);
        Ok(())
    })
    .unwrap();
    assert_eq!(good.sorted(), vec![1, 4]);
    let mut bad = bad.take();
    bad.sort();
    assert_eq!(bad.len(), 2);
    assert!(bad[0].location.ends_with("in.csv:3"), "{:?}", bad[0]);
    assert!(
        bad[0].reason.contains("amount") || bad[0].reason.contains("invalid digit"),
        "{:?}",
        bad[0]
    );
    assert!(bad[1].location.ends_with("in.csv:4"), "{:?}", bad[1]);
    assert!(bad[1].reason.contains("expected 3 fields"), "{:?}", bad[1]);
    assert_eq!(report.dead_letters, 2);
}

#[test]
fn fail_fast_turns_a_malformed_record_into_a_job_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":1,\"user\":\"a\",\"amount\":1}\n{broken\n").unwrap();
    let err = execute(Config::threads(2).with_fail_fast(true), move |job| {
        job.read_jsonl::<Event>("read", &input)
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    match err {
        WeirError::BadRecord {
            operator, location, ..
        } => {
            assert_eq!(operator, "read");
            assert!(location.ends_with("in.jsonl:2"), "{location}");
        }
        other => panic!("expected BadRecord, got {other}"),
    }
}

#[test]
fn a_missing_input_is_a_clear_error() {
    let err = execute(Config::threads(1), |job| {
        job.read_jsonl::<Event>("read", "/nonexistent/weir/input.jsonl")
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("read") && text.contains("/nonexistent/weir/input.jsonl"),
        "{text}"
    );
}

#[test]
fn csv_sink_writes_a_header_per_part_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("csv_out");
    let o = out.clone();
    execute(Config::threads(2), move |job| {
        job.generate("gen", Some(500), event)
            .write_csv(op("csv").parallelism(2), &o);
        Ok(())
    })
    .unwrap();
    let (ids, _) = read_ids(Config::threads(2), &out, 2, true);
    assert_eq!(ids, (0..500).collect::<Vec<_>>());
    for part in ["part-00000.csv", "part-00001.csv"] {
        assert!(std::fs::read_to_string(out.join(part))
            .unwrap()
            .starts_with("id,user,amount\n"));
    }
}

const FC_RECORDS: u64 = 2_000_000;
const FC_EPOCH: u64 = 10_000;

/// Runs a fast 2-instance source into a slow sink on worker 0 with the given flow-control
/// window; returns the largest number of records produced but not yet consumed.
fn max_in_flight(window: u64) -> i64 {
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicI64::new(0));
    let (p, c, m) = (produced.clone(), consumed.clone(), max_in_flight.clone());
    let config = Config::threads(2)
        .with_epochs(EpochPolicy::Records(FC_EPOCH))
        .with_max_epochs_in_flight(window);
    execute(config, move |job| {
        let (p, c, m) = (p.clone(), c.clone(), m.clone());
        let c2 = c.clone();
        job.generate(op("fast").parallelism(2), Some(FC_RECORDS), move |i| {
            let n = p.fetch_add(1, Ordering::Relaxed) + 1;
            m.fetch_max(
                n as i64 - c2.load(Ordering::Relaxed) as i64,
                Ordering::Relaxed,
            );
            i
        })
        .map_batch(op("slow").parallelism(1), move |batch: Vec<u64>| {
            // About 1 ms per 1000 records: far slower than the source.
            std::thread::sleep(std::time::Duration::from_micros(batch.len() as u64));
            c.fetch_add(batch.len() as u64, Ordering::Relaxed);
            None::<u64>
        })
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    assert_eq!(consumed.load(Ordering::Relaxed), FC_RECORDS);
    max_in_flight.load(Ordering::Relaxed)
}

#[test]
fn flow_control_bounds_in_flight_records_with_a_slow_sink() {
    const WINDOW: u64 = 3;
    // Each of the 2 source instances may be WINDOW epochs ahead plus the epoch it is filling.
    let bound = (2 * (WINDOW + 1) * FC_EPOCH) as i64;
    let bounded = max_in_flight(WINDOW);
    assert!(
        bounded <= bound,
        "{bounded} records in flight, bound {bound}"
    );
    // The same job without an effective window runs far ahead: the bound is flow control's doing.
    let unbounded = max_in_flight(1_000_000);
    eprintln!("max in flight: {bounded} with window {WINDOW} (bound {bound}), {unbounded} without");
    assert!(
        unbounded > 2 * bound,
        "without flow control only {unbounded} records were in flight"
    );
}

#[test]
fn a_worker_panic_is_an_error_naming_the_operator_not_a_hang() {
    let err = execute(Config::threads(2), |job| {
        job.generate("numbers", Some(100_000), |i| i)
            .map("explodes", |x| {
                if x == 777 {
                    panic!("boom at {x}");
                }
                x
            })
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    match err {
        WeirError::WorkerPanic {
            operator, message, ..
        } => {
            assert_eq!(operator.as_deref(), Some("explodes"));
            assert!(message.contains("boom at 777"));
        }
        other => panic!("expected WorkerPanic, got {other}"),
    }
}

#[test]
fn too_much_parallelism_is_a_build_error() {
    let err = execute(Config::threads(2), |job| {
        job.from_vec("src", vec![1u32])
            .map(op("wide").parallelism(3), |x| x)
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(err, WeirError::Parallelism { ref operator, requested: 3, available: 2 } if operator == "wide"),
        "{err}"
    );
    let err = execute(Config::threads(1), |job| {
        job.from_vec("same", vec![1u32])
            .map("same", |x| x)
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("same"), "{err}");
}

#[test]
fn the_job_graph_exports_as_json_and_dot_before_running() {
    let mut config = Config::threads(4);
    config.verbose = false;
    let plan = explain(config, |job| {
        job.generate(op("src").parallelism(1), None, |i| i) // unbounded: must not run
            .map(op("double").parallelism(4), |x| x * 2)
            .key_by(|x| x % 10)
            .count(op("count").parallelism(2))
            .print(op("print").parallelism(2));
        Ok(())
    })
    .unwrap();
    assert_eq!(plan.workers, 4);
    let names: Vec<_> = plan
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.parallelism))
        .collect();
    assert_eq!(
        names,
        vec![("src", 1), ("double", 4), ("count", 2), ("print", 2)]
    );
    let parts: Vec<_> = plan.edges.iter().map(|e| e.partitioning).collect();
    assert_eq!(
        parts,
        vec![
            Partitioning::Rebalance,
            Partitioning::Hash,
            Partitioning::Forward
        ]
    );
    // `src` (parallelism 1) holds worker 0, so `count` starts its chain on the idle workers
    // 1 and 3 (one per pair); `print` chains onto it.
    assert_eq!(plan.node("src").unwrap().placement, vec![0]);
    assert_eq!(plan.node("count").unwrap().placement, vec![1, 3]);
    assert_eq!(plan.node("print").unwrap().placement, vec![1, 3]);
    // An explicit rebalance is kept even where placements match.
    let rebalanced = explain(Config::threads(2), |job| {
        job.generate("a", Some(1), |i| i)
            .rebalance()
            .map("b", |x| x)
            .for_each("c", |_| {});
        Ok(())
    })
    .unwrap();
    let parts: Vec<_> = rebalanced.edges.iter().map(|e| e.partitioning).collect();
    assert_eq!(parts, vec![Partitioning::Rebalance, Partitioning::Forward]);
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(json["nodes"][2]["name"], "count");
    assert!(plan.to_dot().contains("n1 -> n2 [label=\"HASH\"]"));
}

#[test]
fn rate_limited_generator_with_time_epochs() {
    let out = Collector::new();
    let sink = out.clone();
    let start = std::time::Instant::now();
    execute(Config::threads(1), move |job| {
        job.generate(
            op("paced")
                .rate(2000.0)
                .epochs(EpochPolicy::Interval(std::time::Duration::from_millis(20))),
            Some(200),
            |i| i,
        )
        .map_batch("per_epoch", |batch: Vec<u64>| vec![batch])
        .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    // 200 records at 2000/s cannot finish before ~100 ms (a lower bound, not a timing race),
    // so 20 ms epochs must have cut the stream several times.
    assert!(start.elapsed() >= std::time::Duration::from_millis(90));
    let epochs = out.take();
    assert!(
        epochs.len() >= 3,
        "only {} epoch(s) for a 100 ms stream with 20 ms epochs",
        epochs.len()
    );
    let mut all: Vec<u64> = epochs.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
}

#[test]
fn a_sink_that_cannot_write_fails_the_job_naming_operator_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not_a_dir");
    std::fs::write(&blocker, "a file where the output directory should go").unwrap();
    let target = blocker.clone();
    let err = execute(Config::threads(2), move |job| {
        job.generate("gen", Some(100), event)
            .write_jsonl("write", &target);
        Ok(())
    })
    .unwrap_err();
    match &err {
        WeirError::Io { operator, path, .. } => {
            assert_eq!(operator, "write");
            assert!(path.starts_with(&blocker), "{}", path.display());
        }
        other => panic!("expected an I/O error, got {other}"),
    }
}

#[test]
fn inspect_sees_every_record_once() {
    let seen = Arc::new(AtomicU64::new(0));
    let s2 = seen.clone();
    execute(Config::threads(2), move |job| {
        let s2 = s2.clone();
        job.generate(op("gen").parallelism(2), Some(10_000), |i| i)
            .inspect(op("look").parallelism(2), move |_| {
                s2.fetch_add(1, Ordering::Relaxed);
            })
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 10_000);
}

#[test]
fn dead_letters_must_be_claimed_after_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{}\n").unwrap();
    let err = execute(Config::threads(1), move |job| {
        job.dead_letters("dead").for_each("drop", |_| {});
        job.read_jsonl::<Event>("late", &input)
            .for_each("drop2", |_| {});
        Ok(())
    })
    .unwrap_err();
    assert!(
        matches!(&err, WeirError::Build { operator, .. } if operator == "late"),
        "{err}"
    );
}

#[test]
fn default_dead_letter_file_sits_beside_the_output_and_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":1,\"user\":\"a\",\"amount\":1}\nbroken\n").unwrap();
    // A trailing slash on the output directory must not put the file inside it.
    let out = format!("{}/", dir.path().join("out").display());
    let (i, o) = (input.clone(), out.clone());
    execute(Config::threads(1), move |job| {
        job.read_jsonl::<Event>("read", &i).write_jsonl("write", &o);
        Ok(())
    })
    .unwrap();
    assert!(dir.path().join("out.errors.jsonl").exists());
    assert!(!dir.path().join("out/.errors.jsonl").exists());
    // Clean input: no error file at all.
    std::fs::write(&input, "{\"id\":1,\"user\":\"a\",\"amount\":1}\n").unwrap();
    let out2 = dir.path().join("clean");
    let (i, o) = (input.clone(), out2.clone());
    execute(Config::threads(1), move |job| {
        job.read_jsonl::<Event>("read", &i).write_jsonl("write", &o);
        Ok(())
    })
    .unwrap();
    assert!(out2.join("part-00000.jsonl").exists());
    assert!(!dir.path().join("clean.errors.jsonl").exists());
}
