//! The keyed window operator: records go into their key's windows as they arrive, and
//! windows fire when the combined watermark (or the wall clock) passes their end.

use std::rc::Rc;
use std::time::Duration;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map as _;

use crate::dead_letter::DeadLetter;
use crate::job::Op;
use crate::operators::keyed::{Key, KeyedStateSlot};
use crate::operators::split_results::split_results;
use crate::plan::Partitioning;
use crate::report::OperatorMetrics;
use crate::stream::{Data, DataStream};
use crate::time::due_keys::DueKeys;
use crate::time::event_operator::{keyed_event_operator, EventLogic};
use crate::time::event_stream::KeyedEventStream;
use crate::time::stamped::{EventTime, Stamped, END_OF_TIME, NO_WATERMARK};
use crate::time::window_function::{Aggregating, Processing, WindowContext, WindowFunction};
use crate::time::windows::{
    merge_session, Pane, TimeDomain, TimeWindow, Timing, WindowKind, WindowResult, Windows,
};

/// One open window of a key.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OpenWindow<A> {
    window: TimeWindow,
    acc: A,
    /// Panes fired so far.
    panes: u32,
    /// Whether the on-time pane has fired.
    on_time: bool,
    /// Whether records arrived since the last pane.
    changed: bool,
}

/// A key's windows, and for count windows its records waiting for the watermark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyWindows<A, T> {
    windows: Vec<OpenWindow<A>>,
    pending: Vec<Stamped<T>>,
    counted: u64,
}

impl<A, T> Default for KeyWindows<A, T> {
    fn default() -> Self {
        KeyWindows {
            windows: Vec::new(),
            pending: Vec::new(),
            counted: 0,
        }
    }
}

/// What the operator emits: results, or records too late for every window they belong to.
type Emitted<W, K, T> = Result<<W as WindowFunction<K, T>>::Out, Stamped<T>>;

/// The window logic of one operator instance.
struct WindowLogic<K, T, W: WindowFunction<K, T>, KF> {
    windows: Windows,
    lateness: EventTime,
    early: Option<Duration>,
    /// When the next early firing is due (wall clock, ms).
    next_early: Option<EventTime>,
    function: W,
    key: KF,
    state: crate::time::SharedKeyed<K, KeyWindows<W::Acc, T>>,
    /// When keys have windows to fire or purge (or count-window records to apply).
    timers: DueKeys<K>,
    /// Keys with windows changed since the last early firing.
    early_keys: FxHashSet<K>,
    late: u64,
    metrics: Rc<OperatorMetrics>,
    scratch_windows: Vec<TimeWindow>,
    scratch_due: Vec<EventTime>,
}

impl<K: Key, T: Data, W: WindowFunction<K, T>, KF> WindowLogic<K, T, W, KF> {
    /// Rebuilds the timers of restored state.
    fn restore_timers(&mut self) {
        let lateness = self.lateness;
        let keys: Vec<(K, Vec<EventTime>)> = {
            let state = self.state.borrow();
            state
                .iter()
                .map(|(k, kw)| {
                    // Each window is due when it fires and when the lateness frees it.
                    let mut times: Vec<EventTime> = kw
                        .windows
                        .iter()
                        .flat_map(|w| {
                            let end = w.window.max_timestamp();
                            [end, end.saturating_add(lateness)]
                        })
                        .collect();
                    times.extend(kw.pending.iter().map(|r| r.ts));
                    (k.clone(), times)
                })
                .collect()
        };
        for (k, times) in keys {
            for t in times {
                self.timer(t, k.clone());
            }
        }
    }

    fn timer(&mut self, at: EventTime, key: K) {
        self.timers.add(at, key);
    }

