//! Sources: the [`PullSource`] trait, in-memory collections and generators, whose
//! positions checkpoints save (as runs of indices any instance can take over).

use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::WeirError;
use crate::job::{Job, JobContext, Op};
use crate::sources::driver::drive;
use crate::state::snapshot::{decode_part, encode_part};
use crate::stream::{Data, DataStream};

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

    /// Appends up to `max` records to `batch`: `None` when it appended all `max`, otherwise
    /// why it stopped early ([`Pulled::Pending`], [`Pulled::Done`] or [`Pulled::Failed`],
    /// never [`Pulled::Record`]). The runtime asks for records this way; the default calls
    /// [`PullSource::pull`] per record, and a source that can produce a run of records in
    /// one loop (a generator, a decoded block) overrides it.
    ///
    /// ```
    /// use weir_core::{PullSource, Pulled};
    ///
    /// struct Countdown(u32);
    /// impl PullSource<u32> for Countdown {
    ///     fn pull(&mut self) -> Pulled<u32> {
    ///         if self.0 == 0 {
    ///             return Pulled::Done;
    ///         }
    ///         self.0 -= 1;
    ///         Pulled::Record(self.0)
    ///     }
    /// }
    ///
    /// let mut source = Countdown(3);
    /// let mut batch = Vec::new();
    /// assert!(source.pull_batch(&mut batch, 2).is_none());
    /// assert!(matches!(source.pull_batch(&mut batch, 2), Some(Pulled::Done)));
    /// assert_eq!(batch, [2, 1, 0]);
    /// ```
    fn pull_batch(&mut self, batch: &mut Vec<T>, max: usize) -> Option<Pulled<T>> {
        pull_each(self, batch, max)
    }

    /// For checkpoints: what this instance has not read yet, as *splits* that any instance
    /// can take over after a restore, at any parallelism (encode each with
    /// [`crate::state::snapshot::encode_part`]; they come back through
    /// [`Job::pull_source_resumable`]). `None` (the default): the source cannot resume, and
    /// a job that checkpoints refuses it.
    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// Checkpoint `checkpoint` is complete: the position [`PullSource::remaining`] last
    /// returned is now durable (a Kafka source commits its offsets to its consumer group).
    fn committed(&mut self, _checkpoint: u64) {}
}

/// [`PullSource::pull_batch`] record by record, with [`PullSource::pull`].
fn pull_each<T, S: PullSource<T> + ?Sized>(
    source: &mut S,
    batch: &mut Vec<T>,
    max: usize,
) -> Option<Pulled<T>> {
    for _ in 0..max {
        match source.pull() {
            Pulled::Record(x) => batch.push(x),
            other => return Some(other),
        }
    }
    None
}

/// The indices `next, next + step, …` below `end` that an instance still has to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Progression {
    pub(crate) next: u64,
    pub(crate) step: u64,
    pub(crate) end: u64,
}

impl Progression {
    fn is_empty(&self) -> bool {
        self.next >= self.end
    }

    /// How many indices are left, up to `max`.
    fn left(&self, max: usize) -> usize {
        if self.is_empty() {
            return 0;
        }
        let left = (self.end - self.next - 1) / self.step + 1;
        usize::try_from(left).map_or(max, |left| left.min(max))
    }

    /// Instance `i` of `n` at the start: `i, i + n, …`.
    fn of_instance(instance: usize, instances: usize, end: u64) -> Self {
        Progression {
            next: instance as u64,
            step: instances.max(1) as u64,
            end,
        }
    }
}

/// The progressions an instance starts with: restored ones, or its share of `0..end`. A
/// restored split that does not decode, or whose step is 0, fails the job with a checkpoint
/// error naming `op` (a checkpoint's checksum covers damage, not a file written by hand),
/// and the instance starts with none.
fn progressions(
    (ctx, op): (&JobContext<'_>, &str),
    (instance, instances): (usize, usize),
    end: u64,
    restored: Option<Vec<Vec<u8>>>,
) -> Vec<Progression> {
    let Some(splits) = restored else {
        return vec![Progression::of_instance(instance, instances, end)];
    };
    match restored_progressions(&splits) {
        Ok(progressions) => progressions,
        Err(why) => {
            let why = format!("operator `{op}`, instance {instance}: {why}");
            JobContext::fail(&ctx.failure, WeirError::Checkpoint(why));
            Vec::new()
        }
    }
}

/// The non-empty progressions of restored splits, each checked.
fn restored_progressions(splits: &[Vec<u8>]) -> Result<Vec<Progression>, String> {
    let mut progressions = Vec::with_capacity(splits.len());
    for (i, split) in splits.iter().enumerate() {
        let p: Progression = decode_part(split).map_err(|e| format!("split {i}: {e}"))?;
        if p.step == 0 {
            return Err(format!("split {i}: a run of indices with step 0"));
        }
        if !p.is_empty() {
            progressions.push(p);
        }
    }
    Ok(progressions)
}

fn encode_progressions(progressions: &[Progression]) -> Option<Vec<Vec<u8>>> {
    progressions
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| encode_part(p).ok())
        .collect()
}

