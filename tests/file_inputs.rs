//! What a file source accepts as input: pipes, FIFOs and `/dev/stdin` (read as one stream
//! by instance 0), directory trees (read recursively, with a warning when empty), and files of
//! many blocks (the instances take turns along them).

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use weir::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Row {
    id: u64,
    name: String,
}

fn jsonl_line(id: u64) -> String {
    format!("{{\"id\":{id},\"name\":\"n{id}\"}}\n")
}

/// Reads `path` with a source of `instances` instances on `workers` threads; returns the
/// sorted ids and the dead letters.
fn read_ids(
    path: &Path,
    csv: bool,
    workers: usize,
    instances: usize,
) -> (Vec<u64>, Vec<DeadLetter>) {
    let (good, bad) = (Collector::new(), Collector::new());
    let (g, b, path) = (good.clone(), bad.clone(), path.to_path_buf());
    execute(Config::threads(workers).with_verbose(false), move |job| {
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
    (good.sorted(), bad.sorted())
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Writes `text` into the FIFO from another thread (opening it blocks until the job opens
/// it for reading).
fn feed_fifo(path: PathBuf, text: String) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        // In small pieces, so the reader sees several partial reads.
        for chunk in text.as_bytes().chunks(1000) {
            f.write_all(chunk)?;
        }
        Ok(())
    })
}

#[test]
fn a_fifo_is_read_as_one_stream_by_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    for (csv, instances) in [(false, 1), (false, 2), (true, 2)] {
        let fifo = dir.path().join(format!("in-{csv}-{instances}.fifo"));
        mkfifo(&fifo);
        let mut text = String::from(if csv { "id,name\n" } else { "" });
        for id in 0..3000u64 {
            if id == 1500 {
                text.push_str(if csv { "x,broken\n" } else { "broken\n" });
            }
            if csv {
                text.push_str(&format!("{id},n{id}\n"));
            } else {
                text.push_str(&jsonl_line(id));
            }
        }
        let writer = feed_fifo(fifo.clone(), text);
        let (ids, dead) = read_ids(&fifo, csv, 2, instances);
        writer.join().unwrap().unwrap();
        assert_eq!(
            ids,
            (0..3000).collect::<Vec<_>>(),
            "csv {csv}, {instances} instance(s)"
        );
        assert_eq!(dead.len(), 1, "{dead:?}");
        // Line numbers count from the start of the stream (CSV: the header is line 1).
        let line = if csv { 1502 } else { 1501 };
        assert_eq!(dead[0].location, format!("{}:{line}", fifo.display()));
    }
}

const CHILD_ENV: &str = "WEIR_TEST_FILE_INPUTS_CHILD";

/// Spawns this test binary running only `test`, with `env` set to `value`.
fn spawn_self(test: &str, value: &str, stdin: Stdio) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, value)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `/dev/stdin` as the input path, with standard input a pipe: run by
/// `dev_stdin_is_read_as_a_stream` in a child process; run directly, it reads a FIFO the same
/// way.
#[test]
fn stdin_child() {
    let (path, _dir, want) = match std::env::var(CHILD_ENV) {
        // The parent checks the count.
        Ok(v) if v == "stdin" => (PathBuf::from("/dev/stdin"), None, None),
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let fifo = dir.path().join("stdin.fifo");
            mkfifo(&fifo);
            feed_fifo(fifo.clone(), (0..500).map(jsonl_line).collect());
            (fifo, Some(dir), Some(500))
        }
    };
    let (ids, dead) = read_ids(&path, false, 2, 2);
    assert!(dead.is_empty(), "{dead:?}");
    println!("child read ids {:?}", (ids.len(), ids.first(), ids.last()));
    assert_eq!(
        ids,
        (0..want.unwrap_or(ids.len() as u64)).collect::<Vec<_>>()
    );
}

#[test]
fn dev_stdin_is_read_as_a_stream() {
    let mut child = spawn_self("stdin_child", "stdin", Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let text: String = (0..2000).map(jsonl_line).collect();
    // A failing child may stop reading; its exit status tells.
    let _ = stdin.write_all(text.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("child read ids (2000, Some(0), Some(1999))"),
        "{stdout}"
    );
}

fn write_file(path: &Path, ids: std::ops::Range<u64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, ids.map(jsonl_line).collect::<String>()).unwrap();
}

#[test]
fn nested_directories_are_read_recursively_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    write_file(&root.join("a.jsonl"), 0..100);
    write_file(&root.join("2024/01/x.jsonl"), 100..350);
    write_file(&root.join("2024/01/y.jsonl"), 350..351);
    write_file(&root.join("2024/02/z.jsonl"), 351..1000);
    write_file(&root.join("only/deeper/still/w.jsonl"), 1000..1200);
    std::fs::create_dir_all(root.join("empty/dirs")).unwrap();
    // Skipped like hidden files: hidden and `_` directories, in-progress files.
    write_file(&root.join(".git/objects/h.jsonl"), 5000..5010);
    write_file(&root.join("_temporary/0/t.jsonl"), 6000..6010);
    write_file(&root.join("2024/part-00000.jsonl.inprogress"), 7000..7010);
    for instances in [1, 2] {
        let (ids, dead) = read_ids(&root, false, 2, instances);
        assert!(dead.is_empty());
        assert_eq!(
            ids,
            (0..1200).collect::<Vec<_>>(),
            "{instances} instance(s)"
        );
    }
    // The enumeration is sorted, so every run and instance sees the same order.
    let files: Vec<String> = weir::input_files(&root)
        .unwrap()
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "2024/01/x.jsonl",
            "2024/01/y.jsonl",
            "2024/02/z.jsonl",
            "a.jsonl",
            "only/deeper/still/w.jsonl"
        ]
    );
}