    /// Adds a record to its key's windows (or emits it as late).
    fn add_record(
        &mut self,
        key: K,
        mut rec: Stamped<T>,
        watermark: EventTime,
        out: &mut Vec<Emitted<W, K, T>>,
    ) {
        if self.windows.domain == TimeDomain::ProcessingTime {
            rec.ts = crate::time::now_ms();
            rec.watermark = NO_WATERMARK;
        }
        if self.windows.is_count() {
            let behind = match self.windows.domain {
                TimeDomain::EventTime => rec.watermark.max(watermark),
                TimeDomain::ProcessingTime => NO_WATERMARK,
            };
            if rec.ts <= behind {
                self.late += 1;
                out.push(Err(rec));
                return;
            }
            self.timer(rec.ts, key.clone());
            let mut state = self.state.borrow_mut();
            state
                .entry_or_insert_with(key, KeyWindows::default)
                .pending
                .push(rec);
            return;
        }
        // Scratch buffers kept between records: no allocation per record.
        let mut live = std::mem::take(&mut self.scratch_windows);
        let mut due = std::mem::take(&mut self.scratch_due);
        live.clear();
        due.clear();
        self.windows.assign_into(rec.ts, &mut live);
        if live.is_empty() {
            // In a gap between sliding windows (a slide longer than the size): in no
            // window, which is not late (Flink drops such records too).
            self.scratch_windows = live;
            self.scratch_due = due;
            return;
        }
        let lateness = self.lateness;
        // Late by its own instance's watermark, or by this operator's (which is never
        // ahead of the former unless an instance came back from idleness behind it).
        let behind = match self.windows.domain {
            TimeDomain::EventTime => rec.watermark.max(watermark),
            // The wall clock decides; nothing is late.
            TimeDomain::ProcessingTime => NO_WATERMARK,
        };
        live.retain(|w| w.max_timestamp().saturating_add(lateness) > behind);
        if live.is_empty() {
            self.late += 1;
            out.push(Err(rec));
        } else {
            self.add_to_windows(&key, &rec, &live, watermark, &mut due);
            for &t in &due {
                self.timer(t, key.clone());
            }
            if self.early.is_some() {
                self.early_keys.insert(key);
            }
        }
        self.scratch_windows = live;
        self.scratch_due = due;
    }

    /// Adds a record to its live windows; `due` gets the times the key must be visited.
    fn add_to_windows(
        &mut self,
        key: &K,
        rec: &Stamped<T>,
        live: &[TimeWindow],
        watermark: EventTime,
        due: &mut Vec<EventTime>,
    ) {
        let mut state = self.state.borrow_mut();
        let kw = state.get_or_insert_with(key, KeyWindows::default);
        for &w in live {
            let (index, created) = if self.windows.is_session() {
                (Self::merge_into(&mut self.function, kw, w), true)
            } else {
                Self::find_or_open(&self.function, kw, w)
            };
            let open = &mut kw.windows[index];
            self.function.add(&mut open.acc, rec);
            open.changed = true;
            let end = open.window.max_timestamp();
            if created {
                due.push(end);
                if self.lateness > 0 {
                    due.push(end.saturating_add(self.lateness));
                }
            }
            if self.windows.domain == TimeDomain::EventTime && end <= watermark {
                // Late but allowed: a correction fires with this epoch.
                due.push(watermark);
            }
        }
    }

    /// The index of the key's window `w`, opened if needed (kept sorted); whether it was
    /// opened.
    fn find_or_open(function: &W, kw: &mut KeyWindows<W::Acc, T>, w: TimeWindow) -> (usize, bool) {
        // Records mostly go to the newest window: look there first.
        if let Some(last) = kw.windows.last() {
            if last.window == w {
                return (kw.windows.len() - 1, false);
            }
        }
        match kw.windows.binary_search_by(|o| o.window.cmp(&w)) {
            Ok(i) => (i, false),
            Err(i) => {
                kw.windows.insert(
                    i,
                    OpenWindow {
                        window: w,
                        acc: function.create(),
                        panes: 0,
                        on_time: false,
                        changed: false,
                    },
                );
                (i, true)
            }
        }
    }

