//! Running aggregates over a whole stream (no key): each instance folds its records of an
//! epoch into a partial, and one instance merges the partials into the running total.

use std::rc::Rc;

use timely::dataflow::operators::vec::Map as _;

use crate::job::{op, Op};
use crate::stream::{Data, DataStream};

impl<'s, T: Data> DataStream<'s, T> {
    /// A running aggregate of the whole stream: `fold` combines each instance's records of
    /// an epoch into a partial (a combiner, before any exchange), and one instance merges
    /// the partials into the total with `merge`, emitting it after every epoch that changed
    /// it. The last value is the total over the stream, whatever the epochs and parallelism.
    /// The merging instance is operator `op` (parallelism 1); the combiners are
    /// `{op}.partial`, beside this stream's instances.
    ///
    /// ```
    /// use weir_core::{execute, op, Collector, Config, EpochPolicy};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.generate(op("numbers").epochs(EpochPolicy::Records(100)), Some(1000), |i| i)
    ///         .global_aggregate("mean", || (0u64, 0u64), |acc, x| { acc.0 += x; acc.1 += 1 },
    ///             |acc, other| { acc.0 += other.0; acc.1 += other.1 })
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let (sum, n) = out.take().into_iter().max_by_key(|t| t.1).unwrap();
    /// assert_eq!((sum, n), ((0..1000).sum(), 1000));
    /// ```
    pub fn global_aggregate<A: Data>(
        self,
        op_: impl Into<Op>,
        init: impl Fn() -> A + 'static,
        mut fold: impl FnMut(&mut A, T) + 'static,
        mut merge: impl FnMut(&mut A, A) + 'static,
    ) -> DataStream<'s, A> {
        let mut total = op_.into();
        if total.parallelism.is_none() {
            total = total.parallelism(1);
        }
        let init = Rc::new(init);
        let init_partial = Rc::clone(&init);
        let here = self.placement.len();
        let partials = self.map_batch(
            op(format!("{}.partial", total.name())).parallelism(here),
            move |batch: Vec<T>| {
                let mut acc = init_partial();
                for x in batch {
                    fold(&mut acc, x);
                }
                Some(acc)
            },
        );
        let totals = partials.key_by(|_: &A| ()).aggregate(
            total,
            move |_| init(),
            move |acc, partial| merge(acc, partial),
        );
        let stream = totals.stream.map(|((), total)| total);
        DataStream::from_parts(
            Rc::clone(&totals.ctx),
            stream,
            totals.node,
            Rc::clone(&totals.placement),
        )
    }

    /// The running number of records of the whole stream.
    pub fn global_count(self, op: impl Into<Op>) -> DataStream<'s, u64> {
        self.global_aggregate(op, || 0u64, |n, _| *n += 1, |n, m| *n += m)
    }

    /// The running sum of `value` over the whole stream.
    pub fn global_sum<V>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
    ) -> DataStream<'s, V>
    where
        V: Data + Default + std::ops::AddAssign,
    {
        self.global_aggregate(
            op,
            V::default,
            move |acc, x| *acc += value(&x),
            |a, b| *a += b,
        )
    }
}
