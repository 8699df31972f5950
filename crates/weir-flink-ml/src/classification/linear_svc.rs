//! `LinearSVC` (Flink ML's `org.apache.flink.ml.classification.linearsvc`): a linear
//! support vector machine trained by mini-batch SGD on the hinge loss
//! ([`crate::common::sgd`]); no intercept, labels 0 or 1.

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
    PREDICTION_COL, RAW_PREDICTION_COL, REG, TOL, WEIGHT_COL,
};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::Table;

/// `threshold`: the decision threshold on `dot(features, coefficient)`.
pub const THRESHOLD: Param<f64> = Param::new(
    "threshold",
    "Threshold in binary classification prediction applied to rawPrediction.",
    Some("0.0"),
    ParamType::Double,
    Validator::NotNull,
);

stage!(
    /// Fits a [`LinearSVCModel`] on `featuresCol`, `labelCol` (0 or 1) and the optional
    /// `weightCol` by mini-batch SGD on the hinge loss.
    ///
    /// ```
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::classification::LinearSVC;
    /// let svc = LinearSVC::new();
    /// assert_eq!(svc.class_name(), "org.apache.flink.ml.classification.linearsvc.LinearSVC");
    /// ```
    LinearSVC,
    "org.apache.flink.ml.classification.linearsvc.LinearSVC",
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
        &THRESHOLD.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec
    ]
);

model!(
    /// Predicts `predictionCol` (1 if `dot(features, coefficient) >= threshold`, else 0) and
    /// `rawPredictionCol` (`[dot, -dot]`).
    LinearSVCModel,
    "org.apache.flink.ml.classification.linearsvc.LinearSVCModel",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec,
        &THRESHOLD.spec
    ]
);

impl crate::param::HasFeaturesCol for LinearSVC {}
impl crate::param::HasLabelCol for LinearSVC {}
impl crate::param::HasWeightCol for LinearSVC {}
impl crate::param::HasMaxIter for LinearSVC {}
impl crate::param::HasReg for LinearSVC {}
impl crate::param::HasElasticNet for LinearSVC {}
impl crate::param::HasLearningRate for LinearSVC {}
impl crate::param::HasGlobalBatchSize for LinearSVC {}
impl crate::param::HasTol for LinearSVC {}
impl crate::param::HasPredictionCol for LinearSVC {}
impl crate::param::HasRawPredictionCol for LinearSVC {}
impl crate::param::HasFeaturesCol for LinearSVCModel {}
impl crate::param::HasPredictionCol for LinearSVCModel {}
impl crate::param::HasRawPredictionCol for LinearSVCModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(LinearSVC, LinearSVCModel);

impl Stage for LinearSVC {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let binary = "LinearSVC only supports binary classification.";
        let data = fit_linear(self, job, &input, Loss::Hinge, Some(binary), false)?;
        Ok(Fitted {
            model: Box::new(LinearSVCModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for LinearSVCModel {
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
        let output = LinearOutput::Svc {
            threshold: self.get(&THRESHOLD)?,
        };
        Ok(vec![transform_linear(
            self, job, input, model_data, columns, output,
        )?])
    }
}

/// The model data of a [`LinearSVCModel`] (Flink's `LinearSVCModelData`: `coefficient`).
pub type LinearSVCModelData = LinearModelData;
