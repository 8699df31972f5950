//! The class registry: Flink ML's class names (fully qualified or short) and Weir's names,
//! mapped to stage builders, for loading saved stages, JSON jobs and benchmark files.

use std::path::Path;

use serde_json::{Map, Value as Json};

use super::graph::{GRAPH_CLASS, GRAPH_MODEL_CLASS};
use super::pipeline::{load_stages, Pipeline, PipelineModel, PIPELINE_CLASS, PIPELINE_MODEL_CLASS};
use super::stage::Stage;
use crate::error::MlError;
use crate::{classification, clustering, evaluation, feature, regression};

/// A registered stage class.
pub struct StageClass {
    /// Flink ML's fully qualified class name.
    pub class_name: &'static str,
    /// Builds the stage with default params.
    pub build: fn() -> Box<dyn Stage>,
}

macro_rules! stage_classes {
    ($($t:ty),* $(,)?) => {
        &[$($crate::api::StageClass { class_name: <$t>::CLASS, build: || Box::new(<$t>::new()) }),*]
    };
}

/// Every stage class Weir has.
pub fn classes() -> impl Iterator<Item = &'static StageClass> {
    [
        feature::MODULE_CLASSES,
        classification::MODULE_CLASSES,
        clustering::MODULE_CLASSES,
        regression::MODULE_CLASSES,
        evaluation::MODULE_CLASSES,
    ]
    .into_iter()
    .flatten()
    .flat_map(|group| group.iter())
}

pub(crate) use stage_classes;

/// The short name of a class name (after the last `.`).
pub fn short_name(class_name: &str) -> &str {
    class_name.rsplit('.').next().unwrap_or(class_name)
}

/// The registered class of `name`: a fully qualified Flink ML class name, or a short name
/// (`StandardScaler`, `weir.StandardScaler`).
pub fn find_class(name: &str) -> Option<&'static StageClass> {
    classes().find(|c| c.class_name == name).or_else(|| {
        let short = short_name(name);
        classes().find(|c| short_name(c.class_name) == short)
    })
}

/// A new stage of class `name` with default params.
///
/// ```
/// use weir_flink_ml::api::new_stage;
/// assert_eq!(new_stage("StandardScaler").unwrap().short_name(), "StandardScaler");
/// assert!(new_stage("org.apache.flink.ml.feature.NoSuchThing").is_err());
/// ```
pub fn new_stage(name: &str) -> Result<Box<dyn Stage>, MlError> {
    find_class(name)
        .map(|c| (c.build)())
        .ok_or_else(|| MlError::UnknownClass(name.to_string()))
}

/// Pipelines and pipeline models, which load their stages from subdirectories.
pub(crate) fn load_composite(
    class: &str,
    dir: &Path,
    meta: &Map<String, Json>,
) -> Result<Option<Box<dyn Stage>>, MlError> {
    Ok(match class {
        PIPELINE_CLASS | "Pipeline" => Some(Box::new(Pipeline::new(load_stages(dir, meta)?))),
        PIPELINE_MODEL_CLASS | "PipelineModel" => {
            Some(Box::new(PipelineModel::new(load_stages(dir, meta)?)))
        }
        GRAPH_CLASS | GRAPH_MODEL_CLASS | "Graph" | "GraphModel" => {
            Some(super::graph::load_graph(class, dir, meta)?)
        }
        _ => None,
    })
}
