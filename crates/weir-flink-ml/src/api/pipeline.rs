//! `Pipeline` (an estimator of a chain of stages) and `PipelineModel` (the chain of fitted
//! models and transformers), as in Flink ML.

use std::path::Path;

use serde_json::{json, Map, Value as Json};
use weir_core::Job;

use super::model_data::TableData;
use super::persistence::{load_stage, write_metadata};
use super::stage::{Fitted, Stage, StageKind};
use crate::error::MlError;
use crate::param::{ParamMap, WithParams};
use crate::table::Table;

/// Flink ML's class name of [`Pipeline`].
pub const PIPELINE_CLASS: &str = "org.apache.flink.ml.builder.Pipeline";
/// Flink ML's class name of [`PipelineModel`].
pub const PIPELINE_MODEL_CLASS: &str = "org.apache.flink.ml.builder.PipelineModel";

/// A chain of stages; fitting it fits each estimator on the output of the stages before it.
///
/// ```
/// use weir_core::{execute, Config};
/// use weir_flink_ml::api::{ModelCollector, Pipeline, Stage};
/// use weir_flink_ml::feature::{StandardScaler, VectorAssembler};
/// use weir_flink_ml::param::{shared::*, WithParams};
/// use weir_flink_ml::table::{DataType, Schema, Table, Value};
/// let pipeline = Pipeline::new(vec![
///     Box::new(VectorAssembler::new()
///         .set(&INPUT_COLS, vec!["a".into(), "b".into()]).unwrap()
///         .set(&OUTPUT_COL, "features".into()).unwrap()
///         .set(&INPUT_SIZES, vec![1, 1]).unwrap()),
///     Box::new(StandardScaler::new().set(&INPUT_COL, "features".into()).unwrap()),
/// ]);
/// # use weir_flink_ml::feature::vector_assembler::INPUT_SIZES;
/// let models = ModelCollector::new();
/// let sink = models.clone();
/// execute(Config::threads(2), move |job| {
///     let schema = Schema::new([("a", DataType::Double), ("b", DataType::Double)]);
///     let rows = (0..8).map(|i| vec![Value::Double(i as f64), Value::Double(1.0)]).collect();
///     let table = Table::from_rows(job, "rows", schema, rows).unwrap();
///     pipeline.fit(job, vec![table]).unwrap().collect(job, &sink);
///     Ok(())
/// }).unwrap();
/// assert_eq!(models.model().unwrap().class_name(), "org.apache.flink.ml.builder.PipelineModel");
/// ```
#[derive(Clone)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    params: ParamMap,
}

impl Pipeline {
    /// A pipeline of `stages`, in order.
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Pipeline {
        Pipeline {
            stages,
            params: ParamMap::new("Pipeline", &[]),
        }
    }

    /// The stages.
    pub fn stages(&self) -> &[Box<dyn Stage>] {
        &self.stages
    }
}

impl WithParams for Pipeline {
    fn param_map(&self) -> &ParamMap {
        &self.params
    }
    fn param_map_mut(&mut self) -> &mut ParamMap {
        &mut self.params
    }
}

impl Stage for Pipeline {
    fn class_name(&self) -> &'static str {
        PIPELINE_CLASS
    }

    fn kind(&self) -> StageKind {
        StageKind::Estimator
    }

    fn clone_stage(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }

    fn fit<'s>(
        &self,
        job: &mut Job<'s>,
        mut inputs: Vec<Table<'s>>,
    ) -> Result<Fitted<'s>, MlError> {
        // Stages after the last estimator need not run while fitting (as in Flink).
        let last_estimator = self
            .stages
            .iter()
            .rposition(|s| s.kind() == StageKind::Estimator);
        let mut models = Vec::new();
        let mut data = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let needed = last_estimator.is_some_and(|last| i < last);
            if stage.kind() == StageKind::Estimator {
                let fitted = stage.fit(job, inputs.clone())?;
                if needed {
                    inputs = fitted.transform(job, inputs)?;
                }
                models.push(fitted.model);
                data.extend(fitted.model_data);
            } else {
                if needed {
                    inputs = stage.transform(job, inputs)?;
                }
                models.push(stage.clone_stage());
            }
        }
        Ok(Fitted {
            model: Box::new(PipelineModel::new(models)),
            model_data: data,
        })
    }

    fn save(&self, dir: &Path) -> Result<(), MlError> {
        save_stages(self, &self.stages, dir)
    }
}

