//! Keyed running aggregates against a hand-written multi-threaded program, as ratios measured
//! in one run: how the keyed exchange scales from 1 to 2 workers.
//!
//! Three workloads over records held in memory (generated before timing):
//! - **key_by_count**: words `w<k>` of 10,000 distinct (`weir bench`'s `key_by_count`), the
//!   running count per word: `count_by_value()` in Weir (each word moves into the combiner's
//!   table as its own key); **key_by_count_by_key** is the same count written
//!   `key_by(|w| w.clone()).count()` (a copy of each word as its key);
//! - **keyed_sum_10** and **keyed_sum_100k**: `(key, value)` pairs with 10 and 100,000 keys,
//!   the running sum of `value` per key (`key_by(key).sum(value)`).
//!
//! Both sides are streaming and emit the same thing: after every batch of records, the keys
//! it changed with their running totals; the sink keeps the last total of each key, and those
//! must equal a sequential fold of the input.
//! - **hand-written** (1 and 2 threads): thread `t` of `n` takes records `t, t + n, …` in
//!   batches of 4,096. Each batch is folded into a local `FxHashMap` (pre-aggregation), the
//!   partials are split by owner (`hash(key) % n`), and sent over crossbeam channels to the
//!   owning thread, which merges them into its running totals and emits the changed keys.
//! - **Weir** at `-w 1` and `-w 2`: `generate` (instance `i` of `n` takes records `i, i + n,
//!   …`, epochs of 4,096 records) → `count_by_value` / `key_by` → `count` / `sum` → `for_each`
//!   sink.
//!
//! - **raw timely** at 2 workers: the same dataflow written directly on timely (a source
//!   operator with the same epochs, a pipelined combiner per epoch, an exchange by key, an
//!   owner that merges each complete epoch into its running totals, a sink and a probe): the
//!   framework Weir builds on, to tell Weir's costs from timely's own per-epoch progress
//!   tracking.
//!
//! The targets (Weir at least 1.6x from 1 to 2 workers, and at least 0.9x the
//! hand-written 2-thread program at `-w 2`) are printed with whether they hold; timing is not
//! asserted. Peak memory (VmHWM, reset before each run) is reported per run; the input is part
//! of it on both sides.
//!
//! `cargo bench --bench keyed_aggregate [-- RECORDS [REPETITIONS]]`. Prints a table and writes
//! `target/bench/keyed_aggregate.json`. `WEIR_BENCH_ONLY=<workload>:<side>` (side `hand1`,
//! `hand2`, `w1`, `w2`, `timely2`) runs one side REPETITIONS times, for `perf`. Under `cargo test` (no `--bench`) it
//! does a small smoke run that checks the totals.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::{number_arg, FourSides, FOUR_SIDES as SIDES};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::operators::generic::Operator as _;
use timely::dataflow::operators::{Capability, InputCapability, Probe as _};
use timely::dataflow::{ProbeHandle, Scope, Stream};
use timely::progress::frontier::MutableAntichain;
use weir::prelude::*;
use weir_core::key_hash;

/// The same allocator as the `weir` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records per batch of the hand-written program, and per epoch of each Weir source instance.
const BATCH: usize = 4096;

/// A deterministic pseudo-random number for record `i` of stream `seed`.
fn draw(seed: u64, i: usize) -> u64 {
    key_hash(&(seed, i as u64)).rotate_left(17)
}

/// One workload: its records and how a record folds into its key's total.
trait Workload: Send + Sync + 'static {
    type Record: weir_core::Data + Send + Sync;
    type Key: weir_core::Key + Send + Sync + std::fmt::Debug;
    type Total: weir_core::Data + Send + Sync + PartialEq + std::fmt::Debug;
    fn records(&self) -> &Arc<Vec<Self::Record>>;
    fn key(r: &Self::Record) -> Self::Key;
    fn zero() -> Self::Total;
    fn fold(total: &mut Self::Total, r: &Self::Record);
    fn merge(total: &mut Self::Total, part: Self::Total);
    /// Whether two totals agree (sums of floats in another grouping differ in the last bits).
    fn same(a: &Self::Total, b: &Self::Total) -> bool;
    /// The Weir job: `key_by` → the aggregate → `(key, total)`.
    fn weir<'s>(stream: DataStream<'s, Self::Record>) -> DataStream<'s, (Self::Key, Self::Total)>;
}