    /// Merges a record's session window with the key's overlapping sessions; returns the
    /// merged session's index.
    fn merge_into(function: &mut W, kw: &mut KeyWindows<W::Acc, T>, w: TimeWindow) -> usize {
        let existing: Vec<TimeWindow> = kw.windows.iter().map(|o| o.window).collect();
        let (merged, absorbed) = merge_session(&existing, w);
        let mut open = OpenWindow {
            window: merged,
            acc: function.create(),
            panes: 0,
            on_time: false,
            changed: false,
        };
        for i in absorbed.into_iter().rev() {
            let old = kw.windows.remove(i);
            function.merge(&mut open.acc, old.acc);
            // Panes count the firings of one window: a session that did not change its
            // bounds goes on counting, a merged one is a new window. One that ends where
            // a fired session ended is past its on-time firing; one that grew past the
            // watermark fires on time again.
            if old.window == merged {
                open.panes = old.panes;
            }
            open.on_time |= old.on_time && old.window.end == merged.end;
        }
        let i = kw.windows.partition_point(|o| o.window < merged);
        kw.windows.insert(i, open);
        i
    }

    /// Fires and purges what the watermark `watermark` has passed.
    fn fire_until(&mut self, watermark: EventTime, out: &mut Vec<Emitted<W, K, T>>) {
        while let Some(keys) = self.timers.pop_due(watermark) {
            for key in keys {
                self.fire_key(key, watermark, out);
            }
        }
    }

    fn fire_key(&mut self, key: K, watermark: EventTime, out: &mut Vec<Emitted<W, K, T>>) {
        let mut state = self.state.borrow_mut();
        if state.get(&key).is_none() {
            return;
        }
        let kw = state.get_or_insert_with(&key, KeyWindows::default);
        if let WindowKind::Count { size, slide } = self.windows.kind {
            // Count windows fire as they fill, never by time; the key keeps its count.
            Self::count_records(&mut self.function, kw, &key, watermark, size, slide, out);
            return;
        }
        let lateness = self.lateness;
        let function = &mut self.function;
        kw.windows.retain_mut(|open| {
            let due = open.window.max_timestamp();
            if due <= watermark && (!open.on_time || open.changed) {
                let timing = if open.on_time {
                    Timing::Late
                } else {
                    Timing::OnTime
                };
                Self::emit(function, &key, open, timing, out);
                open.on_time = true;
            }
            due.saturating_add(lateness) > watermark
        });
        if kw.windows.is_empty() && kw.pending.is_empty() {
            state.remove(&key);
        }
    }

    fn emit(
        function: &mut W,
        key: &K,
        open: &mut OpenWindow<W::Acc>,
        timing: Timing,
        out: &mut Vec<Emitted<W, K, T>>,
    ) {
        let firing = WindowContext {
            key,
            window: open.window,
            pane: Pane {
                index: open.panes,
                timing,
            },
        };
        let mut results = Vec::new();
        function.fire(&firing, &mut open.acc, &mut results);
        out.extend(results.into_iter().map(Ok));
        open.panes += 1;
        open.changed = false;
    }

    /// Count windows: the key's records the watermark has passed, in timestamp order, go
    /// into the windows of their positions; a window fires when its last position is filled.
    #[allow(clippy::too_many_arguments)]
    fn count_records(
        function: &mut W,
        kw: &mut KeyWindows<W::Acc, T>,
        key: &K,
        watermark: EventTime,
        size: u64,
        slide: u64,
        out: &mut Vec<Emitted<W, K, T>>,
    ) {
        kw.pending.sort_by_key(|r| r.ts);
        let ready = kw.pending.partition_point(|r| r.ts <= watermark);
        for rec in kw.pending.drain(..ready).collect::<Vec<_>>() {
            let position = kw.counted as i64;
            kw.counted += 1;
            // Windows end at multiples of `slide`; the record is in those whose last `size`
            // positions hold it.
            let first_end = (position / slide as i64 + 1) * slide as i64;
            let mut end = first_end;
            while end - (size as i64) <= position {
                let w = TimeWindow {
                    start: (end - size as i64).max(0),
                    end,
                };
                let (i, _) = Self::find_or_open(function, kw, w);
                function.add(&mut kw.windows[i].acc, &rec);
                end += slide as i64;
            }
            let filled = position + 1;
            if let Some(i) = kw.windows.iter().position(|o| o.window.end == filled) {
                let mut open = kw.windows.remove(i);
                Self::emit(function, key, &mut open, Timing::OnTime, out);
            }
        }
    }

