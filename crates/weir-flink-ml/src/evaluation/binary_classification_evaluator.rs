//! Flink ML's `BinaryClassificationEvaluator`
//! (`org.apache.flink.ml.evaluation.binaryclassification`). An AlgoOperator whose output is a
//! table of one row, one `Double` column per metric, in the order of `metricsNames`.
//!
//! **How it runs.** Flink sorts the `(score, label, weight)` samples by a
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

use weir_core::Job;

use super::weighted_tally::{evaluate, Metrics, number, weight_index, Tally};
use crate::api::Stage;
use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use crate::error::MlError;
use crate::param::shared::{LABEL_COL, RAW_PREDICTION_COL, WEIGHT_COL, WINDOWS};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{DataType, RowBatch, Table, VectorRef};

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
        &METRICS_NAMES.spec,
        &WINDOWS.spec
    ]
);

impl crate::param::HasLabelCol for BinaryClassificationEvaluator {}
impl crate::param::HasRawPredictionCol for BinaryClassificationEvaluator {}
impl crate::param::HasWeightCol for BinaryClassificationEvaluator {}
impl crate::param::HasWindows for BinaryClassificationEvaluator {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(BinaryClassificationEvaluator);

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

impl Metrics<f64, (f64, f64)> for BinaryMetrics {
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
        let names = self.get(&METRICS_NAMES)?;
        let table = evaluate::<_, _, BinaryMetrics>(
            job,
            stage,
            input,
            (self.get(&WINDOWS)?, &names),
            move |tally, batch| columns.fold(tally, batch),
        )?;
        Ok(vec![table])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_inputs_follow_flinks_conventions() {
        assert_eq!(BinaryMetrics::of(&[]), BinaryMetrics::default());
        // Only positives: tpr goes 0 -> 1, fpr stays 1 (no negatives).
        let m = BinaryMetrics::of(&[(0.7, (2.0, 0.0))]);
        assert_eq!(m.area_under_roc, 0.0);
        assert_eq!(m.area_under_pr, 1.0);
        assert_eq!(m.ks, 0.0);
        assert_eq!(m.area_under_lorenz, 0.5);
    }
}