/// Words `w<k>`, the running count per word. Weir counts them with `count_by_value` (the
/// word moves into the combiner's table as its key), or with `BY_KEY` as
/// `key_by(|w| w.clone()).count()` (a copy of each word as its key).
struct WordCount<const BY_KEY: bool>(Arc<Vec<String>>);

impl<const BY_KEY: bool> Workload for WordCount<BY_KEY> {
    type Record = String;
    type Key = String;
    type Total = u64;
    fn records(&self) -> &Arc<Vec<String>> {
        &self.0
    }
    fn key(r: &String) -> String {
        r.clone()
    }
    fn zero() -> u64 {
        0
    }
    fn fold(total: &mut u64, _: &String) {
        *total += 1;
    }
    fn merge(total: &mut u64, part: u64) {
        *total += part;
    }
    fn same(a: &u64, b: &u64) -> bool {
        a == b
    }
    fn weir<'s>(stream: DataStream<'s, String>) -> DataStream<'s, (String, u64)> {
        if BY_KEY {
            stream.key_by(|w: &String| w.clone()).count("count")
        } else {
            stream.count_by_value("count")
        }
    }
}

/// `(key, value)` pairs, the running sum of the values per key.
struct KeyedSum(Arc<Vec<(u64, f64)>>);

impl Workload for KeyedSum {
    type Record = (u64, f64);
    type Key = u64;
    type Total = f64;
    fn records(&self) -> &Arc<Vec<(u64, f64)>> {
        &self.0
    }
    fn key(r: &(u64, f64)) -> u64 {
        r.0
    }
    fn zero() -> f64 {
        0.0
    }
    fn fold(total: &mut f64, r: &(u64, f64)) {
        *total += r.1;
    }
    fn merge(total: &mut f64, part: f64) {
        *total += part;
    }
    fn same(a: &f64, b: &f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(1.0)
    }
    fn weir<'s>(stream: DataStream<'s, (u64, f64)>) -> DataStream<'s, (u64, f64)> {
        stream.key_by(|r: &(u64, f64)| r.0).sum("sum", |r| r.1)
    }
}

fn words(n: usize, distinct: u64) -> WordCount<false> {
    WordCount(Arc::new(
        (0..n)
            .map(|i| format!("w{}", draw(2, i) % distinct))
            .collect(),
    ))
}

fn pairs(n: usize, keys: u64) -> KeyedSum {
    KeyedSum(Arc::new(
        (0..n)
            .map(|i| (draw(3, i) % keys, (draw(4, i) % 1000) as f64 / 8.0))
            .collect(),
    ))
}

/// The totals a sequential fold gives.
fn reference<W: Workload>(w: &W) -> FxHashMap<W::Key, W::Total> {
    let mut totals = FxHashMap::default();
    for r in w.records().iter() {
        W::fold(totals.entry(W::key(r)).or_insert_with(W::zero), r);
    }
    totals
}

/// Each sink instance's last total per key, merged after the run.
type Finals<W> = Arc<Mutex<FxHashMap<<W as Workload>::Key, <W as Workload>::Total>>>;

/// One run's time, peak memory and final totals.
struct Run<W: Workload> {
    took: Duration,
    peak: Option<u64>,
    totals: FxHashMap<W::Key, W::Total>,
}

/// The hand-written program on `threads` threads.
fn hand_written<W: Workload>(w: &W, threads: usize) -> Run<W> {
    bench_process::reset_peak_memory();
    let start = Instant::now();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| crossbeam::channel::bounded::<Message<W>>(64))
        .unzip();
    let finals: Finals<W> = Arc::default();
    std::thread::scope(|scope| {
        for (t, inbox) in receivers.into_iter().enumerate() {
            let senders = senders.clone();
            let finals = Arc::clone(&finals);
            let records = w.records();
            scope.spawn(move || {
                let mut worker = HandWorker::<W>::new(t, senders, inbox);
                worker.run(records);
                finals.lock().unwrap().extend(worker.sink);
            });
        }
    });
    let took = start.elapsed();
    Run {
        took,
        peak: bench_process::status_bytes("VmHWM:"),
        totals: Arc::try_unwrap(finals).ok().unwrap().into_inner().unwrap(),
    }
}

