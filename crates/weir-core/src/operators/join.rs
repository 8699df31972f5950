//! Joins. Stream–stream joins (inner, left outer) run on differential-dataflow
//! arrangements and are incremental: every input change yields the output changes it
//! causes, as a changelog of [`Change`]s. The enrichment join looks events up in a slowly
//! changing table, also on arrangements (a temporal "lookup" join: an event sees the table as of its epoch and
//! is never retracted).

use crate::operators::epoch_stash::EpochStash;
use std::fmt::Debug;
use std::rc::Rc;

use differential_dataflow::collection::{AsCollection, VecCollection};
use differential_dataflow::hashable::Hashable;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::core::{Exchange as _, Filter as _};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::operators::Concat as _;

use crate::job::{Epoch, JobContext, Op, OpHandle};
use crate::operators::join_state::{kept_changelog, replay_at, ReplayedThrough};
use crate::operators::keyed::{key_hash, keyed_state_operator, owner_index, Key, KeyedStateSlot};
use crate::plan::Partitioning;
use crate::report::OperatorMetrics;
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

/// A differential collection keyed for an operator's instances.
type Keyed<'s, K, V> = VecCollection<'s, Epoch, (Routed<K>, V), Diff>;

impl<'s, K: Key + Ord + Debug, V: Data + Ord + Debug> DataStream<'s, Change<(K, V)>> {
    /// Registers a two-input join and turns both changelogs into collections keyed for it.
    #[allow(clippy::type_complexity)]
    fn arranged_with<W: Data + Ord + Debug>(
        self,
        other: DataStream<'s, Change<(K, W)>>,
        op: Op,
        kind: &str,
    ) -> (
        Rc<JobContext<'s>>,
        OpHandle,
        Keyed<'s, K, V>,
        Keyed<'s, K, W>,
    ) {
        let (ctx, handle) = register_join(&self, &other, op, kind);
        let counts = || Some(Rc::clone(&handle.metrics));
        let left = kept_changelog(&ctx, &handle, "left", self.stream);
        let right = kept_changelog(&ctx, &handle, "right", other.stream);
        let left = changelog_collection(left, &handle.placement, counts());
        let right = changelog_collection(right, &handle.placement, counts());
        (ctx, handle, left, right)
    }

    /// Incremental inner join of two changelogs on the key.
    pub fn join_changes<W: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        other: DataStream<'s, Change<(K, W)>>,
    ) -> DataStream<'s, Change<(K, V, W)>> {
        let (ctx, handle, left, right) = self.arranged_with(other, op.into(), "join:inner");
        let joined = left.join(right);
        let out = from_collection(&ctx, joined, &handle, |(k, (v, w))| (k.key, v, w));
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
        let (ctx, handle, left, right) = self.arranged_with(other, op.into(), "join:left_outer");
        let all = left_outer(left, right);
        let out = from_collection(&ctx, all, &handle, |(k, (v, w))| (k.key, v, w));
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

/// `left ⟕ right` on arrangements, with every output update on the key's owner.
fn left_outer<'s, K, V, W>(
    left: Keyed<'s, K, V>,
    right: Keyed<'s, K, W>,
) -> Keyed<'s, K, (V, Option<W>)>
where
    K: Key + Ord + Debug,
    V: Data + Ord + Debug,
    W: Data + Ord + Debug,
{
    let matched = left
        .clone()
        .join(right.clone())
        .map(|(k, (v, w))| (k, (v, Some(w))));
    let right_keys = right.map(|(k, _)| k).distinct();
    let unmatched = left.antijoin(right_keys).map(|(k, v)| (k, (v, None)));
    // The antijoin's plain `left` part is still where the left input was produced: move
    // it to the key's owner, so that opposite changes of a record meet (and cancel) there.
    matched
        .concat(unmatched)
        .inner
        .exchange(|((k, _), _, _)| k.worker)
        .as_collection()
}

