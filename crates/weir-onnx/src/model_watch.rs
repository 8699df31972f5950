//! A model stream from a directory laid out as TF Serving does: `DIR/NAME/VERSION/model.onnx`.
//! Each new (higher) version of a name becomes a [`ModelUpdate`] carrying the file's bytes, so
//! every worker, on any host, loads the same model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_core::{op, DataStream, EpochPolicy, Job, Op, PullSource, Pulled};

use crate::predict::{ModelSource, ModelUpdate};

/// Where and how to watch for model versions. Place a version atomically (write it elsewhere
/// and rename the version directory in): a half-written model is rejected by the operator.
#[derive(Clone, Debug)]
pub struct ModelWatch {
    dir: PathBuf,
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
            poll: Duration::from_millis(100),
            epochs: Duration::from_millis(100),
            stop_after_versions: None,
            idle_timeout: None,
        }
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
    /// End the stream after this many versions (for bounded jobs and tests).
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

struct Watcher {
    watch: ModelWatch,
    latest: BTreeMap<String, u64>,
    emitted: usize,
    last_new: Instant,
    ready: Vec<ModelUpdate>,
}

impl Watcher {
    /// The newest version of each model that is newer than what was emitted.
    fn scan(&mut self) {
        let Ok(names) = std::fs::read_dir(&self.watch.dir) else {
            return;
        };
        for name in names.flatten() {
            let model = name.file_name().to_string_lossy().into_owned();
            let Ok(versions) = std::fs::read_dir(name.path()) else {
                continue;
            };
            let newest = versions
                .flatten()
                .filter_map(|v| {
                    Some((
                        v.file_name().to_str()?.parse::<u64>().ok()?,
                        v.path().join("model.onnx"),
                    ))
                })
                .filter(|(_, file)| file.is_file())
                .max_by_key(|(version, _)| *version);
            if let Some((version, file)) = newest {
                if self.latest.get(&model).is_none_or(|seen| version > *seen) {
                    match std::fs::read(&file) {
                        Ok(bytes) => {
                            self.latest.insert(model.clone(), version);
                            self.last_new = Instant::now();
                            self.ready.push(ModelUpdate {
                                name: model,
                                version,
                                source: ModelSource::Bytes(bytes),
                                candidate: false,
                            });
                        }
                        Err(e) => {
                            tracing::warn!("model watch: cannot read {}: {e}", file.display())
                        }
                    }
                }
            }
        }
    }
}

impl PullSource<ModelUpdate> for Watcher {
    fn pull(&mut self) -> Pulled<ModelUpdate> {
        if self.ready.is_empty() {
            if self
                .watch
                .stop_after_versions
                .is_some_and(|n| self.emitted >= n)
                || self
                    .watch
                    .idle_timeout
                    .is_some_and(|t| self.last_new.elapsed() >= t)
            {
                return Pulled::Done;
            }
            self.scan();
        }
        match self.ready.pop() {
            Some(update) => {
                self.emitted += 1;
                Pulled::Record(update)
            }
            None => Pulled::Pending(self.watch.poll),
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
        self.pull_source(o, move |_, _| Watcher {
            watch,
            latest: BTreeMap::new(),
            emitted: 0,
            last_new: Instant::now(),
            ready: Vec::new(),
        })
    }
}
