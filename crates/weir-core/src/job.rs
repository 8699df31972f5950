//! The job under construction: the timely scope of one worker, the plan, metrics, the
//! sinks' frontier (flow control) and the dead-letter registry.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::sinks::sink_frontier::SinkFrontier;
use timely::dataflow::operators::core::Concatenate;
use timely::dataflow::{Scope, Stream};

use crate::config::{Config, EpochPolicy};
use crate::dead_letter::DeadLetter;
use crate::error::WeirError;
use crate::plan::{NodeId, Partitioning, Plan, PlanEdge, PlanNode};
use crate::report::OperatorMetrics;
use crate::stream::DataStream;

/// Timestamps of Weir dataflows: epochs.
pub type Epoch = u64;

/// Name and options of an operator: `"name".into()` or [`op`]`("name").parallelism(2)`.
#[derive(Clone, Debug)]
pub struct Op {
    pub(crate) name: String,
    pub(crate) parallelism: Option<usize>,
    pub(crate) epochs: Option<EpochPolicy>,
    pub(crate) rate: Option<f64>,
    pub(crate) overwrite: Option<bool>,
    pub(crate) kind: Option<String>,
    /// Placed from worker 0 (see [`crate::plan::Plan::placement_for`]).
    pub(crate) first: bool,
}

/// Starts an operator configuration with the given name.
///
/// ```
/// use weir_core::op;
/// let o = op("parse").parallelism(2);
/// assert_eq!(o.name(), "parse");
/// ```
pub fn op(name: impl Into<String>) -> Op {
    Op {
        name: name.into(),
        parallelism: None,
        epochs: None,
        rate: None,
        overwrite: None,
        kind: None,
        first: false,
    }
}

impl Op {
    /// Number of instances (1..=workers). Default: all workers.
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = Some(parallelism);
        self
    }
    /// For sources: how records are cut into epochs (default: the job's [`Config::epochs`]).
    pub fn epochs(mut self, epochs: EpochPolicy) -> Self {
        self.epochs = Some(epochs);
        self
    }
    /// For sources: total records per second over all instances. A slow source's record-count
    /// epochs close at the latency bound ([`Config::epoch_max_delay`]); for regular epochs use
    /// [`EpochPolicy::Interval`].
    /// `f64::INFINITY` means no limit; 0, a negative rate or NaN fails the job's build.
    pub fn rate(mut self, records_per_second: f64) -> Self {
        self.rate = Some(records_per_second);
        self
    }
    /// For `write_jsonl` / `write_csv`: whether this sink may replace what its output
    /// directory holds (default: the job's [`Config::overwrite`]).
    ///
    /// ```
    /// use weir_core::op;
    /// let o = op("write").overwrite(true);
    /// assert_eq!(o.name(), "write");
    /// ```
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = Some(overwrite);
        self
    }
    /// The kind the plan and the job report show for the operator, instead of the operator
    /// family it is built on: an operator made of another says what it is (the ONNX predict
    /// operator is a `map_batch_with_broadcast` whose kind reads `predict`).
    ///
    /// ```
    /// use weir_core::{execute, op, Config};
    /// let report = execute(Config::threads(1), |job| {
    ///     job.from_vec("numbers", vec![1u64, 2])
    ///         .map(op("double").kind("doubler"), |x| x * 2)
    ///         .for_each("drop", |_| {});
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(report.operator("double").unwrap().kind, "doubler");
    /// ```
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }
    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<&str> for Op {
    fn from(name: &str) -> Self {
        op(name)
    }
}

impl From<String> for Op {
    fn from(name: String) -> Self {
        op(name)
    }
}

/// An operator registered in the plan, as seen from one worker.
#[derive(Clone)]
pub(crate) struct OpHandle {
    pub(crate) node: NodeId,
    pub(crate) name: String,
    pub(crate) placement: Rc<[usize]>,
    pub(crate) metrics: Rc<OperatorMetrics>,
    /// Position of this worker among the instances, if it hosts one.
    pub(crate) instance: Option<usize>,
}

/// A source's dead-letter output: the stream, the source node and its placement.
pub(crate) type DeadLetterOutput<'s> = (Stream<'s, Epoch, Vec<DeadLetter>>, NodeId, Rc<[usize]>);

