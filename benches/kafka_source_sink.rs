//! The Kafka source and sink (`weir-kafka`) against hand-written loops with the same client
//! library (rdkafka 0.39, librdkafka) and the same broker, as ratios measured in one run.
//!
//! The broker: tansu 0.6 (memory storage) started by the bench on a free port, killed at the
//! end (also on a panic). The records: small JSON values, `{"id":123,"user":"u23","v":0.75}`.
//!
//! - **source**: `--records` messages in a 4-partition topic (filled once by an untimed
//!   producer loop, partition `id % 4`).
//!   - baseline: one `BaseConsumer`, the topic's metadata fetched, the 4 partitions
//!     assigned by hand from the beginning, `poll` until every message is read, each value
//!     decoded by serde_json into the same struct, the ids summed;
//!   - Weir at `-w 1` and `-w 2`: `read_kafka` (bounded, `json::<Ev>()`, parallelism = workers)
//!     → `map` to the id → a sink summing the ids per instance.
//! - **sink**: the same records into a fresh 4-partition topic per run.
//!   - baseline: a `BaseProducer` loop (librdkafka's default producer settings, which are
//!     those Weir's sink sets: `linger.ms=5`, no idempotence): build the record, encode it
//!     with serde_json, send (on a full queue, `poll` and retry), `poll` without waiting
//!     every 1,024 records (Weir's sink does after each batch), `flush` at the end;
//!   - Weir at `-w 1` and `-w 2`: `generate` (parallelism = workers) → `write_kafka`
//!     (`json()`, parallelism = workers).
//!
//!   Every sink run's topic is read back (untimed) and must hold the records (count and sum
//!   of ids).
//!
//! Times run from before the client is created (the job's start, for Weir) until the last
//! record is read, or acknowledged by the broker. One warm-up run of each side, then
//! `--reps` interleaved timed runs; the best is reported. The targets (Weir `-w 2`
//! at least 0.8x the hand-written loop, source and sink) are printed with whether they hold;
//! timing is not asserted.
//!
//! Both sides' consumers run with `fetch.wait.max.ms=10` and `fetch.queue.backoff.ms=10`
//! (see [`CONSUMER_TUNING`] for why); `--librdkafka-defaults` leaves them out, `--set
//! key=value` adds a librdkafka property to every client of both sides.
//!
//! `cargo bench --bench kafka_source_sink [-- --records N] [--reps R]` (1,000,000 records
//! and 3 runs by default). Prints two tables and writes `$CARGO_TARGET_DIR/bench/
//! kafka_source_sink.json` (`target/` without it). `--only SIDE` (or `WEIR_BENCH_ONLY=SIDE`),
//! SIDE one of `source-baseline`, `source-w1`, `source-w2`, `sink-baseline`, `sink-w1`,
//! `sink-w2`, runs that side once after the (untimed) fill, for `perf`. Under `cargo test`
//! (no `--bench` flag) it does a small smoke run. Needs tansu: `bash scripts/install-kafka.sh`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::SinkWriter;
use weir_kafka::{KafkaConfig, KafkaRecord, KafkaSink, KafkaSource, ReadKafka, WriteKafka};

const PARTITIONS: i32 = 4;
/// How long a reading loop waits for the next message before it gives up.
const STALL: Duration = Duration::from_secs(60);

/// Consumer settings for both sides (unless `--librdkafka-defaults`): with librdkafka's
/// defaults against tansu 0.6 both sides wait on timers most of the time, not on the client.
/// tansu sleeps half of `fetch.wait.max.ms` (500 ms) in every fetch, also one that has data;
/// and it answers a fetch with up to 5 MB of one partition (it ignores the per-partition
/// limit), about 125,000 of these records, more than `queued.min.messages` (100,000), so
/// librdkafka holds the next fetch back for `fetch.queue.backoff.ms` (1 s) every time.
const CONSUMER_TUNING: [(&str, &str); 2] = [
    ("fetch.wait.max.ms", "10"),
    ("fetch.queue.backoff.ms", "10"),
];

/// The librdkafka properties of the run: for consumers, and for every client (`--set`).
struct Properties {
    consumer: Vec<(String, String)>,
    all: Vec<(String, String)>,
}

static PROPERTIES: std::sync::OnceLock<Properties> = std::sync::OnceLock::new();

/// The properties of a consumer (`consumer`) or producer.
fn properties(consumer: bool) -> impl Iterator<Item = &'static (String, String)> {
    let p = PROPERTIES.get().expect("properties are set in main");
    let tuning = if consumer { &p.consumer[..] } else { &[] };
    tuning.iter().chain(&p.all)
}

/// A client configuration for `bootstrap` with the run's properties.
fn client(bootstrap: &str, consumer: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in properties(consumer) {
        c.set(k, v);
    }
    c
}

