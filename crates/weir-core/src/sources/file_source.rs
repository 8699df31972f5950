//! JSON Lines and CSV file sources: each instance reads its splits (see `file_input.rs`)
//! line by line, with a cap on the line length, and turns each line into a record or a
//! dead letter. Multi-line CSV (`read_csv_multiline`) reads whole files and joins the lines
//! of a record while a quoted field is open, with the same cap on the record.

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
use crate::sources::csv_line::{ends_in_quotes, CsvLine, QuoteScan};
use crate::sources::decoding_source::{split_dead_letters, Decoded};
use crate::sources::driver::{drive_dealt, Dealing};
use crate::sources::file_input::{
    file_order, input_files, plan_splits, plan_whole_files, restored_splits, NewlineCount, Split,
};
use crate::sources::line_reader::{Line, LineReader};
use crate::sources::source::{PullSource, Pulled};
use crate::state::snapshot::encode_part;
use crate::stream::{Data, DataStream};

/// Format of a file source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line.
    JsonLines,
    /// Comma-separated values with a header line naming the fields; one record per line.
    Csv,
    /// CSV whose quoted fields may hold newlines (RFC 4180): a record goes on over the next
    /// line while a quoted field is open. Each file is read whole by one instance.
    CsvMultiline,
}

impl FileFormat {
    /// Whether records are CSV (with a header line).
    fn is_csv(self) -> bool {
        matches!(self, FileFormat::Csv | FileFormat::CsvMultiline)
    }
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
    /// A multi-line CSV record, its lines joined (at most `max_line` bytes).
    record: Vec<u8>,
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
        if self.format.is_csv() {
            open.headers = Some(if split.start == 0 {
                // The split starts with the header: its first line(s).
                self.read_header(&mut open.lines, &open.locator.path, &mut open.lines_read)?
            } else {
                let path = &open.locator.path;
                let file = File::open(path).map_err(|e| io(path, e))?;
                let mut first = LineReader::new(file, 8 * 1024, self.max_line);
                self.read_header(&mut first, &open.locator.path, &mut 0)?
            });
        }
        Ok(open)
    }

    /// The CSV header: the first record of `lines` (an empty input has no fields); the lines
    /// it took are added to `lines_read`.
    fn read_header<R: Read>(
        &mut self,
        lines: &mut LineReader<R>,
        path: &Path,
        lines_read: &mut u64,
    ) -> Result<csv::ByteRecord, WeirError> {
        let bad = |reason: String| WeirError::BadRecord {
            operator: self.operator.clone(),
            location: format!("{}:1", path.display()),
            reason: format!("cannot read the CSV header: {reason}"),
        };
        let io = |source| WeirError::Io {
            operator: self.operator.clone(),
            path: path.to_path_buf(),
            source,
        };
        let text = match lines.next_line().map_err(io)? {
            Some(Line::Text(text)) => text,
            Some(Line::TooLong { len, .. }) => return Err(bad(too_long(len, self.max_line))),
            None => return Ok(csv::ByteRecord::new()),
        };
        *lines_read += 1;
        if !(self.format == FileFormat::CsvMultiline && ends_in_quotes(text)) {
            return Ok(self.csv.parse(text).clone());
        }
        self.record.clear();
        self.record.extend_from_slice(text);
        match join_open_record(lines, lines_read, &mut self.record, self.max_line).map_err(io)? {
            Ok(()) => Ok(self.csv.parse(&self.record).clone()),
            Err((reason, _)) => Err(bad(reason)),
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
        // The record's location: its first line.
        let first_line = *lines_read;
        let mut text = match line {
            Line::Text(text) => text,
            Line::TooLong { len, head } => {
                let reason = too_long(len, self.max_line);
                let at = locator.at(first_line, newlines);
                let dead = DeadLetter::with_raw_prefix(&self.operator, at, reason, head, len);
                return Ok(Step::Item(Err(Box::new(dead))));
            }
        };
        if self.format == FileFormat::CsvMultiline
            && memchr::memchr(b'"', text).is_some()
            && ends_in_quotes(text)
        {
            self.record.clear();
            self.record.extend_from_slice(text);
            let joined = join_open_record(lines, lines_read, &mut self.record, self.max_line)
                .map_err(|source| WeirError::Io {
                    operator: self.operator.clone(),
                    path: locator.path.clone(),
                    source,
                })?;
            if let Err((reason, len)) = joined {
                let at = locator.at(first_line, newlines);
                let head = &self.record[..self.record.len().min(DeadLetter::MAX_RAW_BYTES)];
                let dead = DeadLetter::with_raw_prefix(&self.operator, at, reason, head, len);
                return Ok(Step::Item(Err(Box::new(dead))));
            }
            text = &self.record;
        }
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
                locator.at(first_line, newlines),
                reason,
                raw,
            ))
        })))
    }
}

