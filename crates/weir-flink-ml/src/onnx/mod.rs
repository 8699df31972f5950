//! Fitted models into ONNX, for serving outside the job (`weir serve --model`, `weir
//! predict`, the predict operator): a model, or a whole `PipelineModel`, becomes one ONNX
//! graph whose inputs are the table columns the stages read and whose outputs are the
//! columns they write, computed in f64 as the stages compute them.
//!
//! | stage | ONNX |
//! |---|---|
//! | StandardScalerModel, MinMaxScalerModel, MaxAbsScalerModel | `Sub`, `Mul`, `Add` with the model data |
//! | VectorAssembler | `Cast`, `Unsqueeze`, `Concat` |
//! | StringIndexerModel | `ai.onnx.ml` `LabelEncoder` (unseen strings: -1, or the extra index with `handleInvalid` `keep`) |
//! | LogisticRegressionModel, LinearSVCModel, LinearRegressionModel | `MatMul`, `Sigmoid`, `GreaterOrEqual` |
//! | KMeansModel | distances by `MatMul`/`ReduceSum`, `ArgMin` |
//! | NaiveBayesModel | per feature `Equal` to its categories, `MatMul` by their log probabilities, `ArgMax` (unseen values: NaN) |
//!
//! Column types map to tensors of the batch: `Double` `f64[N]`, `Long` `i64[N]`, `String`
//! `string[N]`, `Boolean` `bool[N]`, `DenseVector` `f64[N, F]`. Other stages, sparse vectors
//! and array columns are refused with an error naming them.

mod builder;
mod kmeans;
mod linear;
mod naive_bayes;
mod scalers;
mod string_indexer;
mod vector_assembler;

pub use builder::OnnxBuilder;

use crate::api::Stage;
use crate::error::MlError;
use crate::table::Schema;

/// The ONNX model (bytes) of a fitted model or `PipelineModel` with its model data in
/// memory (loaded or collected), reading tables of `input` schema.
///
/// ```
/// use weir_flink_ml::api::Stage;
/// use weir_flink_ml::feature::{MaxAbsScalerModel, MaxAbsScalerModelData};
/// use weir_flink_ml::table::{DataType, Schema};
/// let mut model = MaxAbsScalerModel::new();
/// let data = MaxAbsScalerModelData { max_vector: vec![2.0, 4.0] };
/// model
///     .set_model_data(vec![weir_flink_ml::api::TableData {
///         schema: MaxAbsScalerModelData::schema(),
///         batches: vec![data.to_batch()],
///     }])
///     .unwrap();
/// let input = Schema::new([("input", DataType::DenseVector)]);
/// let onnx = weir_flink_ml::onnx::to_onnx(&model, &input).unwrap();
/// assert!(onnx.len() > 100);
/// ```
pub fn to_onnx(model: &dyn Stage, input: &Schema) -> Result<Vec<u8>, MlError> {
    let mut builder = OnnxBuilder::new(input.clone());
    export(model, &mut builder)?;
    builder.finish()
}

/// Adds the nodes of `stage` to `builder`.
fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let class = stage.class_name();
    let short = crate::api::short_name(class);
    match short {
        "PipelineModel" => {
            let stages = stage
                .inner_stages()
                .ok_or_else(|| stage.wrong_kind("is not a PipelineModel"))?;
            for inner in stages {
                export(&**inner, builder)?;
            }
            Ok(())
        }
        "StandardScalerModel" | "MinMaxScalerModel" | "MaxAbsScalerModel" => {
            scalers::export(stage, builder)
        }
        "VectorAssembler" => vector_assembler::export(stage, builder),
        "StringIndexerModel" => string_indexer::export(stage, builder),
        "LogisticRegressionModel" | "LinearSVCModel" | "LinearRegressionModel" => {
            linear::export(stage, builder)
        }
        "KMeansModel" => kmeans::export(stage, builder),
        "NaiveBayesModel" => naive_bayes::export(stage, builder),
        _ => Err(stage.wrong_kind(
            "has no ONNX export (stages with one: StandardScalerModel, MinMaxScalerModel, \
             MaxAbsScalerModel, VectorAssembler, StringIndexerModel, LogisticRegressionModel, \
             LinearSVCModel, LinearRegressionModel, KMeansModel, NaiveBayesModel, and PipelineModels \
             of them)",
        )),
    }
}

/// The one model data table of `stage`, or an error naming it.
fn model_table(stage: &dyn Stage) -> Result<&crate::api::TableData, MlError> {
    stage
        .model_data()
        .and_then(|tables| tables.first())
        .ok_or_else(|| MlError::NoModelData(stage.short_name().into()))
}
