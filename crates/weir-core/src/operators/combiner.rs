//! Pre-aggregation before a keyed exchange (a combiner, as in MapReduce): each upstream
//! instance folds the records of an epoch into one partial accumulator per key and sends the
//! partials, not the records, to the keys' owners, which merge them. With few keys per epoch
//! the exchange carries a handful of partials instead of every record.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::WeirError;
use crate::job::{Epoch, JobContext, Op, OpHandle};
use crate::operators::epoch_changes::{EpochChanges, Marked};
use crate::operators::epoch_stash::EpochStash;
use crate::operators::key_pact::pair_owner_pact;
use crate::operators::keyed::{Key, KeyedStateSlot};
use crate::operators::parcel::{parcel_pact, ships_string_keys, Parcel, ParcelError, ParcelRouter};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// Partials held per epoch before the combiner sends them early: bounds its memory when an
/// epoch holds many keys (the owner merges several partials of a key within an epoch).
pub(crate) const COMBINER_MAX_KEYS: usize = 1 << 16;

/// How records fold into a key's accumulator on the sending side: `split` takes a record
/// apart into its key and what `fold` takes (the record itself, or nothing when the record
/// is its own key and moves into the table without a copy).
pub(crate) struct Combiner<S, I, F> {
    pub(crate) split: S,
    pub(crate) init: I,
    pub(crate) fold: F,
}

/// A combiner whose key is computed from each record by `key`: the fold takes the record.
pub(crate) fn keyed_by<K, T, I, F>(
    key: impl Fn(&T) -> K,
    init: I,
    fold: F,
) -> Combiner<impl FnMut(T) -> (K, T), I, F> {
    Combiner {
        split: move |x: T| (key(&x), x),
        init,
        fold,
    }
}

impl<S, I, F> Combiner<S, I, F> {
    /// Folds `records` into `partials`, one accumulator per key.
    fn fold_into<K, T, R, A>(&mut self, records: &mut Vec<T>, partials: &mut FxHashMap<K, A>)
    where
        K: Key,
        S: FnMut(T) -> (K, R),
        I: Fn(&K) -> A,
        F: FnMut(&mut A, R),
    {
        for x in records.drain(..) {
            let (key, rest) = (self.split)(x);
            match partials.entry(key) {
                Entry::Occupied(mut acc) => (self.fold)(acc.get_mut(), rest),
                Entry::Vacant(slot) => {
                    let acc = self.fresh(slot.key(), rest);
                    slot.insert(acc);
                }
            }
        }
    }

    /// The accumulator of a key's first record: `init`, then `fold`.
    fn fresh<K, R, A>(&mut self, key: &K, rest: R) -> A
    where
        I: Fn(&K) -> A,
        F: FnMut(&mut A, R),
    {
        let mut acc = (self.init)(key);
        (self.fold)(&mut acc, rest);
        acc
    }

