//! Bounded iterations for all-reduce algorithms (Flink ML's
//! `Iterations.iterateBoundedStreamsUntilTermination` as its KMeans, LogisticRegression and
//! LinearRegression use it): every instance caches its share of a bounded input once, then
//! each round it computes a partial result from the whole cache under the current model; the
//! partials of all instances meet at one reducer, which merges them, updates the model and
//! either sends the new model round a feedback edge to every instance or emits it as the
//! result.
//!
//! The dataflow of `data.iterate_bounded("fit", init, body)`:
//!
//! ```text
//!   init ──────────────────────────────────────────────────► fit.reduce (one instance)
//!   fit.loop ──► fit (every instance: cache, partial) ──────────────────►┤
//!      ▲   (feedback, one epoch later, broadcast to every `fit` instance)│
//!      └──────────── fit.next (round 0's model first) ◄──────────────────┤
//!                                                                        └──► fit.result
//! ```
//!
//! The reducer waits for one partial per instance (Flink's `countWindowAll(parallelism)`),
//! so at most one round is in flight. A caching instance holds a capability that follows its
//! records' frontier (as the operators of `bounded.rs` do), never the epoch of a model it
//! keeps, and once they end stays at their last epoch until the rounds end: every partial
//! goes out with it, so the rounds stay at that epoch instead of running one epoch ahead
//! per round.
//!
//! **Checkpoints.** An instance's cached items are saved as splits any instance can take over
//! (a restore may change the parallelism), the reducer's model and whether it is done. A
//! round model counts at the epoch it was sent at, so a checkpoint whose epoch is at or
//! after the records' last waits for the rounds to end (the instances' capabilities are
//! there): the rounds' own state is never saved. While a checkpoint is taken, an instance
//! whose capability is past its epoch answers no round. A restored reducer sends the
//! current round's model (or the end) round the loop again.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::error::WeirError;
use crate::job::{op, Epoch, JobContext, Op};
use crate::operators::bounded::{follow, least};
use crate::operators::data_cache::{managed_cache_budget, DataCache};
use crate::operators::feedback::feedback_in;
use crate::plan::Partitioning;
use crate::state::snapshot::{decode_part, encode_part, StatePart};
use crate::state::{Barrier, Checkpointed, StateError};
use crate::stream::{Data, DataStream, VecBuilder};

/// What a bounded iteration computes (see [`DataStream::iterate_bounded`]). Every instance
/// of the iteration gets its own clone of the body: the caching instances call
/// [`cache`](IterationBody::cache) and [`partial`](IterationBody::partial), the reducer
/// [`merge`](IterationBody::merge) and [`update`](IterationBody::update). A body may keep
/// per-instance state across rounds (a position in its cache, per-record costs) in itself.
pub trait IterationBody: Clone + 'static {
    /// The records of the iterated input.
    type Record: Data;
    /// What an instance keeps of its records (a block of rows in a compact layout, say).
    type Cached: Serialize + DeserializeOwned + Clone + 'static;
    /// The model the rounds refine.
    type Model: Data;
    /// One instance's contribution to a round.
    type Partial: Data;

    /// What to keep of a record (`None`: nothing). An `Err` fails the job.
    fn cache(&mut self, record: Self::Record) -> Result<Option<Self::Cached>, String>;

    /// The approximate bytes a cached item holds, for the cache's memory budget.
    fn weigh(cached: &Self::Cached) -> usize;

    /// This instance's partial result of `round` under `model`, over everything it cached
    /// (`data`; possibly nothing).
    fn partial(
        &mut self,
        round: Round,
        model: &Self::Model,
        data: &mut DataCache<Self::Cached>,
    ) -> Result<Self::Partial, String>;

    /// Adds `other` to `total`.
    fn merge(&mut self, total: &mut Self::Partial, other: Self::Partial);

    /// The model after round `round`, from the model of the round and the merged partials:
    /// whether to go on.
    fn update(
        &mut self,
        round: u64,
        model: Self::Model,
        total: Self::Partial,
    ) -> Result<Step<Self::Model>, String>;
}

