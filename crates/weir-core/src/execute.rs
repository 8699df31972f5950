//! Running a job: one timely worker per thread (and process), the same graph built on each,
//! stepped until every bounded source is exhausted and every sink has seen all its input.

use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::Inspect;
use timely::dataflow::operators::ToStream;
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::config::{Config, ExplainFormat};
use crate::control::Control;
use crate::error::{Result, WeirError};
use crate::job::{Epoch, Job, JobContext, Op};
use crate::plan::Plan;
use crate::report::{JobReport, CURRENT_OPERATOR};

use crate::report::NodeCounters;

/// How long an idle worker parks before re-checking for failures elsewhere.
const PARK: Duration = Duration::from_millis(20);

/// Set when a timely communication thread panics (a peer process died).
static COMMUNICATION_FAILED: AtomicBool = AtomicBool::new(false);

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            if name.starts_with("timely:send") || name.starts_with("timely:recv") {
                COMMUNICATION_FAILED.store(true, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Runs a job and returns its report once all bounded sources are exhausted and all output
/// has been written.
///
/// `build` runs on every worker and must build the same graph on each. A build error (e.g.
/// an impossible parallelism), a failed operator (I/O error, `--fail-fast` on bad input) or a
/// panic in any worker ends the job on all workers and is returned as an error.
///
/// With [`Config::explain`] set, the job graph is printed and nothing runs.
///
/// ```
/// use weir_core::{execute, Config, Collector};
/// let out = Collector::new();
/// let sink = out.clone();
/// let report = execute(Config::threads(2), move |job| {
///     job.from_vec("words", vec!["a", "b", "a"].into_iter().map(String::from).collect())
///         .key_by(|w: &String| w.clone())
///         .count("count")
///         .collect("out", &sink);
///     Ok(())
/// }).unwrap();
/// assert_eq!(out.sorted(), vec![("a".to_string(), 2), ("b".to_string(), 1)]);
/// assert_eq!(report.operator("count").unwrap().records_in, 3);
/// ```
pub fn execute<F>(config: Config, build: F) -> Result<JobReport>
where
    F: for<'s> Fn(&mut Job<'s>) -> Result<()> + Send + Sync + 'static,
{
    if let Some(format) = config.explain {
        let plan = explain(config, build)?;
        match format {
            ExplainFormat::Text => print!("{plan}"),
            ExplainFormat::Json => println!("{}", plan.to_json()),
            ExplainFormat::Dot => print!("{}", plan.to_dot()),
        }
        return Ok(JobReport {
            workers: plan.workers,
            plan,
            ..JobReport::default()
        });
    }
    install_panic_hook();
    COMMUNICATION_FAILED.store(false, Ordering::SeqCst);
    let verbose = config.verbose;
    let first_process = config.process_index() == 0;
    let config = Arc::new(config);
    let abort = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let timely_config = config.timely_config();
    let build = Arc::new(build);
    let guards = timely::execute(timely_config, move |worker| {
        let names: Rc<RefCell<Vec<String>>> = Rc::default();
        let index = worker.index();
        let mut control = Control::install(worker);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_worker(
                worker,
                &config,
                &*build,
                &abort,
                &progress,
                &names,
                &mut control,
            )
        }));
        let result = match outcome {
            Ok(result) => result,
            Err(payload) => Err(WeirError::WorkerPanic {
                worker: index,
                operator: CURRENT_OPERATOR
                    .with(Cell::take)
                    .and_then(|n| names.borrow().get(n).cloned()),
                message: panic_message(&*payload),
            }),
        };
        if let Err(e) = &result {
            abort.store(true, Ordering::SeqCst);
            // Tell the other workers (in all processes), and drop this worker's dataflows:
            // timely steps remaining dataflows to completion after this closure returns,
            // which would wait forever for the failed peers.
            let message = match e {
                WeirError::Aborted { cause, .. } => cause.clone(),
                other => other.to_string(),
            };
            control.announce(worker, index, message);
        }
        result
    })
    .map_err(WeirError::Communication)?;
    let mut report = None;
    let mut error: Option<WeirError> = None;
    // Joining also joins timely's communication threads, and panics if one of them did
    // (a peer process died): that is an error of the job, not of the caller.
    let joined = catch_unwind(AssertUnwindSafe(|| guards.join())).map_err(|payload| {
        WeirError::Communication(format!(
            "lost the connection to another process: {}",
            panic_message(&*payload)
        ))
    })?;
    for joined in joined {
        match joined {
            Ok(Ok(r)) => {
                report.get_or_insert(r);
            }
            Ok(Err(e)) => {
                // Prefer the root cause over "stopped because another worker failed".
                if error.as_ref().is_none_or(|old| {
                    matches!(old, WeirError::Aborted { .. })
                        && !matches!(e, WeirError::Aborted { .. })
                }) {
                    error = Some(e);
                }
            }
            Err(message) => {
                error.get_or_insert(WeirError::WorkerLost(message));
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let report =
        report.ok_or_else(|| WeirError::Communication("no worker returned a report".into()))?;
    if verbose && first_process {
        eprintln!("{report}");
    }
    Ok(report)
}

/// Builds the job graph for `config.total_workers()` workers without running it.
pub fn explain<F>(config: Config, build: F) -> Result<Plan>
where
    F: for<'s> Fn(&mut Job<'s>) -> Result<()> + Send + Sync + 'static,
{
    let workers = config.total_workers();
    let config = Arc::new(config);
    let guards = timely::execute(timely::Config::thread(), move |worker| -> Result<Plan> {
        let index = config.first_worker_index();
        let built = worker.dataflow::<Epoch, _, _>(|scope| {
            build_job(
                scope,
                Arc::clone(&config),
                workers,
                index,
                Arc::new(AtomicU64::new(0)),
                &build,
            )
        });
        let (plan, result) = (built.plan, built.result);
        // Drop the never-run dataflow without stepping it.
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        result.map(|_| plan)
    })
    .map_err(WeirError::Communication)?;
    // A panic in the program's build closure surfaces here.
    guards
        .join()
        .pop()
        .expect("one worker")
        .map_err(|message| WeirError::WorkerPanic {
            worker: 0,
            operator: None,
            message,
        })?
}

/// What building the job on one worker produced.
struct BuiltJob {
    plan: Plan,
    metrics: Vec<(usize, Rc<crate::report::OperatorMetrics>)>,
    failure: Rc<RefCell<Option<WeirError>>>,
    /// The sinks' frontier and the sources to wake when it advances (flow control).
    probe: ProbeHandle<Epoch>,
    sources: Vec<timely::scheduling::Activator>,
    /// The program's result, or the first build error (e.g. an impossible parallelism).
    result: Result<()>,
}

/// Runs the program's `build` closure in `scope` and adds the default dead-letter sink.
fn build_job<'s, F>(
    scope: timely::dataflow::Scope<'s, Epoch>,
    config: Arc<Config>,
    workers: usize,
    index: usize,
    progress: Arc<AtomicU64>,
    build: &F,
) -> BuiltJob
where
    F: for<'a> Fn(&mut Job<'a>) -> Result<()>,
{
    let ctx = new_context(scope, config, workers, index, progress);
    let mut job = Job {
        ctx: Rc::clone(&ctx),
    };
    let result = build(&mut job);
    finalize(&job);
    let build_error = ctx.build_error.borrow_mut().take();
    let plan = ctx.plan.borrow().clone();
    let metrics = ctx.metrics.borrow().clone();
    let sources = ctx.source_activators.borrow().clone();
    BuiltJob {
        plan,
        metrics,
        failure: Rc::clone(&ctx.failure),
        probe: ctx.probe.clone(),
        sources,
        result: result.and_then(|_| build_error.map_or(Ok(()), Err)),
    }
}

