//! Property: whatever bytes a JSON Lines or CSV file holds (random bytes, NULs, invalid
//! UTF-8, mutated records, CRLF, lines around and far over the length cap, no final
//! newline), read through the real file source by 1 to 3 instances, the job does not fail
//! or panic, every good line arrives exactly once, every bad line is exactly one dead letter
//! at its `file:line` with a bounded `raw`, and no allocation grows with the long lines.
//!
//! A line is classified independently: JSON with `serde_json` on the trimmed line, CSV with
//! the `csv` crate's reader on that one line (a line after which the reader would go on
//! inside a quoted field is a dead letter). This binary holds one test, so the counting
//! allocator sees only its job.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use weir::prelude::*;

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The line-length cap of the jobs under test.
const CAP: usize = 4096;
/// Long lines are up to this long: far over any buffer the reader may hold.
const LONG: usize = 1 << 20;
/// No single allocation of a job may exceed this (the readers' 256 KiB buffers and the
/// cap fit; a long line does not).
const ALLOCATION_BOUND: usize = 512 << 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    id: u64,
    text: String,
}

/// One line of a generated file, before its line ending.
#[derive(Clone, Debug)]
enum Piece {
    /// A valid record with `pad` characters of text (ASCII and `é`).
    Good { pad: usize },
    /// A valid record of exactly `CAP + delta` bytes.
    AtCap { delta: i8 },
    /// A valid record of `len` bytes, far over the cap.
    Long { len: usize },
    /// A valid record with one byte replaced, inserted or deleted (never a line break).
    Mutated {
        pad: usize,
        at: usize,
        edit: u8,
        byte: u8,
    },
    /// Random bytes (no `\n`): NULs, `\r`, invalid UTF-8, quotes.
    Random(Vec<u8>),
    /// Nothing or white space: skipped.
    Blank(&'static str),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (0usize..40).prop_map(|pad| Piece::Good { pad }),
        2 => (-2i8..=2).prop_map(|delta| Piece::AtCap { delta }),
        1 => (CAP + 1..LONG).prop_map(|len| Piece::Long { len }),
        3 => (0usize..40, any::<usize>(), 0u8..3, any::<u8>())
            .prop_map(|(pad, at, edit, byte)| Piece::Mutated { pad, at, edit, byte }),
        3 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Piece::Random),
        1 => prop_oneof![Just(""), Just("  "), Just("\t")].prop_map(Piece::Blank),
    ]
}

fn record(csv: bool, id: u64, text: &str) -> Vec<u8> {
    if csv {
        format!("{id},{text}").into_bytes()
    } else {
        format!("{{\"id\":{id},\"text\":\"{text}\"}}").into_bytes()
    }
}

fn pad_text(n: usize) -> String {
    "abcé xyz".chars().cycle().take(n).collect()
}

/// A record of exactly `len` bytes (or the shortest possible).
fn record_of_len(csv: bool, id: u64, len: usize) -> Vec<u8> {
    let base = record(csv, id, "").len();
    record(csv, id, &"y".repeat(len.saturating_sub(base)))
}

impl Piece {
    fn bytes(&self, csv: bool, id: u64) -> Vec<u8> {
        match self {
            Piece::Good { pad } => record(csv, id, &pad_text(*pad)),
            Piece::AtCap { delta } => record_of_len(csv, id, (CAP as i64 + *delta as i64) as usize),
            Piece::Long { len } => record_of_len(csv, id, *len),
            Piece::Mutated {
                pad,
                at,
                edit,
                byte,
            } => {
                let mut b = record(csv, id, &pad_text(*pad));
                let byte = if *byte == b'\n' || *byte == b'\r' {
                    b'\\'
                } else {
                    *byte
                };
                let at = at % b.len();
                match edit {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ => {
                        b.remove(at);
                    }
                }
                b
            }
            Piece::Random(bytes) => bytes
                .iter()
                .map(|&b| if b == b'\n' { b'?' } else { b })
                .collect(),
            Piece::Blank(s) => s.as_bytes().to_vec(),
        }
    }
}

/// What the source must make of a line (its bytes without the line ending).
#[derive(Debug, PartialEq)]
enum Expect {
    Record(u64),
    TooLong(usize),
    Dead,
    Skipped,
}

fn classify(csv: bool, line: &[u8]) -> Expect {
    if line.len() > CAP {
        return Expect::TooLong(line.len());
    }
    let text = line.trim_ascii();
    if text.is_empty() {
        return Expect::Skipped;
    }
    if csv && leaves_a_quote_open(line) {
        return Expect::Dead;
    }
    let row: Option<Row> = if csv {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(line);
        let mut fields = csv::ByteRecord::new();
        let headers = csv::ByteRecord::from(vec!["id", "text"]);
        match reader.read_byte_record(&mut fields) {
            Ok(true) if fields.len() == 2 => fields.deserialize(Some(&headers)).ok(),
            _ => None,
        }
    } else {
        serde_json::from_slice(text).ok()
    };
    row.map_or(Expect::Dead, |r| Expect::Record(r.id))
}

