//! The line-length cap of file sources, bounded dead letters, and CSV lines that are not
//! UTF-8.

use std::path::Path;

use serde::{Deserialize, Serialize};
use weir::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Row {
    id: u64,
    text: String,
}

const CAP: usize = 16 * 1024;

fn read(path: &Path, csv: bool, config: Config, instances: usize) -> (Vec<u64>, Vec<DeadLetter>) {
    let (good, bad) = (Collector::new(), Collector::new());
    let (g, b, path) = (good.clone(), bad.clone(), path.to_path_buf());
    execute(config.with_verbose(false), move |job| {
        let o = op("read").parallelism(instances);
        let rows: DataStream<Row> = if csv {
            job.read_csv(o, &path)
        } else {
            job.read_jsonl(o, &path)
        };
        rows.map("id", |r| r.id).collect("ids", &g);
        job.dead_letters("dead")
            .collect(op("bad").parallelism(1), &b);
        Ok(())
    })
    .unwrap();
    let mut bad = bad.take();
    bad.sort_by_key(|d| {
        d.location
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    (good.sorted(), bad)
}

fn line(csv: bool, id: u64, text: &str) -> String {
    if csv {
        format!("{id},{text}\n")
    } else {
        format!("{{\"id\":{id},\"text\":\"{text}\"}}\n")
    }
}

#[test]
fn an_over_long_line_is_a_bounded_dead_letter_and_the_next_lines_are_read() {
    for csv in [false, true] {
        for instances in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(if csv { "in.csv" } else { "in.jsonl" });
            let mut text = String::from(if csv { "id,text\n" } else { "" });
            let long = "y".repeat(3 * CAP);
            for id in 0..200u64 {
                match id {
                    // A well-formed record, but three times the cap.
                    50 => text.push_str(&line(csv, id, &long)),
                    // Exactly at the cap (newline excluded): accepted.
                    60 => {
                        let base = line(csv, id, "").len() - 1;
                        text.push_str(&line(csv, id, &"z".repeat(CAP - base)));
                    }
                    // Malformed and long, but under the cap: the raw copy is cut.
                    70 => text.push_str(&format!("{}!\n", "not a record ".repeat(CAP / 16))),
                    _ => text.push_str(&line(csv, id, "ok")),
                }
            }
            std::fs::write(&path, &text).unwrap();
            let config = Config::threads(2).with_max_line_bytes(CAP);
            let (ids, dead) = read(&path, csv, config, instances);
            let want: Vec<u64> = (0..200).filter(|&i| i != 50 && i != 70).collect();
            assert_eq!(ids, want, "csv {csv}, {instances} instance(s)");
            assert_eq!(dead.len(), 2, "{dead:?}");
            let first_line = if csv { 2 } else { 1 };
            let long_len = line(csv, 50, &long).len() - 1;
            assert_eq!(
                dead[0].location,
                format!("{}:{}", path.display(), first_line + 50)
            );
            assert_eq!(
                dead[0].reason,
                format!("line of {long_len} bytes exceeds the limit of {CAP} bytes")
            );
            assert!(
                dead[0].raw.len() <= DeadLetter::MAX_RAW_BYTES + 100,
                "{}",
                dead[0].raw.len()
            );
            let prefix = if csv {
                "50,yyyy"
            } else {
                "{\"id\":50,\"text\":\"yyyy"
            };
            assert!(dead[0].raw.starts_with(prefix), "{}", &dead[0].raw[..40]);
            assert!(
                dead[0].raw.contains(&format!("{long_len} bytes")),
                "{}",
                &dead[0].raw[4000..]
            );
            assert_eq!(
                dead[1].location,
                format!("{}:{}", path.display(), first_line + 70)
            );
            assert!(
                dead[1].raw.len() <= DeadLetter::MAX_RAW_BYTES + 100,
                "{}",
                dead[1].raw.len()
            );
            assert!(dead[1].raw.starts_with("not a record not a record"));
            assert!(
                dead[1]
                    .raw
                    .contains(&format!("{} bytes", 13 * (CAP / 16) + 1)),
                "{}",
                &dead[1].raw[4000..]
            );
        }
    }
}

#[test]
fn the_cap_comes_from_the_command_line_and_fail_fast_names_the_line() {
    let config =
        Config::from_args(["prog", "--max-line-bytes", "100", "--fail-fast"].map(String::from))
            .unwrap();
    assert_eq!(config.max_line_bytes, 100);
    assert!(Config::from_args(["prog", "--max-line-bytes", "0"].map(String::from)).is_err());
    assert_eq!(Config::threads(1).max_line_bytes, 16 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(
        &path,
        format!(
            "{}{}",
            line(false, 1, "a"),
            line(false, 2, &"b".repeat(200))
        ),
    )
    .unwrap();
    let err = execute(config.with_verbose(false), move |job| {
        job.read_jsonl::<Row>("read", &path)
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("in.jsonl:2") && text.contains("exceeds the limit of 100 bytes"),
        "{text}"
    );
}

#[test]
fn csv_lines_that_are_not_utf8_keep_a_lossy_raw_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    let mut bytes = b"id,text\n1,fine\n2,caf".to_vec();
    bytes.extend_from_slice(&[0xE9, 0xFF]);
    bytes.extend_from_slice(b" au lait\n3,\xc3\xa9t\xc3\xa9\n");
    std::fs::write(&path, bytes).unwrap();
    let (ids, dead) = read(&path, true, Config::threads(1), 1);
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].location, format!("{}:3", path.display()));
    assert_eq!(dead[0].raw, "2,caf\u{FFFD}\u{FFFD} au lait");
    assert!(
        dead[0].reason.to_lowercase().contains("utf-8"),
        "{}",
        dead[0].reason
    );
}
