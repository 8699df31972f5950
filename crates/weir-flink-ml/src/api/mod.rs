//! Flink ML's API: stages, estimators and models, pipelines, save/load and the class
//! registry.

mod graph;
mod model_data;
mod persistence;
mod pipeline;
mod registry;
mod stage;

pub use graph::{
    Graph, GraphBuilder, GraphModel, NodeData, TableId, GRAPH_CLASS, GRAPH_MODEL_CLASS,
};
pub use model_data::{records_of, transform_with_stored, ModelCollector, TableData};
pub use persistence::{
    load_stage, read_metadata, schema_from_json, schema_json, write_metadata, FORMAT_VERSION,
};
pub use pipeline::{Pipeline, PipelineModel, PIPELINE_CLASS, PIPELINE_MODEL_CLASS};
pub(crate) use registry::stage_classes;
pub use registry::{classes, find_class, new_stage, short_name, StageClass};
pub use stage::{Fitted, Stage, StageKind};