/// Weir's connection settings for `bootstrap` with the run's properties.
fn kafka_config(bootstrap: &str, consumer: bool) -> KafkaConfig {
    properties(consumer).fold(KafkaConfig::new(bootstrap), |c, (k, v)| c.set(k, v))
}

const INSTALL: &str = "run `bash scripts/install-kafka.sh` (it builds tansu into \
                       ~/.cache/weir/tansu-0.6.0)";

/// A record, as both sides decode and encode it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ev {
    id: u64,
    user: String,
    v: f64,
}

/// Record `k`.
fn ev(k: u64) -> Ev {
    Ev {
        id: k,
        user: format!("u{}", k % 100),
        v: (k % 4) as f64 * 0.25,
    }
}

/// The sum of the ids `0..n`: what every side must count.
fn id_sum(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// A tansu broker on a free port, memory storage; killed when dropped.
struct Broker {
    port: u16,
    child: Child,
}

impl Broker {
    fn start() -> Broker {
        let tansu = std::env::var_os("WEIR_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("WEIR_CACHE_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/weir")
                    })
                    .join("tansu-0.6.0/bin/tansu")
            });
        assert!(
            tansu.exists(),
            "the tansu broker is not installed at {}: {INSTALL}",
            tansu.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e} ({INSTALL})", tansu.display()));
        // From here on the guard kills it, also when the wait below panics.
        let broker = Broker { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn create_topic(&self, topic: &str) {
        let created =
            weir_kafka::create_topic(&KafkaConfig::new(self.bootstrap()), topic, PARTITIONS)
                .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
        assert!(created, "topic {topic} existed already");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills `topic` with records `0..n`, record `k` into partition `k % 4` (untimed).
fn fill(bootstrap: &str, topic: &str, n: u64) {
    let producer: BaseProducer = client(bootstrap, false)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let mut value = Vec::with_capacity(64);
    for k in 0..n {
        value.clear();
        serde_json::to_writer(&mut value, &ev(k)).unwrap();
        let partition = (k % PARTITIONS as u64) as i32;
        send(
            &producer,
            BaseRecord::to(topic)
                .partition(partition)
                .payload(&value[..]),
        );
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
}

/// Sends `record`; on a full queue serves delivery reports and tries again.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, (), [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(10));
                record = back;
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}

/// The hand-written consumer loop: reads `n` messages of `topic` (all 4 partitions from
/// offset 0), decodes them, returns the count and the sum of the ids. tansu's high
/// watermark is not to be trusted, so the loop stops when it has read `n` messages (or
/// nothing came for a minute).
///
/// Offset 0, not `Offset::Beginning`: tansu 0.6 answers "earliest" with the batch stored
/// first, not the lowest offset. When two producers write a partition at once (Weir's sink
/// at `-w 2`), a batch with a higher offset can be stored before a lower one, and a reader
/// starting at "the beginning" then skipped the records below it (the smoke run failed
/// with 4,837 of 5,000 records). The bench's topics are fresh, so they start at 0.
fn consume(bootstrap: &str, topic: &str, n: u64) -> (u64, u64) {
    let consumer: BaseConsumer = client(bootstrap, true)
        .set("group.id", "bench-baseline")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    // The partitions' leader known before the assignment, librdkafka starts fetching at
    // once (otherwise it retries after 500 ms).
    consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(0))
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let (mut count, mut sum) = (0u64, 0u64);
    let mut last = Instant::now();
    while count < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let e: Ev = serde_json::from_slice(m.payload().expect("a value")).unwrap();
                sum += e.id;
                count += 1;
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume {topic}: {e}"),
            None if last.elapsed() > STALL => break,
            None => {}
        }
    }
    (count, sum)
}

fn baseline_source(bootstrap: &str, topic: &str, n: u64) -> Duration {
    let start = Instant::now();
    let (count, sum) = consume(bootstrap, topic, n);
    let took = start.elapsed();
    assert_eq!((count, sum), (n, id_sum(n)), "the baseline consumer");
    took
}

/// Counts records and sums ids per instance; adds them to the totals at the end.
struct Counter {
    totals: Arc<[AtomicU64; 2]>,
    count: u64,
    sum: u64,
}

impl SinkWriter<u64> for Counter {
    fn write(&mut self, batch: &mut Vec<u64>) -> Result<(), WeirError> {
        self.count += batch.len() as u64;
        self.sum += batch.iter().sum::<u64>();
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        self.totals[0].fetch_add(self.count, Ordering::Relaxed);
        self.totals[1].fetch_add(self.sum, Ordering::Relaxed);
        Ok(())
    }
}

