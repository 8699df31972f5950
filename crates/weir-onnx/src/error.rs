//! Errors of the ONNX crate.

/// What can go wrong when provisioning ONNX Runtime or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// No usable ONNX Runtime library was found or installed.
    #[error(
        "ONNX Runtime {version} was not found ({reason}). Install it with \
         `python3 -m pip install onnxruntime=={version}` or point ORT_DYLIB_PATH at its \
         libonnxruntime.so.{version}",
        version = crate::runtime::ORT_VERSION
    )]
    RuntimeNotFound {
        /// What was tried.
        reason: String,
    },
    /// The library was found but could not be loaded (wrong version, broken file).
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad {
        /// The library file.
        path: String,
        /// ONNX Runtime's or the loader's message.
        reason: String,
    },
    /// A model could not be read, loaded or run.
    #[error("model {model}: {reason}")]
    Model {
        /// Path or name of the model.
        model: String,
        /// What went wrong.
        reason: String,
    },
}
