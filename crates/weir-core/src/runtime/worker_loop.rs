//! One worker's run of a job: build the graph, step it until it is done while watching for
//! failures (here, in other workers, in other processes), take part in checkpoints, and
//! gather the job report.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Inspect;
use timely::dataflow::operators::ToStream;
use timely::scheduling::Activator;
use timely::worker::Worker;

use crate::error::{Result, WeirError};
use crate::job::{Epoch, Job};
use crate::report::{JobReport, NodeCounters, OperatorMetrics};
use crate::runtime::checkpointing::Checkpointer;
use crate::runtime::control::Control;
use crate::runtime::execute::{build_job, failed_peer, BuiltJob, Shared, COMMUNICATION_FAILED};
use crate::state::gate::{GateMode, SourceGate};
use crate::state::registry::StateRegistry;

/// How long an idle worker parks before re-checking for failures elsewhere.
const PARK: Duration = Duration::from_millis(20);
/// How often workers publish live metrics (when [`crate::Config::live_metrics`] is set).
const LIVE_METRICS_EVERY: Duration = Duration::from_millis(250);

/// What a worker checks between two steps: its own failures, other workers' and other
/// processes', and silent peers.
struct Watch<'a, F> {
    shared: &'a Shared<F>,
    index: usize,
    failure: Rc<RefCell<Option<WeirError>>>,
}

impl<F> Watch<'_, F> {
    fn check(&self, control: &mut Control) -> Result<()> {
        let (config, index) = (&self.shared.config, self.index);
        control.tick(index);
        if let Some(e) = self.failure.borrow_mut().take() {
            return Err(e);
        }
        if let Some(cause) = control.remote_failure().borrow().clone() {
            return Err(WeirError::Aborted {
                worker: index,
                cause,
            });
        }
        if self.shared.abort.load(Ordering::SeqCst) {
            return Err(WeirError::Aborted {
                worker: index,
                cause: "another worker of this process failed".into(),
            });
        }
        let (timeout, first) = (config.peer_timeout, config.connect_timeout);
        let own = config.process_index();
        if let Some(peers) = &self.shared.peers {
            control.note_heartbeats(|process| peers.heard(process));
        }
        if let Some((process, silent, limit)) = control.silent_process(own, timeout, first) {
            // Its connection is shut down, so that timely's threads for it end too.
            if let Some(peers) = &self.shared.peers {
                peers.cut_off(process);
            }
            return Err(WeirError::PeerStalled {
                process,
                address: config.address(process).unwrap_or_default(),
                silent,
                timeout: limit,
            });
        }
        if COMMUNICATION_FAILED.load(Ordering::SeqCst) {
            return Err(WeirError::Communication(format!(
                "worker {index}: lost the connection to {} (did it fail?)",
                failed_peer(config)
            )));
        }
        Ok(())
    }
}

/// One step of the worker, with the checks and the checkpoint protocol around it.
fn step<F>(
    worker: &mut Worker,
    watch: &Watch<'_, F>,
    control: &mut Control,
    checkpointer: &mut Option<Checkpointer>,
) -> Result<()> {
    watch.check(control)?;
    if let Some(c) = checkpointer.as_mut() {
        c.tick(control)?;
    }
    worker.step_or_park(Some(PARK));
    Ok(())
}

/// The state registry and the source gate of a worker of this job.
fn state_of<F>(shared: &Shared<F>) -> (Rc<StateRegistry>, Rc<SourceGate>) {
    let enabled = shared.config.checkpoint.is_some();
    let registry = Rc::new(StateRegistry {
        enabled,
        restored: shared.restored.clone(),
        ..StateRegistry::default()
    });
    // A checkpointed job starts when every worker has prepared.
    let gate = Rc::new(SourceGate::new(if enabled {
        GateMode::Closed
    } else {
        GateMode::Open
    }));
    (registry, gate)
}

