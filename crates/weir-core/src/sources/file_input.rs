//! The inputs of a file source: the files behind a path, and the part of each that one
//! instance reads.
//!
//! A source with `n` instances cuts every regular input file into `k` blocks, `k` the
//! smallest multiple of `n` that keeps blocks within [`crate::Config::file_block_bytes`] (so `k = n` for a
//! file of up to `n` blocks), and instance `i` reads blocks `i, i + n, i + 2n, …`. Block `j`
//! is the byte range `[j * len / k, (j + 1) * len / k)` widened to whole lines (a line
//! belongs to the block its first byte is in), so every line is read exactly once whatever
//! `n` is.
//!
//! The instances take turns along the file instead of each reading one half or one `n`-th
//! of it, so they move through it together: in a file ordered by event time, no instance
//! starts half-way through event time while another starts at its beginning, which would
//! hold every window the later one opens until the earlier one catches up (Flink's file
//! source hands out blocks in order for the same reason).
//!
//! An input that is not a regular file (a pipe, a FIFO, `/dev/stdin`, a character device)
//! cannot be split or even measured: instance 0 reads it whole, as one stream, and opens it
//! only once.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::WeirError;

/// The files behind a path: the path itself if it is not a directory, or else the regular
/// files in the directory tree below it, in sorted order.
///
/// Directories are read recursively (like Flink's `FileSource`); entries whose names start
/// with `.` or `_` (hidden files, `_temporary` directories) and files whose names end in
/// `.inprogress` (a sink's unfinished output) are skipped. A symbolic link to a file counts
/// as a file; symbolic links to directories are not followed.
pub fn input_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        files.sort();
        Ok(files)
    } else {
        std::fs::metadata(path)?;
        Ok(vec![path.to_path_buf()])
    }
}

/// Adds the input files below `dir` to `files`.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_skipped(&entry.file_name()) {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect_files(&path, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

/// Names a directory listing skips: hidden, `_`-prefixed and in-progress entries.
pub(crate) fn is_skipped(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name.starts_with('_') || name.ends_with(".inprogress")
}

/// Offset of the first line that starts at or after `offset` (0 and `len` map to themselves).
/// Reads forward to the next newline without holding the bytes it skips.
pub fn align_to_line(file: &mut File, offset: u64, len: u64) -> std::io::Result<u64> {
    line_start_before(file, offset, len)
}

/// Offset of the first line that starts in `[offset, stop)`, or `stop` if none does (`stop`
/// at most the file's length; 0 maps to itself). Reads at most the bytes before `stop`, so
/// a block inside a long line costs a read of that block, not of the rest of the line.
fn line_start_before(file: &mut File, offset: u64, stop: u64) -> std::io::Result<u64> {
    if offset == 0 || offset >= stop {
        return Ok(offset.min(stop));
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file.by_ref().take(stop - offset));
    let mut position = offset - 1;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(stop);
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            return Ok(position + i as u64 + 1);
        }
        let n = buf.len();
        position += n as u64;
        reader.consume(n);
    }
}

/// Newlines counted in the files a source instance reads, so that locating a dead letter
/// (`file:line`) in a later block counts on from where the last count stopped instead of
/// from the start of the file. A stream starts at 0 and is not opened again.
#[derive(Debug, Default)]
pub(crate) struct NewlineCount {
    /// The file last counted in, how far, and the newlines before that offset.
    last: Option<(PathBuf, u64, u64)>,
}

impl NewlineCount {
    /// Number of newlines in the first `offset` bytes of `path`.
    pub(crate) fn before(&mut self, path: &Path, offset: u64) -> std::io::Result<u64> {
        let (from, lines) = match &self.last {
            Some((p, at, lines)) if p == path && *at <= offset => (*at, *lines),
            _ => (0, 0),
        };
        let lines = lines + newlines_between(path, from, offset)?;
        self.last = Some((path.to_path_buf(), offset, lines));
        Ok(lines)
    }
}

/// Number of newlines in bytes `[from, to)` of `path`.
fn newlines_between(path: &Path, from: u64, to: u64) -> std::io::Result<u64> {
    if from >= to {
        return Ok(0);
    }
    let mut file = File::open(path)?;
    if from > 0 {
        file.seek(SeekFrom::Start(from))?;
    }
    let mut reader = BufReader::new(file.take(to - from));
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(lines),
            n => lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64,
        }
    }
}

/// One byte range of one file, whole lines; or a whole stream.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Split {
    pub(crate) path: PathBuf,
    pub(crate) start: u64,
    /// End of the range; `u64::MAX` for a stream, which is read to its end.
    pub(crate) end: u64,
}

