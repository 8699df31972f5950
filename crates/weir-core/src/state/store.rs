//! Where checkpoints go: a directory with one subdirectory per checkpoint, one state file
//! per worker, and a manifest written last.
//!
//! ```text
//! DIR/chk-00000007/worker-0000.state   framed, CRC-32 (written by worker 0, fsynced, renamed)
//! DIR/chk-00000007/worker-0001.state
//! DIR/chk-00000007/MANIFEST            JSON, written last: the checkpoint is complete
//! ```
//!
//! A checkpoint is *complete* when its manifest parses and every file it lists has the
//! size and checksum the manifest says. A restore takes the newest complete checkpoint
//! (with, for an incremental one, every checkpoint back to its full base); anything else
//! (a half-written directory, a truncated or corrupted file) is reported with its path and
//! skipped. [`CheckpointDir::retain`] keeps the newest complete checkpoints and deletes the
//! rest.
//!
//! A shared file system path works for jobs across hosts. Object storage would implement
//! the same steps (see `docs/state-and-checkpoints.md`): put worker objects, then the
//! manifest object, whose existence is the commit.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::snapshot::WorkerSnapshot;
use crate::state::StateError;

const MANIFEST: &str = "MANIFEST";
/// Bumped when the layout changes; a manifest of another format is refused.
pub const FORMAT: u32 = 2;
/// Largest manifest read.
const MANIFEST_LIMIT: u64 = 16 << 20;

/// One worker's file of a checkpoint, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The worker that wrote it.
    pub worker: usize,
    /// Its size in bytes.
    pub bytes: u64,
    /// CRC-32 of the whole file.
    pub crc32: u32,
}

/// Worker files of a checkpoint read back at once.
const LOADING_THREADS: usize = 16;

/// Whether a manifest lists each of its workers' files at most once: a worker number at or
/// above `workers`, or listed twice, cannot come from Weir (and would load state twice).
fn check_file_list(manifest: &Manifest) -> Result<(), String> {
    let mut listed = std::collections::BTreeSet::new();
    for f in &manifest.files {
        if f.worker >= manifest.workers {
            return Err(format!(
                "lists a file of worker {} of a job of {} workers",
                f.worker, manifest.workers
            ));
        }
        if !listed.insert(f.worker) {
            return Err(format!("lists worker {}'s file twice", f.worker));
        }
    }
    Ok(())
}

/// What one operator's state amounts to in a checkpoint (for reports and `weir inspect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSummary {
    /// The operator.
    pub name: String,
    /// Keys (keyed state) or splits held, over all instances.
    pub entries: u64,
    /// Bytes of state, over all instances.
    pub bytes: u64,
}

/// The record that a checkpoint is complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Which job wrote it: the names of its stateful operators, sorted (the job's identity
    /// for restores).
    pub job: Vec<String>,
    /// The checkpoint's number; numbers increase.
    pub id: u64,
    /// The epoch it covers: all epochs up to and including it.
    pub epoch: u64,
    /// Timely workers of the job that wrote it.
    pub workers: usize,
    /// The full checkpoint this one builds on (itself when it is full).
    pub base: u64,
    /// The worker files.
    pub files: Vec<FileEntry>,
    /// Per operator: entries and bytes.
    pub operators: Vec<OperatorSummary>,
    /// When it completed, in milliseconds since the Unix epoch.
    pub completed_ms: u64,
    /// Milliseconds from the decision to take it to its manifest.
    pub duration_ms: u64,
    /// Milliseconds the sources waited for the last ones to reach the checkpoint's epoch.
    pub alignment_ms: u64,
    /// The job completed: written after its last records, with no state (a restore has
    /// nothing left to do but make the last output visible).
    #[serde(rename = "final", default)]
    pub final_: bool,
}

impl Manifest {
    /// Whether this checkpoint holds all state (not only what changed since the last one).
    pub fn is_full(&self) -> bool {
        self.base == self.id
    }

