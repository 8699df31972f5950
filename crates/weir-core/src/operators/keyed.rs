//! Keyed streams: `key_by` partitions records by a key; per-epoch aggregates and per-key
//! running state are computed on the instance that owns the key.

use crate::operators::combiner::{keyed_by, Combiner};
use crate::operators::epoch_changes::{EpochChanges, Marked};
use crate::operators::epoch_stash::EpochStash;
use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHasher};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::job::JobContext;
use crate::operators::key_pact::{owner_pact, KeyPact};
use crate::state::{Barrier, Checkpointed, KeyedState, StateError, StatePart, StateTtl};
use timely::dataflow::operators::generic::Operator;

use crate::job::{Epoch, Op};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// Keys of keyed operators: hashed to pick the owning instance (the hash is fixed, so every
/// process of a job routes a key to the same place).
pub trait Key: Data + Hash + Eq {}
impl<K: Data + Hash + Eq> Key for K {}

/// The instance-independent hash used to route keys.
#[inline]
pub fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Whether `a` is above `b` in the order of `min` and `max`: the values' own order, with a
/// value not comparable with itself (NaN) above every other, so that the result does not
/// depend on the order values arrive in (the grouping of partials, the parallelism).
fn above<V: PartialOrd>(a: &V, b: &V) -> bool {
    let (a_nan, b_nan) = (a.partial_cmp(a).is_none(), b.partial_cmp(b).is_none());
    match (a_nan, b_nan) {
        (false, false) => a > b,
        (a_nan, b_nan) => a_nan && !b_nan,
    }
}

/// Which of `owners` instances owns a key whose [`key_hash`] is `hash`: `hash % owners`,
/// computed without a division when `owners` is a power of two. Every keyed route and every
/// restore of keyed state picks owners with it.
#[inline]
pub(crate) fn owner_index(hash: u64, owners: usize) -> usize {
    let n = owners as u64;
    let index = if n.is_power_of_two() {
        hash & (n - 1)
    } else {
        hash % n
    };
    index as usize
}

/// A stream partitioned by key; the next keyed operator receives all records of a key on
/// one instance.
///
/// The key function is a type parameter (not a boxed closure), so routing and state lookups
/// inline it; it must be `Clone` (closures are, when what they capture is).
pub struct KeyedStream<'s, K, T, F> {
    pub(crate) input: DataStream<'s, T>,
    pub(crate) key: F,
    _key: std::marker::PhantomData<fn() -> K>,
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Partitions the stream by `key` (Flink's `keyBy`): an edge with HASH routing into the
    /// next keyed operator.
    pub fn key_by<K: Key, F: Fn(&T) -> K + Clone + 'static>(
        self,
        key: F,
    ) -> KeyedStream<'s, K, T, F> {
        KeyedStream {
            input: self,
            key,
            _key: std::marker::PhantomData,
        }
    }
}

impl<'s, T: Key> DataStream<'s, T> {
    /// The running number of times each distinct record occurred (Spark's `countByValue`; a
    /// word count): after each epoch, `(record, count)` for every record value seen in it.
    /// The same output, state and checkpoints as `key_by(|x| x.clone()).count(op)`, without
    /// the copy of each record as its key: the record itself moves into the combiner's table.
    ///
    /// ```
    /// use weir_core::{execute, op, Collector, Config, EpochPolicy};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let words = ["to", "be", "or", "not", "to", "be"];
    ///     job.generate(op("words").parallelism(2), Some(6), move |i| words[i as usize].to_string())
    ///         .count_by_value(op("counts").parallelism(2))
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let updates = out.take();
    /// let last = |w: &str| updates.iter().filter(|(k, _)| k == w).map(|(_, n)| *n).max();
    /// assert_eq!((last("to"), last("be"), last("or"), last("not")), (Some(2), Some(2), Some(1), Some(1)));
    /// ```
    pub fn count_by_value(self, op: impl Into<Op>) -> DataStream<'s, (T, u64)> {
        let counting = Combiner {
            split: |x: T| (x, ()),
            init: |_: &T| 0u64,
            fold: |n: &mut u64, ()| *n += 1,
        };
        counting.running_totals(self, &op.into(), |n, part| *n += part)
    }
}