/// Runs the job on one worker.
pub(crate) fn run_worker<F>(
    worker: &mut Worker,
    shared: &Shared<F>,
    names: &Rc<RefCell<Vec<String>>>,
    control: &mut Control,
) -> Result<JobReport>
where
    F: for<'s> Fn(&mut Job<'s>) -> Result<()>,
{
    let config = &shared.config;
    let (index, workers) = (worker.index(), worker.peers());
    if workers != config.total_workers() {
        return Err(WeirError::Config(format!(
            "timely started {workers} workers but the configuration says {}",
            config.total_workers()
        )));
    }
    let (registry, gate) = state_of(shared);
    let main_dataflow = worker.next_dataflow_index();
    let mut built = worker.dataflow::<Epoch, _, _>(|scope| {
        build_job(
            scope,
            Arc::clone(config),
            (workers, index),
            Arc::clone(&shared.progress),
            &shared.build,
            (Rc::clone(&registry), Rc::clone(&gate)),
        )
    });
    *names.borrow_mut() = built.plan.nodes.iter().map(|n| n.name.clone()).collect();
    shared.whereabouts.name_operators(|| names.borrow().clone());
    std::mem::replace(&mut built.result, Ok(()))?;
    check_restored_state(&registry, config.checkpoint.as_ref())?;
    let watch = Watch {
        shared,
        index,
        failure: Rc::clone(&built.failure),
    };
    let sources_gate = Rc::clone(&gate);
    let mut checkpointer = match &config.checkpoint {
        Some(c) => {
            let mut cp = Checkpointer::new(
                c.clone(),
                index,
                workers,
                registry.clone(),
                gate,
                built.sources.clone(),
                config.live_metrics.clone(),
            )?;
            cp.start(control)?;
            Some(cp)
        }
        None => None,
    };
    let started = Instant::now();
    if registry.restored.as_ref().is_some_and(|r| r.is_final()) {
        // The job completed before; its sinks made the last output visible in `start`.
        worker.drop_dataflow(main_dataflow);
    }
    run_main(
        worker,
        &watch,
        control,
        &mut checkpointer,
        (&built, &sources_gate),
        main_dataflow,
        names,
    )?;
    // The final manifest makes what the sinks wrote after the last checkpoint visible.
    if let Some(cp) = checkpointer.as_mut() {
        cp.finish();
    }
    while checkpointer.as_ref().is_some_and(|c| !c.done()) {
        step(worker, &watch, control, &mut checkpointer)?;
    }
    let elapsed = started.elapsed();
    let mut report = gather_report(worker, &watch, control, &built, elapsed)?;
    if let Some(cp) = &checkpointer {
        report.checkpoints = cp.stats().to_vec();
    }
    Ok(report)
}

/// Steps the job's dataflow until it is done, publishing live metrics and waking the
/// sources held back by flow control when the sinks move on.
fn run_main<F>(
    worker: &mut Worker,
    watch: &Watch<'_, F>,
    control: &mut Control,
    checkpointer: &mut Option<Checkpointer>,
    (built, gate): (&BuiltJob, &SourceGate),
    main_dataflow: usize,
    names: &Rc<RefCell<Vec<String>>>,
) -> Result<()> {
    let config = &watch.shared.config;
    let bar = progress_bar(config.verbose && watch.index == 0);
    let mut sinks_at = None;
    let mut published = Instant::now();
    let mut woken_at = 0;
    while worker.installed_dataflows().contains(&main_dataflow) {
        step(worker, watch, control, checkpointer)?;
        share_source_epochs(control, gate, watch.index, &built.sources, &mut woken_at);
        if published.elapsed() >= LIVE_METRICS_EVERY {
            publish(config, watch.index, names, &built.metrics);
            published = Instant::now();
        }
        let now = built.sink_frontier.first();
        if now != sinks_at {
            sinks_at = now;
            built.sources.iter().for_each(Activator::activate);
        }
        if let Some(bar) = &bar {
            bar.set_position(watch.shared.progress.load(Ordering::Relaxed));
        }
    }
    watch.check(control)?;
    publish(config, watch.index, names, &built.metrics);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Announces how far this worker's sources are and takes in how far the others' are (see
/// `state/gate.rs`). When the leading epoch rose, as another worker announced or while a
/// source here waits for the sinks, the sources are woken: an idle one jumps to it at once.
fn share_source_epochs(
    control: &mut Control,
    gate: &SourceGate,
    index: usize,
    sources: &[Activator],
    woken_at: &mut Epoch,
) {
    let held = gate.take_held();
    control.announce_source_epoch(index, gate.local_leading_epoch(), held);
    let heard = gate.hear(control.announced_source_epoch());
    let lead = gate.leading_epoch();
    if (heard || held) && lead > *woken_at {
        *woken_at = lead;
        sources.iter().for_each(Activator::activate);
    }
}

fn progress_bar(show: bool) -> Option<indicatif::ProgressBar> {
    (show && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed} {human_pos} records read ({per_sec})",
            )
            .expect("valid template"),
        );
        bar
    })
}