fn weir_source(workers: usize, bootstrap: &str, topic: &str, n: u64) -> Duration {
    let totals = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let (t, bootstrap, topic) = (
        Arc::clone(&totals),
        bootstrap.to_string(),
        topic.to_string(),
    );
    let start = Instant::now();
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let source = KafkaSource::builder(kafka_config(&bootstrap, true))
            .topics([topic.clone()])
            .bounded()
            .json::<Ev>()?;
        let t = Arc::clone(&t);
        job.read_kafka(op("read").parallelism(workers), source)
            .map("id", |r: KafkaRecord<Ev>| r.value.id)
            .sink(
                op("count").parallelism(workers),
                "sink:count",
                move |_, _| Counter {
                    totals: t,
                    count: 0,
                    sum: 0,
                },
            );
        Ok(())
    })
    .unwrap();
    let took = start.elapsed();
    let got = (
        totals[0].load(Ordering::Relaxed),
        totals[1].load(Ordering::Relaxed),
    );
    assert_eq!(got, (n, id_sum(n)), "weir -w {workers} source");
    took
}

/// The hand-written producer loop: records `0..n` into `topic`, acknowledged.
fn baseline_sink(bootstrap: &str, topic: &str, n: u64) -> Duration {
    let start = Instant::now();
    let producer: BaseProducer = client(bootstrap, false).create().expect("producer");
    let mut value = Vec::with_capacity(64);
    for k in 0..n {
        value.clear();
        serde_json::to_writer(&mut value, &ev(k)).unwrap();
        send(&producer, BaseRecord::to(topic).payload(&value[..]));
        if k % 1024 == 1023 {
            // Serve delivery reports without waiting (as rdkafka's examples do).
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300)).expect("flush");
    start.elapsed()
}

fn weir_sink(workers: usize, bootstrap: &str, topic: &str, n: u64) -> Duration {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    let start = Instant::now();
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let sink = KafkaSink::builder(kafka_config(&bootstrap, false), topic.clone()).json();
        job.generate(op("records").parallelism(workers), Some(n), ev)
            .write_kafka(op("write").parallelism(workers), sink);
        Ok(())
    })
    .unwrap();
    start.elapsed()
}

/// The sides, in the order they run.
const SIDES: [&str; 6] = [
    "source-baseline",
    "source-w1",
    "source-w2",
    "sink-baseline",
    "sink-w1",
    "sink-w2",
];

/// Runs and checks the benchmark's fixtures: the source topic and fresh sink topics.
struct Bench {
    broker: Broker,
    n: u64,
    source_topic: String,
    sink_topics: u64,
    verify_sinks: bool,
}

impl Bench {
    fn new(n: u64, verify_sinks: bool) -> Bench {
        let broker = Broker::start();
        let source_topic = "source".to_string();
        broker.create_topic(&source_topic);
        let start = Instant::now();
        fill(&broker.bootstrap(), &source_topic, n);
        println!(
            "filled {source_topic} ({PARTITIONS} partitions) with {n} records in {:.1} s (untimed)",
            start.elapsed().as_secs_f64()
        );
        Bench {
            broker,
            n,
            source_topic,
            sink_topics: 0,
            verify_sinks,
        }
    }

    /// Runs one side once: its time.
    fn run(&mut self, side: &str) -> Duration {
        let (b, n) = (self.broker.bootstrap(), self.n);
        if let Some(rest) = side.strip_prefix("source-") {
            let topic = &self.source_topic;
            return match rest {
                "baseline" => baseline_source(&b, topic, n),
                "w1" => weir_source(1, &b, topic, n),
                "w2" => weir_source(2, &b, topic, n),
                _ => panic!("unknown side {side}"),
            };
        }
        self.sink_topics += 1;
        let topic = format!("{side}-{}", self.sink_topics);
        self.broker.create_topic(&topic);
        let took = match side {
            "sink-baseline" => baseline_sink(&b, &topic, n),
            "sink-w1" => weir_sink(1, &b, &topic, n),
            "sink-w2" => weir_sink(2, &b, &topic, n),
            _ => panic!("unknown side {side}"),
        };
        if self.verify_sinks {
            let got = consume(&b, &topic, n);
            assert_eq!(got, (n, id_sum(n)), "{side}: the records in {topic}");
        }
        took
    }
}

/// Best and median of some runs.
fn best_and_median(mut runs: Vec<Duration>) -> (Duration, Duration) {
    runs.sort();
    (runs[0], runs[runs.len() / 2])
}

