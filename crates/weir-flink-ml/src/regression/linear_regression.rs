//! `LinearRegression` (Flink ML's `org.apache.flink.ml.regression.linearregression`): least
//! squares trained by mini-batch SGD ([`crate::common::sgd`]); no intercept, as in Flink ML.

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
    PREDICTION_COL, REG, TOL, WEIGHT_COL,
};
use crate::param::WithParams;
use crate::table::Table;

stage!(
    /// Fits a [`LinearRegressionModel`] on `featuresCol`, `labelCol` and the optional
    /// `weightCol` by mini-batch SGD on the squared loss.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{ModelCollector, Stage};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::regression::{LinearRegression, LinearRegressionModelData};
    /// use weir_flink_ml::table::{DataType, Schema, Table, Value};
    /// let models = ModelCollector::new();
    /// let sink = models.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Double)]);
    ///     let rows: Vec<_> = (0..100)
    ///         .map(|i| {
    ///             let x = i as f64 / 50.0;
    ///             vec![Value::DenseVector(vec![x, 1.0]), Value::Double(3.0 * x - 1.0)]
    ///         })
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema, rows)?;
    ///     let mut lr = LinearRegression::new();
    ///     lr.param_map_mut().set_json("maxIter", serde_json::json!(2000))?;
    ///     lr.param_map_mut().set_json("globalBatchSize", serde_json::json!(100))?;
    ///     lr.param_map_mut().set_json("tol", serde_json::json!(0.0))?;
    ///     lr.fit(job, vec![train])?.collect(job, &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let model = models.model().unwrap();
    /// let data = &model.model_data().unwrap()[0];
    /// let w = LinearRegressionModelData::from_batches("LinearRegressionModel", &data.schema, &data.batches)
    ///     .unwrap()
    ///     .coefficient;
    /// assert!((w[0] - 3.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3, "{w:?}");
    /// ```
    LinearRegression,
    "org.apache.flink.ml.regression.linearregression.LinearRegression",
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
        &PREDICTION_COL.spec
    ]
);

model!(
    /// Predicts `predictionCol`: `dot(features, coefficient)`.
    LinearRegressionModel,
    "org.apache.flink.ml.regression.linearregression.LinearRegressionModel",
    [&FEATURES_COL.spec, &PREDICTION_COL.spec]
);

impl crate::param::HasFeaturesCol for LinearRegression {}
impl crate::param::HasLabelCol for LinearRegression {}
impl crate::param::HasWeightCol for LinearRegression {}
impl crate::param::HasMaxIter for LinearRegression {}
impl crate::param::HasReg for LinearRegression {}
impl crate::param::HasElasticNet for LinearRegression {}
impl crate::param::HasLearningRate for LinearRegression {}
impl crate::param::HasGlobalBatchSize for LinearRegression {}
impl crate::param::HasTol for LinearRegression {}
impl crate::param::HasPredictionCol for LinearRegression {}
impl crate::param::HasFeaturesCol for LinearRegressionModel {}
impl crate::param::HasPredictionCol for LinearRegressionModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(LinearRegression, LinearRegressionModel);

impl Stage for LinearRegression {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let data = fit_linear(self, job, &input, Loss::LeastSquare, None, false)?;
        Ok(Fitted {
            model: Box::new(LinearRegressionModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for LinearRegressionModel {
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
            raw_prediction: None,
        };
        let output = LinearOutput::Regression;
        Ok(vec![transform_linear(
            self, job, input, model_data, columns, output,
        )?])
    }
}

/// The model data of a [`LinearRegressionModel`] (Flink's `LinearRegressionModelData`:
/// `coefficient`).
pub type LinearRegressionModelData = LinearModelData;