/// Publishes this worker's operator counters to the live metrics, if the job has them.
fn publish(
    config: &crate::Config,
    index: usize,
    names: &Rc<RefCell<Vec<String>>>,
    metrics: &[(usize, Rc<OperatorMetrics>)],
) {
    if let Some(live) = &config.live_metrics {
        let names = names.borrow();
        let counters = metrics
            .iter()
            .map(|(node, m)| {
                (
                    names.get(*node).cloned().unwrap_or_default(),
                    m.snapshot().0,
                )
            })
            .collect();
        live.publish(index, counters);
        let watermarks = metrics
            .iter()
            .filter_map(|(node, m)| Some((names.get(*node).cloned()?, m.watermark()?)))
            .collect();
        live.publish_watermarks(index, watermarks);
    }
}

/// Gathers every worker's counters on every worker with a small second dataflow, then
/// closes the control dataflow.
fn gather_report<F>(
    worker: &mut Worker,
    watch: &Watch<'_, F>,
    control: &mut Control,
    built: &BuiltJob,
    elapsed: Duration,
) -> Result<JobReport> {
    let local: Vec<NodeCounters> = built
        .metrics
        .iter()
        .map(|(node, m)| (*node, m.snapshot()))
        .collect();
    let gathered: Rc<RefCell<Vec<NodeCounters>>> = Rc::default();
    let sink = Rc::clone(&gathered);
    let report_dataflow = worker.next_dataflow_index();
    worker.dataflow::<u64, _, _>(move |scope| {
        local
            .to_stream(scope)
            .container::<Vec<_>>()
            .broadcast()
            .inspect(move |x| sink.borrow_mut().push(x.clone()));
    });
    let mut none = None;
    while worker.installed_dataflows().contains(&report_dataflow) {
        step(worker, watch, control, &mut none)?;
    }
    // Done here; the control dataflow ends when every worker has closed it.
    control.close();
    while worker.has_dataflows() {
        watch.check(control)?;
        worker.step_or_park(Some(PARK));
    }
    let parts = gathered.borrow();
    Ok(JobReport::from_parts(built.plan.clone(), &parts, elapsed))
}

/// A restored checkpoint must belong to this job, and all its state must find a home.
fn check_restored_state(
    registry: &StateRegistry,
    checkpoint: Option<&crate::CheckpointConfig>,
) -> Result<()> {
    let (Some(restored), Some(config)) = (&registry.restored, checkpoint) else {
        return Ok(());
    };
    let theirs = restored.operators();
    let ours = registry.claimed.borrow();
    if !theirs.is_empty() && !ours.is_empty() && theirs.is_disjoint(&ours) {
        return Err(WeirError::Checkpoint(format!(
            "{} holds the state of another job (operators {}); this job's stateful operators are {}",
            config.dir.display(),
            theirs.iter().cloned().collect::<Vec<_>>().join(", "),
            ours.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let homeless: Vec<String> = theirs.difference(&ours).cloned().collect();
    if !homeless.is_empty() && !config.allow_non_restored_state {
        return Err(WeirError::Checkpoint(format!(
            "checkpoint {} holds state of operators this job does not have: {} \
             (rename them back, or pass --allow-non-restored-state to drop that state)",
            restored.manifest().id,
            homeless.join(", ")
        )));
    }
    Ok(())
}
