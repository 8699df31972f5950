//! Running a job: one timely worker per thread (and process), the same graph built on each,
//! stepped until every bounded source is exhausted and every sink has seen all its input.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use crate::sinks::sink_frontier::SinkFrontier;
use timely::worker::Worker;

use crate::cluster::peer_network::PeerSockets;
use crate::config::{Config, ExplainFormat};
use crate::error::{Result, WeirError};
use crate::job::{Epoch, Job, JobContext, Op};
use crate::plan::Plan;
use crate::report::{take_current_operator, JobReport};
use crate::runtime::cancellation::{wait_for_workers, Waited, Whereabouts};
use crate::runtime::control::Control;
use crate::state::gate::{GateMode, SourceGate};
use crate::state::registry::{Restored, StateRegistry};

/// Set when a timely communication thread panics (a peer process died).
pub(crate) static COMMUNICATION_FAILED: AtomicBool = AtomicBool::new(false);
/// The process whose connection broke first (`usize::MAX`: none), from the name of the
/// timely thread that served it (`timely:send-N`, `timely:recv-N`).
static FAILED_PEER: AtomicUsize = AtomicUsize::new(usize::MAX);

/// "process N (address)" for the process whose connection broke, or "another process".
pub(crate) fn failed_peer(config: &Config) -> String {
    match FAILED_PEER.load(Ordering::SeqCst) {
        usize::MAX => "another process".into(),
        p => match config.address(p) {
            Some(address) => format!("process {p} ({address})"),
            None => format!("process {p}"),
        },
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            let cut_off = crate::cluster::peer_network::CUT_OFF.load(Ordering::SeqCst);
            if name.starts_with("timely:send") || name.starts_with("timely:recv") {
                // The peer first: a worker that sees the failure names the peer at once.
                if let Some(p) = name.rsplit('-').next().and_then(|p| p.parse().ok()) {
                    let _ = FAILED_PEER.compare_exchange(
                        usize::MAX,
                        p,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                COMMUNICATION_FAILED.store(true, Ordering::SeqCst);
                if cut_off {
                    // Weir shut the connection down itself and says why elsewhere.
                    return;
                }
            }
            if cut_off && is_fallout_of_a_cut_off(&name, &panic_text(info)) {
                return;
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
    if config.exit_when_stdin_closes {
        crate::runtime::stdin_lifeline::watch();
    }
    install_panic_hook();
    COMMUNICATION_FAILED.store(false, Ordering::SeqCst);
    FAILED_PEER.store(usize::MAX, Ordering::SeqCst);
    crate::cluster::peer_network::CUT_OFF.store(false, Ordering::SeqCst);
    let verbose = config.verbose;
    let first_process = config.process_index() == 0;
    let restored = match &config.checkpoint {
        Some(c) => crate::runtime::restore::load(c)?,
        None => None,
    };
    let communication = crate::cluster::peer_network::communication(&config)?;
    let shared = Arc::new(Shared {
        restored,
        peers: communication.peers.clone(),
        threads: config.threads_per_process(),
        peer_timeout: config.peer_timeout,
        config: Arc::new(config),
        build,
        abort: AtomicBool::new(false),
        progress: Arc::new(AtomicU64::new(0)),
        returned: AtomicUsize::new(0),
        whereabouts: Whereabouts::default(),
        outcomes: std::sync::Mutex::default(),
    });
    let worker_shared = Arc::clone(&shared);
    let guards = timely::execute::execute_from(
        communication.builders,
        communication.guard,
        timely::WorkerConfig::default(),
        move |worker| worker_shared.run(worker),
    )
    .map_err(WeirError::Communication)?;
    let watchdog = CloseWatchdog::start(&shared);
    // Joining also joins timely's communication threads, and panics if one of them did
    // (a peer process died, or was cut off): the workers' own outcomes say why. It happens
    // on a thread of its own, so that a failed job does not wait forever for a worker stuck
    // in an operator's code (see `runtime/cancellation.rs`).
    let (done, joining) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("weir-join".into())
        .spawn(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(|| guards.join())));
        })
        .map_err(|e| WeirError::Communication(format!("no thread to join the workers: {e}")))?;
    let waited = wait_for_workers(
        &joining,
        &shared.whereabouts,
        || shared.failing(),
        shared.config.cancellation_timeout,
    );
    drop(watchdog);
    let outcomes = std::mem::take(&mut *shared.outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    let mut report: Option<JobReport> = None;
    let mut error: Option<WeirError> = None;
    let mut keep = |e: WeirError| {
        // Prefer the root cause over "the connection broke" over "stopped because another
        // worker failed".
        if error.as_ref().is_none_or(|old| rank(&e) < rank(old)) {
            error = Some(e);
        }
    };
    for outcome in outcomes {
        match outcome {
            // The coordinator's report has the checkpoints in it.
            Ok(r) => match &report {
                Some(old) if old.checkpoints.len() >= r.checkpoints.len() => {}
                _ => report = Some(r),
            },
            Err(e) => keep(e),
        }
    }
    let joined = match waited {
        Waited::Joined(joined) => Some(joined),
        Waited::GaveUp(stuck) => {
            give_up(&shared);
            for worker in stuck {
                let stuck = worker.error(shared.config.cancellation_timeout);
                tracing::error!("{stuck} (--cancellation-timeout-ms)");
                keep(stuck);
            }
            if COMMUNICATION_FAILED.load(Ordering::SeqCst) {
                // What joining would have said.
                keep(WeirError::Communication(format!(
                    "lost the connection to {}",
                    failed_peer(&shared.config)
                )));
            }
            None
        }
    };
    match joined {
        None => {}
        Some(Ok(threads)) => threads
            .into_iter()
            .filter_map(Result::err)
            .for_each(|message| keep(WeirError::WorkerLost(message))),
        Some(Err(payload)) => keep(WeirError::Communication(format!(
            "lost the connection to {}: {}",
            failed_peer(&shared.config),
            panic_message(&*payload)
        ))),
    }
    if let Some(e) = error {
        return Err(e);
    }
    let report =
        report.ok_or_else(|| WeirError::Communication("no worker returned a report".into()))?;
    if verbose && first_process {
        // One write: stderr is unbuffered, and the table would go out in hundreds of pieces.
        let table = format!("{report}\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), table.as_bytes());
    }
    Ok(report)
}

/// Leaves the workers of this process that did not stop: tells the other processes that the
/// job failed, and cuts the connections (and the heartbeats) so that they do not wait for
/// this one.
fn give_up<F>(shared: &Shared<F>) {
    if let Some(peers) = &shared.peers {
        peers.announce_failure();
        peers.cut_off_all();
    }
}

/// How much an error explains a failed job: 0 for a root cause, 1 for a broken
/// connection or an input that ended empty (the fallout of a failure upstream, most
/// likely), 2 for a worker that stopped (or did not) because another one failed.
fn rank(e: &WeirError) -> u8 {
    match e {
        WeirError::Aborted { .. } | WeirError::WorkerStuck { .. } => 2,
        WeirError::Communication(_) | WeirError::WorkerLost(_) => 1,
        WeirError::WithoutInput { .. } => 1,
        // A worker that touched a channel to a process Weir had cut off.
        WeirError::WorkerPanic { message, .. }
            if crate::cluster::peer_network::CUT_OFF.load(Ordering::SeqCst)
                && is_fallout_of_a_cut_off("timely:work", message) =>
        {
            1
        }
        // A worker that touched a channel to a process that died: the lost connection,
        // which names the process, is the cause.
        WeirError::WorkerPanic { message, .. }
            if COMMUNICATION_FAILED.load(Ordering::SeqCst)
                && is_fallout_of_a_cut_off("timely:work", message) =>
        {
            2
        }
        _ => 0,
    }
}

/// What the workers of this process share.
pub(crate) struct Shared<F> {
    pub(crate) config: Arc<Config>,
    pub(crate) build: F,
    /// Set when a worker of this process failed.
    pub(crate) abort: AtomicBool,
    pub(crate) progress: Arc<AtomicU64>,
    /// The connections to the other processes, to cut off a stalled one.
    pub(crate) peers: Option<PeerSockets>,
    /// The checkpoint the job restores from, loaded once for all workers of the process.
    pub(crate) restored: Option<Arc<Restored>>,
    threads: usize,
    peer_timeout: Duration,
    /// Workers of this process whose closure has returned.
    returned: AtomicUsize,
    /// Which operator each worker of this process runs, for the cancellation timeout.
    pub(crate) whereabouts: Whereabouts,
    /// Each worker's outcome (kept here rather than returned through timely, whose join
    /// panics when a communication thread did).
    outcomes: std::sync::Mutex<Vec<Result<JobReport>>>,
}

impl<F> Shared<F>
where
    F: for<'s> Fn(&mut Job<'s>) -> Result<()>,
{
    /// Whether the job failed, as far as this process knows: one of its workers failed, a
    /// connection to another process broke, or another process said its job failed.
    fn failing(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
            || COMMUNICATION_FAILED.load(Ordering::SeqCst)
            || self.peers.as_ref().is_some_and(PeerSockets::peer_failed)
    }

    /// One worker: runs the job, and on failure tells every other worker.
    fn run(&self, worker: &mut Worker) {
        let names: Rc<RefCell<Vec<String>>> = Rc::default();
        let index = worker.index();
        let processes = worker.peers() / self.threads.max(1);
        // Counts the worker as returned however this function ends (a panic included).
        let _returned = Returned::new(self, index);
        let mut control = Control::install(worker, self.threads, processes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            crate::runtime::worker_loop::run_worker(worker, self, &names, &mut control)
        }));
        let result = match outcome {
            Ok(result) => result,
            Err(payload) => Err(WeirError::WorkerPanic {
                worker: index,
                operator: take_current_operator().and_then(|n| names.borrow().get(n).cloned()),
                message: panic_message(&*payload),
            }),
        };
        let failed = result.as_ref().err().map(|e| match e {
            WeirError::Aborted { cause, .. } => cause.clone(),
            other => other.to_string(),
        });
        // Recorded first: telling the others below may panic on a broken connection.
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(result);
        if let Some(message) = failed {
            self.abort.store(true, Ordering::SeqCst);
            if let Some(peers) = &self.peers {
                peers.announce_failure();
            }
            // Tell the other workers (in all processes), and drop this worker's dataflows:
            // timely steps remaining dataflows to completion after this closure returns,
            // which would wait forever for the failed peers.
            let told = catch_unwind(AssertUnwindSafe(|| {
                control.announce(worker, index, message)
            }));
            if told.is_err() {
                // The connections are gone; the others learn of it from them.
                for id in worker.installed_dataflows() {
                    worker.drop_dataflow(id);
                }
            }
        }
    }
}

