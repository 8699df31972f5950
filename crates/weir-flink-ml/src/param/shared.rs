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
/// `rawPredictionCol`: the raw prediction column (scores or probabilities per class).
pub const RAW_PREDICTION_COL: Param<String> = Param::new(
    "rawPredictionCol",
    "Raw prediction column name.",
    Some("\"rawPrediction\""),
    ParamType::String,
    Validator::Always,
);
/// `maxIter`: the maximum number of iterations.
pub const MAX_ITER: Param<i64> = Param::new(
    "maxIter",
    "Maximum number of iterations.",
    Some("20"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `tol`: the convergence tolerance of iterative algorithms.
pub const TOL: Param<f64> = Param::new(
    "tol",
    "Convergence tolerance for iterative algorithms.",
    Some("1.0E-6"),
    ParamType::Double,
    Validator::GtEq(0.0),
);
/// `learningRate`: the learning rate of the optimisation.
pub const LEARNING_RATE: Param<f64> = Param::new(
    "learningRate",
    "Learning rate of optimization method.",
    Some("0.1"),
    ParamType::Double,
    Validator::Gt(0.0),
);
/// `globalBatchSize`: the rows of one mini-batch over all workers.
pub const GLOBAL_BATCH_SIZE: Param<i64> = Param::new(
    "globalBatchSize",
    "Global batch size of training algorithms.",
    Some("32"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `reg`: the regularisation parameter.
pub const REG: Param<f64> = Param::new(
    "reg",
    "Regularization parameter.",
    Some("0.0"),
    ParamType::Double,
    Validator::GtEq(0.0),
);
/// `elasticNet`: the mix of L1 (1.0) and L2 (0.0) regularisation.
pub const ELASTIC_NET: Param<f64> = Param::new(
    "elasticNet",
    "ElasticNet parameter.",
    Some("0.0"),
    ParamType::Double,
    Validator::in_range(0.0, 1.0),
);
/// `seed`: the random seed (null: the hash code of the stage's Java class name, as Flink's
/// `HasSeed.getSeed`).
pub const SEED: Param<i64> = Param::new(
    "seed",
    "The random seed.",
    None,
    ParamType::Int,
    Validator::Always,
);
/// `multiClass`: `auto`, `binomial` or `multinomial`.
pub const MULTI_CLASS: Param<String> = Param::new(
    "multiClass",
    "Classification type.",
    Some("\"auto\""),
    ParamType::String,
    Validator::InArray(&["auto", "binomial", "multinomial"]),
);
/// `distanceMeasure`: `euclidean`, `manhattan` or `cosine`.
pub const DISTANCE_MEASURE: Param<String> = Param::new(
    "distanceMeasure",
    "Distance measure.",
    Some("\"euclidean\""),
    ParamType::String,
    Validator::InArray(&["euclidean", "manhattan", "cosine"]),
);
/// `decayFactor`: the forgetfulness of previous model data (online algorithms).
pub const DECAY_FACTOR: Param<f64> = Param::new(
    "decayFactor",
    "The forgetfulness of the previous centroids.",
    Some("0.0"),
    ParamType::Double,
    Validator::in_range(0.0, 1.0),
);
/// `batchStrategy`: how mini-batches are formed (Flink offers `count` only).
pub const BATCH_STRATEGY: Param<String> = Param::new(
    "batchStrategy",
    "Strategy to create mini batch from online train data.",
    Some("\"count\""),
    ParamType::String,
    Validator::InArray(&["count"]),
);
/// `modelVersionCol`: the column with the version of the model data a row was predicted with.
pub const MODEL_VERSION_COL: Param<String> = Param::new(
    "modelVersionCol",
    "The name of the column which contains the version of the model data that the input data is predicted with.",
    Some("\"version\""),
    ParamType::String,
    Validator::Always,
);
/// `windows`: how a windowed AlgoOperator cuts its input into mini-batches (Flink's
/// `HasWindows`; default `GlobalWindows`, the whole bounded input).
pub const WINDOWS: Param<super::Windows> = Param::new(
    "windows",
    "Windowing strategy that determines how to create mini-batches from input data.",
    Some("{\"class\": \"org.apache.flink.ml.common.window.GlobalWindows\"}"),
    ParamType::Windows,
    Validator::NotNull,
);

/// The seed of a stage: `seed` if set, else the Java `String.hashCode` of `class_name` (Flink's
/// `HasSeed.getSeed`: `getClass().getName().hashCode()`).
pub fn seed_of(params: &super::ParamMap, class_name: &str) -> Result<i64, crate::MlError> {
    Ok(match params.get_opt(&SEED)? {
        Some(seed) => seed,
        None => crate::benchmark::java_string_hash(class_name),
    })
}
