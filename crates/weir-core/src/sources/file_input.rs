//! The inputs of a file source: the files behind a path, and the part of each that one
//! instance reads.
//!
//! A source with `n` instances reads, in every regular input file, the byte range
//! `[i * len / n, (i + 1) * len / n)` widened to whole lines (a line belongs to the range
//! its first byte is in), so every line is read exactly once whatever `n` is. An input that
//! is not a regular file (a pipe, a FIFO, `/dev/stdin`, a character device) cannot be split
//! or even measured: instance 0 reads it whole, as one stream, and opens it only once.

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
    if offset == 0 || offset >= len {
        return Ok(offset.min(len));
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut position = offset - 1;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(position);
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            return Ok(position + i as u64 + 1);
        }
        let n = buf.len();
        position += n as u64;
        reader.consume(n);
    }
}

/// Number of newlines in the first `offset` bytes of `path` (counted once per split, and
/// only when the split has a dead letter to locate). A stream starts at 0 and is not
/// opened again.
pub(crate) fn newlines_before(path: &Path, offset: u64) -> std::io::Result<u64> {
    if offset == 0 {
        return Ok(0);
    }
    let mut reader = BufReader::new(File::open(path)?.take(offset));
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

/// The splits instance `instance` of `instances` reads from `files`.
pub(crate) fn plan_splits(
    operator: &str,
    files: &[PathBuf],
    instance: usize,
    instances: usize,
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
        let from = len * instance as u64 / instances as u64;
        let to = len * (instance as u64 + 1) / instances as u64;
        let start = align_to_line(&mut file, from, len).map_err(|e| io(path, e))?;
        let end = align_to_line(&mut file, to, len).map_err(|e| io(path, e))?;
        if start < end {
            splits.push(Split {
                path: path.clone(),
                start,
                end,
            });
        }
    }
    Ok(splits)
}
