//! What the evaluators share: the weight of each key (a score, a (label, prediction) pair)
//! that every instance folds its rows into, the numbers they read from their columns, their
//! output, one row of `Double` metrics in the order of `metricsNames`, and how their
//! `windows` cut the input ([`evaluate`]).

use serde::{Deserialize, Serialize};
use weir_core::{op, Data, Job};

use crate::error::MlError;
use crate::param::Windows;
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// The output schema: one `Double` column per metric; a metric named twice is an error.
pub(crate) fn metrics_schema(stage: &str, names: &[String]) -> Result<Schema, MlError> {
    let mut schema = Schema::new(Vec::<(String, DataType)>::new());
    for name in names {
        schema = schema
            .with_column(name, DataType::Double)
            .map_err(|_| MlError::InvalidParam {
                stage: stage.to_string(),
                param: "metricsNames".into(),
                message: format!("names metric {name} twice"),
            })?;
    }
    Ok(schema)
}

/// The index of the optional weight column.
pub(crate) fn weight_index(
    stage: &str,
    schema: &Schema,
    name: Option<String>,
) -> Result<Option<usize>, MlError> {
    name.map(|w| schema.typed_index(stage, &w, &[DataType::Long, DataType::Double]))
        .transpose()
}

/// What an evaluator's rows fold into: entries `(key, weights)` sorted and merged by key
/// once they have grown enough, and the first bad row.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Tally<K, W> {
    pub(crate) entries: Vec<(K, W)>,
    /// How many entries were there after the last compaction.
    compacted: usize,
    pub(crate) error: Option<String>,
}

pub(crate) trait Key: Copy {
    fn order(&self, other: &Self) -> std::cmp::Ordering;
}

/// Scores, highest first.
impl Key for f64 {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        other.total_cmp(self)
    }
}

/// (label, prediction) pairs, ascending.
impl Key for (f64, f64) {
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.total_cmp(&other.1))
    }
}

pub(crate) trait Weights: Copy {
    fn add(&mut self, other: Self);
}

impl Weights for f64 {
    fn add(&mut self, other: Self) {
        *self += other;
    }
}

/// Positive and negative weight.
impl Weights for (f64, f64) {
    fn add(&mut self, other: Self) {
        self.0 += other.0;
        self.1 += other.1;
    }
}

impl<K: Key, W: Weights> Tally<K, W> {
    pub(crate) fn push(&mut self, key: K, weights: W) {
        self.entries.push((key, weights));
        if self.entries.len() > 2 * self.compacted + 4096 {
            self.compact();
        }
    }

    /// Sorts the entries (a stable sort: merging sorted runs is linear) and merges equal keys.
    pub(crate) fn compact(&mut self) {
        self.entries.sort_by(|a, b| a.0.order(&b.0));
        let mut out: Vec<(K, W)> = Vec::with_capacity(self.entries.len());
        for (k, w) in self.entries.drain(..) {
            match out.last_mut() {
                Some(last) if last.0.order(&k) == std::cmp::Ordering::Equal => last.1.add(w),
                _ => out.push((k, w)),
            }
        }
        self.entries = out;
        self.compacted = self.entries.len();
    }

    pub(crate) fn fail(&mut self, error: String) {
        self.error.get_or_insert(error);
    }

    pub(crate) fn merge(&mut self, other: Tally<K, W>) {
        if let Some(e) = other.error {
            self.fail(e);
        }
        self.entries.extend(other.entries);
        self.compact();
    }
}

/// A number of a `Long` or `Double` column that must not be NaN.
pub(crate) fn number(
    stage: &str,
    batch: &RowBatch,
    column: usize,
    name: &str,
    row: usize,
) -> Result<f64, String> {
    let x = batch
        .column(column)
        .number(row)
        .ok_or_else(|| format!("{stage}: column `{name}` is not a number column"))?;
    if x.is_nan() {
        return Err(format!(
            "{stage}: column `{name}` has NaN (a missing value) in row {row} of a batch"
        ));
    }
    // -0.0 and 0.0 are one value.
    Ok(x + 0.0)
}

/// One row of metrics (`schema`'s columns, in order).
pub(crate) fn metrics_row(schema: &Schema, metric: impl Fn(&str) -> f64) -> RowBatch {
    RowBatch::new(
        1,
        schema
            .fields()
            .iter()
            .map(|f| Column::Double(vec![metric(&f.name)]))
            .collect(),
    )
}

/// The metrics an evaluator computes from its tally's sorted, merged entries.
pub(crate) trait Metrics<K, W> {
    /// The metrics of `entries`.
    fn of(entries: &[(K, W)]) -> Self;
    /// Metric `name` (one of the evaluator's `metricsNames`).
    fn get(&self, name: &str) -> f64;
}

