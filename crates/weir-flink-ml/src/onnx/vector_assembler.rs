//! VectorAssembler: numeric columns become `[N, 1]` (`Cast` to f64, `Unsqueeze`), vector
//! columns stay `[N, F]`, and `Concat` joins them in `inputCols` order. Rows with NaN pass
//! through (the stage's `handleInvalid` is not applied in the graph).

use super::builder::{ColumnKind, OnnxBuilder};
use crate::api::Stage;
use crate::error::MlError;
use crate::param::shared::{INPUT_COLS, OUTPUT_COL};

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let mut parts = Vec::new();
    for column in stage.param_map().get(&INPUT_COLS)? {
        let c = builder.column(name, &column)?;
        let part = match c.kind {
            ColumnKind::Vector => c.value,
            ColumnKind::Double | ColumnKind::Long | ColumnKind::Boolean => {
                let double = builder.fresh("double");
                builder.node(
                    weir_onnx_graph::Node::new("Cast", &[&c.value], &[&double])
                        .attr("to", weir_onnx_graph::Attribute::Int(11)),
                );
                let axis = builder.constant_i64("axis", &[1], &[1]);
                builder.apply("Unsqueeze", &[&double, &axis], "column")
            }
            ColumnKind::String => {
                return Err(MlError::Stage {
                    stage: name.into(),
                    message: format!("cannot assemble string column `{column}`"),
                })
            }
        };
        parts.push(part);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let assembled = builder.apply_concat(&refs);
    builder.produce(
        name,
        &stage.param_map().get(&OUTPUT_COL)?,
        &assembled,
        ColumnKind::Vector,
    )
}
