//! Per-operator metrics and the job report.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// One operator instance's counters as gathered for the report: node id, then
/// [in, out, busy ns, dead letters], the named counters and the event-time watermark.
pub(crate) type NodeCounters = (usize, ([u64; 4], Vec<(String, u64)>, Option<i64>));

/// Counters of one operator instance on one worker. Updated once per batch, not per record.
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    records_in: Cell<u64>,
    records_out: Cell<u64>,
    busy_ns: Cell<u64>,
    dead: Cell<u64>,
    counters: std::cell::RefCell<std::collections::BTreeMap<String, u64>>,
    /// The event-time watermark of the instance, if it tracks one.
    watermark: Cell<Option<i64>>,
}

impl OperatorMetrics {
    /// Adds `n` to the operator's named counter `name` (e.g. records per model version);
    /// counters are summed over instances into [`OperatorReport::counters`].
    pub fn count(&self, name: &str, n: u64) {
        let mut counters = self.counters.borrow_mut();
        match counters.get_mut(name) {
            Some(c) => *c += n,
            None => {
                counters.insert(name.to_string(), n);
            }
        }
    }
    /// Sets the operator's named counter `name` to `n` (for counts the operator keeps
    /// itself); summed over instances like [`OperatorMetrics::count`].
    pub fn set_counter(&self, name: &str, n: u64) {
        if n > 0 || self.counters.borrow().contains_key(name) {
            self.counters.borrow_mut().insert(name.to_string(), n);
        }
    }

    /// Records the instance's current event-time watermark (milliseconds); the report shows
    /// the lowest over instances.
    pub fn set_watermark(&self, watermark: i64) {
        self.watermark.set(Some(watermark));
    }

    /// The instance's watermark, if it tracks one.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark.get()
    }

    /// Adds to the input counter.
    #[inline]
    pub fn add_in(&self, n: usize) {
        self.records_in.set(self.records_in.get() + n as u64);
    }
    /// Adds to the output counter.
    #[inline]
    pub fn add_out(&self, n: usize) {
        self.records_out.set(self.records_out.get() + n as u64);
    }
    /// Takes back output counted too early (records that turned out to be dead letters).
    #[inline]
    pub fn remove_out(&self, n: usize) {
        self.records_out
            .set(self.records_out.get().saturating_sub(n as u64));
    }
    /// Adds to the dead-letter counter.
    #[inline]
    pub fn add_dead(&self, n: u64) {
        self.dead.set(self.dead.get() + n);
    }
    /// Adds busy time.
    #[inline]
    pub fn add_busy(&self, d: Duration) {
        self.busy_ns.set(self.busy_ns.get() + d.as_nanos() as u64);
    }
    /// Starts a busy-time measurement of operator `node` that ends when the guard drops.
    /// While it lives, a panic on this thread is attributed to `node`.
    #[inline]
    pub fn busy_in(&self, node: usize) -> BusyGuard<'_> {
        CURRENT_OPERATOR.with(|c| c.store(node, Ordering::Relaxed));
        BusyGuard {
            metrics: self,
            start: Instant::now(),
        }
    }
    pub(crate) fn snapshot(&self) -> ([u64; 4], Vec<(String, u64)>, Option<i64>) {
        let counters = self
            .counters
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        (
            [
                self.records_in.get(),
                self.records_out.get(),
                self.busy_ns.get(),
                self.dead.get(),
            ],
            counters,
            self.watermark.get(),
        )
    }
}

/// Measures busy time of one operator activation.
pub struct BusyGuard<'a> {
    metrics: &'a OperatorMetrics,
    start: Instant,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.metrics.add_busy(self.start.elapsed());
        if !std::thread::panicking() {
            // `try_with`: a guard dropped while the thread's locals are torn down is harmless.
            let _ = CURRENT_OPERATOR.try_with(|c| c.store(NO_OPERATOR, Ordering::Relaxed));
        }
    }
}

/// [`CURRENT_OPERATOR`] when no operator's logic runs.
pub(crate) const NO_OPERATOR: usize = usize::MAX;

thread_local! {
    /// The operator whose logic is running on this thread ([`NO_OPERATOR`] for none): for
    /// panic messages, and shared so that a failing job can name the operator a worker that
    /// does not stop is stuck in.
    pub(crate) static CURRENT_OPERATOR: Arc<AtomicUsize> =
        Arc::new(AtomicUsize::new(NO_OPERATOR));
}

