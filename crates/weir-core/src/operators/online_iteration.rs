//! Online training in mini-batches (Flink ML's `Iterations.iterateUnboundedStreams` as its
//! OnlineKMeans and OnlineLogisticRegression use it): records keep arriving; every instance
//! buffers its own, and each round, once it holds its share of the global batch (or its input
//! has ended), computes a partial result under the current model from those rows; one reducer
//! merges the partials of all instances into the next model version, which goes to the output
//! and round a feedback edge, broadcast, to every instance.
//!
//! Unlike [`super::iteration`], the input is not cached: each row is used once. The output is
//! every model version, the initial one (version 0) first. The iteration ends when every
//! instance's input has ended and its buffer is empty. The instances and the reducer, and
//! how checkpoints save them, are in [`super::online_round`].

use std::cell::RefCell;
use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::error::WeirError;
use crate::job::{op, Epoch, JobContext, Op};
use crate::operators::bounded::{follow, least};
use crate::operators::feedback::feedback_in;
use crate::operators::iteration::Round;
use crate::operators::online_round::{
    attach_instance, attach_reducer, Emitted, OnlineInstance, OnlineReducer, RoundPartial,
    ToInstances,
};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// What an online iteration computes (see [`DataStream::iterate_online`]). Every instance
/// gets its own clone: instances [`push`](OnlineBody::push) records and compute
/// [`partial`](OnlineBody::partial)s; the reducer [`merge`](OnlineBody::merge)s and
/// [`update`](OnlineBody::update)s.
pub trait OnlineBody: Clone + 'static {
    /// The records of the input.
    type Record: Data;
    /// The model versions.
    type Model: Data;
    /// One instance's contribution to a round.
    type Partial: Data;
    /// The rows an instance has buffered and not used yet, as checkpoints save them.
    type Buffer: Data;

    /// Buffers a record's rows. An `Err` fails the job.
    fn push(&mut self, record: Self::Record) -> Result<(), String>;

    /// How many rows are buffered.
    fn buffered(&self) -> usize;

    /// How many rows this instance contributes to a round (its share of the global batch).
    fn batch_rows(&self, round: Round) -> usize;

    /// The partial of `round` under `model` from the first `rows` buffered rows (which it
    /// removes; `rows` may be 0 once the input has ended).
    fn partial(
        &mut self,
        round: Round,
        model: &Self::Model,
        rows: usize,
    ) -> Result<Self::Partial, String>;

    /// Adds `other` to `total`.
    fn merge(&mut self, total: &mut Self::Partial, other: Self::Partial);

    /// The model version after a round.
    fn update(&mut self, model: Self::Model, total: Self::Partial) -> Result<Self::Model, String>;

    /// The rows buffered and not used yet, for a checkpoint.
    fn save_buffer(&self) -> Self::Buffer;

    /// Buffers again the rows a checkpoint saved (after a restore, before any record).
    fn restore_buffer(&mut self, buffer: Self::Buffer) -> Result<(), String>;
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Trains online over this stream from the one model record of `init`: every instance
    /// of `op` buffers its records; each round it contributes
    /// [`OnlineBody::batch_rows`] rows (fewer once its input has ended), one reducer merges
    /// the contributions and [`OnlineBody::update`]s the model. Returns every model version,
    /// `init`'s first, from one worker. An `Err` from the body fails the job naming the
    /// operator. Rounds wait for every instance's share, as in Flink ML: an instance that
    /// gets no records on an unbounded input holds the rounds back.
    ///
    /// In a job that checkpoints, the instances' buffers ([`OnlineBody::save_buffer`]), the
    /// round each has not answered and the reducer's model and partials are saved: a
    /// restored job goes on with the versions it would have made. The restore must have
    /// the parallelism of the checkpoint.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config, OnlineBody, Round};
    /// // A running mean, updated every 10 numbers over all instances.
    /// #[derive(Clone, Default)]
    /// struct Mean { rows: Vec<f64> }
    /// impl OnlineBody for Mean {
    ///     type Record = u64;
    ///     type Model = (f64, u64);
    ///     type Partial = (f64, u64);
    ///     type Buffer = Vec<f64>;
    ///     fn push(&mut self, x: u64) -> Result<(), String> { self.rows.push(x as f64); Ok(()) }
    ///     fn buffered(&self) -> usize { self.rows.len() }
    ///     fn batch_rows(&self, round: Round) -> usize { 10 / round.instances }
    ///     fn partial(&mut self, _: Round, _: &(f64, u64), rows: usize) -> Result<(f64, u64), String> {
    ///         Ok((self.rows.drain(..rows).sum(), rows as u64))
    ///     }
    ///     fn merge(&mut self, t: &mut (f64, u64), o: (f64, u64)) { t.0 += o.0; t.1 += o.1 }
    ///     fn update(&mut self, (sum, n): (f64, u64), (s, m): (f64, u64)) -> Result<(f64, u64), String> {
    ///         Ok((sum + s, n + m))
    ///     }
    ///     fn save_buffer(&self) -> Vec<f64> { self.rows.clone() }
    ///     fn restore_buffer(&mut self, rows: Vec<f64>) -> Result<(), String> { self.rows = rows; Ok(()) }
    /// }
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let data = job.from_vec("data", (1..=100u64).collect());
    ///     let init = job.from_vec("init", vec![(0.0, 0u64)]);
    ///     data.iterate_online("mean", init, Mean::default()).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let versions = out.take();
    /// assert_eq!(versions.last(), Some(&(5050.0, 100)));
    /// assert!(versions.len() >= 11, "{versions:?}");
    /// ```
    pub fn iterate_online<B: OnlineBody<Record = T>>(
        self,
        op_config: impl Into<Op>,
        init: DataStream<'s, B::Model>,
        body: B,
    ) -> DataStream<'s, B::Model> {
        let op_config = op_config.into();
        let name = op_config.name().to_string();
        let ctx = Rc::clone(&self.ctx);
        let one = |suffix: &str| op(format!("{name}.{suffix}")).parallelism(1);
        let (loopback, models) =
            feedback_in::<ToInstances<B::Model>>(&ctx, op(format!("{name}.models")));
        let partials = self.online_partials(op_config, models, body.clone());
        let emitted = partials.reduce_online(one("reduce"), init, body);
        let to_instances = emitted.clone().map(one("next"), Emitted::into_loop_message);
        // A round model counts at the epoch it was sent at (the instances' checkpointed
        // state waits for it), so the loop needs no in-flight keeper.
        loopback.connect_counted_at_send(to_instances);
        emitted.flat_map(one("versions"), Emitted::version)
    }

    /// The instances: records in, round models in (broadcast), partials out.
    fn online_partials<B: OnlineBody<Record = T>>(
        self,
        op: Op,
        models: DataStream<'s, ToInstances<B::Model>>,
        body: B,
    ) -> DataStream<'s, RoundPartial<B::Partial>> {
        let ctx = Rc::clone(&self.ctx);
        let main_edge = self.edge_to(&op);
        let handle = ctx.add_operator(
            &op,
            "iterate_online",
            &[
                (self.node, main_edge),
                (models.node, Partitioning::Broadcast),
            ],
        );
        let main = self.routed(main_edge, &handle.placement);
        let models = models.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&ctx.failure), handle.name.clone());
        let fail = move |message: String| {
            let operator = name.clone();
            JobContext::fail(&failure, WeirError::Operator { operator, message });
        };
        let position = (handle.instance.unwrap_or(0), handle.placement.len());
        let instance = Rc::new(RefCell::new(OnlineInstance::new(body, fail, position)));
        let applied = match handle.instance {
            Some(i) => attach_instance(&ctx, &handle.name, (i, position.1), &instance),
            None => {
                ctx.state.claim(&handle.name);
                None
            }
        };
        let here = handle.instance.is_some();
        let gate = Rc::clone(&ctx.gate);
        let scope = ctx.scope;
        let out = main.binary_frontier::<_, VecBuilder<RoundPartial<B::Partial>>, _, _, _, _>(
            models,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, info| {
                if here && instance.borrow().active() {
                    instance.borrow_mut().data_cap = Some(cap);
                    if applied.is_some() {
                        gate.wake_on_open(scope.activator_for(Rc::clone(&info.address)));
                    }
                }
                move |(data, data_frontier), (models, models_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    let mut instance = instance.borrow_mut();
                    data.for_each(|_cap, records| {
                        metrics.add_in(records.len());
                        instance.push_all(std::mem::take(records));
                    });
                    // Stays at the records' last epoch once they end.
                    follow(&mut instance.data_cap, least(data_frontier));
                    let ended = data_frontier.is_empty();
                    models.for_each(|_cap, messages| {
                        messages.drain(..).for_each(|m| instance.receive(m));
                    });
                    if let Some((partial, cap)) =
                        instance.answer(ended, |t| gate.allows_output_at(t))
                    {
                        output.session(&cap).give(partial);
                        metrics.add_out(1);
                    }
                    if let Some(cell) = &applied {
                        // A round model sent at `e` arrives at `e + 1` and counts as `e`'s.
                        let sent_below = least(models_frontier).map(|e| e.saturating_sub(1));
                        let below = [least(data_frontier), sent_below]
                            .into_iter()
                            .flatten()
                            .min();
                        cell.set(below.unwrap_or(Epoch::MAX));
                    }
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

impl<'s, P: Data> DataStream<'s, RoundPartial<P>> {
    /// The reducer: partials and the initial model in, model versions and round models out.
    fn reduce_online<B: OnlineBody<Partial = P>>(
        self,
        op: Op,
        init: DataStream<'s, B::Model>,
        body: B,
    ) -> DataStream<'s, Emitted<B::Model>> {
        let ctx = Rc::clone(&self.ctx);
        let expected = self.placement.len();
        let (partial_edge, init_edge) = (self.edge_to(&op), init.edge_to(&op));
        let handle = ctx.add_operator(
            &op,
            "iterate_online-reduce",
            &[(self.node, partial_edge), (init.node, init_edge)],
        );
        let partials = self.routed(partial_edge, &handle.placement);
        let init = init.routed(init_edge, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&ctx.failure), handle.name.clone());
        let fail = move |message: String| {
            let operator = name.clone();
            JobContext::fail(&failure, WeirError::Operator { operator, message });
        };
        let reducer = Rc::new(RefCell::new(OnlineReducer::new(body, expected, fail)));
        let applied = match handle.instance {
            Some(_) => attach_reducer(&ctx, &handle.name, &reducer),
            None => {
                ctx.state.claim(&handle.name);
                // Timely runs every operator on every worker; only the reducer's own works.
                reducer.borrow_mut().done = true;
                None
            }
        };
        let out = partials.binary_frontier::<_, VecBuilder<Emitted<B::Model>>, _, _, _, _>(
            init,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, _info| {
                drop(cap);
                move |(partials, partials_frontier), (init, init_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    let mut reducer = reducer.borrow_mut();
                    init.for_each(|cap, models| {
                        for model in models.drain(..) {
                            if let Some(first) = reducer.initial(model) {
                                output.session(&cap).give(first);
                                metrics.add_out(1);
                            }
                        }
                    });
                    partials.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if reducer.cap.is_none() && !reducer.done {
                            reducer.cap = cap.retain_least(0);
                        }
                        reducer.receive(data);
                    });
                    if let Some(emitted) = reducer.reduce_complete_round() {
                        if let Some(cap) = reducer.cap.take() {
                            output.session(&cap).give(emitted);
                            metrics.add_out(1);
                        }
                    }
                    if init_frontier.is_empty() {
                        reducer.init_ended();
                    }
                    if reducer.done {
                        reducer.cap = None;
                    }
                    // While the round waits for partials, its capability does not hold the
                    // versions (and so checkpoints) behind the partials' frontier.
                    follow(&mut reducer.cap, least(partials_frontier));
                    if let Some(cell) = &applied {
                        let below = [least(partials_frontier), least(init_frontier)];
                        cell.set(below.into_iter().flatten().min().unwrap_or(Epoch::MAX));
                    }
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{execute, Collector, Config};

    /// A running sum and count, updated every `batch` numbers over all instances.
    #[derive(Clone)]
    struct Sum {
        batch: usize,
        rows: Vec<u64>,
        fail_at: Option<u64>,
    }

    impl OnlineBody for Sum {
        type Record = u64;
        type Model = (u64, u64);
        type Partial = (u64, u64);
        type Buffer = Vec<u64>;

        fn push(&mut self, x: u64) -> Result<(), String> {
            self.rows.push(x);
            Ok(())
        }

        fn buffered(&self) -> usize {
            self.rows.len()
        }

        fn batch_rows(&self, round: Round) -> usize {
            let n = round.instances;
            self.batch / n + usize::from(self.batch % n > round.instance)
        }

        fn partial(
            &mut self,
            round: Round,
            _: &(u64, u64),
            rows: usize,
        ) -> Result<(u64, u64), String> {
            if self.fail_at == Some(round.number) {
                return Err(format!("round {} failed", round.number));
            }
            Ok((self.rows.drain(..rows).sum(), rows as u64))
        }

        fn merge(&mut self, t: &mut (u64, u64), o: (u64, u64)) {
            t.0 += o.0;
            t.1 += o.1;
        }

        fn update(&mut self, m: (u64, u64), p: (u64, u64)) -> Result<(u64, u64), String> {
            Ok((m.0 + p.0, m.1 + p.1))
        }

        fn save_buffer(&self) -> Vec<u64> {
            self.rows.clone()
        }

        fn restore_buffer(&mut self, rows: Vec<u64>) -> Result<(), String> {
            self.rows = rows;
            Ok(())
        }
    }

    fn run(
        workers: usize,
        n: u64,
        batch: usize,
        fail_at: Option<u64>,
    ) -> crate::Result<Vec<(u64, u64)>> {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(workers), move |job| {
            let data = job.from_vec("data", (1..=n).collect());
            let init = job.from_vec("init", vec![(0u64, 0u64)]);
            let body = Sum {
                batch,
                rows: Vec::new(),
                fail_at,
            };
            data.iterate_online("sum", init, body).collect("out", &sink);
            Ok(())
        })?;
        Ok(out.take())
    }

    #[test]
    fn every_row_counts_once_and_versions_grow_by_the_global_batch() {
        for workers in [1, 2, 3] {
            let mut versions = run(workers, 1000, 64, None).unwrap();
            versions.sort();
            assert_eq!(
                versions.first(),
                Some(&(0, 0)),
                "version 0 is the initial model"
            );
            assert_eq!(versions.last(), Some(&(500_500, 1000)), "{workers} workers");
            // Every version but the tail ones adds a whole global batch.
            let full = versions
                .windows(2)
                .filter(|w| w[1].1 - w[0].1 == 64)
                .count();
            assert!(
                full >= 1000 / 64 - workers,
                "{workers} workers: {versions:?}"
            );
        }
    }

    /// The input ends right after a whole batch: the last round has no rows, makes no
    /// version, and must not hold the loop (it did: the job never ended).
    #[test]
    fn an_input_that_ends_on_a_batch_boundary_ends_the_iteration() {
        for workers in [1, 2] {
            let mut versions = run(workers, 4 * workers as u64, 4 * workers, None).unwrap();
            versions.sort();
            let n = 4 * workers as u64;
            assert_eq!(
                versions.last(),
                Some(&(n * (n + 1) / 2, n)),
                "{workers} workers"
            );
        }
    }

    #[test]
    fn a_failing_round_fails_the_job_and_no_initial_model_too() {
        let error = run(2, 1000, 64, Some(2)).unwrap_err().to_string();
        assert!(
            error.contains("sum") && error.contains("round 2 failed"),
            "{error}"
        );
        let error = execute(Config::threads(2), |job| {
            let data = job.from_vec("data", (1..=10u64).collect());
            let init = job.from_vec("init", Vec::<(u64, u64)>::new());
            let body = Sum {
                batch: 4,
                rows: Vec::new(),
                fail_at: None,
            };
            data.iterate_online("sum", init, body)
                .collect("out", &Collector::new());
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("no initial model"), "{error}");
    }
}
