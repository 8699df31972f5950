//! Joins. Stream–stream joins (inner, left outer) run on differential-dataflow
//! arrangements and are incremental: every input change yields the output changes it
//! causes, as a changelog of [`Change`]s. The enrichment join looks events up in a slowly
//! changing table (a temporal "lookup" join: an event sees the table as of its epoch and
//! is never retracted).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;

use differential_dataflow::collection::{AsCollection, VecCollection};
use differential_dataflow::hashable::Hashable;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::job::{Epoch, JobContext, Op};
use crate::keyed::{key_hash, Key};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// One change of a collection: `diff` copies of `data` were added (`diff > 0`) or retracted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Change<T> {
    /// The record.
    pub data: T,
    /// Multiplicity change.
    pub diff: i64,
}

impl<T> Change<T> {
    /// An insertion.
    pub fn insert(data: T) -> Self {
        Change { data, diff: 1 }
    }
    /// A retraction.
    pub fn retract(data: T) -> Self {
        Change { data, diff: -1 }
    }
}

/// An update of a keyed table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TableUpdate<K, V> {
    /// Sets the value of a key.
    Upsert(K, V),
    /// Removes a key.
    Delete(K),
}

impl<K, V> TableUpdate<K, V> {
    fn key(&self) -> &K {
        match self {
            TableUpdate::Upsert(k, _) | TableUpdate::Delete(k) => k,
        }
    }
}

/// A key that carries the worker owning it, so differential's exchanges (which route by
/// [`Hashable::hashed`] modulo the number of workers) send it to one of the operator's
/// instances only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Routed<K> {
    worker: u64,
    key: K,
}

impl<K> Hashable for Routed<K> {
    type Output = u64;
    fn hashed(&self) -> u64 {
        self.worker
    }
}

type Diff = isize;

impl<'s, K: Key + Ord + Debug, V: Data + Ord + Debug> DataStream<'s, Change<(K, V)>> {
    /// Turns the changelog into a differential collection keyed for `placement`.
    fn collection(self, placement: Rc<[usize]>) -> VecCollection<'s, Epoch, (Routed<K>, V), Diff> {
        self.stream
            .unary::<VecBuilder<((Routed<K>, V), Epoch, Diff)>, _, _, _>(
                Pipeline,
                "ToCollection",
                move |_, _| {
                    move |input, output| {
                        input.for_each(|cap, data| {
                            let Some(time) = cap.least().copied() else {
                                return;
                            };
                            let mut session = output.session(&cap);
                            for Change {
                                data: (key, value),
                                diff,
                            } in data.drain(..)
                            {
                                let worker = placement
                                    [(key_hash(&key) % placement.len() as u64) as usize]
                                    as u64;
                                session.give(((Routed { worker, key }, value), time, diff as Diff));
                            }
                        });
                    }
                },
            )
            .as_collection()
    }

    /// Incremental inner join of two changelogs on the key.
    pub fn join_changes<W: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        other: DataStream<'s, Change<(K, W)>>,
    ) -> DataStream<'s, Change<(K, V, W)>> {
        let (ctx, handle) = register_join(&self, &other, op.into(), "join:inner");
        let joined = self
            .collection(Rc::clone(&handle.placement))
            .join(other.collection(Rc::clone(&handle.placement)));
        let out = from_collection(
            joined,
            handle.metrics.clone(),
            handle.node,
            |(k, (v, w))| (k.key, v, w),
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }

    /// Incremental left outer join: every left record appears once per matching right
    /// record, or once with `None` while the key has no right record. A right record arriving
    /// later retracts the `None` row.
    pub fn left_join_changes<W: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        other: DataStream<'s, Change<(K, W)>>,
    ) -> DataStream<'s, Change<(K, V, Option<W>)>> {
        let (ctx, handle) = register_join(&self, &other, op.into(), "join:left_outer");
        let left = self.collection(Rc::clone(&handle.placement));
        let right = other.collection(Rc::clone(&handle.placement));
        let matched = left
            .clone()
            .join(right.clone())
            .map(|(k, (v, w))| (k, (v, Some(w))));
        let right_keys = right.map(|(k, _)| k).distinct();
        let unmatched = left.antijoin(right_keys).map(|(k, v)| (k, (v, None)));
        let all = matched.concat(unmatched);
        let out = from_collection(all, handle.metrics.clone(), handle.node, |(k, (v, w))| {
            (k.key, v, w)
        });
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

impl<'s, K: Key + Ord + Debug, V: Data + Ord + Debug> DataStream<'s, (K, V)> {
    /// The stream as a changelog of insertions.
    pub fn changes(self) -> DataStream<'s, Change<(K, V)>> {
        use timely::dataflow::operators::vec::Map;
        let stream = self.stream.map(Change::insert);
        DataStream {
            ctx: self.ctx,
            stream,
            node: self.node,
            placement: self.placement,
            route: self.route,
        }
    }

    /// Inner join of two insert-only streams on the key; emits a [`Change`] per match.
    ///
    /// ```
    /// use weir_core::{execute, Change, Config, Collector};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let users = job.from_vec("users", vec![(1u32, "ann".to_string()), (2, "bob".to_string())]);
    ///     let orders = job.from_vec("orders", vec![(1u32, 9.5f64.to_bits()), (1, 1.0f64.to_bits())]);
    ///     users.join("by_user", orders).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take().len(), 2);
    /// ```
    pub fn join<W: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        other: DataStream<'s, (K, W)>,
    ) -> DataStream<'s, Change<(K, V, W)>> {
        self.changes().join_changes(op, other.changes())
    }

    /// Left outer join of two insert-only streams; see [`DataStream::left_join_changes`].
    pub fn left_join<W: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        other: DataStream<'s, (K, W)>,
    ) -> DataStream<'s, Change<(K, V, Option<W>)>> {
        self.changes().left_join_changes(op, other.changes())
    }
}