impl<'s, K: Key + Ord + Debug, V: Data + Ord + Debug> DataStream<'s, (K, V)> {
    /// The stream as a changelog of insertions.
    pub fn changes(self) -> DataStream<'s, Change<(K, V)>> {
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

    /// Enriches each event `(key, event)` with the value its key has in `table` as of the
    /// event's epoch: table updates of epochs up to and including the event's apply; later
    /// updates and deletions apply to later events only (a temporal lookup join: enriched
    /// events are never retracted). Emits `(key, event, value)`.
    ///
    /// Runs on differential arrangements: the table's upserts become a changelog (retract
    /// the old value, insert the new one) on the key's owner, events are left-joined with
    /// it, and of the join's output only the changes at the event's own epoch are kept —
    /// the table as it was when the event happened.
    pub fn enrich<T: Data + Ord + Debug>(
        self,
        op: impl Into<Op>,
        table: DataStream<'s, TableUpdate<K, T>>,
    ) -> DataStream<'s, (K, V, Option<T>)> {
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
        let placement = Rc::clone(&handle.placement);

        // Upserts -> changelog, on the instance owning the key, in epoch order. (Its counters
        // are not the operator's: the report counts events in and enriched events out.)
        let owners = Rc::clone(&placement);
        let pact = Exchange::new(move |u: &TableUpdate<K, T>| owner(&owners, u.key()));
        // The table is the join's checkpointed state; after a restore it is replayed.
        let table_state: KeyedStateSlot<K, Option<T>> = KeyedStateSlot::new(&ctx, &handle, None);
        let restored_table: Vec<Change<(K, T)>> = table_state
            .state
            .borrow()
            .iter()
            .filter_map(|(k, v)| Some(Change::insert((k.clone(), v.clone()?))))
            .collect();
        let upserts = OpHandle {
            metrics: Rc::default(),
            ..handle.clone()
        };
        let changes = keyed_state_operator(
            table.stream,
            pact,
            &upserts,
            |u: &TableUpdate<K, T>| u.key().clone(),
            table_state,
            |current: &mut Option<T>, update, out: &mut Vec<Change<(K, T)>>| match update {
                TableUpdate::Upsert(k, v) => {
                    if let Some(old) = current.replace(v.clone()) {
                        out.push(Change::retract((k.clone(), old)));
                    }
                    out.push(Change::insert((k, v)));
                }
                TableUpdate::Delete(k) => {
                    if let Some(old) = current.take() {
                        out.push(Change::retract((k, old)));
                    }
                }
            },
        );
        let changes = match ReplayedThrough::of(&ctx).epoch() {
            Some(epoch) => changes.concat(replay_at(&ctx, epoch, restored_table)),
            None => changes,
        };
        let table = changelog_collection(changes, &placement, None);
        // Events remember their epoch.
        let counts = Some(Rc::clone(&handle.metrics));
        // An event exists only during its own epoch (inserted at it, retracted at the next),
        // so the arrangements do not keep every event forever.
        let events: Keyed<'s, K, (V, Epoch)> = keyed_collection(
            self.stream,
            &placement,
            counts,
            |(k, e): (K, V), epoch, out| {
                out.push(((k.clone(), (e.clone(), epoch)), epoch, 1));
                out.push(((k, (e, epoch)), epoch + 1, -1));
            },
        );
        // Later changes belong to later states of the table.
        let at_event_time = left_outer(events, table)
            .inner
            .filter(|((_, ((_, epoch), _)), t, _)| t == epoch)
            .as_collection();
        let out = from_collection(&ctx, at_event_time, &handle, |(k, ((e, _), v))| {
            (k.key, e, v)
        })
        .flat_map(|c| std::iter::repeat_n(c.data, c.diff.max(0) as usize));
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

/// The worker owning `key` among `placement`.
fn owner<K: std::hash::Hash>(placement: &[usize], key: &K) -> u64 {
    placement[owner_index(key_hash(key), placement.len())] as u64
}

