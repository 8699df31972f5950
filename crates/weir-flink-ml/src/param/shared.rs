//! Params many stages share (Flink ML's `org.apache.flink.ml.common.param.Has*`), with Flink's
//! names, defaults and validators.

use super::param::{Param, ParamType};
use super::validator::Validator;

/// `inputCol`: the input column.
pub const INPUT_COL: Param<String> = Param::new(
    "inputCol",
    "Input column name.",
    Some("\"input\""),
    ParamType::String,
    Validator::NotNull,
);
/// `outputCol`: the output column.
pub const OUTPUT_COL: Param<String> = Param::new(
    "outputCol",
    "Output column name.",
    Some("\"output\""),
    ParamType::String,
    Validator::NotNull,
);
/// `inputCols`: the input columns.
pub const INPUT_COLS: Param<Vec<String>> = Param::new(
    "inputCols",
    "Input column names.",
    None,
    ParamType::StringArray,
    Validator::NonEmptyArray,
);
/// `outputCols`: the output columns.
pub const OUTPUT_COLS: Param<Vec<String>> = Param::new(
    "outputCols",
    "Output column names.",
    None,
    ParamType::StringArray,
    Validator::NonEmptyArray,
);
/// `featuresCol`: the features column.
pub const FEATURES_COL: Param<String> = Param::new(
    "featuresCol",
    "Features column name.",
    Some("\"features\""),
    ParamType::String,
    Validator::NotNull,
);
/// `labelCol`: the label column.
pub const LABEL_COL: Param<String> = Param::new(
    "labelCol",
    "Label column name.",
    Some("\"label\""),
    ParamType::String,
    Validator::NotNull,
);
/// `weightCol`: the weight column (null: every row weighs 1).
pub const WEIGHT_COL: Param<String> = Param::new(
    "weightCol",
    "Weight column name.",
    None,
    ParamType::String,
    Validator::Always,
);
/// `predictionCol`: the prediction column.
pub const PREDICTION_COL: Param<String> = Param::new(
    "predictionCol",
    "Prediction column name.",
    Some("\"prediction\""),
    ParamType::String,
    Validator::NotNull,
);
/// `handleInvalid`: what to do with invalid entries (`error`, `skip` or `keep`).
pub const HANDLE_INVALID: Param<String> = Param::new(
    "handleInvalid",
    "Strategy to handle invalid entries.",
    Some("\"error\""),
    ParamType::String,
    Validator::InArray(&["error", "skip", "keep"]),
);
/// `relativeError`: the relative error of approximate quantiles.
pub const RELATIVE_ERROR: Param<f64> = Param::new(
    "relativeError",
    "The relative target precision for the approximate quantile algorithm.",
    Some("0.001"),
    ParamType::Double,
    Validator::in_range(0.0, 1.0),
);
/// `numFeatures`: the number of features (hashing stages).
pub const NUM_FEATURES: Param<i64> = Param::new(
    "numFeatures",
    "The number of features.",
    Some("262144"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `categoricalCols`: columns to treat as categorical.
pub const CATEGORICAL_COLS: Param<Vec<String>> = Param::new(
    "categoricalCols",
    "Categorical column names.",
    Some("[]"),
    ParamType::StringArray,
    Validator::Always,
);
