//! The library's errors: each names the stage, param, column or file it is about.

use std::path::PathBuf;

use crate::table::DataType;

/// What can go wrong building, configuring, saving or loading stages.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// A param value that its validator refuses, or of the wrong JSON type.
    #[error("{stage}: parameter `{param}` is given an invalid value: it {message}")]
    InvalidParam {
        /// The stage's class name.
        stage: String,
        /// The param's name.
        param: String,
        /// What was given and what is expected.
        message: String,
    },
    /// A param the stage does not have.
    #[error("{stage}: unknown parameter `{param}` (its parameters: {known})")]
    UnknownParam {
        /// The stage's class name.
        stage: String,
        /// The unknown name.
        param: String,
        /// The stage's params.
        known: String,
    },
    /// A param without a value and without a default.
    #[error("{stage}: parameter `{param}` must be set (it has no default)")]
    MissingParam {
        /// The stage's class name.
        stage: String,
        /// The param's name.
        param: String,
    },
    /// A column name not in the input's schema.
    #[error("no column `{column}` in the table (its columns: {columns})")]
    UnknownColumn {
        /// The missing column.
        column: String,
        /// The columns there are.
        columns: String,
    },
    /// An output column that exists already.
    #[error("the output column `{0}` exists already in the input table")]
    DuplicateColumn(String),
    /// A column of the wrong type for a stage.
    #[error("{stage}: column `{column}` must be {expected}, but it is {actual}")]
    ColumnType {
        /// The stage's class name.
        stage: String,
        /// The column.
        column: String,
        /// The types the stage takes.
        expected: String,
        /// The column's type.
        actual: DataType,
    },
    /// A row that does not fit its schema.
    #[error("bad row: {0}")]
    Row(String),
    /// Wrong number of input tables for a stage.
    #[error("{stage}: expected {expected} input table(s), got {actual}")]
    Inputs {
        /// The stage's class name.
        stage: String,
        /// How many it takes.
        expected: usize,
        /// How many it got.
        actual: usize,
    },
    /// A class name no stage is registered under.
    #[error("unknown stage class `{0}` (see docs/flink-ml.md for the stages Weir has)")]
    UnknownClass(String),
    /// A stage used in a way its kind does not allow (fitting a Transformer, ...).
    #[error("{stage}: {message}")]
    Stage {
        /// The stage's class name.
        stage: String,
        /// What is wrong.
        message: String,
    },
    /// A model without model data.
    #[error("{0}: the model has no model data (fit it, load it, or call set_model_data)")]
    NoModelData(String),
    /// A saved stage whose files cannot be read or do not make sense.
    #[error("{path}: {message}")]
    Saved {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A job description that does not make sense.
    #[error("{0}")]
    Job(String),
    /// The dataflow failed.
    #[error(transparent)]
    Weir(#[from] weir_core::WeirError),
}

impl MlError {
    /// An [`MlError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> MlError {
        let path = path.into();
        move |source| MlError::Io { path, source }
    }
}

impl From<MlError> for weir_core::WeirError {
    /// Stage errors met while a job is built fail the job as configuration errors.
    fn from(e: MlError) -> Self {
        match e {
            MlError::Weir(e) => e,
            e => weir_core::WeirError::Config(e.to_string()),
        }
    }
}