/// The operator whose logic runs on this thread now, if any; clears it.
pub(crate) fn take_current_operator() -> Option<usize> {
    let node = CURRENT_OPERATOR.with(|c| c.swap(NO_OPERATOR, Ordering::Relaxed));
    (node != NO_OPERATOR).then_some(node)
}

/// Totals of one operator over all its instances.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorReport {
    /// Operator name.
    pub name: String,
    /// Operator kind.
    pub kind: String,
    /// Parallelism.
    pub parallelism: usize,
    /// Records received (for sources: records read, including malformed ones).
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Time spent in the operator's logic, summed over instances.
    pub busy_ms: f64,
    /// Malformed records this operator sent to its dead-letter output.
    pub dead_letters: u64,
    /// Operator-specific named counters (see [`OperatorMetrics::count`]).
    pub counters: std::collections::BTreeMap<String, u64>,
    /// The event-time watermark (ms) of an event-time operator: the lowest over its
    /// instances at the end of the job (`i64::MAX` once its inputs ended).
    pub watermark: Option<i64>,
}

/// What a finished job reports: per-operator counts and times, dead letters, wall time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// Total workers.
    pub workers: usize,
    /// Wall-clock time of the run on this process, in milliseconds.
    pub elapsed_ms: f64,
    /// One entry per operator, in plan order.
    pub operators: Vec<OperatorReport>,
    /// Malformed records routed to dead-letter outputs (all operators).
    pub dead_letters: u64,
    /// The job graph that ran.
    pub plan: Plan,
    /// The checkpoints taken (on the process of worker 0, which coordinates them).
    pub checkpoints: Vec<crate::CheckpointStats>,
}

impl JobReport {
    /// The report line of an operator.
    pub fn operator(&self, name: &str) -> Option<&OperatorReport> {
        self.operators.iter().find(|o| o.name == name)
    }

    pub(crate) fn from_parts(plan: Plan, parts: &[NodeCounters], elapsed: Duration) -> Self {
        let mut operators: Vec<OperatorReport> = plan
            .nodes
            .iter()
            .map(|n| OperatorReport {
                name: n.name.clone(),
                kind: n.kind.clone(),
                parallelism: n.parallelism,
                ..OperatorReport::default()
            })
            .collect();
        for (node, ([rin, rout, busy, dead], counters, watermark)) in parts {
            if let Some(op) = operators.get_mut(*node) {
                if let Some(w) = watermark {
                    op.watermark = Some(op.watermark.map_or(*w, |o| o.min(*w)));
                }
                op.records_in += rin;
                op.records_out += rout;
                op.busy_ms += *busy as f64 / 1e6;
                op.dead_letters += dead;
                for (name, n) in counters {
                    *op.counters.entry(name.clone()).or_default() += n;
                }
            }
        }
        let dead_letters = operators.iter().map(|o| o.dead_letters).sum();
        JobReport {
            workers: plan.workers,
            elapsed_ms: elapsed.as_secs_f64() * 1e3,
            operators,
            dead_letters,
            plan,
            checkpoints: Vec::new(),
        }
    }
}

impl fmt::Display for JobReport {
    /// A table of the operators whose name and kind columns are as wide as their longest
    /// entry, then counters, watermarks, checkpoints and the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = column_width("operator", self.operators.iter().map(|o| o.name.as_str()));
        let kind = column_width("kind", self.operators.iter().map(|o| o.kind.as_str()));
        writeln!(
            f,
            "{:<name$} {:<kind$} {:>3} {:>12} {:>12} {:>10}",
            "operator", "kind", "p", "records in", "records out", "busy ms"
        )?;
        for o in &self.operators {
            writeln!(
                f,
                "{:<name$} {:<kind$} {:>3} {:>12} {:>12} {:>10.1}",
                o.name, o.kind, o.parallelism, o.records_in, o.records_out, o.busy_ms
            )?;
        }
        for o in self.operators.iter().filter(|o| !o.counters.is_empty()) {
            let counters: Vec<String> =
                o.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(f, "{:<name$} {}", o.name, counters.join(" "))?;
        }
        for o in &self.operators {
            if let Some(w) = o.watermark {
                writeln!(f, "{:<name$} watermark {}", o.name, watermark_text(w))?;
            }
        }
        if let Some(last) = self.checkpoints.last() {
            let bytes: u64 = self.checkpoints.iter().map(|c| c.bytes).sum();
            writeln!(
                f,
                "{} checkpoint(s), {bytes} bytes; the last: #{} at epoch {}, {} ms ({} ms aligning), {} bytes{}",
                self.checkpoints.len(),
                last.id,
                last.epoch,
                last.duration_ms,
                last.alignment_ms,
                last.bytes,
                if last.full { ", full" } else { ", incremental" }
            )?;
        }
        write!(
            f,
            "{} worker(s), {:.1} ms, {} dead letter(s)",
            self.workers, self.elapsed_ms, self.dead_letters
        )
    }
}

