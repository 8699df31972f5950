//! The driver of every source instance: it asks the [`PullSource`] for records and stamps
//! them with epochs (its epoch clock), paces them (rate limit), holds back while the sinks
//! lag (flow control) or while a checkpoint is taken (the [gate](crate::state::gate)), and
//! offers the source's position to checkpoints.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sinks::sink_frontier::SinkFrontier;
use timely::dataflow::operators::generic::operator::source as source_operator;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use timely::scheduling::Activator;

use crate::config::EpochPolicy;
use crate::job::{Epoch, JobContext, Op, OpHandle};
use crate::report::OperatorMetrics;
use crate::sources::source::{PullSource, Pulled};
use crate::state::gate::{GateMode, Passage, SourceGate, SourceStatus};
use crate::state::snapshot::StatePart;
use crate::state::{Barrier, Checkpointed, StateError};
use crate::stream::{Data, VecBuilder};
use crate::WeirError;

/// Records a source emits per activation before yielding to other operators.
const ACTIVATION_BUDGET: u64 = 8192;
/// How long a source blocked by flow control waits before checking again.
/// The worker loop wakes a held-back source when the sinks advance; this is only a fallback.
const FLOW_CONTROL_POLL: Duration = Duration::from_millis(5);

/// Bytes of records a source puts in one container (at least timely's preferred number of
/// records): every message is counted by timely's progress tracking and looked at by the
/// operators downstream, so small records go in containers larger than timely's 8 KiB
/// (keyed_sum_10 at `-w 2`: 34.3 → 31.3 ms with 16-byte records).
const CONTAINER_BYTES: usize = 64 << 10;

/// Records a source puts in one container.
fn container_records<T>() -> usize {
    let size = std::mem::size_of::<T>().max(1);
    timely::container::buffer::default_capacity::<T>().max(CONTAINER_BYTES / size)
}

/// Where a source instance's epochs come from.
struct EpochClock {
    policy: EpochPolicy,
    /// The first epoch (after a restore: the one after the checkpoint's).
    base: Epoch,
    started: Instant,
    /// Records in the open epoch.
    in_epoch: u64,
    /// When the open record-count epoch got its first record (for the latency bound).
    opened: Instant,
    max_delay: Duration,
}

impl EpochClock {
    /// The time slot an interval source is in now.
    fn slot(&self, every: Duration) -> Epoch {
        self.base + (self.started.elapsed().as_nanos() / every.as_nanos().max(1)) as u64
    }

    /// Whether the open epoch is due to close: full, or open for too long.
    fn due(&self) -> bool {
        match self.policy {
            EpochPolicy::Records(n) => {
                self.in_epoch >= n.max(1)
                    || (self.in_epoch > 0 && self.opened.elapsed() >= self.max_delay)
            }
            EpochPolicy::Interval(_) => false,
        }
    }

    /// Records the open epoch may still take in this activation.
    fn room(&self) -> u64 {
        match self.policy {
            EpochPolicy::Records(n) => n.max(1).saturating_sub(self.in_epoch),
            EpochPolicy::Interval(_) => u64::MAX,
        }
    }

    fn emitted(&mut self, n: u64) {
        if self.in_epoch == 0 && n > 0 {
            self.opened = Instant::now();
        }
        self.in_epoch += n;
    }
}

/// Paces a source to a rate (records per second of this instance).
struct RateLimit {
    rate: f64,
    started: Instant,
    emitted: u64,
}

impl RateLimit {
    /// The longest a paced source sleeps before it looks again (a very low rate).
    const MAX_WAIT: Duration = Duration::from_secs(1);

    /// Records allowed now, or how long to wait for the next one.
    fn tokens(&self) -> Result<u64, Duration> {
        let allowed = ((self.started.elapsed().as_secs_f64() * self.rate) as u64).saturating_add(1);
        match allowed.saturating_sub(self.emitted) {
            0 => {
                let due = (self.emitted as f64 + 1.0) / self.rate;
                let due = Duration::try_from_secs_f64(due).unwrap_or(Duration::MAX);
                Err(due
                    .saturating_sub(self.started.elapsed())
                    .min(Self::MAX_WAIT))
            }
            n => Ok(n),
        }
    }
}

/// The source itself, shared with the checkpoint that reads its position.
type SharedSource<S> = Rc<RefCell<Option<S>>>;

/// What an exhausted source said it had left when it ended (usually nothing; a source whose
/// splits record positions, such as Kafka partitions, keeps saying where it stopped, so that
/// a restored job does not take those splits for new ones).
type FinalSplits = Rc<RefCell<Vec<Vec<u8>>>>;

