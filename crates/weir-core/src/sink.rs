//! Sinks: collect into memory, stdout, a callback, and JSON Lines / CSV part files.
//!
//! Every sink feeds the job's probe, so sources can see how far the sinks have got (flow
//! control) and the job knows when all output is written.

use std::fmt::Debug;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;

use crate::error::WeirError;
use crate::job::{JobContext, Op};
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

impl<'s, T: Data> DataStream<'s, T> {
    /// The generic sink: `on_batch` gets each batch of records of an instance; `on_done`
    /// runs once when the input is exhausted, on every instance.
    pub(crate) fn sink_with(
        self,
        op: Op,
        kind: &str,
        mut on_batch: impl FnMut(&mut Vec<T>) + 'static,
        mut on_done: impl FnMut() + 'static,
    ) {
        let (handle, stream) = self.attach(&op, kind);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let is_instance = handle.instance.is_some();
        let out = stream.unary_frontier::<VecBuilder<()>, _, _, _>(
            Pipeline,
            &handle.name,
            move |_cap, _info| {
                let mut done = !is_instance;
                move |(input, frontier), _output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|_cap, data| {
                        metrics.add_in(data.len());
                        on_batch(data);
                        data.clear();
                    });
                    if !done && frontier.is_empty() {
                        done = true;
                        on_done();
                    }
                }
            },
        );
        out.probe_with(&self.ctx.probe);
    }

    /// Appends every record to `collector`.
    pub fn collect(self, op: impl Into<Op>, collector: &Collector<T>) {
        let collector = collector.clone();
        self.sink_with(
            op.into(),
            "sink:collect",
            move |data| collector.extend(data),
            || {},
        );
    }

    /// Calls `f` with every record (on the instance that receives it).
    pub fn for_each(self, op: impl Into<Op>, mut f: impl FnMut(T) + 'static) {
        self.sink_with(
            op.into(),
            "sink:callback",
            move |data| data.drain(..).for_each(&mut f),
            || {},
        );
    }

    /// Prints every record with `{:?}` on standard output.
    pub fn print(self, op: impl Into<Op>)
    where
        T: Debug,
    {
        self.sink_with(
            op.into(),
            "sink:stdout",
            |data| {
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                for x in data.iter() {
                    let _ = writeln!(out, "{x:?}");
                }
            },
            || {},
        );
    }

    /// Writes JSON Lines into directory `dir`: one `part-NNNNN.jsonl` per instance, written
    /// as `*.inprogress` and renamed when the input is complete.
    pub fn write_jsonl(self, op: impl Into<Op>, dir: impl AsRef<Path>)
    where
        T: Serialize,
    {
        self.write_parts(
            op.into(),
            dir.as_ref(),
            "jsonl",
            |w: &mut BufWriter<File>, x: &T, _first| {
                serde_json::to_writer(&mut *w, x).map_err(std::io::Error::other)?;
                w.write_all(b"\n")
            },
        );
    }

    /// Writes CSV with a header line into directory `dir`, one part file per instance.
    pub fn write_csv(self, op: impl Into<Op>, dir: impl AsRef<Path>)
    where
        T: Serialize,
    {
        self.write_parts(
            op.into(),
            dir.as_ref(),
            "csv",
            move |w: &mut BufWriter<File>, x: &T, first| {
                // The header goes before the first record of the part only.
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(first)
                    .from_writer(&mut *w);
                csv.serialize(x).map_err(std::io::Error::other)?;
                csv.flush()
            },
        );
    }

    fn write_parts(
        self,
        op: Op,
        dir: &Path,
        extension: &'static str,
        mut encode: impl FnMut(&mut BufWriter<File>, &T, bool) -> std::io::Result<()> + 'static,
    ) {
        let ctx = Rc::clone(&self.ctx);
        {
            let mut first = ctx.first_file_sink.borrow_mut();
            if first.is_none() {
                *first = Some(dir.to_path_buf());
            }
        }
        // Which instance are we? Known once attached; compute the same way `attach` does.
        let requested = op.parallelism.unwrap_or(ctx.workers).clamp(1, ctx.workers);
        let placement = crate::plan::spread(requested, ctx.workers);
        let instance = placement.iter().position(|&w| w == ctx.index);
        let name = op.name.clone();
        let failure = Rc::clone(&ctx.failure);
        let dir = dir.to_path_buf();
        let mut part: Option<(BufWriter<File>, PathBuf, PathBuf)> = None;
        let mut written = 0u64;
        let mut failed = false;
        let io_fail = {
            let failure = Rc::clone(&failure);
            let name = name.clone();
            move |path: &Path, e: std::io::Error| {
                JobContext::fail(
                    &failure,
                    WeirError::Io {
                        operator: name.clone(),
                        path: path.to_path_buf(),
                        source: e,
                    },
                )
            }
        };
        let io_fail2 = io_fail.clone();
        let open = move |part: &mut Option<(BufWriter<File>, PathBuf, PathBuf)>| -> Result<(), (PathBuf, std::io::Error)> {
            if part.is_none() {
                let i = instance.unwrap_or(0);
                let final_path = dir.join(format!("part-{i:05}.{extension}"));
                let temp = dir.join(format!("part-{i:05}.{extension}.inprogress"));
                std::fs::create_dir_all(&dir).map_err(|e| (dir.clone(), e))?;
                let file = File::create(&temp).map_err(|e| (temp.clone(), e))?;
                *part = Some((BufWriter::with_capacity(256 * 1024, file), temp, final_path));
            }
            Ok(())
        };
        let part = Rc::new(std::cell::RefCell::new(part.take()));
        let part2 = Rc::clone(&part);
        let open2 = open.clone();
        self.sink_with(
            op,
            match extension {
                "jsonl" => "sink:jsonl",
                _ => "sink:csv",
            },
            move |data| {
                if failed {
                    return;
                }
                let mut part = part.borrow_mut();
                if let Err((path, e)) = open(&mut part) {
                    failed = true;
                    return io_fail(&path, e);
                }
                let (w, temp, _) = part.as_mut().expect("opened above");
                for x in data.iter() {
                    if let Err(e) = encode(w, x, written == 0) {
                        failed = true;
                        return io_fail(temp, e);
                    }
                    written += 1;
                }
            },
            move || {
                // Every instance leaves a (possibly empty) part file, so readers see all parts.
                let mut part = part2.borrow_mut();
                if let Err((path, e)) = open2(&mut part) {
                    return io_fail2(&path, e);
                }
                if let Some((mut w, temp, final_path)) = part.take() {
                    let result = w
                        .flush()
                        .and_then(|_| w.get_ref().sync_all())
                        .and_then(|_| std::fs::rename(&temp, &final_path));
                    if let Err(e) = result {
                        io_fail2(&temp, e);
                    }
                }
            },
        );
    }
}

