//! `assign_timestamps`: the operator that gives records their event time and generates the
//! watermarks of an [`EventStream`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

use crate::dead_letter::DeadLetter;
use crate::job::{Epoch, Op, OpHandle};
use crate::state::InstanceCheckpoint;
use crate::stream::{Data, DataStream, VecBuilder};
use crate::time::event_stream::EventStream;
use crate::time::stamped::{
    generator_id, EventTime, Stamped, WatermarkMessage, END_OF_TIME, NO_WATERMARK,
};
use crate::time::watermark::{GeneratorFactory, WatermarkGenerator, WatermarkStrategy};

/// What the assigner emits besides records.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Aside {
    Mark(WatermarkMessage),
    Dead(DeadLetter),
}

/// One instance's watermark generator and what it has announced.
struct Generator {
    generator: Box<dyn WatermarkGenerator>,
    /// With [`WatermarkStrategy::per_split`]: a generator per split, and the last time each
    /// read a record.
    splits: BTreeMap<u64, (Box<dyn WatermarkGenerator>, Instant)>,
    factory: GeneratorFactory,
    split_idleness: Option<Duration>,
    /// The highest watermark given out: the instance's watermark never goes back.
    high: Cell<EventTime>,
    /// The watermark restored from a checkpoint: the generator never goes below it.
    floor: EventTime,
    /// The last watermark sent, and whether it was sent as idle.
    sent: (EventTime, bool),
    last_record: Instant,
}

impl Generator {
    /// The generator of instance `instance` of `instances`.
    fn new<T>(strategy: &WatermarkStrategy<T>, instance: usize, instances: usize) -> Self {
        let expected = strategy.expected_splits.as_ref();
        let splits = expected
            .map(|e| e(instance, instances))
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s, ((strategy.generator)(), Instant::now())))
            .collect();
        Generator {
            generator: (strategy.generator)(),
            splits,
            factory: Rc::clone(&strategy.generator),
            split_idleness: strategy.idle_timeout,
            high: Cell::new(NO_WATERMARK),
            floor: NO_WATERMARK,
            sent: (NO_WATERMARK, false),
            last_record: Instant::now(),
        }
    }

    fn watermark(&self) -> EventTime {
        let raw = if self.splits.is_empty() {
            self.generator.current_watermark()
        } else {
            self.lowest_split()
        };
        let w = raw.max(self.floor).max(self.high.get());
        self.high.set(w);
        w
    }

    /// The lowest watermark of the splits that are not idle (of all, if every one is).
    fn lowest_split(&self) -> EventTime {
        let active = |last: &Instant| self.split_idleness.is_none_or(|t| last.elapsed() < t);
        let watermarks = self.splits.values().filter(|(_, last)| active(last));
        watermarks
            .map(|(g, _)| g.current_watermark())
            .min()
            .or_else(|| {
                // Every split idle: the instance is idle too, and its watermark stays where
                // the slowest split holds it (the fastest split's would make a slow split's
                // next records late).
                self.splits
                    .values()
                    .map(|(g, _)| g.current_watermark())
                    .min()
            })
            .unwrap_or(NO_WATERMARK)
    }

    fn on_event(&mut self, split: Option<u64>, ts: EventTime) {
        match split {
            None => self.generator.on_event(ts),
            Some(s) => {
                let factory = &self.factory;
                let (g, last) = self
                    .splits
                    .entry(s)
                    .or_insert_with(|| (factory(), Instant::now()));
                g.on_event(ts);
                if self.split_idleness.is_some() {
                    *last = Instant::now();
                }
            }
        }
    }
}

/// The per-instance logic of `assign_timestamps`.
struct Assigner<T> {
    strategy: WatermarkStrategy<T>,
    operator: String,
    id: u64,
    /// Whether this worker hosts an instance.
    hosted: bool,
    generator: Rc<RefCell<Generator>>,
}

impl<T: Data> Assigner<T> {
    /// Stamps a batch: records with a valid timestamp are stamped with the watermark before
    /// them; the others become dead letters. Returns how many did.
    fn stamp(&self, data: &mut Vec<T>, out: &mut Vec<Stamped<T>>, aside: &mut Vec<Aside>) -> u64 {
        let mut g = self.generator.borrow_mut();
        // The output buffer leaves with each batch: one allocation, not a doubling series.
        out.reserve(data.len());
        let limit = self.strategy.max_future.map(|bound| {
            crate::time::now_ms().saturating_add(bound.as_millis().min(i64::MAX as u128) as i64)
        });
        let mut dead = 0;
        for x in data.drain(..) {
            match (self.strategy.extract)(&x) {
                Ok(ts) if limit.is_some_and(|l| ts > l) => {
                    dead += 1;
                    let reason = format!(
                        "{}timestamp {ts} is more than {:?} ahead of the wall clock",
                        self.field_prefix(),
                        self.strategy.max_future.unwrap_or_default()
                    );
                    aside.push(Aside::Dead(self.dead_letter(reason, &x)));
                }
                Ok(ts) => {
                    let watermark = g.watermark();
                    g.on_event(self.strategy.split.as_ref().map(|f| f(&x)), ts);
                    out.push(Stamped {
                        ts,
                        data: x,
                        watermark,
                    });
                }
                Err(reason) => {
                    dead += 1;
                    let reason = format!("{}{reason}", self.field_prefix());
                    aside.push(Aside::Dead(self.dead_letter(reason, &x)));
                }
            }
        }
        g.last_record = Instant::now();
        dead
    }

