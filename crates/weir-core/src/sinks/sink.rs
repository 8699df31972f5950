//! Sinks: collect into memory, stdout, a callback, and JSON Lines / CSV part files.
//!
//! Every sink reports its input frontier to the worker's [`SinkFrontier`], so sources can see
//! how far the sinks have got (flow control); except sinks behind a bridge source, whose time
//! stands still while its task is idle.
//!
//! [`SinkFrontier`]: crate::sinks::sink_frontier::SinkFrontier

use std::cell::RefCell;
use std::fmt::Debug;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::error::WeirError;
use crate::job::Epoch;
use crate::job::{JobContext, Op};
use crate::report::OperatorMetrics;
use crate::sinks::output_dir::PartDir;
use crate::sinks::two_phase::{Encoder, Naming, SharedFiles, TwoPhaseFiles};
use crate::stream::{Data, DataStream, VecBuilder};

/// A thread-safe vector that a `collect` sink fills; clone it into the job closure and read
/// it after [`crate::execute`] returns. In a multi-process job each process sees the records
/// its own workers collected (give the sink parallelism 1 to gather everything in process 0).
#[derive(Debug)]
pub struct Collector<T> {
    inner: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Collector<T> {
    fn clone(&self) -> Self {
        Collector {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            inner: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T> Collector<T> {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }
    /// Takes the collected records out.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
    /// Takes the collected records out, sorted.
    pub fn sorted(&self) -> Vec<T>
    where
        T: Ord,
    {
        let mut v = self.take();
        v.sort();
        v
    }
    /// Number of records collected so far.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn extend(&self, data: &mut Vec<T>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(data);
    }
}

/// What one sink instance does with its input.
pub(crate) trait SinkInstance<T>: 'static {
    /// Takes a batch of records (the batch is cleared afterwards).
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError>;
    /// Called once when the input is complete.
    fn finish(&mut self) -> Result<(), WeirError> {
        Ok(())
    }
    /// After each activation: every epoch below `below` has been written.
    fn applied(&mut self, _below: Epoch) {}
}

impl<T, F: FnMut(&mut Vec<T>) + 'static> SinkInstance<T> for F {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        self(batch);
        Ok(())
    }
}

impl<'s, T: Data> DataStream<'s, T> {
    /// The generic sink: `make(instance)` builds the logic of each instance (on the workers
    /// that host one). The first error of an instance fails the job; the instance then
    /// discards its input.
    pub(crate) fn sink_with<S: SinkInstance<T>>(
        self,
        op: Op,
        kind: &str,
        make: impl FnOnce(usize) -> S,
    ) {
        let (handle, stream) = self.attach(&op, kind);
        let metrics: Rc<OperatorMetrics> = Rc::clone(&handle.metrics);
        let node = handle.node;
        let failure = Rc::clone(&self.ctx.failure);
        let mut instance = handle.instance.map(make);
        // A checkpoint waits until the sink has received its epoch (at-least-once).
        let received = self.ctx.state.enabled.then(|| self.ctx.state.watch());
        // A sink behind a source without a clock of its own (a bridge source: its time stands
        // still until its task emits) would hold every source back; it does not take part in
        // flow control.
        let mut report = (!self
            .ctx
            .plan
            .borrow()
            .upstream_has_kind(self.node, "bridge:source"))
        .then(|| self.ctx.sink_frontier.sink());
        stream.unary_frontier::<VecBuilder<()>, _, _, _>(
            Pipeline,
            &handle.name,
            move |_cap, _info| {
                move |(input, frontier), _output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|_cap, data| {
                        metrics.add_in(data.len());
                        if let Some(sink) = instance.as_mut() {
                            if let Err(e) = sink.write(data) {
                                JobContext::fail(&failure, e);
                                instance = None;
                            }
                        }
                        data.clear();
                    });
                    let first = frontier.frontier().first().copied();
                    if let Some(report) = report.as_mut() {
                        report.at(first);
                    }
                    let below = first.unwrap_or(Epoch::MAX);
                    if let Some(sink) = instance.as_mut() {
                        sink.applied(below);
                    }
                    if let Some(cell) = &received {
                        cell.set(below);
                    }
                    if frontier.is_empty() {
                        if let Some(mut sink) = instance.take() {
                            if let Err(e) = sink.finish() {
                                JobContext::fail(&failure, e);
                            }
                        }
                    }
                }
            },
        );
    }

    /// Appends every record to `collector`.
    pub fn collect(self, op: impl Into<Op>, collector: &Collector<T>) {
        let collector = collector.clone();
        // A collector is an object of this process: read in the first, it collects there.
        let op = Op {
            first: true,
            ..op.into()
        };
        self.sink_with(op, "sink:collect", move |_| {
            move |data: &mut Vec<T>| collector.extend(data)
        });
    }

    /// Calls `f` with every record (on the instance that receives it).
    pub fn for_each(self, op: impl Into<Op>, mut f: impl FnMut(T) + 'static) {
        self.sink_with(op.into(), "sink:callback", move |_| {
            move |data: &mut Vec<T>| data.drain(..).for_each(&mut f)
        });
    }

    /// Prints every record with `{:?}` on standard output.
    pub fn print(self, op: impl Into<Op>)
    where
        T: Debug,
    {
        self.sink_with(op.into(), "sink:stdout", |_| {
            |data: &mut Vec<T>| {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                for x in data.iter() {
                    let _ = writeln!(out, "{x:?}");
                }
            }
        });
    }
}

