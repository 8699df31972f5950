//! Keyed process functions (Flink's `KeyedProcessFunction`): per-key state and event-time and
//! processing-time timers that call back.

use std::collections::BTreeSet;
use std::rc::Rc;

use serde::de::DeserializeOwned;
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
use crate::time::windows::TimeDomain;

/// A timer that fired: its time and clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// The time it was set for (ms).
    pub time: EventTime,
    /// Event time (fired by the watermark) or processing time (by the wall clock).
    pub domain: TimeDomain,
}

/// Logic with per-key state and timers (Flink's `KeyedProcessFunction`), for
/// sessionisation, timeouts, deduplication with a time to live, and the like.
///
/// Records reach [`KeyedProcessFunction::process_element`] in timestamp order once the
/// watermark has passed them, interleaved with the event-time timers at the same times
/// (a record at `t` before a timer at `t`), so the result does not depend on arrival order,
/// epochs or parallelism. A record that was late when read (its timestamp at or below its
/// instance's watermark) is processed at once, with the watermark already past it.
pub trait KeyedProcessFunction<K, T>: 'static {
    /// The state of one key; a new key starts from `Default`.
    type State: Default + Serialize + DeserializeOwned + 'static;
    /// What the function emits.
    type Out: Data;

    /// Called for every record.
    fn process_element(
        &mut self,
        record: Stamped<T>,
        ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    );

    /// Called when a timer of the key fires.
    fn on_timer(
        &mut self,
        _timer: Timer,
        _ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    ) {
    }
}

/// A key's timers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct KeyTimers {
    event: BTreeSet<EventTime>,
    processing: BTreeSet<EventTime>,
}

/// Everything one key holds: the user's state, records waiting for the watermark, timers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyProcess<S, T> {
    state: S,
    pending: Vec<Stamped<T>>,
    timers: KeyTimers,
}

impl<S: Default, T> Default for KeyProcess<S, T> {
    fn default() -> Self {
        KeyProcess {
            state: S::default(),
            pending: Vec::new(),
            timers: KeyTimers::default(),
        }
    }
}

/// A timer registered or deleted by a process function.
#[derive(Clone, Copy, Debug)]
enum TimerChange {
    Registered(TimeDomain, EventTime),
    Deleted(TimeDomain, EventTime),
}

/// What a process function sees of its key: the state, the time, timers, and where its
/// outputs go.
pub struct ProcessContext<'a, K, S, U> {
    key: &'a K,
    state: &'a mut S,
    timestamp: EventTime,
    watermark: EventTime,
    timers: &'a mut KeyTimers,
    /// Timers registered and deleted, in order: the operator's index of due keys follows.
    timer_changes: &'a mut Vec<TimerChange>,
    out: &'a mut Vec<(EventTime, U)>,
    cleared: &'a mut bool,
}

impl<K, S: Default, U> ProcessContext<'_, K, S, U> {
    /// The key.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The key's state.
    pub fn state(&mut self) -> &mut S {
        *self.cleared = false;
        self.state
    }

    /// The timestamp of the record, or the time of the timer, being processed.
    pub fn timestamp(&self) -> EventTime {
        self.timestamp
    }

    /// The operator's watermark.
    pub fn current_watermark(&self) -> EventTime {
        self.watermark
    }

    /// The wall clock (ms since the Unix epoch).
    pub fn current_processing_time(&self) -> EventTime {
        crate::time::now_ms()
    }

    /// Calls [`KeyedProcessFunction::on_timer`] when the watermark reaches `time`; one timer
    /// per key and time.
    pub fn register_event_time_timer(&mut self, time: EventTime) {
        if self.timers.event.insert(time) {
            self.timer_changes
                .push(TimerChange::Registered(TimeDomain::EventTime, time));
        }
    }

    /// Removes an event-time timer.
    pub fn delete_event_time_timer(&mut self, time: EventTime) {
        if self.timers.event.remove(&time) {
            self.timer_changes
                .push(TimerChange::Deleted(TimeDomain::EventTime, time));
        }
    }

    /// Calls [`KeyedProcessFunction::on_timer`] when the wall clock reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: EventTime) {
        if self.timers.processing.insert(time) {
            self.timer_changes
                .push(TimerChange::Registered(TimeDomain::ProcessingTime, time));
        }
    }

    /// Removes a processing-time timer.
    pub fn delete_processing_time_timer(&mut self, time: EventTime) {
        if self.timers.processing.remove(&time) {
            self.timer_changes
                .push(TimerChange::Deleted(TimeDomain::ProcessingTime, time));
        }
    }

    /// Emits `value` at the current timestamp.
    pub fn emit(&mut self, value: U) {
        self.out.push((self.timestamp, value));
    }

    /// Emits `value` with timestamp `ts`.
    pub fn emit_at(&mut self, ts: EventTime, value: U) {
        self.out.push((ts, value));
    }

    /// Resets the key's state to its default; a key with no state, timers or waiting
    /// records is dropped from the operator's state (and its checkpoints).
    pub fn clear(&mut self) {
        *self.state = S::default();
        *self.cleared = true;
    }
}

