//! File sinks that commit with the job's checkpoints (exactly-once output).
//!
//! In a job that checkpoints, an instance writes the records of each checkpoint interval
//! to a file of its own, named after the checkpoint that will cover it:
//! `part-{instance:05}-{checkpoint:08}.EXT.inprogress`. When checkpoint `k` is taken the
//! instance closes (flushes and fsyncs) its file for `k`; when the checkpoint's manifest is
//! written (the commit), every file for a checkpoint up to `k` is renamed to its final name
//! and becomes visible. A run that fails leaves in-progress files: the next run restores
//! checkpoint `k`, renames the files up to `k` (their commit may have been cut short) and
//! removes the later ones, whose records the sources read again. The last files of a job are
//! committed by its final manifest. A single-file sink does the same with chunks
//! `PATH.chunk-{checkpoint:08}`, put together into `PATH` by the final commit.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::WeirError;
use crate::job::Epoch;
use crate::sinks::output_dir::PartDir;
use crate::state::snapshot::StatePart;
use crate::state::{Barrier, Checkpointed, StateError};

/// Writes a batch of records; the flag says whether they are the first of their file.
pub(crate) type Encoder<T> = fn(&mut BufWriter<File>, &[T], bool) -> std::io::Result<()>;

const IN_PROGRESS: &str = ".inprogress";

/// How the files of one sink instance are named.
#[derive(Clone, Debug)]
pub(crate) enum Naming {
    /// `DIR/part-{instance:05}-{checkpoint:08}.EXT`, one file per checkpoint interval.
    Parts {
        dir: PathBuf,
        extension: &'static str,
        instance: usize,
    },
    /// `PATH.chunk-{checkpoint:08}`, put together into `PATH` at the end.
    Single { path: PathBuf },
}

impl Naming {
    fn final_path(&self, checkpoint: u64) -> PathBuf {
        match self {
            Naming::Parts {
                dir,
                extension,
                instance,
            } => dir.join(format!("part-{instance:05}-{checkpoint:08}.{extension}")),
            Naming::Single { path } => {
                let mut name = path.as_os_str().to_owned();
                name.push(format!(".chunk-{checkpoint:08}"));
                name.into()
            }
        }
    }

    /// The directory the files are in, and the checkpoint of a name of this sink's files
    /// (any instance's), with whether it is still in progress.
    fn parse(&self, name: &str) -> Option<(u64, bool)> {
        let (rest, in_progress) = match name.strip_suffix(IN_PROGRESS) {
            Some(r) => (r, true),
            None => (name, false),
        };
        let digits = match self {
            Naming::Parts { extension, .. } => {
                let body = rest
                    .strip_prefix("part-")?
                    .strip_suffix(extension)?
                    .strip_suffix('.')?;
                let (instance, checkpoint) = body.split_once('-')?;
                instance.parse::<usize>().ok()?;
                checkpoint
            }
            Naming::Single { path } => {
                let file = path.file_name()?.to_str()?;
                rest.strip_prefix(file)?.strip_prefix(".chunk-")?
            }
        };
        (digits.len() == 8).then_some(())?;
        Some((digits.parse().ok()?, in_progress))
    }

    fn dir(&self) -> PathBuf {
        match self {
            Naming::Parts { dir, .. } => dir.clone(),
            Naming::Single { path } => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        }
    }
}

fn in_progress(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(IN_PROGRESS);
    name.into()
}

/// One sink instance's files (see the [module documentation](self)).
pub(crate) struct TwoPhaseFiles<T> {
    operator: String,
    naming: Naming,
    encode: Encoder<T>,
    /// The checkpoint the records being written now will belong to.
    interval: u64,
    writer: Option<BufWriter<File>>,
    written_in_file: u64,
    /// Files closed and waiting for their checkpoint's commit.
    closed: Vec<u64>,
    /// Output already there when the job started, checked once (a fresh start only).
    output: Option<PartDir>,
    cleaner: bool,
    applied_below: Rc<Cell<Epoch>>,
}

