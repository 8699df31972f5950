//! Weir's `MulticlassClassificationEvaluator` (`weir.MulticlassClassificationEvaluator`, after
//! Spark ML's evaluator of that name: Flink ML has none). An AlgoOperator whose output is a
//! table of one row, one `Double` column per metric, in the order of `metricsNames`.

use weir_core::Job;

use super::weighted_tally::{evaluate, Metrics, number, weight_index, Tally};
use crate::api::Stage;
use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use crate::error::MlError;
use crate::param::shared::{LABEL_COL, PREDICTION_COL, WEIGHT_COL, WINDOWS};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{DataType, RowBatch, Table};

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
    /// use weir_flink_ml::evaluation::multiclass_classification_evaluator::{MulticlassClassificationEvaluator, MULTICLASS_METRICS_NAMES};
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
        &MULTICLASS_METRICS_NAMES.spec,
        &WINDOWS.spec
    ]
);

impl crate::param::HasLabelCol for MulticlassClassificationEvaluator {}
impl crate::param::HasPredictionCol for MulticlassClassificationEvaluator {}
impl crate::param::HasWeightCol for MulticlassClassificationEvaluator {}
impl crate::param::HasWindows for MulticlassClassificationEvaluator {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(MulticlassClassificationEvaluator);

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

impl Metrics<(f64, f64), f64> for MulticlassMetrics {
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
        let names = self.get(&MULTICLASS_METRICS_NAMES)?;
        let table = evaluate::<_, _, MulticlassMetrics>(
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
    fn an_empty_input_gives_nan() {
        let m = MulticlassMetrics::of(&[]);
        assert!(m.accuracy.is_nan() && m.macro_f1.is_nan());
    }
}
