//! NaiveBayesModel (categorical): per feature, the row's value compared with the feature's
//! categories (`Equal`, a one-hot `[N, C]`), times the table of their log probabilities per
//! label (`MatMul`, `[N, L]`); the sum over the features plus the log priors, `ArgMax` (the
//! first of equal labels, as Flink's `findMaxProbLabel`) and `Gather` of the label. A row
//! with a value the model has not seen for some feature (which fails the job, as it fails
//! Flink's) gets the prediction NaN.

use weir_onnx_graph::{Attribute, Node};

use super::builder::{ColumnKind, OnnxBuilder};
use super::model_table;
use crate::api::Stage;
use crate::classification::naive_bayes::NaiveBayesModelData;
use crate::error::MlError;
use crate::param::shared::{FEATURES_COL, PREDICTION_COL};

pub(super) fn export(stage: &dyn Stage, builder: &mut OnnxBuilder) -> Result<(), MlError> {
    let name = stage.short_name();
    let fail = |message: String| MlError::Stage {
        stage: name.into(),
        message,
    };
    let table = model_table(stage)?;
    let data = NaiveBayesModelData::from_batches(&table.schema, &table.batches).map_err(fail)?;
    let labels = data.labels.len();
    let features = data.theta.first().map_or(0, Vec::len);
    if data.theta.iter().any(|t| t.len() != features) {
        return Err(fail(
            "the labels' theta have different numbers of features".into(),
        ));
    }
    let x = builder
        .column_of(
            name,
            &stage.param_map().get(&FEATURES_COL)?,
            ColumnKind::Vector,
        )?
        .value;
    let one = builder.constant_i64("axis", &[1], &[1]);
    let mut scores = vec![builder.constant_f64("pi", &[labels as i64], &data.pi_array)];
    let mut seen = Vec::with_capacity(features);
    for j in 0..features {
        let categories: Vec<f64> = data.theta[0][j].iter().map(|&(v, _)| v).collect();
        let mut table = vec![0.0; categories.len() * labels];
        for (l, per_label) in data.theta.iter().enumerate() {
            if per_label[j].len() != categories.len() {
                return Err(fail(format!(
                    "feature {j} has other categories for label {} than for label {}",
                    data.labels[l], data.labels[0]
                )));
            }
            for (c, &(_, p)) in per_label[j].iter().enumerate() {
                table[c * labels + l] = p;
            }
        }
        let c = categories.len() as i64;
        let index = builder.constant_i64("feature", &[1], &[j as i64]);
        let column = builder.fresh("column");
        builder
            .node(Node::new("Gather", &[&x, &index], &[&column]).attr("axis", Attribute::Int(1)));
        let values = builder.constant_f64("categories", &[1, c], &categories);
        let equal = builder.apply("Equal", &[&column, &values], "equal");
        let one_hot = builder.fresh("one_hot");
        builder.node(Node::new("Cast", &[&equal], &[&one_hot]).attr("to", Attribute::Int(11)));
        let log_probs = builder.constant_f64("log_probs", &[c, labels as i64], &table);
        scores.push(builder.apply("MatMul", &[&one_hot, &log_probs], "score"));
        let found = builder.fresh("found");
        builder.node(
            Node::new("ReduceSum", &[&one_hot, &one], &[&found])
                .attr("keepdims", Attribute::Int(0)),
        );
        seen.push(found);
    }
    let refs: Vec<&str> = scores.iter().map(String::as_str).collect();
    let total = builder.apply("Sum", &refs, "total");
    let best = builder.fresh("best");
    builder.node(
        Node::new("ArgMax", &[&total], &[&best])
            .attr("axis", Attribute::Int(1))
            .attr("keepdims", Attribute::Int(0)),
    );
    let label_values = builder.constant_f64("labels", &[labels as i64], &data.labels);
    let label = builder.fresh("label");
    builder.node(
        Node::new("Gather", &[&label_values, &best], &[&label]).attr("axis", Attribute::Int(0)),
    );
    let prediction = if seen.is_empty() {
        label
    } else {
        // Every feature's value is one of its categories: the features found sum to their count.
        let refs: Vec<&str> = seen.iter().map(String::as_str).collect();
        let found = builder.apply("Sum", &refs, "found_all");
        let count = builder.constant_f64("features", &[], &[features as f64]);
        let all = builder.apply("Equal", &[&found, &count], "all_found");
        let nan = builder.constant_f64("nan", &[], &[f64::NAN]);
        builder.apply("Where", &[&all, &label, &nan], "prediction")
    };
    builder.produce(
        name,
        &stage.param_map().get(&PREDICTION_COL)?,
        &prediction,
        ColumnKind::Double,
    )
}