/// A chain of transformers and models; transforming runs them in order.
#[derive(Clone)]
pub struct PipelineModel {
    stages: Vec<Box<dyn Stage>>,
    params: ParamMap,
}

impl PipelineModel {
    /// A pipeline model of `stages`, in order.
    pub fn new(stages: Vec<Box<dyn Stage>>) -> PipelineModel {
        PipelineModel {
            stages,
            params: ParamMap::new("PipelineModel", &[]),
        }
    }

    /// The stages.
    pub fn stages(&self) -> &[Box<dyn Stage>] {
        &self.stages
    }
}

impl WithParams for PipelineModel {
    fn param_map(&self) -> &ParamMap {
        &self.params
    }
    fn param_map_mut(&mut self) -> &mut ParamMap {
        &mut self.params
    }
}

impl Stage for PipelineModel {
    fn class_name(&self) -> &'static str {
        PIPELINE_MODEL_CLASS
    }

    fn inner_stages(&self) -> Option<&[Box<dyn Stage>]> {
        Some(&self.stages)
    }

    fn kind(&self) -> StageKind {
        StageKind::Model
    }

    fn clone_stage(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        mut inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        for stage in &self.stages {
            inputs = stage.transform(job, inputs)?;
        }
        Ok(inputs)
    }

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        mut inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let mut data = model_data.into_iter();
        for stage in &self.stages {
            let n = stage.model_data_tables();
            inputs = if n == 0 {
                stage.transform(job, inputs)?
            } else {
                let own: Vec<_> = data.by_ref().take(n).collect();
                stage.transform_with(job, inputs, own)?
            };
        }
        Ok(inputs)
    }

    fn model_data_tables(&self) -> usize {
        self.stages.iter().map(|s| s.model_data_tables()).sum()
    }

    fn set_model_data(&mut self, data: Vec<TableData>) -> Result<(), MlError> {
        let mut data = data.into_iter();
        for stage in &mut self.stages {
            let n = stage.model_data_tables();
            if n > 0 {
                stage.set_model_data(data.by_ref().take(n).collect())?;
            }
        }
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<(), MlError> {
        save_stages(self, &self.stages, dir)
    }
}

fn save_stages(
    owner: &(impl Stage + ?Sized),
    stages: &[Box<dyn Stage>],
    dir: &Path,
) -> Result<(), MlError> {
    let mut extra = Map::new();
    extra.insert("numStages".into(), json!(stages.len()));
    write_metadata(owner, dir, extra)?;
    for (i, stage) in stages.iter().enumerate() {
        stage.save(&stage_dir(dir, i, stages.len()))?;
    }
    Ok(())
}

/// Loads the stages of a saved pipeline (`DIR/stages/<i>` for `i < numStages`).
pub(crate) fn load_stages(
    dir: &Path,
    meta: &Map<String, Json>,
) -> Result<Vec<Box<dyn Stage>>, MlError> {
    let n = meta
        .get("numStages")
        .and_then(Json::as_u64)
        .ok_or_else(|| MlError::Saved {
            path: dir.join("metadata"),
            message: "`numStages` must be a non-negative integer".into(),
        })?;
    (0..n as usize)
        .map(|i| load_stage(&stage_dir(dir, i, n as usize)))
        .collect()
}

/// `DIR/stages/<i>`, with `i` zero-padded to the digits of the stage count (as Flink ML's
/// `FileUtils.getPathForPipelineStage`).
pub(crate) fn stage_dir(dir: &Path, i: usize, stages: usize) -> std::path::PathBuf {
    let width = stages.to_string().len();
    dir.join("stages").join(format!("{i:0width$}"))
}