/// The generator: record `k` is `f(k)` for the indices of its progressions, in index order
/// (a restored instance can hold several, such as the evens and the odds of two instances
/// restored at parallelism 1, each of which may be unbounded).
struct GeneratorSource<F> {
    f: F,
    progressions: Vec<Progression>,
}

impl<T: 'static, F: Fn(u64) -> T + 'static> PullSource<T> for GeneratorSource<F> {
    #[inline]
    fn pull(&mut self) -> Pulled<T> {
        loop {
            let p = match self.progressions.as_mut_slice() {
                [] => return Pulled::Done,
                [only] => only,
                several => several
                    .iter_mut()
                    .min_by_key(|p| p.next)
                    .expect("several progressions"),
            };
            if p.is_empty() {
                self.progressions.retain(|p| !p.is_empty());
                continue;
            }
            let k = p.next;
            p.next = p.next.saturating_add(p.step);
            return Pulled::Record((self.f)(k));
        }
    }

    /// With one progression (every instance of a fresh start), the records of a run of
    /// indices in one loop; with several, record by record in index order. Kept out of line:
    /// inlined into the driver's activation, its loop was compiled 10% slower, depending on
    /// unrelated code elsewhere in the driver.
    #[inline(never)]
    fn pull_batch(&mut self, batch: &mut Vec<T>, max: usize) -> Option<Pulled<T>> {
        let [p] = self.progressions.as_mut_slice() else {
            return pull_each(self, batch, max);
        };
        let take = p.left(max);
        let (next, step, f) = (p.next, p.step, &self.f);
        // `next + j * step` stays below `end` for `j < take`.
        batch.extend((0..take as u64).map(|j| f(next + j * step)));
        p.next = p.next.saturating_add(step.saturating_mul(take as u64));
        if take < max {
            self.progressions.clear();
            return Some(Pulled::Done);
        }
        None
    }

    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        encode_progressions(&self.progressions)
    }
}

/// A collection: the items at the indices of its progressions, read in index order.
struct CollectionSource<I: Iterator> {
    items: I,
    /// The index of the next item `items` yields.
    at: u64,
    progressions: Vec<Progression>,
}

