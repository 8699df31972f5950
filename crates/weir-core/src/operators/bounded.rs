//! Operators for bounded inputs, the building blocks of Flink ML's estimators: an aggregate
//! emitted once when its whole input has arrived (`aggregate_to_end`), and a main input held
//! in a [`DataCache`] until a broadcast input is complete (`with_broadcast`, Flink ML's
//! `BroadcastUtils.withBroadcastStream`).
//!
//! Neither holds a capability at the epochs of the records it keeps: the output capability
//! follows the inputs' frontier, so that downstream frontiers (and the source flow-control
//! gate, which waits for the job's probe) keep moving while records are held. What they emit
//! therefore appears at the epoch at which it could be computed, not at the records' own.

use std::rc::Rc;

use serde::{de::DeserializeOwned, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

use crate::error::WeirError;
use crate::job::{Epoch, JobContext, Op};
use crate::operators::data_cache::{DataCache, DEFAULT_CACHE_BUDGET};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// The least time of a frontier, or `None` when it is empty.
fn least(frontier: &MutableAntichain<Epoch>) -> Option<Epoch> {
    frontier.frontier().iter().min().copied()
}

/// Moves a held capability forward to `time` (never back).
fn follow(cap: &mut Option<Capability<Epoch>>, time: Option<Epoch>) {
    if let (Some(cap), Some(time)) = (cap.as_mut(), time) {
        if *cap.time() < time {
            cap.downgrade(&time);
        }
    }
}

impl<'s, T: Data> DataStream<'s, T> {
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
    /// memory up to 256 MiB per instance, spilled to disk beyond) until `side` is complete,
    /// then `init` builds the state from all side records and `f` maps every batch of main
    /// records, the cached ones first. An `Err` from `init` or `f` fails the job with
    /// [`WeirError::Operator`] naming this operator. The outputs of cached records appear at
    /// the epoch at which the side input completed.
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
        let out = main.binary_frontier::<_, VecBuilder<U>, _, _, _, _>(
            side_stream,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, _info| {
                let fail = move |message: String| {
                    let operator = name.clone();
                    JobContext::fail(&failure, WeirError::Operator { operator, message });
                };
                let mut held = HeldMain::new(cap, init, f, fail);
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
                        if let Some((cap, out)) = held.release() {
                            produced += out.len();
                            output.session(&cap).give_iterator(out.into_iter());
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
    failed: bool,
    _out: std::marker::PhantomData<U>,
}

impl<S, St, T, U, I, F, E> HeldMain<S, St, T, U, I, F, E>
where
    T: Data + Serialize + DeserializeOwned,
    I: FnOnce(Vec<S>) -> Result<St, String>,
    F: FnMut(&mut St, Vec<T>) -> Result<Vec<U>, String>,
    E: Fn(String),
{
    fn new(cap: Capability<Epoch>, init: I, f: F, fail: E) -> Self {
        HeldMain {
            cap: Some(cap),
            side: Vec::new(),
            init: Some(init),
            f,
            fail,
            state: None,
            cache: DataCache::new(DEFAULT_CACHE_BUDGET, |batch: &Vec<T>| {
                std::mem::size_of_val(batch.as_slice()).max(1)
            }),
            failed: false,
            _out: std::marker::PhantomData,
        }
    }

    /// An instance outside the operator's placement: it never builds a state.
    fn idle(&mut self) {
        self.cap = None;
        self.init = None;
    }

    /// A main batch: mapped at once if the state exists, else cached.
    fn receive(&mut self, batch: Vec<T>) -> Option<Vec<U>> {
        if self.failed {
            return None;
        }
        if self.state.is_some() {
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
        self.failed = true;
        self.cap = None;
        (self.fail)(message);
    }

    /// Once the side input is complete: builds the state and maps the cached batches, all
    /// under the held capability, which is then dropped.
    fn release(&mut self) -> Option<(Capability<Epoch>, Vec<U>)> {
        let init = self.init.take()?;
        match init(std::mem::take(&mut self.side)) {
            Ok(state) => self.state = Some(state),
            Err(message) => {
                self.give_up(message);
                return None;
            }
        }
        let mut cached = Vec::new();
        if let Err(e) = self.cache.drain(|batch| cached.push(batch)) {
            self.give_up(e.to_string());
            return None;
        }
        let mut out = Vec::new();
        for batch in cached {
            match self.map(batch) {
                Some(mapped) => out.extend(mapped),
                None => return None,
            }
        }
        let cap = self.cap.take()?;
        Some((cap, out))
    }
}
