//! ONNX Runtime for Weir: provisioning the runtime library, one environment per process,
//! sessions per worker, and model inspection. The predict operator builds on these.
#![warn(missing_docs)]

mod error;
mod model_check;
mod model_info;
mod model_watch;
mod predict;
pub mod runtime;
mod tensor_batch;

pub use error::OnnxError;
pub use model_info::{inspect, opset_imports, ModelInfo, TensorInfo};
pub use model_watch::{ModelWatch, ModelWatchExt};
pub use predict::{
    ModelSource, ModelUpdate, PredictConfig, PredictExt, Prediction, Probabilities, Serving,
    SwapPolicy, TensorPredictConfig,
};
pub use runtime::{runtime, Runtime};
pub use tensor_batch::{ElementType, InputRows, OutputRow, TensorSpec};