impl<'s, T: Data + Serialize> DataStream<'s, T> {
    /// Writes JSON Lines into directory `dir`: one `part-NNNNN.jsonl` per instance, written
    /// as `*.inprogress` and renamed when the input is complete.
    ///
    /// A directory that already holds output (from an earlier run) is a job error
    /// ([`crate::WeirError::OutputExists`]) unless overwrite is on ([`Config::overwrite`],
    /// `--overwrite`, or [`Op::overwrite`] for this sink): then what the directory holds is
    /// removed, so that only this run's part files remain.
    ///
    /// [`Config::overwrite`]: crate::Config::overwrite
    pub fn write_jsonl(self, op: impl Into<Op>, dir: impl AsRef<Path>) {
        self.write_parts(op.into(), dir.as_ref(), "jsonl", encode_json_line);
    }

    /// Writes CSV with a header line into directory `dir`, one part file per instance; an
    /// existing output is treated as by [`DataStream::write_jsonl`].
    pub fn write_csv(self, op: impl Into<Op>, dir: impl AsRef<Path>) {
        self.write_parts(op.into(), dir.as_ref(), "csv", |w, batch, first| {
            // The header goes before the first record of the part only.
            let mut csv = csv::WriterBuilder::new().has_headers(first).from_writer(w);
            for x in batch {
                csv.serialize(x).map_err(std::io::Error::other)?;
            }
            csv.flush()
        });
    }

    /// Writes all records as JSON Lines into the single file `path` (one instance, on
    /// worker 0), written as `PATH.inprogress` and renamed when complete.
    pub fn write_jsonl_file(self, op: impl Into<Op>, path: impl AsRef<Path>) {
        self.write_single_file(op.into(), path.as_ref().to_path_buf(), true);
    }

    /// Like [`DataStream::write_jsonl_file`], but writes no file when there are no records
    /// (and removes one an earlier run left).
    pub(crate) fn write_dead_letter_file(self, op: Op, path: PathBuf) {
        self.write_single_file(op, path, false);
    }

    fn write_single_file(self, op: Op, path: PathBuf, keep_empty: bool) {
        let op = op.parallelism(1);
        let operator = op.name.clone();
        self.ctx.sink_paths.borrow_mut().push(path.clone());
        if self.ctx.state.enabled {
            let naming = Naming::Single { path };
            return self.write_two_phase(op, "sink:jsonl_file", naming, encode_json_line, None);
        }
        self.sink_with(op, "sink:jsonl_file", move |_| {
            let mut sink = FileSink::new(operator, path, encode_json_line);
            sink.keep_empty = keep_empty;
            sink
        });
    }