    /// Early panes of the windows changed since the last firing.
    fn fire_early(&mut self, out: &mut Vec<Emitted<W, K, T>>) {
        let keys: Vec<K> = self.early_keys.drain().collect();
        let mut state = self.state.borrow_mut();
        for key in keys {
            if state.get(&key).is_none() {
                continue;
            }
            let kw = state.get_or_insert_with(&key, KeyWindows::default);
            for open in kw.windows.iter_mut().filter(|o| !o.on_time && o.changed) {
                Self::emit(&mut self.function, &key, open, Timing::Early, out);
            }
        }
    }
}

impl<K, T, W, KF> EventLogic for WindowLogic<K, T, W, KF>
where
    K: Key,
    T: Data,
    W: WindowFunction<K, T>,
    KF: Fn(&Stamped<T>) -> K + 'static,
{
    type In = Stamped<T>;
    type Out = Emitted<W, K, T>;

    fn add(&mut self, record: Stamped<T>, watermark: EventTime, out: &mut Vec<Self::Out>) {
        let key = (self.key)(&record);
        let late = self.late;
        self.add_record(key, record, watermark, out);
        if self.late != late {
            self.metrics.set_counter("late_records", self.late);
        }
    }

    fn advance(&mut self, _previous: EventTime, watermark: EventTime, out: &mut Vec<Self::Out>) {
        // Processing-time windows fire by the clock, and all of them at the end of input.
        if self.windows.domain == TimeDomain::EventTime || watermark == END_OF_TIME {
            self.fire_until(watermark, out);
        }
    }

    fn on_processing_time(
        &mut self,
        now: EventTime,
        out: &mut Vec<Self::Out>,
    ) -> Option<EventTime> {
        let mut next = None;
        if let (Some(every), Some(due)) = (self.early, self.next_early) {
            let due = if now >= due {
                self.fire_early(out);
                now + every.as_millis() as EventTime
            } else {
                due
            };
            self.next_early = Some(due);
            next = Some(due);
        }
        if self.windows.domain == TimeDomain::ProcessingTime {
            self.fire_until(now - 1, out);
            if let Some(first) = self.timers.next() {
                let at = first + 1;
                next = Some(next.map_or(at, |n: EventTime| n.min(at)));
            }
        }
        next
    }
}

/// A keyed event stream cut into windows: choose the lateness and triggers, then what the
/// windows compute.
pub struct WindowedStream<'s, K, T, F> {
    keyed: KeyedEventStream<'s, K, T, F>,
    windows: Windows,
    lateness: EventTime,
    early: Option<Duration>,
}

impl<'s, K: Key, T: Data, F: Fn(&T) -> K + Clone + 'static> KeyedEventStream<'s, K, T, F> {
    /// Groups each key's records into `windows` (Flink's `window`).
    pub fn window(self, windows: Windows) -> WindowedStream<'s, K, T, F> {
        WindowedStream {
            keyed: self,
            windows,
            lateness: 0,
            early: None,
        }
    }
}

