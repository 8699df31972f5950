//! StandardScalerModel, MinMaxScalerModel and MaxAbsScalerModel: `(x - shift) * factor +
//! offset` per element, with the constants of the stage's own transform.

use weir_onnx_graph::Node;

use super::builder::{ColumnKind, OnnxBuilder};
use super::model_table;
use crate::api::Stage;
use crate::common::table_ops::single_record;
use crate::error::MlError;
use crate::feature::standard_scaler::{WITH_MEAN, WITH_STD};
use crate::feature::{MaxAbsScalerModelData, MinMaxScalerModelData, StandardScalerModelData};
use crate::param::shared::{INPUT_COL, OUTPUT_COL};

/// Per-element `(x - shift) * factor + offset`.
struct Affine {
    shift: Vec<f64>,
    factor: Vec<f64>,
    offset: Vec<f64>,
}

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let table = model_table(stage)?;
    let fail = |message: String| MlError::Stage {
        stage: name.into(),
        message,
    };
    let affine = match name {
        "StandardScalerModel" => {
            let data: StandardScalerModelData =
                single_record(name, &table.schema, &table.batches).map_err(fail)?;
            let with_mean = stage.param_map().get(&WITH_MEAN)?;
            let with_std = stage.param_map().get(&WITH_STD)?;
            let dim = data.mean.len();
            Affine {
                shift: if with_mean { data.mean } else { vec![0.0; dim] },
                factor: data
                    .std
                    .iter()
                    .map(|s| match (with_std, *s == 0.0) {
                        (false, _) => 1.0,
                        (true, true) => 0.0,
                        (true, false) => 1.0 / s,
                    })
                    .collect(),
                offset: vec![0.0; dim],
            }
        }
        "MinMaxScalerModel" => {
            let data =
                MinMaxScalerModelData::from_batches(&table.schema, &table.batches).map_err(fail)?;
            let lower = stage
                .param_map()
                .get(&crate::feature::min_max_scaler::MIN)?;
            let upper = stage
                .param_map()
                .get(&crate::feature::min_max_scaler::MAX)?;
            let (mut factor, mut offset) = (Vec::new(), Vec::new());
            for (min, max) in data.min_vector.iter().zip(&data.max_vector) {
                if (min - max).abs() < 1.0e-5 {
                    factor.push(0.0);
                    offset.push((upper + lower) / 2.0);
                } else {
                    let s = (upper - lower) / (max - min);
                    factor.push(s);
                    offset.push(lower - min * s);
                }
            }
            Affine {
                shift: vec![0.0; factor.len()],
                factor,
                offset,
            }
        }
        _ => {
            let data =
                MaxAbsScalerModelData::from_batches(&table.schema, &table.batches).map_err(fail)?;
            let dim = data.max_vector.len();
            Affine {
                shift: vec![0.0; dim],
                factor: data
                    .max_vector
                    .iter()
                    .map(|m| if *m != 0.0 { 1.0 / m } else { 1.0 })
                    .collect(),
                offset: vec![0.0; dim],
            }
        }
    };
    let input = builder.column_of(
        name,
        &stage.param_map().get(&INPUT_COL)?,
        ColumnKind::Vector,
    )?;
    let dim = affine.factor.len() as i64;
    let shift = builder.constant_f64("shift", &[dim], &affine.shift);
    let factor = builder.constant_f64("factor", &[dim], &affine.factor);
    let offset = builder.constant_f64("offset", &[dim], &affine.offset);
    let centred = builder.apply("Sub", &[&input.value, &shift], "centred");
    let scaled = builder.apply("Mul", &[&centred, &factor], "scaled");
    let out = builder.fresh("rescaled");
    builder.node(Node::new("Add", &[&scaled, &offset], &[&out]));
    builder.produce(
        name,
        &stage.param_map().get(&OUTPUT_COL)?,
        &out,
        ColumnKind::Vector,
    )
}
