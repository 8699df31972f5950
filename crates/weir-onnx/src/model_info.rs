//! What a model file declares: inputs, outputs, opsets and metadata (`weir inspect`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ort::session::Session;
use ort::value::ValueType;
use serde::Serialize;

use crate::error::OnnxError;
use crate::runtime::runtime;

/// One input or output of a model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorInfo {
    /// Name used to feed or fetch it.
    pub name: String,
    /// Element type (`f32`, `i64`, …) or the non-tensor kind.
    pub dtype: String,
    /// Dimensions; `-1` is dynamic (e.g. the batch).
    pub shape: Vec<i64>,
}

/// A model's interface and metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Inputs in order.
    pub inputs: Vec<TensorInfo>,
    /// Outputs in order.
    pub outputs: Vec<TensorInfo>,
    /// Operator sets the model imports: domain (`""` is the default ONNX domain) → version.
    pub opsets: BTreeMap<String, i64>,
    /// Producer name and version, e.g. `skl2onnx 1.20.0`.
    pub producer: Option<String>,
    /// The graph's name.
    pub graph_name: Option<String>,
    /// The model's doc string.
    pub description: Option<String>,
    /// The model version field.
    pub version: Option<i64>,
    /// Custom metadata properties.
    pub metadata: BTreeMap<String, String>,
}

fn tensor_info(name: &str, dtype: &ValueType) -> TensorInfo {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => TensorInfo {
            name: name.to_string(),
            dtype: ty.to_string(),
            shape: shape.iter().copied().collect(),
        },
        other => TensorInfo {
            name: name.to_string(),
            dtype: other.to_string(),
            shape: Vec::new(),
        },
    }
}

impl ModelInfo {
    /// Reads the interface of a loaded session; `bytes` are the model file's contents (for
    /// the opset imports, which ONNX Runtime does not expose).
    pub fn from_session(session: &Session, bytes: &[u8]) -> Result<Self, OnnxError> {
        let model_error = |e: ort::Error| OnnxError::Model {
            model: "session".into(),
            reason: e.to_string(),
        };
        let meta = session.metadata().map_err(model_error)?;
        let mut metadata = BTreeMap::new();
        for key in meta.custom_keys().map_err(model_error)? {
            if let Some(value) = meta.custom(&key) {
                metadata.insert(key, value);
            }
        }
        let producer = meta.producer().filter(|p| !p.is_empty());
        Ok(ModelInfo {
            inputs: session
                .inputs()
                .iter()
                .map(|o| tensor_info(o.name(), o.dtype()))
                .collect(),
            outputs: session
                .outputs()
                .iter()
                .map(|o| tensor_info(o.name(), o.dtype()))
                .collect(),
            opsets: opset_imports(bytes),
            producer,
            graph_name: meta.name().filter(|n| !n.is_empty()),
            description: meta.description().filter(|d| !d.is_empty()),
            // ONNX Runtime reports an unset model version as i64::MAX.
            version: meta.version().filter(|v| *v != i64::MAX),
            metadata,
        })
    }
}

/// Loads `path` with ONNX Runtime and describes it.
pub fn inspect(path: impl AsRef<Path>) -> Result<ModelInfo, OnnxError> {
    let path = path.as_ref();
    let model_error = |reason: String| OnnxError::Model {
        model: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| model_error(e.to_string()))?;
    let runtime = runtime()?;
    let session = Session::builder(runtime.environment())
        .and_then(|mut b| b.commit_from_memory(&bytes))
        .map_err(|e| model_error(e.to_string()))?;
    ModelInfo::from_session(&session, &bytes).map_err(|e| match e {
        OnnxError::Model { reason, .. } => model_error(reason),
        other => other,
    })
}

/// A declared shape for people: `[N, 64]`, with `N` for every dynamic dimension.
pub(crate) fn dims(shape: &[i64]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| {
            if *d < 0 {
                "N".to_string()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "inputs:")?;
        for t in &self.inputs {
            writeln!(f, "  {:<20} {:<8} {}", t.name, t.dtype, dims(&t.shape))?;
        }
        writeln!(f, "outputs:")?;
        for t in &self.outputs {
            writeln!(f, "  {:<20} {:<8} {}", t.name, t.dtype, dims(&t.shape))?;
        }
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
            .collect();
        writeln!(f, "opsets:   {}", opsets.join(", "))?;
        for (label, value) in [
            ("producer", &self.producer),
            ("graph", &self.graph_name),
            ("doc", &self.description),
        ] {
            if let Some(v) = value {
                writeln!(f, "{:<9} {v}", format!("{label}:"))?;
            }
        }
        if let Some(v) = self.version {
            writeln!(f, "version:  {v}")?;
        }
        for (k, v) in &self.metadata {
            writeln!(f, "meta:     {k} = {v}")?;
        }
        Ok(())
    }
}

/// The `opset_import` entries of an ONNX `ModelProto` (field 8: `OperatorSetIdProto` with
/// `domain` = 1 and `version` = 2), read straight from the protobuf wire format. Malformed
/// input yields what could be read.
pub fn opset_imports(model: &[u8]) -> BTreeMap<String, i64> {
    let mut opsets = BTreeMap::new();
    for (field, value) in WireFields::new(model) {
        if let (8, Wire::Bytes(entry)) = (field, value) {
            let (mut domain, mut version) = (String::new(), 0i64);
            for (f, v) in WireFields::new(entry) {
                match (f, v) {
                    (1, Wire::Bytes(d)) => domain = String::from_utf8_lossy(d).into_owned(),
                    (2, Wire::Varint(n)) => version = n as i64,
                    _ => {}
                }
            }
            opsets.insert(domain, version);
        }
    }
    opsets
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates over the top-level fields of a protobuf message.
struct WireFields<'a> {
    rest: &'a [u8],
}

impl<'a> WireFields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        WireFields { rest: bytes }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }
}

impl<'a> Iterator for WireFields<'a> {
    type Item = (u64, Wire<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => self.take(8).map(|_| Wire::Fixed)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Wire::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Wire::Fixed)?,
            _ => return None,
        };
        Some((key >> 3, value))
    }
}