/// What threads send each other: partials, or `None` when the sender has sent all it had.
type Message<W> = Option<Vec<(<W as Workload>::Key, <W as Workload>::Total)>>;

/// A thread of the hand-written program.
struct HandWorker<W: Workload> {
    index: usize,
    peers: Vec<Sender<Message<W>>>,
    inbox: Receiver<Message<W>>,
    totals: FxHashMap<W::Key, W::Total>,
    /// The last total emitted per key.
    sink: FxHashMap<W::Key, W::Total>,
    /// Peers that sent all they had.
    ended: usize,
}

impl<W: Workload> HandWorker<W> {
    fn new(index: usize, peers: Vec<Sender<Message<W>>>, inbox: Receiver<Message<W>>) -> Self {
        HandWorker {
            index,
            peers,
            inbox,
            totals: FxHashMap::default(),
            sink: FxHashMap::default(),
            ended: 0,
        }
    }

    fn run(&mut self, records: &[W::Record]) {
        let n = self.peers.len();
        let mut mine = (self.index..records.len()).step_by(n).peekable();
        let mut local: FxHashMap<W::Key, W::Total> = FxHashMap::default();
        while mine.peek().is_some() {
            for i in mine.by_ref().take(BATCH) {
                let r = &records[i];
                W::fold(local.entry(W::key(r)).or_insert_with(W::zero), r);
            }
            let mut parts: Vec<Vec<(W::Key, W::Total)>> = (0..n).map(|_| Vec::new()).collect();
            for (k, total) in local.drain() {
                parts[(key_hash(&k) % n as u64) as usize].push((k, total));
            }
            for (to, part) in parts.into_iter().enumerate() {
                if to == self.index {
                    self.apply(part);
                } else if !part.is_empty() {
                    self.send(to, Some(part));
                }
            }
            while let Ok(message) = self.inbox.try_recv() {
                self.take(message);
            }
        }
        let me = self.index;
        for to in (0..n).filter(|&to| to != me) {
            self.send(to, None);
        }
        while self.ended + 1 < n {
            let message = self.inbox.recv().expect("a peer hung up");
            self.take(message);
        }
    }

    /// Takes a message from a peer: partials, or the peer's end.
    fn take(&mut self, message: Message<W>) {
        match message {
            Some(part) => self.apply(part),
            None => self.ended += 1,
        }
    }