    /// The running aggregate `op` of `input` (see `KeyedStream::aggregate_combined`): this
    /// combiner on `input`'s instances sends `(key, partial)` per key and epoch when the epoch
    /// is complete (or early, past [`COMBINER_MAX_KEYS`] keys), and the operator's instances
    /// merge the partials into running totals with `merge` ([`MergedTotals`]). The records
    /// count as the operator's input. `String` keys travel in parcels, as bytes between
    /// workers ([`ParcelRouter`]); other partials are moved as they are.
    pub(crate) fn running_totals<'s, K, T, R, A>(
        self,
        input: DataStream<'s, T>,
        op: &Op,
        merge: impl FnMut(&mut A, A) + 'static,
    ) -> DataStream<'s, (K, A)>
    where
        K: Key,
        T: Data,
        A: Data,
        S: FnMut(T) -> (K, R) + 'static,
        I: Fn(&K) -> A + 'static,
        F: FnMut(&mut A, R) + 'static,
    {
        let handle = input
            .ctx
            .add_operator(op, "aggregate", &[(input.node, Partitioning::Hash)]);
        let totals = MergedTotals {
            merge,
            slot: KeyedStateSlot::new(&input.ctx, &handle, None),
            changes: EpochChanges::default(),
            failure: Rc::clone(&input.ctx.failure),
        };
        let out = if ships_string_keys::<K, A>() {
            let router = ParcelRouter::new(input.ctx.index, input.ctx.workers, &handle.placement);
            let partials = self.combine(input.stream, &handle, router);
            totals.attach::<ParcelRouter<K, A>, _>(partials, parcel_pact(), &handle)
        } else {
            let partials = self.combine(input.stream, &handle, DirectPartials);
            let pact = pair_owner_pact::<K, A>(&handle.placement);
            totals.attach::<DirectPartials, _>(partials, pact, &handle)
        };
        DataStream::from_parts(Rc::clone(&input.ctx), out, handle.node, handle.placement)
    }

    /// The combiner operator of `handle` on `input`: its partials, shipped by `shipping`.
    fn combine<'s, K, T, R, A, X>(
        mut self,
        input: Stream<'s, Epoch, Vec<T>>,
        handle: &OpHandle,
        mut shipping: X,
    ) -> Stream<'s, Epoch, Vec<X::Item>>
    where
        K: Key,
        T: Data,
        A: Data,
        S: FnMut(T) -> (K, R) + 'static,
        I: Fn(&K) -> A + 'static,
        F: FnMut(&mut A, R) + 'static,
        X: PartialsShipping<K, A>,
    {
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let name = format!("{}:combine", handle.name);
        input.unary_frontier::<VecBuilder<X::Item>, _, _, _>(Pipeline, &name, move |_cap, _info| {
            let mut pending: EpochStash<EpochPartials<K, A>> = EpochStash::new();
            let mut reduction = Reduction::default();
            let mut shipped: Vec<X::Item> = Vec::new();
            move |(input, frontier), output| {
                let _busy = metrics.busy_in(node);
                input.for_each(|cap, data| {
                    metrics.add_in(data.len());
                    let Some((held, epoch)) = pending.held_for_message(&cap, output.output_index())
                    else {
                        return;
                    };
                    let mode = *epoch
                        .mode
                        .get_or_insert_with(|| reduction.next_epoch_mode());
                    if mode == EpochMode::PassThrough {
                        shipping.pack(data.drain(..).map(|x| self.single(x)), &mut shipped);
                        output.session(held).give_container(&mut shipped);
                        // The pusher may hand back a used container.
                        shipped.clear();
                        return;
                    }
                    epoch.records += data.len();
                    self.fold_into(data, &mut epoch.partials);
                    if epoch.partials.len() >= COMBINER_MAX_KEYS {
                        epoch.sent += epoch.partials.len();
                        shipping.pack(epoch.partials.drain(), &mut shipped);
                        output.session(held).give_container(&mut shipped);
                        // The pusher may hand back a used container.
                        shipped.clear();
                    }
                });
                while let Some((cap, mut epoch)) = pending.next_complete(frontier) {
                    if let Some(mode) = epoch.mode {
                        let partials = epoch.sent + epoch.partials.len();
                        reduction.observe(mode, epoch.records, partials);
                    }
                    shipping.pack(epoch.partials.drain(), &mut shipped);
                    output.session(&cap).give_container(&mut shipped);
                    shipped.clear();
                    epoch.records = 0;
                    epoch.sent = 0;
                    epoch.mode = None;
                    let capacity = epoch.partials.capacity();
                    pending.recycle(epoch, capacity);
                }
            }
        })
    }

    /// One record as a partial of its own (when combining does not pay).
    fn single<K, T, R, A>(&mut self, x: T) -> (K, A)
    where
        S: FnMut(T) -> (K, R),
        I: Fn(&K) -> A,
        F: FnMut(&mut A, R),
    {
        let (key, rest) = (self.split)(x);
        let acc = self.fresh(&key, rest);
        (key, acc)
    }
}

/// An epoch's partials on the sending side, and how many records went into them.
struct EpochPartials<K, A> {
    partials: FxHashMap<K, A>,
    records: usize,
    /// Partials already sent early.
    sent: usize,
    /// Whether the epoch's records are combined or pass through, decided when its first
    /// records arrive ([`Reduction::next_epoch_mode`]).
    mode: Option<EpochMode>,
}

impl<K, A> Default for EpochPartials<K, A> {
    fn default() -> Self {
        EpochPartials {
            partials: FxHashMap::default(),
            records: 0,
            sent: 0,
            mode: None,
        }
    }
}