/// Shared state of the job on one worker.
pub(crate) struct JobContext<'s> {
    pub(crate) scope: Scope<'s, Epoch>,
    pub(crate) config: Arc<Config>,
    /// Total workers the plan is built for.
    pub(crate) workers: usize,
    /// This worker's global index.
    pub(crate) index: usize,
    pub(crate) plan: RefCell<Plan>,
    pub(crate) metrics: RefCell<Vec<(NodeId, Rc<OperatorMetrics>)>>,
    /// Frontier of all sinks: drives flow control in sources.
    pub(crate) sink_frontier: SinkFrontier,
    /// Activators of this worker's source instances: woken when the sinks' frontier advances, so a
    /// source held back by flow control resumes at once.
    pub(crate) source_activators: RefCell<Vec<timely::scheduling::Activator>>,
    /// Dead-letter outputs of the sources: stream, source node, source placement.
    pub(crate) dead_letters: RefCell<Vec<DeadLetterOutput<'s>>>,
    pub(crate) dead_letters_claimed: Cell<bool>,
    pub(crate) first_file_sink: RefCell<Option<PathBuf>>,
    /// The paths every file sink of the job writes (a directory or a file): another sink's
    /// output directory may hold them, and they are not output of an earlier run there.
    pub(crate) sink_paths: Rc<RefCell<Vec<PathBuf>>>,
    /// First error raised inside an operator (fail-fast, I/O); stops the job.
    pub(crate) failure: Rc<RefCell<Option<WeirError>>>,
    /// First error found while building the graph; reported before running.
    pub(crate) build_error: RefCell<Option<WeirError>>,
    /// Records read by the sources of this process (progress display).
    pub(crate) progress: Arc<AtomicU64>,
    /// The operators' checkpointed state on this worker, and what a restore brings.
    pub(crate) state: Rc<crate::state::registry::StateRegistry>,
    /// What the sources of this worker may emit (checkpoints hold them at epoch boundaries).
    pub(crate) gate: Rc<crate::state::gate::SourceGate>,
}

impl<'s> JobContext<'s> {
    /// Registers an operator and its input edges; records a build error (and falls back to
    /// all workers) if the parallelism is impossible or the name is taken.
    pub(crate) fn add_operator(
        &self,
        op: &Op,
        kind: &str,
        inputs: &[(NodeId, Partitioning)],
    ) -> OpHandle {
        let mut plan = self.plan.borrow_mut();
        let parallelism = self.parallelism(op);
        match op.parallelism {
            Some(0) => self.fail_build(WeirError::Build {
                operator: op.name.clone(),
                message: "parallelism must be at least 1".into(),
            }),
            Some(requested) if requested > self.workers => {
                self.fail_build(WeirError::Parallelism {
                    operator: op.name.clone(),
                    requested,
                    available: self.workers,
                })
            }
            _ => {}
        }
        if op.name.is_empty() {
            self.fail_build(WeirError::Build {
                operator: kind.to_string(),
                message: "operator names must not be empty".into(),
            });
        }
        if plan.nodes.iter().any(|n| n.name == op.name) {
            self.fail_build(WeirError::Build {
                operator: op.name.clone(),
                message: "another operator already has this name; names must be unique".into(),
            });
        }
        let inputs_nodes: Vec<NodeId> = inputs.iter().map(|&(from, _)| from).collect();
        let placement = self.place(&plan, op, parallelism, &inputs_nodes);
        let node = plan.nodes.len();
        plan.nodes.push(PlanNode {
            id: node,
            name: op.name.clone(),
            kind: op.kind.as_deref().unwrap_or(kind).to_string(),
            parallelism,
            placement: placement.clone(),
        });
        for &(from, partitioning) in inputs {
            plan.edges.push(PlanEdge {
                from,
                to: node,
                partitioning,
            });
        }
        let metrics = Rc::new(OperatorMetrics::default());
        self.metrics.borrow_mut().push((node, Rc::clone(&metrics)));
        let instance = placement.iter().position(|&w| w == self.index);
        OpHandle {
            node,
            name: op.name.clone(),
            placement: placement.into(),
            metrics,
            instance,
        }
    }

    /// Registers an operator that merges its inputs where they are (no routing): its
    /// instances are the union of the inputs' workers.
    pub(crate) fn add_merge(
        &self,
        op: Op,
        kind: &str,
        inputs: &[(NodeId, &[usize])],
    ) -> (NodeId, Rc<[usize]>) {
        let mut placement: Vec<usize> =
            inputs.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        placement.sort_unstable();
        placement.dedup();
        if placement.is_empty() {
            placement.push(0);
        }
        let edges: Vec<_> = inputs
            .iter()
            .map(|(node, _)| (*node, Partitioning::Forward))
            .collect();
        let handle = self.add_operator(&op.parallelism(placement.len()), kind, &edges);
        self.plan.borrow_mut().nodes[handle.node].placement = placement.clone();
        (handle.node, placement.into())
    }