    /// Sends to a peer, taking in what arrives meanwhile (two full channels must not block
    /// each other).
    fn send(&mut self, to: usize, mut message: Message<W>) {
        loop {
            match self.peers[to].try_send(message) {
                Ok(()) => return,
                Err(e) => message = e.into_inner(),
            }
            match self.inbox.try_recv() {
                Ok(message) => self.take(message),
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// Merges partials into the running totals and emits the changed keys.
    fn apply(&mut self, part: Vec<(W::Key, W::Total)>) {
        for (k, p) in part {
            let total = self.totals.entry(k.clone()).or_insert_with(W::zero);
            W::merge(total, p);
            self.sink.insert(k, total.clone());
        }
    }
}

/// Weir on `workers` threads.
fn weir<W: Workload>(w: &W, workers: usize) -> Run<W> {
    bench_process::reset_peak_memory();
    let records = Arc::clone(w.records());
    let finals: Finals<W> = Arc::default();
    let job_finals = Arc::clone(&finals);
    let start = Instant::now();
    execute(Config::threads(workers), move |job| {
        let records = Arc::clone(&records);
        let n = records.len() as u64;
        let source = job.generate(
            op("source")
                .parallelism(workers)
                .epochs(EpochPolicy::Records(BATCH as u64)),
            Some(n),
            move |i| records[i as usize].clone(),
        );
        let mut sink = LastTotals::<W> {
            seen: FxHashMap::default(),
            finals: Arc::clone(&job_finals),
        };
        W::weir(source).for_each(op("sink").parallelism(workers), move |(k, total)| {
            sink.seen.insert(k, total);
        });
        Ok(())
    })
    .expect("the Weir job runs");
    let took = start.elapsed();
    Run {
        took,
        peak: bench_process::status_bytes("VmHWM:"),
        totals: Arc::try_unwrap(finals).ok().unwrap().into_inner().unwrap(),
    }
}

/// The same job written directly on timely at `workers` workers (see the module docs).
fn raw_timely<W: Workload>(w: &W, workers: usize) -> Run<W> {
    bench_process::reset_peak_memory();
    let records = Arc::clone(w.records());
    let finals: Finals<W> = Arc::default();
    let job_finals = Arc::clone(&finals);
    let start = Instant::now();
    timely::execute(timely::Config::process(workers), move |worker| {
        let records = Arc::clone(&records);
        let mut sink = LastTotals::<W> {
            seen: FxHashMap::default(),
            finals: Arc::clone(&job_finals),
        };
        let (index, peers) = (worker.index(), worker.peers());
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let partials = raw_source(scope, records, index, peers)
                .unary_frontier::<RawBuilder<(W::Key, W::Total)>, _, _, _>(
                    Pipeline,
                    "combine",
                    |_, _| {
                        let mut epochs = RawEpochs::<W::Key, W::Total>::default();
                        move |(input, frontier), output| {
                            input.for_each(|cap, data| {
                                let table = epochs.table(&cap);
                                for r in data.drain(..) {
                                    W::fold(table.entry(W::key(&r)).or_insert_with(W::zero), &r);
                                }
                            });
                            while let Some((cap, mut table)) = epochs.complete(frontier) {
                                output.session(&cap).give_iterator(table.drain());
                            }
                        }
                    },
                );
            let exchange = Exchange::new(|(k, _): &(W::Key, W::Total)| key_hash(k));
            partials
                .unary_frontier::<RawBuilder<(W::Key, W::Total)>, _, _, _>(
                    exchange,
                    "owner",
                    |_, _| {
                        let mut epochs = RawEpochs::<W::Key, W::Total>::default();
                        let mut totals: FxHashMap<W::Key, W::Total> = FxHashMap::default();
                        move |(input, frontier), output| {
                            input.for_each(|cap, data| {
                                let table = epochs.table(&cap);
                                for (k, part) in data.drain(..) {
                                    W::merge(table.entry(k).or_insert_with(W::zero), part);
                                }
                            });
                            while let Some((cap, mut table)) = epochs.complete(frontier) {
                                let mut changed = Vec::with_capacity(table.len());
                                for (k, part) in table.drain() {
                                    let total = totals.entry(k.clone()).or_insert_with(W::zero);
                                    W::merge(total, part);
                                    changed.push((k, total.clone()));
                                }
                                output.session(&cap).give_container(&mut changed);
                            }
                        }
                    },
                )
                .unary_frontier::<RawBuilder<()>, _, _, _>(Pipeline, "sink", |_, _| {
                    move |(input, _frontier), _output| {
                        input.for_each(|_cap, data| {
                            sink.seen.extend(data.drain(..));
                        });
                    }
                })
                .probe_with(&probe);
        });
        while worker.step_or_park(None) {}
    })
    .expect("the timely job runs");
    let took = start.elapsed();
    Run {
        took,
        peak: bench_process::status_bytes("VmHWM:"),
        totals: Arc::try_unwrap(finals).ok().unwrap().into_inner().unwrap(),
    }
}

type RawBuilder<T> = CapacityContainerBuilder<Vec<T>>;

/// The raw timely source: instance `index` of `peers` emits records `index, index + peers,
/// …`, one epoch of [`BATCH`] records per activation.
fn raw_source<'s, R: weir_core::Data>(
    scope: Scope<'s, u64>,
    records: Arc<Vec<R>>,
    index: usize,
    peers: usize,
) -> Stream<'s, u64, Vec<R>> {
    let activations = scope;
    timely_source::<_, RawBuilder<R>, _, _>(scope, "source", move |cap, info| {
        let activator = activations.activator_for(info.address);
        let mut cap = Some(cap);
        let mut next = index;
        let chunk = timely::container::buffer::default_capacity::<R>();
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let mut session = output.session(c);
            let mut batch = Vec::with_capacity(chunk);
            for _ in 0..BATCH {
                let Some(r) = records.get(next) else { break };
                batch.push(r.clone());
                next += peers;
                if batch.len() == chunk {
                    session.give_container(&mut batch);
                    batch.clear();
                }
            }
            session.give_container(&mut batch);
            drop(session);
            if next >= records.len() {
                cap = None;
            } else {
                let t = *c.time() + 1;
                c.downgrade(&t);
                activator.activate();
            }
        }
    })
}

