//! Sources: in-memory collections, generators (optionally rate-limited) and the shared
//! driver that assigns epochs and applies flow control.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::Stream;

use crate::config::EpochPolicy;
use crate::job::{Epoch, Job, JobContext, Op, OpHandle};
use crate::stream::{Data, DataStream, VecBuilder};

/// Records a source emits per activation before yielding to other operators.
const ACTIVATION_BUDGET: u64 = 8192;
/// How long a source blocked by flow control waits before checking again.
/// The worker loop wakes a held-back source when the sinks advance; this is only a fallback.
const FLOW_CONTROL_POLL: Duration = Duration::from_millis(5);

/// What a [`PullSource`] yields when asked for its next record.
#[derive(Debug)]
pub enum Pulled<T> {
    /// A record.
    Record(T),
    /// Nothing now; ask again after this long (the source stays open).
    Pending(Duration),
    /// The source is exhausted.
    Done,
    /// The source cannot go on: the job fails with [`crate::WeirError::Operator`].
    Failed(String),
}

/// A source that the runtime asks for records (Flink's `SourceFunction`, turned around so it
/// never blocks a worker): files, generators, directory watchers, queues.
pub trait PullSource<T>: 'static {
    /// The next record, or that there is none yet, or none ever again.
    fn pull(&mut self) -> Pulled<T>;
}

/// Any iterator is a source that is never pending.
pub(crate) struct IterSource<I>(pub(crate) I);

impl<I: Iterator + 'static> PullSource<I::Item> for IterSource<I> {
    #[inline]
    fn pull(&mut self) -> Pulled<I::Item> {
        match self.0.next() {
            Some(x) => Pulled::Record(x),
            None => Pulled::Done,
        }
    }
}

/// Builds a source operator on every worker. `make(instance, instances)` is called on the
/// workers that host an instance and returns that instance's records; the driver stamps
/// them with epochs, honours the rate limit and holds back while the sinks lag more than
/// `max_epochs_in_flight` epochs behind.
pub(crate) fn drive<'s, T, S>(
    ctx: &Rc<JobContext<'s>>,
    op: &Op,
    kind: &str,
    make: impl FnOnce(usize, usize) -> S,
) -> (OpHandle, Stream<'s, Epoch, Vec<T>>)
where
    T: Data,
    S: PullSource<T>,
{
    let handle = ctx.add_operator(op, kind, &[]);
    let instances = handle.placement.len();
    let mut records = handle.instance.map(|i| make(i, instances));
    let epochs = ctx.epochs(op);
    // An infinite rate is no limit.
    let rate = op
        .rate
        .filter(|r| r.is_finite())
        .map(|r| r / instances as f64);
    let window = ctx.config.max_epochs_in_flight.max(1);
    let max_delay = ctx.config.epoch_max_delay;
    let probe = ctx.probe.clone();
    let progress = Arc::clone(&ctx.progress);
    let metrics = Rc::clone(&handle.metrics);
    let node = handle.node;
    let (failure, name) = (Rc::clone(&ctx.failure), handle.name.clone());
    let scope = ctx.scope;
    let activators = &ctx.source_activators;
    let stream = source::<_, VecBuilder<T>, _, _>(scope, &handle.name, move |capability, info| {
        let activator = scope.activator_for(Rc::clone(&info.address));
        if records.is_some() {
            activators
                .borrow_mut()
                .push(scope.activator_for(Rc::clone(&info.address)));
        }
        let mut cap = records.as_ref().map(|_| capability);
        let started = Instant::now();
        let mut emitted: u64 = 0;
        let mut in_epoch: u64 = 0;
        // When the open record-count epoch got its first record (for the latency bound).
        let mut epoch_opened = started;
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let _busy = metrics.busy_in(node);
            // Time epochs: epoch k is the k-th interval since the source started, so
            // sources with the same interval move together, also while idle.
            if let EpochPolicy::Interval(every) = epochs {
                let slot = (started.elapsed().as_nanos() / every.as_nanos().max(1)) as u64;
                if slot > *c.time() {
                    c.downgrade(&slot);
                    in_epoch = 0;
                }
            }
            // Latency bound: a record-count epoch that has waited long enough is closed.
            if let EpochPolicy::Records(_) = epochs {
                if in_epoch > 0 && epoch_opened.elapsed() >= max_delay {
                    let next = *c.time() + 1;
                    c.downgrade(&next);
                    in_epoch = 0;
                }
            }
            let epoch = *c.time();
            // Flow control: epochs <= epoch - window must be complete at the sinks.
            if epoch >= window && probe.less_equal(&(epoch - window)) {
                activator.activate_after(FLOW_CONTROL_POLL);
                return;
            }
            let mut budget = ACTIVATION_BUDGET;
            if let EpochPolicy::Records(per_epoch) = epochs {
                budget = budget.min(per_epoch.max(1) - in_epoch);
            }
            if let Some(rate) = rate {
                let allowed = (started.elapsed().as_secs_f64() * rate) as u64 + 1;
                let tokens = allowed.saturating_sub(emitted);
                if tokens == 0 {
                    let mut wait = Duration::from_secs_f64((emitted + 1) as f64 / rate)
                        .saturating_sub(started.elapsed());
                    if in_epoch > 0 {
                        // Wake up in time to close the epoch at its latency bound.
                        wait = wait.min(max_delay.saturating_sub(epoch_opened.elapsed()));
                    }
                    activator.activate_after(wait.max(Duration::from_micros(50)));
                    return;
                }
                budget = budget.min(tokens);
            }
            let iter = records.as_mut().expect("instances have records");
            let mut n = 0;
            let mut exhausted = false;
            let mut pending = None;
            {
                let mut session = output.session(c);
                while n < budget {
                    match iter.pull() {
                        Pulled::Record(x) => {
                            session.give(x);
                            n += 1;
                        }
                        Pulled::Pending(wait) => {
                            pending = Some(wait);
                            break;
                        }
                        Pulled::Done => {
                            exhausted = true;
                            break;
                        }
                        Pulled::Failed(message) => {
                            JobContext::fail(
                                &failure,
                                crate::WeirError::Operator {
                                    operator: name.clone(),
                                    message,
                                },
                            );
                            exhausted = true;
                            break;
                        }
                    }
                }
            }
            if in_epoch == 0 && n > 0 {
                epoch_opened = Instant::now();
            }
            emitted += n;
            in_epoch += n;
            metrics.add_in(n as usize);
            metrics.add_out(n as usize);
            progress.fetch_add(n, Ordering::Relaxed);
            if exhausted {
                cap = None;
                return;
            }
            if let Some(wait) = pending {
                // Nothing to read now: ask again later. Record-count epochs close a
                // non-empty epoch so what was read can complete downstream; time epochs
                // wake up at the next interval to move on.
                let wait = match epochs {
                    EpochPolicy::Records(_) => {
                        if in_epoch > 0 {
                            c.downgrade(&(epoch + 1));
                            in_epoch = 0;
                        }
                        wait
                    }
                    EpochPolicy::Interval(every) => {
                        let next = every
                            .mul_f64((epoch + 1) as f64)
                            .saturating_sub(started.elapsed());
                        wait.min(next.max(Duration::from_micros(100)))
                    }
                };
                activator.activate_after(wait);
                return;
            }
            if let EpochPolicy::Records(per_epoch) = epochs {
                if in_epoch >= per_epoch.max(1) {
                    c.downgrade(&(epoch + 1));
                    in_epoch = 0;
                }
            }
            match (rate, epochs) {
                (Some(_), EpochPolicy::Interval(every)) => {
                    activator.activate_after(every.min(Duration::from_millis(1)))
                }
                _ => activator.activate(),
            }
        }
    });
    (handle, stream)
}

