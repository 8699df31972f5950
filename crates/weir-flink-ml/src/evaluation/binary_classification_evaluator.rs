//! Evaluators: Flink ML's `BinaryClassificationEvaluator`
//! (`org.apache.flink.ml.evaluation.binaryclassification`), and Weir's
//! `MulticlassClassificationEvaluator` (`weir.MulticlassClassificationEvaluator`, after Spark
//! ML's evaluator of that name: Flink ML has none). Both are AlgoOperators whose output is a
//! table of one row, one `Double` column per metric, in the order of `metricsNames`.
//!
//! **How the binary evaluator runs.** Flink sorts the `(score, label, weight)` samples by a
//! range partition on sampled score boundaries, sorts each partition, sums each partition's
//! weights, and lets every partition add up its part of the curves from the sums of the
//! partitions before it. Weir sorts by a combine instead: every instance folds its rows into
//! the positive and negative weight of each distinct score, sorted (`aggregate_to_end`'s
//! partials, before any exchange), and one instance merges those sorted runs and walks the
//! curves once. What crosses the network is one entry per distinct score and instance, not
//! the rows; the walk is linear in the distinct scores.
//!
//! **Ties.** Flink walks its sorted samples one at a time, so that samples of equal score add
//! one point each to the curves, in arrival order: with tied scores of both labels its result
//! depends on that order. Weir takes each distinct score as one step of the curves (the
//! convention of scikit-learn and Spark), which is Flink's result whenever tied samples share
//! their label, except for `areaUnderPR` over tied positives below the top score (Flink's
//! steps through the precision of each of them, Weir's draws one line).
//!
//! **Metrics**, from the points `(tpr, fpr, precision, positive rate)` of every distinct score,
//! highest first, starting from no sample predicted positive (precision 1), with Flink's
//! conventions (`tpr` is 1 without positives, `fpr` 1 without negatives):
//! - `areaUnderROC`: the trapezoidal area under `(fpr, tpr)` (scikit-learn's `roc_auc_score`);
//! - `areaUnderPR`: the trapezoidal area under `(tpr, precision)` (scikit-learn's
//!   `auc(recall, precision)` of `precision_recall_curve`, not `average_precision_score`);
//! - `ks`: the largest `|tpr - fpr|`;
//! - `areaUnderLorenz`: the trapezoidal area under `(positive rate, tpr)`, the positive rate
//!   being the share of the weight predicted positive.
//!
//! A sample is positive when its label is `1.0` (Flink's rule; every other label is negative).
//! Its score is the number in `rawPredictionCol`, or element 1 of the vector there. An empty
//! input gives 0 for every metric, as Flink's.

use serde::{Deserialize, Serialize};
use weir_core::{op, Job};

use crate::api::Stage;
use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use crate::error::MlError;
use crate::param::shared::{LABEL_COL, PREDICTION_COL, RAW_PREDICTION_COL, WEIGHT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table, VectorRef};

/// `areaUnderROC`.
pub const AREA_UNDER_ROC: &str = "areaUnderROC";
/// `areaUnderPR`.
pub const AREA_UNDER_PR: &str = "areaUnderPR";
/// `ks`.
pub const KS: &str = "ks";
/// `areaUnderLorenz`.
pub const AREA_UNDER_LORENZ: &str = "areaUnderLorenz";

/// `metricsNames` of the binary evaluator: a subset of `areaUnderROC`, `areaUnderPR`, `ks`
/// and `areaUnderLorenz`.
pub const METRICS_NAMES: Param<Vec<String>> = Param::new(
    "metricsNames",
    "Names of output metrics.",
    Some("[\"areaUnderROC\", \"areaUnderPR\"]"),
    ParamType::StringArray,
    Validator::IsSubSet(&[AREA_UNDER_ROC, AREA_UNDER_PR, KS, AREA_UNDER_LORENZ]),
);