/// A source instance's state for checkpoints: the splits it has not finished.
struct SourcePosition<T, S> {
    source: SharedSource<S>,
    final_splits: FinalSplits,
    name: String,
    _records: std::marker::PhantomData<fn() -> T>,
}

impl<T, S: PullSource<T>> Checkpointed for SourcePosition<T, S> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let splits = match self.source.borrow().as_ref() {
            // Exhausted: what it said when it ended.
            None => self.final_splits.borrow().clone(),
            Some(s) => s.remaining().ok_or_else(|| {
                StateError::Encode(format!("source `{}` cannot tell its position", self.name))
            })?,
        };
        Ok(StatePart::Splits(splits))
    }

    fn committed(&self, checkpoint: u64) -> Result<(), StateError> {
        if let Some(s) = self.source.borrow_mut().as_mut() {
            s.committed(checkpoint);
        }
        Ok(())
    }
}

/// Everything one source instance needs between activations.
struct SourceDriver<S> {
    source: SharedSource<S>,
    final_splits: FinalSplits,
    clock: EpochClock,
    rate: Option<RateLimit>,
    window: u64,
    sink_frontier: SinkFrontier,
    gate: Rc<SourceGate>,
    status: Rc<Cell<SourceStatus>>,
    progress: Arc<AtomicU64>,
    metrics: Rc<OperatorMetrics>,
    failure: Rc<RefCell<Option<WeirError>>>,
    name: String,
}

/// What an activation ended with.
enum Next {
    /// Run again as soon as possible.
    Now,
    /// Run again after this long.
    After(Duration),
    /// The gate or the sinks hold the source: the worker loop wakes it.
    Held,
    /// The source is exhausted (or failed).
    Done,
}

impl<S> SourceDriver<S> {
    /// One activation: emits what it may and says when to run again.
    fn activate<T: Data>(
        &mut self,
        cap: &mut Capability<Epoch>,
        output: &mut OutputBuilderSession<'_, Epoch, VecBuilder<T>>,
    ) -> Next
    where
        S: PullSource<T>,
    {
        let fill = matches!(self.clock.policy, EpochPolicy::Records(_));
        let passage = Passage::of(self.gate.mode(), *cap.time(), self.clock.in_epoch, fill);
        match passage {
            Passage::Wait => return Next::Held,
            Passage::WaitAt(epoch) => {
                self.move_to(cap, epoch);
                return Next::Held;
            }
            _ => {}
        }
        if passage == Passage::Go {
            self.follow_interval(cap);
        }
        // Interval epochs have no end of their own to wait for: they close now.
        if let (Passage::CloseInto(epoch), EpochPolicy::Interval(_)) = (passage, self.clock.policy)
        {
            self.move_to(cap, epoch);
            return Next::Held;
        }
        if self.clock.due() {
            match passage {
                Passage::StayInEpoch => return Next::Held,
                Passage::CloseInto(epoch) => {
                    self.move_to(cap, epoch);
                    return Next::Held;
                }
                Passage::Fill(limit) if *cap.time() >= limit => {
                    self.move_to(cap, limit + 1);
                    return Next::Held;
                }
                _ => self.move_to(cap, *cap.time() + 1),
            }
        }
        let epoch = *cap.time();
        // Flow control: epochs <= epoch - window must be complete at the sinks.
        if epoch >= self.window && self.sink_frontier.less_equal(&(epoch - self.window)) {
            self.gate.note_held();
            return Next::After(FLOW_CONTROL_POLL);
        }
        let mut budget = ACTIVATION_BUDGET.min(self.clock.room());
        if let Some(rate) = &self.rate {
            match rate.tokens() {
                Ok(tokens) => budget = budget.min(tokens),
                Err(wait) => return Next::After(self.until_due(wait)),
            }
        }
        self.pull(cap, output, budget, passage)
    }

    /// Interval epochs follow the clock, also while idle.
    fn follow_interval(&mut self, cap: &mut Capability<Epoch>) {
        if let EpochPolicy::Interval(every) = self.clock.policy {
            let slot = self.clock.slot(every);
            if slot > *cap.time() {
                self.move_to(cap, slot);
            }
        }
    }

    /// Closes the open epoch: the capability moves to `epoch` (if it is later).
    fn move_to(&mut self, cap: &mut Capability<Epoch>, epoch: Epoch) {
        if epoch > *cap.time() {
            cap.downgrade(&epoch);
            self.clock.in_epoch = 0;
        }
        self.note(*cap.time(), true);
    }