    fn field_prefix(&self) -> String {
        match &self.strategy.field {
            Some(f) => format!("timestamp field `{f}`: "),
            None => "timestamp: ".into(),
        }
    }

    fn dead_letter(&self, reason: String, x: &T) -> DeadLetter {
        DeadLetter::for_record(&self.operator, "event time", reason, x)
    }

    /// The watermark message to send now, if the watermark or idleness changed.
    fn announce(&self, finished: bool) -> Option<WatermarkMessage> {
        // Workers without an instance of this operator have no watermark to announce.
        if !self.hosted {
            return None;
        }
        let mut g = self.generator.borrow_mut();
        let idle = !finished
            && self
                .strategy
                .idle_timeout
                .is_some_and(|t| g.last_record.elapsed() >= t);
        let watermark = if finished { END_OF_TIME } else { g.watermark() };
        if (watermark, idle) == g.sent {
            return None;
        }
        g.sent = (watermark, idle);
        Some(WatermarkMessage {
            generator: self.id,
            watermark,
            idle,
        })
    }

    /// Follows the input frontier with the held capability; returns the message to send
    /// (idleness, or the end of input when the frontier is empty) and where: after every
    /// record already stamped.
    fn at_frontier(
        &self,
        cap: &mut Capability<Epoch>,
        frontier: Option<Epoch>,
        latest: Epoch,
    ) -> Option<(Capability<Epoch>, WatermarkMessage)> {
        let epoch = frontier.unwrap_or(latest).max(*cap.time());
        if *cap.time() < epoch && frontier.is_some() {
            cap.downgrade(&epoch);
        }
        let mark = self.announce(frontier.is_none())?;
        Some((cap.delayed(&latest.max(epoch)), mark))
    }

    /// How long until the instance may turn idle.
    fn idle_in(&self) -> Option<Duration> {
        let g = self.generator.borrow();
        if g.sent.1 {
            return None;
        }
        self.strategy
            .idle_timeout
            .map(|t| t.saturating_sub(g.last_record.elapsed()))
    }
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Gives every record an event timestamp and makes this operator's instances the
    /// watermark generators of the resulting [`EventStream`] (Flink's
    /// `assignTimestampsAndWatermarks`). Records whose timestamp cannot be extracted, or lies
    /// beyond the strategy's future bound, become dead letters naming the field.
    ///
    /// Place it right after the source (same parallelism): each instance then sees one
    /// source instance's records in their order, and the combined watermark downstream is
    /// the minimum over instances.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::{execute, Collector, Config};
    /// use weir_core::time::{WatermarkStrategy, Windows};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     // (user, event time in ms)
    ///     let clicks = vec![(1u32, 1_000i64), (1, 12_000), (2, 3_000), (1, 4_000)];
    ///     job.from_vec("clicks", clicks)
    ///         .assign_timestamps("event-time",
    ///             WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
    ///                 .with_timestamp_assigner(|c: &(u32, i64)| c.1))
    ///         .key_by(|c: &(u32, i64)| c.0)
    ///         .window(Windows::tumbling(Duration::from_secs(10)))
    ///         .count("clicks-per-10s")
    ///         .results()
    ///         .map("row", |r| (r.key, r.window.start, r.value))
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![(1, 0, 2), (1, 10_000, 1), (2, 0, 1)]);
    /// ```
    pub fn assign_timestamps(
        self,
        op: impl Into<Op>,
        strategy: WatermarkStrategy<T>,
    ) -> EventStream<'s, T> {
        let op = op.into();
        let ctx = Rc::clone(&self.ctx);
        let (handle, stream) = self.attach(&op, "assign_timestamps");
        let instance = handle.instance.unwrap_or(0);
        let instances = handle.placement.len();
        let generator = Rc::new(RefCell::new(Generator::new(&strategy, instance, instances)));
        let applied = InstanceCheckpoint::new(
            |g: &Generator| g.watermark(),
            |g: &mut Generator, parts: Vec<EventTime>| {
                g.floor = parts.into_iter().min().unwrap_or(NO_WATERMARK);
            },
        )
        .attach(&ctx, &handle, &generator);
        let assigner = Assigner {
            strategy,
            operator: handle.name.clone(),
            id: generator_id(handle.node, instance),
            hosted: handle.instance.is_some(),
            generator,
        };
        let (records, aside) = assigner_operator(stream, &handle, assigner, applied);
        let (marks, dead) =
            aside.ok_err::<Vec<WatermarkMessage>, _, Vec<DeadLetter>, _, _>(|a| match a {
                Aside::Mark(m) => Ok(m),
                Aside::Dead(d) => Err(d),
            });
        ctx.dead_letters
            .borrow_mut()
            .push((dead, handle.node, Rc::clone(&handle.placement)));
        EventStream::generated_by(ctx, records, marks, &handle)
    }

    /// Stamps every record with the wall-clock time at which this operator sees it
    /// (Flink's ingestion time), with a watermark that follows the clock: processing-time
    /// semantics for windows and timers on a stream without timestamps of its own.
    pub fn ingestion_time(self, op: impl Into<Op>) -> EventStream<'s, T> {
        let strategy = WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|_: &T| crate::time::now_ms())
            .max_future(None);
        self.assign_timestamps(op, strategy)
    }
}