/// The width of a column: its longest entry's (in characters), at least its title's.
fn column_width<'a>(title: &str, entries: impl Iterator<Item = &'a str>) -> usize {
    entries
        .map(|e| e.chars().count())
        .fold(title.chars().count(), usize::max)
}

/// A watermark for people: `none yet`, `end of input`, or milliseconds.
fn watermark_text(w: i64) -> String {
    match w {
        i64::MIN => "none yet".into(),
        i64::MAX => "end of input".into(),
        w => format!("{w} ms"),
    }
}

/// Live operator counters of a running job, for a metrics endpoint: every worker of this
/// process publishes its counters a few times a second (and at the end). Clone it into
/// [`crate::Config::live_metrics`] and read it from any thread.
#[derive(Clone, Debug, Default)]
pub struct LiveMetrics {
    inner: std::sync::Arc<std::sync::Mutex<LiveState>>,
}

#[derive(Debug, Default)]
struct LiveState {
    started: Option<Instant>,
    /// Per worker: operator name → [in, out, busy ns, dead letters].
    workers: std::collections::BTreeMap<usize, Vec<(String, [u64; 4])>>,
    /// Per worker: operator name → event-time watermark, for operators that track one.
    watermarks: std::collections::BTreeMap<usize, Vec<(String, i64)>>,
    /// Checkpoints, as the coordinator (worker 0, on process 0) saw them; `None` when the
    /// job does not checkpoint (or this process does not coordinate).
    checkpoints: Option<CheckpointGauges>,
}

/// Checkpoint metrics of a running job.
#[derive(Clone, Debug, Default)]
struct CheckpointGauges {
    completed: u64,
    failed: u64,
    bytes: u64,
    last: Option<crate::CheckpointStats>,
}

impl LiveMetrics {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn publish(&self, worker: usize, counters: Vec<(String, [u64; 4])>) {
        let mut state = self.inner.lock().unwrap();
        state.started.get_or_insert_with(Instant::now);
        state.workers.insert(worker, counters);
    }

    /// The job checkpoints and this process coordinates them: its checkpoint metrics start
    /// (at zero).
    pub(crate) fn checkpoints_started(&self) {
        let mut state = self.inner.lock().unwrap();
        state
            .checkpoints
            .get_or_insert_with(CheckpointGauges::default);
    }

    /// A checkpoint completed.
    pub(crate) fn checkpoint_completed(&self, stats: &crate::CheckpointStats) {
        let mut state = self.inner.lock().unwrap();
        let gauges = state
            .checkpoints
            .get_or_insert_with(CheckpointGauges::default);
        gauges.completed += 1;
        gauges.bytes += stats.bytes;
        gauges.last = Some(stats.clone());
    }

    /// A checkpoint failed.
    pub(crate) fn checkpoint_failed(&self) {
        let mut state = self.inner.lock().unwrap();
        state
            .checkpoints
            .get_or_insert_with(CheckpointGauges::default)
            .failed += 1;
    }

    pub(crate) fn publish_watermarks(&self, worker: usize, watermarks: Vec<(String, i64)>) {
        self.inner
            .lock()
            .unwrap()
            .watermarks
            .insert(worker, watermarks);
    }

    /// Per event-time operator: its watermark (ms), the lowest over this process's workers.
    pub fn watermarks(&self) -> Vec<(String, i64)> {
        let state = self.inner.lock().unwrap();
        let mut lowest: std::collections::BTreeMap<String, i64> = Default::default();
        for marks in state.watermarks.values() {
            for (name, w) in marks {
                let e = lowest.entry(name.clone()).or_insert(*w);
                *e = (*e).min(*w);
            }
        }
        lowest.into_iter().collect()
    }