    fn note(&self, epoch: Epoch, live: bool) {
        self.status.set(SourceStatus { epoch, live });
    }

    /// A wait, shortened so that the open epoch still closes at its latency bound.
    fn until_due(&self, wait: Duration) -> Duration {
        let wait = if self.clock.in_epoch > 0 {
            wait.min(
                self.clock
                    .max_delay
                    .saturating_sub(self.clock.opened.elapsed()),
            )
        } else {
            wait
        };
        wait.max(Duration::from_micros(50))
    }

    /// Asks the source for up to `budget` records.
    fn pull<T: Data>(
        &mut self,
        cap: &mut Capability<Epoch>,
        output: &mut OutputBuilderSession<'_, Epoch, VecBuilder<T>>,
        budget: u64,
        passage: Passage,
    ) -> Next
    where
        S: PullSource<T>,
    {
        let mut n = 0;
        let mut end = None;
        {
            let mut source = self.source.borrow_mut();
            let Some(source) = source.as_mut() else {
                return Next::Done;
            };
            // Records go into containers handed over whole: a container builder would check
            // and extract after every record.
            let chunk = container_records::<T>();
            let mut session = output.session(cap);
            let mut batch = Vec::with_capacity(chunk.min(budget as usize));
            while n < budget && end.is_none() {
                let want = (chunk - batch.len()).min((budget - n) as usize);
                let before = batch.len();
                end = match source.pull_batch(&mut batch, want) {
                    // Not what `pull_batch` should return, but a record all the same.
                    Some(Pulled::Record(x)) => {
                        batch.push(x);
                        None
                    }
                    other => other,
                };
                // A `pull_batch` of a user source that took records out of the batch (its
                // contract is to append), or gave none without saying why, ends the loop.
                let Some(appended) = batch.len().checked_sub(before) else {
                    end = Some(Pulled::Failed(
                        "PullSource::pull_batch removed records from the batch it was given".into(),
                    ));
                    break;
                };
                n += appended as u64;
                if appended == 0 && end.is_none() {
                    break;
                }
                if batch.len() >= chunk {
                    session.give_container(&mut batch);
                    // The channel may hand back a used container.
                    batch.clear();
                    batch.reserve(chunk.min(budget.saturating_sub(n) as usize));
                }
            }
            session.give_container(&mut batch);
        }
        self.clock.emitted(n);
        if let Some(rate) = &mut self.rate {
            rate.emitted += n;
        }
        self.metrics.add_in(n as usize);
        self.metrics.add_out(n as usize);
        self.progress.fetch_add(n, Ordering::Relaxed);
        match end {
            None => Next::Now,
            Some(Pulled::Done) => self.exhausted::<T>(*cap.time()),
            Some(Pulled::Failed(message)) => {
                let error = WeirError::Operator {
                    operator: self.name.clone(),
                    message,
                };
                JobContext::fail(&self.failure, error);
                self.exhausted::<T>(*cap.time())
            }
            Some(Pulled::Pending(wait)) => self.pending(cap, wait, passage),
            Some(Pulled::Record(_)) => unreachable!("records go into the batch in the loop"),
        }
    }

    /// The source has nothing more; it ends in `epoch`, which still counts when a checkpoint
    /// picks its epoch (what it emitted there must be in the checkpoint's state).
    fn exhausted<T>(&mut self, epoch: Epoch) -> Next
    where
        S: PullSource<T>,
    {
        if let Some(source) = self.source.borrow_mut().take() {
            *self.final_splits.borrow_mut() = source.remaining().unwrap_or_default();
        }
        self.note(epoch, false);
        Next::Done
    }

    /// Nothing to read now: a record-count epoch with records closes (so what was read can
    /// complete downstream), and an empty one moves on to the leading epoch (so that it does
    /// not hold back what the other instances read; see `state/gate.rs`); an interval epoch
    /// wakes up at the next interval.
    fn pending(&mut self, cap: &mut Capability<Epoch>, wait: Duration, passage: Passage) -> Next {
        let epoch = *cap.time();
        match self.clock.policy {
            EpochPolicy::Records(_) => {
                if self.clock.in_epoch > 0 {
                    match passage {
                        Passage::StayInEpoch => {}
                        Passage::CloseInto(next) => self.move_to(cap, next),
                        _ => self.move_to(cap, epoch + 1),
                    }
                } else if let Passage::Fill(limit) = passage {
                    // Nothing to read: do not hold the checkpoint up waiting for records.
                    self.move_to(cap, limit + 1);
                } else if passage == Passage::Go {
                    self.move_to(cap, self.gate.leading_epoch());
                }
                Next::After(wait)
            }
            EpochPolicy::Interval(every) => {
                let next = every
                    .mul_f64((epoch + 1 - self.clock.base) as f64)
                    .saturating_sub(self.clock.started.elapsed());
                Next::After(wait.min(next.max(Duration::from_micros(100))))
            }
        }
    }
}