/// How the lines after a CSV line that left a quoted field open ended its record.
#[derive(Debug, PartialEq, Eq)]
enum Joined {
    /// The field closed: the whole record is in the buffer.
    Whole,
    /// The record has this many bytes, over the cap; the buffer holds its first bytes. An
    /// over-long line inside the record ends it (it is skipped unread).
    TooLong(u64),
    /// The input ended with the field open.
    Unclosed,
}

/// Reads the lines that continue `record` (one or more lines whose quoted field is still
/// open) until the field closes, joining them with `\n` (a `\r\n` inside quotes is read as
/// `\n`). The record keeps at most `max` bytes; the lines read are added to `lines_read`.
fn join_record<R: Read>(
    lines: &mut LineReader<R>,
    lines_read: &mut u64,
    record: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Joined> {
    let mut scan = QuoteScan::new().line(record);
    let mut len = record.len() as u64;
    loop {
        let Some(line) = lines.next_line()? else {
            return Ok(Joined::Unclosed);
        };
        *lines_read += 1;
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong { len: more, .. } => return Ok(Joined::TooLong(len + 1 + more)),
        };
        len += 1 + text.len() as u64;
        if len <= max as u64 {
            record.push(b'\n');
            record.extend_from_slice(text);
        }
        scan = scan.line(text);
        if !scan.is_open() {
            return Ok(if len <= max as u64 {
                Joined::Whole
            } else {
                Joined::TooLong(len)
            });
        }
    }
}

