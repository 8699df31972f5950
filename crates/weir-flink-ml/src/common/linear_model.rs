//! What LogisticRegression, LinearSVC and LinearRegression share: fitting a coefficient with
//! [`super::sgd::Sgd`] from the stage's params, the model data table (`coefficient`, plus
//! `modelVersion` for LogisticRegression), and scoring `dot(features, coefficient)` into the
//! prediction (and raw prediction) columns.

use weir_core::{op, Job};

use super::model_row::{dense_cell, ModelRow};
use super::sgd::{LabeledColumns, Loss, Sgd, SgdParams};
use super::table_ops::map_with_model;
use super::vector_columns::dense_rows;
use crate::api::Stage;
use crate::error::MlError;
use crate::param::shared::{
    ELASTIC_NET, FEATURES_COL, GLOBAL_BATCH_SIZE, LABEL_COL, LEARNING_RATE, MAX_ITER, REG, TOL,
    WEIGHT_COL,
};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// A linear model's data: the coefficient (no intercept, as in Flink ML), and the version
/// for models that have one.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModelData {
    /// The coefficient of every feature.
    pub coefficient: Vec<f64>,
    /// The model version (LogisticRegression's `modelVersion`; `None` for the others).
    pub model_version: Option<i64>,
}

impl LinearModelData {
    /// The model data table's schema: `coefficient` and, with a version, `modelVersion`.
    pub fn schema(with_version: bool) -> Schema {
        if with_version {
            Schema::new([
                ("coefficient", DataType::DenseVector),
                ("modelVersion", DataType::Long),
            ])
        } else {
            Schema::new([("coefficient", DataType::DenseVector)])
        }
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        let mut columns = vec![dense_cell(self.coefficient.clone())];
        if let Some(version) = self.model_version {
            columns.push(Column::Long(vec![version]));
        }
        RowBatch::new(1, columns)
    }

    /// The model data of `stage` from its table.
    pub fn from_batches(
        stage: &'static str,
        schema: &Schema,
        batches: &[RowBatch],
    ) -> Result<Self, String> {
        let row = ModelRow::single(stage, schema, batches)?;
        let model_version = match schema.index_of("modelVersion") {
            Ok(_) => Some(row.number("modelVersion")? as i64),
            Err(_) => None,
        };
        Ok(LinearModelData {
            coefficient: row.vector("coefficient")?,
            model_version,
        })
    }
}

/// The model data table of a linear model fitted on `input` with the SGD params of
/// `stage` and `loss`; labels must be 0/1 when `binary_labels` says why.
pub(crate) fn fit_linear<'s>(
    stage: &impl Stage,
    job: &mut Job<'s>,
    input: &Table<'s>,
    loss: Loss,
    binary_labels: Option<&'static str>,
    with_version: bool,
) -> Result<Table<'s>, MlError> {
    let name_of = stage.short_name();
    let features = input.schema.typed_index(
        name_of,
        &stage.get(&FEATURES_COL)?,
        &[DataType::DenseVector, DataType::SparseVector],
    )?;
    let numbers = [DataType::Double, DataType::Long];
    let label = input
        .schema
        .typed_index(name_of, &stage.get(&LABEL_COL)?, &numbers)?;
    let weight = match stage.param_map().get_opt(&WEIGHT_COL)? {
        Some(column) => Some(input.schema.typed_index(name_of, &column, &numbers)?),
        None => None,
    };
    let params = SgdParams {
        max_iter: stage.get(&MAX_ITER)? as u64,
        learning_rate: stage.get(&LEARNING_RATE)?,
        global_batch_size: stage.get(&GLOBAL_BATCH_SIZE)? as usize,
        tol: stage.get(&TOL)?,
        reg: stage.get(&REG)?,
        elastic_net: stage.get(&ELASTIC_NET)?,
    };
    let columns = LabeledColumns {
        stage: name_of,
        features,
        label,
        weight,
        binary_labels,
    };
    let name = job.unique_name(&format!("{name_of}.fit"));
    let coefficient = Sgd::train(&name, input, columns, params, loss);
    let data = coefficient.map(op(format!("{name}.modelData")).parallelism(1), move |c| {
        LinearModelData {
            coefficient: c.values,
            model_version: with_version.then_some(0),
        }
        .to_batch()
    });
    Ok(Table::new(LinearModelData::schema(with_version), data))
}