/// Registers a worker in [`Shared::whereabouts`] while it lives, and counts it as returned
/// when dropped.
struct Returned<'a, F> {
    shared: &'a Shared<F>,
    index: usize,
}

impl<F> Returned<'_, F> {
    fn new(shared: &Shared<F>, index: usize) -> Returned<'_, F> {
        shared.whereabouts.enter(index);
        Returned { shared, index }
    }
}

impl<F> Drop for Returned<'_, F> {
    fn drop(&mut self) {
        self.shared.whereabouts.leave(self.index);
        self.shared.returned.fetch_add(1, Ordering::SeqCst);
    }
}

/// Once every worker of this process has returned, timely's communication threads still
/// wait for each peer to close its connections; a peer that stalls at that moment would
/// hang this process forever. After the peer timeout the connections are cut off.
struct CloseWatchdog {
    done: Arc<AtomicBool>,
}

impl CloseWatchdog {
    fn start<F: Send + Sync + 'static>(shared: &Arc<Shared<F>>) -> Option<CloseWatchdog> {
        let peers = shared.peers.clone()?;
        let done = Arc::new(AtomicBool::new(false));
        let (watching, shared) = (Arc::clone(&done), Arc::clone(shared));
        std::thread::Builder::new()
            .name("weir-close-watchdog".into())
            .spawn(move || {
                let mut all_returned: Option<Instant> = None;
                while !watching.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    if shared.returned.load(Ordering::SeqCst) < shared.threads {
                        continue;
                    }
                    let since = *all_returned.get_or_insert_with(Instant::now);
                    if since.elapsed() > shared.peer_timeout {
                        tracing::warn!(
                            "the other processes did not close their connections within {:?} of the end; cutting them off",
                            shared.peer_timeout
                        );
                        peers.cut_off_all();
                        return;
                    }
                }
            })
            .ok()?;
        Some(CloseWatchdog { done })
    }
}

