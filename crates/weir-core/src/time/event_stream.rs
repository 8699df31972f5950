//! `EventStream`: records with event timestamps, and the watermarks that travel beside them.

use std::rc::Rc;

use timely::dataflow::operators::core::{Concat, Inspect};
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::Stream;

use crate::job::{Epoch, Op};
use crate::operators::keyed::Key;
use crate::stream::{Data, DataStream};
use crate::time::stamped::{EventTime, Stamped, WatermarkMessage};

/// A stream whose records carry event timestamps, with the watermarks of the instances that
/// assigned them ([`DataStream::assign_timestamps`]).
///
/// Epochs stay what they are everywhere in Weir, a unit of batching and flow control; event
/// time travels beside them. Each generator instance sends its watermark at the epoch of the
/// records it has just stamped, and an event-time operator applies the watermarks of an
/// epoch after that epoch's records, so which windows fire with which records does not
/// depend on how the input is cut into epochs (see `docs/event-time.md`).
pub struct EventStream<'s, T> {
    pub(crate) records: DataStream<'s, Stamped<T>>,
    pub(crate) watermarks: Stream<'s, Epoch, Vec<WatermarkMessage>>,
    /// Every generator instance whose watermark the combined watermark waits for.
    pub(crate) generators: Rc<[u64]>,
}

impl<T: Clone + 'static> Clone for EventStream<'_, T> {
    fn clone(&self) -> Self {
        EventStream {
            records: self.records.clone(),
            watermarks: self.watermarks.clone(),
            generators: Rc::clone(&self.generators),
        }
    }
}

impl<'s, T: Data> EventStream<'s, T> {
    /// The event stream operator `handle` produces, whose instances generate its watermarks.
    pub(crate) fn generated_by(
        ctx: Rc<crate::job::JobContext<'s>>,
        records: Stream<'s, Epoch, Vec<Stamped<T>>>,
        watermarks: Stream<'s, Epoch, Vec<WatermarkMessage>>,
        handle: &crate::job::OpHandle,
    ) -> Self {
        let generators: Rc<[u64]> = (0..handle.placement.len())
            .map(|i| crate::time::stamped::generator_id(handle.node, i))
            .collect();
        EventStream {
            records: DataStream::from_parts(
                ctx,
                records,
                handle.node,
                Rc::clone(&handle.placement),
            ),
            watermarks,
            generators,
        }
    }

    /// The same watermarks beside other records, produced by an element-wise operator: the
    /// operator reports the watermark of the generators its worker sees.
    fn with_records<U: Data>(&self, records: DataStream<'s, Stamped<U>>) -> EventStream<'s, U> {
        let metrics = records
            .ctx
            .metrics
            .borrow()
            .iter()
            .find(|(node, _)| *node == records.node)
            .map(|(_, m)| Rc::clone(m));
        let mut seen: rustc_hash::FxHashMap<u64, EventTime> = Default::default();
        let watermarks = self
            .watermarks
            .clone()
            .inspect(move |m: &WatermarkMessage| {
                let w = seen.entry(m.generator).or_insert(m.watermark);
                *w = (*w).max(m.watermark);
                if let (Some(metrics), Some(low)) = (&metrics, seen.values().min()) {
                    metrics.set_watermark(*low);
                }
            });
        EventStream {
            records,
            watermarks,
            generators: Rc::clone(&self.generators),
        }
    }

    /// Transforms every record; the result keeps the record's timestamp.
    pub fn map<U: Data>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(T) -> U + 'static,
    ) -> EventStream<'s, U> {
        let records = self.records.clone().map(op, move |s: Stamped<T>| Stamped {
            ts: s.ts,
            watermark: s.watermark,
            data: f(s.data),
        });
        self.with_records(records)
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(self, op: impl Into<Op>, mut f: impl FnMut(&T) -> bool + 'static) -> Self {
        let records = self.records.clone().filter(op, move |s| f(&s.data));
        self.with_records(records)
    }

    /// Turns every record into zero or more records with its timestamp.
    pub fn flat_map<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: impl Into<Op>,
        mut f: impl FnMut(T) -> I + 'static,
    ) -> EventStream<'s, U> {
        let records = self.records.clone().flat_map(op, move |s: Stamped<T>| {
            let (ts, watermark) = (s.ts, s.watermark);
            f(s.data).into_iter().map(move |data| Stamped {
                ts,
                data,
                watermark,
            })
        });
        self.with_records(records)
    }

    /// Merges two event streams: the combined watermark waits for the generators of both.
    pub fn union(self, op: impl Into<Op>, other: EventStream<'s, T>) -> Self {
        let generators: Rc<[u64]> = self
            .generators
            .iter()
            .chain(other.generators.iter())
            .copied()
            .collect();
        EventStream {
            records: self.records.union(op, other.records),
            watermarks: self.watermarks.concat(other.watermarks),
            generators,
        }
    }

    /// Partitions the stream by `key` for windows, process functions and event-time joins.
    pub fn key_by<K: Key, F: Fn(&T) -> K + Clone + 'static>(
        self,
        key: F,
    ) -> KeyedEventStream<'s, K, T, F> {
        KeyedEventStream {
            events: self,
            key,
            _key: std::marker::PhantomData,
        }
    }

    /// The records without their timestamps.
    pub fn records(self) -> DataStream<'s, T> {
        let stream = self.records.stream.map(|s| s.data);
        DataStream::from_parts(
            Rc::clone(&self.records.ctx),
            stream,
            self.records.node,
            Rc::clone(&self.records.placement),
        )
    }

    /// The records with their timestamps.
    pub fn stamped(self) -> DataStream<'s, Stamped<T>> {
        self.records
    }
}

/// An [`EventStream`] partitioned by key: the input of windows
/// ([`KeyedEventStream::window`]), keyed process functions
/// ([`KeyedEventStream::process`]) and event-time joins.
pub struct KeyedEventStream<'s, K, T, F> {
    pub(crate) events: EventStream<'s, T>,
    pub(crate) key: F,
    pub(crate) _key: std::marker::PhantomData<fn() -> K>,
}

impl<'s, K: Key, T: Data, F: Fn(&T) -> K + Clone + 'static> KeyedEventStream<'s, K, T, F> {
    /// The key function on stamped records.
    pub(crate) fn stamped_key(&self) -> impl Fn(&Stamped<T>) -> K + Clone + 'static {
        let key = self.key.clone();
        move |s: &Stamped<T>| key(&s.data)
    }
}