    /// The parallelism an operator gets: as asked when possible, else all workers (and
    /// `add_operator` records the build error).
    /// Where operator `op`, fed by `inputs`, runs (see [`Plan::placement_for`]).
    pub(crate) fn placement_for(&self, op: &Op, inputs: &[NodeId]) -> Vec<usize> {
        let plan = self.plan.borrow();
        self.place(&plan, op, self.parallelism(op), inputs)
    }

    fn place(&self, plan: &Plan, op: &Op, parallelism: usize, inputs: &[NodeId]) -> Vec<usize> {
        let chained = inputs
            .iter()
            .filter_map(|&n| plan.nodes.get(n))
            .find(|n| n.placement.len() == parallelism)
            .map(|n| n.placement.as_slice());
        plan.placement_for(
            parallelism,
            self.config.threads_per_process(),
            chained,
            op.first,
        )
    }

    pub(crate) fn parallelism(&self, op: &Op) -> usize {
        match op.parallelism {
            Some(p) if (1..=self.workers).contains(&p) => p,
            _ => self.workers,
        }
    }

    pub(crate) fn fail_build(&self, error: WeirError) {
        let mut slot = self.build_error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// Records a runtime failure; the worker loop stops the job with it.
    pub(crate) fn fail(failure: &RefCell<Option<WeirError>>, error: WeirError) {
        let mut slot = failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// Records a build error when the job checkpoints: operator `name` (of `kind`) keeps
    /// state that checkpoints do not cover yet.
    pub(crate) fn refuse_checkpoints(&self, name: &str, kind: &str) {
        if self.state.enabled {
            self.fail_build(WeirError::Build {
                operator: name.to_string(),
                message: format!(
                    "{kind} does not take part in checkpoints yet; run this job without \
                     --checkpoint-dir (see docs/state-and-checkpoints.md)"
                ),
            });
        }
    }

    /// The first epoch of the job: after a restore, the one after the checkpoint's.
    pub(crate) fn start_epoch(&self) -> Epoch {
        self.state
            .restored
            .as_ref()
            .map_or(0, |r| r.epoch().saturating_add(1))
    }

    pub(crate) fn epochs(&self, op: &Op) -> EpochPolicy {
        op.epochs.unwrap_or(self.config.epochs)
    }
}

/// The job being built on one worker; passed to the closure given to [`crate::execute`].
///
/// The closure runs on every worker and must build the same graph on each (it is a plain
/// function of the configuration, like a Flink `main`).
pub struct Job<'s> {
    pub(crate) ctx: Rc<JobContext<'s>>,
}

impl<'s> Job<'s> {
    /// The job configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Total timely workers of the job.
    pub fn workers(&self) -> usize {
        self.ctx.workers
    }

    /// This worker's global index.
    pub fn worker_index(&self) -> usize {
        self.ctx.index
    }

    /// Arguments left over after Weir's and timely's flags.
    pub fn program_args(&self) -> &[String] {
        &self.ctx.config.program_args
    }

    /// `base` if no operator is named `base` (or `base.…`) yet, else `base#2`, `base#3`, …:
    /// names for operators that library code adds (a stage used twice in one job). Every
    /// worker builds the same graph, so every worker gets the same names.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// execute(Config::threads(1), |job| {
    ///     let name = job.unique_name("scale");
    ///     assert_eq!(name, "scale");
    ///     job.from_vec(name, vec![1u64]).for_each("drop", |_| {});
    ///     assert_eq!(job.unique_name("scale"), "scale#2");
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn unique_name(&self, base: &str) -> String {
        let plan = self.ctx.plan.borrow();
        let taken = |name: &str| {
            plan.nodes.iter().any(|n| {
                n.name == name
                    || n.name
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
        };
        if !taken(base) {
            return base.to_string();
        }
        (2..)
            .map(|i| format!("{base}#{i}"))
            .find(|name| !taken(name))
            .expect("an unused name")
    }

    /// The plan as built so far.
    pub fn plan(&self) -> Plan {
        self.ctx.plan.borrow().clone()
    }

    /// All dead letters of the job's sources, as one stream the program can sink. Call it
    /// once, after building every file source (a source built later is a build error). Once
    /// claimed, the job does not write its default dead-letter file.
    pub fn dead_letters(&self, op: impl Into<Op>) -> DataStream<'s, DeadLetter> {
        self.ctx.dead_letters_claimed.set(true);
        let sources = self.ctx.dead_letters.borrow().clone();
        let inputs: Vec<(NodeId, &[usize])> =
            sources.iter().map(|(_, node, p)| (*node, &p[..])).collect();
        let (node, placement) = self.ctx.add_merge(op.into(), "dead-letters", &inputs);
        let stream = self
            .ctx
            .scope
            .concatenate(sources.iter().map(|(s, _, _)| s.clone()));
        DataStream::from_parts(Rc::clone(&self.ctx), stream, node, placement)
    }
}