/// The process function of one instance and its keys.
struct ProcessLogic<K, T, P: KeyedProcessFunction<K, T>, KF> {
    function: P,
    key: KF,
    state: crate::time::SharedKeyed<K, KeyProcess<P::State, T>>,
    /// When keys have records or event timers due.
    event_index: DueKeys<K>,
    processing_index: DueKeys<K>,
    forwarder: Forwarder,
    /// The watermark that stamps outputs (the one before the current advance).
    output_watermark: EventTime,
}

/// A key's next step: a record or an event timer, whichever is earlier.
enum Step<T> {
    Record(Stamped<T>),
    Timer(EventTime),
}

impl<K, T, P, KF> ProcessLogic<K, T, P, KF>
where
    K: Key,
    T: Data,
    P: KeyedProcessFunction<K, T>,
    KF: Fn(&T) -> K + 'static,
{
    fn restore_index(&mut self) {
        let state = self.state.borrow();
        for (k, kp) in state.iter() {
            let times = kp
                .pending
                .iter()
                .map(|r| r.ts)
                .chain(kp.timers.event.iter().copied());
            for t in times {
                self.event_index.add(t, k.clone());
            }
            for &t in &kp.timers.processing {
                self.processing_index.add(t, k.clone());
            }
        }
    }

    /// Runs the function for one key: `step` decides what it is called with.
    fn call(
        &mut self,
        key: &K,
        watermark: EventTime,
        mut step: impl FnMut(&mut KeyProcess<P::State, T>) -> Option<(Step<T>, TimeDomain)>,
        out: &mut Vec<Emit<P::Out, T>>,
    ) {
        let mut timer_changes = Vec::new();
        let mut emitted = Vec::new();
        let mut state = self.state.borrow_mut();
        let kp = state.get_or_insert_with(key, KeyProcess::default);
        let mut cleared = false;
        while let Some((next, domain)) = step(kp) {
            let mut ctx = ProcessContext {
                key,
                state: &mut kp.state,
                timestamp: 0,
                watermark,
                timers: &mut kp.timers,
                timer_changes: &mut timer_changes,
                out: &mut emitted,
                cleared: &mut cleared,
            };
            match next {
                Step::Record(rec) => {
                    ctx.timestamp = rec.ts;
                    self.function.process_element(rec, &mut ctx);
                }
                Step::Timer(time) => {
                    ctx.timestamp = time;
                    self.function.on_timer(Timer { time, domain }, &mut ctx);
                }
            }
        }
        let empty =
            kp.pending.is_empty() && kp.timers.event.is_empty() && kp.timers.processing.is_empty();
        // One index entry stands for the key's records waiting at a time and its event timer
        // at that time: deleting the timer must not take the records' entry with it.
        timer_changes.retain(|change| match change {
            TimerChange::Deleted(TimeDomain::EventTime, t) => {
                !kp.pending.iter().any(|r| r.ts == *t)
            }
            _ => true,
        });
        if cleared && empty {
            state.remove(key);
        }
        drop(state);
        // Deleted timers leave the index too: a function that deletes and registers a timer
        // per record (a timeout) kept an entry per record until its time came.
        for change in timer_changes {
            let (TimerChange::Registered(domain, t) | TimerChange::Deleted(domain, t)) = change;
            let index = match domain {
                TimeDomain::EventTime => &mut self.event_index,
                TimeDomain::ProcessingTime => &mut self.processing_index,
            };
            match change {
                TimerChange::Registered(..) => index.add(t, key.clone()),
                TimerChange::Deleted(..) => index.remove(t, key),
            }
        }
        let watermark = self.output_watermark;
        out.extend(emitted.into_iter().map(|(ts, data)| {
            Emit::Out(Stamped {
                ts,
                data,
                watermark,
            })
        }));
    }

    /// Records and event timers of `key` up to `watermark`, in time order.
    fn run_key(&mut self, key: &K, watermark: EventTime, out: &mut Vec<Emit<P::Out, T>>) {
        if self.state.borrow().get(key).is_none() {
            return;
        }
        let mut sorted = false;
        self.call(
            key,
            watermark,
            |kp| {
                if !sorted {
                    kp.pending.sort_by_key(|r| r.ts);
                    sorted = true;
                }
                let record = kp.pending.first().map(|r| r.ts).filter(|&t| t <= watermark);
                let timer = kp.timers.event.first().copied().filter(|&t| t <= watermark);
                match (record, timer) {
                    (Some(r), Some(t)) if t < r => {
                        kp.timers.event.remove(&t);
                        Some((Step::Timer(t), TimeDomain::EventTime))
                    }
                    (Some(_), _) => {
                        Some((Step::Record(kp.pending.remove(0)), TimeDomain::EventTime))
                    }
                    (None, Some(t)) => {
                        kp.timers.event.remove(&t);
                        Some((Step::Timer(t), TimeDomain::EventTime))
                    }
                    (None, None) => None,
                }
            },
            out,
        );
    }
}

