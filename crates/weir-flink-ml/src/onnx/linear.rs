//! LogisticRegressionModel, LinearSVCModel and LinearRegressionModel: `dot = x · w` by
//! `MatMul`, then the prediction (and raw prediction) as the models compute them.

use super::builder::{ColumnKind, OnnxBuilder};
use super::model_table;
use crate::api::Stage;
use crate::common::linear_model::LinearModelData;
use crate::error::MlError;
use crate::param::shared::{FEATURES_COL, PREDICTION_COL, RAW_PREDICTION_COL};

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let table = model_table(stage)?;
    let data = LinearModelData::from_batches(name, &table.schema, &table.batches).map_err(|e| {
        MlError::Stage {
            stage: name.into(),
            message: e,
        }
    })?;
    let features = builder.column_of(
        name,
        &stage.param_map().get(&FEATURES_COL)?,
        ColumnKind::Vector,
    )?;
    let dim = data.coefficient.len() as i64;
    let w = builder.constant_f64("coefficient", &[dim, 1], &data.coefficient);
    let product = builder.apply("MatMul", &[&features.value, &w], "product");
    let axes = builder.constant_i64("axes", &[1], &[1]);
    let dot = builder.apply("Squeeze", &[&product, &axes], "dot");
    let prediction_col = stage.param_map().get(&PREDICTION_COL)?;
    if name == "LinearRegressionModel" {
        return builder.produce(name, &prediction_col, &dot, ColumnKind::Double);
    }
    let (threshold, raw) = if name == "LogisticRegressionModel" {
        let one = builder.constant_f64("one", &[], &[1.0]);
        let p = builder.apply("Sigmoid", &[&product], "p");
        let q = builder.apply("Sub", &[&one, &p], "q");
        (0.0, builder.apply_concat(&[&q, &p]))
    } else {
        let negative = builder.apply("Neg", &[&product], "negative");
        let threshold = stage
            .param_map()
            .get(&crate::classification::linear_svc::THRESHOLD)?;
        (threshold, builder.apply_concat(&[&product, &negative]))
    };
    let threshold = builder.constant_f64("threshold", &[], &[threshold]);
    let positive = builder.apply("GreaterOrEqual", &[&dot, &threshold], "positive");
    let label = builder.fresh("label");
    builder.node(
        weir_onnx_graph::Node::new("Cast", &[&positive], &[&label])
            .attr("to", weir_onnx_graph::Attribute::Int(11)),
    );
    builder.produce(name, &prediction_col, &label, ColumnKind::Double)?;
    if let Some(raw_col) = stage.param_map().get_opt(&RAW_PREDICTION_COL)? {
        builder.produce(name, &raw_col, &raw, ColumnKind::Vector)?;
    }
    Ok(())
}