/// Builds a source operator on every worker. `make(instance, instances, splits)` is called
/// on the workers that host an instance, with the splits a restored checkpoint dealt to it,
/// and returns that instance's source; the driver does the rest (see the module docs).
pub(crate) fn drive<'s, T, S>(
    ctx: &Rc<JobContext<'s>>,
    op: &Op,
    kind: &str,
    make: impl FnOnce(usize, usize, Option<Vec<Vec<u8>>>) -> S,
) -> (OpHandle, Stream<'s, Epoch, Vec<T>>)
where
    T: Data,
    S: PullSource<T>,
{
    drive_dealt(ctx, op, kind, Dealing::RoundRobin, make)
}

/// How the splits of a restored checkpoint reach a source's instances.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dealing {
    /// At the parallelism of the checkpoint, each instance's own splits back; at another,
    /// every `instances`-th split, in instance order (any instance can take any split).
    RoundRobin,
    /// Every split to every instance, which keeps those it owns by its own rule (Kafka
    /// partitions, which an instance owns by their number, and whose list tells it which
    /// partitions are new).
    All,
    /// At the parallelism of the checkpoint, each instance's own splits back; at another,
    /// every `instances`-th split in the order this function sorts them (a file source's
    /// blocks in file order, so that the instances take turns along each file again).
    Ordered(fn(&[u8], &[u8]) -> std::cmp::Ordering),
}

