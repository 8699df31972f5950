//! JSON Lines and CSV file sources: each instance reads its splits (see `file_input.rs`)
//! line by line, with a cap on the line length, and turns each line into a record or a
//! dead letter.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::de::DeserializeOwned;

use crate::dead_letter::DeadLetter;
use crate::error::WeirError;
use crate::job::{Job, JobContext, Op};
use crate::sources::csv_line::CsvLine;
use crate::sources::decoding_source::{split_dead_letters, Decoded};
use crate::sources::driver::{drive_dealt, Dealing};
use crate::sources::file_input::{file_order, input_files, plan_splits, NewlineCount, Split};
use crate::sources::line_reader::{Line, LineReader};
use crate::sources::source::{PullSource, Pulled};
use crate::state::snapshot::{decode_part, encode_part};
use crate::stream::{Data, DataStream};

/// Format of a file source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line.
    JsonLines,
    /// Comma-separated values with a header line naming the fields; one record per line.
    Csv,
}

/// Read buffer of a split.
const READ_BUFFER: usize = 64 * 1024;

/// Reads the records of one instance's splits; yields decoded records, or dead letters for
/// lines that do not decode or are too long. An I/O error fails the job (through
/// `failure`) and ends the reader: it is not a property of one record.
struct FileReader<T> {
    operator: String,
    format: FileFormat,
    max_line: usize,
    splits: std::vec::IntoIter<Split>,
    current: Option<Open>,
    csv: CsvLine,
    /// Newlines counted so far, to locate dead letters.
    newlines: NewlineCount,
    failure: Rc<RefCell<Option<WeirError>>>,
    _record: PhantomData<T>,
}

/// The split being read.
struct Open {
    /// Where the split ends (its start is in `locator`).
    end: u64,
    locator: Locator,
    /// Lines of this split read so far.
    lines_read: u64,
    lines: LineReader<std::io::Take<File>>,
    /// The CSV header (CSV only).
    headers: Option<csv::ByteRecord>,
}

/// Turns a line number within a split into `file:line`.
struct Locator {
    path: PathBuf,
    start: u64,
    /// Newlines before `start`, counted when first needed.
    lines_before: Option<u64>,
}

impl Locator {
    /// `file:line` of the `line`-th line (1-based) of this split.
    fn at(&mut self, line: u64, newlines: &mut NewlineCount) -> String {
        let before = *self.lines_before.get_or_insert_with(|| {
            newlines.before(&self.path, self.start).unwrap_or_else(|e| {
                tracing::warn!(
                    "cannot count the lines of {} before byte {}: {e}",
                    self.path.display(),
                    self.start
                );
                0
            })
        });
        format!("{}:{}", self.path.display(), before + line)
    }
}

