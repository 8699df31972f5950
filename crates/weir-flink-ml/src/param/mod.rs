//! Params (Flink ML's `Param`, `ParamValidators`, `WithParams` and the shared `Has*` params):
//! typed, documented, validated, with defaults, and stored as Flink ML's `paramMap` JSON.

mod has;
#[allow(clippy::module_inception)]
mod param;
mod param_map;
pub mod shared;
mod validator;
mod windows;

pub use has::{
    HasCategoricalCols, HasDecayFactor, HasDistanceMeasure, HasElasticNet, HasFeaturesCol,
    HasGlobalBatchSize, HasHandleInvalid, HasInputCol, HasInputCols, HasLabelCol, HasLearningRate,
    HasMaxIter, HasModelVersionCol, HasMultiClass, HasNumFeatures, HasOutputCol, HasOutputCols,
    HasPredictionCol, HasRawPredictionCol, HasReg, HasRelativeError, HasSeed, HasTol, HasWeightCol,
    HasWindows,
};
pub use param::{vector_param, Param, ParamSpec, ParamType, ParamValue};
pub use param_map::{ParamMap, WithParams};
pub use validator::Validator;
pub use windows::Windows;