impl<T> TwoPhaseFiles<T> {
    pub(crate) fn new(
        operator: String,
        naming: Naming,
        encode: Encoder<T>,
        first_interval: u64,
        output: Option<(PartDir, bool)>,
    ) -> Self {
        let (output, cleaner) = match output {
            Some((dir, cleaner)) => (Some(dir), cleaner),
            None => (None, false),
        };
        TwoPhaseFiles {
            operator,
            naming,
            encode,
            interval: first_interval,
            writer: None,
            written_in_file: 0,
            closed: Vec::new(),
            output,
            cleaner,
            applied_below: Rc::new(Cell::new(0)),
        }
    }

    pub(crate) fn set_progress_cell(&mut self, cell: Rc<Cell<Epoch>>) {
        self.applied_below = cell;
    }

    fn io(&self, path: &Path, source: std::io::Error) -> WeirError {
        WeirError::Io {
            operator: self.operator.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, WeirError> {
        if self.writer.is_none() {
            let path = in_progress(&self.naming.final_path(self.interval));
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| self.io(parent, e))?;
            }
            let file = File::create(&path).map_err(|e| self.io(&path, e))?;
            self.writer = Some(BufWriter::with_capacity(256 * 1024, file));
            self.written_in_file = 0;
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }

    pub(crate) fn write(&mut self, batch: &[T]) -> Result<(), WeirError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (encode, first) = (self.encode, self.written_in_file == 0);
        let result = encode(self.writer()?, batch, first);
        self.written_in_file += batch.len() as u64;
        let path = in_progress(&self.naming.final_path(self.interval));
        result.map_err(|e| self.io(&path, e))
    }

    /// Flushes and fsyncs the open file, which then waits for its checkpoint's commit.
    fn close(&mut self) -> Result<(), WeirError> {
        if let Some(mut w) = self.writer.take() {
            let path = in_progress(&self.naming.final_path(self.interval));
            w.flush()
                .and_then(|_| w.get_ref().sync_all())
                .map_err(|e| self.io(&path, e))?;
            self.closed.push(self.interval);
        }
        Ok(())
    }

    /// The input is complete: the last file waits for the final commit.
    pub(crate) fn finish(&mut self) -> Result<(), WeirError> {
        self.close()
    }

    pub(crate) fn applied(&self, below: Epoch) {
        self.applied_below.set(below);
    }

    /// Renames the closed files of checkpoints up to `checkpoint`.
    fn commit(&mut self, checkpoint: u64) -> Result<(), WeirError> {
        let (due, later): (Vec<u64>, Vec<u64>) =
            self.closed.iter().partition(|c| **c <= checkpoint);
        for c in due {
            let path = self.naming.final_path(c);
            std::fs::rename(in_progress(&path), &path).map_err(|e| self.io(&path, e))?;
        }
        self.closed = later;
        if matches!(self.naming, Naming::Single { .. }) && self.finished_single(checkpoint) {
            self.assemble_single()?;
        }
        Ok(())
    }

    fn finished_single(&self, checkpoint: u64) -> bool {
        // The final commit covers the interval the instance was in when its input ended.
        self.writer.is_none() && self.closed.is_empty() && checkpoint >= self.interval
    }