stage!(
    /// Evaluates binary classification: the metrics of `metricsNames` (see the module docs)
    /// for the scores of `rawPredictionCol` (a number, or element 1 of a vector: Flink's
    /// `[p0, p1]`) against `labelCol` (1.0 is positive), each sample weighing `weightCol`
    /// (1.0 when null).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::evaluation::binary_classification_evaluator::{BinaryClassificationEvaluator, METRICS_NAMES};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// let evaluator = BinaryClassificationEvaluator::new()
    ///     .set(&METRICS_NAMES, vec!["areaUnderROC".into(), "ks".into()])
    ///     .unwrap();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("label", DataType::Double), ("rawPrediction", DataType::Double)]);
    ///     let rows = [(1.0, 0.9), (0.0, 0.8), (1.0, 0.7), (0.0, 0.2)]
    ///         .iter()
    ///         .map(|(l, s)| vec![Value::Double(*l), Value::Double(*s)])
    ///         .collect();
    ///     let table = Table::from_rows(job, "scored", schema, rows)?;
    ///     evaluator.transform(job, vec![table])?.remove(0).collect("metrics", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let metrics = &out.json_rows()[0];
    /// assert_eq!(metrics["areaUnderROC"], 0.75);
    /// assert_eq!(metrics["ks"], 0.5);
    /// ```
    BinaryClassificationEvaluator,
    "org.apache.flink.ml.evaluation.binaryclassification.BinaryClassificationEvaluator",
    [
        &LABEL_COL.spec,
        &RAW_PREDICTION_COL.spec,
        &WEIGHT_COL.spec,
        &METRICS_NAMES.spec
    ]
);

impl crate::param::HasLabelCol for BinaryClassificationEvaluator {}
impl crate::param::HasRawPredictionCol for BinaryClassificationEvaluator {}
impl crate::param::HasWeightCol for BinaryClassificationEvaluator {}

/// `accuracy`: the share of the weight whose prediction is its label.
pub const ACCURACY: &str = "accuracy";
/// `weightedPrecision`: the precision of each class, weighted by its true weight.
pub const WEIGHTED_PRECISION: &str = "weightedPrecision";
/// `weightedRecall`: the recall of each class, weighted by its true weight (the accuracy).
pub const WEIGHTED_RECALL: &str = "weightedRecall";
/// `f1`: the F1 score of each class, weighted by its true weight.
pub const F1: &str = "f1";
/// `macroF1`: the mean F1 score of the classes (labels and predictions).
pub const MACRO_F1: &str = "macroF1";

/// `metricsNames` of the multiclass evaluator: a subset of `accuracy`, `weightedPrecision`,
/// `weightedRecall`, `f1` and `macroF1`.
pub const MULTICLASS_METRICS_NAMES: Param<Vec<String>> = Param::new(
    "metricsNames",
    "Names of output metrics.",
    Some("[\"accuracy\", \"weightedPrecision\", \"weightedRecall\", \"f1\"]"),
    ParamType::StringArray,
    Validator::IsSubSet(&[ACCURACY, WEIGHTED_PRECISION, WEIGHTED_RECALL, F1, MACRO_F1]),
);

