//! StringIndexerModel: an `ai.onnx.ml` `LabelEncoder` per input column from its strings to
//! their indices, then `Cast` to f64. A string the model has not seen becomes the extra
//! index `numLabels` with `handleInvalid` `keep`, and -1 otherwise (the job would fail or
//! drop the row; a graph cannot).

use weir_onnx_graph::{Attribute, Node};

use super::builder::{ColumnKind, OnnxBuilder};
use super::model_table;
use crate::api::Stage;
use crate::error::MlError;
use crate::feature::StringIndexerModelData;
use crate::param::shared::{HANDLE_INVALID, INPUT_COLS, OUTPUT_COLS};

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let table = model_table(stage)?;
    let data = StringIndexerModelData::from_batches(name, &table.schema, &table.batches).map_err(
        |message| MlError::Stage {
            stage: name.into(),
            message,
        },
    )?;
    let keep = stage.param_map().get(&HANDLE_INVALID)? == "keep";
    let (inputs, outputs) = (
        stage.param_map().get(&INPUT_COLS)?,
        stage.param_map().get(&OUTPUT_COLS)?,
    );
    for (i, (input, output)) in inputs.iter().zip(&outputs).enumerate() {
        let strings = data.string_arrays.get(i).ok_or_else(|| MlError::Stage {
            stage: name.into(),
            message: format!("the model data has no strings for input column {i} (`{input}`)"),
        })?;
        let column = builder.column_of(name, input, ColumnKind::String)?;
        let unseen = if keep { strings.len() as i64 } else { -1 };
        let index = builder.fresh("index");
        builder.ml_node(
            Node::new("LabelEncoder", &[&column.value], &[&index])
                .attr("keys_strings", Attribute::Strings(strings.clone()))
                .attr(
                    "values_int64s",
                    Attribute::Ints((0..strings.len() as i64).collect()),
                )
                .attr("default_int64", Attribute::Int(unseen)),
        );
        let double = builder.fresh("double");
        builder.node(Node::new("Cast", &[&index], &[&double]).attr("to", Attribute::Int(11)));
        builder.produce(name, output, &double, ColumnKind::Double)?;
    }
    Ok(())
}