impl<I: Iterator + 'static> PullSource<I::Item> for CollectionSource<I> {
    fn pull(&mut self) -> Pulled<I::Item> {
        self.progressions.retain(|p| !p.is_empty());
        let Some(p) = self.progressions.iter_mut().min_by_key(|p| p.next) else {
            return Pulled::Done;
        };
        let Some(skip) = p.next.checked_sub(self.at) else {
            // Only restored positions that overlap (not written by a checkpoint) do this.
            return Pulled::Failed(format!(
                "the restored positions overlap: index {} again after {}",
                p.next, self.at
            ));
        };
        let item = if skip > 0 {
            self.items.nth(skip as usize)
        } else {
            self.items.next()
        };
        self.at = p.next + 1;
        p.next = p.next.saturating_add(p.step);
        match item {
            Some(x) => Pulled::Record(x),
            None => {
                // The collection is shorter than the progressions say: nothing more.
                self.progressions.clear();
                Pulled::Done
            }
        }
    }

    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        encode_progressions(&self.progressions)
    }
}

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
        if self.ctx.state.enabled {
            self.ctx.fail_build(crate::WeirError::Build {
                operator: op.name.clone(),
                message: "a job that checkpoints needs sources that can resume: use \
                          Job::pull_source_resumable and PullSource::remaining"
                    .into(),
            });
        }
        let (handle, stream) = drive(&self.ctx, &op, "source:custom", move |i, n, _| make(i, n));
        DataStream::from_parts(Rc::clone(&self.ctx), stream, handle.node, handle.placement)
    }

    /// A source whose position checkpoints save: `make(instance, instances, splits)` gets
    /// the splits a restored checkpoint dealt to this instance (`None` on a fresh start),
    /// from what [`PullSource::remaining`] returned, and must go on from them.
    pub fn pull_source_resumable<T: Data, S: PullSource<T>>(
        &mut self,
        op: impl Into<Op>,
        make: impl FnOnce(usize, usize, Option<Vec<Vec<u8>>>) -> S,
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
        let (ctx, name) = (Rc::clone(&self.ctx), op.name.clone());
        let (handle, stream) = drive(
            &self.ctx,
            &op,
            "source:collection",
            move |i, n, restored| CollectionSource {
                items: data.into_iter(),
                at: 0,
                progressions: progressions((&ctx, &name), (i, n), u64::MAX, restored),
            },
        );
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
        let (ctx, name) = (Rc::clone(&self.ctx), op.name.clone());
        let (handle, stream) = drive(&self.ctx, &op, "source:generator", move |i, n, restored| {
            let end = count.unwrap_or(u64::MAX);
            GeneratorSource {
                f,
                progressions: progressions((&ctx, &name), (i, n), end, restored),
            }
        });
        DataStream::from_parts(Rc::clone(&self.ctx), stream, handle.node, handle.placement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(source: &mut impl PullSource<u64>, n: usize) -> Vec<u64> {
        (0..n)
            .map_while(|_| match source.pull() {
                Pulled::Record(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// Two instances' unbounded generators restored at parallelism 1: the one instance takes
    /// both progressions (the evens and the odds) and generates every index, in order. It
    /// generated only the evens, forever, when it took its progressions one after the other.
    #[test]
    fn a_generator_restored_with_several_progressions_generates_them_all_in_index_order() {
        let evens = Progression::of_instance(0, 2, u64::MAX);
        let odds = Progression::of_instance(1, 2, u64::MAX);
        let splits = encode_progressions(&[odds, evens]);
        let mut source = GeneratorSource {
            f: |k| k,
            progressions: restored_progressions(&splits.unwrap()).unwrap(),
        };
        assert_eq!(pulled(&mut source, 9), (0..9).collect::<Vec<_>>());

        // Bounded ones end one after the other, and then the source is done.
        let mut bounded = GeneratorSource {
            f: |k| k,
            progressions: vec![
                Progression::of_instance(1, 3, 7),
                Progression::of_instance(0, 3, 5),
            ],
        };
        assert_eq!(pulled(&mut bounded, 20), [0, 1, 3, 4]);
        assert!(matches!(bounded.pull(), Pulled::Done));
    }

    /// Restored positions come from a file: a run with step 0 (which divided by zero, or
    /// repeated one index forever) or bytes that do not decode are refused with the split
    /// named, not skipped; positions that overlap fail the collection source, not a worker.
    #[test]
    fn restored_positions_are_checked() {
        let stuck = Progression {
            next: 0,
            step: 0,
            end: 10,
        };
        let splits = encode_progressions(&[Progression::of_instance(0, 2, 10), stuck]).unwrap();
        let e = restored_progressions(&splits).unwrap_err();
        assert_eq!(e, "split 1: a run of indices with step 0");
        let e = restored_progressions(&[vec![0xff; 3]]).unwrap_err();
        assert!(e.starts_with("split 0: "), "{e}");

        let overlapping = vec![
            Progression::of_instance(0, 2, 10),
            Progression::of_instance(0, 3, 10),
        ];
        let mut source = CollectionSource {
            items: 0..10u64,
            at: 0,
            progressions: overlapping,
        };
        assert_eq!(pulled(&mut source, 20), [0]);
        let Pulled::Failed(why) = source.pull() else {
            panic!("the overlap fails the source")
        };
        assert!(why.contains("overlap: index 0 again after 1"), "{why}");
    }

    /// Batches of a generator hold the same records as pulling one by one: runs of a single
    /// progression up to its end (bounded or not), several progressions in index order, and
    /// the end reported once the last index is out.
    #[test]
    fn a_generator_pulled_in_batches_gives_the_records_of_pulling_one_by_one() {
        let cases = [
            vec![Progression::of_instance(2, 3, 100)],
            vec![Progression::of_instance(0, 1, 64)],
            vec![Progression::of_instance(1, 4, u64::MAX)],
            vec![Progression {
                next: 5,
                step: 7,
                end: 6,
            }],
            vec![
                Progression::of_instance(1, 3, 40),
                Progression::of_instance(0, 3, 25),
            ],
        ];
        for progressions in cases {
            let make = || GeneratorSource {
                f: |k: u64| k * 10,
                progressions: progressions.clone(),
            };
            let one_by_one = pulled(&mut make(), 200);
            for max in [1, 3, 16, 64, 500] {
                let (mut source, mut batch) = (make(), Vec::new());
                let mut end = None;
                while batch.len() < 200 && end.is_none() {
                    let want = max.min(200 - batch.len());
                    end = source.pull_batch(&mut batch, want);
                }
                assert_eq!(batch, one_by_one, "{progressions:?} in batches of {max}");
                let bounded = progressions.iter().all(|p| p.end < 1000);
                assert_eq!(
                    matches!(end, Some(Pulled::Done)) || source.pull_batch(&mut batch, 1).is_some(),
                    bounded,
                    "{progressions:?}: done at the end"
                );
            }
        }
    }
}