stage!(
    /// Evaluates multiclass classification (a Weir extension, after Spark ML's evaluator):
    /// `predictionCol` against `labelCol` (numbers), each row weighing `weightCol` (1.0 when
    /// null). Metrics, as scikit-learn computes them with `zero_division=0` over the classes
    /// of both columns: `accuracy` (`accuracy_score`), `weightedPrecision`, `weightedRecall`
    /// and `f1` (`precision_score`, `recall_score`, `f1_score` with `average='weighted'`:
    /// each class weighs its true weight) and `macroF1` (`f1_score(average='macro')`). A
    /// class's F1 is `2 tp / (true + predicted)`. An empty input gives NaN.
    ///
    /// Every instance folds its rows into the weight of each (label, prediction) pair, and
    /// one instance merges those and computes the metrics.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::evaluation::binary_classification_evaluator::{MulticlassClassificationEvaluator, MULTICLASS_METRICS_NAMES};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// let evaluator = MulticlassClassificationEvaluator::new()
    ///     .set(&MULTICLASS_METRICS_NAMES, vec!["accuracy".into(), "macroF1".into()])
    ///     .unwrap();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("label", DataType::Double), ("prediction", DataType::Double)]);
    ///     let rows = [(0.0, 0.0), (1.0, 1.0), (2.0, 1.0), (2.0, 2.0)]
    ///         .iter()
    ///         .map(|(l, p)| vec![Value::Double(*l), Value::Double(*p)])
    ///         .collect();
    ///     let table = Table::from_rows(job, "predicted", schema, rows)?;
    ///     evaluator.transform(job, vec![table])?.remove(0).collect("metrics", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let metrics = &out.json_rows()[0];
    /// assert_eq!(metrics["accuracy"], 0.75);
    /// // F1 per class: 1, 2/3, 2/3.
    /// assert!((metrics["macroF1"].as_f64().unwrap() - 7.0 / 9.0).abs() < 1e-12);
    /// ```
    MulticlassClassificationEvaluator,
    "weir.MulticlassClassificationEvaluator",
    [
        &LABEL_COL.spec,
        &PREDICTION_COL.spec,
        &WEIGHT_COL.spec,
        &MULTICLASS_METRICS_NAMES.spec
    ]
);

impl crate::param::HasLabelCol for MulticlassClassificationEvaluator {}
impl crate::param::HasPredictionCol for MulticlassClassificationEvaluator {}
impl crate::param::HasWeightCol for MulticlassClassificationEvaluator {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(
    BinaryClassificationEvaluator,
    MulticlassClassificationEvaluator
);

/// The output schema: one `Double` column per metric; a metric named twice is an error.
fn metrics_schema(stage: &str, names: &[String]) -> Result<Schema, MlError> {
    let mut schema = Schema::new(Vec::<(String, DataType)>::new());
    for name in names {
        schema = schema.with_column(name, DataType::Double).map_err(|_| MlError::InvalidParam {
            stage: stage.to_string(),
            param: "metricsNames".into(),
            message: format!("names metric {name} twice"),
        })?;
    }
    Ok(schema)
}

/// The index of the optional weight column.
fn weight_index(
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
struct Tally<K, W> {
    entries: Vec<(K, W)>,
    /// How many entries were there after the last compaction.
    compacted: usize,
    error: Option<String>,
}

trait Key: Copy {
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
        self.0
            .total_cmp(&other.0)
            .then(self.1.total_cmp(&other.1))
    }
}

trait Weights: Copy {
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
    fn push(&mut self, key: K, weights: W) {
        self.entries.push((key, weights));
        if self.entries.len() > 2 * self.compacted + 4096 {
            self.compact();
        }
    }

