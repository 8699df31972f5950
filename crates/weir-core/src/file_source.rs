//! JSON Lines and CSV file sources, split across instances by file and by byte range.
//!
//! A source with `n` instances reads, in every input file, the byte range
//! `[i * len / n, (i + 1) * len / n)` widened to whole lines (a line belongs to the range
//! its first byte is in), so every line is read exactly once whatever `n` is.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use timely::dataflow::operators::core::OkErr;

use crate::dead_letter::DeadLetter;
use crate::error::WeirError;
use crate::job::{Job, JobContext, Op};
use crate::stream::{Data, DataStream};

/// Format of a file source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line.
    JsonLines,
    /// Comma-separated values with a header line naming the fields.
    Csv,
}

/// The files behind a path: the file itself, or the visible regular files of a directory,
/// sorted by name.
pub fn input_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_file()
                && !name.starts_with('.')
                && !name.starts_with('_')
                && !name.ends_with(".inprogress")
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    } else {
        std::fs::metadata(path)?;
        Ok(vec![path.to_path_buf()])
    }
}

/// Offset of the first line that starts at or after `offset` (0 and `len` map to themselves).
pub fn align_to_line(file: &mut File, offset: u64, len: u64) -> std::io::Result<u64> {
    if offset == 0 || offset >= len {
        return Ok(offset.min(len));
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut reader = BufReader::with_capacity(8192, file);
    let mut skipped = Vec::new();
    let n = reader.read_until(b'\n', &mut skipped)?;
    Ok(offset - 1 + n as u64)
}

/// Number of newlines in the first `offset` bytes of `path` (counted once per split, and
/// only when the split has a dead letter to locate).
fn newlines_before(path: &Path, offset: u64) -> std::io::Result<u64> {
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

/// One byte range of one file, whole lines.
struct Split {
    path: PathBuf,
    start: u64,
    end: u64,
}

fn plan_splits(
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
        let mut file = File::open(path).map_err(|e| io(path, e))?;
        let len = file.metadata().map_err(|e| io(path, e))?.len();
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

/// Reads the records of one instance's splits; yields decoded records, or dead letters for
/// records that do not decode. An I/O error fails the job (through `failure`) and ends the
/// reader: it is not a property of one record.
struct FileReader<T> {
    operator: String,
    format: FileFormat,
    splits: std::vec::IntoIter<Split>,
    current: Option<Open>,
    failure: Rc<RefCell<Option<WeirError>>>,
    _record: PhantomData<T>,
}

/// The split being read.
struct Open {
    path: PathBuf,
    start: u64,
    /// Newlines before `start`, counted when first needed.
    lines_before: Option<u64>,
    /// Lines of this split read so far (JSON Lines).
    lines_read: u64,
    lines: Lines,
}

enum Lines {
    Json(BufReader<std::io::Take<File>>),
    Csv {
        reader: csv::Reader<std::io::Take<File>>,
        headers: csv::StringRecord,
    },
}

impl Open {
    /// `file:line` of the `line`-th line (1-based) of this split.
    fn location(&mut self, line: u64) -> String {
        let before = match self.lines_before {
            Some(n) => n,
            None => {
                let n = newlines_before(&self.path, self.start).unwrap_or(0);
                self.lines_before = Some(n);
                n
            }
        };
        format!("{}:{}", self.path.display(), before + line)
    }
}

impl<T: DeserializeOwned> FileReader<T> {
    fn open(&self, split: Split) -> Result<Open, WeirError> {
        let io = |source| WeirError::Io {
            operator: self.operator.clone(),
            path: split.path.clone(),
            source,
        };
        let mut file = File::open(&split.path).map_err(io)?;
        file.seek(SeekFrom::Start(split.start)).map_err(io)?;
        let range = file.take(split.end - split.start);
        let lines = match self.format {
            FileFormat::JsonLines => Lines::Json(BufReader::with_capacity(256 * 1024, range)),
            FileFormat::Csv => {
                let headers = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .from_reader(File::open(&split.path).map_err(io)?)
                    .headers()
                    .map_err(|e| WeirError::BadRecord {
                        operator: self.operator.clone(),
                        location: format!("{}:1", split.path.display()),
                        reason: format!("cannot read the CSV header: {e}"),
                    })?
                    .clone();
                let reader = csv::ReaderBuilder::new()
                    .has_headers(split.start == 0)
                    .flexible(true)
                    .buffer_capacity(256 * 1024)
                    .from_reader(range);
                Lines::Csv { reader, headers }
            }
        };
        Ok(Open {
            path: split.path,
            start: split.start,
            lines_before: None,
            lines_read: 0,
            lines,
        })
    }

    /// Records a job failure and ends this reader.
    fn fail(&mut self, error: WeirError) -> Option<Result<T, DeadLetter>> {
        JobContext::fail(&self.failure, error);
        self.current = None;
        self.splits = Vec::new().into_iter();
        None
    }

    fn io_error(&self, path: &Path, source: std::io::Error) -> WeirError {
        WeirError::Io {
            operator: self.operator.clone(),
            path: path.to_path_buf(),
            source,
        }
    }
}

impl<T: DeserializeOwned> Iterator for FileReader<T> {
    type Item = Result<T, DeadLetter>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let split = self.splits.next()?;
                match self.open(split) {
                    Ok(open) => self.current = Some(open),
                    Err(e) => return self.fail(e),
                }
            }
            let operator = &self.operator;
            let open = self.current.as_mut().expect("opened above");
            let dead = |open: &mut Open, line: u64, reason: String, raw: String| DeadLetter {
                operator: operator.clone(),
                location: open.location(line),
                reason,
                raw,
            };
            match &mut open.lines {
                Lines::Json(reader) => {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => self.current = None,
                        Ok(_) => {
                            open.lines_read += 1;
                            let text = line.trim_ascii();
                            if text.is_empty() {
                                continue;
                            }
                            let n = open.lines_read;
                            return Some(serde_json::from_slice::<T>(text).map_err(|e| {
                                dead(
                                    open,
                                    n,
                                    e.to_string(),
                                    String::from_utf8_lossy(text).into_owned(),
                                )
                            }));
                        }
                        Err(e) => {
                            let path = open.path.clone();
                            let error = self.io_error(&path, e);
                            return self.fail(error);
                        }
                    }
                }
                Lines::Csv { reader, headers } => {
                    let mut record = csv::StringRecord::new();
                    match reader.read_record(&mut record) {
                        Ok(false) => self.current = None,
                        Ok(true) => {
                            let line = record.position().map_or(0, |p| p.line());
                            if record.len() == 1 && record[0].trim().is_empty() {
                                continue;
                            }
                            let raw = || record.iter().collect::<Vec<_>>().join(",");
                            if record.len() != headers.len() {
                                let names = headers.iter().collect::<Vec<_>>().join(",");
                                let reason = format!(
                                    "expected {} fields ({names}), found {}",
                                    headers.len(),
                                    record.len()
                                );
                                let raw = raw();
                                return Some(Err(dead(open, line, reason, raw)));
                            }
                            let decoded = record.deserialize::<T>(Some(headers));
                            return Some(decoded.map_err(|e| {
                                let raw = raw();
                                dead(open, line, e.to_string(), raw)
                            }));
                        }
                        Err(e) if e.is_io_error() => {
                            let path = open.path.clone();
                            let error = match e.into_kind() {
                                csv::ErrorKind::Io(source) => self.io_error(&path, source),
                                _ => unreachable!("checked is_io_error"),
                            };
                            return self.fail(error);
                        }
                        Err(e) => {
                            // Bad UTF-8 and the like: the reader has moved past the record.
                            let line = e.position().map_or(0, |p| p.line());
                            return Some(Err(dead(open, line, e.to_string(), String::new())));
                        }
                    }
                }
            }
        }
    }
}