/// Which round a partial is for, and which instance computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// The round, from 0.
    pub number: u64,
    /// This instance's position among the iteration's instances.
    pub instance: usize,
    /// How many instances compute partials.
    pub instances: usize,
}

/// What [`IterationBody::update`] decides after a round.
#[derive(Clone, Debug, PartialEq)]
pub enum Step<M> {
    /// Another round with this model.
    Continue(M),
    /// The iteration ends with this model.
    Finish(M),
}

/// What goes round the loop: the model of the next round, or the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum RoundMessage<M> {
    Model { round: u64, model: M },
    Finished,
}

/// What the reducer emits: a message for the loop, or the result.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Reduced<M> {
    Loop(RoundMessage<M>),
    Result(M),
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Iterates over this bounded stream: each instance of `op` caches its records (through
    /// [`IterationBody::cache`], in a [`DataCache`]: in memory up to the
    /// [managed budget](DataCache#budgets), spilled to disk beyond), and once all have arrived, runs
    /// rounds starting from the one model record of `init`: every instance computes its
    /// partial under the round's model, one instance merges the partials and updates the
    /// model, until [`IterationBody::update`] says [`Step::Finish`]. The result is the final
    /// model, one record on one worker. An `Err` from the body fails the job with
    /// [`WeirError::Operator`] naming the operator that failed; so does an `init` without
    /// exactly one record.
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config, DataCache, IterationBody, Round, Step};
    /// // Newton's method for the mean: x <- x - (x - sum/n), to convergence.
    /// #[derive(Clone)]
    /// struct Mean;
    /// impl IterationBody for Mean {
    ///     type Record = f64;
    ///     type Cached = f64;
    ///     type Model = f64;
    ///     type Partial = (f64, u64);
    ///     fn cache(&mut self, x: f64) -> Result<Option<f64>, String> { Ok(Some(x)) }
    ///     fn weigh(_: &f64) -> usize { 8 }
    ///     fn partial(&mut self, _: Round, m: &f64, data: &mut DataCache<f64>) -> Result<(f64, u64), String> {
    ///         let mut acc = (0.0, 0);
    ///         data.for_each_ref(|x| { acc.0 += x - m; acc.1 += 1 }).map_err(|e| e.to_string())?;
    ///         Ok(acc)
    ///     }
    ///     fn merge(&mut self, t: &mut (f64, u64), o: (f64, u64)) { t.0 += o.0; t.1 += o.1 }
    ///     fn update(&mut self, round: u64, m: f64, (sum, n): (f64, u64)) -> Result<Step<f64>, String> {
    ///         let next = m + sum / n as f64;
    ///         Ok(if (next - m).abs() < 1e-12 || round == 9 { Step::Finish(next) } else { Step::Continue(next) })
    ///     }
    /// }
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let data = job.from_vec("data", (1..=100).map(f64::from).collect());
    ///     let init = job.from_vec("init", vec![0.0]);
    ///     data.iterate_bounded("mean", init, Mean).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.take(), vec![50.5]);
    /// ```
    pub fn iterate_bounded<B: IterationBody<Record = T>>(
        self,
        op_config: impl Into<Op>,
        init: DataStream<'s, B::Model>,
        body: B,
    ) -> DataStream<'s, B::Model> {
        let op_config = op_config.into();
        let name = op_config.name().to_string();
        let ctx = Rc::clone(&self.ctx);
        let one = |suffix: &str| op(format!("{name}.{suffix}")).parallelism(1);
        let (loopback, models) = feedback_in::<RoundMessage<B::Model>>(&ctx, one("loop"));
        let partials = self.iterate_partials(op_config, models, body.clone());
        let reduced = partials.reduce_rounds(one("reduce"), init, body);
        let next = reduced
            .clone()
            .flat_map(one("next"), |r: Reduced<B::Model>| match r {
                Reduced::Loop(message) => Some(message),
                Reduced::Result(_) => None,
            });
        // A round model counts at the epoch it was sent at (the instances' checkpointed
        // state waits for it), so the loop needs no in-flight keeper.
        loopback.connect_counted_at_send(next);
        reduced.flat_map(one("result"), |r: Reduced<B::Model>| match r {
            Reduced::Result(model) => Some(model),
            Reduced::Loop(_) => None,
        })
    }

    /// The caching operator: this stream into the cache, round models (broadcast) in,
    /// `(round, partial)` out.
    fn iterate_partials<B: IterationBody<Record = T>>(
        self,
        op: Op,
        models: DataStream<'s, RoundMessage<B::Model>>,
        body: B,
    ) -> DataStream<'s, (u64, B::Partial)> {
        let ctx = Rc::clone(&self.ctx);
        let main_edge = self.edge_to(&op);
        let handle = ctx.add_operator(
            &op,
            "iterate",
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
        let budget = managed_cache_budget(&ctx.config);
        let instance = Rc::new(RefCell::new(CachingInstance::new(
            body, fail, position, budget,
        )));
        let applied = match handle.instance {
            Some(i) => SavedCache::attach(&ctx, &handle.name, (i, position.1), &instance),
            None => {
                ctx.state.claim(&handle.name);
                None
            }
        };
        let here = handle.instance.is_some();
        let (gate, scope) = (Rc::clone(&ctx.gate), ctx.scope);
        let out = main.binary_frontier::<_, VecBuilder<(u64, B::Partial)>, _, _, _, _>(
            models,
            Pipeline,
            Pipeline,
            &handle.name,
            move |cap, info| {
                if here {
                    instance.borrow_mut().cap = Some(cap);
                    if applied.is_some() {
                        gate.wake_on_open(scope.activator_for(Rc::clone(&info.address)));
                    }
                }
                move |(data, data_frontier), (models, models_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    let mut instance = instance.borrow_mut();
                    data.for_each(|_cap, records| {
                        metrics.add_in(records.len());
                        instance.cache_all(std::mem::take(records));
                    });
                    // Stays at the records' last epoch once they end, until the rounds end.
                    follow(&mut instance.cap, least(data_frontier));
                    models.for_each(|_cap, messages| {
                        messages.drain(..).for_each(|m| instance.receive(m));
                    });
                    // Rounds run once the cache is complete.
                    if data_frontier.is_empty() {
                        if let Some((partial, cap)) = instance.answer(|t| gate.allows_output_at(t))
                        {
                            output.session(&cap).give(partial);
                            metrics.add_out(1);
                        }
                    }
                    if let Some(cell) = &applied {
                        // A round model sent at `e` arrives at `e + 1` and counts as `e`'s.
                        let sent_below = least(models_frontier).map(|e| e.saturating_sub(1));
                        let below = [least(data_frontier), sent_below];
                        cell.set(below.into_iter().flatten().min().unwrap_or(Epoch::MAX));
                    }
                }
            },
        );
        DataStream::from_parts(ctx, out, handle.node, handle.placement)
    }
}