    /// Sorts the entries (a stable sort: merging sorted runs is linear) and merges equal keys.
    fn compact(&mut self) {
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

    fn fail(&mut self, error: String) {
        self.error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally<K, W>) {
        if let Some(e) = other.error {
            self.fail(e);
        }
        self.entries.extend(other.entries);
        self.compact();
    }
}

/// A number of a `Long` or `Double` column that must not be NaN.
fn number(stage: &str, batch: &RowBatch, column: usize, name: &str, row: usize) -> Result<f64, String> {
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

/// The columns the binary evaluator reads.
#[derive(Clone, Debug)]
struct BinaryColumns {
    label: (usize, String),
    score: (usize, String),
    weight: Option<(usize, String)>,
}

type ScoreTally = Tally<f64, (f64, f64)>;

impl BinaryColumns {
    fn fold(&self, tally: &mut ScoreTally, batch: &RowBatch) {
        if tally.error.is_some() {
            return;
        }
        if let Err(e) = self.try_fold(tally, batch) {
            tally.fail(e);
        }
    }

    fn try_fold(&self, tally: &mut ScoreTally, batch: &RowBatch) -> Result<(), String> {
        const STAGE: &str = "BinaryClassificationEvaluator";
        let scores = batch.column(self.score.0);
        for row in 0..batch.rows() {
            let label = number(STAGE, batch, self.label.0, &self.label.1, row)?;
            let score = match scores.vector(row) {
                Some(v) => {
                    if v.size() < 2 {
                        return Err(format!(
                            "{STAGE}: column `{}` has a vector of size {} in row {row} of a \
                             batch; the score is its element 1 ([p0, p1])",
                            self.score.1,
                            v.size()
                        ));
                    }
                    match v {
                        VectorRef::Dense(d) => d[1],
                        VectorRef::Sparse(s) => s
                            .indices
                            .iter()
                            .position(|&i| i == 1)
                            .map_or(0.0, |p| s.values[p]),
                    }
                }
                None => scores.number(row).unwrap_or(f64::NAN),
            };
            if score.is_nan() {
                return Err(format!(
                    "{STAGE}: column `{}` has a NaN score in row {row} of a batch",
                    self.score.1
                ));
            }
            let weight = match &self.weight {
                Some((w, name)) => number(STAGE, batch, *w, name, row)?,
                None => 1.0,
            };
            let weights = if label == 1.0 {
                (weight, 0.0)
            } else {
                (0.0, weight)
            };
            tally.push(score + 0.0, weights);
        }
        Ok(())
    }
}

/// The binary metrics of sorted, merged score weights (highest score first).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct BinaryMetrics {
    area_under_roc: f64,
    area_under_pr: f64,
    ks: f64,
    area_under_lorenz: f64,
}

impl BinaryMetrics {
    fn of(scores: &[(f64, (f64, f64))]) -> BinaryMetrics {
        let mut metrics = BinaryMetrics::default();
        if scores.is_empty() {
            return metrics;
        }
        let (positives, negatives) = scores
            .iter()
            .fold((0.0, 0.0), |(p, n), (_, (wp, wn))| (p + wp, n + wn));
        // Flink's `updateBinaryMetrics`: (tpr, fpr, precision, positive rate) at the weights
        // predicted positive so far.
        let point = |tp: f64, fp: f64| {
            let tpr = if positives == 0.0 { 1.0 } else { tp / positives };
            let fpr = if negatives == 0.0 { 1.0 } else { fp / negatives };
            let precision = if tp + fp == 0.0 { 1.0 } else { tp / (tp + fp) };
            (tpr, fpr, precision, (tp + fp) / (positives + negatives))
        };
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut last = point(tp, fp);
        for (_, (wp, wn)) in scores {
            tp += wp;
            fp += wn;
            let next = point(tp, fp);
            let (tpr, fpr, precision, rate) = next;
            metrics.area_under_roc += (fpr - last.1) * (tpr + last.0) / 2.0;
            metrics.area_under_lorenz += (rate - last.3) * (tpr + last.0) / 2.0;
            metrics.area_under_pr += (tpr - last.0) * (precision + last.2) / 2.0;
            metrics.ks = metrics.ks.max((fpr - tpr).abs());
            last = next;
        }
        metrics
    }