    fn write_parts(self, op: Op, dir: &Path, extension: &'static str, encode: Encoder<T>) {
        self.ctx
            .first_file_sink
            .borrow_mut()
            .get_or_insert_with(|| dir.to_path_buf());
        self.ctx.sink_paths.borrow_mut().push(dir.to_path_buf());
        let kind = format!("sink:{extension}");
        let parts = Rc::new(PartDir {
            operator: op.name.clone(),
            dir: dir.to_path_buf(),
            extension,
            instances: self.ctx.parallelism(&op),
            overwrite: op.overwrite.unwrap_or(self.ctx.config.overwrite),
            sink_paths: Rc::clone(&self.ctx.sink_paths),
        });
        let placement = self.ctx.placement_for(&op, &[self.node]);
        let cleaners = cleaners(&self.ctx.config, &placement);
        let operator = op.name.clone();
        if self.ctx.state.enabled {
            let dir = parts.dir.clone();
            let naming = move |instance| Naming::Parts {
                dir: dir.clone(),
                extension,
                instance,
            };
            let output = PartDir {
                instances: 0,
                ..(*parts).clone()
            };
            return self.write_parts_two_phase(op, &kind, naming, encode, (output, cleaners));
        }
        self.sink_with(op, &kind, move |instance| {
            let mut sink = FileSink::new(operator, parts.part_path(instance), encode);
            sink.prepare = Some(PartSlot {
                dir: parts,
                instance,
                cleaner: cleaners[instance],
            });
            sink
        });
    }
}

/// For each instance placed on `placement` (global worker indices): whether it is the first
/// instance in its process, the one that clears stale output there.
fn cleaners(config: &crate::Config, placement: &[usize]) -> Vec<bool> {
    let threads = config.threads_per_process();
    let mut seen = Vec::new();
    placement
        .iter()
        .map(|&worker| {
            let process = worker / threads;
            let first = !seen.contains(&process);
            seen.push(process);
            first
        })
        .collect()
}

/// A two-phase sink instance as its operator sees it.
struct TwoPhaseSink<T>(Rc<RefCell<TwoPhaseFiles<T>>>);

impl<T: 'static> SinkInstance<T> for TwoPhaseSink<T> {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        self.0.borrow_mut().write(batch)
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        let mut files = self.0.borrow_mut();
        files.applied(Epoch::MAX);
        files.finish()
    }

    fn applied(&mut self, below: Epoch) {
        self.0.borrow().applied(below);
    }
}

impl<'s, T: Data + Serialize> DataStream<'s, T> {
    /// A part-file sink of a job that checkpoints (see [`crate::sinks::two_phase`]).
    fn write_parts_two_phase(
        self,
        op: Op,
        kind: &str,
        naming: impl Fn(usize) -> Naming + 'static,
        encode: Encoder<T>,
        (output, cleaners): (PartDir, Vec<bool>),
    ) {
        self.two_phase_sink(op, kind, move |name, instance, first| {
            let slot = Some((output, cleaners[instance]));
            TwoPhaseFiles::new(name, naming(instance), encode, first, slot)
        });
    }

    /// A single-file sink of a job that checkpoints.
    fn write_two_phase(
        self,
        op: Op,
        kind: &str,
        naming: Naming,
        encode: Encoder<T>,
        output: Option<(PartDir, bool)>,
    ) {
        self.two_phase_sink(op, kind, move |name, _instance, first| {
            TwoPhaseFiles::new(name, naming, encode, first, output)
        });
    }

    /// The sink of the files `files(name, instance, first checkpoint)` builds, registered
    /// with the checkpoint protocol; the first checkpoint follows the restored one.
    fn two_phase_sink(
        self,
        op: Op,
        kind: &str,
        files: impl FnOnce(String, usize, u64) -> TwoPhaseFiles<T> + 'static,
    ) {
        let ctx = Rc::clone(&self.ctx);
        let name = op.name.clone();
        let first = ctx
            .state
            .restored
            .as_ref()
            .map_or(1, |r| r.manifest().id + 1);
        ctx.state.claim(&name);
        self.sink_with(op, kind, move |instance| {
            let files = files(name.clone(), instance, first);
            TwoPhaseSink(register_two_phase(&ctx, &name, instance, files))
        });
    }
}

