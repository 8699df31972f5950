//! Model data in memory (a loaded or collected model), and the way from a job's model data
//! tables to it.

use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use weir_core::{Job, Op};

use super::stage::{Fitted, Stage};
use crate::error::MlError;
use crate::table::{RowBatch, Schema, Table, TableCollector};

/// A table held in memory: a model's data once it has been fitted, loaded or set.
#[derive(Clone, Debug, PartialEq)]
pub struct TableData {
    /// The columns.
    pub schema: Schema,
    /// The rows.
    pub batches: Vec<RowBatch>,
}

impl TableData {
    /// Model data from typed records (serde; fields matched to columns by name).
    pub fn from_records<T: Serialize>(schema: Schema, records: &[T]) -> Result<TableData, MlError> {
        let rows = records
            .iter()
            .map(|r| serde_json::to_value(r).map_err(|e| MlError::Row(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let batches = RowBatch::from_json_rows(&schema, &rows, usize::MAX)?;
        Ok(TableData { schema, batches })
    }

    /// The rows as typed records.
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<T>, MlError> {
        records_of(&self.schema, &self.batches)
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RowBatch::rows).sum()
    }

    /// The data as a bounded table of `job`, produced by one instance.
    pub fn to_table<'s>(&self, job: &mut Job<'s>, op: impl Into<Op>) -> Table<'s> {
        let op = op.into().parallelism(1);
        Table::from_batches(job, op, self.schema.clone(), self.batches.clone())
    }
}

/// Batches decoded as typed records (serde, fields matched by column name).
pub fn records_of<T: DeserializeOwned>(
    schema: &Schema,
    batches: &[RowBatch],
) -> Result<Vec<T>, MlError> {
    let mut out = Vec::new();
    for batch in batches {
        for i in 0..batch.rows() {
            let row = batch.json_row(schema, i);
            out.push(serde_json::from_value(row).map_err(|e| MlError::Row(e.to_string()))?);
        }
    }
    Ok(out)
}

/// Gathers a fitted model and its model data from a job, to use, save or serve after it.
///
/// ```
/// use weir_core::{execute, Config};
/// use weir_flink_ml::api::{ModelCollector, Stage};
/// use weir_flink_ml::feature::MinMaxScaler;
/// use weir_flink_ml::table::{DataType, Schema, Table, Value};
/// let models = ModelCollector::new();
/// let sink = models.clone();
/// execute(Config::threads(2), move |job| {
///     let schema = Schema::new([("input", DataType::DenseVector)]);
///     let rows = (0..10).map(|i| vec![Value::DenseVector(vec![i as f64])]).collect();
///     let table = Table::from_rows(job, "rows", schema, rows).unwrap();
///     MinMaxScaler::new().fit(job, vec![table]).unwrap().collect(job, &sink);
///     Ok(())
/// }).unwrap();
/// let model = models.model().unwrap();
/// assert_eq!(model.model_data().unwrap()[0].rows(), 1);
/// ```
#[derive(Clone, Default)]
pub struct ModelCollector {
    model: Arc<Mutex<Option<Box<dyn Stage>>>>,
    tables: Arc<Mutex<Vec<TableCollector>>>,
}

impl ModelCollector {
    /// An empty collector.
    pub fn new() -> ModelCollector {
        ModelCollector::default()
    }

    pub(crate) fn attach<'s>(&self, job: &Job<'s>, fitted: Fitted<'s>) {
        *self.model.lock().expect("model lock") = Some(fitted.model.clone_stage());
        let mut tables = self.tables.lock().expect("tables lock");
        if tables.len() < fitted.model_data.len() {
            tables.resize_with(fitted.model_data.len(), TableCollector::new);
        }
        let base = job.unique_name(&format!("{}.modelData", fitted.model.short_name()));
        // On one instance, worker 0: in a job of several processes the model is saved by
        // process 0, which must hold all of its data.
        for (i, table) in fitted.model_data.into_iter().enumerate() {
            let op = weir_core::op(format!("{base}.{i}")).parallelism(1);
            table.collect(op, &tables[i]);
        }
    }

    /// The model with its collected model data (after the job ran).
    pub fn model(&self) -> Result<Box<dyn Stage>, MlError> {
        let mut model = self
            .model
            .lock()
            .expect("model lock")
            .as_ref()
            .map(|m| m.clone_stage())
            .ok_or_else(|| MlError::Job("no model was collected: was the job built?".into()))?;
        let data = self
            .tables
            .lock()
            .expect("tables lock")
            .iter()
            .map(|t| TableData {
                schema: t.schema().unwrap_or_default(),
                batches: t.batches(),
            })
            .collect();
        model.set_model_data(data)?;
        Ok(model)
    }
}

/// Transforms with the model data a model holds in memory: the data enters the job as
/// bounded tables (one instance each) and goes to [`Stage::transform_with`].
pub fn transform_with_stored<'s, S: Stage + ?Sized>(
    stage: &S,
    job: &mut Job<'s>,
    inputs: Vec<Table<'s>>,
) -> Result<Vec<Table<'s>>, MlError> {
    let data = stage
        .model_data()
        .ok_or_else(|| MlError::NoModelData(stage.short_name().to_string()))?;
    let base = job.unique_name(&format!("{}.modelData", stage.short_name()));
    let tables = data
        .iter()
        .enumerate()
        .map(|(i, d)| d.to_table(job, format!("{base}.{i}")))
        .collect();
    stage.transform_with(job, inputs, tables)
}