impl<'s, P: Data> DataStream<'s, (u64, P)> {
    /// The reducer: partials of every caching instance and the initial model in, the next
    /// round's model or the result out.
    fn reduce_rounds<B: IterationBody<Partial = P>>(
        self,
        op: Op,
        init: DataStream<'s, B::Model>,
        body: B,
    ) -> DataStream<'s, Reduced<B::Model>> {
        let ctx = Rc::clone(&self.ctx);
        let expected = self.placement.len();
        let (partial_edge, init_edge) = (self.edge_to(&op), init.edge_to(&op));
        let handle = ctx.add_operator(
            &op,
            "iterate-reduce",
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
        let reducer = Rc::new(RefCell::new(ReducingInstance::new(body, expected, fail)));
        let applied = match handle.instance {
            Some(_) => SavedReducer::attach(&ctx, &handle.name, &reducer),
            None => {
                ctx.state.claim(&handle.name);
                // Timely runs every operator on every worker; only the reducer's own works.
                reducer.borrow_mut().done = true;
                None
            }
        };
        let (start, here) = (ctx.start_epoch(), handle.instance.is_some());
        let restored = ctx.state.restored.is_some() && here;
        let out = partials.binary_frontier::<_, VecBuilder<Reduced<B::Model>>, _, _, _, _>(
            init,
            Pipeline,
            Pipeline,
            &handle.name,
            move |mut cap, _info| {
                // A restored reducer tells the instances where the rounds are again; else it
                // answers each round at the epoch of a partial of the round.
                let mut resume = restored.then(|| {
                    cap.downgrade(&start);
                    cap
                });
                move |(partials, partials_frontier), (init, init_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    let mut reducer = reducer.borrow_mut();
                    if let Some(cap) = resume.take() {
                        if let Some(message) = reducer.resumed() {
                            output.session(&cap).give(message);
                        }
                    }
                    init.for_each(|cap, models| {
                        for model in models.drain(..) {
                            if let Some(first) = reducer.initial(model) {
                                output.session(&cap).give(first);
                            }
                        }
                    });
                    partials.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if reducer.cap.is_none() && !reducer.done {
                            reducer.cap = cap.retain_least(0);
                        }
                        reducer.partials.append(data);
                    });
                    let reduced = reducer.reduce_complete_round();
                    if !reduced.is_empty() {
                        if let Some(cap) = reducer.cap.take() {
                            metrics.add_out(reduced.len());
                            output.session(&cap).give_iterator(reduced.into_iter());
                        }
                    }
                    if init_frontier.is_empty() {
                        reducer.init_ended();
                    }
                    if reducer.done {
                        // Finished or failed: the round's capability must not hold the loop.
                        reducer.cap = None;
                    }
                    // While the round waits for partials, its capability does not hold the
                    // result (and so checkpoints) behind the partials' frontier.
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

/// One caching instance of an iteration.
struct CachingInstance<B: IterationBody, E> {
    /// Follows the records' frontier while they arrive (for a round-0 model that comes
    /// before the cache is complete: holding the model's own epoch instead would stop the
    /// epochs of the job, and the sources' flow control, until the cache is complete), then
    /// stays at their last epoch until the rounds end: every partial goes out with it, so
    /// the rounds do not run ahead of the records' epochs.
    cap: Option<Capability<Epoch>>,
    body: B,
    cache: DataCache<B::Cached>,
    /// A round's model not answered yet.
    waiting: Option<(u64, B::Model)>,
    fail: E,
    failed: bool,
    instance: usize,
    instances: usize,
}

impl<B: IterationBody, E: Fn(String)> CachingInstance<B, E> {
    fn new(body: B, fail: E, (instance, instances): (usize, usize), budget: usize) -> Self {
        CachingInstance {
            instance,
            instances,
            cap: None,
            body,
            cache: DataCache::new(budget, B::weigh),
            waiting: None,
            fail,
            failed: false,
        }
    }

    fn cache_all(&mut self, records: Vec<B::Record>) {
        if self.failed {
            return;
        }
        for record in records {
            let kept = self.body.cache(record).and_then(|kept| match kept {
                Some(item) => self.cache.push(item).map_err(|e| e.to_string()),
                None => Ok(()),
            });
            if let Err(message) = kept {
                self.give_up(message);
                return;
            }
        }
    }

    fn receive(&mut self, message: RoundMessage<B::Model>) {
        match message {
            RoundMessage::Model { round, model } => {
                if self.waiting.is_some() {
                    self.give_up(format!("the model of round {round} came before a partial"));
                }
                self.waiting = Some((round, model));
            }
            RoundMessage::Finished => self.finish(),
        }
    }

    /// The partial of the round whose model waits (once everything is cached) if
    /// `may_send` allows the epoch of the capability it goes out with.
    #[allow(clippy::type_complexity)]
    fn answer(
        &mut self,
        may_send: impl Fn(Epoch) -> bool,
    ) -> Option<((u64, B::Partial), Capability<Epoch>)> {
        if self.failed || self.waiting.is_none() {
            return None;
        }
        let cap = self.cap.as_ref().filter(|c| may_send(*c.time()))?.clone();
        let (round, model) = self.waiting.take()?;
        let round = Round {
            number: round,
            instance: self.instance,
            instances: self.instances,
        };
        match self.body.partial(round, &model, &mut self.cache) {
            Ok(partial) => Some(((round.number, partial), cap)),
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    /// No more rounds: the cache and the capability go.
    fn finish(&mut self) {
        self.waiting = None;
        self.cap = None;
        if !self.cache.is_empty() {
            // Dropping the records frees them (and the spill file).
            let _ = self.cache.drain(|_| ());
        }
    }

    fn give_up(&mut self, message: String) {
        if !self.failed {
            (self.fail)(message);
        }
        self.failed = true;
        self.finish();
    }
}

/// A caching instance as checkpoints see it: its cached items, as splits that any instance
/// can take over (a restore may change the parallelism). Checkpoints are taken only while
/// the records arrive or once the rounds are over (a round holds them back until the end):
/// the rounds' state is never saved, and a restored reducer sends the round model again.
struct SavedCache<B: IterationBody, E>(Rc<RefCell<CachingInstance<B, E>>>);

impl<B: IterationBody, E: Fn(String) + 'static> SavedCache<B, E> {
    /// Restores instance `instance` of `instances` of `operator` from the job's checkpoint
    /// and registers it for the next ones; returns the cell it sets to the epoch below which
    /// it has everything.
    fn attach(
        ctx: &JobContext<'_>,
        operator: &str,
        (instance, instances): (usize, usize),
        state: &Rc<RefCell<CachingInstance<B, E>>>,
    ) -> Option<Rc<Cell<Epoch>>> {
        let restored = ctx.state.restored.as_ref();
        if let Some(splits) = restored.and_then(|r| r.splits(operator, instance, instances)) {
            let mut state = state.borrow_mut();
            for split in splits {
                let item = decode_part::<B::Cached>(&split).map_err(|e| e.to_string());
                let pushed = item.and_then(|i| state.cache.push(i).map_err(|e| e.to_string()));
                if let Err(e) = pushed {
                    ctx.fail_build(WeirError::Checkpoint(format!(
                        "cannot restore what `{operator}` cached: {e}"
                    )));
                    break;
                }
            }
        }
        let saved = Rc::new(SavedCache(Rc::clone(state)));
        ctx.state.register_if_enabled(operator, instance, saved)
    }
}

impl<B: IterationBody, E: Fn(String) + 'static> Checkpointed for SavedCache<B, E> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let mut splits = Vec::new();
        let mut failed = None;
        self.0
            .borrow_mut()
            .cache
            .for_each_ref(|item| match encode_part(item) {
                Ok(bytes) => splits.push(bytes),
                Err(e) => failed = Some(e),
            })
            .map_err(|e| StateError::Encode(e.to_string()))?;
        match failed {
            Some(e) => Err(e),
            None => Ok(StatePart::Splits(splits)),
        }
    }
}

/// The reducing instance of an iteration.
struct ReducingInstance<B: IterationBody, E> {
    /// The capability of the first partial of the current round.
    cap: Option<Capability<Epoch>>,
    body: B,
    /// Partials per round: one from each caching instance.
    expected: usize,
    /// The current round and its model.
    model: Option<(u64, B::Model)>,
    partials: Vec<(u64, B::Partial)>,
    done: bool,
    fail: E,
}

impl<B: IterationBody, E: Fn(String)> ReducingInstance<B, E> {
    fn new(body: B, expected: usize, fail: E) -> Self {
        ReducingInstance {
            cap: None,
            body,
            expected,
            model: None,
            partials: Vec::new(),
            done: false,
            fail,
        }
    }

    /// The initial model: the model of round 0, for the instances.
    fn initial(&mut self, model: B::Model) -> Option<Reduced<B::Model>> {
        if self.model.is_some() || self.done {
            self.give_up("the initial model has more than one record".into());
            return None;
        }
        self.model = Some((0, model.clone()));
        Some(Reduced::Loop(RoundMessage::Model { round: 0, model }))
    }

    /// After a restore: the instances' restored state has no round model (they get it
    /// again), so the current round's model, or the end, goes round the loop again.
    fn resumed(&self) -> Option<Reduced<B::Model>> {
        if self.done {
            return Some(Reduced::Loop(RoundMessage::Finished));
        }
        let (round, model) = self.model.clone()?;
        Some(Reduced::Loop(RoundMessage::Model { round, model }))
    }

    /// The output of the current round, once every instance's partial is in.
    fn reduce_complete_round(&mut self) -> Vec<Reduced<B::Model>> {
        let Some((round, _)) = self.model.as_ref() else {
            return Vec::new();
        };
        let round = *round;
        if self.done || self.partials.len() < self.expected {
            return Vec::new();
        }
        if let Some((other, _)) = self.partials.iter().find(|(r, _)| *r != round) {
            let message = format!("a partial of round {other} arrived in round {round}");
            self.give_up(message);
            return Vec::new();
        }
        let mut partials = std::mem::take(&mut self.partials)
            .into_iter()
            .map(|(_, p)| p);
        let mut total = partials.next().expect("at least one partial");
        partials.for_each(|p| self.body.merge(&mut total, p));
        let (_, model) = self.model.take().expect("checked above");
        match self.body.update(round, model, total) {
            Ok(Step::Continue(model)) => {
                self.model = Some((round + 1, model.clone()));
                vec![Reduced::Loop(RoundMessage::Model {
                    round: round + 1,
                    model,
                })]
            }
            Ok(Step::Finish(model)) => {
                self.done = true;
                vec![
                    Reduced::Loop(RoundMessage::Finished),
                    Reduced::Result(model),
                ]
            }
            Err(message) => {
                self.give_up(message);
                vec![Reduced::Loop(RoundMessage::Finished)]
            }
        }
    }

    /// The initial model's input ended: without an initial model, the job fails.
    fn init_ended(&mut self) {
        if !self.done && self.model.is_none() {
            self.give_up("no initial model (was the input empty?)".into());
        }
    }

    fn give_up(&mut self, message: String) {
        if !self.done {
            (self.fail)(message);
        }
        self.done = true;
    }
}

/// The reducer as checkpoints see it: its round, model and partials, and whether it is
/// done (one instance).
struct SavedReducer<B: IterationBody, E>(Rc<RefCell<ReducingInstance<B, E>>>);

/// What a checkpoint saves of the reducer.
#[derive(Serialize, Deserialize)]
struct ReducerPart<M, P> {
    model: Option<(u64, M)>,
    partials: Vec<(u64, P)>,
    done: bool,
}

impl<B: IterationBody, E: Fn(String) + 'static> SavedReducer<B, E> {
    /// Restores the reducer `operator` from the job's checkpoint and registers it for the
    /// next ones; returns the cell it sets to the epoch below which it has everything.
    fn attach(
        ctx: &JobContext<'_>,
        operator: &str,
        state: &Rc<RefCell<ReducingInstance<B, E>>>,
    ) -> Option<Rc<Cell<Epoch>>> {
        let restored = ctx.state.restored.as_ref();
        if let Some(split) = restored.and_then(|r| r.splits(operator, 0, 1)?.pop()) {
            match decode_part::<ReducerPart<B::Model, B::Partial>>(&split) {
                Ok(part) => {
                    let mut state = state.borrow_mut();
                    state.model = part.model;
                    state.partials = part.partials;
                    state.done = part.done;
                }
                Err(e) => ctx.fail_build(WeirError::Checkpoint(format!(
                    "cannot restore the state of `{operator}`: {e}"
                ))),
            }
        }
        let saved = Rc::new(SavedReducer(Rc::clone(state)));
        ctx.state.register_if_enabled(operator, 0, saved)
    }
}

impl<B: IterationBody, E: Fn(String) + 'static> Checkpointed for SavedReducer<B, E> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let reducer = self.0.borrow();
        let part = ReducerPart {
            model: reducer.model.clone(),
            partials: reducer.partials.clone(),
            done: reducer.done,
        };
        Ok(StatePart::Splits(vec![encode_part(&part)?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{execute, Collector, Config};

    /// Gradient descent on `sum (x - m)^2`: each round moves the model halfway to the mean,
    /// for a fixed number of rounds; fails on demand at a round.
    #[derive(Clone)]
    struct HalfwayToMean {
        rounds: u64,
        fail_at: Option<u64>,
    }

    impl IterationBody for HalfwayToMean {
        type Record = u64;
        type Cached = Vec<f64>;
        type Model = f64;
        type Partial = (f64, u64);

        fn cache(&mut self, x: u64) -> Result<Option<Vec<f64>>, String> {
            Ok(Some(vec![x as f64]))
        }

        fn weigh(v: &Vec<f64>) -> usize {
            8 * v.len()
        }

        fn partial(
            &mut self,
            round: Round,
            m: &f64,
            data: &mut DataCache<Vec<f64>>,
        ) -> Result<(f64, u64), String> {
            if self.fail_at == Some(round.number) {
                return Err(format!("round {} failed", round.number));
            }
            let mut acc = (0.0, 0);
            data.for_each_ref(|v| {
                acc.0 += v[0] - m;
                acc.1 += 1;
            })
            .map_err(|e| e.to_string())?;
            Ok(acc)
        }

        fn merge(&mut self, total: &mut (f64, u64), other: (f64, u64)) {
            total.0 += other.0;
            total.1 += other.1;
        }

        fn update(
            &mut self,
            round: u64,
            m: f64,
            (sum, n): (f64, u64),
        ) -> Result<Step<f64>, String> {
            let next = m + 0.5 * sum / n as f64;
            Ok(if round + 1 == self.rounds {
                Step::Finish(next)
            } else {
                Step::Continue(next)
            })
        }
    }

    /// The same rounds as a plain loop.
    fn sequential(data: &[u64], rounds: u64) -> f64 {
        let mean = data.iter().sum::<u64>() as f64 / data.len() as f64;
        let mut m = 0.0;
        for _ in 0..rounds {
            m += 0.5 * (mean - m);
        }
        m
    }

    fn run(
        workers: usize,
        parallelism: Option<usize>,
        body: HalfwayToMean,
    ) -> crate::Result<Vec<f64>> {
        let out = Collector::new();
        let sink = out.clone();
        execute(Config::threads(workers), move |job| {
            let data = job.from_vec("data", (1..=1000u64).collect());
            let init = job.from_vec("init", vec![0.0]);
            let mut config = op("fit");
            if let Some(p) = parallelism {
                config = config.parallelism(p);
            }
            data.iterate_bounded(config, init, body.clone())
                .collect("out", &sink);
            Ok(())
        })?;
        Ok(out.take())
    }

    #[test]
    fn rounds_match_a_plain_loop_at_any_parallelism() {
        let data: Vec<u64> = (1..=1000).collect();
        let expected = sequential(&data, 12);
        for (workers, parallelism) in [(1, None), (2, None), (3, None), (3, Some(2)), (2, Some(1))]
        {
            let body = HalfwayToMean {
                rounds: 12,
                fail_at: None,
            };
            let got = run(workers, parallelism, body).unwrap();
            assert_eq!(got.len(), 1, "{workers} workers");
            assert!(
                (got[0] - expected).abs() < 1e-9,
                "{workers}/{parallelism:?}: {got:?} vs {expected}"
            );
        }
    }

    #[test]
    fn a_failing_round_fails_the_job_naming_the_operator() {
        let body = HalfwayToMean {
            rounds: 12,
            fail_at: Some(3),
        };
        let error = run(2, None, body).unwrap_err().to_string();
        assert!(
            error.contains("fit") && error.contains("round 3 failed"),
            "{error}"
        );
    }

    #[test]
    fn an_empty_initial_model_fails_the_job() {
        let error = execute(Config::threads(2), |job| {
            let data = job.from_vec("data", (1..=10u64).collect());
            let init = job.from_vec("init", Vec::<f64>::new());
            let body = HalfwayToMean {
                rounds: 2,
                fail_at: None,
            };
            data.iterate_bounded("fit", init, body)
                .collect("out", &Collector::new());
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("no initial model"), "{error}");
    }
}