/// Whether combining pays, measured on combined epochs (as Spark skips partial aggregation
/// that does not reduce): when an epoch of at least [`Reduction::SAMPLE`] records gave more
/// partials than 3/4 of its records (most keys once per epoch), records pass through as
/// partials of their own, saving a hash table insert each. Now and then one epoch is combined
/// again, to notice when the keys become fewer: after [`Reduction::RESAMPLE_FIRST`] epochs,
/// then after twice as many each time the sample confirms passing through, up to
/// [`Reduction::RESAMPLE_MOST`] (a combined epoch costs about as much as several passed
/// through).
///
/// The choice is made per epoch, when its first records arrive, so that one epoch is sampled
/// however many epochs are in flight (deciding when an epoch completes combined every epoch
/// that began meanwhile: up to the number in flight).
#[derive(Default)]
struct Reduction {
    pass_through: bool,
    /// Epochs begun since the last sample, while passing through.
    passed: u32,
    /// Epochs passed through before the next sample.
    interval: u32,
}

/// How a combiner treats an epoch's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpochMode {
    /// Combined, because combining pays (or has not been measured yet).
    Combine,
    /// Combined while passing through, to measure again.
    Sample,
    /// Passed through as partials of their own.
    PassThrough,
}

impl Reduction {
    const SAMPLE: usize = 1024;
    const RESAMPLE_FIRST: u32 = 16;
    const RESAMPLE_MOST: u32 = 256;

    /// How the epoch whose first records just arrived is treated: every epoch is combined
    /// while combining pays, a sample now and then while passing through.
    fn next_epoch_mode(&mut self) -> EpochMode {
        if !self.pass_through {
            return EpochMode::Combine;
        }
        self.passed += 1;
        if self.passed >= self.interval {
            self.passed = 0;
            return EpochMode::Sample;
        }
        EpochMode::PassThrough
    }

    /// What a complete epoch treated as `mode` gave: `records` in, `partials` out. Only a
    /// sample moves the interval, not the combined epochs still in flight when passing
    /// through began.
    fn observe(&mut self, mode: EpochMode, records: usize, partials: usize) {
        if records < Self::SAMPLE {
            return;
        }
        let reduces = partials * 4 <= records * 3;
        match mode {
            EpochMode::Combine if !self.pass_through && !reduces => {
                self.pass_through = true;
                self.passed = 0;
                self.interval = Self::RESAMPLE_FIRST;
            }
            EpochMode::Sample if reduces => self.pass_through = false,
            EpochMode::Sample => {
                self.interval = (2 * self.interval).min(Self::RESAMPLE_MOST);
            }
            EpochMode::Combine | EpochMode::PassThrough => {}
        }
    }
}

/// The owner's side: the partials of each epoch are kept as they arrive; when the epoch is
/// complete, they are merged into the keys' running accumulators (checkpointed keyed state),
/// and `(key, accumulator)` is emitted for every key the epoch changed, once
/// ([`EpochChanges`]: the state's values mark the epoch that changed them, so no table of
/// the epoch's keys is built).
///
/// An epoch's partials are held in a vector, not merged per key on arrival: usually one per
/// key and combiner instance, and compacted per key when they grow ([`EpochPartialsIn`]).
struct MergedTotals<K, A, M> {
    merge: M,
    slot: KeyedStateSlot<K, Marked<A>>,
    changes: EpochChanges<K, A>,
    /// Where a parcel that does not decode fails the job.
    failure: Rc<RefCell<Option<WeirError>>>,
}

/// Partials an owner holds for an epoch before it compacts them (merges them per key): an
/// epoch whose combiners pass records through, or send early, holds about as many entries as
/// it has keys, not as it has records.
const OWNER_COMPACT_AT: usize = 1 << 17;

/// The partials an owner holds for one epoch.
struct EpochPartialsIn<K, A> {
    partials: Vec<(K, A)>,
    /// The length at which they are compacted next.
    compact_at: usize,
}

impl<K, A> Default for EpochPartialsIn<K, A> {
    fn default() -> Self {
        EpochPartialsIn {
            partials: Vec::new(),
            compact_at: OWNER_COMPACT_AT,
        }
    }
}

impl<K: Key, A> EpochPartialsIn<K, A> {
    /// The partials, to merge when the epoch is complete; the next epoch that reuses this
    /// vector starts from the first compaction bound again.
    fn drain_for_apply(&mut self) -> &mut Vec<(K, A)> {
        self.compact_at = OWNER_COMPACT_AT;
        &mut self.partials
    }

    /// Takes in a message's partials; compacts once they have doubled since the last time.
    #[cfg(test)]
    fn add(&mut self, data: &mut Vec<(K, A)>, merge: &mut impl FnMut(&mut A, A)) {
        self.partials.append(data);
        self.compact_if_grown(merge);
    }