/// A raw timely operator's open epochs: each one's capability and table.
struct RawEpochs<K, A>(BTreeMap<u64, (Capability<u64>, FxHashMap<K, A>)>);

impl<K, A> Default for RawEpochs<K, A> {
    fn default() -> Self {
        RawEpochs(BTreeMap::new())
    }
}

impl<K, A> RawEpochs<K, A> {
    /// The table of the epoch of a message.
    fn table(&mut self, cap: &InputCapability<u64>) -> &mut FxHashMap<K, A> {
        let t = *cap.least().expect("a message has a time");
        &mut self
            .0
            .entry(t)
            .or_insert_with(|| (cap.delayed(&t, 0), FxHashMap::default()))
            .1
    }

    /// The earliest epoch the frontier has passed, if any.
    fn complete(
        &mut self,
        frontier: &MutableAntichain<u64>,
    ) -> Option<(Capability<u64>, FxHashMap<K, A>)> {
        let (&t, _) = self.0.first_key_value()?;
        if frontier.less_equal(&t) {
            return None;
        }
        self.0.remove(&t)
    }
}

/// A sink instance's last total per key, handed over when the job drops the sink.
struct LastTotals<W: Workload> {
    seen: FxHashMap<W::Key, W::Total>,
    finals: Finals<W>,
}

impl<W: Workload> Drop for LastTotals<W> {
    fn drop(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        self.finals.lock().unwrap().extend(seen);
    }
}

/// Checks a run's totals against the sequential fold.
fn check<W: Workload>(
    name: &str,
    side: &str,
    run: &Run<W>,
    expected: &FxHashMap<W::Key, W::Total>,
) {
    assert_eq!(
        run.totals.len(),
        expected.len(),
        "{name} {side}: {} keys, expected {}",
        run.totals.len(),
        expected.len()
    );
    for (k, want) in expected {
        let got = run.totals.get(k);
        assert!(
            got.is_some_and(|g| W::same(g, want)),
            "{name} {side}: key {k:?} has {got:?}, expected {want:?}"
        );
    }
}

fn run_side<W: Workload>(w: &W, side: &str) -> Run<W> {
    match side {
        "hand1" => hand_written(w, 1),
        "hand2" => hand_written(w, 2),
        "w1" => weir(w, 1),
        "w2" => weir(w, 2),
        "timely2" => raw_timely(w, 2),
        other => panic!("unknown side `{other}` (hand1, hand2, w1, w2, timely2)"),
    }
}

/// The best run of each side, and of raw timely at 2 workers (ms, peak MiB).
struct Measured {
    sides: FourSides,
    timely2: (f64, f64),
}

fn measure<W: Workload>(name: &str, w: &W, reps: usize) -> Measured {
    let expected = reference(w);
    let mut best = Measured {
        sides: FourSides::new(),
        timely2: (f64::INFINITY, 0.0),
    };
    // One warm-up run of each side, then `reps` interleaved.
    for rep in 0..=reps {
        for (i, side) in SIDES.iter().chain(["timely2"].iter()).enumerate() {
            let run = run_side(w, side);
            check(name, side, &run, &expected);
            if rep == 0 {
                continue;
            }
            if i < SIDES.len() {
                best.sides.keep(i, run.took, run.peak);
            } else if run.took.as_secs_f64() * 1e3 < best.timely2.0 {
                let peak = run.peak.unwrap_or(0) as f64 / (1024.0 * 1024.0);
                best.timely2 = (run.took.as_secs_f64() * 1e3, peak);
            }
        }
    }
    best
}