/// How a linear model turns `dot(features, coefficient)` into its outputs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LinearOutput {
    /// LogisticRegression: 1 if the dot is at least 0, raw `[1 - p, p]` with `p` the sigmoid.
    Logistic,
    /// LinearSVC: 1 if the dot is at least `threshold`, raw `[dot, -dot]`.
    Svc {
        /// The decision threshold.
        threshold: f64,
    },
    /// LinearRegression: the dot.
    Regression,
}

impl LinearOutput {
    fn has_raw(self) -> bool {
        !matches!(self, LinearOutput::Regression)
    }

    /// The prediction and the raw prediction (unused for regression) of a dot product.
    fn score(self, dot: f64) -> (f64, [f64; 2]) {
        let label = |positive: bool| if positive { 1.0 } else { 0.0 };
        match self {
            LinearOutput::Logistic => {
                let p = 1.0 - 1.0 / (1.0 + dot.exp());
                (label(dot >= 0.0), [1.0 - p, p])
            }
            LinearOutput::Svc { threshold } => (label(dot >= threshold), [dot, -dot]),
            LinearOutput::Regression => (dot, [0.0; 2]),
        }
    }
}

/// The output columns of a linear model.
pub(crate) struct LinearColumns {
    pub(crate) features: String,
    pub(crate) prediction: String,
    /// The raw prediction column (classifiers).
    pub(crate) raw_prediction: Option<String>,
}

/// Scores `input` with the linear model data `model_data`.
pub(crate) fn transform_linear<'s>(
    stage: &(impl Stage + ?Sized),
    job: &mut Job<'s>,
    input: Table<'s>,
    model_data: Table<'s>,
    columns: LinearColumns,
    output: LinearOutput,
) -> Result<Table<'s>, MlError> {
    let name = stage.short_name();
    let features = input.schema.typed_index(
        name,
        &columns.features,
        &[DataType::DenseVector, DataType::SparseVector],
    )?;
    let mut schema = input
        .schema
        .with_column(&columns.prediction, DataType::Double)?;
    if let (Some(raw), true) = (&columns.raw_prediction, output.has_raw()) {
        schema = schema.with_column(raw, DataType::DenseVector)?;
    }
    let with_raw = columns.raw_prediction.is_some() && output.has_raw();
    Ok(map_with_model(
        job,
        stage,
        input,
        model_data,
        schema,
        move |schema, batches| LinearModelData::from_batches(name, schema, &batches),
        move |model, batch| score_batch(name, model, features, output, with_raw, batch),
    ))
}

/// `batch` with the prediction (and, with `with_raw`, the raw prediction) of every row of
/// vector column `features` under `model` appended.
pub(crate) fn score_batch(
    stage: &str,
    model: &LinearModelData,
    features: usize,
    output: LinearOutput,
    with_raw: bool,
    batch: RowBatch,
) -> Result<RowBatch, String> {
    let w = &model.coefficient;
    let mut predictions = Vec::with_capacity(batch.rows());
    let mut raw = Vec::with_capacity(if with_raw { 2 * batch.rows() } else { 0 });
    dense_rows(stage, &batch, features, w.len(), |_, x| {
        let (prediction, raw_prediction) = output.score(super::distance::dot(x, w));
        predictions.push(prediction);
        if with_raw {
            raw.extend(raw_prediction);
        }
        Ok(())
    })?;
    let mut out = batch.with_column(Column::Double(predictions));
    if with_raw {
        out = out.with_column(Column::DenseVector {
            dim: 2,
            values: raw,
        });
    }
    Ok(out)
}
