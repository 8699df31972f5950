//! Flink ML's shared param interfaces (`HasInputCol`, `HasFeaturesCol`, ...): typed getters and
//! builder-style setters for the shared params of [`super::shared`], implemented by the
//! stages that have those params.

use super::param::ParamValue;
use super::param_map::WithParams;
use super::shared::*;
use crate::error::MlError;

macro_rules! has_param {
    ($(#[$doc:meta])* $trait:ident, $param:ident, $get:ident, $set:ident, $t:ty) => {
        $(#[$doc])*
        pub trait $trait: WithParams {
            #[doc = concat!("The value of `", stringify!($param), "`.")]
            fn $get(&self) -> Result<$t, MlError> {
                self.param_map().get(&$param)
            }

            #[doc = concat!("Sets `", stringify!($param), "`.")]
            fn $set(mut self, value: impl Into<$t>) -> Result<Self, MlError>
            where
                Self: Sized,
                $t: ParamValue,
            {
                self.param_map_mut().set(&$param, value.into())?;
                Ok(self)
            }
        }
    };
}

has_param!(
    /// Stages with `inputCol`.
    ///
    /// ```
    /// use weir_flink_ml::feature::StandardScaler;
    /// use weir_flink_ml::param::HasInputCol;
    /// let scaler = StandardScaler::new().set_input_col("features").unwrap();
    /// assert_eq!(scaler.input_col().unwrap(), "features");
    /// ```
    HasInputCol, INPUT_COL, input_col, set_input_col, String
);
has_param!(
    /// Stages with `outputCol`.
    HasOutputCol, OUTPUT_COL, output_col, set_output_col, String
);
has_param!(
    /// Stages with `inputCols`.
    HasInputCols, INPUT_COLS, input_cols, set_input_cols, Vec<String>
);
has_param!(
    /// Stages with `outputCols`.
    HasOutputCols, OUTPUT_COLS, output_cols, set_output_cols, Vec<String>
);
has_param!(
    /// Stages with `featuresCol`.
    HasFeaturesCol, FEATURES_COL, features_col, set_features_col, String
);
has_param!(
    /// Stages with `labelCol`.
    HasLabelCol, LABEL_COL, label_col, set_label_col, String
);
has_param!(
    /// Stages with `weightCol`.
    HasWeightCol, WEIGHT_COL, weight_col, set_weight_col, String
);
has_param!(
    /// Stages with `predictionCol`.
    HasPredictionCol, PREDICTION_COL, prediction_col, set_prediction_col, String
);
has_param!(
    /// Stages with `handleInvalid`.
    HasHandleInvalid, HANDLE_INVALID, handle_invalid, set_handle_invalid, String
);
has_param!(
    /// Stages with `relativeError`.
    HasRelativeError, RELATIVE_ERROR, relative_error, set_relative_error, f64
);
has_param!(
    /// Stages with `numFeatures`.
    HasNumFeatures, NUM_FEATURES, num_features, set_num_features, i64
);
has_param!(
    /// Stages with `categoricalCols`.
    HasCategoricalCols, CATEGORICAL_COLS, categorical_cols, set_categorical_cols, Vec<String>
);
has_param!(
    /// Stages with `rawPredictionCol`.
    HasRawPredictionCol, RAW_PREDICTION_COL, raw_prediction_col, set_raw_prediction_col, String
);
has_param!(
    /// Stages with `maxIter`.
    HasMaxIter, MAX_ITER, max_iter, set_max_iter, i64
);
has_param!(
    /// Stages with `tol`.
    HasTol, TOL, tol, set_tol, f64
);
has_param!(
    /// Stages with `learningRate`.
    HasLearningRate, LEARNING_RATE, learning_rate, set_learning_rate, f64
);
has_param!(
    /// Stages with `globalBatchSize`.
    HasGlobalBatchSize, GLOBAL_BATCH_SIZE, global_batch_size, set_global_batch_size, i64
);
has_param!(
    /// Stages with `reg`.
    HasReg, REG, reg, set_reg, f64
);
has_param!(
    /// Stages with `elasticNet`.
    HasElasticNet, ELASTIC_NET, elastic_net, set_elastic_net, f64
);
has_param!(
    /// Stages with `seed` (the getter gives the set value; [`super::shared::seed_of`] gives
    /// Flink's default for an unset seed).
    HasSeed, SEED, seed, set_seed, i64
);
has_param!(
    /// Stages with `multiClass`.
    HasMultiClass, MULTI_CLASS, multi_class, set_multi_class, String
);
has_param!(
    /// Stages with `distanceMeasure`.
    HasDistanceMeasure, DISTANCE_MEASURE, distance_measure, set_distance_measure, String
);
has_param!(
    /// Stages with `decayFactor`.
    HasDecayFactor, DECAY_FACTOR, decay_factor, set_decay_factor, f64
);
has_param!(
    /// Stages with `modelVersionCol`.
    HasModelVersionCol, MODEL_VERSION_COL, model_version_col, set_model_version_col, String
);
has_param!(
    /// Stages with `windows`.
    HasWindows, WINDOWS, windows, set_windows, super::Windows
);
