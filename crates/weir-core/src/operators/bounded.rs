//! Operators for bounded inputs, the building blocks of Flink ML's estimators: an aggregate
//! emitted once when its whole input has arrived (`aggregate_to_end`), a main input held
//! in a [`DataCache`] until a broadcast input is complete (`with_broadcast`, Flink ML's
//! `BroadcastUtils.withBroadcastStream`), and a map of batch records that does not wait for
//! epochs (`try_map_chunks`, for Flink ML's transformers).
//!
//! Neither holds a capability at the epochs of the records it keeps: the output capability
//! follows the inputs' frontier, so that downstream frontiers (and the source flow-control
//! gate, which waits for the sinks' frontier) keep moving while records are held. What they emit
//! therefore appears at the epoch at which it could be computed, not at the records' own.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

use crate::error::WeirError;
use crate::job::{Epoch, JobContext, Op};
use crate::operators::data_cache::{managed_cache_budget, DataCache};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// How long a `with_broadcast` instance maps cached records before it yields, so that the
/// operators downstream take (and free) what it produced while it still has records to map.
const RELEASE_SLICE: Duration = Duration::from_millis(2);
/// The time one call of `f` on cached records aims at: records are handed to `f` in pieces
/// that grow while calls are quicker than this (cheap records) and shrink when slower.
const RELEASE_PIECE: Duration = Duration::from_micros(250);

/// The bytes of a record without what it holds on the heap.
fn shallow_weight<T>(record: &T) -> usize {
    std::mem::size_of_val(record)
}

/// The least time of a frontier, or `None` when it is empty.
pub(crate) fn least(frontier: &MutableAntichain<Epoch>) -> Option<Epoch> {
    frontier.frontier().iter().min().copied()
}

/// Moves a held capability forward to `time` (never back).
pub(crate) fn follow(cap: &mut Option<Capability<Epoch>>, time: Option<Epoch>) {
    if let (Some(cap), Some(time)) = (cap.as_mut(), time) {
        if *cap.time() < time {
            cap.downgrade(&time);
        }
    }
}

/// Hands records to a mapping function a piece at a time, for operators that map many
/// records at once and yield in between (see [`RELEASE_SLICE`]): pieces grow while calls are
/// quicker than [`RELEASE_PIECE`] (cheap records) and shrink when they are much slower.
struct Pieces {
    size: usize,
}

impl Pieces {
    fn new() -> Self {
        Pieces { size: 1 }
    }