fn main() {
    let (benchmarking, args) = bench_process::bench_args();
    let records = number_arg(&args, 0, if benchmarking { 2_000_000 } else { 30_000 });
    let reps = number_arg(&args, 1, if benchmarking { 5 } else { 1 }).max(1);
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench keyed_aggregate` for real numbers)");
    }
    let count = words(records, 10_000);
    let count_by_key = WordCount::<true>(Arc::clone(&count.0));
    let sum10 = pairs(records, 10);
    let sum100k = pairs(records, 100_000);
    if let Ok(only) = std::env::var("WEIR_BENCH_ONLY") {
        let (workload, side) = only
            .split_once(':')
            .expect("WEIR_BENCH_ONLY=<workload>:<side>");
        let run = |side: &str| match workload {
            "key_by_count" => run_side(&count, side).took,
            "key_by_count_by_key" => run_side(&count_by_key, side).took,
            "keyed_sum_10" => run_side(&sum10, side).took,
            "keyed_sum_100k" => run_side(&sum100k, side).took,
            other => panic!("unknown workload `{other}`"),
        };
        let took = (0..reps)
            .map(|_| run(side))
            .min()
            .expect("one run at least");
        println!("{only}: {:.1} ms", took.as_secs_f64() * 1e3);
        return;
    }
    let results = [
        ("key_by_count", measure("key_by_count", &count, reps)),
        (
            "key_by_count_by_key",
            measure("key_by_count_by_key", &count_by_key, reps),
        ),
        ("keyed_sum_10", measure("keyed_sum_10", &sum10, reps)),
        ("keyed_sum_100k", measure("keyed_sum_100k", &sum100k, reps)),
    ];
    report(records, reps, &results);
}

fn report(records: usize, reps: usize, results: &[(&str, Measured)]) {
    println!(
        "{records} records, best of {reps} interleaved runs; ms (peak MiB)\n\n\
         | workload | hand 1 thread | hand 2 threads | Weir -w 1 | Weir -w 2 | raw timely 2 workers | Weir 1 -> 2 | -w 2 / hand 2 threads | -w 2 / raw timely |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut json = Vec::new();
    let mut all_hold = true;
    for (name, measured) in results {
        let best = &measured.sides;
        let (timely_ms, timely_peak) = measured.timely2;
        let scaling = best.ms[2] / best.ms[3];
        let vs_hand = best.ms[1] / best.ms[3];
        let vs_timely = timely_ms / best.ms[3];
        // `key_by_count_by_key` shows the cost of a copied key; the target is the job's best form.
        if !name.ends_with("_by_key") {
            all_hold &= scaling >= 1.6 && vs_hand >= 0.9;
        }
        println!(
            "| {name} | {} | {timely_ms:.1} ({timely_peak:.0}) | {scaling:.2}x | {vs_hand:.2}x | {vs_timely:.2}x |",
            best.cells()
        );
        let mut result = best.json();
        result["workload"] = (*name).into();
        result["records"] = records.into();
        result["speedup_1_to_2"] = scaling.into();
        result["w2_vs_hand2"] = vs_hand.into();
        result["ms"]["timely2"] = timely_ms.into();
        result["peak_mib"]["timely2"] = timely_peak.into();
        result["w2_vs_timely2"] = vs_timely.into();
        json.push(result);
    }
    println!(
        "\ntargets (1 -> 2 workers >= 1.6x, -w 2 >= 0.9x the hand-written 2-thread program): {}",
        if all_hold { "hold" } else { "missed" }
    );
    let out = std::path::Path::new("target/bench");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        out.join("keyed_aggregate.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
}