impl<'s, K: Key, T: Data, F: Fn(&T) -> K + Clone + 'static> WindowedStream<'s, K, T, F> {
    /// Keeps each window for `lateness` after the watermark passes its end (Flink's
    /// `allowedLateness`): a late record in that time updates the window and fires a
    /// [`Timing::Late`] pane with the corrected result. Records later than that go to the
    /// late-data output ([`WindowOutput::with_late_data`]).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness.as_millis().min(i64::MAX as u128 / 4) as EventTime;
        self
    }

    /// Also fires windows early, every `every` of processing time, while they are open
    /// (Flink's `ContinuousProcessingTimeTrigger`): a [`Timing::Early`] pane for each window
    /// that changed since its last pane. The on-time pane still fires at the watermark.
    pub fn early_firing(mut self, every: Duration) -> Self {
        self.early = Some(every.clamp(Duration::from_millis(1), Duration::from_secs(365 * 86_400)));
        self
    }

    /// Folds each window's records into an accumulator (Flink's `aggregate` with an
    /// `AggregateFunction`): `init` makes an empty one, `add` folds a record in, `merge`
    /// combines two (session windows merge).
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::time::{WatermarkStrategy, Windows};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     // (sensor, time, reading)
    ///     let readings = vec![(1u32, 1_000i64, 2.0), (1, 2_000, 4.0), (2, 1_500, 1.0)];
    ///     job.from_vec("readings", readings)
    ///         .assign_timestamps("ts", WatermarkStrategy::for_monotonous_timestamps()
    ///             .with_timestamp_assigner(|r: &(u32, i64, f64)| r.1))
    ///         .key_by(|r: &(u32, i64, f64)| r.0)
    ///         .window(Windows::session(Duration::from_secs(5)))
    ///         .aggregate("mean", || (0.0, 0u32), |acc: &mut (f64, u32), r: &(u32, i64, f64)| {
    ///             acc.0 += r.2;
    ///             acc.1 += 1;
    ///         }, |acc, other| { acc.0 += other.0; acc.1 += other.1; })
    ///         .results()
    ///         .map("value", |r| (r.key, r.value.0 / r.value.1 as f64))
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let mut means = out.take();
    /// means.sort_by_key(|m| m.0);
    /// assert_eq!(means, vec![(1, 3.0), (2, 1.0)]);
    /// ```
    pub fn aggregate<A>(
        self,
        op: impl Into<Op>,
        init: impl Fn() -> A + 'static,
        add: impl FnMut(&mut A, &T) + 'static,
        merge: impl FnMut(&mut A, A) + 'static,
    ) -> WindowOutput<'s, WindowResult<K, A>, T>
    where
        A: Data,
    {
        self.build(
            op.into(),
            "window_aggregate",
            Aggregating { init, add, merge },
        )
    }

    /// Records per window.
    pub fn count(self, op: impl Into<Op>) -> WindowOutput<'s, WindowResult<K, u64>, T> {
        self.aggregate(op, || 0u64, |n, _| *n += 1, |n, m| *n += m)
    }

    /// Sum of `value` per window.
    pub fn sum<V>(
        self,
        op: impl Into<Op>,
        value: impl Fn(&T) -> V + 'static,
    ) -> WindowOutput<'s, WindowResult<K, V>, T>
    where
        V: Data + Default + std::ops::AddAssign,
    {
        self.aggregate(
            op,
            V::default,
            move |acc, x| *acc += value(x),
            |a, b| *a += b,
        )
    }

    /// Combines each window's records pairwise (Flink's `reduce`).
    pub fn reduce(
        self,
        op: impl Into<Op>,
        f: impl Fn(&T, &T) -> T + 'static,
    ) -> WindowOutput<'s, WindowResult<K, T>, T> {
        let f = Rc::new(f);
        let g = Rc::clone(&f);
        let combine = move |acc: &mut Option<T>, x: &T, f: &dyn Fn(&T, &T) -> T| {
            *acc = Some(match acc.take() {
                Some(a) => f(&a, x),
                None => x.clone(),
            });
        };
        let output = self.build(
            op.into(),
            "window_reduce",
            Aggregating {
                init: || None::<T>,
                add: move |acc: &mut Option<T>, x: &T| combine(acc, x, &*f),
                merge: move |acc: &mut Option<T>, other: Option<T>| {
                    if let Some(o) = other {
                        combine(acc, &o, &*g);
                    }
                },
            },
        );
        WindowOutput {
            results: output.results.unwrap_values(),
            late: output.late,
            metrics: output.metrics,
        }
    }

    /// Calls `f` with all records of a window, in timestamp order, whenever it fires
    /// (Flink's `ProcessWindowFunction`); `f` returns the outputs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::time::{WatermarkStrategy, Windows};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     job.from_vec("pages", vec![(7u32, 3_000i64), (7, 1_000), (7, 2_000)])
    ///         .assign_timestamps("ts", WatermarkStrategy::for_bounded_out_of_orderness(
    ///             Duration::from_secs(5)).with_timestamp_assigner(|p: &(u32, i64)| p.1))
    ///         .key_by(|p: &(u32, i64)| p.0)
    ///         .window(Windows::tumbling(Duration::from_secs(60)))
    ///         .process("first-and-last", |w, records| {
    ///             vec![(*w.key, records[0].ts, records[records.len() - 1].ts)]
    ///         })
    ///         .results()
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take(), vec![(7, 1_000, 3_000)]);
    /// ```
    pub fn process<U: Data, I: IntoIterator<Item = U>>(
        self,
        op: impl Into<Op>,
        f: impl FnMut(&WindowContext<'_, K>, &[Stamped<T>]) -> I + 'static,
    ) -> WindowOutput<'s, U, T> {
        self.build(op.into(), "window_process", Processing { process: f })
    }

    fn build<W: WindowFunction<K, T>>(
        self,
        op: Op,
        kind: &str,
        function: W,
    ) -> WindowOutput<'s, W::Out, T> {
        let events = &self.keyed.events;
        let ctx = Rc::clone(&events.records.ctx);
        if let Err(message) = self.windows.check() {
            ctx.fail_build(crate::WeirError::Build {
                operator: op.name().to_string(),
                message,
            });
        }
        let handle = ctx.add_operator(&op, kind, &[(events.records.node, Partitioning::Hash)]);
        let slot: KeyedStateSlot<K, KeyWindows<W::Acc, T>> =
            KeyedStateSlot::new(&ctx, &handle, None);
        let mut logic = WindowLogic {
            windows: self.windows,
            lateness: self.lateness,
            early: self.early,
            next_early: self
                .early
                .map(|every| crate::time::now_ms() + every.as_millis() as i64),
            function,
            key: self.keyed.stamped_key(),
            state: Rc::clone(&slot.state),
            timers: DueKeys::new(),
            early_keys: FxHashSet::default(),
            late: 0,
            metrics: Rc::clone(&handle.metrics),
            scratch_windows: Vec::new(),
            scratch_due: Vec::new(),
        };
        logic.restore_timers();
        let out = keyed_event_operator(
            events,
            self.keyed.stamped_key(),
            &handle,
            logic,
            move |epoch| slot.applied_below(epoch),
        );
        let (results, late) = split_results(out, &handle.name, |late| late);
        WindowOutput {
            results: DataStream::from_parts(
                Rc::clone(&ctx),
                results,
                handle.node,
                Rc::clone(&handle.placement),
            ),
            late: DataStream::from_parts(ctx, late, handle.node, Rc::clone(&handle.placement)),
            metrics: Rc::clone(&handle.metrics),
        }
    }
}

