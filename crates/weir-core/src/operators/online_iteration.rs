//! Online training in mini-batches (Flink ML's `Iterations.iterateUnboundedStreams` as its
//! OnlineKMeans and OnlineLogisticRegression use it): records keep arriving; every instance
//! buffers its own, and each round, once it holds its share of the global batch (or its input
//! has ended), computes a partial result under the current model from those rows; one reducer
//! merges the partials of all instances into the next model version, which goes to the output
//! and round a feedback edge, broadcast, to every instance.
//!
//! Unlike [`super::iteration`], the input is not cached: each row is used once. The output is
//! every model version, the initial one (version 0) first. The iteration ends when every
//! instance's input has ended and its buffer is empty.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::error::WeirError;
use crate::job::{op, Epoch, JobContext, Op};
use crate::operators::bounded::{follow, least};
use crate::operators::feedback::feedback_in;
use crate::operators::iteration::Round;
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
}

/// A round's model for the instances.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RoundModel<M> {
    round: u64,
    model: M,
}

/// An instance's answer to a round: its partial over `rows` rows, and whether its input has
/// ended and its buffer is empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RoundPartial<P> {
    round: u64,
    partial: P,
    rows: usize,
    last: bool,
}

/// What the reducer emits.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Versioned<M> {
    /// The next round's model (goes round the loop, and out).
    Next(RoundModel<M>),
    /// A version that goes out only: the initial one, and the last.
    Out(M),
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
    /// ```
    /// use weir_core::{execute, Collector, Config, OnlineBody, Round};
    /// // A running mean, updated every 10 numbers over all instances.
    /// #[derive(Clone, Default)]
    /// struct Mean { rows: Vec<f64> }
    /// impl OnlineBody for Mean {
    ///     type Record = u64;
    ///     type Model = (f64, u64);
    ///     type Partial = (f64, u64);
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
        let round_zero = init
            .clone()
            .map(one("init"), |model| RoundModel { round: 0, model });
        let (loopback, fed_back) = feedback_in::<RoundModel<B::Model>>(&ctx, one("loop"));
        let models = round_zero.union(op(format!("{name}.models")), fed_back);
        let partials = self.online_partials(op_config, models, body.clone());
        let reduced = partials.reduce_online(one("reduce"), init, body);
        let next = reduced
            .clone()
            .flat_map(one("next"), |v: Versioned<B::Model>| match v {
                Versioned::Next(next) => Some(next),
                Versioned::Out(_) => None,
            });
        loopback.connect(next);
        reduced.map(one("versions"), |v: Versioned<B::Model>| match v {
            Versioned::Next(next) => next.model,
            Versioned::Out(model) => model,
        })
    }

    /// The instances: records in, round models in (broadcast), partials out.
    fn online_partials<B: OnlineBody<Record = T>>(
        self,
        op: Op,
        models: DataStream<'s, RoundModel<B::Model>>,
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
        ctx.refuse_checkpoints(&handle.name, "iterate_online");
        let main = self.routed(main_edge, &handle.placement);
        let models = models.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let (failure, name) = (Rc::clone(&ctx.failure), handle.name.clone());
        let here = handle.placement.contains(&ctx.index);
        let position = (handle.instance.unwrap_or(0), handle.placement.len());
        let out = main.binary_frontier::<_, VecBuilder<RoundPartial<B::Partial>>, _, _, _, _>(
            models,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, _info| {
                let fail = move |message: String| {
                    let operator = name.clone();
                    JobContext::fail(&failure, WeirError::Operator { operator, message });
                };
                let mut instance = OnlineInstance::new(cap, body, fail, position);
                if !here {
                    instance.data_cap = None;
                    instance.failed = true;
                }
                move |(data, data_frontier), (models, _models_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    data.for_each(|_cap, records| {
                        metrics.add_in(records.len());
                        instance.push_all(std::mem::take(records));
                    });
                    follow(&mut instance.data_cap, least(data_frontier));
                    let ended = data_frontier.is_empty();
                    models.for_each(|cap, messages| {
                        for message in messages.drain(..) {
                            instance.receive(message, cap.retain_least(0));
                        }
                    });
                    if let Some((partial, cap)) = instance.answer(ended) {
                        output.session(&cap).give(partial);
                        metrics.add_out(1);
                    }
                    if ended {
                        instance.data_cap = None;
                    }
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

impl<'s, P: Data> DataStream<'s, RoundPartial<P>> {
    /// The reducer: partials and the initial model in, model versions out.
    fn reduce_online<B: OnlineBody<Partial = P>>(
        self,
        op: Op,
        init: DataStream<'s, B::Model>,
        body: B,
    ) -> DataStream<'s, Versioned<B::Model>> {
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
        let here = handle.placement.contains(&ctx.index);
        let out = partials.binary_frontier::<_, VecBuilder<Versioned<B::Model>>, _, _, _, _>(
            init,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, _info| {
                drop(cap);
                let fail = move |message: String| {
                    let operator = name.clone();
                    JobContext::fail(&failure, WeirError::Operator { operator, message });
                };
                let mut reducer = OnlineReducer::new(body, expected, fail);
                // Timely runs every operator on every worker; only the reducer's own works.
                reducer.done = !here;
                move |(partials, partials_frontier), (init, init_frontier), output| {
                    let _busy = metrics.busy_in(node);
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
                        if reducer.cap.is_none() {
                            reducer.cap = cap.retain_least(0);
                        }
                        reducer.partials.append(data);
                    });
                    if let Some(version) = reducer.reduce_complete_round() {
                        if let Some(cap) = reducer.cap.take() {
                            output.session(&cap).give(version);
                            metrics.add_out(1);
                        }
                    }
                    if reducer.done {
                        // Ended without a last version (the inputs ended on a round
                        // boundary) or failed: the round's capability must not hold the loop.
                        reducer.cap = None;
                    }
                    if partials_frontier.is_empty() && init_frontier.is_empty() {
                        reducer.end();
                    }
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

/// One instance of an online iteration.
struct OnlineInstance<B: OnlineBody, E> {
    /// Held while records arrive, following their frontier: partials of rounds answered by
    /// new records go out with it.
    data_cap: Option<Capability<Epoch>>,
    body: B,
    /// The model of the round this instance has not answered yet, with its capability.
    waiting: Option<(u64, B::Model, Option<Capability<Epoch>>)>,
    fail: E,
    failed: bool,
    instance: usize,
    instances: usize,
}

impl<B: OnlineBody, E: Fn(String)> OnlineInstance<B, E> {
    fn new(
        cap: Capability<Epoch>,
        body: B,
        fail: E,
        (instance, instances): (usize, usize),
    ) -> Self {
        OnlineInstance {
            data_cap: Some(cap),
            body,
            waiting: None,
            fail,
            failed: false,
            instance,
            instances,
        }
    }

    fn push_all(&mut self, records: Vec<B::Record>) {
        if self.failed {
            return;
        }
        for record in records {
            if let Err(message) = self.body.push(record) {
                self.give_up(message);
                return;
            }
        }
    }

    fn receive(&mut self, message: RoundModel<B::Model>, cap: Option<Capability<Epoch>>) {
        if self.waiting.is_some() {
            self.give_up(format!(
                "the model of round {} came before a partial",
                message.round
            ));
            return;
        }
        self.waiting = Some((message.round, message.model, cap));
    }

    /// The partial of the waiting round once this instance holds its share of rows (or its
    /// input has ended), with the capability to send it with.
    fn answer(&mut self, ended: bool) -> Option<(RoundPartial<B::Partial>, Capability<Epoch>)> {
        if self.failed {
            return None;
        }
        let (round, _, _) = self.waiting.as_ref()?;
        let round = Round {
            number: *round,
            instance: self.instance,
            instances: self.instances,
        };
        let share = self.body.batch_rows(round).max(1);
        let buffered = self.body.buffered();
        if buffered < share && !ended {
            return None;
        }
        let (_, model, model_cap) = self.waiting.take().expect("checked above");
        let cap = match (self.data_cap.as_ref(), model_cap) {
            (Some(data_cap), _) => data_cap.clone(),
            (None, Some(cap)) => cap,
            (None, None) => return None,
        };
        let rows = share.min(buffered);
        match self.body.partial(round, &model, rows) {
            Ok(partial) => {
                let last = ended && self.body.buffered() == 0;
                let partial = RoundPartial {
                    round: round.number,
                    partial,
                    rows,
                    last,
                };
                Some((partial, cap))
            }
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    fn give_up(&mut self, message: String) {
        if !self.failed {
            (self.fail)(message);
        }
        self.failed = true;
        self.waiting = None;
        self.data_cap = None;
    }
}

/// The reducer of an online iteration.
struct OnlineReducer<B: OnlineBody, E> {
    /// The capability of the first partial of the current round.
    cap: Option<Capability<Epoch>>,
    body: B,
    expected: usize,
    /// The current round and its model.
    model: Option<(u64, B::Model)>,
    partials: Vec<RoundPartial<B::Partial>>,
    done: bool,
    fail: E,
}

impl<B: OnlineBody, E: Fn(String)> OnlineReducer<B, E> {
    fn new(body: B, expected: usize, fail: E) -> Self {
        OnlineReducer {
            cap: None,
            body,
            expected,
            model: None,
            partials: Vec::new(),
            done: false,
            fail,
        }
    }

    /// The initial model: version 0 goes out as it is and starts round 0.
    fn initial(&mut self, model: B::Model) -> Option<Versioned<B::Model>> {
        if self.model.is_some() || self.done {
            self.give_up("the initial model has more than one record".into());
            return None;
        }
        self.model = Some((0, model.clone()));
        Some(Versioned::Out(model))
    }

    /// The next model version, once every instance's partial of the round is in.
    fn reduce_complete_round(&mut self) -> Option<Versioned<B::Model>> {
        let (round, _) = self.model.as_ref()?;
        let round = *round;
        if self.done || self.partials.len() < self.expected {
            return None;
        }
        if let Some(other) = self.partials.iter().find(|p| p.round != round) {
            let message = format!(
                "a partial of round {} arrived in round {round}",
                other.round
            );
            self.give_up(message);
            return None;
        }
        let last = self.partials.iter().all(|p| p.last);
        let rows: usize = self.partials.iter().map(|p| p.rows).sum();
        let mut partials = std::mem::take(&mut self.partials)
            .into_iter()
            .map(|p| p.partial);
        let mut total = partials.next().expect("at least one partial");
        partials.for_each(|p| self.body.merge(&mut total, p));
        let (_, model) = self.model.take().expect("checked above");
        if rows == 0 {
            // Every input ended on a round boundary (an instance answers with no rows only
            // then): no new version.
            self.done = true;
            return None;
        }
        match self.body.update(model, total) {
            Ok(model) if last => {
                self.done = true;
                Some(Versioned::Out(model))
            }
            Ok(model) => {
                self.model = Some((round + 1, model.clone()));
                Some(Versioned::Next(RoundModel {
                    round: round + 1,
                    model,
                }))
            }
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    /// The inputs ended: without an initial model, the job fails.
    fn end(&mut self) {
        if !self.done && self.model.is_none() {
            self.give_up("no initial model (was the initial model data empty?)".into());
        }
        self.done = true;
        self.cap = None;
    }

    fn give_up(&mut self, message: String) {
        if !self.done {
            (self.fail)(message);
        }
        self.done = true;
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
