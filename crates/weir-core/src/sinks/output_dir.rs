//! The output directory of a part-file sink (`write_jsonl`, `write_csv`) and what an
//! earlier run left in it: refused by default, removed with overwrite (Flink's `WriteMode`).
//!
//! Instance `i` of a sink with `n` instances writes `part-{i:05}.EXT.inprogress` and renames
//! it to `part-{i:05}.EXT`; these two names are *current*, for `i < n`. The instances share
//! the directory (threads, and processes on one file system) and nothing orders them: one
//! may finish before another starts. So each instance checks the directory itself, just
//! before it creates its own file, and no instance ever touches another current name:
//!
//! - without overwrite, instance `i` reports every entry a reader would read (not hidden,
//!   `_`-prefixed or in progress) except the other instances' current names; its own part
//!   file, which it has not written yet, counts. Any stale entry is thus seen by some
//!   instance, and no current file is ever taken for a stale one;
//! - with overwrite, instance `i` removes its own stale part file, and the first instance
//!   of each process (the *cleaner*) removes every entry that is not a current name. A
//!   cleaner may race another process's cleaner on a shared directory: a stale entry that
//!   is already gone is fine.
//!
//! Checking at run time rather than while the graph is built keeps `--explain` (which builds
//! the graph without running it) free of side effects. If the check fails, instances that
//! got ahead may leave `*.inprogress` files, which readers skip and overwrite removes.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::WeirError;
use crate::sources::file_input::is_skipped;

/// The part files of one sink in one directory.
#[derive(Clone, Debug)]
pub(crate) struct PartDir {
    pub(crate) operator: String,
    pub(crate) dir: PathBuf,
    pub(crate) extension: &'static str,
    /// Instances of the sink.
    pub(crate) instances: usize,
    pub(crate) overwrite: bool,
    /// What the job's file sinks write: one inside this directory is not stale output.
    pub(crate) sink_paths: Rc<RefCell<Vec<PathBuf>>>,
}

impl PartDir {
    /// The final name of instance `instance`'s file.
    pub(crate) fn part_path(&self, instance: usize) -> PathBuf {
        self.dir
            .join(format!("part-{instance:05}.{}", self.extension))
    }

    /// The current instance whose part file (or in-progress file) is called `name`.
    fn owner(&self, name: &OsStr) -> Option<usize> {
        let name = name.to_str()?;
        let name = name.strip_suffix(".inprogress").unwrap_or(name);
        let digits = name
            .strip_prefix("part-")?
            .strip_suffix(self.extension)?
            .strip_suffix('.')?;
        let instance: usize = digits.parse().ok()?;
        (instance < self.instances && format!("{instance:05}") == digits).then_some(instance)
    }