impl<'s, K: Key, T: Data, F: Fn(&T) -> K + Clone + 'static> KeyedStream<'s, K, T, F> {
    /// Registers a keyed operator and returns its handle and exchange pact.
    fn keyed_operator(
        &self,
        op: &Op,
        kind: &str,
    ) -> (
        crate::job::OpHandle,
        KeyPact<T, impl FnMut(&T) -> u64 + 'static>,
    ) {
        let handle =
            self.input
                .ctx
                .add_operator(op, kind, &[(self.input.node, Partitioning::Hash)]);
        let pact = owner_pact(&handle.placement, self.key.clone());
        (handle, pact)
    }

    /// A running aggregate per key (Flink's `keyBy(..).aggregate`/`sum`): every record of a
    /// key since the job started is folded into one accumulator, kept in checkpointed keyed
    /// state, and after each epoch the operator emits `(key, accumulator)` for every key that
    /// changed in it. The last value emitted for a key is its total; it does not depend on
    /// epoch size, parallelism or checkpoints and restores.
    ///
    /// ```
    /// use weir_core::{execute, op, Collector, Config, EpochPolicy};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.generate(op("numbers").parallelism(1).epochs(EpochPolicy::Records(10)), Some(100), |i| i)
    ///         .key_by(|x| x % 2)
    ///         .aggregate("sums", |_| 0u64, |acc, x| *acc += x)
    ///         .collect(op("out").parallelism(1), &sink);
    ///     Ok(())
    /// }).unwrap();
    /// // One update per key and epoch (10 epochs); the last holds the total.
    /// let updates = out.take();
    /// assert_eq!(updates.len(), 20);
    /// let last_even = updates.iter().filter(|(k, _)| *k == 0).map(|(_, v)| *v).max();
    /// assert_eq!(last_even, Some((0..100).step_by(2).sum()));
    /// ```
    pub fn aggregate<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn(&K) -> A + 'static,
        fold: impl FnMut(&mut A, T) + 'static,
    ) -> DataStream<'s, (K, A)> {
        self.running_totals(op.into(), "aggregate", init, fold, Emission::Changed)
    }

    /// Folds the records of each key within each epoch into one value, emitted as
    /// `(key, accumulator)` when the epoch is complete, then forgotten. Epochs are a
    /// processing artefact (record counts or time slots), so the groups depend on epoch
    /// size: use this to combine what an epoch produced (for example models trained on
    /// one epoch each), and [`KeyedStream::aggregate`] or windows for results that must
    /// not depend on it.
    pub fn aggregate_per_epoch<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn(&K) -> A + 'static,
        mut fold: impl FnMut(&mut A, T) + 'static,
    ) -> DataStream<'s, (K, A)> {
        let op = op.into();
        let (handle, pact) = self.keyed_operator(&op, "aggregate_per_epoch");
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let key = self.key.clone();
        let out = self
            .input
            .stream
            .clone()
            .unary_frontier::<VecBuilder<(K, A)>, _, _, _>(
                pact,
                &handle.name,
                move |_cap, _info| {
                    let mut pending: EpochStash<FxHashMap<K, A>> = EpochStash::new();
                    move |(input, frontier), output| {
                        let _busy = metrics.busy_in(node);
                        input.for_each(|cap, data| {
                            metrics.add_in(data.len());
                            let Some(table) = pending.for_message(&cap, output.output_index())
                            else {
                                return;
                            };
                            for x in data.drain(..) {
                                let k = key(&x);
                                match table.get_mut(&k) {
                                    Some(acc) => fold(acc, x),
                                    None => {
                                        let mut acc = init(&k);
                                        fold(&mut acc, x);
                                        table.insert(k, acc);
                                    }
                                }
                            }
                        });
                        while let Some((cap, table)) = pending.next_complete(frontier) {
                            metrics.add_out(table.len());
                            output.session(&cap).give_iterator(table.into_iter());
                        }
                    }
                },
            );
        DataStream::from_parts(
            Rc::clone(&self.input.ctx),
            out,
            handle.node,
            handle.placement,
        )
    }

    /// Folds every record of each key, across all epochs, into one value kept in
    /// checkpointed keyed state, and emits `(key, accumulator)` for every key once the input
    /// is complete: the totals of a bounded job (a stream that never ends never emits). After
    /// a restore the fold goes on from the checkpointed accumulators, so each record counts
    /// once.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("words", vec!["a", "b", "a"].into_iter().map(String::from).collect())
    ///         .key_by(|w: &String| w.clone())
    ///         .aggregate_all("totals", |_| 0u64, |n, _| *n += 1)
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let mut totals = out.take();
    /// totals.sort();
    /// assert_eq!(totals, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    /// ```
    pub fn aggregate_all<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn(&K) -> A + 'static,
        fold: impl FnMut(&mut A, T) + 'static,
    ) -> DataStream<'s, (K, A)> {
        self.running_totals(op.into(), "aggregate_all", init, fold, Emission::AtEnd)
    }

    /// [`KeyedStream::aggregate`] with a combiner (Flink's `AggregateFunction.merge`): each
    /// upstream instance folds the records of an epoch into one partial accumulator per key
    /// (`init`, then `fold`), and the key's owner merges the partials into its running
    /// accumulator (`merge(acc, partial)`). Only the partials cross the exchange, so few keys
    /// cost almost nothing to route. The output is `aggregate`'s: after each epoch, `(key,
    /// accumulator)` for every key that changed in it, in the same checkpointed keyed state.
    ///
    /// `fold` and `merge` must agree: folding records in any grouping and merging the groups
    /// gives the same accumulator (a sum, a count, a min or max, a histogram). Floating-point
    /// sums may differ in their last bits between parallelisms, as the grouping does.
    ///
    /// ```
    /// use weir_core::{execute, op, Collector, Config, EpochPolicy};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.generate(op("numbers").parallelism(2).epochs(EpochPolicy::Records(10)), Some(100), |i| i)
    ///         .key_by(|x| x % 3)
    ///         .aggregate_combined(
    ///             "count_and_max",
    ///             |_| (0u64, 0u64),
    ///             |acc, x| { acc.0 += 1; acc.1 = acc.1.max(x); },
    ///             |acc, part| { acc.0 += part.0; acc.1 = acc.1.max(part.1); },
    ///         )
    ///         .collect(op("out").parallelism(1), &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let updates = out.take();
    /// let last = |key| updates.iter().filter(|(k, _)| *k == key).map(|(_, a)| *a).max();
    /// assert_eq!(last(0), Some((34, 99)));
    /// assert_eq!(last(1), Some((33, 97)));
    /// ```
    pub fn aggregate_combined<A: Data>(
        self,
        op: impl Into<Op>,
        init: impl Fn(&K) -> A + 'static,
        fold: impl FnMut(&mut A, T) + 'static,
        merge: impl FnMut(&mut A, A) + 'static,
    ) -> DataStream<'s, (K, A)> {
        let op = op.into();
        keyed_by(self.key, init, fold).running_totals(self.input, &op, merge)
    }

    /// The running number of records per key (see [`KeyedStream::aggregate`]), counted
    /// before the exchange ([`KeyedStream::aggregate_combined`]).
    pub fn count(self, op: impl Into<Op>) -> DataStream<'s, (K, u64)> {
        self.aggregate_combined(op, |_| 0u64, |n, _| *n += 1, |n, part| *n += part)
    }

    /// The running sum of `value` per key, summed before the exchange
    /// ([`KeyedStream::aggregate_combined`]).
    pub fn sum<V>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
    ) -> DataStream<'s, (K, V)>
    where
        V: Data + Default + std::ops::AddAssign,
    {
        self.aggregate_combined(
            op,
            |_| V::default(),
            move |acc, x| *acc += value(&x),
            |acc, part| *acc += part,
        )
    }

    /// The running smallest `value` per key. A value not comparable with itself (a float
    /// NaN) counts as larger than every other, as Flink and Spark order doubles: `min`
    /// skips NaNs unless a key has nothing else, whatever the order the values come in.
    pub fn min<V: Data + PartialOrd>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
    ) -> DataStream<'s, (K, V)> {
        self.extreme(op, value, |new, old| above(old, new))
    }

    /// The running largest `value` per key. A value not comparable with itself (a float
    /// NaN) counts as larger than every other: once a key has had a NaN, its `max` is NaN.
    pub fn max<V: Data + PartialOrd>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
    ) -> DataStream<'s, (K, V)> {
        self.extreme(op, value, above)
    }

    fn extreme<V: Data>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
        better: impl Fn(&V, &V) -> bool + Copy + 'static,
    ) -> DataStream<'s, (K, V)> {
        let keep_better = move |acc: &mut Option<V>, v: V| {
            if acc.as_ref().is_none_or(|old| better(&v, old)) {
                *acc = Some(v);
            }
        };
        self.aggregate_combined(
            op,
            |_| None::<V>,
            move |acc, x| keep_better(acc, value(&x)),
            move |acc, part| {
                if let Some(v) = part {
                    keep_better(acc, v);
                }
            },
        )
        .map_unchecked_some()
    }

    /// The operator of running totals per key, in checkpointed keyed state, emitted as
    /// `emission` says.
    fn running_totals<A: Data>(
        self,
        op: Op,
        kind: &str,
        init: impl Fn(&K) -> A + 'static,
        fold: impl FnMut(&mut A, T) + 'static,
        emission: Emission,
    ) -> DataStream<'s, (K, A)> {
        let (handle, pact) = self.keyed_operator(&op, kind);
        let slot = KeyedStateSlot::new(&self.input.ctx, &handle, None);
        let mut totals = RunningTotals {
            key: self.key.clone(),
            init,
            fold,
            slot,
            changes: EpochChanges::default(),
        };
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let out = self
            .input
            .stream
            .clone()
            .unary_frontier::<VecBuilder<(K, A)>, _, _, _>(
                pact,
                &handle.name,
                move |cap, _info| {
                    let mut held = (emission == Emission::AtEnd).then_some(cap);
                    let mut pending: EpochStash<Vec<T>> = EpochStash::new();
                    move |(input, frontier), output| {
                        let _busy = metrics.busy_in(node);
                        input.for_each(|cap, data| {
                            metrics.add_in(data.len());
                            if let Some(records) = pending.for_message(&cap, output.output_index())
                            {
                                records.append(data);
                            }
                        });
                        while let Some((cap, records)) = pending.next_complete(frontier) {
                            match emission {
                                Emission::Changed => {
                                    let changed = totals.fold_changed(records);
                                    metrics.add_out(changed.len());
                                    output.session(&cap).give_container(changed);
                                    changed.clear();
                                }
                                Emission::AtEnd => totals.fold(records),
                            }
                        }
                        totals.slot.applied(frontier);
                        match frontier.frontier().first() {
                            Some(epoch) => {
                                if let Some(cap) = held.as_mut().filter(|c| c.time() < epoch) {
                                    cap.downgrade(epoch);
                                }
                            }
                            None => {
                                if let Some(cap) = held.take() {
                                    let all = totals.current();
                                    metrics.add_out(all.len());
                                    output.session(&cap).give_iterator(all.into_iter());
                                }
                            }
                        }
                    }
                },
            );
        DataStream::from_parts(
            Rc::clone(&self.input.ctx),
            out,
            handle.node,
            handle.placement,
        )
    }

    /// [`KeyedStream::map_with_state`] whose per-key state expires: a key not written for
    /// `ttl` (processing time) starts again from `S::default()`, and its state leaves the
    /// next checkpoint (Flink's `StateTtlConfig` with `OnCreateAndWrite`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::state::StateTtl;
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.from_vec("clicks", vec![1u64, 1, 2])
    ///         .key_by(|user: &u64| *user)
    ///         .map_with_state_ttl("sessions", StateTtl::after_write(Duration::from_secs(1800)),
    ///             |n: &mut u64, user: u64| { *n += 1; (user, *n) })
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![(1, 1), (1, 2), (2, 1)]);
    /// ```
    pub fn map_with_state_ttl<S, U>(
        self,
        op: impl Into<Op>,
        ttl: StateTtl,
        f: impl FnMut(&mut S, T) -> U + 'static,
    ) -> DataStream<'s, U>
    where
        S: Default + Serialize + DeserializeOwned + 'static,
        U: Data,
    {
        self.stateful_map(op.into(), Some(ttl), f)
    }

    /// A running state per key that lives across epochs (Flink's keyed `ValueState`):
    /// `f(&mut state, record)` returns the output for the record. Epochs are applied in
    /// timestamp order; within an epoch, records of one upstream instance keep their order.
    /// The state is part of the job's checkpoints (see [`crate::state`]), restored at any
    /// parallelism.
    pub fn map_with_state<S, U>(
        self,
        op: impl Into<Op>,
        f: impl FnMut(&mut S, T) -> U + 'static,
    ) -> DataStream<'s, U>
    where
        S: Default + Serialize + DeserializeOwned + 'static,
        U: Data,
    {
        self.stateful_map(op.into(), None, f)
    }

    fn stateful_map<S, U>(
        self,
        op: Op,
        ttl: Option<StateTtl>,
        mut f: impl FnMut(&mut S, T) -> U + 'static,
    ) -> DataStream<'s, U>
    where
        S: Default + Serialize + DeserializeOwned + 'static,
        U: Data,
    {
        let (handle, pact) = self.keyed_operator(&op, "stateful_map");
        let state = KeyedStateSlot::new(&self.input.ctx, &handle, ttl);
        let out = keyed_state_operator(
            self.input.stream.clone(),
            pact,
            &handle,
            self.key.clone(),
            state,
            move |state: &mut S, x, out: &mut Vec<U>| out.push(f(state, x)),
        );
        DataStream::from_parts(
            Rc::clone(&self.input.ctx),
            out,
            handle.node,
            handle.placement,
        )
    }
}