use std::sync::Arc;

impl<'s> Job<'s> {
    /// A source built from a [`PullSource`] per instance: `make(instance, instances)` runs on
    /// the workers that host an instance. The runtime stamps epochs, applies flow control and
    /// the rate limit, and asks again later when the source is pending.
    pub fn pull_source<T: Data, S: PullSource<T>>(
        &mut self,
        op: impl Into<Op>,
        make: impl FnOnce(usize, usize) -> S,
    ) -> DataStream<'s, T> {
        let op = op.into();
        let (handle, stream) = drive(&self.ctx, &op, "source:custom", make);
        DataStream::from_parts(Rc::clone(&self.ctx), stream, handle.node, handle.placement)
    }

    /// A bounded source over a vector. Instance `i` of `n` emits the elements at positions
    /// `i, i + n, i + 2n, …`, so every element is emitted exactly once.
    ///
    /// The vector is built on every worker (it is part of the program), like Flink's
    /// `fromCollection`.
    pub fn from_vec<T: Data>(&mut self, op: impl Into<Op>, data: Vec<T>) -> DataStream<'s, T> {
        self.from_iter(op, data)
    }

    /// A bounded source over anything iterable; see [`Job::from_vec`].
    pub fn from_iter<T: Data, I>(&mut self, op: impl Into<Op>, data: I) -> DataStream<'s, T>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: 'static,
    {
        let op = op.into();
        let (handle, stream) = drive(&self.ctx, &op, "source:collection", move |i, n| {
            IterSource(data.into_iter().skip(i).step_by(n))
        });
        DataStream::from_parts(Rc::clone(&self.ctx), stream, handle.node, handle.placement)
    }

    /// A generator source: record `k` is `f(k)`, for `k` in `0..count` (unbounded when
    /// `count` is `None`). Instance `i` of `n` generates `k = i, i + n, …`. With
    /// [`Op::rate`] the records are paced to that total rate.
    ///
    /// ```
    /// use weir_core::{execute, op, Config, Collector};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     job.generate(op("squares").parallelism(2), Some(5), |k| k * k).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![0, 1, 4, 9, 16]);
    /// ```
    pub fn generate<T: Data>(
        &mut self,
        op: impl Into<Op>,
        count: Option<u64>,
        f: impl Fn(u64) -> T + 'static,
    ) -> DataStream<'s, T> {
        let op = op.into();
        let (handle, stream) = drive(&self.ctx, &op, "source:generator", move |i, n| {
            let end = count.unwrap_or(u64::MAX);
            // A plain counter: cheaper per record than `StepBy`.
            let (mut k, step) = (i as u64, n as u64);
            IterSource(std::iter::from_fn(move || {
                (k < end).then(|| {
                    let record = f(k);
                    k = k.saturating_add(step);
                    record
                })
            }))
        });
        DataStream::from_parts(Rc::clone(&self.ctx), stream, handle.node, handle.placement)
    }
}
