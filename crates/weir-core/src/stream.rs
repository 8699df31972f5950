//! `DataStream`: a timely stream of records plus the plan node it comes from, and the
//! element-wise operators (map, flat_map, filter, inspect, union, rebalance, broadcast,
//! map_batch).

use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::{Concat, Exchange as _};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::Stream;

use crate::error::WeirError;
use crate::job::{Epoch, Job, JobContext, Op, OpHandle};
use crate::operators::epoch_stash::EpochStash;
use crate::operators::split_results::split_results;
use crate::plan::{NodeId, Partitioning};

/// Records that can flow through a Weir job: cloneable and serialisable, so they can cross
/// worker threads and processes (timely encodes them with serde + bincode).
///
/// Avoid `#[serde(untagged)]`, `#[serde(flatten)]` and `serde_json::Value` in record types:
/// bincode cannot decode them, which shows only in multi-process runs.
pub trait Data: timely::ExchangeData + Clone {}
impl<T: timely::ExchangeData + Clone> Data for T {}

pub(crate) type VecBuilder<T> = CapacityContainerBuilder<Vec<T>>;

/// How the next operator should receive this stream's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Forward if the placements match, otherwise rebalance.
    Auto,
    /// Round-robin, always.
    Rebalance,
    /// To every instance.
    Broadcast,
}

/// A stream of records of type `T`, produced by a named operator.
///
/// Operators consume the stream and return a new one; clone a stream to feed it to several
/// operators.
pub struct DataStream<'s, T> {
    pub(crate) ctx: Rc<JobContext<'s>>,
    pub(crate) stream: Stream<'s, Epoch, Vec<T>>,
    pub(crate) node: NodeId,
    pub(crate) placement: Rc<[usize]>,
    pub(crate) route: Route,
}

impl<T: Clone + 'static> Clone for DataStream<'_, T> {
    fn clone(&self) -> Self {
        DataStream {
            ctx: Rc::clone(&self.ctx),
            stream: self.stream.clone(),
            node: self.node,
            placement: Rc::clone(&self.placement),
            route: self.route,
        }
    }
}

impl<'s, T: Data> DataStream<'s, T> {
    pub(crate) fn from_parts(
        ctx: Rc<JobContext<'s>>,
        stream: Stream<'s, Epoch, Vec<T>>,
        node: NodeId,
        placement: Rc<[usize]>,
    ) -> Self {
        DataStream {
            ctx,
            stream,
            node,
            placement,
            route: Route::Auto,
        }
    }