/// The core of keyed stateful operators: records are stashed per epoch and, once the epoch
/// is complete, applied in timestamp order to the state of their key; `f` may emit any
/// number of outputs per record.
pub(crate) fn keyed_state_operator<'s, K, T, S, U, P>(
    stream: timely::dataflow::Stream<'s, Epoch, Vec<T>>,
    pact: P,
    handle: &crate::job::OpHandle,
    key: impl Fn(&T) -> K + 'static,
    slot: KeyedStateSlot<K, S>,
    mut f: impl FnMut(&mut S, T, &mut Vec<U>) + 'static,
) -> timely::dataflow::Stream<'s, Epoch, Vec<U>>
where
    K: Key,
    T: Data,
    S: Default + 'static,
    U: Data,
    P: timely::dataflow::channels::pact::ParallelizationContract<Epoch, Vec<T>>,
{
    let metrics = Rc::clone(&handle.metrics);
    let node = handle.node;
    stream.unary_frontier::<VecBuilder<U>, _, _, _>(pact, &handle.name, move |_cap, _info| {
        let mut pending: EpochStash<Vec<T>> = EpochStash::new();
        let mut buffer = Vec::new();
        move |(input, frontier), output| {
            let _busy = metrics.busy_in(node);
            input.for_each(|cap, data| {
                metrics.add_in(data.len());
                if let Some(records) = pending.for_message(&cap, output.output_index()) {
                    records.append(data);
                }
            });
            let mut state = slot.state.borrow_mut();
            while let Some((cap, records)) = pending.next_complete(frontier) {
                for x in records {
                    f(state.entry(key(&x)), x, &mut buffer);
                }
                metrics.add_out(buffer.len());
                if !buffer.is_empty() {
                    output.session(&cap).give_container(&mut buffer);
                    buffer.clear();
                }
            }
            slot.applied(frontier);
        }
    })
}

