//! Exports a [`LogisticModel`] (or a [`Checkpoint`], with its scaler) as an ONNX model, so
//! that a trained model can feed the ONNX predict operator's live model swap: input `input`
//! float32 `[N, F]`, outputs `label` int64 `[N]` and `probabilities` float32 `[N, C]` (the
//! layout of the skl2onnx fixtures), computed as `[Sub → Div →] MatMul → Add → Softmax` and
//! `ArgMax`. The protobuf is written directly (field numbers from `onnx.proto`), so no ONNX
//! library is needed.

use crate::model_store::{Checkpoint, ScalerState};
use crate::ps_training::LogisticModel;

/// Protobuf wire-format writer for the few message shapes ONNX needs.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn string(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn message(self, field: u32, m: Message) -> Self {
        self.bytes(field, &m.0)
    }
}

// onnx.proto element types.
const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// A tensor type with shape: `None` is the symbolic batch dimension `N`.
fn value_info(name: &str, elem_type: i64, dims: &[Option<i64>]) -> Message {
    let mut shape = Message::default();
    for d in dims {
        let dim = match d {
            Some(v) => Message::default().int(1, *v),
            None => Message::default().string(2, "N"),
        };
        shape = shape.message(1, dim);
    }
    let tensor = Message::default().int(1, elem_type).message(2, shape);
    let ty = Message::default().message(1, tensor);
    Message::default().string(1, name).message(2, ty)
}

fn float_tensor(name: &str, dims: &[i64], values: &[f32]) -> Message {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut t = Message::default();
    for d in dims {
        t = t.int(1, *d);
    }
    t.int(2, FLOAT).string(8, name).bytes(9, &raw)
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attributes: &[(&str, i64)]) -> Message {
    let mut n = Message::default();
    for i in inputs {
        n = n.string(1, i);
    }
    for o in outputs {
        n = n.string(2, o);
    }
    n = n.string(4, op);
    for (name, value) in attributes {
        // AttributeProto: name = 1, i = 3, type = 20 (INT = 2).
        let a = Message::default().string(1, name).int(3, *value).int(20, 2);
        n = n.message(5, a);
    }
    n
}

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
    let mut graph = Message::default();
    let mut features = "input";
    if let Some(scaler) = scaler {
        let (mean, std): (Vec<f32>, Vec<f32>) = (0..f)
            .map(|i| {
                let (m, s) = scaler.mean_and_std(i);
                (m as f32, s as f32)
            })
            .unzip();
        graph = graph
            .message(1, node("Sub", &["input", "mean"], &["centred"], &[]))
            .message(1, node("Div", &["centred", "std"], &["scaled"], &[]))
            .message(5, float_tensor("mean", &[f as i64], &mean))
            .message(5, float_tensor("std", &[f as i64], &std));
        features = "scaled";
    }
    let graph = graph
        .message(1, node("MatMul", &[features, "weights"], &["scores"], &[]))
        .message(1, node("Add", &["scores", "bias"], &["logits"], &[]))
        .message(
            1,
            node("Softmax", &["logits"], &["probabilities"], &[("axis", 1)]),
        )
        .message(
            1,
            node(
                "ArgMax",
                &["logits"],
                &["label"],
                &[("axis", 1), ("keepdims", 0)],
            ),
        )
        .string(2, "weir_logistic_regression")
        .message(
            5,
            float_tensor("weights", &[f as i64, c as i64], &transposed),
        )
        .message(5, float_tensor("bias", &[c as i64], &model.bias))
        .message(11, value_info("input", FLOAT, &[None, Some(f as i64)]))
        .message(12, value_info("label", INT64, &[None]))
        .message(
            12,
            value_info("probabilities", FLOAT, &[None, Some(c as i64)]),
        );
    Message::default()
        .int(1, 8) // ir_version
        .string(2, "weir") // producer_name
        .message(7, graph)
        .message(8, Message::default().string(1, "").int(2, 17)) // opset_import
        .0
}