/// What a window operator produces: its results and the records that came too late for
/// any of their windows (Flink's `sideOutputLateData`).
pub struct WindowOutput<'s, R, T> {
    results: DataStream<'s, R>,
    late: DataStream<'s, Stamped<T>>,
    metrics: Rc<OperatorMetrics>,
}

impl<'s, R: Data, T: Data> WindowOutput<'s, R, T> {
    /// The results; late records become the job's dead letters (nothing is lost silently),
    /// with a reason naming their timestamp and watermark.
    pub fn results(self) -> DataStream<'s, R> {
        let late = self.late;
        let name = late.ctx.plan.borrow().nodes[late.node].name.clone();
        let metrics = self.metrics;
        let dead = late.stream.map(move |s: Stamped<T>| {
            metrics.add_dead(1);
            DeadLetter::for_record(
                &name,
                format!("event time {}", s.ts),
                format!(
                    "late record: the watermark was already at {} when it was read, past the end \
                     (plus the allowed lateness) of every window it belongs to",
                    s.watermark
                ),
                &s.data,
            )
        });
        late.ctx
            .dead_letters
            .borrow_mut()
            .push((dead, late.node, Rc::clone(&late.placement)));
        self.results
    }

    /// The results and the late records, as a stream of their own to sink or process.
    pub fn with_late_data(self) -> (DataStream<'s, R>, DataStream<'s, Stamped<T>>) {
        (self.results, self.late)
    }
}

impl<'s, K: Data, T: Data> DataStream<'s, WindowResult<K, Option<T>>> {
    /// Unwraps reduce results, which always hold a record.
    fn unwrap_values(self) -> DataStream<'s, WindowResult<K, T>> {
        let stream = self.stream.map(|r| WindowResult {
            key: r.key,
            window: r.window,
            value: r.value.expect("a fired window holds a record"),
            pane: r.pane,
        });
        DataStream::from_parts(
            Rc::clone(&self.ctx),
            stream,
            self.node,
            Rc::clone(&self.placement),
        )
    }
}