/// When running totals are emitted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Emission {
    /// After each epoch, the keys it changed.
    Changed,
    /// Every key once, when the input ends.
    AtEnd,
}

/// The accumulators of [`KeyedStream::aggregate`] and [`KeyedStream::aggregate_all`], and how
/// records fold into them. Each accumulator is marked with the epoch that changed it last
/// ([`EpochChanges`]), so that an epoch's changed keys are found without a set of them.
struct RunningTotals<K, A, KF, I, F> {
    key: KF,
    init: I,
    fold: F,
    slot: KeyedStateSlot<K, Marked<A>>,
    changes: EpochChanges<K, A>,
}

impl<K: Key, A: Clone, KF, I: Fn(&K) -> A, F> RunningTotals<K, A, KF, I, F> {
    /// Folds a complete epoch's records into their keys' accumulators.
    fn fold<T>(&mut self, records: Vec<T>)
    where
        KF: Fn(&T) -> K,
        F: FnMut(&mut A, T),
    {
        let mut state = self.slot.state.borrow_mut();
        for x in records {
            let k = (self.key)(&x);
            let init = &self.init;
            let slot = state.get_or_insert_with(&k, || Marked::new(init(&k)));
            (self.fold)(&mut slot.acc, x);
        }
    }

    /// Folds a complete epoch's records and returns the keys that changed with their new
    /// accumulators, each once (the caller empties the vector).
    fn fold_changed<T>(&mut self, records: Vec<T>) -> &mut Vec<(K, A)>
    where
        KF: Fn(&T) -> K,
        F: FnMut(&mut A, T),
    {
        let mut state = self.slot.state.borrow_mut();
        self.changes.begin(&mut state);
        for x in records {
            let k = (self.key)(&x);
            let init = &self.init;
            let slot = state.get_or_insert_with(&k, || Marked::new(init(&k)));
            (self.fold)(&mut slot.acc, x);
            self.changes.note(k, slot);
        }
        self.changes.finish(&state)
    }

