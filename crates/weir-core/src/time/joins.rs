//! Event-time joins of two keyed event streams: the interval join (Flink's `intervalJoin`)
//! and the window join (Flink's `join(...).window(...)`). Both free their state once the
//! watermark has passed what can still match.

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::job::Op;
use crate::operators::keyed::{Key, KeyedStateSlot};
use crate::plan::Partitioning;
use crate::stream::Data;
use crate::time::due_keys::DueKeys;
use crate::time::event_operator::{keyed_event_operator, EventLogic};
use crate::time::event_output::{split_output, Emit, Forwarder};
use crate::time::event_stream::{EventStream, KeyedEventStream};
use crate::time::stamped::{EventTime, Stamped};
use crate::time::window_operator::WindowOutput;
use crate::time::windows::Windows;

/// A record of either side of a join.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Side<A, B> {
    /// From the first (left) stream.
    Left(A),
    /// From the second (right) stream.
    Right(B),
}

/// A key's records of both sides that may still match.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JoinBuffers<A, B> {
    left: Vec<Stamped<A>>,
    right: Vec<Stamped<B>>,
}

impl<A, B> Default for JoinBuffers<A, B> {
    fn default() -> Self {
        JoinBuffers {
            left: Vec::new(),
            right: Vec::new(),
        }
    }
}

/// The interval join of one instance.
struct IntervalJoin<K, A, B, U, KF, F> {
    key: KF,
    lower: EventTime,
    upper: EventTime,
    join: F,
    state: crate::time::SharedKeyed<K, JoinBuffers<A, B>>,
    /// When keys have records to free.
    cleanup: DueKeys<K>,
    forwarder: Forwarder,
    watermark: EventTime,
    _out: std::marker::PhantomData<fn() -> U>,
}

impl<K, A, B, U, KF, F> IntervalJoin<K, A, B, U, KF, F>
where
    K: Key,
    A: Data,
    B: Data,
    U: Data,
    KF: Fn(&Side<A, B>) -> K + 'static,
    F: FnMut(&K, &A, &B) -> U + 'static,
{
    fn restore_cleanup(&mut self) {
        let state = self.state.borrow();
        for (k, buffers) in state.iter() {
            let times = buffers.left.iter().map(|a| a.ts.saturating_add(self.upper));
            let times = times.chain(
                buffers
                    .right
                    .iter()
                    .map(|b| b.ts.saturating_sub(self.lower)),
            );
            for t in times {
                self.cleanup.add(t, k.clone());
            }
        }
    }

    fn emit(&self, ts: EventTime, data: U, out: &mut Vec<Emit<U, Side<A, B>>>) {
        out.push(Emit::Out(Stamped {
            ts,
            data,
            watermark: self.watermark,
        }));
    }
}

impl<K, A, B, U, KF, F> EventLogic for IntervalJoin<K, A, B, U, KF, F>
where
    K: Key,
    A: Data,
    B: Data,
    U: Data,
    KF: Fn(&Side<A, B>) -> K + 'static,
    F: FnMut(&K, &A, &B) -> U + 'static,
{
    type In = Stamped<Side<A, B>>;
    type Out = Emit<U, Side<A, B>>;

    fn add(&mut self, record: Self::In, watermark: EventTime, out: &mut Vec<Self::Out>) {
        if record.ts <= record.watermark.max(watermark) {
            out.push(Emit::Late(record));
            return;
        }
        let key = (self.key)(&record.data);
        let (lower, upper) = (self.lower, self.upper);
        let mut matches = Vec::new();
        let free_at;
        {
            let mut state = self.state.borrow_mut();
            let buffers = state.get_or_insert_with(&key, JoinBuffers::default);
            match record.data {
                Side::Left(a) => {
                    for b in &buffers.right {
                        if b.ts >= record.ts.saturating_add(lower)
                            && b.ts <= record.ts.saturating_add(upper)
                        {
                            matches.push((record.ts.max(b.ts), (self.join)(&key, &a, &b.data)));
                        }
                    }
                    free_at = record.ts.saturating_add(upper);
                    buffers.left.push(Stamped {
                        ts: record.ts,
                        data: a,
                        watermark: record.watermark,
                    });
                }
                Side::Right(b) => {
                    for a in &buffers.left {
                        if record.ts >= a.ts.saturating_add(lower)
                            && record.ts <= a.ts.saturating_add(upper)
                        {
                            matches.push((record.ts.max(a.ts), (self.join)(&key, &a.data, &b)));
                        }
                    }
                    free_at = record.ts.saturating_sub(lower);
                    buffers.right.push(Stamped {
                        ts: record.ts,
                        data: b,
                        watermark: record.watermark,
                    });
                }
            }
        }
        for (ts, u) in matches {
            self.emit(ts, u, out);
        }
        self.cleanup.add(free_at, key);
    }

    fn advance(&mut self, _previous: EventTime, watermark: EventTime, out: &mut Vec<Self::Out>) {
        self.watermark = watermark;
        let (lower, upper) = (self.lower, self.upper);
        while let Some(keys) = self.cleanup.pop_due(watermark) {
            let mut state = self.state.borrow_mut();
            for key in keys {
                if state.get(&key).is_none() {
                    continue;
                }
                let buffers = state.get_or_insert_with(&key, JoinBuffers::default);
                // A left record can still meet right records up to ts + upper, a right one
                // left records from ts - upper to ts - lower; later records are above the
                // watermark.
                buffers
                    .left
                    .retain(|a| a.ts.saturating_add(upper) > watermark);
                buffers
                    .right
                    .retain(|b| b.ts.saturating_sub(lower) > watermark);
                if buffers.left.is_empty() && buffers.right.is_empty() {
                    state.remove(&key);
                }
            }
        }
        out.extend(self.forwarder.announce(watermark));
    }
}

