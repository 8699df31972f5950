//! Exports a [`LogisticModel`] (or a [`Checkpoint`], with its scaler) as an ONNX model, so
//! that a trained model can feed the ONNX predict operator's live model swap: input `input`
//! float32 `[N, F]`, outputs `label` int64 `[N]` and `probabilities` float32 `[N, C]` (the
//! layout of the skl2onnx fixtures), computed as `[Sub → Div →] MatMul → Add → Softmax` and
//! `ArgMax`. The protobuf is written directly (field numbers from `onnx.proto`), so no ONNX
//! library is needed.

use crate::model_store::{Checkpoint, ScalerState};
use crate::ps_training::LogisticModel;

use weir_onnx_graph::{Attribute, Dim, ElemType, Graph, Node};

impl LogisticModel {
    /// The model as ONNX bytes (opset 17): `input` → `label`, `probabilities`.
    pub fn to_onnx(&self) -> Vec<u8> {
        logistic_onnx(self, None)
    }
}

impl Checkpoint {
    /// The checkpoint's model as ONNX bytes, its scaler included: the exported model
    /// standardizes raw features exactly as the trainer and `weir serve` do.
    pub fn to_onnx(&self) -> Vec<u8> {
        logistic_onnx(&self.model, self.scaler.as_ref())
    }
}

/// `MatMul(input', weights) + bias`, then softmax and arg-max; `input'` is the input, or
/// `(input - mean) / std` with a scaler.
fn logistic_onnx(model: &LogisticModel, scaler: Option<&ScalerState>) -> Vec<u8> {
    let (c, f) = (model.classes, model.features);
    // MatMul wants [F, C]: the transpose of the row-major [C, F] weights.
    let transposed: Vec<f32> = (0..f)
        .flat_map(|j| (0..c).map(move |k| (j, k)))
        .map(|(j, k)| model.weights[k * f + j])
        .collect();
    let mut graph = Graph::new("weir_logistic_regression");
    let mut features = "input";
    if let Some(scaler) = scaler {
        let (mean, std): (Vec<f32>, Vec<f32>) = (0..f)
            .map(|i| {
                let (m, s) = scaler.mean_and_std(i);
                (m as f32, s as f32)
            })
            .unzip();
        graph.node(Node::new("Sub", &["input", "mean"], &["centred"]));
        graph.node(Node::new("Div", &["centred", "std"], &["scaled"]));
        graph.initializer_f32("mean", &[f as i64], &mean);
        graph.initializer_f32("std", &[f as i64], &std);
        features = "scaled";
    }
    graph.node(Node::new("MatMul", &[features, "weights"], &["scores"]));
    graph.node(Node::new("Add", &["scores", "bias"], &["logits"]));
    graph.node(
        Node::new("Softmax", &["logits"], &["probabilities"]).attr("axis", Attribute::Int(1)),
    );
    graph.node(
        Node::new("ArgMax", &["logits"], &["label"])
            .attr("axis", Attribute::Int(1))
            .attr("keepdims", Attribute::Int(0)),
    );
    graph.initializer_f32("weights", &[f as i64, c as i64], &transposed);
    graph.initializer_f32("bias", &[c as i64], &model.bias);
    graph.input(
        "input",
        ElemType::Float,
        &[Dim::Batch, Dim::Fixed(f as i64)],
    );
    graph.output("label", ElemType::Int64, &[Dim::Batch]);
    graph.output(
        "probabilities",
        ElemType::Float,
        &[Dim::Batch, Dim::Fixed(c as i64)],
    );
    graph.to_model(17, &[])
}
