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
//! `PATH.chunk-{checkpoint:08}`, put together into `PATH` by the final commit: into
//! `PATH.assembled-{checkpoint:08}` first, then the chunks are removed, then it is renamed to
//! `PATH`, so that a crash at any point leaves either every chunk or the whole file.
//!
//! Committed files of checkpoints after the restored one (a checkpoint whose manifest was
//! discarded, its output renamed already) are removed when the job starts: the sources read
//! their records again.

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
const ASSEMBLED: &str = ".assembled-";

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

    /// `PATH.assembled-{checkpoint:08}` of a single-file sink.
    fn assembled_path(path: &Path, checkpoint: u64) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!("{ASSEMBLED}{checkpoint:08}"));
        name.into()
    }

    /// The checkpoint of a name of this single-file sink's assembled file.
    fn parse_assembled(&self, name: &str) -> Option<u64> {
        let Naming::Single { path } = self else {
            return None;
        };
        let digits = name
            .strip_prefix(path.file_name()?.to_str()?)?
            .strip_prefix(ASSEMBLED)?;
        (digits.len() == 8).then_some(())?;
        digits.parse().ok()
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
        let renamed = !due.is_empty();
        for c in due {
            let path = self.naming.final_path(c);
            std::fs::rename(in_progress(&path), &path).map_err(|e| self.io(&path, e))?;
        }
        if renamed {
            // The renames (and the files' creation) survive a crash once the directory is synced.
            self.sync_dir()?;
        }
        self.closed = later;
        if matches!(self.naming, Naming::Single { .. }) && self.finished_single(checkpoint) {
            self.assemble_single(checkpoint)?;
        }
        Ok(())
    }

    fn finished_single(&self, checkpoint: u64) -> bool {
        // The final commit covers the interval the instance was in when its input ended.
        self.writer.is_none() && self.closed.is_empty() && checkpoint >= self.interval
    }

    /// Puts the chunks of a single-file sink together into its file (the final commit of
    /// `checkpoint`; see the module documentation for the order that survives a crash).
    fn assemble_single(&self, checkpoint: u64) -> Result<(), WeirError> {
        let Naming::Single { path } = &self.naming else {
            return Ok(());
        };
        let mut chunks = self.files_of_sink()?;
        chunks.retain(|(_, _, in_progress)| !in_progress);
        if chunks.is_empty() {
            return Ok(());
        }
        chunks.sort_by_key(|(c, _, _)| *c);
        let assembled = Naming::assembled_path(path, checkpoint);
        let tmp = in_progress(&assembled);
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
        std::fs::rename(&tmp, &assembled).map_err(|e| self.io(&assembled, e))?;
        // Whole on disk before a chunk goes.
        self.sync_dir()?;
        self.finish_assembly(&assembled)
    }

    /// The end of an assembly whose file is complete: the chunks go, the file becomes `PATH`.
    fn finish_assembly(&self, assembled: &Path) -> Result<(), WeirError> {
        let Naming::Single { path } = &self.naming else {
            return Ok(());
        };
        for (_, chunk, in_progress) in self.files_of_sink()? {
            if !in_progress {
                std::fs::remove_file(&chunk).map_err(|e| self.io(&chunk, e))?;
            }
        }
        std::fs::rename(assembled, path).map_err(|e| self.io(path, e))?;
        self.sync_dir()
    }

    /// Syncs the sink's directory: its renames and new files survive a crash.
    fn sync_dir(&self) -> Result<(), WeirError> {
        let dir = self.naming.dir();
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io(&dir, e))
    }

    /// A single-file sink's assembled files left by a crash: each with its checkpoint.
    fn assembled_files(&self) -> Result<Vec<(u64, PathBuf)>, WeirError> {
        let mut found = Vec::new();
        for (name, path) in self.entries()? {
            if let Some(c) = self.naming.parse_assembled(&name) {
                found.push((c, path));
            }
        }
        Ok(found)
    }

    /// This sink's files in its directory (of every instance): checkpoint, path, in progress.
    fn files_of_sink(&self) -> Result<Vec<(u64, PathBuf, bool)>, WeirError> {
        let mut files = Vec::new();
        for (name, path) in self.entries()? {
            if let Some((c, in_progress)) = self.naming.parse(&name) {
                files.push((c, path, in_progress));
            }
        }
        Ok(files)
    }

    /// The entries of the sink's directory with a UTF-8 name.
    fn entries(&self) -> Result<Vec<(String, PathBuf)>, WeirError> {
        let dir = self.naming.dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&dir, e)),
        };
        let mut named = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io(&dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                named.push((name, entry.path()));
            }
        }
        Ok(named)
    }

    /// Before the job starts: the files of checkpoints up to `restored` are finished (their
    /// commit may have been cut short), later ones removed, committed or not; a fresh start
    /// checks the output as a sink without checkpoints does (a single-file sink's chunks of
    /// an earlier run are removed).
    fn prepare(&mut self, restored: u64) -> Result<(), WeirError> {
        let single = matches!(self.naming, Naming::Single { .. });
        for (c, path, in_progress) in self.files_of_sink()? {
            if !in_progress {
                // Of a checkpoint after the restored one: its manifest was discarded, and
                // the sources read its records again.
                if c > restored && (restored > 0 || single) {
                    remove_unless_gone(&path).map_err(|e| self.io(&path, e))?;
                }
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
        for (c, assembled) in self.assembled_files()? {
            if restored > 0 && c <= restored {
                // The final commit was cut short after the file was whole.
                self.finish_assembly(&assembled)?;
            } else {
                remove_unless_gone(&assembled).map_err(|e| self.io(&assembled, e))?;
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

/// Removes a file another instance may have removed first.
fn remove_unless_gone(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Naming {
    /// The final path of an in-progress file's path (in a directory whose name may not be
    /// UTF-8: only the file's name is taken apart).
    fn final_path_of(&self, path: &Path) -> PathBuf {
        let name = path.file_name().and_then(|n| n.to_str());
        match name.and_then(|n| n.strip_suffix(IN_PROGRESS)) {
            Some(done) => path.with_file_name(done),
            None => path.to_path_buf(),
        }
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
        assert_eq!(single.parse("errors.jsonl.assembled-00000002"), None);
        // A directory whose name is not UTF-8 stays as it is.
        use std::os::unix::ffi::OsStrExt;
        let dir = Path::new(std::ffi::OsStr::from_bytes(b"out-\xff"));
        assert_eq!(
            parts.final_path_of(&dir.join("part-00003-00000007.jsonl.inprogress")),
            dir.join("part-00003-00000007.jsonl")
        );
        assert_eq!(
            single.parse_assembled("errors.jsonl.assembled-00000002"),
            Some(2)
        );
    }

    fn lines(out: &mut BufWriter<File>, batch: &[String], _first: bool) -> std::io::Result<()> {
        batch.iter().try_for_each(|l| writeln!(out, "{l}"))
    }

    fn sink(naming: Naming) -> TwoPhaseFiles<String> {
        TwoPhaseFiles::new("out".into(), naming, lines, 1, None)
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A crash while the final commit removes a single file's chunks: the restore finishes the
    /// assembled file. Before, the restore assembled the file again from the chunks left, and
    /// the records of those removed were lost.
    #[test]
    fn a_single_file_cut_short_while_its_chunks_go_is_finished_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("errors.jsonl");
        let naming = Naming::Single { path: path.clone() };
        for (c, line) in [(1, "a\n"), (2, "b\n"), (3, "c\n")] {
            std::fs::write(naming.final_path(c), line).unwrap();
        }
        std::fs::write(Naming::assembled_path(&path, 4), "a\nb\nc\n").unwrap();
        std::fs::remove_file(naming.final_path(1)).unwrap();
        sink(naming).prepare(4).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\nc\n");
        assert_eq!(listing(tmp.path()), ["errors.jsonl"]);
    }

    /// Committed files of checkpoints after the restored one (whose manifest was discarded)
    /// go, since their records are read again; so does an assembled file of such a
    /// checkpoint, and on a fresh start a single-file sink's chunks of an earlier run.
    #[test]
    fn committed_files_after_the_restored_checkpoint_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("errors.jsonl");
        let naming = Naming::Single { path: path.clone() };
        for c in 1..=3 {
            std::fs::write(naming.final_path(c), "x\n").unwrap();
        }
        std::fs::write(Naming::assembled_path(&path, 3), "x\nx\nx\n").unwrap();
        sink(naming.clone()).prepare(2).unwrap();
        assert_eq!(
            listing(tmp.path()),
            ["errors.jsonl.chunk-00000001", "errors.jsonl.chunk-00000002"]
        );
        sink(naming).prepare(0).unwrap();
        assert_eq!(listing(tmp.path()), Vec::<String>::new());

        let parts = Naming::Parts {
            dir: tmp.path().to_path_buf(),
            extension: "jsonl",
            instance: 0,
        };
        for c in 1..=3 {
            std::fs::write(parts.final_path(c), "x\n").unwrap();
        }
        sink(parts.clone()).prepare(1).unwrap();
        assert_eq!(listing(tmp.path()), ["part-00000-00000001.jsonl"]);
        // A fresh start leaves earlier output to the output directory's check.
        std::fs::write(parts.final_path(2), "x\n").unwrap();
        sink(parts).prepare(0).unwrap();
        assert_eq!(listing(tmp.path()).len(), 2);
    }
}
