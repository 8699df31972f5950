//! Sources whose records may fail to decode: the failures become dead letters (see
//! [`Job::dead_letters`]) and the good records flow on. File sources are built this way, and
//! so are connectors outside this crate (Kafka), through [`Job::pull_source_decoding`].

use std::rc::Rc;

use timely::dataflow::Stream;

use crate::dead_letter::DeadLetter;
use crate::error::WeirError;
use crate::job::{Epoch, Job, JobContext, Op, OpHandle};
use crate::operators::split_results::split_results;
use crate::sources::driver::{drive_dealt, Dealing};
use crate::sources::source::PullSource;
use crate::stream::{Data, DataStream};

/// A record as a source decoded it: the record, or its dead letter (boxed, so that the
/// batches flowing out of a source stay the size of the records).
pub type Decoded<T> = Result<T, Box<DeadLetter>>;

/// Which restored splits a decoding source's instances receive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitDealing {
    /// Every `instances`-th split of the checkpoint to each instance: any instance can take
    /// any split (byte ranges of files, runs of indices).
    #[default]
    RoundRobin,
    /// Every split to every instance, which keeps the splits it owns by the source's own
    /// rule and learns from the rest which splits exist (Kafka partitions: an instance owns
    /// a partition by its number, and a partition in no split is a new one).
    All,
}

impl<'s> Job<'s> {
    /// A source whose [`PullSource`] yields [`Decoded`] records: dead letters go to
    /// [`Job::dead_letters`] (or fail the job under [`crate::Config::fail_fast`]), records
    /// flow on. `make(instance, instances, splits)` builds each instance, with the splits of
    /// a restored checkpoint dealt as `dealing` says (`None` on a fresh start); `kind` names
    /// the source in plans and reports (`source:kafka`).
    ///
    /// ```
    /// use weir_core::{execute, op, Collector, Config, DeadLetter, PullSource, Pulled};
    /// use weir_core::sources::{Decoded, SplitDealing};
    ///
    /// struct Numbers(Vec<&'static str>);
    /// impl PullSource<Decoded<u32>> for Numbers {
    ///     fn pull(&mut self) -> Pulled<Decoded<u32>> {
    ///         match self.0.pop() {
    ///             None => Pulled::Done,
    ///             Some(s) => Pulled::Record(s.parse().map_err(|e| {
    ///                 Box::new(DeadLetter::new("numbers", "memory", format!("{e}"), s.as_bytes()))
    ///             })),
    ///         }
    ///     }
    /// }
    /// let (good, bad) = (Collector::new(), Collector::new());
    /// let (g, b) = (good.clone(), bad.clone());
    /// execute(Config::threads(1), move |job| {
    ///     let make = |_, _, _| Numbers(vec!["1", "x", "3"]);
    ///     job.pull_source_decoding("numbers", "source:numbers", SplitDealing::RoundRobin, make)
    ///         .collect("good", &g);
    ///     job.dead_letters("dead").collect("bad", &b);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(good.sorted(), vec![1, 3]);
    /// assert_eq!(bad.take()[0].raw, "x");
    /// ```
    pub fn pull_source_decoding<T: Data, S: PullSource<Decoded<T>>>(
        &mut self,
        op: impl Into<Op>,
        kind: &str,
        dealing: SplitDealing,
        make: impl FnOnce(usize, usize, Option<Vec<Vec<u8>>>) -> S,
    ) -> DataStream<'s, T> {
        let op = op.into();
        let dealing = match dealing {
            SplitDealing::RoundRobin => Dealing::RoundRobin,
            SplitDealing::All => Dealing::All,
        };
        let (handle, stream) = drive_dealt(&self.ctx, &op, kind, dealing, make);
        split_dead_letters(&self.ctx, handle, stream, "decoding sources")
    }
}

/// Splits a decoding source's output into its records, returned, and its dead letters,
/// which join the job's dead letters (counted as such in the source's metrics).
pub(crate) fn split_dead_letters<'s, T: Data>(
    ctx: &Rc<JobContext<'s>>,
    handle: OpHandle,
    stream: Stream<'s, Epoch, Vec<Decoded<T>>>,
    what: &str,
) -> DataStream<'s, T> {
    let fail_fast = ctx.config.fail_fast;
    let failure = Rc::clone(&ctx.failure);
    let dead_count = Rc::clone(&handle.metrics);
    let (ok, err) = split_results(stream, &handle.name, move |dead: Box<DeadLetter>| {
        let dead = *dead;
        dead_count.add_dead(1);
        dead_count.remove_out(1);
        if fail_fast {
            JobContext::fail(
                &failure,
                WeirError::BadRecord {
                    operator: dead.operator.clone(),
                    location: dead.location.clone(),
                    reason: dead.reason.clone(),
                },
            );
        }
        dead
    });
    if ctx.dead_letters_claimed.get() {
        ctx.fail_build(WeirError::Build {
            operator: handle.name.clone(),
            message: format!("{what} must be built before job.dead_letters() is called"),
        });
    }
    ctx.dead_letters
        .borrow_mut()
        .push((err, handle.node, Rc::clone(&handle.placement)));
    DataStream::from_parts(Rc::clone(ctx), ok, handle.node, handle.placement)
}
