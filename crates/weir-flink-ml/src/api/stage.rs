//! Stages (Flink ML's `Stage`, `AlgoOperator`, `Transformer`, `Estimator`, `Model`) as one
//! object-safe trait, so that pipelines, graphs and the class registry hold any stage.

use std::path::Path;

use weir_core::Job;

use super::model_data::TableData;
use crate::error::MlError;
use crate::param::WithParams;
use crate::table::Table;

/// What a stage is, as Flink ML's interfaces say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// Tables in, tables out (`AlgoOperator`).
    AlgoOperator,
    /// An `AlgoOperator` that maps each input row to an output row (`Transformer`).
    Transformer,
    /// Fits a model from tables (`Estimator`).
    Estimator,
    /// A transformer with model data (`Model`).
    Model,
}

/// A stage: params, a class name, and what it does to tables inside a job.
///
/// Transformers and models implement [`Stage::transform`]; estimators implement
/// [`Stage::fit`]. Methods build dataflow operators on the given job: nothing runs until the
/// job is executed, as in Flink.
pub trait Stage: WithParams + Send + Sync {
    /// Flink ML's fully qualified class name (or `weir.…` for Weir's own stages).
    fn class_name(&self) -> &'static str;

    /// What kind of stage this is.
    fn kind(&self) -> StageKind;

    /// A copy of the stage.
    fn clone_stage(&self) -> Box<dyn Stage>;

    /// Transforms the input tables (transformers, and models with model data).
    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let _ = (job, inputs);
        Err(self.wrong_kind("cannot transform: it is an estimator (fit it first)"))
    }

    /// Fits a model to the input tables (estimators). The model's data is a set of tables in
    /// the same job ([`Fitted`]).
    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let _ = (job, inputs);
        Err(self.wrong_kind("cannot fit: it is not an estimator"))
    }

    /// Transforms the input tables with model data given as tables of the same job
    /// (models; Flink's `setModelData` with streams, e.g. straight from a fit).
    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let _ = (job, inputs, model_data);
        Err(self.wrong_kind("has no model data"))
    }

    /// How many model-data tables the model has (0 for stages other than models).
    fn model_data_tables(&self) -> usize {
        0
    }

    /// The model data held in memory (loaded or set), if any.
    fn model_data(&self) -> Option<&[TableData]> {
        None
    }

    /// The stages a composite stage runs in order (a `PipelineModel`'s), `None` for others.
    fn inner_stages(&self) -> Option<&[Box<dyn Stage>]> {
        None
    }

    /// Sets the model data in memory (Flink's `setModelData`).
    fn set_model_data(&mut self, data: Vec<TableData>) -> Result<(), MlError> {
        let _ = data;
        Err(self.wrong_kind("has no model data"))
    }

    /// Saves the stage in Flink ML's layout: `dir/metadata` and model data under `dir/data`.
    fn save(&self, dir: &Path) -> Result<(), MlError> {
        super::persistence::save_stage(self, dir)
    }

    /// The stage's short class name, for errors and operator names.
    fn short_name(&self) -> &'static str {
        let name = self.class_name();
        name.rsplit('.').next().unwrap_or(name)
    }

    /// An error saying this stage cannot do something.
    fn wrong_kind(&self, message: &str) -> MlError {
        MlError::Stage {
            stage: self.short_name().to_string(),
            message: message.to_string(),
        }
    }
}

impl Clone for Box<dyn Stage> {
    fn clone(&self) -> Self {
        self.clone_stage()
    }
}

/// The result of [`Stage::fit`]: the model (its params) and its model data, as tables of the
/// job that fitted it.
pub struct Fitted<'s> {
    /// The model, without model data in memory.
    pub model: Box<dyn Stage>,
    /// The model data tables.
    pub model_data: Vec<Table<'s>>,
}

impl<'s> Fitted<'s> {
    /// Transforms tables with the fitted model and its model data.
    pub fn transform(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        self.model
            .transform_with(job, inputs, self.model_data.clone())
    }

    /// Collects the model data into `collector`, which gives the model with its data in
    /// memory after the job ([`super::ModelCollector::model`]).
    pub fn collect(self, job: &Job<'s>, collector: &super::ModelCollector) {
        collector.attach(job, self);
    }
}