    /// Per operator (summed over this process's workers): [in, out, busy ns, dead letters].
    pub fn operators(&self) -> Vec<(String, [u64; 4])> {
        let state = self.inner.lock().unwrap();
        let mut sums: std::collections::BTreeMap<String, [u64; 4]> = Default::default();
        for counters in state.workers.values() {
            for (name, c) in counters {
                let sum = sums.entry(name.clone()).or_default();
                for i in 0..4 {
                    sum[i] += c[i];
                }
            }
        }
        sums.into_iter().collect()
    }

    /// The counters in Prometheus' text format: records in and out, dead letters and busy
    /// seconds per operator, and records out per second since the job started.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let elapsed = {
            let state = self.inner.lock().unwrap();
            state.started.map_or(0.0, |s| s.elapsed().as_secs_f64())
        };
        let operators = self.operators();
        let mut out = String::new();
        // Metric name, type, help, and its value from [in, out, busy ns, dead] and elapsed s.
        type Family = (
            &'static str,
            &'static str,
            &'static str,
            fn(&[u64; 4], f64) -> f64,
        );
        let families: [Family; 5] = [
            (
                "weir_operator_records_in_total",
                "counter",
                "Records into the operator.",
                |c, _| c[0] as f64,
            ),
            (
                "weir_operator_records_out_total",
                "counter",
                "Records out of the operator.",
                |c, _| c[1] as f64,
            ),
            (
                "weir_operator_dead_letters_total",
                "counter",
                "Records the operator dead-lettered.",
                |c, _| c[3] as f64,
            ),
            (
                "weir_operator_busy_seconds_total",
                "counter",
                "Time the operator spent working.",
                |c, _| c[2] as f64 / 1e9,
            ),
            (
                "weir_operator_records_out_per_second",
                "gauge",
                "Mean output rate since the job started.",
                |c, t| if t > 0.0 { c[1] as f64 / t } else { 0.0 },
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (operator, c) in &operators {
                let operator = operator.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(
                    out,
                    "{name}{{operator=\"{operator}\"}} {}",
                    value(c, elapsed)
                );
            }
        }
        let watermarks = self.watermarks();
        if !watermarks.is_empty() {
            let name = "weir_operator_watermark_ms";
            let _ = writeln!(
                out,
                "# HELP {name} Event-time watermark of the operator (lowest over workers).\n# TYPE {name} gauge"
            );
            for (operator, w) in watermarks {
                let operator = operator.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(out, "{name}{{operator=\"{operator}\"}} {w}");
            }
        }
        let checkpoints = self.inner.lock().unwrap().checkpoints.clone();
        if let Some(gauges) = checkpoints {
            out += &checkpoint_families(&gauges);
        }
        out
    }
}

