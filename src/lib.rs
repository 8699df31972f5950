//! Weir: a Flink-style dataflow runtime with machine-learning operators, on timely dataflow.
//!
//! This facade re-exports the workspace crates; most programs need only the prelude:
//!
//! ```
//! use weir::prelude::*;
//!
//! let out = Collector::new();
//! let sink = out.clone();
//! execute(Config::threads(2), move |job| {
//!     job.from_vec("lines", vec!["a b".to_string(), "b".to_string()])
//!         .flat_map("split", |l: String| l.split(' ').map(String::from).collect::<Vec<_>>())
//!         .key_by(|w: &String| w.clone())
//!         .count("count")
//!         .collect("out", &sink);
//!     Ok(())
//! })
//! .unwrap();
//! assert_eq!(out.sorted(), vec![("a".to_string(), 1), ("b".to_string(), 2)]);
//! ```
#![warn(missing_docs)]

pub use weir_core as core;
pub use weir_core::*;
/// Flink ML's API: tables, params, stages, pipelines, graphs, save/load, JSON jobs, feature
/// engineering and Flink ML's benchmark generators (`weir-flink-ml`, see docs/flink-ml.md).
pub use weir_flink_ml as flink_ml;
/// Kafka source and sink, model updates through a topic (`weir-kafka`, feature `kafka`).
#[cfg(feature = "kafka")]
pub use weir_kafka as kafka;
/// The ML cluster: application master, roles, node runners, failover (`weir-ml`).
pub use weir_ml as ml;
/// ONNX Runtime provisioning and model inspection (`weir-onnx`).
pub use weir_onnx as onnx;

/// Everything a pipeline program usually needs.
pub mod prelude {
    pub use weir_core::{
        execute, explain, op, Change, Collector, Config, DataStream, DeadLetter, EpochPolicy, Job,
        JobReport, KeyedStream, Op, Partitioning, Plan, TableUpdate, WeirError,
    };
}

/// The README's example pipeline compiles (checked by `cargo test --doc`).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
