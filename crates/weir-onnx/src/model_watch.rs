//! A model stream from a directory laid out as TF Serving does: `DIR/NAME/VERSION/model.onnx`.
//! Each new (higher) version of a name becomes a [`ModelUpdate`] carrying the file's bytes, so
//! every worker, on any host, loads the same model.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use weir_core::{op, DataStream, EpochPolicy, Job, Op, PullSource, Pulled};

use crate::predict::{ModelSource, ModelUpdate, MAX_MODEL_BYTES};

/// Where and how to watch for model versions. Place a version atomically (write it elsewhere
/// and rename the version directory in). A file is read once it has not changed between two
/// scans, and read again if it changes later (a version rewritten in place), so a model
/// caught half-written (and rejected by the operator) is still installed once complete.
///
/// The predict operator serves one model: a directory holding several names needs
/// [`ModelWatch::model`] to say which one (without it, the stream fails naming them).
#[derive(Clone, Debug)]
pub struct ModelWatch {
    dir: PathBuf,
    model: Option<String>,
    poll: Duration,
    epochs: Duration,
    stop_after_versions: Option<usize>,
    idle_timeout: Option<Duration>,
}

impl ModelWatch {
    /// Watches `dir`, polling every 100 ms; runs until the job is stopped.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelWatch {
            dir: dir.into(),
            model: None,
            poll: Duration::from_millis(100),
            epochs: Duration::from_millis(100),
            stop_after_versions: None,
            idle_timeout: None,
        }
    }
    /// Watches only the versions of model `name` (`DIR/name/VERSION/model.onnx`).
    ///
    /// ```
    /// use weir_onnx::ModelWatch;
    /// let watch = ModelWatch::new("models").model("digits");
    /// # let _ = watch;
    /// ```
    pub fn model(mut self, name: impl Into<String>) -> Self {
        self.model = Some(name.into());
        self
    }
    /// How often the directory is scanned.
    pub fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }
    /// The stream's processing-time epoch length; give data sources the same
    /// [`EpochPolicy::Interval`] so that a new version applies from the moment it appeared.
    pub fn epochs(mut self, every: Duration) -> Self {
        self.epochs = every;
        self
    }
    /// End the stream after this many versions (for bounded jobs and tests). A version
    /// sent again (rewritten in place, or sent before it was complete) counts once.
    pub fn stop_after_versions(mut self, n: usize) -> Self {
        self.stop_after_versions = Some(n);
        self
    }
    /// End the stream when no new version appeared for this long.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }
}

/// A model file's size and modification time: a file written or rewritten changes them.
type Stamp = (u64, Option<SystemTime>);

/// A name's newest version, its file and that file's stamp.
struct Newest {
    version: u64,
    file: PathBuf,
    stamp: Stamp,
}

struct Watcher {
    watch: ModelWatch,
    /// The version and stamp last emitted per name.
    latest: BTreeMap<String, (u64, Stamp)>,
    /// The version and stamp each name's newest file had at the last scan: a file is read
    /// when a scan finds it unchanged.
    settling: BTreeMap<String, (u64, Stamp)>,
    /// Versions sent (each name and version once).
    versions: usize,
    last_new: Instant,
    ready: VecDeque<ModelUpdate>,
    failed: Option<String>,
}

impl Watcher {
    fn new(watch: ModelWatch) -> Self {
        Watcher {
            watch,
            latest: BTreeMap::new(),
            settling: BTreeMap::new(),
            versions: 0,
            last_new: Instant::now(),
            ready: VecDeque::new(),
            failed: None,
        }
    }