    fn get(&self, name: &str) -> f64 {
        match name {
            AREA_UNDER_ROC => self.area_under_roc,
            AREA_UNDER_PR => self.area_under_pr,
            KS => self.ks,
            _ => self.area_under_lorenz,
        }
    }
}

/// One row of metrics (`schema`'s columns, in order).
fn metrics_row(schema: &Schema, metric: impl Fn(&str) -> f64) -> RowBatch {
    RowBatch::new(
        1,
        schema
            .fields()
            .iter()
            .map(|f| Column::Double(vec![metric(&f.name)]))
            .collect(),
    )
}

impl Stage for BinaryClassificationEvaluator {
    stage_basics!(AlgoOperator);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let stage = self.short_name();
        let input = one_input(self, inputs)?;
        let label = self.get(&LABEL_COL)?;
        let score = self.params.get_opt(&RAW_PREDICTION_COL)?.ok_or_else(|| {
            MlError::MissingParam {
                stage: stage.into(),
                param: RAW_PREDICTION_COL.name().into(),
            }
        })?;
        let weight = self.params.get_opt(&WEIGHT_COL)?;
        let columns = BinaryColumns {
            label: (
                input
                    .schema
                    .typed_index(stage, &label, &[DataType::Long, DataType::Double])?,
                label,
            ),
            score: (
                input.schema.typed_index(
                    stage,
                    &score,
                    &[
                        DataType::Long,
                        DataType::Double,
                        DataType::DenseVector,
                        DataType::SparseVector,
                    ],
                )?,
                score,
            ),
            weight: weight_index(stage, &input.schema, weight.clone())?.zip(weight),
        };
        let schema = metrics_schema(stage, &self.get(&METRICS_NAMES)?)?;
        let out_schema = schema.clone();
        let name = job.unique_name(stage);
        let stream = input
            .stream
            .aggregate_to_end(
                name.clone(),
                ScoreTally::default,
                move |tally, batch: RowBatch| columns.fold(tally, &batch),
                |tally, other| tally.merge(other),
            )
            .try_map_batch(
                op(format!("{name}.metrics")).parallelism(1),
                move |tallies: Vec<ScoreTally>| {
                    tallies
                        .into_iter()
                        .map(|mut tally| {
                            if let Some(e) = tally.error.take() {
                                return Err(e);
                            }
                            tally.compact();
                            let metrics = BinaryMetrics::of(&tally.entries);
                            Ok(metrics_row(&out_schema, |m| metrics.get(m)))
                        })
                        .collect::<Result<Vec<_>, _>>()
                },
            );
        Ok(vec![Table::new(schema, stream)])
    }
}

/// The columns the multiclass evaluator reads.
#[derive(Clone, Debug)]
struct MulticlassColumns {
    label: (usize, String),
    prediction: (usize, String),
    weight: Option<(usize, String)>,
}

type PairTally = Tally<(f64, f64), f64>;

impl MulticlassColumns {
    fn fold(&self, tally: &mut PairTally, batch: &RowBatch) {
        if tally.error.is_some() {
            return;
        }
        const STAGE: &str = "MulticlassClassificationEvaluator";
        let result = (0..batch.rows()).try_for_each(|row| {
            let label = number(STAGE, batch, self.label.0, &self.label.1, row)?;
            let prediction = number(STAGE, batch, self.prediction.0, &self.prediction.1, row)?;
            let weight = match &self.weight {
                Some((w, name)) => number(STAGE, batch, *w, name, row)?,
                None => 1.0,
            };
            tally.push((label, prediction), weight);
            Ok::<(), String>(())
        });
        if let Err(e) = result {
            tally.fail(e);
        }
    }
}

/// The multiclass metrics of the merged weights of (label, prediction) pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MulticlassMetrics {
    accuracy: f64,
    weighted_precision: f64,
    weighted_recall: f64,
    f1: f64,
    macro_f1: f64,
}

impl MulticlassMetrics {
    fn of(pairs: &[((f64, f64), f64)]) -> MulticlassMetrics {
        let mut classes: Vec<f64> = pairs.iter().flat_map(|((l, p), _)| [*l, *p]).collect();
        classes.sort_by(f64::total_cmp);
        classes.dedup();
        let index = |c: f64| classes.binary_search_by(|x| x.total_cmp(&c)).unwrap_or(0);
        let k = classes.len();
        let (mut tp, mut truth, mut predicted) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        let mut total = 0.0;
        for ((l, p), w) in pairs {
            let (i, j) = (index(*l), index(*p));
            truth[i] += w;
            predicted[j] += w;
            if i == j {
                tp[i] += w;
            }
            total += w;
        }
        let divide = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let support: f64 = truth.iter().sum();
        let (mut precision, mut recall, mut f1, mut macro_f1) = (0.0, 0.0, 0.0, 0.0);
        for c in 0..k {
            let f = divide(2.0 * tp[c], truth[c] + predicted[c]);
            precision += truth[c] * divide(tp[c], predicted[c]);
            recall += truth[c] * divide(tp[c], truth[c]);
            f1 += truth[c] * f;
            macro_f1 += f;
        }
        let nan_if_empty = |x: f64| if total == 0.0 { f64::NAN } else { x };
        MulticlassMetrics {
            accuracy: nan_if_empty(divide(tp.iter().sum(), total)),
            weighted_precision: nan_if_empty(divide(precision, support)),
            weighted_recall: nan_if_empty(divide(recall, support)),
            f1: nan_if_empty(divide(f1, support)),
            macro_f1: nan_if_empty(divide(macro_f1, k as f64)),
        }
    }