/// One table: baseline, weir -w 1, weir -w 2 (best, median).
struct Table {
    what: &'static str,
    rows: [(&'static str, (Duration, Duration)); 3],
}

impl Table {
    /// Weir -w `w` over the baseline, in throughput (best against best).
    fn ratio(&self, w: usize) -> f64 {
        self.rows[0].1 .0.as_secs_f64() / self.rows[w].1 .0.as_secs_f64()
    }

    fn print(&self, n: u64) {
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!("\n== {}", self.what);
        println!(
            "{:>10} {:>10} {:>10} {:>14} {:>12}",
            "side", "best ms", "median ms", "best rec/s", "vs baseline"
        );
        for (w, (name, (best, median))) in self.rows.iter().enumerate() {
            println!(
                "{name:>10} {:>10.1} {:>10.1} {:>14.0} {:>11.3}x",
                best.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                rate(*best),
                self.ratio(w)
            );
        }
        let verdict = if self.ratio(2) >= 0.8 {
            "holds"
        } else {
            "MISSED"
        };
        println!(
            "weir -w 2 / baseline throughput: {:.3}x (target >= 0.8x: {verdict})",
            self.ratio(2)
        );
    }

    fn json(&self, n: u64) -> String {
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        format!(
            "{{\"baseline_records_per_s\":{:.0},\"weir_w1_records_per_s\":{:.0},\
             \"weir_w2_records_per_s\":{:.0},\"weir_w1_vs_baseline\":{:.4},\
             \"weir_w2_vs_baseline\":{:.4}}}",
            rate(self.rows[0].1 .0),
            rate(self.rows[1].1 .0),
            rate(self.rows[2].1 .0),
            self.ratio(1),
            self.ratio(2)
        )
    }
}

/// `--name value` or `--name=value`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let prefix = format!("--{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == long {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&prefix).map(str::to_string)
        }
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then a quick smoke run (same code, small input) is enough.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let number = |name: &str| {
        flag(&args, name).map(|v| {
            v.replace('_', "")
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("--{name} takes a number, not {v}"))
        })
    };
    let n = number("records").unwrap_or(if benchmarking { 1_000_000 } else { 5_000 });
    let reps = number("reps")
        .unwrap_or(if benchmarking { 3 } else { 1 })
        .max(1) as usize;
    let set: Vec<(String, String)> = args
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.strip_prefix("--set=") {
            Some(kv) => Some(kv.to_string()),
            None if a == "--set" => args.get(i + 1).cloned(),
            None => None,
        })
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => panic!("--set takes key=value, not {kv}"),
        })
        .collect();
    let defaults = args.iter().any(|a| a == "--librdkafka-defaults");
    let consumer = if defaults {
        Vec::new()
    } else {
        CONSUMER_TUNING
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let settings: Vec<String> = consumer
        .iter()
        .map(|(k, v)| format!("{k}={v} (consumers)"))
        .chain(set.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let settings = if settings.is_empty() {
        "librdkafka's defaults".to_string()
    } else {
        settings.join(", ")
    };
    let _ = PROPERTIES.set(Properties { consumer, all: set });
    let only = flag(&args, "only").or_else(|| std::env::var("WEIR_BENCH_ONLY").ok());
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench kafka_source_sink` for real numbers)");
    }

    if let Some(side) = only {
        assert!(
            SIDES.contains(&side.as_str()),
            "--only takes one of {SIDES:?}, not {side}"
        );
        println!("client settings, both sides: {settings}");
        let mut bench = Bench::new(n, false);
        let took = bench.run(&side);
        println!(
            "{side}: {n} records in {:.1} ms ({:.0} records/s)",
            took.as_secs_f64() * 1e3,
            n as f64 / took.as_secs_f64()
        );
        return;
    }

    println!(
        "Kafka source and sink vs hand-written rdkafka loops, tansu 0.6 (memory storage), \
         {n} JSON records, {PARTITIONS} partitions; 1 warm-up and {reps} interleaved runs per side"
    );
    println!("client settings, both sides: {settings}");
    let mut bench = Bench::new(n, true);
    for side in SIDES {
        let took = bench.run(side);
        println!("warm-up {side:>15}: {:>9.1} ms", took.as_secs_f64() * 1e3);
    }
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); SIDES.len()];
    for _ in 0..reps {
        for (i, side) in SIDES.iter().enumerate() {
            runs[i].push(bench.run(side));
        }
    }
    let mut runs = runs.into_iter().map(best_and_median);
    let mut row = |name| (name, runs.next().unwrap());
    let source = Table {
        what: "source: read, decode JSON, sum the ids",
        rows: [row("baseline"), row("weir -w 1"), row("weir -w 2")],
    };
    let sink = Table {
        what: "sink: build, encode JSON, produce, flush",
        rows: [row("baseline"), row("weir -w 1"), row("weir -w 2")],
    };
    source.print(n);
    sink.print(n);
    if benchmarking {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("bench");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            dir.join("kafka_source_sink.json"),
            format!(
                "{{\"records\":{n},\"partitions\":{PARTITIONS},\"runs\":{reps},\
                 \"source\":{},\"sink\":{}}}\n",
                source.json(n),
                sink.json(n)
            ),
        );
    }
}