/// [`drive`], with the restored splits dealt as `dealing` says.
pub(crate) fn drive_dealt<'s, T, S>(
    ctx: &Rc<JobContext<'s>>,
    op: &Op,
    kind: &str,
    dealing: Dealing,
    make: impl FnOnce(usize, usize, Option<Vec<Vec<u8>>>) -> S,
) -> (OpHandle, Stream<'s, Epoch, Vec<T>>)
where
    T: Data,
    S: PullSource<T>,
{
    let handle = ctx.add_operator(op, kind, &[]);
    if let Some(rate) = op.rate.filter(|r| r.is_nan() || *r <= 0.0) {
        ctx.fail_build(WeirError::Build {
            operator: handle.name.clone(),
            message: format!(
                "a rate must be a positive number of records per second \
                 (f64::INFINITY for no limit), got {rate}"
            ),
        });
    }
    let instances = handle.placement.len();
    let restored = ctx.state.restored.as_ref().and_then(|r| {
        handle.instance.and_then(|i| match dealing {
            Dealing::RoundRobin => r.source_splits(&handle.name, i, instances, None),
            Dealing::All => r.splits(&handle.name, 0, 1),
            Dealing::Ordered(order) => r.source_splits(&handle.name, i, instances, Some(order)),
        })
    });
    let source: SharedSource<S> = Rc::new(RefCell::new(
        handle.instance.map(|i| make(i, instances, restored)),
    ));
    let base = ctx.start_epoch();
    let final_splits: FinalSplits = Rc::default();
    let mut driver = handle.instance.map(|_| SourceDriver {
        source: Rc::clone(&source),
        final_splits: Rc::clone(&final_splits),
        clock: EpochClock {
            policy: ctx.epochs(op),
            base,
            started: Instant::now(),
            in_epoch: 0,
            opened: Instant::now(),
            max_delay: ctx.config.epoch_max_delay,
        },
        // An infinite rate is no limit.
        rate: op.rate.filter(|r| r.is_finite()).map(|r| RateLimit {
            rate: r / instances as f64,
            started: Instant::now(),
            emitted: 0,
        }),
        window: ctx.config.max_epochs_in_flight.max(1),
        sink_frontier: ctx.sink_frontier.clone(),
        gate: Rc::clone(&ctx.gate),
        status: ctx.gate.register(base),
        progress: Arc::clone(&ctx.progress),
        metrics: Rc::clone(&handle.metrics),
        failure: Rc::clone(&ctx.failure),
        name: handle.name.clone(),
    });
    if let (Some(i), true) = (handle.instance, ctx.state.enabled) {
        ctx.state
            .register(
                &handle.name,
                i,
                Rc::new(SourcePosition::<T, S> {
                    source: Rc::clone(&source),
                    final_splits,
                    name: handle.name.clone(),
                    _records: std::marker::PhantomData,
                }),
            )
            .set(Epoch::MAX);
    } else if ctx.state.enabled {
        ctx.state.claim(&handle.name);
    }
    let (scope, node, metrics) = (ctx.scope, handle.node, Rc::clone(&handle.metrics));
    let activators = &ctx.source_activators;
    let stream =
        source_operator::<_, VecBuilder<T>, _, _>(scope, &handle.name, move |capability, info| {
            let activator: Activator = scope.activator_for(Rc::clone(&info.address));
            if driver.is_some() {
                activators
                    .borrow_mut()
                    .push(scope.activator_for(Rc::clone(&info.address)));
            }
            let mut cap = driver.as_ref().map(|_| {
                let mut c = capability;
                c.downgrade(&base);
                c
            });
            move |output| {
                let (Some(c), Some(d)) = (cap.as_mut(), driver.as_mut()) else {
                    return;
                };
                let _busy = metrics.busy_in(node);
                match d.activate(c, output) {
                    Next::Now => activator.activate(),
                    Next::After(wait) => activator.activate_after(wait),
                    Next::Held => {
                        // Woken by the worker loop when the gate opens or the sinks move on;
                        // interval sources also follow their clock.
                        if let EpochPolicy::Interval(every) = d.clock.policy {
                            if d.gate.mode() == GateMode::Open {
                                activator.activate_after(every.min(Duration::from_millis(5)));
                            }
                        }
                    }
                    Next::Done => cap = None,
                }
            }
        });
    (handle, stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{execute, op, Config};

    /// A rate of 0, below 0 or NaN is refused when the job is built (a rate of 0 panicked on
    /// an infinite wait); a tiny one waits at most [`RateLimit::MAX_WAIT`] before it looks
    /// again.
    #[test]
    fn a_rate_that_is_not_positive_fails_the_build_and_a_tiny_one_waits_a_bounded_time() {
        for rate in [0.0, -5.0, f64::NAN] {
            let err = execute(Config::threads(1), move |job| {
                job.generate(op("paced").rate(rate), Some(10), |k| k)
                    .for_each("drop", |_| {});
                Ok(())
            })
            .unwrap_err();
            assert!(
                matches!(&err, WeirError::Build { operator, message }
                    if operator == "paced" && message.contains("positive")),
                "{err}"
            );
        }
        let tiny = RateLimit {
            rate: 1e-300,
            started: Instant::now(),
            emitted: 1,
        };
        assert_eq!(tiny.tokens(), Err(RateLimit::MAX_WAIT));
    }

    /// A user source whose `pull_batch` takes records out of the batch it was given fails the
    /// job with a message saying so; the length arithmetic underflowed before (a panic, or
    /// in release a record count near 2^64).
    #[test]
    fn a_pull_batch_that_removes_records_fails_the_job_and_one_that_gives_none_yields() {
        struct Shrinks(u32);
        impl PullSource<u32> for Shrinks {
            fn pull(&mut self) -> Pulled<u32> {
                Pulled::Done
            }
            fn pull_batch(&mut self, batch: &mut Vec<u32>, _max: usize) -> Option<Pulled<u32>> {
                self.0 += 1;
                if self.0 > 1 {
                    batch.clear();
                } else {
                    batch.extend([1, 2, 3]);
                }
                None
            }
        }
        let err = execute(Config::threads(1).with_verbose(false), |job| {
            job.pull_source("shrinks", |_, _| Shrinks(0))
                .for_each("drop", |_| {});
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(&err, WeirError::Operator { operator, message }
                if operator == "shrinks" && message.contains("removed records")),
            "{err}"
        );

        // Gives nothing twice without a reason, then ends: the loop yields, the job ends.
        struct Idle(u32);
        impl PullSource<u32> for Idle {
            fn pull(&mut self) -> Pulled<u32> {
                Pulled::Done
            }
            fn pull_batch(&mut self, batch: &mut Vec<u32>, _max: usize) -> Option<Pulled<u32>> {
                self.0 += 1;
                match self.0 {
                    1 | 2 => None,
                    3 => {
                        batch.push(7);
                        None
                    }
                    _ => Some(Pulled::Done),
                }
            }
        }
        let got = crate::Collector::new();
        let sink = got.clone();
        execute(Config::threads(1).with_verbose(false), move |job| {
            job.pull_source("idle", |_, _| Idle(0))
                .collect("got", &sink);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.take(), [7]);
    }
}