    /// Run by instance `instance` before it creates its file: refuses output of an earlier
    /// run, or removes it with overwrite (the cleaner also what no current instance owns).
    pub(crate) fn prepare(&self, instance: usize, cleaner: bool) -> Result<(), WeirError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        let mut stale = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.io(&self.dir, e))? {
            let entry = entry.map_err(|e| self.io(&self.dir, e))?;
            let name = entry.file_name();
            let path = entry.path();
            if self.is_another_sinks(&path) {
                continue;
            }
            let own = match self.owner(&name) {
                // Another current instance's file, maybe being written right now.
                Some(other) if other != instance => continue,
                Some(_) => true,
                None => false,
            };
            let in_progress = name.to_string_lossy().ends_with(".inprogress");
            if own && in_progress {
                continue; // creating it truncates it
            }
            if self.overwrite {
                if own || cleaner {
                    self.remove(&path)?;
                }
            } else if own || !is_skipped(&name) {
                stale.push(name.to_string_lossy().into_owned());
            }
        }
        if stale.is_empty() {
            return Ok(());
        }
        stale.sort();
        let found = match stale.len() {
            1 => format!("`{}` from an earlier run", stale[0]),
            n => format!(
                "`{}` and {} more entries from an earlier run",
                stale[0],
                n - 1
            ),
        };
        Err(WeirError::OutputExists {
            operator: self.operator.clone(),
            dir: self.dir.clone(),
            found,
        })
    }

    /// Whether `path` is what another file sink of the job writes (e.g. `out/totals/` of a
    /// job writing `out/` and `out/totals/`), or one of its files in progress
    /// (`out/all.jsonl.inprogress` of a sink writing `out/all.jsonl`).
    fn is_another_sinks(&self, path: &Path) -> bool {
        use std::path::Component::CurDir;
        let same = |a: &Path, b: &Path| {
            let a = a.components().filter(|c| *c != CurDir);
            a.eq(b.components().filter(|c| *c != CurDir))
        };
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let name = name.to_string_lossy();
        self.sink_paths.borrow().iter().any(|p| {
            let is_its = match (p.parent(), p.file_name()) {
                (Some(p_parent), Some(p_name)) => {
                    let p_name = p_name.to_string_lossy();
                    same(p_parent, parent)
                        && (name == p_name
                            || name
                                .strip_prefix(p_name.as_ref())
                                .is_some_and(|rest| rest.starts_with('.')))
                }
                _ => false,
            };
            is_its && !same(p, &self.dir)
        })
    }

    /// Removes a stale file or directory tree; one already gone (removed by another
    /// process's cleaner) is fine.
    fn remove(&self, path: &Path) -> Result<(), WeirError> {
        let is_dir = match std::fs::symlink_metadata(path) {
            Ok(m) => m.is_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io(path, e)),
        };
        let removed = if is_dir {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match removed {
            Ok(()) => Ok(()),
            Err(_) if std::fs::symlink_metadata(path).is_err() => Ok(()),
            Err(e) => Err(self.io(path, e)),
        }
    }

    fn io(&self, path: &Path, source: std::io::Error) -> WeirError {
        WeirError::Io {
            operator: self.operator.clone(),
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(instances: usize) -> PartDir {
        PartDir {
            operator: "write".into(),
            dir: "out".into(),
            extension: "jsonl",
            instances,
            overwrite: false,
            sink_paths: Rc::default(),
        }
    }

    #[test]
    fn owners_are_current_instances_only() {
        let d = dir(3);
        let owner = |n: &str| d.owner(OsStr::new(n));
        assert_eq!(owner("part-00000.jsonl"), Some(0));
        assert_eq!(owner("part-00002.jsonl.inprogress"), Some(2));
        assert_eq!(owner("part-00003.jsonl"), None);
        assert_eq!(owner("part-00001.csv"), None);
        assert_eq!(owner("part-1.jsonl"), None);
        assert_eq!(owner("part-00001.jsonlx"), None);
        assert_eq!(owner("xpart-00001.jsonl"), None);
        assert_eq!(owner("part-00001jsonl"), None);
        assert_eq!(d.part_path(7), Path::new("out/part-00007.jsonl"));
    }

    #[test]
    fn the_outputs_of_the_jobs_other_sinks_are_not_stale() {
        let d = dir(1);
        d.sink_paths.borrow_mut().extend([
            PathBuf::from("out"),
            PathBuf::from("out/totals"),
            PathBuf::from("./out/all.jsonl"),
        ]);
        assert!(d.is_another_sinks(Path::new("out/totals")));
        assert!(d.is_another_sinks(Path::new("out/all.jsonl")));
        assert!(d.is_another_sinks(Path::new("out/all.jsonl.inprogress")));
        assert!(!d.is_another_sinks(Path::new("out/all.jsonlx")));
        assert!(!d.is_another_sinks(Path::new("out/totals2")));
        assert!(!d.is_another_sinks(Path::new("out/part-00000.jsonl")));
    }

    #[test]
    fn another_sinks_directory_inside_is_neither_refused_nor_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("totals")).unwrap();
        std::fs::write(out.join("totals/part-00000.jsonl"), "{}\n").unwrap();
        let mut d = dir(1);
        d.dir = out.clone();
        d.sink_paths
            .borrow_mut()
            .extend([out.clone(), out.join("totals")]);
        d.prepare(0, true).unwrap();
        d.overwrite = true;
        d.prepare(0, true).unwrap();
        assert!(out.join("totals/part-00000.jsonl").exists());
        std::fs::write(out.join("stale.txt"), "x").unwrap();
        d.overwrite = false;
        let e = d.prepare(0, true).unwrap_err();
        assert!(e.to_string().contains("stale.txt"), "{e}");
    }
}
