//! ONNX Runtime for Weir: provisioning the runtime library, one environment per process,
//! sessions per worker, and model inspection. The predict operator builds on these.
#![warn(missing_docs)]

mod error;
mod input_rows;
mod json;
mod loaded_model;
mod model_check;
mod model_info;
mod model_runner;
mod model_watch;
mod ort_values;
mod output_row;
mod predict;
pub mod runtime;
mod scorer;
mod session_options;
mod tensor;
mod tensor_spec;

pub use error::OnnxError;
pub use input_rows::InputRows;
pub use json::{tensor_from_json, tensor_to_json, tensor_to_shaped_json, value_to_json};
pub use model_info::{inspect, opset_imports, ModelInfo, TensorInfo};
pub use model_runner::ModelRunner;
pub use model_watch::{ModelWatch, ModelWatchExt};
pub use output_row::OutputRow;
pub use predict::{
    Batching, ModelSource, ModelUpdate, PredictConfig, PredictExt, Prediction, Probabilities,
    Serving, SwapPolicy, TensorPredictConfig, MAX_MODEL_BYTES,
};
pub use runtime::{runtime, Runtime};
pub use session_options::{ExecutionProvider, GraphOptimization, SessionOptions};
pub use tensor::{ElementType, MapValue, Tensor, TensorData, Value};
pub use tensor_spec::{NanPolicy, TensorSpec};