    /// Puts the chunks of a single-file sink together into its file (final commit only; a
    /// crash in between is redone by the restore, since the chunks are removed last).
    fn assemble_single(&self) -> Result<(), WeirError> {
        let Naming::Single { path } = &self.naming else {
            return Ok(());
        };
        let mut chunks = self.files_of_sink()?;
        chunks.retain(|(_, _, in_progress)| !in_progress);
        if chunks.is_empty() {
            return Ok(());
        }
        chunks.sort_by_key(|(c, _, _)| *c);
        let tmp = in_progress(path);
        {
            let mut out = BufWriter::new(File::create(&tmp).map_err(|e| self.io(&tmp, e))?);
            for (_, chunk, _) in &chunks {
                let mut f = File::open(chunk).map_err(|e| self.io(chunk, e))?;
                std::io::copy(&mut f, &mut out).map_err(|e| self.io(chunk, e))?;
            }
            out.flush()
                .and_then(|_| out.get_ref().sync_all())
                .map_err(|e| self.io(&tmp, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| self.io(path, e))?;
        for (_, chunk, _) in chunks {
            let _ = std::fs::remove_file(chunk);
        }
        Ok(())
    }

    /// This sink's files in its directory (of every instance): checkpoint, path, in progress.
    fn files_of_sink(&self) -> Result<Vec<(u64, PathBuf, bool)>, WeirError> {
        let dir = self.naming.dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io(&dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if let Some((c, in_progress)) = self.naming.parse(name) {
                    files.push((c, entry.path(), in_progress));
                }
            }
        }
        Ok(files)
    }

    /// Before the job starts: the files of checkpoints up to `restored` are finished (their
    /// commit may have been cut short), later ones removed; a fresh start checks the output
    /// as a sink without checkpoints does.
    fn prepare(&mut self, restored: u64) -> Result<(), WeirError> {
        for (c, path, in_progress) in self.files_of_sink()? {
            if !in_progress {
                continue;
            }
            let done = self.naming.final_path_of(&path);
            let result = if c <= restored && restored > 0 {
                std::fs::rename(&path, &done)
            } else {
                std::fs::remove_file(&path)
            };
            match result {
                // Another instance got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.map_err(|e| self.io(&path, e))?,
            }
        }
        if restored == 0 {
            if let Some(output) = &self.output {
                output.prepare(usize::MAX, self.cleaner)?;
            }
        }
        Ok(())
    }
}

impl Naming {
    /// The final path of an in-progress file's path.
    fn final_path_of(&self, path: &Path) -> PathBuf {
        let text = path.as_os_str().to_string_lossy();
        PathBuf::from(text.strip_suffix(IN_PROGRESS).unwrap_or(&text).to_string())
    }
}

/// A two-phase sink instance shared between its operator and the checkpoint protocol.
pub(crate) struct SharedFiles<T>(pub(crate) Rc<RefCell<TwoPhaseFiles<T>>>);

impl<T> Checkpointed for SharedFiles<T> {
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError> {
        let checkpoint = barrier.checkpoint;
        let mut files = self.0.borrow_mut();
        files
            .close()
            .map_err(|e| StateError::Encode(e.to_string()))?;
        // What follows belongs to the next checkpoint.
        files.interval = checkpoint + 1;
        Ok(StatePart::Instance(Vec::new()))
    }

    fn committed(&self, checkpoint: u64) -> Result<(), StateError> {
        self.0
            .borrow_mut()
            .commit(checkpoint)
            .map_err(|e| StateError::Encode(e.to_string()))
    }

    fn prepare(&self, restored: u64) -> Result<(), StateError> {
        self.0
            .borrow_mut()
            .prepare(restored)
            .map_err(|e| StateError::Encode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_checkpoint() {
        let parts = Naming::Parts {
            dir: "out".into(),
            extension: "jsonl",
            instance: 3,
        };
        assert_eq!(
            parts.final_path(7),
            Path::new("out/part-00003-00000007.jsonl")
        );
        assert_eq!(
            parts.parse("part-00009-00000007.jsonl.inprogress"),
            Some((7, true))
        );
        assert_eq!(parts.parse("part-00003-00000007.jsonl"), Some((7, false)));
        assert_eq!(parts.parse("part-00003.jsonl"), None);
        assert_eq!(parts.parse("part-00003-7.jsonl"), None);
        let single = Naming::Single {
            path: "out/errors.jsonl".into(),
        };
        assert_eq!(
            single.final_path(2),
            Path::new("out/errors.jsonl.chunk-00000002")
        );
        assert_eq!(
            single.parse("errors.jsonl.chunk-00000002.inprogress"),
            Some((2, true))
        );
        assert_eq!(single.parse("other.jsonl.chunk-00000002"), None);
    }
}
