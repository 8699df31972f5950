//! Weir's dataflow core: a Flink-style pipeline API compiled onto timely dataflow.
//!
//! A program builds a job graph from sources, operators and sinks, each with a name and a
//! parallelism; [`execute`] runs it on timely workers (threads and processes) and returns a
//! [`JobReport`]. See `docs/architecture.md` for how the pieces map onto timely.
//!
//! ```
//! use weir_core::{execute, op, Config, Collector};
//!
//! let out = Collector::new();
//! let sink = out.clone();
//! execute(Config::threads(2), move |job| {
//!     job.generate(op("numbers").parallelism(1), Some(1000), |i| i)
//!         .map("square", |x| x * x)
//!         .filter("even", |x| x % 2 == 0)
//!         .key_by(|x| x % 10)
//!         .sum("sum_by_last_digit", |x| *x)
//!         .collect(op("out").parallelism(1), &sink);
//!     Ok(())
//! })
//! .unwrap();
//! // Squares of even numbers end in 0, 4 or 6; all 1000 records fit in one epoch, so each
//! // running sum is emitted once.
//! assert_eq!(out.len(), 3);
//! ```
#![warn(missing_docs)]

mod cluster;
mod config;
mod dead_letter;
mod error;
mod job;
pub mod logging;
mod operators;
mod plan;
mod report;
mod runtime;
mod sinks;
pub mod sources;
pub mod state;
mod stream;
pub mod time;

pub use cluster::io_deadline;
pub use cluster::job_secret;
pub use cluster::job_secret::JobSecret;
pub use cluster::local_cluster::LocalCluster;
pub use config::{
    CheckpointConfig, Cluster, Config, EpochPolicy, ExplainFormat, DEFAULT_MAX_LINE_BYTES,
};
pub use dead_letter::DeadLetter;
pub use error::{Result, WeirError};
pub use job::{op, Epoch, Job, Op};
pub use operators::bridge::{BridgeOutput, BridgeTask, BRIDGE_INPUT_CAPACITY};
pub use operators::broadcast_state::{BatchOutcome, StateWaker};
pub use operators::data_cache::{DataCache, DEFAULT_CACHE_BUDGET};
pub use operators::feedback::FeedbackHandle;
pub use operators::iteration::{IterationBody, Round, Step};
pub use operators::join::{Change, TableUpdate};
pub use operators::keyed::{key_hash, Key, KeyedStream};
pub use operators::online_iteration::OnlineBody;
pub use plan::{spread, NodeId, Partitioning, Plan, PlanEdge, PlanNode};
pub use report::{JobReport, LiveMetrics, OperatorMetrics, OperatorReport};
pub use runtime::checkpointing::CheckpointStats;
pub use runtime::execute::{execute, explain};
pub use sinks::sink::Collector;
pub use sinks::sink_writer::SinkWriter;
pub use sources::file_input::{align_to_line, input_files};
pub use sources::file_source::FileFormat;
pub use sources::raw_json::RawJsonObject;
pub use sources::source::{PullSource, Pulled};
pub use stream::{AsNode, Data, DataStream};

/// Re-exports of timely and differential for hand-written operators.
pub mod reexports {
    pub use differential_dataflow;
    pub use timely;
}
