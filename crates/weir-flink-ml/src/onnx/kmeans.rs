//! KMeansModel: the distance of every point to every centroid (`[N, K]`), then `ArgMin`
//! (the first of equally close centroids, as Flink's `findClosest`).

use weir_onnx_graph::{Attribute, Node};

use super::builder::{ColumnKind, OnnxBuilder};
use super::model_table;
use crate::api::Stage;
use crate::clustering::KMeansModelData;
use crate::common::distance::{l2_norm, DistanceMeasure};
use crate::error::MlError;
use crate::param::shared::{DISTANCE_MEASURE, FEATURES_COL, PREDICTION_COL};

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let fail = |message: String| MlError::Stage {
        stage: name.into(),
        message,
    };
    let table = model_table(stage)?;
    let data = KMeansModelData::from_batches(&table.schema, &table.batches).map_err(fail)?;
    let measure =
        DistanceMeasure::from_name(&stage.param_map().get(&DISTANCE_MEASURE)?).map_err(fail)?;
    let k = data.centroids.len() as i64;
    let dim = data.centroids.first().map_or(0, Vec::len) as i64;
    let flat: Vec<f64> = data.centroids.concat();
    let x = builder.column_of(
        name,
        &stage.param_map().get(&FEATURES_COL)?,
        ColumnKind::Vector,
    )?;
    let x = x.value;
    let distances = match measure {
        DistanceMeasure::Manhattan => {
            let axis1 = builder.constant_i64("axis", &[1], &[1]);
            let points = builder.apply("Unsqueeze", &[&x, &axis1], "points");
            let centroids = builder.constant_f64("centroids", &[k, dim], &flat);
            let diff = builder.apply("Sub", &[&points, &centroids], "diff");
            let abs = builder.apply("Abs", &[&diff], "abs");
            let axis2 = builder.constant_i64("axis", &[1], &[2]);
            reduce_sum(builder, &abs, &axis2, false)
        }
        DistanceMeasure::Euclidean | DistanceMeasure::Cosine => {
            let transposed: Vec<f64> = (0..dim as usize)
                .flat_map(|j| data.centroids.iter().map(move |c| c[j]))
                .collect();
            let ct = builder.constant_f64("centroids_t", &[dim, k], &transposed);
            let xc = builder.apply("MatMul", &[&x, &ct], "xc");
            let squares = builder.apply("Mul", &[&x, &x], "squares");
            let axis1 = builder.constant_i64("axis", &[1], &[1]);
            let xx = reduce_sum(builder, &squares, &axis1, true);
            let norms: Vec<f64> = data.centroids.iter().map(|c| l2_norm(c)).collect();
            if measure == DistanceMeasure::Euclidean {
                let cc: Vec<f64> = norms.iter().map(|n| n * n).collect();
                let cc = builder.constant_f64("cc", &[k], &cc);
                let two = builder.constant_f64("two", &[], &[2.0]);
                let twice = builder.apply("Mul", &[&xc, &two], "twice");
                let sum = builder.apply("Add", &[&xx, &cc], "sum");
                builder.apply("Sub", &[&sum, &twice], "distance")
            } else {
                let x_norm = builder.apply("Sqrt", &[&xx], "x_norm");
                let c_norm = builder.constant_f64("c_norm", &[k], &norms);
                let over_x = builder.apply("Div", &[&xc, &x_norm], "over_x");
                let cosine = builder.apply("Div", &[&over_x, &c_norm], "cosine");
                let one = builder.constant_f64("one", &[], &[1.0]);
                builder.apply("Sub", &[&one, &cosine], "distance")
            }
        }
    };
    let cluster = builder.fresh("cluster");
    builder.node(
        Node::new("ArgMin", &[&distances], &[&cluster])
            .attr("axis", Attribute::Int(1))
            .attr("keepdims", Attribute::Int(0)),
    );
    builder.produce(
        name,
        &stage.param_map().get(&PREDICTION_COL)?,
        &cluster,
        ColumnKind::Long,
    )
}

/// `ReduceSum(data, axes)` (opset 13+: the axes are an input).
fn reduce_sum(builder: &mut OnnxBuilder, data: &str, axes: &str, keep: bool) -> String {
    let out = builder.fresh("sum");
    builder.node(
        Node::new("ReduceSum", &[data, axes], &[&out])
            .attr("keepdims", Attribute::Int(keep as i64)),
    );
    out
}