impl<'s> Job<'s> {
    /// Reads JSON Lines from a file or a directory of files, decoding each line into `T`
    /// with serde. Malformed lines become [`DeadLetter`]s (see [`Job::dead_letters`]), or
    /// fail the job with `--fail-fast`.
    pub fn read_jsonl<T: Data + DeserializeOwned>(
        &mut self,
        op: impl Into<Op>,
        path: impl AsRef<Path>,
    ) -> DataStream<'s, T> {
        self.read_file(op.into(), path.as_ref(), FileFormat::JsonLines)
    }

    /// Reads CSV with a header line from a file or a directory of files; fields are matched
    /// to `T`'s fields by header name.
    pub fn read_csv<T: Data + DeserializeOwned>(
        &mut self,
        op: impl Into<Op>,
        path: impl AsRef<Path>,
    ) -> DataStream<'s, T> {
        self.read_file(op.into(), path.as_ref(), FileFormat::Csv)
    }

    fn read_file<T: Data + DeserializeOwned>(
        &mut self,
        op: Op,
        path: &Path,
        format: FileFormat,
    ) -> DataStream<'s, T> {
        let kind = match format {
            FileFormat::JsonLines => "source:jsonl",
            FileFormat::Csv => "source:csv",
        };
        let ctx: Rc<JobContext<'s>> = Rc::clone(&self.ctx);
        let failure = Rc::clone(&ctx.failure);
        let name = op.name.clone();
        let path = path.to_path_buf();
        let (handle, stream) = crate::source::drive(&ctx, &op, kind, |instance, instances| {
            let splits = input_files(&path)
                .map_err(|source| WeirError::Io {
                    operator: name.clone(),
                    path: path.clone(),
                    source,
                })
                .and_then(|files| plan_splits(&name, &files, instance, instances))
                .unwrap_or_else(|e| {
                    // A missing or unreadable input is a job error, not a bad record.
                    JobContext::fail(&failure, e);
                    Vec::new()
                });
            crate::source::IterSource(FileReader::<T> {
                operator: name.clone(),
                format,
                splits: splits.into_iter(),
                current: None,
                failure: Rc::clone(&failure),
                _record: PhantomData,
            })
        });
        let fail_fast = ctx.config.fail_fast;
        let failure = Rc::clone(&ctx.failure);
        let dead_count = Rc::clone(&handle.metrics);
        let (ok, err) =
            stream.ok_err::<Vec<T>, T, Vec<DeadLetter>, DeadLetter, _>(move |r| match r {
                Ok(x) => Ok(x),
                Err(dead) => {
                    dead_count.add_dead(1);
                    dead_count.remove_out(1);
                    if fail_fast {
                        JobContext::fail(
                            &failure,
                            WeirError::BadRecord {
                                operator: dead.operator.clone(),
                                location: dead.location.clone(),
                                reason: dead.reason.clone(),
                            },
                        );
                    }
                    Err(dead)
                }
            });
        if ctx.dead_letters_claimed.get() {
            ctx.fail_build(WeirError::Build {
                operator: handle.name.clone(),
                message: "file sources must be built before job.dead_letters() is called".into(),
            });
        }
        ctx.dead_letters
            .borrow_mut()
            .push((err, handle.node, Rc::clone(&handle.placement)));
        DataStream::from_parts(Rc::clone(&ctx), ok, handle.node, handle.placement)
    }
}