fn new_context<'s>(
    scope: timely::dataflow::Scope<'s, Epoch>,
    config: Arc<Config>,
    workers: usize,
    index: usize,
    progress: Arc<AtomicU64>,
) -> Rc<JobContext<'s>> {
    Rc::new(JobContext {
        scope,
        config,
        workers,
        index,
        plan: RefCell::new(Plan {
            workers,
            ..Plan::default()
        }),
        metrics: RefCell::default(),
        probe: ProbeHandle::new(),
        source_activators: RefCell::default(),
        dead_letters: RefCell::default(),
        dead_letters_claimed: Cell::new(false),
        first_file_sink: RefCell::default(),
        failure: Rc::default(),
        build_error: RefCell::default(),
        progress,
    })
}

/// Adds the default dead-letter sink when the program did not claim the dead letters.
fn finalize(job: &Job<'_>) {
    let ctx = &job.ctx;
    if ctx.dead_letters_claimed.get() || ctx.dead_letters.borrow().is_empty() {
        return;
    }
    let path = ctx.config.dead_letters.clone().or_else(|| {
        ctx.first_file_sink.borrow().as_ref().map(|p| {
            // `out/` and `out` both give `out.errors.jsonl`, beside the output directory.
            let mut name = p.components().as_path().as_os_str().to_owned();
            name.push(".errors.jsonl");
            name.into()
        })
    });
    let dead = job.dead_letters(crate::job::op("dead-letters"));
    match path {
        Some(path) => dead.write_dead_letter_file(crate::job::op("dead-letter-file"), path),
        None => dead.warn_on_stderr(Op::from("dead-letter-log")),
    }
}