    /// Maps records off the front of `records` with `f` until none are left or `deadline`
    /// has passed, appending the outputs to `out`. The first `Err` stops it.
    fn map<T, U>(
        &mut self,
        records: &mut VecDeque<T>,
        deadline: Instant,
        out: &mut Vec<U>,
        mut f: impl FnMut(Vec<T>) -> Result<Vec<U>, String>,
    ) -> Result<(), String> {
        while !records.is_empty() {
            let n = self.size.min(records.len());
            let piece: Vec<T> = records.drain(..n).collect();
            let call = Instant::now();
            out.extend(f(piece)?);
            let took = call.elapsed();
            // Only whole pieces count as quick: a short last piece says nothing of the next.
            if took < RELEASE_PIECE && n == self.size {
                self.size = (self.size * 2).min(1 << 20);
            } else if took > 4 * RELEASE_PIECE {
                self.size = (self.size / 2).max(1);
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Ok(())
    }
}

impl<'s, T: Data> DataStream<'s, T> {
    /// [`DataStream::try_map_batch`] for streams whose records are batches already (a
    /// table's row batches): `f` maps records as they arrive, without waiting for their
    /// epoch to complete, a few at a time (pieces of well under a millisecond of work), and
    /// the operator yields every couple of milliseconds, so that the operators downstream
    /// consume (and free) its outputs while it still has input to map. Outputs keep their
    /// records' epochs and arrival order. An `Err` fails the job with
    /// [`WeirError::Operator`] naming this operator, and the instance maps nothing more.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("batches", vec![vec![1u64, 2], vec![3], vec![4, 5, 6]])
    ///         .try_map_chunks("sums", |batches: Vec<Vec<u64>>| {
    ///             Ok(batches.into_iter().map(|b| b.iter().sum::<u64>()).collect())
    ///         })
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![3, 3, 15]);
    /// ```
    pub fn try_map_chunks<U: Data>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(Vec<T>) -> Result<Vec<U>, String> + 'static,
    ) -> DataStream<'s, U> {
        let op = op.into();
        let (handle, stream) = self.attach(&op, "try_map_chunks");
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&self.ctx.failure), handle.name.clone());
        let scope = self.ctx.scope;
        let out =
            stream.unary::<VecBuilder<U>, _, _, _>(Pipeline, &handle.name, move |_cap, info| {
                let activator = scope.activator_for(Rc::clone(&info.address));
                // Records not mapped yet, each message's with a capability at its time.
                let mut pending: VecDeque<(Capability<Epoch>, VecDeque<T>)> = VecDeque::new();
                let mut pieces = Pieces::new();
                let mut failed = false;
                move |input, output| {
                    let _busy = metrics.busy_in(node);
                    let port = output.output_index();
                    let mut produced = 0;
                    let mut error = None;
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if failed || error.is_some() {
                            data.clear();
                            return;
                        }
                        let records = VecDeque::from(std::mem::take(data));
                        match cap.retain_least(port) {
                            Some(cap) => pending.push_back((cap, records)),
                            // A message without a time (none in Weir's jobs): mapped at once.
                            None => {
                                let mut records = records;
                                let mut out = Vec::new();
                                let forever = Instant::now() + Duration::from_secs(1 << 30);
                                match pieces.map(&mut records, forever, &mut out, &mut f) {
                                    Ok(()) => {
                                        produced += out.len();
                                        output.session(&cap).give_iterator(out.into_iter());
                                    }
                                    Err(e) => error = Some(e),
                                }
                            }
                        }
                    });
                    let deadline = Instant::now() + RELEASE_SLICE;
                    while error.is_none() && !failed {
                        let Some((cap, records)) = pending.front_mut() else {
                            break;
                        };
                        let mut out = Vec::new();
                        let result = pieces.map(records, deadline, &mut out, &mut f);
                        if !out.is_empty() {
                            produced += out.len();
                            output.session(&*cap).give_iterator(out.into_iter());
                        }
                        if let Err(e) = result {
                            error = Some(e);
                        } else if records.is_empty() {
                            pending.pop_front();
                        } else {
                            break;
                        }
                    }
                    if let Some(message) = error {
                        failed = true;
                        pending.clear();
                        let operator = name.clone();
                        JobContext::fail(&failure, WeirError::Operator { operator, message });
                    }
                    metrics.add_out(produced);
                    if !pending.is_empty() {
                        activator.activate();
                    }
                }
            });
        DataStream::from_parts(Rc::clone(&self.ctx), out, handle.node, handle.placement)
    }

    /// Folds all records each instance receives into one accumulator per instance, emitted
    /// once when the instance's input is complete (a bounded input has ended). Instances
    /// that received nothing emit `init()`.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("numbers", (1..=10u64).collect())
    ///         .fold_to_end("sums", || 0u64, |sum, x| *sum += x)
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take().iter().sum::<u64>(), 55);
    /// ```
    pub fn fold_to_end<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn() -> A + 'static,
        mut fold: impl FnMut(&mut A, T) + 'static,
    ) -> DataStream<'s, A> {
        let op = op.into();
        let (handle, stream) = self.attach(&op, "fold_to_end");
        self.ctx.refuse_checkpoints(&handle.name, "fold_to_end");
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        // Timely runs every operator on every worker; only the operator's own instances emit.
        let here = handle.placement.contains(&self.ctx.index);
        let out = stream.unary_frontier::<VecBuilder<A>, _, _, _>(
            Pipeline,
            &handle.name,
            move |cap, _info| {
                let mut held = here.then_some(cap);
                let mut acc = here.then(&init);
                move |(input, frontier), output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|_cap, data| {
                        metrics.add_in(data.len());
                        if let Some(acc) = acc.as_mut() {
                            data.drain(..).for_each(|x| fold(acc, x));
                        }
                    });
                    follow(&mut held, least(frontier));
                    if frontier.is_empty() {
                        if let (Some(cap), Some(acc)) = (held.take(), acc.take()) {
                            metrics.add_out(1);
                            output.session(&cap).give(acc);
                        }
                    }
                }
            },
        );
        DataStream::from_parts(Rc::clone(&self.ctx), out, handle.node, handle.placement)
    }

    /// An aggregate of the whole bounded stream, emitted once at its end by one instance:
    /// each instance folds its records into a partial (`{op}.partial`, before any exchange),
    /// and operator `op` (parallelism 1) merges the partials. The result does not depend on
    /// the parallelism as long as `merge` is associative and commutative.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("numbers", (1..=100u64).collect())
    ///         .aggregate_to_end("mean", || (0u64, 0u64),
    ///             |acc, x| { acc.0 += x; acc.1 += 1 },
    ///             |acc, other| { acc.0 += other.0; acc.1 += other.1 })
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take(), vec![(5050, 100)]);
    /// ```
    pub fn aggregate_to_end<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn() -> A + 'static,
        fold: impl FnMut(&mut A, T) + 'static,
        mut merge: impl FnMut(&mut A, A) + 'static,
    ) -> DataStream<'s, A> {
        let mut total = op.into();
        if total.parallelism.is_none() {
            total = total.parallelism(1);
        }
        let init = Rc::new(init);
        let init_partial = Rc::clone(&init);
        let here = self.placement.len();
        self.fold_to_end(
            crate::job::op(format!("{}.partial", total.name())).parallelism(here),
            move || init_partial(),
            fold,
        )
        .fold_to_end(
            total,
            move || init(),
            move |acc, partial| merge(acc, partial),
        )
    }

    /// Processes this stream with a state built from the whole of `side`, a bounded stream
    /// that every instance receives in full: main records are kept in a data cache (in
    /// memory up to the [managed budget](DataCache#budgets), spilled to disk beyond) until `side` is complete,
    /// then `init` builds the state from all side records and `f` maps every batch of main
    /// records, the cached ones first. An `Err` from `init` or `f` fails the job with
    /// [`WeirError::Operator`] naming this operator ([`WeirError::WithoutInput`] when `init`
    /// fails on an empty side input, so that a failure upstream that left it empty is the
    /// job's error). The outputs of cached records appear at
    /// the epoch at which the side input completed.
    ///
    /// Cached records are mapped a few at a time (pieces of an input batch, a couple of
    /// milliseconds per activation), and each piece's output is sent on before the next, so
    /// the operators downstream consume and free it meanwhile instead of the whole cached
    /// input's output being built at once.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let numbers = job.from_vec("numbers", (1..=4u64).collect());
    ///     let total = numbers.clone().aggregate_to_end("total", || 0u64, |s, x| *s += x, |s, o| *s += o);
    ///     numbers
    ///         .with_broadcast("share", total, |totals: Vec<u64>| Ok(totals[0]),
    ///             |total, batch: Vec<u64>| Ok(batch.into_iter().map(|x| x * 100 / *total).collect()))
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![10, 20, 30, 40]);
    /// ```
    pub fn with_broadcast<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        init: impl FnOnce(Vec<S>) -> Result<St, String> + 'static,
        f: impl FnMut(&mut St, Vec<T>) -> Result<Vec<U>, String> + 'static,
    ) -> DataStream<'s, U>
    where
        T: Serialize + DeserializeOwned,
    {
        self.with_broadcast_weighing(op, side, shallow_weight::<T>, init, f)
    }

    /// [`with_broadcast`](DataStream::with_broadcast) for records that hold data on the heap:
    /// `weigh` gives the bytes of a cached record, against the cache's [managed budget](DataCache#budgets)
    /// (`with_broadcast` counts only a record's own size, right for plain values).
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let rows = job.from_vec("rows", vec![vec![1u64, 2], vec![3]]);
    ///     let scale = job.from_vec("scale", vec![10u64]);
    ///     rows.with_broadcast_weighing(
    ///         "scaled",
    ///         scale,
    ///         |row: &Vec<u64>| 24 + 8 * row.len(),
    ///         |scales: Vec<u64>| Ok(scales[0]),
    ///         |s, batch: Vec<Vec<u64>>| Ok(batch.into_iter().map(|r| r.iter().sum::<u64>() * *s).collect()),
    ///     )
    ///     .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![30, 30]);
    /// ```
    pub fn with_broadcast_weighing<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        weigh: fn(&T) -> usize,
        init: impl FnOnce(Vec<S>) -> Result<St, String> + 'static,
        f: impl FnMut(&mut St, Vec<T>) -> Result<Vec<U>, String> + 'static,
    ) -> DataStream<'s, U>
    where
        T: Serialize + DeserializeOwned,
    {
        let op = op.into();
        let ctx = Rc::clone(&self.ctx);
        let main_edge = self.edge_to(&op);
        let handle = ctx.add_operator(
            &op,
            "with_broadcast",
            &[(self.node, main_edge), (side.node, Partitioning::Broadcast)],
        );
        ctx.refuse_checkpoints(&handle.name, "with_broadcast");
        let main = self.routed(main_edge, &handle.placement);
        let side_stream = side.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&ctx.failure), handle.name.clone());
        // Timely runs every operator on every worker; only the operator's own instances work.
        let here = handle.placement.contains(&ctx.index);
        let budget = managed_cache_budget(&ctx.config);
        let scope = ctx.scope;
        let out = main.binary_frontier::<_, VecBuilder<U>, _, _, _, _>(
            side_stream,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, info| {
                let activator = scope.activator_for(Rc::clone(&info.address));
                let fail = move |message: String, side_was_empty: bool| {
                    let operator = name.clone();
                    let error = if side_was_empty {
                        WeirError::WithoutInput { operator, message }
                    } else {
                        WeirError::Operator { operator, message }
                    };
                    JobContext::fail(&failure, error);
                };
                let mut held = HeldMain::new(cap, init, f, fail, (weigh, budget));
                if !here {
                    held.idle();
                }
                move |(input, input_frontier), (side, side_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    side.for_each(|_cap, data| held.side.append(data));
                    let mut produced = 0;
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        let batch = std::mem::take(data);
                        if let Some(out) = held.receive(batch) {
                            produced += out.len();
                            output.session(&cap).give_iterator(out.into_iter());
                        }
                    });
                    let time = match (least(input_frontier), least(side_frontier)) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    follow(&mut held.cap, time);
                    if side_frontier.is_empty() {
                        held.release();
                        let out = held.map_pending(RELEASE_SLICE);
                        if let (Some(cap), false) = (held.cap.as_ref(), out.is_empty()) {
                            produced += out.len();
                            output.session(cap).give_iterator(out.into_iter());
                        }
                        if held.pending.is_empty() {
                            // Everything cached is out: the held epoch may pass.
                            held.cap = None;
                        } else {
                            activator.activate();
                        }
                    }
                    metrics.add_out(produced);
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

/// The state of one `with_broadcast` instance.
struct HeldMain<S, St, T, U, I, F, E> {
    cap: Option<Capability<Epoch>>,
    side: Vec<S>,
    init: Option<I>,
    f: F,
    fail: E,
    state: Option<St>,
    cache: DataCache<Vec<T>>,
    /// Cached records still to map once the state exists, in arrival order.
    pending: VecDeque<T>,
    /// How many records one call of `f` on pending records gets.
    pieces: Pieces,
    failed: bool,
    _out: std::marker::PhantomData<U>,
}

impl<S, St, T, U, I, F, E> HeldMain<S, St, T, U, I, F, E>
where
    T: Data + Serialize + DeserializeOwned,
    I: FnOnce(Vec<S>) -> Result<St, String>,
    F: FnMut(&mut St, Vec<T>) -> Result<Vec<U>, String>,
    E: Fn(String, bool),
{
    fn new(
        cap: Capability<Epoch>,
        init: I,
        f: F,
        fail: E,
        (weigh, budget): (fn(&T) -> usize, usize),
    ) -> Self {
        HeldMain {
            cap: Some(cap),
            side: Vec::new(),
            init: Some(init),
            f,
            fail,
            state: None,
            cache: DataCache::new(budget, move |batch: &Vec<T>| {
                batch.iter().map(weigh).sum::<usize>().max(1)
            }),
            pending: VecDeque::new(),
            pieces: Pieces::new(),
            failed: false,
            _out: std::marker::PhantomData,
        }
    }

    /// An instance outside the operator's placement: it never builds a state.
    fn idle(&mut self) {
        self.cap = None;
        self.init = None;
    }

    /// A main batch: mapped at once if the state exists (and no cached records wait before
    /// it), else cached.
    fn receive(&mut self, batch: Vec<T>) -> Option<Vec<U>> {
        if self.failed {
            return None;
        }
        if self.state.is_some() {
            if !self.pending.is_empty() {
                self.pending.extend(batch);
                return None;
            }
            return self.map(batch);
        }
        if let Err(e) = self.cache.push(batch) {
            self.give_up(e.to_string());
        }
        None
    }

    fn map(&mut self, batch: Vec<T>) -> Option<Vec<U>> {
        let state = self.state.as_mut()?;
        match (self.f)(state, batch) {
            Ok(out) => Some(out),
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    fn give_up(&mut self, message: String) {
        self.give_up_because(message, false);
    }

    /// Fails the job; `side_was_empty` says the state could not be built from an empty side
    /// input (see [`WeirError::WithoutInput`]).
    fn give_up_because(&mut self, message: String, side_was_empty: bool) {
        self.failed = true;
        self.cap = None;
        self.pending.clear();
        (self.fail)(message, side_was_empty);
    }

    /// Once the side input is complete (the first time): builds the state and queues the
    /// cached batches for [`HeldMain::map_pending`], which maps them under the held
    /// capability.
    fn release(&mut self) {
        let Some(init) = self.init.take() else {
            return;
        };
        let side_was_empty = self.side.is_empty();
        match init(std::mem::take(&mut self.side)) {
            Ok(state) => self.state = Some(state),
            Err(message) => return self.give_up_because(message, side_was_empty),
        }
        let pending = &mut self.pending;
        if let Err(e) = self.cache.drain(|batch| pending.extend(batch)) {
            self.give_up(e.to_string());
        }
    }

    /// Maps pending (cached) records in pieces for about `slice`, and returns the outputs.
    fn map_pending(&mut self, slice: Duration) -> Vec<U> {
        let mut out = Vec::new();
        let Some(state) = self.state.as_mut() else {
            return out;
        };
        let f = &mut self.f;
        let deadline = Instant::now() + slice;
        let result = self
            .pieces
            .map(&mut self.pending, deadline, &mut out, |piece| {
                f(state, piece)
            });
        if let Err(message) = result {
            self.give_up(message);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{execute, Collector, Config, WeirError};

    /// Records slow enough to map that the operators yield between pieces.
    fn slow(x: u64) -> u64 {
        std::thread::sleep(std::time::Duration::from_micros(50));
        x * 2
    }

    #[test]
    fn try_map_chunks_maps_every_record_across_yields() {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(2), move |job| {
            job.from_vec("numbers", (0..400u64).collect())
                .try_map_chunks("double", |xs: Vec<u64>| {
                    Ok(xs.into_iter().map(slow).collect())
                })
                .collect("out", &sink);
            Ok(())
        })
        .unwrap();
        assert_eq!(out.sorted(), (0..400).map(|x| x * 2).collect::<Vec<_>>());
    }

    #[test]
    fn try_map_chunks_fails_the_job_naming_the_operator() {
        let error = execute(Config::threads(2), |job| {
            job.from_vec("numbers", (0..100u64).collect())
                .try_map_chunks("check", |xs: Vec<u64>| {
                    if xs.contains(&42) {
                        Err("42 is not allowed".to_string())
                    } else {
                        Ok(xs)
                    }
                })
                .for_each("drop", |_| {});
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(&error, WeirError::Operator { operator, message }
                if operator.contains("check") && message.contains("42 is not allowed")),
            "{error}"
        );
    }

    #[test]
    fn with_broadcast_releases_a_large_cache_in_pieces() {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(2), move |job| {
            let numbers = job.from_vec("numbers", (1..=300u64).collect());
            let total =
                numbers
                    .clone()
                    .aggregate_to_end("total", || 0u64, |s, x| *s += x, |s, o| *s += o);
            numbers
                .with_broadcast(
                    "scale",
                    total,
                    |totals: Vec<u64>| Ok(totals[0]),
                    |total, batch: Vec<u64>| {
                        Ok(batch
                            .into_iter()
                            .map(|x| slow(x) * 1_000_000 / *total)
                            .collect())
                    },
                )
                .collect("out", &sink);
            Ok(())
        })
        .unwrap();
        let total: u64 = (1..=300).sum();
        assert_eq!(
            out.sorted(),
            (1..=300u64)
                .map(|x| x * 2 * 1_000_000 / total)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn with_broadcast_fails_the_job_when_mapping_a_cached_piece_fails() {
        let error = execute(Config::threads(2), |job| {
            let numbers = job.from_vec("numbers", (0..200u64).collect());
            let count =
                numbers
                    .clone()
                    .aggregate_to_end("count", || 0u64, |s, _| *s += 1, |s, o| *s += o);
            numbers
                .with_broadcast(
                    "map",
                    count,
                    |counts: Vec<u64>| Ok(counts[0]),
                    |_, batch: Vec<u64>| {
                        if batch.contains(&150) {
                            Err("cannot map 150".to_string())
                        } else {
                            Ok(batch)
                        }
                    },
                )
                .for_each("drop", |_| {});
            Ok(())
        })
        .unwrap_err();
        assert!(error.to_string().contains("cannot map 150"), "{error}");
    }
}