/// Whether the csv crate, reading `line` and a line after it, takes the newline into a
/// quoted field: such a line is a dead letter (a CSV record must be one line).
fn leaves_a_quote_open(line: &[u8]) -> bool {
    let two_lines = [line, b"\nnext"].concat();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(two_lines.as_slice());
    let mut fields = csv::ByteRecord::new();
    matches!(reader.read_byte_record(&mut fields), Ok(true))
        && fields.iter().any(|f| f.contains(&b'\n'))
}

/// Writes one file; returns what each line must give, with its 1-based line number.
fn write_file(
    path: &Path,
    csv: bool,
    pieces: &[(Piece, bool)],
    first_id: u64,
    final_newline: bool,
) -> Vec<(u64, Expect)> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut expected = Vec::new();
    let mut line_no = 0u64;
    if csv {
        f.write_all(b"id,text\n").unwrap();
        line_no += 1;
    }
    for (i, (piece, crlf)) in pieces.iter().enumerate() {
        let bytes = piece.bytes(csv, first_id + i as u64);
        let last = i + 1 == pieces.len();
        let ending: &[u8] = match (last && !final_newline, crlf) {
            (true, _) => b"",
            (false, true) => b"\r\n",
            (false, false) => b"\n",
        };
        f.write_all(&bytes).unwrap();
        f.write_all(ending).unwrap();
        line_no += 1;
        if bytes.is_empty() && ending.is_empty() {
            continue; // an empty last line without a newline is no line at all
        }
        // A trailing `\r` belongs to the line ending.
        let content = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        expected.push((line_no, classify(csv, content)));
    }
    expected
}

/// Runs the real file source over `path`; returns ids and dead letters.
fn run(path: &Path, csv: bool, instances: usize) -> (Vec<u64>, Vec<DeadLetter>) {
    let (good, bad) = (Collector::new(), Collector::new());
    let (g, b, path) = (good.clone(), bad.clone(), path.to_path_buf());
    let config = Config::threads(3)
        .with_verbose(false)
        .with_max_line_bytes(CAP);
    execute(config, move |job| {
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
    .expect("bad input must not fail the job");
    (good.sorted(), bad.take())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn every_line_is_one_record_or_one_dead_letter(
        csv in any::<bool>(),
        files in proptest::collection::vec(
            (proptest::collection::vec((piece(), any::<bool>()), 0..40), any::<bool>()),
            1..=2,
        ),
        instances in 1usize..=3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut expected_ids = Vec::new();
        let mut expected_dead = BTreeSet::new();
        let mut too_long = BTreeSet::new();
        let mut first_id = 0;
        for (k, (pieces, final_newline)) in files.iter().enumerate() {
            let path: PathBuf = dir.path().join(format!("f{k}.{}", if csv { "csv" } else { "jsonl" }));
            for (line, expect) in write_file(&path, csv, pieces, first_id, *final_newline) {
                let location = format!("{}:{line}", path.display());
                match expect {
                    Expect::Record(id) => expected_ids.push(id),
                    Expect::TooLong(n) => {
                        too_long.insert((location.clone(), n));
                        expected_dead.insert(location);
                    }
                    Expect::Dead => {
                        expected_dead.insert(location);
                    }
                    Expect::Skipped => {}
                }
            }
            first_id += 1000;
        }
        expected_ids.sort();
        LARGEST.store(0, Ordering::Relaxed);
        let (ids, dead) = run(dir.path(), csv, instances);
        let largest = LARGEST.load(Ordering::Relaxed);
        prop_assert_eq!(ids, expected_ids);
        let locations: Vec<String> = dead.iter().map(|d| d.location.clone()).collect();
        let unique: BTreeSet<String> = locations.iter().cloned().collect();
        prop_assert_eq!(locations.len(), unique.len(), "a line gave two dead letters");
        prop_assert_eq!(unique, expected_dead);
        for d in &dead {
            prop_assert!(d.raw.len() <= DeadLetter::MAX_RAW_BYTES + 100, "raw of {} bytes", d.raw.len());
            prop_assert_eq!(d.operator.as_str(), "read");
            if let Some((_, n)) = too_long.iter().find(|(l, _)| *l == d.location) {
                prop_assert_eq!(
                    &d.reason,
                    &format!("line of {n} bytes exceeds the limit of {CAP} bytes")
                );
            }
        }
        prop_assert!(largest <= ALLOCATION_BOUND, "largest allocation {} bytes", largest);
    }
}