/// The assigner's two outputs.
type AssignerStreams<'s, T> = (
    Stream<'s, Epoch, Vec<Stamped<T>>>,
    Stream<'s, Epoch, Vec<Aside>>,
);

/// The assigner's operator: stamped records on one output, watermark messages and dead
/// letters on the other (so the records are not copied through a split).
fn assigner_operator<'s, T: Data>(
    stream: Stream<'s, Epoch, Vec<T>>,
    handle: &OpHandle,
    assigner: Assigner<T>,
    applied: Option<Rc<Cell<Epoch>>>,
) -> AssignerStreams<'s, T> {
    let scope = stream.scope();
    let mut builder = OperatorBuilder::new(handle.name.clone(), scope);
    let activator = scope.activator_for(Rc::clone(&builder.operator_info().address));
    let mut input = builder.new_input(stream, Pipeline);
    let (records_out, records) = builder.new_output::<Vec<Stamped<T>>>();
    let (aside_out, aside) = builder.new_output::<Vec<Aside>>();
    let mut records_out = OutputBuilder::<_, VecBuilder<Stamped<T>>>::from(records_out);
    let mut aside_out = OutputBuilder::<_, VecBuilder<Aside>>::from(aside_out);
    let metrics = Rc::clone(&handle.metrics);
    let node = handle.node;
    builder.build(move |mut caps| {
        // Records go out under their input's capabilities; the held one is for messages.
        let mut held: Option<Capability<Epoch>> = caps.pop();
        drop(caps);
        // The latest epoch records were sent at: watermark messages go there or later,
        // after them, never before.
        let mut latest: Epoch = 0;
        let (mut buffer, mut asides) = (Vec::new(), Vec::new());
        move |frontiers| {
            let _busy = metrics.busy_in(node);
            let mut records_session = records_out.activate();
            let mut aside_session = aside_out.activate();
            input.for_each(|cap, data| {
                metrics.add_in(data.len());
                latest = latest.max(cap.least().copied().unwrap_or(0));
                let dead = assigner.stamp(data, &mut buffer, &mut asides);
                metrics.add_dead(dead);
                metrics.add_out(buffer.len());
                if let Some(mark) = assigner.announce(false) {
                    metrics.set_watermark(mark.watermark);
                    asides.push(Aside::Mark(mark));
                }
                if !buffer.is_empty() {
                    records_session.session(&cap).give_container(&mut buffer);
                    buffer.clear();
                }
                if !asides.is_empty() {
                    aside_session.session(&cap).give_container(&mut asides);
                    asides.clear();
                }
            });
            let frontier = frontiers[0].frontier().first().copied();
            if let Some(cap) = held.as_mut() {
                let next = assigner.at_frontier(cap, frontier, latest);
                if let Some((at, mark)) = next {
                    metrics.set_watermark(mark.watermark);
                    aside_session.session(&at).give(Aside::Mark(mark));
                }
            }
            match frontier {
                Some(_) => {
                    if let Some(wait) = assigner.idle_in() {
                        activator.activate_after(wait.max(Duration::from_millis(1)));
                    }
                }
                None => held = None,
            }
            if let Some(cell) = &applied {
                cell.set(frontier.unwrap_or(Epoch::MAX));
            }
        }
    });
    (records, aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::watermark::WatermarkStrategy;

    /// With every split idle, an instance's watermark is its slowest split's, not its
    /// fastest's: the fastest's made the slow split's next records late (the watermark never
    /// goes back).
    #[test]
    fn when_every_split_is_idle_the_watermark_stays_at_the_slowest_split() {
        let strategy = WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|r: &(u64, i64)| r.1)
            .per_split(|r| r.0)
            .with_idleness(Duration::ZERO);
        let mut g = Generator::new(&strategy, 0, 1);
        g.on_event(Some(0), 1_000_000);
        g.on_event(Some(1), 500_000);
        assert!(g.watermark() < 500_000, "{}", g.watermark());
        g.on_event(Some(1), 600_000);
        assert!(g.watermark() < 600_000, "{}", g.watermark());
    }
}