/// The splits instance `instance` of `instances` reads from `files`: its blocks of at most
/// `block` bytes (see the module documentation), in file and offset order.
pub(crate) fn plan_splits(
    operator: &str,
    files: &[PathBuf],
    instance: usize,
    instances: usize,
    block: u64,
) -> Result<Vec<Split>, WeirError> {
    let io = |path: &Path, source| WeirError::Io {
        operator: operator.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let mut splits = Vec::new();
    for path in files {
        // `metadata`, not `open`: opening a FIFO blocks until a writer comes, and a writer
        // whose reader closes again gets a broken pipe.
        let metadata = std::fs::metadata(path).map_err(|e| io(path, e))?;
        if !metadata.is_file() {
            if instance == 0 {
                splits.push(Split {
                    path: path.clone(),
                    start: 0,
                    end: u64::MAX,
                });
            }
            continue;
        }
        let mut file = File::open(path).map_err(|e| io(path, e))?;
        let len = metadata.len();
        let blocks = block_count(len, instances as u64, block);
        for j in (instance as u64..blocks).step_by(instances) {
            let from = (u128::from(len) * u128::from(j) / u128::from(blocks)) as u64;
            let to = (u128::from(len) * u128::from(j + 1) / u128::from(blocks)) as u64;
            let start = line_start_before(&mut file, from, to).map_err(|e| io(path, e))?;
            if start == to {
                // No line starts in this block: it is inside a longer one.
                continue;
            }
            let end = align_to_line(&mut file, to, len).map_err(|e| io(path, e))?;
            splits.push(Split {
                path: path.clone(),
                start,
                end,
            });
        }
    }
    Ok(splits)
}

/// The splits instance `instance` of `instances` reads when files are read whole (CSV whose
/// records may span lines, where a line start inside a file cannot be told from a line
/// inside a quoted field): the `k`-th file goes to instance `k % instances`.
pub(crate) fn plan_whole_files(
    operator: &str,
    files: &[PathBuf],
    instance: usize,
    instances: usize,
) -> Result<Vec<Split>, WeirError> {
    let mine = files
        .iter()
        .enumerate()
        .filter(|(k, _)| k % instances.max(1) == instance);
    mine.map(|(_, path)| {
        // `metadata`, not `open` (see `plan_splits`): a stream has no length.
        let metadata = std::fs::metadata(path).map_err(|source| WeirError::Io {
            operator: operator.to_string(),
            path: path.clone(),
            source,
        })?;
        let end = if metadata.is_file() {
            metadata.len()
        } else {
            u64::MAX
        };
        Ok(Split {
            path: path.clone(),
            start: 0,
            end,
        })
    })
    .collect()
}

/// A file source's restored splits, checked: one that does not decode, or whose range ends
/// before it starts, is a checkpoint error naming `operator` (a checkpoint's checksum covers
/// damage, not a file written by hand).
pub(crate) fn restored_splits(operator: &str, splits: &[Vec<u8>]) -> Result<Vec<Split>, WeirError> {
    let error = |i: usize, why: String| {
        WeirError::Checkpoint(format!("operator `{operator}`, split {i}: {why}"))
    };
    splits
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let split: Split =
                crate::state::snapshot::decode_part(bytes).map_err(|e| error(i, e.to_string()))?;
            if split.start > split.end {
                let why = format!(
                    "{}: the range {}..{} ends before it starts",
                    split.path.display(),
                    split.start,
                    split.end
                );
                return Err(error(i, why));
            }
            Ok(split)
        })
        .collect()
}

/// The order in which a restored checkpoint deals a file source's remaining splits at
/// another parallelism (see [`crate::sources::driver::Dealing::Ordered`]): by file, then
/// offset, so that each instance's share goes forward in every file and the instances take
/// turns along it again (in the old instances' order, an instance would go back in the file
/// from one split to the next). Splits that do not decode go last.
pub(crate) fn file_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let position = |bytes: &[u8]| {
        crate::state::snapshot::decode_part::<Split>(bytes)
            .ok()
            .map(|s| (s.path, s.start))
    };
    match (position(a), position(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (a, b) => a.is_none().cmp(&b.is_none()),
    }
}