impl<'s, T: Data + Serialize> DataStream<'s, T> {
    /// Writes all records as JSON Lines into the single file `path` (one instance, on
    /// worker 0), written as `PATH.inprogress` and renamed when complete.
    pub fn write_jsonl_file(self, op: impl Into<Op>, path: impl AsRef<Path>) {
        let op = op.into().parallelism(1);
        let path = path.as_ref().to_path_buf();
        let temp = {
            let mut t = path.as_os_str().to_owned();
            t.push(".inprogress");
            PathBuf::from(t)
        };
        let failure = Rc::clone(&self.ctx.failure);
        let name = op.name.clone();
        let state: Rc<std::cell::RefCell<Option<BufWriter<File>>>> = Rc::default();
        let state2 = Rc::clone(&state);
        let (fail1, fail2) = (Rc::clone(&failure), failure);
        let (name1, name2) = (name.clone(), name);
        let (temp1, temp2, path2) = (temp.clone(), temp, path);
        let open = move |slot: &mut Option<BufWriter<File>>, temp: &Path| -> std::io::Result<()> {
            if slot.is_none() {
                if let Some(parent) = temp.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                *slot = Some(BufWriter::new(File::create(temp)?));
            }
            Ok(())
        };
        self.sink_with(
            op,
            "sink:jsonl_file",
            move |data| {
                let mut slot = state.borrow_mut();
                let result = open(&mut slot, &temp1).and_then(|_| {
                    let w = slot.as_mut().expect("opened above");
                    for x in data.iter() {
                        serde_json::to_writer(&mut *w, x).map_err(std::io::Error::other)?;
                        w.write_all(b"\n")?;
                    }
                    Ok(())
                });
                if let Err(e) = result {
                    JobContext::fail(
                        &fail1,
                        WeirError::Io {
                            operator: name1.clone(),
                            path: temp1.clone(),
                            source: e,
                        },
                    );
                }
            },
            move || {
                let mut slot = state2.borrow_mut();
                let result = open(&mut slot, &temp2).and_then(|_| {
                    let mut w = slot.take().expect("opened above");
                    w.flush()?;
                    std::fs::rename(&temp2, &path2)
                });
                if let Err(e) = result {
                    JobContext::fail(
                        &fail2,
                        WeirError::Io {
                            operator: name2.clone(),
                            path: path2.clone(),
                            source: e,
                        },
                    );
                }
            },
        );
    }
}

impl<'s> DataStream<'s, crate::dead_letter::DeadLetter> {
    /// Logs dead letters on stderr (the first 20 per instance, then a count).
    pub(crate) fn warn_on_stderr(self, op: Op) {
        let mut seen = 0u64;
        self.sink_with(
            op,
            "sink:dead-letter-log",
            move |data| {
                for d in data.drain(..) {
                    seen += 1;
                    if seen <= 20 {
                        eprintln!("weir: dead letter: {d}");
                    } else if seen == 21 {
                        eprintln!(
                            "weir: more dead letters follow; see the job report for the count"
                        );
                    }
                }
            },
            || {},
        );
    }
}