    /// The newest version of each watched name that changed since it was emitted and has
    /// settled, in name order.
    fn scan(&mut self) {
        let mut names: Vec<(String, Newest)> = match std::fs::read_dir(&self.watch.dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| self.watch.model.as_ref().is_none_or(|m| m == name))
                .filter_map(|name| Some((name.clone(), newest(&self.watch.dir.join(&name))?)))
                .collect(),
            Err(_) => return,
        };
        names.sort_by(|a, b| a.0.cmp(&b.0));
        if self.watch.model.is_none() && names.len() > 1 {
            let listed: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
            self.failed = Some(format!(
                "model watch: {} holds several models ({}); the predict operator serves one: \
                 pick it with ModelWatch::model",
                self.watch.dir.display(),
                listed.join(", ")
            ));
            return;
        }
        for (name, newest) in names {
            self.consider(name, newest);
        }
    }

    /// Emits `newest` if it is new or changed and the same as at the last scan.
    fn consider(&mut self, name: String, newest: Newest) {
        let Newest {
            version,
            file,
            stamp,
        } = newest;
        if self
            .latest
            .get(&name)
            .is_some_and(|&(v, s)| version < v || (version, stamp) == (v, s))
        {
            return;
        }
        if self.settling.insert(name.clone(), (version, stamp)) != Some((version, stamp)) {
            return;
        }
        if stamp.0 > MAX_MODEL_BYTES {
            // Said once per stamp: the file is skipped like one that did not settle.
            tracing::warn!(
                "model watch: {} holds {} bytes, more than a model may (2 GiB); skipped",
                file.display(),
                stamp.0
            );
            self.latest.insert(name, (version, stamp));
            return;
        }
        match std::fs::read(&file) {
            // Changed while being read: the next scans see it again.
            Ok(bytes) if bytes.len() as u64 != stamp.0 => {}
            Ok(bytes) => {
                if let Some((sent, _)) = self.latest.insert(name.clone(), (version, stamp)) {
                    self.versions += usize::from(sent != version);
                } else {
                    self.versions += 1;
                }
                self.last_new = Instant::now();
                self.ready.push_back(ModelUpdate {
                    name,
                    version,
                    source: ModelSource::Bytes(bytes),
                    candidate: false,
                });
            }
            Err(e) => tracing::warn!("model watch: cannot read {}: {e}", file.display()),
        }
    }
}

/// The highest version of the model in `dir` (`dir/VERSION/model.onnx`); of two version
/// directories with the same number (`1`, `01`), the one whose name sorts last.
fn newest(dir: &Path) -> Option<Newest> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|v| {
            let dir_name = v.file_name().to_str()?.to_string();
            let version = dir_name.parse::<u64>().ok()?;
            let file = v.path().join("model.onnx");
            let meta = std::fs::metadata(&file).ok().filter(|m| m.is_file())?;
            let stamp = (meta.len(), meta.modified().ok());
            Some((
                (version, dir_name),
                Newest {
                    version,
                    file,
                    stamp,
                },
            ))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, newest)| newest)
}

impl PullSource<ModelUpdate> for Watcher {
    fn pull(&mut self) -> Pulled<ModelUpdate> {
        if self.ready.is_empty() {
            if let Some(message) = &self.failed {
                return Pulled::Failed(message.clone());
            }
            if self
                .watch
                .idle_timeout
                .is_some_and(|t| self.last_new.elapsed() >= t)
            {
                return Pulled::Done;
            }
            self.scan();
            // Enough versions, and none of them changed since it was sent (a file sent
            // before it was complete is sent again first).
            if self.ready.is_empty()
                && self
                    .watch
                    .stop_after_versions
                    .is_some_and(|n| self.versions >= n)
                && self.settling == self.latest
            {
                return Pulled::Done;
            }
        }
        match self.ready.pop_front() {
            Some(update) => Pulled::Record(update),
            None => match &self.failed {
                Some(message) => Pulled::Failed(message.clone()),
                None => Pulled::Pending(self.watch.poll),
            },
        }
    }
}

/// Model streams for jobs.
pub trait ModelWatchExt<'s> {
    /// A [`ModelUpdate`] stream (one instance) from a model directory, for
    /// [`crate::PredictExt::predict`].
    fn watch_models(&mut self, op: impl Into<Op>, watch: ModelWatch)
        -> DataStream<'s, ModelUpdate>;
}