/// The blocks a file of `len` bytes is cut into for `instances` instances: the smallest
/// multiple of `instances` whose blocks are at most `block` bytes.
fn block_count(len: u64, instances: u64, block: u64) -> u64 {
    let rounds = len.div_ceil(instances.saturating_mul(block.max(1))).max(1);
    rounds * instances
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restored split whose range ends before it starts (it read on to the file's end, or
    /// panicked in a debug build) or that does not decode fails the restore, naming it.
    #[test]
    fn restored_splits_are_checked() {
        let split = |start, end| {
            crate::state::snapshot::encode_part(&Split {
                path: PathBuf::from("in.jsonl"),
                start,
                end,
            })
            .unwrap()
        };
        let good = restored_splits("read", &[split(0, 10), split(10, u64::MAX)]).unwrap();
        assert_eq!(good.len(), 2);
        let e = restored_splits("read", &[split(0, 10), split(20, 10)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            WeirError::Checkpoint(
                "operator `read`, split 1: in.jsonl: the range 20..10 ends before it starts".into()
            )
            .to_string()
        );
        let e = restored_splits("read", &[vec![7; 2]]).unwrap_err();
        assert!(e.to_string().contains("operator `read`, split 0: "), "{e}");
    }

    #[test]
    fn files_are_cut_into_rounds_of_one_block_per_instance() {
        assert_eq!(block_count(0, 2, 100), 2);
        assert_eq!(block_count(200, 2, 100), 2);
        assert_eq!(block_count(201, 2, 100), 4);
        assert_eq!(block_count(1_000, 3, 100), 12);
        assert_eq!(block_count(u64::MAX, 4, u64::MAX), 4);
    }

    /// Lines `0..lines`, each its number and padding of a varying length.
    fn numbered_lines(path: &Path, lines: usize) -> String {
        let text: String = (0..lines)
            .map(|i| format!("{i} {}\n", "x".repeat(i * 7 % 23)))
            .collect();
        std::fs::write(path, &text).unwrap();
        text
    }

    #[test]
    fn instances_take_turns_along_the_file_and_read_every_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let text = numbered_lines(&path, 500);
        let files = [path.clone()];
        for instances in 1..=4 {
            let plans: Vec<Vec<Split>> = (0..instances)
                .map(|i| plan_splits("read", &files, i, instances, 1_000).unwrap())
                .collect();
            // Every instance gets several blocks, and they interleave: block `r` of every
            // instance ends before block `r + 1` of any starts.
            let rounds = plans[0].len();
            assert!(rounds >= 2, "{instances} instances: {plans:?}");
            for r in 0..rounds - 1 {
                for plan in &plans {
                    for later in &plans {
                        if let (Some(this), Some(next)) = (plan.get(r), later.get(r + 1)) {
                            assert!(this.end <= next.start, "{instances}: {plans:?}");
                        }
                    }
                }
            }
            // Together, the blocks are the whole file, in whole lines, each byte once.
            covers_in_whole_lines(&plans, text.as_bytes());
        }
    }

    /// Checks that `plans` together read the whole of `text` in whole lines, each byte once.
    fn covers_in_whole_lines(plans: &[Vec<Split>], text: &[u8]) {
        let mut all: Vec<&Split> = plans.iter().flatten().collect();
        all.sort_by_key(|s| s.start);
        let mut at = 0;
        for s in all {
            assert_eq!(s.start, at, "{plans:?}");
            assert!(s.start == 0 || text[s.start as usize - 1] == b'\n');
            at = s.end;
        }
        assert_eq!(at, text.len() as u64);
    }

    #[test]
    fn lines_longer_than_blocks_and_files_without_lines_are_planned_without_reading_on() {
        let dir = tempfile::tempdir().unwrap();
        // A line of 5,500 bytes (blocks of 1,000), short lines, no final newline.
        let text = format!("a\n{}\nb\nc\n{}", "x".repeat(5_500), "y".repeat(2_300));
        let long = dir.path().join("long");
        let empty = dir.path().join("empty");
        std::fs::write(&long, &text).unwrap();
        std::fs::write(&empty, "").unwrap();
        for instances in 1..=4 {
            let plans: Vec<Vec<Split>> = (0..instances)
                .map(|i| {
                    plan_splits("read", std::slice::from_ref(&long), i, instances, 1_000).unwrap()
                })
                .collect();
            covers_in_whole_lines(&plans, text.as_bytes());
            // Blocks inside the long lines hold no line start: only 4 splits at most.
            assert!(plans.iter().flatten().count() <= 4, "{plans:?}");
            for i in 0..instances {
                let none =
                    plan_splits("read", std::slice::from_ref(&empty), i, instances, 1_000).unwrap();
                assert!(none.is_empty());
            }
        }
    }

    #[test]
    fn restored_splits_sort_by_file_then_offset_and_undecodable_ones_last() {
        let split = |path: &str, start: u64| {
            crate::state::snapshot::encode_part(&Split {
                path: PathBuf::from(path),
                start,
                end: start + 10,
            })
            .unwrap()
        };
        // As two instances listed their rests: each its own blocks, in turn along the files.
        let mut listed = [
            split("a", 5),
            split("a", 40),
            b"not a split".to_vec(),
            split("b", 0),
            split("a", 23),
            split("a", 60),
            split("b", 20),
        ];
        listed.sort_by(|a, b| file_order(a, b));
        let order: Vec<Option<(PathBuf, u64)>> = listed
            .iter()
            .map(|s| {
                crate::state::snapshot::decode_part::<Split>(s)
                    .ok()
                    .map(|s| (s.path, s.start))
            })
            .collect();
        let at = |path: &str, start| Some((PathBuf::from(path), start));
        assert_eq!(
            order,
            [
                at("a", 5),
                at("a", 23),
                at("a", 40),
                at("a", 60),
                at("b", 0),
                at("b", 20),
                None
            ]
        );
    }

    #[test]
    fn newlines_are_counted_on_from_the_last_count() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let text = numbered_lines(&a, 100);
        numbered_lines(&b, 10);
        let expected = |offset: usize| text[..offset].matches('\n').count() as u64;
        let mut count = NewlineCount::default();
        for offset in [0, 40, 41, 700, 900, text.len()] {
            assert_eq!(count.before(&a, offset as u64).unwrap(), expected(offset));
        }
        // Another file, then an earlier offset: counted from the start again.
        assert_eq!(count.before(&b, 10_000).unwrap(), 10);
        assert_eq!(count.before(&a, 900).unwrap(), expected(900));
        assert_eq!(count.before(&a, 40).unwrap(), expected(40));
    }
}
