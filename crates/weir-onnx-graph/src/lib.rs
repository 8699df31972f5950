//! Writes ONNX models: a [`Graph`] of operator nodes, typed inputs and outputs and constant
//! initializers, encoded in the protobuf wire format of `onnx.proto` (field numbers from the
//! ONNX specification), so that exporting a trained model needs no ONNX or protobuf library.
//! Used by online learning's checkpoint export (weir-ml) and the Flink ML models' export
//! (weir-flink-ml); ONNX Runtime loads what it writes.
//!
//! ```
//! use weir_onnx_graph::{Dim, ElemType, Graph, Node};
//! let mut graph = Graph::new("double_it");
//! graph.input("x", ElemType::Double, &[Dim::Batch, Dim::Fixed(3)]);
//! graph.initializer_f64("two", &[], &[2.0]);
//! graph.node(Node::new("Mul", &["x", "two"], &["y"]));
//! graph.output("y", ElemType::Double, &[Dim::Batch, Dim::Fixed(3)]);
//! let bytes = graph.to_model(17, &[]);
//! assert!(bytes.len() > 40);
//! ```
#![warn(missing_docs)]

/// Protobuf wire-format writer for the message shapes ONNX needs.
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

    fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
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

/// ONNX tensor element types (`TensorProto.DataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    /// `FLOAT` (f32).
    Float = 1,
    /// `STRING`.
    String = 8,
    /// `INT64`.
    Int64 = 7,
    /// `BOOL`.
    Bool = 9,
    /// `DOUBLE` (f64).
    Double = 11,
}

/// A dimension of a typed value: the symbolic batch dimension `N`, a fixed size, or another
/// symbolic dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The batch dimension, named `N`.
    Batch,
    /// A fixed size.
    Fixed(i64),
    /// A symbolic dimension with this name.
    Named(String),
}

/// An attribute value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string.
    String(String),
    /// Integers.
    Ints(Vec<i64>),
    /// Floats.
    Floats(Vec<f32>),
    /// Strings.
    Strings(Vec<String>),
}

/// One operator node.
#[derive(Clone, Debug)]
pub struct Node {
    op: String,
    domain: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attributes: Vec<(String, Attribute)>,
}

impl Node {
    /// A node of operator `op` (default domain) from `inputs` to `outputs`.
    pub fn new(op: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            op: op.into(),
            domain: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            attributes: Vec::new(),
        }
    }

    /// The node in operator domain `domain` (`ai.onnx.ml` for the ML operators).
    pub fn domain(mut self, domain: &str) -> Node {
        self.domain = domain.into();
        self
    }

    /// Adds attribute `name`.
    pub fn attr(mut self, name: &str, value: Attribute) -> Node {
        self.attributes.push((name.into(), value));
        self
    }

    fn encode(&self) -> Message {
        let mut n = Message::default();
        for i in &self.inputs {
            n = n.string(1, i);
        }
        for o in &self.outputs {
            n = n.string(2, o);
        }
        n = n.string(4, &self.op);
        for (name, value) in &self.attributes {
            n = n.message(5, encode_attribute(name, value));
        }
        if !self.domain.is_empty() {
            n = n.string(7, &self.domain);
        }
        n
    }
}

/// `AttributeProto`: name = 1, f = 2, i = 3, s = 4, floats = 7, ints = 8, strings = 9,
/// type = 20 (FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7, STRINGS 8).
fn encode_attribute(name: &str, value: &Attribute) -> Message {
    let a = Message::default().string(1, name);
    match value {
        Attribute::Float(v) => a.float(2, *v).int(20, 1),
        Attribute::Int(v) => a.int(3, *v).int(20, 2),
        Attribute::String(v) => a.string(4, v).int(20, 3),
        Attribute::Floats(vs) => vs.iter().fold(a, |a, v| a.float(7, *v)).int(20, 6),
        Attribute::Ints(vs) => vs.iter().fold(a, |a, v| a.int(8, *v)).int(20, 7),
        Attribute::Strings(vs) => vs.iter().fold(a, |a, v| a.string(9, v)).int(20, 8),
    }
}

/// A graph under construction.
pub struct Graph {
    name: String,
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    inputs: Vec<Message>,
    outputs: Vec<Message>,
}

impl Graph {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.into(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Adds a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.inputs.push(value_info(name, elem, dims));
    }

    /// Adds a graph output.
    pub fn output(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.outputs.push(value_info(name, elem, dims));
    }

    /// Adds a node.
    pub fn node(&mut self, node: Node) {
        self.nodes.push(node.encode());
    }

    /// Adds a constant f64 tensor of shape `dims` (empty: a scalar).
    pub fn initializer_f64(&mut self, name: &str, dims: &[i64], values: &[f64]) {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor(name, dims, ElemType::Double, &raw));
    }

    /// Adds a constant f32 tensor.
    pub fn initializer_f32(&mut self, name: &str, dims: &[i64], values: &[f32]) {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor(name, dims, ElemType::Float, &raw));
    }

    /// Adds a constant i64 tensor.
    pub fn initializer_i64(&mut self, name: &str, dims: &[i64], values: &[i64]) {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor(name, dims, ElemType::Int64, &raw));
    }

    /// The model: this graph with IR version 8, importing the default opset `opset` and
    /// the other `(domain, version)` opsets.
    pub fn to_model(self, opset: i64, other_opsets: &[(&str, i64)]) -> Vec<u8> {
        let mut graph = Message::default();
        for n in self.nodes {
            graph = graph.message(1, n);
        }
        graph = graph.string(2, &self.name);
        for t in self.initializers {
            graph = graph.message(5, t);
        }
        for i in self.inputs {
            graph = graph.message(11, i);
        }
        for o in self.outputs {
            graph = graph.message(12, o);
        }
        let mut model = Message::default()
            .int(1, 8) // ir_version
            .string(2, "weir") // producer_name
            .message(7, graph)
            .message(8, Message::default().string(1, "").int(2, opset));
        for (domain, version) in other_opsets {
            model = model.message(8, Message::default().string(1, domain).int(2, *version));
        }
        model.0
    }
}

/// `TensorProto`: dims = 1, data_type = 2, name = 8, raw_data = 9.
fn tensor(name: &str, dims: &[i64], elem: ElemType, raw: &[u8]) -> Message {
    let mut t = Message::default();
    for d in dims {
        t = t.int(1, *d);
    }
    t.int(2, elem as i64).string(8, name).bytes(9, raw)
}

/// `ValueInfoProto` of a tensor type with shape.
fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> Message {
    let mut shape = Message::default();
    for d in dims {
        let dim = match d {
            Dim::Fixed(v) => Message::default().int(1, *v),
            Dim::Batch => Message::default().string(2, "N"),
            Dim::Named(name) => Message::default().string(2, name),
        };
        shape = shape.message(1, dim);
    }
    let tensor = Message::default().int(1, elem as i64).message(2, shape);
    let ty = Message::default().message(1, tensor);
    Message::default().string(1, name).message(2, ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_attributes_follow_the_wire_format() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, vec![0xAC, 0x02]);
        let a = encode_attribute("axis", &Attribute::Int(1));
        // name (field 1, "axis"), i (field 3) = 1, type (field 20) = INT.
        assert_eq!(
            a.0,
            vec![0x0A, 4, b'a', b'x', b'i', b's', 0x18, 1, 0xA0, 0x01, 2]
        );
    }
}