    /// Compacts the partials once they have doubled since the last time.
    fn compact_if_grown(&mut self, merge: &mut impl FnMut(&mut A, A)) {
        if self.partials.len() >= self.compact_at {
            compact(&mut self.partials, merge);
            self.compact_at = (2 * self.partials.len()).max(OWNER_COMPACT_AT);
        }
    }
}

/// Merges `partials` per key, in place: each key once, in the order keys first came.
fn compact<K: Key, A>(partials: &mut Vec<(K, A)>, merge: &mut impl FnMut(&mut A, A)) {
    let mut place: FxHashMap<K, usize> = FxHashMap::default();
    let mut merged: Vec<(K, A)> = Vec::new();
    for (key, partial) in partials.drain(..) {
        match place.entry(key) {
            Entry::Occupied(at) => merge(&mut merged[*at.get()].1, partial),
            Entry::Vacant(slot) => {
                merged.push((slot.key().clone(), partial));
                slot.insert(merged.len() - 1);
            }
        }
    }
    *partials = merged;
}

impl<K: Key, A: Data, M: FnMut(&mut A, A)> MergedTotals<K, A, M> {
    /// Merges a complete epoch's partials into the running accumulators; the keys it changed,
    /// each once with its new accumulator, go to the returned vector (which the caller
    /// empties). Each key moves from the partials to the output: the state looks it up by
    /// reference and copies it only when it is new.
    fn apply(&mut self, partials: &mut Vec<(K, A)>) -> &mut Vec<(K, A)> {
        let mut state = self.slot.state.borrow_mut();
        self.changes.begin(&mut state);
        let merge = &mut self.merge;
        for (key, partial) in partials.drain(..) {
            let slot = state.merge_or_insert_by_ref(&key, Marked::new(partial), |m, p| {
                merge(&mut m.acc, p.acc)
            });
            self.changes.note(key, slot);
        }
        self.changes.finish(&state)
    }

    /// The owner operator of `handle` on the combiners' `partials`, shipped by `X` through
    /// `pact`.
    fn attach<'s, X, P>(
        mut self,
        partials: Stream<'s, Epoch, Vec<X::Item>>,
        pact: P,
        handle: &OpHandle,
    ) -> Stream<'s, Epoch, Vec<(K, A)>>
    where
        M: 'static,
        X: PartialsShipping<K, A>,
        P: ParallelizationContract<Epoch, Vec<X::Item>>,
    {
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let name = handle.name.clone();
        partials.unary_frontier::<VecBuilder<(K, A)>, _, _, _>(
            pact,
            &handle.name,
            move |_cap, _info| {
                let mut pending: EpochStash<EpochPartialsIn<K, A>> = EpochStash::new();
                move |(input, frontier), output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        let Some(epoch) = pending.for_message(&cap, output.output_index()) else {
                            return;
                        };
                        if let Err(e) = X::unpack(data, &mut epoch.partials) {
                            let (operator, message) = (name.clone(), e.to_string());
                            JobContext::fail(
                                &self.failure,
                                WeirError::Operator { operator, message },
                            );
                        }
                        epoch.compact_if_grown(&mut self.merge);
                    });
                    while let Some((cap, mut epoch)) = pending.next_complete(frontier) {
                        let changed = self.apply(epoch.drain_for_apply());
                        metrics.add_out(changed.len());
                        output.session(&cap).give_container(changed);
                        changed.clear();
                        let capacity = epoch.partials.capacity();
                        pending.recycle(epoch, capacity);
                    }
                    self.slot.applied(frontier);
                }
            },
        )
    }
}

/// How a combiner's partials travel to their owners: what its output carries, and how an
/// owner takes the partials out of a message.
pub(crate) trait PartialsShipping<K, A>: 'static {
    /// What the exchange between combiners and owners carries.
    type Item: Data;

    /// Adds `partials` to `out` as what the exchange carries.
    fn pack(&mut self, partials: impl Iterator<Item = (K, A)>, out: &mut Vec<Self::Item>);

    /// Appends the partials of a message an owner received to `partials`.
    fn unpack(items: &mut Vec<Self::Item>, partials: &mut Vec<(K, A)>) -> Result<(), ParcelError>;
}

/// Partials moved to their owners as they are (by [`pair_owner_pact`]).
pub(crate) struct DirectPartials;

impl<K: Data, A: Data> PartialsShipping<K, A> for DirectPartials {
    type Item = (K, A);