impl<'s, K: Key, A: Data, FA: Fn(&A) -> K + Clone + 'static> KeyedEventStream<'s, K, A, FA> {
    /// Joins each record `a` of this stream with the records `b` of `other` of the same key
    /// whose timestamps lie in `[a.ts + lower, a.ts + upper]` (milliseconds; Flink's
    /// `intervalJoin(...).between(lower, upper)`). A pair is emitted once, when its second
    /// record arrives, at the later of the two timestamps. Records are freed when the
    /// watermark passes the last time they can match; records late when read (at or below
    /// their instance's watermark) are not joined and become dead letters.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::time::WatermarkStrategy;
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let ts = || WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
    ///         .with_timestamp_assigner(|r: &(u32, i64)| r.1);
    ///     // (user, time): impressions and the clicks that follow them within 10 s.
    ///     let views = job.from_vec("views", vec![(1u32, 1_000i64), (2, 2_000)])
    ///         .assign_timestamps("view-time", ts());
    ///     let clicks = job.from_vec("clicks", vec![(1u32, 4_000i64), (2, 30_000)])
    ///         .assign_timestamps("click-time", ts());
    ///     views.key_by(|v: &(u32, i64)| v.0)
    ///         .interval_join("attributed", clicks.key_by(|c: &(u32, i64)| c.0), 0, 10_000,
    ///             |user, view, click| (*user, click.1 - view.1))
    ///         .records()
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take(), vec![(1, 3_000)]);
    /// ```
    pub fn interval_join<B, FB, U>(
        self,
        op: impl Into<Op>,
        other: KeyedEventStream<'s, K, B, FB>,
        lower: EventTime,
        upper: EventTime,
        join: impl FnMut(&K, &A, &B) -> U + 'static,
    ) -> EventStream<'s, U>
    where
        B: Data,
        FB: Fn(&B) -> K + Clone + 'static,
        U: Data,
    {
        let op = op.into();
        let (sides, key) = union_sides(&op, self, other);
        let ctx = Rc::clone(&sides.records.ctx);
        if lower > upper {
            ctx.fail_build(crate::WeirError::Build {
                operator: op.name().to_string(),
                message: format!(
                    "interval join bounds: lower ({lower} ms) is above upper ({upper} ms)"
                ),
            });
        }
        let handle = ctx.add_operator(
            &op,
            "interval_join",
            &[(sides.records.node, Partitioning::Hash)],
        );
        let slot: KeyedStateSlot<K, JoinBuffers<A, B>> = KeyedStateSlot::new(&ctx, &handle, None);
        let mut logic = IntervalJoin {
            key: key.clone(),
            lower,
            upper,
            join,
            state: Rc::clone(&slot.state),
            cleanup: DueKeys::new(),
            forwarder: Forwarder::new(&handle),
            watermark: crate::time::NO_WATERMARK,
            _out: std::marker::PhantomData,
        };
        logic.restore_cleanup();
        let out = keyed_event_operator(
            &sides,
            move |x: &Stamped<Side<A, B>>| key(&x.data),
            &handle,
            logic,
            move |epoch| slot.applied_below(epoch),
        );
        split_output(ctx, out, &handle, "late record: not joined")
    }

    /// Joins the records of both streams that share a key and a window (Flink's
    /// `join(other).where(..).equalTo(..).window(..)`): when a window fires, `join` is called
    /// for every pair of its left and right records. Window state is freed as windows fire.
    pub fn window_join<B, FB, U>(
        self,
        op: impl Into<Op>,
        other: KeyedEventStream<'s, K, B, FB>,
        windows: Windows,
        mut join: impl FnMut(&K, &A, &B) -> U + 'static,
    ) -> WindowOutput<'s, U, Side<A, B>>
    where
        B: Data,
        FB: Fn(&B) -> K + Clone + 'static,
        U: Data,
    {
        let op = op.into();
        let (sides, key) = union_sides(&op, self, other);
        sides
            .key_by(key)
            .window(windows)
            .process(op, move |w, records| {
                let mut out = Vec::new();
                for a in records.iter().filter_map(|r| match &r.data {
                    Side::Left(a) => Some(a),
                    Side::Right(_) => None,
                }) {
                    for r in records {
                        if let Side::Right(b) = &r.data {
                            out.push(join(w.key, a, b));
                        }
                    }
                }
                out
            })
    }
}

/// Both streams as one stream of [`Side`]s, and the key of a side.
#[allow(clippy::type_complexity)]
fn union_sides<'s, K, A, B, FA, FB>(
    op: &Op,
    left: KeyedEventStream<'s, K, A, FA>,
    right: KeyedEventStream<'s, K, B, FB>,
) -> (
    EventStream<'s, Side<A, B>>,
    impl Fn(&Side<A, B>) -> K + Clone + 'static,
)
where
    K: Key,
    A: Data,
    B: Data,
    FA: Fn(&A) -> K + Clone + 'static,
    FB: Fn(&B) -> K + Clone + 'static,
{
    let name = op.name();
    let (ka, kb) = (left.key.clone(), right.key.clone());
    let (lp, rp) = (
        left.events.records.placement.len(),
        right.events.records.placement.len(),
    );
    let l = left.events.map(
        crate::job::op(format!("{name}.left")).parallelism(lp),
        Side::Left,
    );
    let r = right.events.map(
        crate::job::op(format!("{name}.right")).parallelism(rp),
        Side::Right,
    );
    let sides = l.union(format!("{name}.sides"), r);
    let key = move |s: &Side<A, B>| match s {
        Side::Left(a) => ka(a),
        Side::Right(b) => kb(b),
    };
    (sides, key)
}