impl<T: DeserializeOwned> FileReader<T> {
    fn open(&mut self, split: Split) -> Result<Open, WeirError> {
        let operator = self.operator.clone();
        let io = |path: &Path, source| WeirError::Io {
            operator: operator.clone(),
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(&split.path).map_err(|e| io(&split.path, e))?;
        if split.start > 0 {
            file.seek(SeekFrom::Start(split.start))
                .map_err(|e| io(&split.path, e))?;
        }
        let range = file.take(split.end - split.start);
        let mut open = Open {
            end: split.end,
            locator: Locator {
                path: split.path,
                start: split.start,
                lines_before: None,
            },
            lines_read: 0,
            lines: LineReader::new(range, READ_BUFFER, self.max_line),
            headers: None,
        };
        if self.format == FileFormat::Csv {
            open.headers = Some(if split.start == 0 {
                // The split starts with the header: it is line 1.
                open.lines_read = 1;
                self.read_header(&mut open.lines, &open.locator.path)?
            } else {
                let path = &open.locator.path;
                let file = File::open(path).map_err(|e| io(path, e))?;
                let mut first = LineReader::new(file, 8 * 1024, self.max_line);
                self.read_header(&mut first, &open.locator.path)?
            });
        }
        Ok(open)
    }

    /// The CSV header: the first line of `lines` (an empty input has no fields).
    fn read_header<R: Read>(
        &mut self,
        lines: &mut LineReader<R>,
        path: &Path,
    ) -> Result<csv::ByteRecord, WeirError> {
        let bad = |reason: String| WeirError::BadRecord {
            operator: self.operator.clone(),
            location: format!("{}:1", path.display()),
            reason: format!("cannot read the CSV header: {reason}"),
        };
        match lines.next_line() {
            Ok(Some(Line::Text(text))) => Ok(self.csv.parse(text).clone()),
            Ok(Some(Line::TooLong { len, .. })) => Err(bad(too_long(len, self.max_line))),
            Ok(None) => Ok(csv::ByteRecord::new()),
            Err(source) => Err(WeirError::Io {
                operator: self.operator.clone(),
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Records a job failure and ends this reader.
    fn fail(&mut self, error: WeirError) -> Option<Decoded<T>> {
        JobContext::fail(&self.failure, error);
        self.current = None;
        self.splits = Vec::new().into_iter();
        None
    }

    /// What the next line of the open split gives.
    fn next_in_split(&mut self) -> Result<Step<T>, WeirError> {
        let newlines = &mut self.newlines;
        let open = self.current.as_mut().expect("a split is open");
        let Open {
            locator,
            lines_read,
            lines,
            headers,
            ..
        } = open;
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(Step::End),
            Err(source) => {
                return Err(WeirError::Io {
                    operator: self.operator.clone(),
                    path: locator.path.clone(),
                    source,
                })
            }
        };
        *lines_read += 1;
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong { len, head } => {
                let reason = too_long(len, self.max_line);
                let at = locator.at(*lines_read, newlines);
                let dead = DeadLetter::with_raw_prefix(&self.operator, at, reason, head, len);
                return Ok(Step::Item(Err(Box::new(dead))));
            }
        };
        // A UTF-8 byte-order mark (some editors start a file with one) is not part of the JSON.
        let trimmed = text
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(text)
            .trim_ascii();
        if trimmed.is_empty() {
            return Ok(Step::Blank);
        }
        let decoded = match headers {
            None => serde_json::from_slice::<T>(trimmed).map_err(|e| (e.to_string(), trimmed)),
            Some(headers) => self.csv.decode::<T>(text, headers).map_err(|e| (e, text)),
        };
        Ok(Step::Item(decoded.map_err(|(reason, raw)| {
            Box::new(DeadLetter::new(
                &self.operator,
                locator.at(*lines_read, newlines),
                reason,
                raw,
            ))
        })))
    }
}

/// What one line of a split gives.
enum Step<T> {
    /// A record, or a dead letter.
    Item(Decoded<T>),
    /// Nothing: a blank line.
    Blank,
    /// The split is exhausted.
    End,
}

/// The reason of a dead letter for a line over the cap.
fn too_long(len: u64, max: usize) -> String {
    format!("line of {len} bytes exceeds the limit of {max} bytes")
}

impl<T: DeserializeOwned> FileReader<T> {
    /// What remains: the rest of the open split (from the line after the last one read)
    /// and the splits not opened yet. `None` if one is a stream, which cannot be resumed.
    fn remaining_splits(&self) -> Option<Vec<Split>> {
        let mut rest = Vec::new();
        if let Some(open) = &self.current {
            let start = open.locator.start + open.lines.position();
            if start < open.end {
                rest.push(Split {
                    path: open.locator.path.clone(),
                    start,
                    end: open.end,
                });
            }
        }
        rest.extend(self.splits.as_slice().iter().cloned());
        (!rest.iter().any(|s| s.end == u64::MAX)).then_some(rest)
    }
}

impl<T: DeserializeOwned + 'static> PullSource<Decoded<T>> for FileReader<T> {
    fn pull(&mut self) -> Pulled<Decoded<T>> {
        match self.next() {
            Some(item) => Pulled::Record(item),
            None => Pulled::Done,
        }
    }

    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        self.remaining_splits()?
            .iter()
            .map(|s| encode_part(s).ok())
            .collect()
    }
}

impl<T: DeserializeOwned> Iterator for FileReader<T> {
    type Item = Decoded<T>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let split = self.splits.next()?;
                match self.open(split) {
                    Ok(open) => self.current = Some(open),
                    Err(e) => return self.fail(e),
                }
            }
            match self.next_in_split() {
                Ok(Step::Item(item)) => return Some(item),
                Ok(Step::Blank) => {}
                Ok(Step::End) => self.current = None,
                Err(e) => return self.fail(e),
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
        let max_line = ctx.config.max_line_bytes;
        let block = ctx.config.file_block_bytes;
        let reader = |instance, instances, restored: Option<Vec<Vec<u8>>>| {
            let splits = match restored {
                // The rest of the splits in the checkpoint (this crate's own encoding): this
                // instance's own, or at another parallelism its share in file order.
                Some(splits) => splits
                    .iter()
                    .filter_map(|s| decode_part::<Split>(s).ok())
                    .collect(),
                None => {
                    instance_splits(&name, &path, instance, instances, block).unwrap_or_else(|e| {
                        // A missing or unreadable input is a job error, not a bad record.
                        JobContext::fail(&failure, e);
                        Vec::new()
                    })
                }
            };
            FileReader::<T> {
                operator: name.clone(),
                format,
                max_line,
                splits: splits.into_iter(),
                current: None,
                csv: CsvLine::new(),
                newlines: NewlineCount::default(),
                failure: Rc::clone(&failure),
                _record: PhantomData,
            }
        };
        let dealing = Dealing::Ordered(file_order);
        let (handle, stream) = drive_dealt(&ctx, &op, kind, dealing, reader);
        split_dead_letters(&ctx, handle, stream, "file sources")
    }
}

/// The splits of instance `instance` of `instances` of source `operator` reading `path`, in
/// blocks of at most `block` bytes.
/// Instance 0 warns when `path` is a directory without input files.
fn instance_splits(
    operator: &str,
    path: &Path,
    instance: usize,
    instances: usize,
    block: u64,
) -> Result<Vec<Split>, WeirError> {
    let files = input_files(path).map_err(|source| WeirError::Io {
        operator: operator.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if files.is_empty() && instance == 0 {
        tracing::warn!(
            "{operator}: input directory {} holds no input files, so the source reads \
             nothing (directories are read recursively; names starting with `.` or `_` and \
             ending in `.inprogress` are skipped)",
            path.display()
        );
    }
    plan_splits(operator, &files, instance, instances, block)
}