    fn pack(&mut self, partials: impl Iterator<Item = (K, A)>, out: &mut Vec<(K, A)>) {
        out.extend(partials);
    }

    fn unpack(items: &mut Vec<(K, A)>, partials: &mut Vec<(K, A)>) -> Result<(), ParcelError> {
        partials.append(items);
        Ok(())
    }
}

/// Partials in parcels (by [`parcel_pact`]): `String` keys as bytes when they go to another
/// worker.
impl<K: Key, A: Data> PartialsShipping<K, A> for ParcelRouter<K, A> {
    type Item = Parcel<K, A>;

    fn pack(&mut self, partials: impl Iterator<Item = (K, A)>, out: &mut Vec<Parcel<K, A>>) {
        self.route(partials, out);
    }

    fn unpack(
        items: &mut Vec<Parcel<K, A>>,
        partials: &mut Vec<(K, A)>,
    ) -> Result<(), ParcelError> {
        items
            .drain(..)
            .try_for_each(|parcel| parcel.unpack_into(partials))
    }
}

#[cfg(test)]
mod tests {
    use super::{compact, EpochMode, EpochPartialsIn, Reduction, OWNER_COMPACT_AT};
    use rustc_hash::FxHashMap;

    #[test]
    fn an_owner_holds_about_as_many_partials_as_keys() {
        let keys = 1000u64;
        let mut epoch = EpochPartialsIn::<u64, u64>::default();
        let mut want: FxHashMap<u64, u64> = FxHashMap::default();
        let mut merge = |a: &mut u64, b: u64| *a += b;
        for message in 0..100u64 {
            let mut data: Vec<(u64, u64)> =
                (0..5000).map(|i| ((i * 7 + message) % keys, i)).collect();
            for &(k, v) in &data {
                *want.entry(k).or_default() += v;
            }
            epoch.add(&mut data, &mut merge);
            assert!(
                epoch.partials.len() < 2 * OWNER_COMPACT_AT,
                "{} held",
                epoch.partials.len()
            );
        }
        let mut partials = epoch.partials;
        compact(&mut partials, &mut merge);
        assert_eq!(partials.len(), keys as usize);
        assert_eq!(partials.into_iter().collect::<FxHashMap<_, _>>(), want);
    }

    #[test]
    fn combining_stops_when_it_does_not_reduce_and_is_measured_again_later() {
        use EpochMode::{Combine, PassThrough, Sample};
        let mut r = Reduction::default();
        assert_eq!(r.next_epoch_mode(), Combine, "combine until measured");
        r.observe(Combine, 4096, 100);
        assert_eq!(
            r.next_epoch_mode(),
            Combine,
            "40x fewer partials than records: combine"
        );
        r.observe(Combine, 100, 100);
        assert_eq!(r.next_epoch_mode(), Combine, "too few records to judge");
        r.observe(Combine, 4096, 4000);
        assert!(r.pass_through, "almost a partial per record: pass through");
        // Combined epochs that were in flight when passing through began do not count as
        // samples.
        for _ in 0..7 {
            r.observe(Combine, 4096, 4000);
        }
        // One epoch is sampled after RESAMPLE_FIRST begun, however many are in flight; each
        // sample that confirms passing through doubles the interval, up to RESAMPLE_MOST.
        let mut interval = Reduction::RESAMPLE_FIRST;
        for _ in 0..8 {
            let begun = (1..=1000).find(|_| r.next_epoch_mode() == Sample).unwrap();
            assert_eq!(begun, interval);
            r.observe(Sample, 4096, 4000);
            r.observe(PassThrough, 0, 0);
            assert!(r.pass_through, "the sample still does not reduce");
            interval = (2 * interval).min(Reduction::RESAMPLE_MOST);
        }
        assert_eq!(interval, Reduction::RESAMPLE_MOST);
        let begun = (1..=1000).find(|_| r.next_epoch_mode() == Sample).unwrap();
        r.observe(Sample, 4096, 1000);
        assert_eq!(begun, Reduction::RESAMPLE_MOST);
        assert!(!r.pass_through, "the sample reduces: combine again");
        assert_eq!(r.next_epoch_mode(), Combine);
        r.observe(Combine, 4096, 4000);
        let begun = (1..=1000).find(|_| r.next_epoch_mode() == Sample).unwrap();
        assert_eq!(
            begun,
            Reduction::RESAMPLE_FIRST,
            "back to the first interval"
        );
    }
}