/// Registers a two-phase sink instance with the checkpoint protocol.
fn register_two_phase<T: 'static>(
    ctx: &JobContext<'_>,
    name: &str,
    instance: usize,
    files: TwoPhaseFiles<T>,
) -> Rc<RefCell<TwoPhaseFiles<T>>> {
    let files = Rc::new(RefCell::new(files));
    let shared: Rc<dyn crate::state::Checkpointed> = Rc::new(SharedFiles(Rc::clone(&files)));
    let cell = ctx.state.register(name, instance, shared);
    files.borrow_mut().set_progress_cell(cell);
    files
}

fn encode_json_line<T: Serialize>(
    w: &mut BufWriter<File>,
    batch: &[T],
    _first: bool,
) -> std::io::Result<()> {
    for x in batch {
        serde_json::to_writer(&mut *w, x).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// A file written as `PATH.inprogress` and atomically renamed to `PATH` when complete.
/// Every instance leaves its file, even when it received no records.
struct FileSink<T> {
    operator: String,
    path: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
    written: u64,
    encode: Encoder<T>,
    /// Leave a file even when no record arrived.
    keep_empty: bool,
    /// A part file: check its directory for stale output before the first write.
    prepare: Option<PartSlot>,
}

/// A part file's place: its directory, its instance, and whether it clears stale output.
struct PartSlot {
    dir: Rc<PartDir>,
    instance: usize,
    cleaner: bool,
}

impl<T> FileSink<T> {
    fn new(operator: String, path: PathBuf, encode: Encoder<T>) -> Self {
        let mut temp = path.as_os_str().to_owned();
        temp.push(".inprogress");
        FileSink {
            operator,
            path,
            temp: temp.into(),
            writer: None,
            written: 0,
            encode,
            keep_empty: true,
            prepare: None,
        }
    }

    fn io_error(&self, path: &Path, source: std::io::Error) -> WeirError {
        WeirError::Io {
            operator: self.operator.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    fn writer(&mut self) -> Result<&mut BufWriter<File>, WeirError> {
        if self.writer.is_none() {
            if let Some(slot) = self.prepare.take() {
                slot.dir.prepare(slot.instance, slot.cleaner)?;
            }
            if let Some(parent) = self.temp.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| self.io_error(parent, e))?;
            }
            let file = File::create(&self.temp).map_err(|e| self.io_error(&self.temp, e))?;
            self.writer = Some(BufWriter::with_capacity(256 * 1024, file));
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }
}

impl<T: 'static> SinkInstance<T> for FileSink<T> {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (encode, first) = (self.encode, self.written == 0);
        let result = encode(self.writer()?, batch, first);
        self.written += batch.len() as u64;
        result.map_err(|e| self.io_error(&self.temp, e))
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        if self.written == 0 && !self.keep_empty {
            // No file this time: a file left by an earlier run would be taken for this one's.
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(self.io_error(&self.path, e))
                }
                _ => Ok(()),
            };
        }
        self.writer()?;
        let mut w = self.writer.take().expect("opened above");
        w.flush()
            .and_then(|_| w.get_ref().sync_all())
            .map_err(|e| self.io_error(&self.temp, e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| self.io_error(&self.path, e))
    }
}

impl<'s> DataStream<'s, crate::dead_letter::DeadLetter> {
    /// Logs dead letters on stderr (the first 20 per instance, then a note).
    pub(crate) fn warn_on_stderr(self, op: Op) {
        self.sink_with(op, "sink:dead-letter-log", |_| {
            let mut seen = 0u64;
            move |data: &mut Vec<crate::dead_letter::DeadLetter>| {
                for d in data.drain(..) {
                    seen += 1;
                    if seen <= 20 {
                        tracing::warn!("dead letter: {d}");
                    } else if seen == 21 {
                        tracing::warn!(
                            "more dead letters follow; see the job report for the count"
                        );
                    }
                }
            }
        });
    }
}