impl<'s, K: Key, E: Data> DataStream<'s, (K, E)> {
    /// Enriches each event with the value its key has in `table` as of the event's epoch:
    /// table updates of epochs up to and including the event's apply; later updates and
    /// deletions apply to later events only. Emits `(key, event, value)`.
    pub fn enrich<V: Data>(
        self,
        op: impl Into<Op>,
        table: DataStream<'s, TableUpdate<K, V>>,
    ) -> DataStream<'s, (K, E, Option<V>)> {
        let op = op.into();
        let ctx = Rc::clone(&self.ctx);
        let handle = ctx.add_operator(
            &op,
            "join:enrich",
            &[
                (self.node, Partitioning::Hash),
                (table.node, Partitioning::Hash),
            ],
        );
        let (p1, p2) = (Rc::clone(&handle.placement), Rc::clone(&handle.placement));
        let events_pact = Exchange::new(move |(k, _): &(K, E)| {
            p1[(key_hash(k) % p1.len() as u64) as usize] as u64
        });
        let table_pact = Exchange::new(move |u: &TableUpdate<K, V>| {
            p2[(key_hash(u.key()) % p2.len() as u64) as usize] as u64
        });
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        type Pending<K, E, V> =
            BTreeMap<Epoch, (Capability<Epoch>, Vec<(K, E)>, Vec<TableUpdate<K, V>>)>;
        let out = self
            .stream
            .binary_frontier::<_, VecBuilder<(K, E, Option<V>)>, _, _, _, _>(
                table.stream,
                events_pact,
                table_pact,
                &handle.name,
                move |_cap, _info| {
                    let mut pending: Pending<K, E, V> = BTreeMap::new();
                    let mut state: FxHashMap<K, V> = FxHashMap::default();
                    move |(events, events_frontier), (updates, updates_frontier), output| {
                        let _busy = metrics.busy_in(node);
                        events.for_each(|cap, data| {
                            metrics.add_in(data.len());
                            let Some(time) = cap.least().copied() else {
                                return;
                            };
                            let entry = pending.entry(time).or_insert_with(|| {
                                (
                                    cap.retain_least(output.output_index())
                                        .expect("stamp has a time"),
                                    Vec::new(),
                                    Vec::new(),
                                )
                            });
                            entry.1.append(data);
                        });
                        updates.for_each(|cap, data| {
                            let Some(time) = cap.least().copied() else {
                                return;
                            };
                            let entry = pending.entry(time).or_insert_with(|| {
                                (
                                    cap.retain_least(output.output_index())
                                        .expect("stamp has a time"),
                                    Vec::new(),
                                    Vec::new(),
                                )
                            });
                            entry.2.append(data);
                        });
                        while let Some(entry) = pending.first_entry() {
                            let t = entry.key();
                            if events_frontier.less_equal(t) || updates_frontier.less_equal(t) {
                                break;
                            }
                            let (cap, evs, ups) = entry.remove();
                            for u in ups {
                                match u {
                                    TableUpdate::Upsert(k, v) => {
                                        state.insert(k, v);
                                    }
                                    TableUpdate::Delete(k) => {
                                        state.remove(&k);
                                    }
                                }
                            }
                            metrics.add_out(evs.len());
                            let mut session = output.session(&cap);
                            for (k, e) in evs {
                                let v = state.get(&k).cloned();
                                session.give((k, e, v));
                            }
                        }
                    }
                },
            );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

fn register_join<'s, A: Data, B: Data>(
    left: &DataStream<'s, A>,
    right: &DataStream<'s, B>,
    op: Op,
    kind: &str,
) -> (Rc<JobContext<'s>>, crate::job::OpHandle) {
    let ctx = Rc::clone(&left.ctx);
    let handle = ctx.add_operator(
        &op,
        kind,
        &[
            (left.node, Partitioning::Hash),
            (right.node, Partitioning::Hash),
        ],
    );
    (ctx, handle)
}

/// Turns a differential collection back into a changelog stream, counting its output.
fn from_collection<'s, D: Data, U: Data>(
    collection: VecCollection<'s, Epoch, D, Diff>,
    metrics: Rc<crate::report::OperatorMetrics>,
    node: usize,
    mut f: impl FnMut(D) -> U + 'static,
) -> timely::dataflow::Stream<'s, Epoch, Vec<Change<U>>> {
    collection.inner.unary::<VecBuilder<Change<U>>, _, _, _>(
        Pipeline,
        "FromCollection",
        move |_, _| {
            move |input, output| {
                let _busy = metrics.busy_in(node);
                input.for_each(|cap, data| {
                    metrics.add_out(data.len());
                    let mut session = output.session(&cap);
                    for (d, _t, diff) in data.drain(..) {
                        if diff != 0 {
                            session.give(Change {
                                data: f(d),
                                diff: diff as i64,
                            });
                        }
                    }
                });
            }
        },
    )
}
