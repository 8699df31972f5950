//! The graph being exported: which ONNX value holds each table column so far, graph inputs
//! declared as stages first read input columns, and the produced columns as outputs.

use std::collections::HashMap;

use weir_onnx_graph::{Dim, ElemType, Graph, Node};

use crate::error::MlError;
use crate::table::{DataType, Schema};

/// The ONNX opset of exported models.
const OPSET: i64 = 17;
/// The `ai.onnx.ml` opset (for `LabelEncoder`'s typed keys and values).
const ML_OPSET: i64 = 2;

/// What kind of tensor holds a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// `f64[N]`.
    Double,
    /// `i64[N]`.
    Long,
    /// `string[N]`.
    String,
    /// `bool[N]`.
    Boolean,
    /// `f64[N, F]`.
    Vector,
}

impl ColumnKind {
    fn of(data_type: DataType) -> Option<ColumnKind> {
        match data_type {
            DataType::Double => Some(ColumnKind::Double),
            DataType::Long => Some(ColumnKind::Long),
            DataType::String => Some(ColumnKind::String),
            DataType::Boolean => Some(ColumnKind::Boolean),
            DataType::DenseVector => Some(ColumnKind::Vector),
            _ => None,
        }
    }

    fn elem(self) -> ElemType {
        match self {
            ColumnKind::Double | ColumnKind::Vector => ElemType::Double,
            ColumnKind::Long => ElemType::Int64,
            ColumnKind::String => ElemType::String,
            ColumnKind::Boolean => ElemType::Bool,
        }
    }

    fn dims(self, column: &str) -> Vec<Dim> {
        match self {
            ColumnKind::Vector => vec![Dim::Batch, Dim::Named(format!("{column}_size"))],
            _ => vec![Dim::Batch],
        }
    }
}

/// A column in the graph: the ONNX value that holds it and its kind.
#[derive(Clone, Debug)]
pub struct OnnxColumn {
    /// The ONNX value's name.
    pub value: String,
    /// The tensor kind.
    pub kind: ColumnKind,
}

/// An ONNX graph built stage by stage over a table's columns.
pub struct OnnxBuilder {
    graph: Graph,
    input: Schema,
    columns: HashMap<String, OnnxColumn>,
    produced: Vec<String>,
    next_name: usize,
    ml_domain: bool,
}

impl OnnxBuilder {
    /// A builder for models reading tables of `input` schema.
    pub fn new(input: Schema) -> OnnxBuilder {
        OnnxBuilder {
            graph: Graph::new("weir_flink_ml"),
            input,
            columns: HashMap::new(),
            produced: Vec::new(),
            next_name: 0,
            ml_domain: false,
        }
    }

    /// Column `name` as `stage` reads it: produced by an earlier stage, or a graph input
    /// (declared on first use, typed by the input schema).
    pub(crate) fn column(&mut self, stage: &str, name: &str) -> Result<OnnxColumn, MlError> {
        if let Some(column) = self.columns.get(name) {
            return Ok(column.clone());
        }
        let index = self.input.index_of(name).map_err(|_| MlError::Stage {
            stage: stage.into(),
            message: format!(
                "reads column `{name}`, which neither the input ({}) nor an earlier stage has",
                self.input.names().join(", ")
            ),
        })?;
        let data_type = self.input.data_type(index);
        let kind = ColumnKind::of(data_type).ok_or_else(|| MlError::Stage {
            stage: stage.into(),
            message: format!(
                "column `{name}` is a {data_type} column, which ONNX export does not take"
            ),
        })?;
        self.graph.input(name, kind.elem(), &kind.dims(name));
        let column = OnnxColumn {
            value: name.into(),
            kind,
        };
        self.columns.insert(name.into(), column.clone());
        Ok(column)
    }

    /// Column `name` of `stage`, which must be of `kind`.
    pub(crate) fn column_of(
        &mut self,
        stage: &str,
        name: &str,
        kind: ColumnKind,
    ) -> Result<OnnxColumn, MlError> {
        let column = self.column(stage, name)?;
        if column.kind != kind {
            return Err(MlError::Stage {
                stage: stage.into(),
                message: format!(
                    "column `{name}` holds {:?} values, expected {kind:?}",
                    column.kind
                ),
            });
        }
        Ok(column)
    }

    /// A new value name starting with `base`.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        self.next_name += 1;
        format!("{base}_{}", self.next_name)
    }

    /// Adds a node.
    pub(crate) fn node(&mut self, node: Node) {
        self.graph.node(node);
    }

    /// Adds an `ai.onnx.ml` node.
    pub(crate) fn ml_node(&mut self, node: Node) {
        self.ml_domain = true;
        self.graph.node(node.domain("ai.onnx.ml"));
    }

    /// A constant f64 tensor; its value name.
    pub(crate) fn constant_f64(&mut self, base: &str, dims: &[i64], values: &[f64]) -> String {
        let name = self.fresh(base);
        self.graph.initializer_f64(&name, dims, values);
        name
    }

    /// A constant i64 tensor; its value name.
    pub(crate) fn constant_i64(&mut self, base: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(base);
        self.graph.initializer_i64(&name, dims, values);
        name
    }

    /// `Op(inputs)` into a new value; its name.
    pub(crate) fn apply(&mut self, op: &str, inputs: &[&str], base: &str) -> String {
        let out = self.fresh(base);
        self.graph.node(Node::new(op, inputs, &[&out]));
        out
    }

    /// `Concat` along axis 1 into a new value; its name.
    pub(crate) fn apply_concat(&mut self, inputs: &[&str]) -> String {
        let out = self.fresh("concat");
        self.graph.node(
            Node::new("Concat", inputs, &[&out]).attr("axis", weir_onnx_graph::Attribute::Int(1)),
        );
        out
    }

    /// Column `name` is now held by `value` (a stage's output): it is a graph output under
    /// its own name, which no other column of the graph may have had (ONNX values are
    /// written once).
    pub(crate) fn produce(
        &mut self,
        stage: &str,
        name: &str,
        value: &str,
        kind: ColumnKind,
    ) -> Result<(), MlError> {
        if self.columns.contains_key(name) {
            return Err(MlError::Stage {
                stage: stage.into(),
                message: format!(
                    "writes column `{name}`, which the graph already has; ONNX export needs \
                     every column written once"
                ),
            });
        }
        self.graph.node(Node::new("Identity", &[value], &[name]));
        if !self.produced.iter().any(|p| p == name) {
            self.produced.push(name.into());
        }
        self.columns.insert(
            name.into(),
            OnnxColumn {
                value: name.into(),
                kind,
            },
        );
        Ok(())
    }

    /// The model bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, MlError> {
        if self.produced.is_empty() {
            return Err(MlError::Stage {
                stage: "ONNX export".into(),
                message: "the model produces no column".into(),
            });
        }
        for name in std::mem::take(&mut self.produced) {
            let kind = self.columns[&name].kind;
            self.graph.output(&name, kind.elem(), &kind.dims(&name));
        }
        let other: &[(&str, i64)] = if self.ml_domain {
            &[("ai.onnx.ml", ML_OPSET)]
        } else {
            &[]
        };
        Ok(self.graph.to_model(OPSET, other))
    }
}
