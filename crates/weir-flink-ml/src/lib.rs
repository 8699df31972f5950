//! Flink ML's API on Weir: tables of typed columns, params with validators, stages
//! (transformers, estimators, models), pipelines, save/load in Flink ML's layout, a class
//! registry, and Flink ML's feature-engineering stages. Stages build dataflow operators on a
//! [`weir_core::Job`]; see `docs/flink-ml.md`.
#![warn(missing_docs)]

pub mod api;
pub mod benchmark;
pub mod classification;
pub mod clustering;
mod common;
mod error;
pub mod evaluation;
pub mod feature;
pub mod json_job;
pub mod onnx;
pub mod param;
pub mod regression;
pub mod table;

pub use error::MlError;
