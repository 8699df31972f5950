//! JSON Lines and CSV file sources, split across instances by file and by byte range.
//!
//! A source with `n` instances reads, in every input file, the byte range
//! `[i * len / n, (i + 1) * len / n)` widened to whole lines (a line belongs to the range
//! its first byte is in), so every line is read exactly once whatever `n` is.

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

/// 1-based line number of the line starting at `offset` (counted only when reporting errors).
fn line_number(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    let mut reader = BufReader::new(file.take(offset));
    let mut buf = [0u8; 64 * 1024];
    let mut lines = 1;
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(n) => lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64,
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

/// Reads the records of one instance's splits; yields decoded records or dead letters.
struct FileReader<T> {
    operator: String,
    format: FileFormat,
    splits: std::vec::IntoIter<Split>,
    current: Option<Open>,
    failed: Option<WeirError>,
    _record: PhantomData<T>,
}

struct Open {
    path: PathBuf,
    /// Absolute offset of the next line.
    offset: u64,
    lines: Lines,
}

enum Lines {
    Json(BufReader<std::io::Take<File>>),
    Csv {
        reader: csv::Reader<std::io::Take<File>>,
        headers: csv::StringRecord,
        base: u64,
    },
}

impl<T: DeserializeOwned> FileReader<T> {
    fn open(&self, split: Split) -> Result<Open, WeirError> {
        let io = |source| WeirError::Io {
            operator: self.operator.clone(),
            path: split.path.clone(),
            source,
        };
        let mut file = File::open(&split.path).map_err(io)?;
        let lines = match self.format {
            FileFormat::JsonLines => {
                file.seek(SeekFrom::Start(split.start)).map_err(io)?;
                Lines::Json(BufReader::with_capacity(
                    256 * 1024,
                    file.take(split.end - split.start),
                ))
            }
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
                file.seek(SeekFrom::Start(split.start)).map_err(io)?;
                let reader = csv::ReaderBuilder::new()
                    .has_headers(split.start == 0)
                    .flexible(true)
                    .buffer_capacity(256 * 1024)
                    .from_reader(file.take(split.end - split.start));
                Lines::Csv {
                    reader,
                    headers,
                    base: split.start,
                }
            }
        };
        Ok(Open {
            path: split.path,
            offset: split.start,
            lines,
        })
    }
}

fn dead(operator: &str, path: &Path, offset: u64, reason: String, raw: String) -> DeadLetter {
    DeadLetter {
        operator: operator.to_string(),
        location: format!("{}:{}", path.display(), line_number(path, offset)),
        reason,
        raw,
    }
}

impl<T: DeserializeOwned> Iterator for FileReader<T> {
    type Item = Result<T, DeadLetter>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.failed.take() {
            // An I/O error (not a bad record) is reported once as a dead letter naming the
            // file; the rest of that split cannot be read.
            return Some(Err(DeadLetter {
                operator: self.operator.clone(),
                location: String::new(),
                reason: error.to_string(),
                raw: String::new(),
            }));
        }
        loop {
            if self.current.is_none() {
                let split = self.splits.next()?;
                match self.open(split) {
                    Ok(open) => self.current = Some(open),
                    Err(e) => {
                        self.failed = Some(e);
                        return self.next();
                    }
                }
            }
            let operator = &self.operator;
            let open = self.current.as_mut().expect("opened above");
            match &mut open.lines {
                Lines::Json(reader) => {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => {
                            self.current = None;
                            continue;
                        }
                        Ok(n) => {
                            let at = open.offset;
                            open.offset += n as u64;
                            let text = line.trim_ascii();
                            if text.is_empty() {
                                continue;
                            }
                            return Some(serde_json::from_slice::<T>(text).map_err(|e| {
                                dead(
                                    operator,
                                    &open.path,
                                    at,
                                    e.to_string(),
                                    String::from_utf8_lossy(text).into_owned(),
                                )
                            }));
                        }
                        Err(e) => {
                            let (path, at) = (open.path.clone(), open.offset);
                            self.current = None;
                            return Some(Err(dead(
                                &self.operator,
                                &path,
                                at,
                                format!("read error: {e}"),
                                String::new(),
                            )));
                        }
                    }
                }
                Lines::Csv {
                    reader,
                    headers,
                    base,
                } => {
                    let mut record = csv::StringRecord::new();
                    let at = *base + reader.position().byte();
                    match reader.read_record(&mut record) {
                        Ok(false) => {
                            self.current = None;
                            continue;
                        }
                        Ok(true) => {
                            let at = record.position().map(|p| *base + p.byte()).unwrap_or(at);
                            if record.len() == 1 && record[0].trim().is_empty() {
                                continue;
                            }
                            let raw = || record.iter().collect::<Vec<_>>().join(",");
                            if record.len() != headers.len() {
                                let reason = format!(
                                    "expected {} fields ({}), found {}",
                                    headers.len(),
                                    headers.iter().collect::<Vec<_>>().join(","),
                                    record.len()
                                );
                                let (path, raw) = (open.path.clone(), raw());
                                return Some(Err(dead(&self.operator, &path, at, reason, raw)));
                            }
                            return Some(record.deserialize::<T>(Some(headers)).map_err(|e| {
                                dead(operator, &open.path, at, e.to_string(), raw())
                            }));
                        }
                        Err(e) => {
                            let path = open.path.clone();
                            return Some(Err(dead(
                                &self.operator,
                                &path,
                                at,
                                e.to_string(),
                                String::new(),
                            )));
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
            let (splits, failed) = match input_files(&path)
                .map_err(|source| WeirError::Io {
                    operator: name.clone(),
                    path: path.clone(),
                    source,
                })
                .and_then(|files| plan_splits(&name, &files, instance, instances))
            {
                Ok(splits) => (splits, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            if let Some(e) = failed {
                // A missing input is a job error, not a bad record.
                JobContext::fail(&failure, e);
            }
            FileReader::<T> {
                operator: name.clone(),
                format,
                splits: splits.into_iter(),
                current: None,
                failed: None,
                _record: PhantomData,
            }
        });
        let fail_fast = ctx.config.fail_fast;
        let failure = Rc::clone(&ctx.failure);
        let dead_count = Rc::clone(&handle.metrics);
        let (ok, err) =
            stream.ok_err::<Vec<T>, T, Vec<DeadLetter>, DeadLetter, _>(move |r| match r {
                Ok(x) => Ok(x),
                Err(dead) => {
                    dead_count.add_dead(1);
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
        ctx.dead_letters.borrow_mut().push(err);
        DataStream::from_parts(Rc::clone(&ctx), ok, handle.node, handle.placement)
    }
}