/// Reads the directory tree named by the environment (as a child of
/// `an_input_tree_without_files_is_warned_about`); run directly, an empty tree of its own.
#[test]
fn empty_tree_child() {
    // A program shows Weir's warnings by installing the subscriber (Config::from_args does).
    weir::logging::init();
    let dir = tempfile::tempdir().unwrap();
    let root = match std::env::var(CHILD_ENV) {
        Ok(v) if !v.is_empty() && v != "stdin" => PathBuf::from(v),
        _ => {
            std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
            dir.path().to_path_buf()
        }
    };
    let (ids, dead) = read_ids(&root, false, 2, 2);
    assert!(ids.is_empty() && dead.is_empty());
}

#[test]
fn an_input_tree_without_files_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("input");
    std::fs::create_dir_all(root.join("2024/01")).unwrap();
    std::fs::create_dir_all(root.join("2024/02")).unwrap();
    write_file(&root.join(".hidden.jsonl"), 0..10);
    let out = spawn_self("empty_tree_child", root.to_str().unwrap(), Stdio::null())
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("weir: ") && l.contains(&*root.to_string_lossy()))
        .collect();
    // One warning for the source (not one per instance), naming the directory.
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("no input files"), "{stderr}");
}

/// A file of several blocks (4 MiB each): the instances take turns along it, every line is
/// read once, and a dead letter in a later block is located at its line of the file.
#[test]
fn a_file_of_many_blocks_is_read_once_with_dead_letters_at_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let pad = "p".repeat(110);
    let bad_lines = [1u64, 30_001, 61_234, 99_999];
    let mut text = String::new();
    for id in 0..100_000u64 {
        if bad_lines.contains(&(id + 1)) {
            text.push_str("{not json\n");
        } else {
            text.push_str(&format!("{{\"id\":{id},\"name\":\"{pad}\"}}\n"));
        }
    }
    assert!(
        text.len() > 12 << 20,
        "at least three blocks: {}",
        text.len()
    );
    std::fs::write(&path, &text).unwrap();
    let expected: Vec<u64> = (0..100_000)
        .filter(|id| !bad_lines.contains(&(id + 1)))
        .collect();
    for instances in [1, 2, 3] {
        let (ids, dead) = read_ids(&path, false, 3, instances);
        assert_eq!(ids, expected, "{instances} instance(s)");
        let mut at: Vec<String> = dead.iter().map(|d| d.location.clone()).collect();
        at.sort_by_key(|l| l.rsplit(':').next().unwrap().parse::<u64>().unwrap());
        let want: Vec<String> = bad_lines
            .iter()
            .map(|line| format!("{}:{line}", path.display()))
            .collect();
        assert_eq!(at, want, "{instances} instance(s)");
    }
}

/// A file that starts with a UTF-8 byte-order mark (as some Windows editors save it) loses
/// no record: the mark is not part of the first line's JSON, nor of the CSV header. The
/// first JSON line was a dead letter before.
#[test]
fn a_byte_order_mark_at_the_start_of_a_file_is_not_part_of_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("bom.jsonl");
    let text: String = (0..5).map(jsonl_line).collect();
    std::fs::write(&jsonl, [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat()).unwrap();
    let csv = dir.path().join("bom.csv");
    let rows: String = (0..5).map(|id| format!("{id},n{id}\n")).collect();
    std::fs::write(&csv, format!("\u{FEFF}id,name\n{rows}")).unwrap();
    for (path, is_csv) in [(&jsonl, false), (&csv, true)] {
        for (workers, instances) in [(1, 1), (2, 2)] {
            let (ids, dead) = read_ids(path, is_csv, workers, instances);
            assert!(dead.is_empty(), "{path:?}: {dead:?}");
            assert_eq!(ids, (0..5).collect::<Vec<_>>(), "{path:?} at -w {workers}");
        }
    }
}

/// A CSV line that ends inside a quoted field (a record with a newline inside quotes) is a
/// dead letter that says so, and the records around it are read. Before, `2,"two` was the row
/// (2, "two"). The lines that continued the field are judged as lines of their own (here
/// dead letters of the wrong field count), at every parallelism alike.
#[test]
fn a_csv_line_that_leaves_a_quoted_field_open_is_a_dead_letter_not_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quoted.csv");
    let text = "id,name\n\
                1,one\n\
                2,\"two\n\
                lines\"\n\
                3,three\n\
                4,\"four \"\"quoted\"\"\n\
                \n\
                more\"\n\
                6,\"six, \"\"quoted\"\"\"\n";
    let rows: String = (7..100).map(|id| format!("{id},n{id}\n")).collect();
    std::fs::write(&path, format!("{text}{rows}")).unwrap();
    for (workers, instances) in [(1, 1), (2, 2), (3, 3)] {
        let (ids, dead) = read_ids(&path, true, workers, instances);
        let expected: Vec<u64> = [1, 3].into_iter().chain(6..100).collect();
        assert_eq!(ids, expected, "-w {workers}: {dead:#?}");
        let mut at: Vec<(u64, &str)> = dead
            .iter()
            .map(|d| {
                let line = d.location.rsplit(':').next().unwrap().parse().unwrap();
                (line, d.reason.as_str())
            })
            .collect();
        at.sort();
        let lines: Vec<u64> = at.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [3, 4, 6, 8], "-w {workers}: {dead:#?}");
        let open = "a quoted field is still open at the end of the line";
        assert!(
            at[0].1.starts_with(open) && at[2].1.starts_with(open),
            "{at:#?}"
        );
        assert!(at[1].1.starts_with("expected 2 fields"), "{at:#?}");
    }
}