/// [`join_record`], with what it ended in told as a dead letter's reason and the record's
/// length in bytes when the record is not whole.
fn join_open_record<R: Read>(
    lines: &mut LineReader<R>,
    lines_read: &mut u64,
    record: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Result<(), (String, u64)>> {
    Ok(match join_record(lines, lines_read, record, max)? {
        Joined::Whole => Ok(()),
        Joined::TooLong(len) => Err((record_too_long(len, max), len)),
        Joined::Unclosed => Err((UNCLOSED_AT_END.to_string(), record.len() as u64)),
    })
}

/// Why a multi-line CSV record that the input ends inside is a dead letter.
const UNCLOSED_AT_END: &str = "a quoted field is still open at the end of the file";

/// The reason of a dead letter for a multi-line CSV record over the cap.
fn record_too_long(len: u64, max: usize) -> String {
    format!("CSV record of {len} bytes exceeds the limit of {max} bytes")
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
    /// to `T`'s fields by header name. A record is one line: files are split between the
    /// instances at line starts, and a line that leaves a quoted field open is a dead letter
    /// (read such files with [`Job::read_csv_multiline`]).
    pub fn read_csv<T: Data + DeserializeOwned>(
        &mut self,
        op: impl Into<Op>,
        path: impl AsRef<Path>,
    ) -> DataStream<'s, T> {
        self.read_file(op.into(), path.as_ref(), FileFormat::Csv)
    }

    /// Reads CSV whose quoted fields may hold newlines (RFC 4180), with a header line, from
    /// a file or a directory of files. A record goes on over the next line while a quoted
    /// field is open (a `\r\n` inside quotes is read as `\n`), up to
    /// [`Config::max_line_bytes`](crate::Config::max_line_bytes) in all; its dead letters
    /// name its first line. A line start inside a file cannot be told from a line inside a
    /// quoted field, so each file is read whole by one instance (file `k` by instance
    /// `k % parallelism`): the instances share a directory of files, not one file.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    ///
    /// #[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
    /// struct Note {
    ///     id: u64,
    ///     text: String,
    /// }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("notes.csv");
    /// std::fs::write(&path, "id,text\n1,\"two\nlines\"\n2,one line\n").unwrap();
    /// let notes = Collector::new();
    /// let sink = notes.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.read_csv_multiline::<Note>("notes", &path)
    ///         .map("text", |n| (n.id, n.text))
    ///         .collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(
    ///     notes.sorted(),
    ///     vec![(1, "two\nlines".to_string()), (2, "one line".to_string())]
    /// );
    /// ```
    pub fn read_csv_multiline<T: Data + DeserializeOwned>(
        &mut self,
        op: impl Into<Op>,
        path: impl AsRef<Path>,
    ) -> DataStream<'s, T> {
        self.read_file(op.into(), path.as_ref(), FileFormat::CsvMultiline)
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
            FileFormat::CsvMultiline => "source:csv_multiline",
        };
        let ctx: Rc<JobContext<'s>> = Rc::clone(&self.ctx);
        let failure = Rc::clone(&ctx.failure);
        let name = op.name.clone();
        let path = path.to_path_buf();
        let max_line = ctx.config.max_line_bytes;
        let block = ctx.config.file_block_bytes;
        let reader = |instance, instances, restored: Option<Vec<Vec<u8>>>| {
            let splits = match restored {
                // The rest of the splits in the checkpoint: this instance's own, or at another
                // parallelism its share in file order.
                Some(splits) => restored_splits(&name, &splits).unwrap_or_else(|e| {
                    JobContext::fail(&failure, e);
                    Vec::new()
                }),
                None => {
                    let whole_files = format == FileFormat::CsvMultiline;
                    instance_splits(&name, &path, (instance, instances), block, whole_files)
                        .unwrap_or_else(|e| {
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
                record: Vec::new(),
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
/// blocks of at most `block` bytes, or whole files.
/// Instance 0 warns when `path` is a directory without input files.
fn instance_splits(
    operator: &str,
    path: &Path,
    (instance, instances): (usize, usize),
    block: u64,
    whole_files: bool,
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
    if whole_files {
        plan_whole_files(operator, &files, instance, instances)
    } else {
        plan_splits(operator, &files, instance, instances, block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Note {
        id: u64,
        text: String,
    }

    fn reader(splits: Vec<Split>) -> FileReader<Note> {
        FileReader {
            operator: "read".into(),
            format: FileFormat::CsvMultiline,
            max_line: 1 << 20,
            splits: splits.into_iter(),
            current: None,
            csv: CsvLine::new(),
            record: Vec::new(),
            newlines: NewlineCount::default(),
            failure: Rc::default(),
            _record: PhantomData,
        }
    }

    /// A checkpoint taken after each multi-line record resumes at the next record: the
    /// position is where the record's last line ends, not where its first one does.
    #[test]
    fn a_multi_line_record_moves_the_position_past_all_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.csv");
        let text = "id,text\n1,\"a\nb\"\n2,\"c\r\n\nd\"\n3,e\n4,\"f\ng\"\n";
        std::fs::write(&path, text).unwrap();
        let whole = plan_whole_files("read", std::slice::from_ref(&path), 0, 1).unwrap();
        let all: Vec<Note> = reader(whole.clone()).map(|d| d.unwrap()).collect();
        let texts: Vec<&str> = all.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["a\nb", "c\n\nd", "e", "f\ng"]);
        for taken in 1..=all.len() {
            let mut first = reader(whole.clone());
            let head: Vec<Note> = first.by_ref().take(taken).map(|d| d.unwrap()).collect();
            let rest = first.remaining_splits().unwrap();
            let tail: Vec<Note> = reader(rest).map(|d| d.unwrap()).collect();
            assert_eq!(head.len() + tail.len(), all.len(), "after {taken}");
            assert_eq!(
                head.iter().chain(&tail).collect::<Vec<_>>(),
                all.iter().collect::<Vec<_>>()
            );
        }
        // Another instance of two gets no file.
        assert!(plan_whole_files("read", &[path], 1, 2).unwrap().is_empty());
    }
}