/// A changelog of `(key, value)` pairs as a differential collection keyed for `placement`.
fn changelog_collection<'s, K: Key + Ord + Debug, V: Data + Ord + Debug>(
    stream: timely::dataflow::Stream<'s, Epoch, Vec<Change<(K, V)>>>,
    placement: &Rc<[usize]>,
    counts: Option<Rc<OperatorMetrics>>,
) -> Keyed<'s, K, V> {
    keyed_collection(
        stream,
        placement,
        counts,
        |c: Change<(K, V)>, epoch, out| out.push((c.data, epoch, c.diff as Diff)),
    )
}

/// A differential collection keyed for `placement`, made from a stream of records by
/// `split(record, epoch, out)`, which pushes `((key, value), time, diff)` updates with
/// `time >= epoch`. Records stay where they are; differential's exchanges route them by
/// [`Routed::hashed`], i.e. to the key's owner.
fn keyed_collection<'s, X: Data, K: Key + Ord + Debug, V: Data + Ord + Debug>(
    stream: timely::dataflow::Stream<'s, Epoch, Vec<X>>,
    placement: &Rc<[usize]>,
    counts: Option<Rc<OperatorMetrics>>,
    mut split: impl FnMut(X, Epoch, &mut Vec<((K, V), Epoch, Diff)>) + 'static,
) -> Keyed<'s, K, V> {
    let placement = Rc::clone(placement);
    let mut updates = Vec::new();
    stream
        .unary::<VecBuilder<((Routed<K>, V), Epoch, Diff)>, _, _, _>(
            Pipeline,
            "ToCollection",
            move |_, _| {
                move |input, output| {
                    input.for_each(|cap, data| {
                        let Some(time) = cap.least().copied() else {
                            return;
                        };
                        if let Some(metrics) = &counts {
                            metrics.add_in(data.len());
                        }
                        let mut session = output.session(&cap);
                        for x in data.drain(..) {
                            split(x, time, &mut updates);
                            for ((key, value), t, diff) in updates.drain(..) {
                                debug_assert!(
                                    t >= time,
                                    "updates may not precede their record's epoch"
                                );
                                let worker = owner(&placement, &key);
                                session.give(((Routed { worker, key }, value), t, diff));
                            }
                        }
                    });
                }
            },
        )
        .as_collection()
}

fn register_join<'s, A: Data, B: Data>(
    left: &DataStream<'s, A>,
    right: &DataStream<'s, B>,
    op: Op,
    kind: &str,
) -> (Rc<JobContext<'s>>, OpHandle) {
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

/// Turns a differential collection back into a changelog stream: each epoch's updates are
/// consolidated (a record inserted and retracted within one epoch does not appear) and
/// emitted at their own time once the epoch is complete.
fn from_collection<'s, D: Data + Ord, U: Data>(
    ctx: &JobContext<'s>,
    collection: VecCollection<'s, Epoch, D, Diff>,
    handle: &OpHandle,
    mut f: impl FnMut(D) -> U + 'static,
) -> timely::dataflow::Stream<'s, Epoch, Vec<Change<U>>> {
    let replayed = ReplayedThrough::of(ctx);
    let metrics = Rc::clone(&handle.metrics);
    let node = handle.node;
    collection
        .inner
        .unary_frontier::<VecBuilder<Change<U>>, _, _, _>(
            Pipeline,
            "FromCollection",
            move |_, _| {
                let mut stash: EpochStash<Vec<(D, Diff)>> = EpochStash::new();
                move |(input, frontier), output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        // Differential may send updates under a capability earlier than their time.
                        for (d, t, diff) in data.drain(..) {
                            stash.at(&cap, t, output.output_index()).push((d, diff));
                        }
                    });
                    while let Some((cap, mut updates)) = stash.next_complete(frontier) {
                        if replayed.covers(*cap.time()) {
                            continue;
                        }
                        differential_dataflow::consolidation::consolidate(&mut updates);
                        metrics.add_out(updates.len());
                        let mut session = output.session(&cap);
                        for (d, diff) in updates {
                            session.give(Change {
                                data: f(d),
                                diff: diff as i64,
                            });
                        }
                    }
                }
            },
        )
}