impl Drop for CloseWatchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
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
                (workers, index),
                Arc::new(AtomicU64::new(0)),
                &build,
                // Explaining restores nothing and checkpoints nothing.
                (
                    Rc::new(StateRegistry::default()),
                    Rc::new(SourceGate::new(GateMode::Open)),
                ),
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
pub(crate) struct BuiltJob {
    pub(crate) plan: Plan,
    pub(crate) metrics: Vec<(usize, Rc<crate::report::OperatorMetrics>)>,
    pub(crate) failure: Rc<RefCell<Option<WeirError>>>,
    /// The sinks' frontier and the sources to wake when it advances (flow control).
    pub(crate) sink_frontier: SinkFrontier,
    pub(crate) sources: Vec<timely::scheduling::Activator>,
    /// The program's result, or the first build error (e.g. an impossible parallelism).
    pub(crate) result: Result<()>,
}

/// Runs the program's `build` closure in `scope` and adds the default dead-letter sink.
pub(crate) fn build_job<'s, F>(
    scope: timely::dataflow::Scope<'s, Epoch>,
    config: Arc<Config>,
    (workers, index): (usize, usize),
    progress: Arc<AtomicU64>,
    build: &F,
    (state, gate): (Rc<StateRegistry>, Rc<SourceGate>),
) -> BuiltJob
where
    F: for<'a> Fn(&mut Job<'a>) -> Result<()>,
{
    let ctx = new_context(scope, config, (workers, index), progress, (state, gate));
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
        sink_frontier: ctx.sink_frontier.clone(),
        sources,
        result: result.and_then(|_| build_error.map_or(Ok(()), Err)),
    }
}

fn new_context<'s>(
    scope: timely::dataflow::Scope<'s, Epoch>,
    config: Arc<Config>,
    (workers, index): (usize, usize),
    progress: Arc<AtomicU64>,
    (state, gate): (Rc<StateRegistry>, Rc<SourceGate>),
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
        sink_frontier: SinkFrontier::default(),
        source_activators: RefCell::default(),
        dead_letters: RefCell::default(),
        dead_letters_claimed: Cell::new(false),
        first_file_sink: RefCell::default(),
        sink_paths: Rc::default(),
        failure: Rc::default(),
        build_error: RefCell::default(),
        progress,
        state,
        gate,
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

/// Panics timely raises once Weir has shut a connection down on purpose: a worker's channels
/// to the cut-off process, and the join of its communication threads. Weir reports the
/// cause itself.
fn is_fallout_of_a_cut_off(thread: &str, message: &str) -> bool {
    (thread.starts_with("timely:work") && message.contains("poisoned"))
        || message.starts_with("Send thread panic")
        || message.starts_with("Recv thread panic")
}

fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    panic_message(info.payload())
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