/// The table of metric rows (the metrics `names`, as [`Metrics`] `M` computes them) of
/// `input` under `windows`, with `fold` adding a batch's rows to a tally:
/// - `GlobalWindows`: one row at the end of the bounded input; every instance folds its
///   rows and one merges the tallies.
/// - `CountTumblingWindows` of `size`: one row per `size` rows, in the order they reach the
///   evaluator's one instance, each as soon as its window is complete, so that the stream
///   scored by an online model is evaluated while it runs (prequential evaluation); an
///   incomplete last window is dropped, as Flink's count windows drop it.
///
/// A row that cannot be read fails the job with the fold's message.
pub(crate) fn evaluate<'s, K, W, M>(
    job: &mut Job<'s>,
    stage: &str,
    input: Table<'s>,
    (windows, names): (Windows, &[String]),
    fold: impl Fn(&mut Tally<K, W>, &RowBatch) + 'static,
) -> Result<Table<'s>, MlError>
where
    K: Key + Data + Default,
    W: Weights + Data + Default,
    M: Metrics<K, W>,
{
    let schema = metrics_schema(stage, names)?;
    let out_schema = schema.clone();
    let metrics = move |entries: &[(K, W)]| {
        let metrics = M::of(entries);
        metrics_row(&out_schema, |name| metrics.get(name))
    };
    let name = job.unique_name(stage);
    let result = move |mut tally: Tally<K, W>| {
        if let Some(e) = tally.error.take() {
            return Err(e);
        }
        tally.compact();
        Ok(metrics(&tally.entries))
    };
    let stream = match windows {
        Windows::Global => input
            .stream
            .aggregate_to_end(
                name.clone(),
                Tally::default,
                move |tally, batch: RowBatch| fold(tally, &batch),
                |tally, other| tally.merge(other),
            )
            .try_map_batch(
                op(format!("{name}.metrics")).parallelism(1),
                move |tallies: Vec<Tally<K, W>>| {
                    tallies
                        .into_iter()
                        .map(&result)
                        .collect::<Result<Vec<_>, _>>()
                },
            ),
        Windows::CountTumbling { size } => {
            let mut window = CountWindow {
                size: size as usize,
                rows: 0,
                tally: Tally::default(),
            };
            input
                .stream
                .try_map_batch(op(name).parallelism(1), move |batches: Vec<RowBatch>| {
                    let mut rows = Vec::new();
                    for batch in batches {
                        for tally in window.add(&batch, &fold) {
                            rows.push(result(tally)?);
                        }
                    }
                    Ok(rows)
                })
        }
        other => {
            return Err(MlError::InvalidParam {
                stage: stage.to_string(),
                param: "windows".into(),
                message: format!(
                    "{} are not supported by evaluators: Weir's tables have no event time or \
                 processing time to cut windows by (use GlobalWindows or \
                 CountTumblingWindows)",
                    other.class_name()
                ),
            })
        }
    };
    Ok(Table::new(schema, stream))
}

/// The tally of the current count window.
struct CountWindow<K, W> {
    size: usize,
    rows: usize,
    tally: Tally<K, W>,
}

impl<K: Key + Default, W: Weights + Default> CountWindow<K, W> {
    /// Folds the rows of `batch` in, cutting it at window ends: the tallies of the windows it
    /// completes.
    fn add(
        &mut self,
        batch: &RowBatch,
        fold: impl Fn(&mut Tally<K, W>, &RowBatch),
    ) -> Vec<Tally<K, W>> {
        let mut complete = Vec::new();
        let mut start = 0;
        while start < batch.rows() {
            let take = (self.size - self.rows).min(batch.rows() - start);
            if take == batch.rows() {
                fold(&mut self.tally, batch);
            } else {
                fold(&mut self.tally, &batch.slice(start..start + take));
            }
            self.rows += take;
            start += take;
            if self.rows == self.size {
                complete.push(std::mem::take(&mut self.tally));
                self.rows = 0;
            }
        }
        complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_sorted_runs_and_equal_keys() {
        let mut a = Tally::<f64, (f64, f64)>::default();
        for (s, p) in [(0.5, 1.0), (0.9, 1.0), (0.5, 0.0), (-0.0, 1.0)] {
            a.push(s + 0.0, if p == 1.0 { (1.0, 0.0) } else { (0.0, 1.0) });
        }
        let mut b = Tally::<f64, (f64, f64)>::default();
        b.push(0.0, (0.0, 2.0));
        b.push(0.9, (0.0, 1.0));
        a.merge(b);
        assert_eq!(
            a.entries,
            vec![(0.9, (1.0, 1.0)), (0.5, (1.0, 1.0)), (0.0, (1.0, 2.0))]
        );
        // Many entries: compaction keeps one per key.
        let mut many = Tally::<(f64, f64), f64>::default();
        for i in 0..100_000 {
            many.push(((i % 3) as f64, (i % 2) as f64), 1.0);
        }
        many.compact();
        assert_eq!(many.entries.len(), 6);
        assert_eq!(many.entries.iter().map(|e| e.1).sum::<f64>(), 100_000.0);
    }
}