    fn get(&self, name: &str) -> f64 {
        match name {
            ACCURACY => self.accuracy,
            WEIGHTED_PRECISION => self.weighted_precision,
            WEIGHTED_RECALL => self.weighted_recall,
            F1 => self.f1,
            _ => self.macro_f1,
        }
    }
}

impl Stage for MulticlassClassificationEvaluator {
    stage_basics!(AlgoOperator);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let stage = self.short_name();
        let input = one_input(self, inputs)?;
        let numbers = [DataType::Long, DataType::Double];
        let (label, prediction) = (self.get(&LABEL_COL)?, self.get(&PREDICTION_COL)?);
        let weight = self.params.get_opt(&WEIGHT_COL)?;
        let columns = MulticlassColumns {
            label: (input.schema.typed_index(stage, &label, &numbers)?, label),
            prediction: (
                input.schema.typed_index(stage, &prediction, &numbers)?,
                prediction,
            ),
            weight: weight_index(stage, &input.schema, weight.clone())?.zip(weight),
        };
        let schema = metrics_schema(stage, &self.get(&MULTICLASS_METRICS_NAMES)?)?;
        let out_schema = schema.clone();
        let name = job.unique_name(stage);
        let stream = input
            .stream
            .aggregate_to_end(
                name.clone(),
                PairTally::default,
                move |tally, batch: RowBatch| columns.fold(tally, &batch),
                |tally, other| tally.merge(other),
            )
            .try_map_batch(
                op(format!("{name}.metrics")).parallelism(1),
                move |tallies: Vec<PairTally>| {
                    tallies
                        .into_iter()
                        .map(|mut tally| {
                            if let Some(e) = tally.error.take() {
                                return Err(e);
                            }
                            tally.compact();
                            let metrics = MulticlassMetrics::of(&tally.entries);
                            Ok(metrics_row(&out_schema, |m| metrics.get(m)))
                        })
                        .collect::<Result<Vec<_>, _>>()
                },
            );
        Ok(vec![Table::new(schema, stream)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_sorted_runs_and_equal_keys() {
        let mut a = ScoreTally::default();
        for (s, p) in [(0.5, 1.0), (0.9, 1.0), (0.5, 0.0), (-0.0, 1.0)] {
            a.push(s + 0.0, if p == 1.0 { (1.0, 0.0) } else { (0.0, 1.0) });
        }
        let mut b = ScoreTally::default();
        b.push(0.0, (0.0, 2.0));
        b.push(0.9, (0.0, 1.0));
        a.merge(b);
        assert_eq!(
            a.entries,
            vec![(0.9, (1.0, 1.0)), (0.5, (1.0, 1.0)), (0.0, (1.0, 2.0))]
        );
        // Many entries: compaction keeps one per key.
        let mut many = PairTally::default();
        for i in 0..100_000 {
            many.push(((i % 3) as f64, (i % 2) as f64), 1.0);
        }
        many.compact();
        assert_eq!(many.entries.len(), 6);
        assert_eq!(many.entries.iter().map(|e| e.1).sum::<f64>(), 100_000.0);
    }

    #[test]
    fn degenerate_inputs_follow_flinks_conventions() {
        assert_eq!(BinaryMetrics::of(&[]), BinaryMetrics::default());
        // Only positives: tpr goes 0 -> 1, fpr stays 1 (no negatives).
        let m = BinaryMetrics::of(&[(0.7, (2.0, 0.0))]);
        assert_eq!(m.area_under_roc, 0.0);
        assert_eq!(m.area_under_pr, 1.0);
        assert_eq!(m.ks, 0.0);
        assert_eq!(m.area_under_lorenz, 0.5);
        let m = MulticlassMetrics::of(&[]);
        assert!(m.accuracy.is_nan() && m.macro_f1.is_nan());
    }
}
