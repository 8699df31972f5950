//! CSV whose quoted fields hold newlines (`read_csv_multiline`): records are read whole at
//! any parallelism and equal what the `csv` crate reads from each file sequentially; bad
//! records are bounded dead letters at their first line and the records after them are
//! read; `read_csv` on the same input says to use `read_csv_multiline`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir_core::Cluster;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Note {
    id: u64,
    text: String,
    tag: String,
}

/// Reads `path` with `read_csv_multiline` (or `read_csv`) at `instances` instances on
/// `workers` threads: the records and the dead letters, each sorted.
fn read(
    path: &Path,
    multiline: bool,
    workers: usize,
    instances: usize,
    config: Config,
) -> (Vec<Note>, Vec<DeadLetter>) {
    let (good, bad) = (Collector::new(), Collector::new());
    let (g, b, path) = (good.clone(), bad.clone(), path.to_path_buf());
    let config = Config {
        cluster: Cluster::Local { threads: workers },
        ..config.with_verbose(false)
    };
    execute(config, move |job| {
        let o = op("read").parallelism(instances);
        let notes: DataStream<Note> = if multiline {
            job.read_csv_multiline(o, &path)
        } else {
            job.read_csv(o, &path)
        };
        notes.collect("notes", &g);
        job.dead_letters("dead")
            .collect(op("bad").parallelism(1), &b);
        Ok(())
    })
    .unwrap();
    let mut bad = bad.take();
    bad.sort_by(|x, y| x.location.cmp(&y.location));
    (good.sorted(), bad)
}

/// What the `csv` crate reads from `text`, read sequentially (the reference).
fn reference(text: &str) -> Vec<Note> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize::<Note>()
        .map(|r| {
            let mut note = r.expect("the reference input is valid CSV");
            // A `\r\n` inside quotes is read as `\n` (see `read_csv_multiline`).
            note.text = note.text.replace("\r\n", "\n");
            note
        })
        .collect()
}

/// A file of `rows` records starting at `first`: every third has a text over several
/// lines, some with `\r\n`, doubled quotes, commas, and a continuation line that on its own
/// would have the right number of fields.
fn notes_file(first: u64, rows: u64) -> String {
    let mut text = String::from("id,text,tag\n");
    for id in first..first + rows {
        let body = match id % 6 {
            0 => format!("\"line one of {id}\nline two, with a comma\nthree\""),
            1 => format!("plain {id}"),
            2 => format!("\"he said \"\"hi\"\"\r\nand left {id}\""),
            3 => format!("\"{id}\n9,looks,like a row\""),
            4 => "\"\"".to_string(),
            _ => format!("\"\n\n{id} after blank lines\n\""),
        };
        text.push_str(&format!("{id},{body},t{}\n", id % 3));
    }
    text
}

#[test]
fn multi_line_records_are_read_whole_at_any_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (k, rows) in [(0, 400), (1, 1), (2, 250), (3, 0)] {
        let text = notes_file(k * 1000, rows);
        expected.extend(reference(&text));
        std::fs::write(dir.path().join(format!("part-{k}.csv")), text).unwrap();
    }
    expected.sort();
    assert_eq!(expected.len(), 651);
    assert!(expected.iter().any(|n| n.text == "3\n9,looks,like a row"));
    // Small blocks: `read_csv` would split these files; whole files are read instead.
    let config = Config::threads(1).with_file_block_bytes(512);
    for (workers, instances) in [(1, 1), (2, 1), (2, 2), (3, 3), (3, 2)] {
        let (notes, bad) = read(dir.path(), true, workers, instances, config.clone());
        assert!(bad.is_empty(), "{workers} workers: {bad:?}");
        assert_eq!(notes, expected, "{workers} workers, {instances} instances");
    }
}

#[test]
fn read_csv_turns_the_first_line_into_a_dead_letter_that_names_read_csv_multiline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    std::fs::write(&path, "id,text,tag\n1,\"two\nlines\",a\n2,one,b\n").unwrap();
    let (notes, bad) = read(&path, false, 1, 1, Config::threads(1));
    assert_eq!(notes.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2]);
    assert!(bad[0].location.ends_with("in.csv:2"), "{bad:?}");
    assert!(bad[0].reason.contains("read_csv_multiline"), "{bad:?}");
    let (notes, bad) = read(&path, true, 1, 1, Config::threads(1));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].text, "two\nlines");
}

#[test]
fn bad_records_are_bounded_dead_letters_at_their_first_line_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.csv");
    let cap = 4096;
    let long = "x".repeat(400);
    let mut text = String::from("id,text,tag\n");
    // Lines 2-3: a record of two lines; line 4: not a number; lines 5-25: a record over the
    // cap (20 lines of 401 bytes and its end); line 26: read after it.
    text.push_str("1,\"a\nb\",t\n");
    text.push_str("x,plain,t\n");
    text.push('2');
    text.push_str(",\"");
    for _ in 0..20 {
        text.push_str(&long);
        text.push('\n');
    }
    text.push_str("\",t\n");
    text.push_str("3,after,t\n");
    // Line 27: a record the file ends inside.
    text.push_str("4,\"never closed\nat all");
    std::fs::write(&path, &text).unwrap();
    let config = Config::threads(1).with_max_line_bytes(cap);
    let (notes, bad) = read(&path, true, 1, 1, config);
    let ids: Vec<u64> = notes.iter().map(|n| n.id).collect();
    assert_eq!(ids, vec![1, 3]);
    let at: Vec<&str> = bad
        .iter()
        .map(|d| d.location.rsplit(':').next().unwrap())
        .collect();
    assert_eq!(at, vec!["27", "4", "5"], "{bad:?}");
    let by_line = |line: &str| bad.iter().find(|d| d.location.ends_with(line)).unwrap();
    assert!(by_line(":5")
        .reason
        .contains("exceeds the limit of 4096 bytes"));
    assert!(by_line(":5").raw.len() <= 2 * DeadLetter::MAX_RAW_BYTES);
    assert!(by_line(":27")
        .reason
        .contains("still open at the end of the file"));
    assert!(by_line(":27").raw.contains("never closed\nat all"));
}