/// The checkpoint metrics in Prometheus' text format.
fn checkpoint_families(gauges: &CheckpointGauges) -> String {
    use std::fmt::Write;
    let last = gauges.last.clone().unwrap_or_default();
    let families: [(&str, &str, &str, f64); 9] = [
        (
            "weir_checkpoints_completed_total",
            "counter",
            "Checkpoints completed.",
            gauges.completed as f64,
        ),
        (
            "weir_checkpoints_failed_total",
            "counter",
            "Checkpoints that failed.",
            gauges.failed as f64,
        ),
        (
            "weir_checkpoint_bytes_total",
            "counter",
            "Bytes of all checkpoints written.",
            gauges.bytes as f64,
        ),
        (
            "weir_checkpoint_last_id",
            "gauge",
            "The last completed checkpoint.",
            last.id as f64,
        ),
        (
            "weir_checkpoint_last_epoch",
            "gauge",
            "The epoch the last checkpoint covers.",
            last.epoch as f64,
        ),
        (
            "weir_checkpoint_last_duration_seconds",
            "gauge",
            "From the start of the last checkpoint to its manifest.",
            last.duration_ms as f64 / 1e3,
        ),
        (
            "weir_checkpoint_last_alignment_seconds",
            "gauge",
            "How long the sources took to align on the last checkpoint's epoch.",
            last.alignment_ms as f64 / 1e3,
        ),
        (
            "weir_checkpoint_last_bytes",
            "gauge",
            "Bytes of the last checkpoint.",
            last.bytes as f64,
        ),
        (
            "weir_checkpoint_last_full",
            "gauge",
            "1 if the last checkpoint holds all state, 0 if only changes.",
            f64::from(u8::from(last.full)),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in families {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long names and kinds widen their columns instead of shifting the others.
    #[test]
    fn the_report_table_sizes_its_columns_to_their_content() {
        let operator = |name: &str, kind: &str| OperatorReport {
            name: name.into(),
            kind: kind.into(),
            parallelism: 2,
            records_in: 10,
            records_out: 10,
            busy_ms: 1.0,
            dead_letters: 0,
            counters: Default::default(),
            watermark: None,
        };
        let report = JobReport {
            workers: 2,
            operators: vec![
                operator("read", "source:jsonl"),
                operator("MulticlassClassificationEvaluator.windows", "map"),
                operator("predict", "map_batch_with_broadcast"),
            ],
            ..JobReport::default()
        };
        let text = report.to_string();
        let table: Vec<&str> = text.lines().take(4).collect();
        assert!(table.iter().all(|l| l.len() == table[0].len()), "{text}");
        let kind_at = table[0].find("kind").unwrap();
        assert_eq!(
            table[3].find("map_batch_with_broadcast"),
            Some(kind_at),
            "{text}"
        );
    }

    #[test]
    fn checkpoint_metrics_appear_once_the_job_checkpoints() {
        let live = LiveMetrics::new();
        assert!(!live.prometheus().contains("weir_checkpoint"));
        live.checkpoints_started();
        assert!(live
            .prometheus()
            .contains("weir_checkpoints_completed_total 0"));
        live.checkpoint_completed(&crate::CheckpointStats {
            id: 3,
            epoch: 40,
            duration_ms: 1500,
            alignment_ms: 250,
            bytes: 2048,
            full: true,
        });
        live.checkpoint_failed();
        let text = live.prometheus();
        for line in [
            "weir_checkpoints_completed_total 1",
            "weir_checkpoints_failed_total 1",
            "weir_checkpoint_last_id 3",
            "weir_checkpoint_last_epoch 40",
            "weir_checkpoint_last_duration_seconds 1.5",
            "weir_checkpoint_last_alignment_seconds 0.25",
            "weir_checkpoint_last_bytes 2048",
            "weir_checkpoint_bytes_total 2048",
            "weir_checkpoint_last_full 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
    }

    #[test]
    fn live_metrics_sum_workers_into_prometheus_text() {
        let live = LiveMetrics::new();
        live.publish(0, vec![("map".into(), [10, 8, 1_000_000_000, 2])]);
        live.publish(
            1,
            vec![
                ("map".into(), [5, 5, 0, 0]),
                ("sink \"x\"".into(), [13, 0, 0, 0]),
            ],
        );
        let text = live.prometheus();
        assert!(
            text.contains("# TYPE weir_operator_records_in_total counter"),
            "{text}"
        );
        assert!(
            text.contains("weir_operator_records_in_total{operator=\"map\"} 15"),
            "{text}"
        );
        assert!(
            text.contains("weir_operator_records_out_total{operator=\"map\"} 13"),
            "{text}"
        );
        assert!(
            text.contains("weir_operator_dead_letters_total{operator=\"map\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("weir_operator_busy_seconds_total{operator=\"map\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"operator="sink \"x\"""#),
            "escaped label: {text}"
        );
        // A republished worker replaces its earlier counters.
        live.publish(1, vec![("map".into(), [6, 6, 0, 0])]);
        assert_eq!(
            live.operators()[0],
            ("map".to_string(), [16, 14, 1_000_000_000, 2])
        );
    }

    #[test]
    fn live_watermarks_are_the_lowest_over_workers() {
        let live = LiveMetrics::new();
        live.publish_watermarks(0, vec![("window".into(), 5_000)]);
        live.publish_watermarks(1, vec![("window".into(), 3_000), ("ts".into(), 9_000)]);
        assert_eq!(
            live.watermarks(),
            vec![("ts".to_string(), 9_000), ("window".to_string(), 3_000)]
        );
        let text = live.prometheus();
        assert!(
            text.contains("weir_operator_watermark_ms{operator=\"window\"} 3000"),
            "{text}"
        );
    }
}