impl<'s> ModelWatchExt<'s> for Job<'s> {
    fn watch_models(
        &mut self,
        op_: impl Into<Op>,
        watch: ModelWatch,
    ) -> DataStream<'s, ModelUpdate> {
        let o: Op = op_.into();
        let o = op(o.name().to_string())
            .parallelism(1)
            .epochs(EpochPolicy::Interval(watch.epochs));
        self.pull_source(o, move |_, _| Watcher::new(watch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pulls up to `pulls` times (each pull scans once when nothing is ready); the updates.
    fn updates(w: &mut Watcher, pulls: usize) -> Vec<(String, u64, Vec<u8>)> {
        let mut out = Vec::new();
        for _ in 0..pulls {
            if let Pulled::Record(u) = w.pull() {
                let ModelSource::Bytes(bytes) = u.source else {
                    panic!("the watcher sends bytes")
                };
                out.push((u.name, u.version, bytes));
            }
        }
        out
    }

    fn place(dir: &Path, name: &str, version: &str, bytes: &[u8]) {
        let at = dir.join(name).join(version);
        std::fs::create_dir_all(&at).unwrap();
        std::fs::write(at.join("model.onnx"), bytes).unwrap();
    }

    /// A version caught half-written is not sent until it stops changing, and the complete
    /// file is sent. Before, the watcher sent the partial bytes (which the operator rejects)
    /// and took the version as seen: the complete file was never sent.
    #[test]
    fn a_version_caught_half_written_is_sent_once_complete() {
        let dir = tempfile::tempdir().unwrap();
        let full = b"pretend this is a whole model".to_vec();
        place(dir.path(), "digits", "1", &full[..5]);
        let mut w = Watcher::new(ModelWatch::new(dir.path()));
        let early = updates(&mut w, 1);
        place(dir.path(), "digits", "1", &full);
        let later = updates(&mut w, 3);
        assert_eq!(early, [], "the first scan sees the file for the first time");
        assert_eq!(later, [("digits".to_string(), 1, full.clone())]);

        // Rewritten in place: sent again; an older version appearing later is not.
        let fixed = b"pretend this is the fixed model".to_vec();
        place(dir.path(), "digits", "1", &fixed);
        place(dir.path(), "digits", "0", b"old");
        assert_eq!(updates(&mut w, 3), [("digits".to_string(), 1, fixed)]);
        assert_eq!(updates(&mut w, 3), []);
    }

    /// A model file larger than ONNX allows is skipped, not read into memory; a later
    /// version of a sane size is sent.
    #[test]
    fn a_file_over_the_model_limit_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        place(dir.path(), "digits", "1", b"");
        let huge = dir.path().join("digits/1/model.onnx");
        // Sparse: no disk space is used.
        let file = std::fs::OpenOptions::new().write(true).open(&huge).unwrap();
        file.set_len(MAX_MODEL_BYTES + 1).unwrap();
        let mut w = Watcher::new(ModelWatch::new(dir.path()));
        assert_eq!(updates(&mut w, 4), []);
        place(dir.path(), "digits", "2", b"small");
        assert_eq!(
            updates(&mut w, 3),
            [("digits".to_string(), 2, b"small".to_vec())]
        );
    }

    /// A version sent while still incomplete (a writer that paused for longer than a poll)
    /// and again once complete counts once toward `stop_after_versions`: the complete file
    /// is still sent. Counting every send ended the stream after the partial one.
    #[test]
    fn a_version_sent_again_counts_once_toward_the_versions_to_stop_after() {
        let dir = tempfile::tempdir().unwrap();
        place(dir.path(), "digits", "1", b"part");
        let mut w = Watcher::new(ModelWatch::new(dir.path()).stop_after_versions(1));
        assert_eq!(
            updates(&mut w, 3),
            [("digits".to_string(), 1, b"part".to_vec())]
        );
        place(dir.path(), "digits", "1", b"part and the rest");
        assert_eq!(
            updates(&mut w, 3),
            [("digits".to_string(), 1, b"part and the rest".to_vec())]
        );
        assert!(matches!(w.pull(), Pulled::Done), "one version, sent twice");
    }

    /// Several names in one directory: the stream fails naming them, unless one is picked.
    /// Before, every name's versions went to the one model the operator serves, the last
    /// one delivered winning, in the directory's listing order.
    #[test]
    fn several_models_in_one_directory_need_one_picked() {
        let dir = tempfile::tempdir().unwrap();
        place(dir.path(), "a", "1", b"model a");
        place(dir.path(), "b", "3", b"model b");
        place(dir.path(), "b", "not-a-version", b"ignored");
        let mut both = Watcher::new(ModelWatch::new(dir.path()));
        match both.pull() {
            Pulled::Failed(message) => {
                assert!(message.contains("(a, b)"), "{message}");
                assert!(message.contains("ModelWatch::model"), "{message}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let mut b = Watcher::new(ModelWatch::new(dir.path()).model("b"));
        assert_eq!(
            updates(&mut b, 3),
            [("b".to_string(), 3, b"model b".to_vec())]
        );
    }
}