impl<K, T, P, KF> EventLogic for ProcessLogic<K, T, P, KF>
where
    K: Key,
    T: Data,
    P: KeyedProcessFunction<K, T>,
    KF: Fn(&T) -> K + 'static,
{
    type In = Stamped<T>;
    type Out = Emit<P::Out, T>;

    fn add(&mut self, record: Stamped<T>, watermark: EventTime, out: &mut Vec<Self::Out>) {
        let key = (self.key)(&record.data);
        if record.ts <= record.watermark.max(watermark) {
            // Late when read: processed now, with the watermark past it.
            let mut once = Some(record);
            self.call(
                &key,
                watermark,
                |_| {
                    once.take()
                        .map(|r| (Step::Record(r), TimeDomain::EventTime))
                },
                out,
            );
            return;
        }
        self.event_index.add(record.ts, key.clone());
        let mut state = self.state.borrow_mut();
        state
            .entry_or_insert_with(key, KeyProcess::default)
            .pending
            .push(record);
    }

    fn advance(&mut self, previous: EventTime, watermark: EventTime, out: &mut Vec<Self::Out>) {
        self.output_watermark = previous;
        while let Some(keys) = self.event_index.pop_due(watermark) {
            for key in keys {
                self.run_key(&key, watermark, out);
            }
        }
        self.output_watermark = watermark;
        out.extend(self.forwarder.announce(watermark));
    }

    fn on_processing_time(
        &mut self,
        now: EventTime,
        out: &mut Vec<Self::Out>,
    ) -> Option<EventTime> {
        while let Some(keys) = self.processing_index.pop_due(now) {
            for key in keys {
                if self.state.borrow().get(&key).is_none() {
                    continue;
                }
                let watermark = self.output_watermark;
                self.call(
                    &key,
                    watermark,
                    |kp| {
                        let t = kp
                            .timers
                            .processing
                            .first()
                            .copied()
                            .filter(|&t| t <= now)?;
                        kp.timers.processing.remove(&t);
                        Some((Step::Timer(t), TimeDomain::ProcessingTime))
                    },
                    out,
                );
            }
        }
        self.processing_index.next()
    }
}