    /// Every key's accumulator (the state stays: a final checkpoint still saves it).
    fn current(&self) -> Vec<(K, A)> {
        let state = self.slot.state.borrow();
        state
            .iter()
            .map(|(k, a)| (k.clone(), a.acc.clone()))
            .collect()
    }
}

/// The keyed state of an operator instance, and the registration that checkpoints it.
pub(crate) struct KeyedStateSlot<K, S> {
    pub(crate) state: Rc<RefCell<KeyedState<K, S>>>,
    /// Every epoch below this one is in the state (for the checkpoint protocol).
    applied_below: Option<Rc<Cell<Epoch>>>,
}

impl<K, S> KeyedStateSlot<K, S>
where
    K: Key + Serialize + DeserializeOwned,
    S: Serialize + DeserializeOwned + 'static,
{
    /// The state of this worker's instance of the keyed operator `handle`: restored from
    /// the job's checkpoint (the keys this instance now owns), and registered for the next
    /// checkpoints when the job takes them.
    pub(crate) fn new(
        ctx: &JobContext<'_>,
        handle: &crate::job::OpHandle,
        ttl: Option<StateTtl>,
    ) -> Self {
        Self::named(ctx, handle, &handle.name, ttl)
    }

    /// Like [`KeyedStateSlot::new`], for an operator that keeps several keyed states: this
    /// one is checkpointed as `name`.
    pub(crate) fn named(
        ctx: &JobContext<'_>,
        handle: &crate::job::OpHandle,
        name: &str,
        ttl: Option<StateTtl>,
    ) -> Self {
        let mut state = match ttl {
            Some(ttl) => KeyedState::with_ttl(ttl),
            None => KeyedState::new(),
        };
        let registry = &ctx.state;
        if let (true, Some(_)) = (registry.enabled, handle.instance) {
            // Before the restore, which then fills the tracked table once.
            state.track_changes();
        }
        if let (Some(restored), Some(_)) = (&registry.restored, handle.instance) {
            let placement = Rc::clone(&handle.placement);
            let me = ctx.index;
            let owns = move |hash: u64| placement[owner_index(hash, placement.len())] == me;
            if let Err(e) = state.restore(&restored.keyed(name, owns)) {
                ctx.fail_build(crate::WeirError::Checkpoint(format!(
                    "cannot restore the state of `{name}`: {e}"
                )));
            }
        }
        let state = Rc::new(RefCell::new(state));
        let applied_below = match (registry.enabled, handle.instance) {
            (true, Some(i)) => {
                let checkpointed: Rc<dyn Checkpointed> =
                    Rc::new(KeyedCheckpoint(Rc::clone(&state)));
                Some(registry.register(name, i, checkpointed))
            }
            (true, None) => {
                registry.claim(name);
                None
            }
            (false, _) => None,
        };
        KeyedStateSlot {
            state,
            applied_below,
        }
    }
}