/// How often workers publish live metrics (when [`Config::live_metrics`] is set).
const LIVE_METRICS_EVERY: Duration = Duration::from_millis(250);

fn run_worker<F>(
    worker: &mut Worker,
    config: &Arc<Config>,
    build: &F,
    abort: &AtomicBool,
    progress: &Arc<AtomicU64>,
    names: &Rc<RefCell<Vec<String>>>,
    control: &mut Control,
) -> Result<JobReport>
where
    F: for<'s> Fn(&mut Job<'s>) -> Result<()>,
{
    let index = worker.index();
    let workers = worker.peers();
    if workers != config.total_workers() {
        return Err(WeirError::Config(format!(
            "timely started {workers} workers but the configuration says {}",
            config.total_workers()
        )));
    }
    let main_dataflow = worker.next_dataflow_index();
    let BuiltJob {
        plan,
        metrics,
        failure,
        probe,
        sources,
        result: built,
    } = worker.dataflow::<Epoch, _, _>(|scope| {
        build_job(
            scope,
            Arc::clone(config),
            workers,
            index,
            Arc::clone(progress),
            build,
        )
    });
    *names.borrow_mut() = plan.nodes.iter().map(|n| n.name.clone()).collect();
    built?;

    let started = Instant::now();
    let bar = (config.verbose && index == 0 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed} {human_pos} records read ({per_sec})",
            )
            .expect("valid template"),
        );
        bar
    });
    let remote_failure = control.remote_failure();
    let check = |failure: &RefCell<Option<WeirError>>| -> Result<()> {
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        if let Some(cause) = remote_failure.borrow().clone() {
            return Err(WeirError::Aborted {
                worker: index,
                cause,
            });
        }
        if abort.load(Ordering::SeqCst) {
            return Err(WeirError::Aborted {
                worker: index,
                cause: "another worker of this process failed".into(),
            });
        }
        if COMMUNICATION_FAILED.load(Ordering::SeqCst) {
            return Err(WeirError::Communication(format!(
                "worker {index}: connection to another process was lost (did it fail?)"
            )));
        }
        Ok(())
    };
    let mut sinks_at = None;
    let publish = |metrics: &[(usize, Rc<crate::report::OperatorMetrics>)]| {
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
        }
    };
    let mut published = Instant::now();
    while worker.installed_dataflows().contains(&main_dataflow) {
        check(&failure)?;
        worker.step_or_park(Some(PARK));
        if published.elapsed() >= LIVE_METRICS_EVERY {
            publish(&metrics);
            published = Instant::now();
        }
        // Flow control: wake held-back sources as soon as the sinks move on.
        let now = probe.with_frontier(|f| f.first().copied());
        if now != sinks_at {
            sinks_at = now;
            sources.iter().for_each(|a| a.activate());
        }
        if let Some(bar) = &bar {
            bar.set_position(progress.load(Ordering::Relaxed));
        }
    }
    check(&failure)?;
    publish(&metrics);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed();

    // Gather every worker's counters on every worker with a small second dataflow.
    let local: Vec<NodeCounters> = metrics
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
    while worker.installed_dataflows().contains(&report_dataflow) {
        check(&failure)?;
        worker.step_or_park(Some(PARK));
    }
    // Done here; the control dataflow ends when every worker has closed it.
    control.close();
    while worker.has_dataflows() {
        check(&failure)?;
        worker.step_or_park(Some(PARK));
    }
    let parts = gathered.borrow();
    Ok(JobReport::from_parts(plan, &parts, elapsed))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