impl<'s, K: Key, T: Data, F: Fn(&T) -> K + Clone + 'static> KeyedEventStream<'s, K, T, F> {
    /// Runs a [`KeyedProcessFunction`] on each key's records: per-key state and timers,
    /// checkpointed with the job. The outputs form an event stream whose watermark is this
    /// operator's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::time::{KeyedProcessFunction, ProcessContext, Stamped, Timer, WatermarkStrategy};
    ///
    /// /// Emits a user's session length once they have been quiet for 30 s.
    /// struct Sessions;
    /// impl KeyedProcessFunction<u32, (u32, i64)> for Sessions {
    ///     type State = Option<(i64, i64)>; // (first, last) timestamp
    ///     type Out = (u32, i64);
    ///     fn process_element(&mut self, r: Stamped<(u32, i64)>,
    ///                        ctx: &mut ProcessContext<'_, u32, Self::State, Self::Out>) {
    ///         let first = ctx.state().map_or(r.ts, |(first, _)| first);
    ///         if let Some((_, last)) = *ctx.state() {
    ///             ctx.delete_event_time_timer(last + 30_000);
    ///         }
    ///         *ctx.state() = Some((first, r.ts));
    ///         ctx.register_event_time_timer(r.ts + 30_000);
    ///     }
    ///     fn on_timer(&mut self, _t: Timer, ctx: &mut ProcessContext<'_, u32, Self::State, Self::Out>) {
    ///         if let Some((first, last)) = ctx.state().take() {
    ///             let user = *ctx.key();
    ///             ctx.emit((user, last - first));
    ///         }
    ///         ctx.clear();
    ///     }
    /// }
    ///
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let clicks = vec![(1u32, 0i64), (1, 10_000), (2, 5_000), (1, 100_000)];
    ///     job.from_vec("clicks", clicks)
    ///         .assign_timestamps("ts", WatermarkStrategy::for_bounded_out_of_orderness(
    ///             Duration::from_secs(5)).with_timestamp_assigner(|c: &(u32, i64)| c.1))
    ///         .key_by(|c: &(u32, i64)| c.0)
    ///         .process("sessions", Sessions)
    ///         .records()
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![(1, 0), (1, 10_000), (2, 0)]);
    /// ```
    pub fn process<P: KeyedProcessFunction<K, T>>(
        self,
        op: impl Into<Op>,
        function: P,
    ) -> EventStream<'s, P::Out> {
        let op = op.into();
        let events = &self.events;
        let ctx = Rc::clone(&events.records.ctx);
        let handle = ctx.add_operator(&op, "process", &[(events.records.node, Partitioning::Hash)]);
        let slot: KeyedStateSlot<K, KeyProcess<P::State, T>> =
            KeyedStateSlot::new(&ctx, &handle, None);
        let mut logic = ProcessLogic {
            function,
            key: self.key.clone(),
            state: Rc::clone(&slot.state),
            event_index: DueKeys::new(),
            processing_index: DueKeys::new(),
            forwarder: Forwarder::new(&handle),
            output_watermark: crate::time::NO_WATERMARK,
        };
        logic.restore_index();
        let out = keyed_event_operator(events, self.stamped_key(), &handle, logic, move |epoch| {
            slot.applied_below(epoch)
        });
        split_output(ctx, out, &handle, "unused")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::KeyedState;
    use crate::time::stamped::NO_WATERMARK;
    use std::cell::RefCell;

    /// The operator's logic for `function` over `u64` records keyed by `key`, outside a job.
    fn detached<P, KF>(function: P, key: KF) -> ProcessLogic<u64, u64, P, KF>
    where
        P: KeyedProcessFunction<u64, u64>,
        KF: Fn(&u64) -> u64,
    {
        ProcessLogic {
            function,
            key,
            state: Rc::new(RefCell::new(KeyedState::new())),
            event_index: DueKeys::new(),
            processing_index: DueKeys::new(),
            forwarder: Forwarder::detached(),
            output_watermark: NO_WATERMARK,
        }
    }

    /// The records a function emitted, in order.
    fn outputs<T>(out: &[Emit<EventTime, T>]) -> Vec<EventTime> {
        out.iter()
            .filter_map(|e| match e {
                Emit::Out(s) => Some(s.data),
                _ => None,
            })
            .collect()
    }

    /// A timeout per key: every record deletes the key's timer and registers one a second
    /// after it.
    struct Timeout;

    impl KeyedProcessFunction<u64, u64> for Timeout {
        type State = Option<EventTime>;
        type Out = EventTime;

        fn process_element(
            &mut self,
            record: Stamped<u64>,
            ctx: &mut ProcessContext<'_, u64, Self::State, Self::Out>,
        ) {
            if let Some(old) = ctx.state().take() {
                ctx.delete_event_time_timer(old);
            }
            ctx.register_event_time_timer(record.ts + 1_000);
            *ctx.state() = Some(record.ts + 1_000);
        }

        fn on_timer(
            &mut self,
            timer: Timer,
            ctx: &mut ProcessContext<'_, u64, Self::State, Self::Out>,
        ) {
            ctx.emit(timer.time);
        }
    }

    /// Deleted timers leave the operator's index of due keys: a timeout re-registered per
    /// record kept an index entry per record until its time came.
    #[test]
    fn a_deleted_timer_leaves_the_index_of_due_keys() {
        let mut logic = detached(Timeout, |x: &u64| *x);
        let mut out = Vec::new();
        let mut watermark = NO_WATERMARK;
        for ts in (0..500).map(|i| i * 10) {
            let record = Stamped {
                ts,
                data: 7u64,
                watermark,
            };
            logic.add(record, watermark, &mut out);
            logic.advance(watermark, ts, &mut out);
            watermark = ts;
        }
        assert_eq!(
            logic.event_index.next(),
            Some(4_990 + 1_000),
            "only the live timer is due"
        );
        logic.advance(watermark, i64::MAX, &mut out);
        let fired = outputs(&out);
        assert_eq!(fired, [5_990], "the timer fires once, at its last time");
        assert_eq!(logic.event_index.next(), None);
    }

    /// Records of one key: 0 registers a timer 10 ms after it, 1 deletes that timer, 2 is
    /// emitted as its time.
    struct StartCancelPing;

    impl KeyedProcessFunction<u64, u64> for StartCancelPing {
        type State = Option<EventTime>;
        type Out = EventTime;

        fn process_element(
            &mut self,
            record: Stamped<u64>,
            ctx: &mut ProcessContext<'_, u64, Self::State, Self::Out>,
        ) {
            match record.data {
                0 => {
                    ctx.register_event_time_timer(record.ts + 10);
                    *ctx.state() = Some(record.ts + 10);
                }
                1 => {
                    if let Some(t) = ctx.state().take() {
                        ctx.delete_event_time_timer(t);
                    }
                }
                _ => ctx.emit(record.ts),
            }
        }

        fn on_timer(
            &mut self,
            timer: Timer,
            ctx: &mut ProcessContext<'_, u64, Self::State, Self::Out>,
        ) {
            ctx.emit(-timer.time);
        }
    }

    /// A record waiting at the time of a timer its key deletes is still processed: the
    /// record and the timer share the key's index entry at that time, and deleting the timer
    /// removed it, so the record waited forever (and stayed in every checkpoint).
    #[test]
    fn deleting_a_timer_keeps_a_record_waiting_at_its_time() {
        let mut logic = detached(StartCancelPing, |_: &u64| 0u64);
        let mut out = Vec::new();
        for (ts, command) in [(0, 0u64), (5, 1), (10, 2)] {
            let record = Stamped {
                ts,
                data: command,
                watermark: NO_WATERMARK,
            };
            logic.add(record, NO_WATERMARK, &mut out);
        }
        logic.advance(NO_WATERMARK, 9, &mut out);
        logic.advance(9, i64::MAX, &mut out);
        let emitted = outputs(&out);
        assert_eq!(emitted, [10], "the ping, and no timer");
        assert!(logic
            .state
            .borrow()
            .get(&0)
            .is_none_or(|kp| kp.pending.is_empty()));
    }
}