impl<K, S> KeyedStateSlot<K, S> {
    /// Notes how far the instance has applied its input.
    pub(crate) fn applied(&self, frontier: &timely::progress::frontier::MutableAntichain<Epoch>) {
        if let Some(cell) = &self.applied_below {
            cell.set(frontier.frontier().first().copied().unwrap_or(Epoch::MAX));
        }
    }

    /// Notes that every epoch below `epoch` is applied.
    pub(crate) fn applied_below(&self, epoch: Epoch) {
        if let Some(cell) = &self.applied_below {
            cell.set(epoch);
        }
    }
}

/// Keyed state as the checkpoint protocol sees it.
struct KeyedCheckpoint<K, S>(Rc<RefCell<KeyedState<K, S>>>);

impl<K, S> Checkpointed for KeyedCheckpoint<K, S>
where
    K: Key + Serialize + DeserializeOwned,
    S: Serialize + DeserializeOwned,
{
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError> {
        self.0.borrow_mut().snapshot(barrier.full)
    }
}

impl<'s, K: Data, V: Data> DataStream<'s, (K, Option<V>)> {
    /// Unwraps aggregates that are always `Some` (min/max over a non-empty group), in place,
    /// without a plan node of its own.
    fn map_unchecked_some(self) -> DataStream<'s, (K, V)> {
        use timely::dataflow::operators::vec::Map;
        let stream = self
            .stream
            .map(|(k, v)| (k, v.expect("a group has at least one record")));
        DataStream::from_parts(
            Rc::clone(&self.ctx),
            stream,
            self.node,
            Rc::clone(&self.placement),
        )
    }
}