    /// Total bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// A checkpoint directory.
#[derive(Clone, Debug)]
pub struct CheckpointDir {
    root: PathBuf,
}

/// A checkpoint found in the directory, complete or not.
#[derive(Debug)]
pub enum Found {
    /// Its manifest and every file check out.
    Complete(Manifest),
    /// Not usable, and why (the path is in the reason).
    Broken(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl CheckpointDir {
    /// The checkpoint directory `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StateError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(CheckpointDir { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of checkpoint `id`.
    pub fn checkpoint_path(&self, id: u64) -> PathBuf {
        self.root.join(format!("chk-{id:08}"))
    }

    fn worker_path(&self, id: u64, worker: usize) -> PathBuf {
        self.checkpoint_path(id)
            .join(format!("worker-{worker:04}.state"))
    }

    /// Writes worker `worker`'s file of checkpoint `id` (temporary file, fsync, rename) and
    /// returns its manifest entry.
    pub fn write_worker(
        &self,
        id: u64,
        worker: usize,
        bytes: &[u8],
    ) -> Result<FileEntry, StateError> {
        let dir = self.checkpoint_path(id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = self.worker_path(id, worker);
        write_atomically(&path, bytes, || {
            // Recovery tests stop or kill the process here, half-way through the file.
            fail::fail_point!("checkpoint-worker-file-half-written");
        })?;
        Ok(FileEntry {
            worker,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(bytes),
        })
    }

    /// Writes the manifest: from now on the checkpoint is complete.
    pub fn commit(&self, manifest: &Manifest) -> Result<(), StateError> {
        let dir = self.checkpoint_path(manifest.id);
        // A checkpoint without worker files (the final one) has no directory yet.
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let text =
            serde_json::to_vec_pretty(manifest).map_err(|e| StateError::Encode(e.to_string()))?;
        write_atomically(&dir.join(MANIFEST), &text, || {})?;
        // The rename itself must survive a crash, and so must the checkpoint's directory.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.root))
    }

    /// The ids of the checkpoint directories, newest first.
    pub fn ids(&self) -> Result<Vec<u64>, StateError> {
        let mut ids: Vec<u64> = std::fs::read_dir(&self.root)
            .map_err(io(&self.root))?
            .filter_map(|e| {
                let entry = e.ok()?;
                let name = entry.file_name().into_string().ok()?;
                let id: u64 = name.strip_prefix("chk-")?.parse().ok()?;
                // Only the names Weir writes, of directories: `chk-7` beside `chk-00000007`,
                // or a file `chk-00000009`, made retention and restores fail on every run.
                let weirs = name == format!("chk-{id:08}") && entry.file_type().ok()?.is_dir();
                // Numbers after it must exist (Weir counts up from 1 and never gets there).
                (weirs && id < u64::MAX / 2).then_some(id)
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Checks checkpoint `id`: its manifest, and every file's size and checksum.
    pub fn check(&self, id: u64) -> Found {
        match self
            .read_manifest(id)
            .and_then(|m| self.check_files(&m).map(|_| m))
        {
            Ok(m) => Found::Complete(m),
            Err(reason) => Found::Broken(reason),
        }
    }

    fn read_manifest(&self, id: u64) -> Result<Manifest, String> {
        let path = self.checkpoint_path(id).join(MANIFEST);
        let mut text = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MANIFEST_LIMIT).read_to_end(&mut text))
            .map_err(|e| {
                format!(
                    "{}: no readable manifest ({e}): the checkpoint was not completed",
                    path.display()
                )
            })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a manifest: {e}", path.display()))?;
        if manifest.format != FORMAT {
            return Err(format!(
                "{}: format {} (this version reads {FORMAT})",
                path.display(),
                manifest.format
            ));
        }
        if manifest.id != id {
            return Err(format!(
                "{}: says it is checkpoint {}",
                path.display(),
                manifest.id
            ));
        }
        check_file_list(&manifest).map_err(|why| format!("{}: {why}", path.display()))?;
        Ok(manifest)
    }

    fn check_files(&self, manifest: &Manifest) -> Result<(), String> {
        for f in &manifest.files {
            let bytes = self.read_file(manifest.id, f)?;
            if crc32fast::hash(&bytes) != f.crc32 {
                return Err(format!(
                    "{}: checksum mismatch",
                    self.worker_path(manifest.id, f.worker).display()
                ));
            }
        }
        Ok(())
    }

    /// The bytes of one listed file, if it has the listed size.
    fn read_file(&self, id: u64, f: &FileEntry) -> Result<Vec<u8>, String> {
        let path = self.worker_path(id, f.worker);
        let mut bytes = Vec::new();
        let read = File::open(&path).and_then(|file| {
            // One byte more than listed tells a longer file from a complete one.
            file.take(f.bytes.saturating_add(1)).read_to_end(&mut bytes)
        });
        read.map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() as u64 != f.bytes {
            return Err(format!(
                "{}: {} bytes, the manifest says {}",
                path.display(),
                bytes.len(),
                f.bytes
            ));
        }
        Ok(bytes)
    }

    /// Every complete checkpoint, newest first, and what was skipped (with reasons).
    pub fn complete(&self) -> Result<(Vec<Manifest>, Vec<String>), StateError> {
        let mut complete = Vec::new();
        let mut skipped = Vec::new();
        for id in self.ids()? {
            match self.check(id) {
                Found::Complete(m) => complete.push(m),
                Found::Broken(reason) => skipped.push(reason),
            }
        }
        Ok((complete, skipped))
    }

    /// The checkpoints to restore from: the newest complete one whose whole chain (back to
    /// its full base) is complete, the chain oldest first. `None` when there is none. Only
    /// the checkpoints it looks at are read (newest first, then the chain's).
    pub fn restorable(&self) -> Result<(Option<Vec<Manifest>>, Vec<String>), StateError> {
        let mut checked: std::collections::BTreeMap<u64, Option<Manifest>> = Default::default();
        let mut skipped = Vec::new();
        let mut check = |id: u64, skipped: &mut Vec<String>| -> Option<Manifest> {
            checked
                .entry(id)
                .or_insert_with(|| match self.check(id) {
                    Found::Complete(m) => Some(m),
                    Found::Broken(reason) => {
                        skipped.push(reason);
                        None
                    }
                })
                .clone()
        };
        let ids = self.ids()?;
        for &newest in &ids {
            let Some(manifest) = check(newest, &mut skipped) else {
                continue;
            };
            let members: Vec<Manifest> = ids
                .iter()
                .filter(|&&id| id >= manifest.base && id < newest)
                .filter_map(|&id| check(id, &mut skipped))
                .chain(std::iter::once(manifest.clone()))
                .collect();
            match chain(&members, &manifest) {
                Ok(chain) => return Ok((Some(chain), skipped)),
                Err(reason) => skipped.push(reason),
            }
        }
        Ok((None, skipped))
    }

    /// Checkpoints whose manifest parses and whose files have the listed sizes, newest
    /// first: what retention counts (without reading every file back).
    fn committed(&self) -> Result<Vec<Manifest>, StateError> {
        Ok(self
            .ids()?
            .into_iter()
            .filter_map(|id| self.read_manifest(id).ok())
            .filter(|m| {
                m.files.iter().all(|f| {
                    std::fs::metadata(self.worker_path(m.id, f.worker))
                        .is_ok_and(|meta| meta.len() == f.bytes)
                })
            })
            .collect())
    }

    /// Reads and decodes the worker files of a complete checkpoint, one thread per file.
    pub fn load(&self, manifest: &Manifest) -> Result<Vec<WorkerSnapshot>, StateError> {
        let mut snapshots = Vec::with_capacity(manifest.files.len());
        // A few files at a time, each on a thread of its own.
        for files in manifest.files.chunks(LOADING_THREADS) {
            let loaded: Vec<_> = std::thread::scope(|scope| {
                let readers: Vec<_> = files
                    .iter()
                    .map(|f| scope.spawn(move || self.load_file(manifest.id, f)))
                    .collect();
                readers
                    .into_iter()
                    .map(|r| r.join().expect("a checkpoint reader panicked"))
                    .collect()
            });
            for snapshot in loaded {
                snapshots.push(snapshot?);
            }
        }
        Ok(snapshots)
    }

    fn load_file(&self, id: u64, f: &FileEntry) -> Result<WorkerSnapshot, StateError> {
        let path = self.worker_path(id, f.worker);
        let bytes = self
            .read_file(id, f)
            .map_err(|reason| StateError::Corrupt {
                path: path.clone(),
                reason,
            })?;
        WorkerSnapshot::decode(&bytes).map_err(|reason| StateError::Corrupt { path, reason })
    }

    /// Deletes checkpoint `first` and every later one: what a failed run left after the
    /// checkpoint a job restores from (a checkpoint it began but did not complete, or one it
    /// could not read), before the job takes these ids again. Returns the ids deleted.
    pub fn discard_from(&self, first: u64) -> Result<Vec<u64>, StateError> {
        let mut gone = Vec::new();
        for id in self.ids()?.into_iter().filter(|&id| id >= first) {
            let path = self.checkpoint_path(id);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => gone.push(id),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(gone)
    }

    /// Keeps the newest `keep` complete checkpoints and the ones their chains need, and
    /// deletes every other checkpoint directory older than the newest kept one.
    pub fn retain(&self, keep: usize) -> Result<(), StateError> {
        let complete = self.committed()?;
        let kept: Vec<&Manifest> = complete.iter().take(keep.max(1)).collect();
        let Some(oldest_kept) = kept.iter().map(|m| m.base.min(m.id)).min() else {
            return Ok(());
        };
        let needed = |id: u64| {
            kept.iter()
                .any(|m| m.id == id || (m.base <= id && id <= m.id))
        };
        for id in self.ids()? {
            if id < oldest_kept || (!needed(id) && id < kept[0].id) {
                let path = self.checkpoint_path(id);
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }
}

/// The chain of `newest`: every checkpoint from its base up to it, oldest first. Each
/// increment holds the changes since the one before it (a failed checkpoint makes the next
/// one full), so the chain is every id from the base to `newest`: one missing link would
/// lose its changes.
fn chain(complete: &[Manifest], newest: &Manifest) -> Result<Vec<Manifest>, String> {
    let mut chain: Vec<Manifest> = complete
        .iter()
        .filter(|m| m.id >= newest.base && m.id <= newest.id && m.base == newest.base)
        .cloned()
        .collect();
    chain.sort_by_key(|m| m.id);
    match chain.first() {
        Some(first) if first.id == newest.base && first.is_full() => {}
        _ => {
            return Err(format!(
                "checkpoint {} builds on checkpoint {}, which is not complete",
                newest.id, newest.base
            ))
        }
    }
    match (newest.base..=newest.id).find(|id| !chain.iter().any(|m| m.id == *id)) {
        None => Ok(chain),
        Some(missing) => Err(format!(
            "checkpoint {} builds on checkpoints {} to {}, and checkpoint {missing} is not complete",
            newest.id,
            newest.base,
            newest.id - 1
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file that is synced and renamed, so that a
/// reader sees the whole file or none.
/// `half_way` runs when half the bytes are written (a fault-injection point for tests).
fn write_atomically(path: &Path, bytes: &[u8], half_way: impl FnOnce()) -> Result<(), StateError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    let (first, second) = bytes.split_at(bytes.len() / 2);
    file.write_all(first).map_err(io(&tmp))?;
    half_way();
    file.write_all(second)
        .and_then(|_| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: u64, base: u64, files: Vec<FileEntry>) -> Manifest {
        Manifest {
            format: FORMAT,
            job: vec!["counts".into()],
            id,
            epoch: id * 10,
            workers: files.len(),
            base,
            files,
            operators: Vec::new(),
            completed_ms: 0,
            duration_ms: 0,
            alignment_ms: 0,
            final_: false,
        }
    }

    fn write(dir: &CheckpointDir, id: u64, base: u64) {
        let snap = WorkerSnapshot {
            checkpoint: id,
            worker: 0,
            operators: Vec::new(),
        };
        let f = dir.write_worker(id, 0, &snap.encode().unwrap()).unwrap();
        dir.commit(&manifest(id, base, vec![f])).unwrap();
    }

    /// Flips a bit of checkpoint `id`'s worker file, as a damaged disk would.
    fn damage_worker_file(dir: &CheckpointDir, id: u64) {
        let path = dir.worker_path(id, 0);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    }

    /// The ids of the chain a restore takes, and what it skipped.
    fn restorable_ids(dir: &CheckpointDir) -> (Vec<u64>, Vec<String>) {
        let (chain, skipped) = dir.restorable().unwrap();
        let ids = chain.unwrap().iter().map(|m| m.id).collect();
        (ids, skipped)
    }

    #[test]
    fn the_newest_complete_chain_is_restored_and_broken_ones_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        write(&dir, 1, 1);
        write(&dir, 2, 1);
        write(&dir, 3, 1);
        // 4: a worker file without a manifest (a crash before the commit).
        dir.write_worker(4, 0, b"partial").unwrap();
        // 3's file is damaged after the fact.
        damage_worker_file(&dir, 3);
        let (ids, skipped) = restorable_ids(&dir);
        assert_eq!(ids, vec![1, 2]);
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("chk-00000004") && s.contains("not completed")),
            "{skipped:?}"
        );
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("chk-00000003") && s.contains("checksum")),
            "{skipped:?}"
        );
        assert_eq!(dir.load(&manifest(2, 1, vec![])).unwrap(), vec![]);
    }

    /// A manifest is a file: one that lists a worker's file twice (its state would load twice,
    /// on a thread per entry) or a worker the job does not have is skipped with the reason;
    /// a checkpoint numbered near `u64::MAX` (whose successors' numbers would wrap to 0, and a
    /// restore then discarded every checkpoint from 0 on) is not one.
    #[test]
    fn manifests_that_weir_cannot_have_written_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        write(&dir, 1, 1);
        let f = dir.write_worker(2, 0, b"state").unwrap();
        let mut twice = manifest(2, 2, vec![f.clone(), f.clone()]);
        dir.commit(&twice).unwrap();
        let mut beyond = manifest(3, 3, vec![FileEntry { worker: 5, ..f }]);
        beyond.workers = 2;
        let f3 = dir.write_worker(3, 5, b"state").unwrap();
        beyond.files = vec![f3];
        dir.commit(&beyond).unwrap();
        let (ids, skipped) = restorable_ids(&dir);
        assert_eq!(ids, vec![1]);
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("lists worker 0's file twice")),
            "{skipped:?}"
        );
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("lists a file of worker 5 of a job of 2 workers")),
            "{skipped:?}"
        );
        twice.files.pop();
        assert!(check_file_list(&twice).is_ok());

        std::fs::create_dir(tmp.path().join(format!("chk-{}", u64::MAX))).unwrap();
        std::fs::create_dir(tmp.path().join(format!("chk-{}", u64::MAX / 2))).unwrap();
        // Stray entries: another spelling of a number, a file where a directory belongs.
        std::fs::create_dir(tmp.path().join("chk-1")).unwrap();
        std::fs::write(tmp.path().join("chk-00000009"), "not a checkpoint").unwrap();
        assert_eq!(dir.ids().unwrap(), vec![3, 2, 1]);
        assert_eq!(dir.discard_from(4).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn what_a_failed_run_left_after_the_restored_checkpoint_is_discarded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        write(&dir, 1, 1);
        write(&dir, 2, 1);
        dir.write_worker(3, 0, b"partial").unwrap();
        dir.write_worker(3, 3, b"a worker the next run does not have")
            .unwrap();
        assert_eq!(dir.discard_from(3).unwrap(), vec![3]);
        assert_eq!(dir.ids().unwrap(), vec![2, 1]);
        assert_eq!(dir.discard_from(9).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn a_chain_without_its_base_is_not_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        write(&dir, 5, 5);
        write(&dir, 6, 5);
        std::fs::remove_dir_all(dir.checkpoint_path(5)).unwrap();
        let (chain, skipped) = dir.restorable().unwrap();
        assert!(chain.is_none());
        assert!(
            skipped.iter().any(|s| s.contains("builds on checkpoint 5")),
            "{skipped:?}"
        );
    }

    /// An increment whose chain has a damaged link in the middle is not restored (the
    /// changes of that link would be lost): the chain before the link is.
    #[test]
    fn a_chain_with_a_missing_link_is_not_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        for id in 5..=8 {
            write(&dir, id, 5);
        }
        damage_worker_file(&dir, 7);
        let (ids, skipped) = restorable_ids(&dir);
        assert_eq!(ids, vec![5, 6]);
        assert!(
            skipped
                .iter()
                .any(|s| s.contains("checkpoint 8 builds on") && s.contains("checkpoint 7 is not")),
            "{skipped:?}"
        );
    }

    #[test]
    fn retain_keeps_the_newest_and_what_their_chains_need() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CheckpointDir::open(tmp.path()).unwrap();
        write(&dir, 1, 1);
        write(&dir, 2, 2);
        write(&dir, 3, 2);
        write(&dir, 4, 2);
        dir.write_worker(5, 0, b"in progress").unwrap();
        dir.retain(2).unwrap();
        // 3 and 4 are kept, and 2, their base; 1 is gone; 5 (newer, in progress) stays.
        assert_eq!(dir.ids().unwrap(), vec![5, 4, 3, 2]);
    }
}