    /// The underlying timely stream, for operators Weir does not have.
    pub fn inner(&self) -> &Stream<'s, Epoch, Vec<T>> {
        &self.stream
    }

    /// Wraps a timely stream produced by a hand-written operator, registering it in the plan.
    pub fn from_timely(
        job: &Job<'s>,
        op: impl Into<Op>,
        inputs: &[&dyn AsNode],
        stream: Stream<'s, Epoch, Vec<T>>,
    ) -> Self {
        let edges: Vec<_> = inputs
            .iter()
            .map(|i| (i.node_id(), Partitioning::Forward))
            .collect();
        let handle = job.ctx.add_operator(&op.into(), "custom", &edges);
        DataStream::from_parts(Rc::clone(&job.ctx), stream, handle.node, handle.placement)
    }

    /// Registers a downstream operator fed by this stream, and returns its handle, the
    /// stream routed to its instances, and the partitioning used.
    pub(crate) fn attach(&self, op: &Op, kind: &str) -> (OpHandle, Stream<'s, Epoch, Vec<T>>) {
        // Decide the edge before registering (parallelism is validated there).
        let partitioning = self.edge_to(op);
        let handle = self
            .ctx
            .add_operator(op, kind, &[(self.node, partitioning)]);
        let stream = self.routed(partitioning, &handle.placement);
        (handle, stream)
    }

    /// How this stream reaches an operator configured by `op`.
    pub(crate) fn edge_to(&self, op: &Op) -> Partitioning {
        let target = self.ctx.placement_for(op, &[self.node]);
        match self.route {
            Route::Auto if *target == *self.placement => Partitioning::Forward,
            Route::Auto | Route::Rebalance => Partitioning::Rebalance,
            Route::Broadcast => Partitioning::Broadcast,
        }
    }

    /// The stream moved to the workers in `placement` according to `partitioning`.
    pub(crate) fn routed(
        &self,
        partitioning: Partitioning,
        placement: &Rc<[usize]>,
    ) -> Stream<'s, Epoch, Vec<T>> {
        match partitioning {
            Partitioning::Forward => self.stream.clone(),
            // `attach` never asks for Hash: keyed operators route with their own pact.
            Partitioning::Rebalance | Partitioning::Hash => {
                let targets = Rc::clone(placement);
                // Start each sender at a different target so small batches spread too.
                let mut next = self.ctx.index;
                self.stream.clone().exchange(move |_| {
                    next = next.wrapping_add(1);
                    targets[next % targets.len()] as u64
                })
            }
            Partitioning::Broadcast => {
                let targets = Rc::clone(placement);
                self.stream
                    .clone()
                    .flat_map(move |x: T| {
                        let targets = Rc::clone(&targets);
                        (0..targets.len()).map(move |i| (targets[i] as u64, x.clone()))
                    })
                    .exchange(|(w, _)| *w)
                    .map(|(_, x)| x)
            }
        }
    }

    /// Applies an element-wise operator: `logic` turns each input batch into output records.
    pub(crate) fn batchwise<U: Data>(
        self,
        op: Op,
        kind: &str,
        mut logic: impl FnMut(&mut Vec<T>, &mut Vec<U>) + 'static,
    ) -> DataStream<'s, U> {
        let (handle, stream) = self.attach(&op, kind);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let out =
            stream.unary::<VecBuilder<U>, _, _, _>(Pipeline, &handle.name, move |_cap, _info| {
                let mut buffer = Vec::new();
                move |input, output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        logic(data, &mut buffer);
                        metrics.add_out(buffer.len());
                        if !buffer.is_empty() {
                            output.session(&cap).give_container(&mut buffer);
                            buffer.clear();
                        }
                    });
                }
            });
        DataStream::from_parts(Rc::clone(&self.ctx), out, handle.node, handle.placement)
    }

    /// Transforms every record.
    ///
    /// ```
    /// use weir_core::{execute, Config, Collector};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("numbers", (1..=4u64).collect())
    ///         .map("double", |x| x * 2)
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![2, 4, 6, 8]);
    /// ```
    pub fn map<U: Data>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(T) -> U + 'static,
    ) -> DataStream<'s, U> {
        self.batchwise(op.into(), "map", move |data, out| {
            out.extend(data.drain(..).map(&mut f))
        })
    }

    /// Turns every record into zero or more records.
    pub fn flat_map<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(T) -> I + 'static,
    ) -> DataStream<'s, U> {
        self.batchwise(op.into(), "flat_map", move |data, out| {
            for x in data.drain(..) {
                out.extend(f(x));
            }
        })
    }

    /// Transforms every record with a function that may reject it: an `Err` becomes a
    /// [`crate::DeadLetter`] of the job (counted as this operator's dead letters, written to
    /// the job's dead-letter output, or failing the job with `--fail-fast`).
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config, DeadLetter};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// let report = execute(Config::threads(2), move |job| {
    ///     job.from_vec("lines", vec!["1".to_string(), "x".into(), "3".into()])
    ///         .try_map("parse", |s: String| {
    ///             s.parse::<u64>().map_err(|e| DeadLetter::new("parse", "lines", e.to_string(), s.as_bytes()))
    ///         })
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![1, 3]);
    /// assert_eq!(report.operator("parse").unwrap().dead_letters, 1);
    /// ```
    pub fn try_map<U: Data>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(T) -> std::result::Result<U, crate::DeadLetter> + 'static,
    ) -> DataStream<'s, U> {
        let ctx = Rc::clone(&self.ctx);
        let (handle, stream) = self.attach(&op.into(), "try_map");
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let out = stream.unary::<VecBuilder<std::result::Result<U, crate::DeadLetter>>, _, _, _>(
            Pipeline,
            &handle.name,
            move |_cap, _info| {
                move |input, output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        let results: Vec<_> = data.drain(..).map(&mut f).collect();
                        let ok = results.iter().filter(|r| r.is_ok()).count();
                        metrics.add_out(ok);
                        metrics.add_dead((results.len() - ok) as u64);
                        output.session(&cap).give_iterator(results.into_iter());
                    });
                }
            },
        );
        let (ok, err) = split_results(out, &handle.name, |dead| dead);
        ctx.dead_letters
            .borrow_mut()
            .push((err, handle.node, Rc::clone(&handle.placement)));
        DataStream::from_parts(ctx, ok, handle.node, handle.placement)
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(&T) -> bool + 'static,
    ) -> DataStream<'s, T> {
        self.batchwise(op.into(), "filter", move |data, out| {
            out.extend(data.drain(..).filter(|x| f(x)))
        })
    }

    /// Calls `f` on every record and passes it on unchanged.
    pub fn inspect(self, op: impl Into<Op>, mut f: impl FnMut(&T) + 'static) -> DataStream<'s, T> {
        self.batchwise(op.into(), "inspect", move |data, out| {
            for x in data.iter() {
                f(x);
            }
            std::mem::swap(data, out);
        })
    }

    /// Merges two streams of the same type.
    pub fn union(self, op: impl Into<Op>, other: DataStream<'s, T>) -> DataStream<'s, T> {
        // A union keeps records where they are: its "instances" are the inputs' workers.
        let inputs = [
            (self.node, &self.placement[..]),
            (other.node, &other.placement[..]),
        ];
        let (node, placement) = self.ctx.add_merge(op.into(), "union", &inputs);
        let stream = self.stream.concat(other.stream);
        DataStream::from_parts(Rc::clone(&self.ctx), stream, node, placement)
    }

    /// The next operator receives the records round-robin (Flink's `rebalance`).
    pub fn rebalance(mut self) -> Self {
        self.route = Route::Rebalance;
        self
    }

    /// Every instance of the next operator receives every record (Flink's `broadcast`).
    pub fn broadcast(mut self) -> Self {
        self.route = Route::Broadcast;
        self
    }

    /// Calls `f` once per epoch and instance with all records of that epoch the instance
    /// received: the hook for vectorised operators (model scoring, feature batches).
    pub fn map_batch<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(Vec<T>) -> I + 'static,
    ) -> DataStream<'s, U> {
        self.epoch_batches(op.into(), "map_batch", move |batch| Ok(f(batch)))
    }

    /// [`DataStream::map_batch`] for work that can fail as a whole (a store that cannot be
    /// reached, a model that cannot be loaded): an `Err` fails the job with
    /// [`crate::WeirError::Operator`] naming this operator, and the instance takes no further
    /// batches. Bad *records* should become dead letters instead.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// let error = execute(Config::threads(1), |job| {
    ///     job.from_vec("numbers", vec![1u64, 2, 3])
    ///         .try_map_batch("sum", |batch: Vec<u64>| {
    ///             let sum: u64 = batch.iter().sum();
    ///             if sum > 5 { Err(format!("the sum {sum} is too large")) } else { Ok(vec![sum]) }
    ///         })
    ///         .for_each("drop", |_| {});
    ///     Ok(())
    /// }).unwrap_err();
    /// assert!(error.to_string().contains("operator `sum` failed: the sum 6 is too large"));
    /// ```
    pub fn try_map_batch<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: impl Into<Op>,
        f: impl FnMut(Vec<T>) -> Result<I, String> + 'static,
    ) -> DataStream<'s, U> {
        self.epoch_batches(op.into(), "try_map_batch", f)
    }

    fn epoch_batches<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: Op,
        kind: &str,
        mut f: impl FnMut(Vec<T>) -> Result<I, String> + 'static,
    ) -> DataStream<'s, U> {
        let (handle, stream) = self.attach(&op, kind);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&self.ctx.failure), handle.name.clone());
        let out = stream.unary_frontier::<VecBuilder<U>, _, _, _>(
            Pipeline,
            &handle.name,
            move |_cap, _info| {
                let mut pending: EpochStash<Vec<T>> = EpochStash::new();
                let mut failed = false;
                move |(input, frontier), output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if let Some(batch) = pending.for_message(&cap, output.output_index()) {
                            batch.append(data);
                        }
                    });
                    while let Some((cap, batch)) = pending.next_complete(frontier) {
                        if failed {
                            continue;
                        }
                        match f(batch) {
                            Ok(outputs) => {
                                let mut session = output.session(&cap);
                                let mut n = 0;
                                for y in outputs {
                                    session.give(y);
                                    n += 1;
                                }
                                metrics.add_out(n);
                            }
                            Err(message) => {
                                failed = true;
                                let operator = name.clone();
                                JobContext::fail(
                                    &failure,
                                    WeirError::Operator { operator, message },
                                );
                            }
                        }
                    }
                }
            },
        );
        DataStream::from_parts(Rc::clone(&self.ctx), out, handle.node, handle.placement)
    }
}

/// Anything that is a node of the plan (used by [`DataStream::from_timely`]).
pub trait AsNode {
    /// The plan node.
    fn node_id(&self) -> NodeId;
}

impl<T> AsNode for DataStream<'_, T> {
    fn node_id(&self) -> NodeId {
        self.node
    }
}
