//! `LogisticRegression` (Flink ML's `org.apache.flink.ml.classification.logisticregression`):
//! binomial logistic regression trained by mini-batch SGD over the whole bounded input
//! ([`crate::common::sgd`]), distributed over the instances of the job with one all-reduce
//! of the gradient per round. As in Flink ML, the model has no intercept (add a constant
//! feature for one) and labels must be 0 or 1.

use weir_core::Job;

use crate::api::{Fitted, Stage};
use crate::common::linear_model::{
    fit_linear, transform_linear, LinearColumns, LinearModelData, LinearOutput,
};
use crate::common::sgd::Loss;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{one_input, one_input_with_model};
use crate::error::MlError;
use crate::param::shared::{
    ELASTIC_NET, FEATURES_COL, GLOBAL_BATCH_SIZE, LABEL_COL, LEARNING_RATE, MAX_ITER,
    MULTI_CLASS, PREDICTION_COL, RAW_PREDICTION_COL, REG, TOL, WEIGHT_COL,
};
use crate::param::WithParams;
use crate::table::Table;

/// Flink's message for labels other than 0 and 1.
const BINOMIAL_ONLY: &str =
    "Multinomial classification is not supported yet. Supported options: [auto, binomial].";

stage!(
    /// Fits a [`LogisticRegressionModel`] on `featuresCol` (vectors of one size),
    /// `labelCol` (0 or 1) and the optional `weightCol`: `maxIter` rounds of mini-batch SGD
    /// with `globalBatchSize` rows per round over all instances, stopping early once a
    /// round's mean loss is at most `tol`.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::classification::LogisticRegression;
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Double)]);
    ///     let rows: Vec<_> = (0..200)
    ///         .map(|i| {
    ///             let x = i as f64 / 100.0 - 1.0;
    ///             vec![Value::DenseVector(vec![x, 1.0]), Value::Double(if x > 0.2 { 1.0 } else { 0.0 })]
    ///         })
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema, rows)?;
    ///     let mut lr = LogisticRegression::new();
    ///     lr.param_map_mut().set_json("maxIter", serde_json::json!(300))?;
    ///     lr.param_map_mut().set_json("learningRate", serde_json::json!(1.0))?;
    ///     lr.param_map_mut().set_json("globalBatchSize", serde_json::json!(200))?;
    ///     let fitted = lr.fit(job, vec![train.clone()])?;
    ///     fitted.transform(job, vec![train])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let rows = out.json_rows();
    /// let correct = rows.iter().filter(|r| r["prediction"] == r["label"]).count();
    /// assert!(correct >= 190, "{correct} of 200");
    /// ```
    LogisticRegression,
    "org.apache.flink.ml.classification.logisticregression.LogisticRegression",
    [
        &FEATURES_COL.spec,
        &LABEL_COL.spec,
        &WEIGHT_COL.spec,
        &MAX_ITER.spec,
        &REG.spec,
        &ELASTIC_NET.spec,
        &LEARNING_RATE.spec,
        &GLOBAL_BATCH_SIZE.spec,
        &TOL.spec,
        &MULTI_CLASS.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec
    ]
);

model!(
    /// Predicts `predictionCol` (1 if `dot(features, coefficient) >= 0`, else 0) and
    /// `rawPredictionCol` (`[1 - p, p]`, `p` the sigmoid of the dot).
    LogisticRegressionModel,
    "org.apache.flink.ml.classification.logisticregression.LogisticRegressionModel",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec
    ]
);

impl crate::param::HasFeaturesCol for LogisticRegression {}
impl crate::param::HasLabelCol for LogisticRegression {}
impl crate::param::HasWeightCol for LogisticRegression {}
impl crate::param::HasMaxIter for LogisticRegression {}
impl crate::param::HasReg for LogisticRegression {}
impl crate::param::HasElasticNet for LogisticRegression {}
impl crate::param::HasLearningRate for LogisticRegression {}
impl crate::param::HasGlobalBatchSize for LogisticRegression {}
impl crate::param::HasTol for LogisticRegression {}
impl crate::param::HasMultiClass for LogisticRegression {}
impl crate::param::HasPredictionCol for LogisticRegression {}
impl crate::param::HasRawPredictionCol for LogisticRegression {}
impl crate::param::HasFeaturesCol for LogisticRegressionModel {}
impl crate::param::HasPredictionCol for LogisticRegressionModel {}
impl crate::param::HasRawPredictionCol for LogisticRegressionModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(LogisticRegression, LogisticRegressionModel);

impl Stage for LogisticRegression {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        if self.get(&MULTI_CLASS)? == "multinomial" {
            return Err(self.wrong_kind(BINOMIAL_ONLY));
        }
        let input = one_input(self, inputs)?;
        let data = fit_linear(
            self,
            job,
            &input,
            Loss::BinaryLogistic,
            Some(BINOMIAL_ONLY),
            true,
        )?;
        Ok(Fitted {
            model: Box::new(LogisticRegressionModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for LogisticRegressionModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let columns = LinearColumns {
            features: self.get(&FEATURES_COL)?,
            prediction: self.get(&PREDICTION_COL)?,
            raw_prediction: self.param_map().get_opt(&RAW_PREDICTION_COL)?,
        };
        let out = transform_linear(self, job, input, model_data, columns, LinearOutput::Logistic)?;
        Ok(vec![out])
    }
}

/// The model data of a [`LogisticRegressionModel`] (Flink's `LogisticRegressionModelData`:
/// `coefficient`, `modelVersion`).
pub type LogisticRegressionModelData = LinearModelData;
