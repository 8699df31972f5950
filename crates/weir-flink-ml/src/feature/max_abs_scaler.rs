//! `MaxAbsScaler`: scales every element of a vector by the reciprocal of its maximum absolute
//! value in the training data, into `[-1, 1]` (Flink ML's
//! `org.apache.flink.ml.feature.maxabsscaler`). Sparsity is kept.

use weir_core::Job;

use crate::common::java_math::java_max;
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::WithParams;
use crate::table::{Column, DataType, RowBatch, Schema, SparseVector, Table};

stage!(
    /// Fits a [`MaxAbsScalerModel`]: the maximum absolute value of every element of
    /// `inputCol` (dense or sparse vectors of one size; for sparse vectors the stored
    /// elements).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::MaxAbsScaler;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[-4.0, 0.0], [2.0, 0.0], [1.0, 0.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     let fitted = MaxAbsScaler::new().fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let mut scaled: Vec<Vec<f64>> = out
    ///     .rows()
    ///     .into_iter()
    ///     .map(|row| match &row[1] {
    ///         Value::DenseVector(v) => v.clone(),
    ///         other => panic!("{other:?}"),
    ///     })
    ///     .collect();
    /// scaled.sort_by(|a, b| a[0].total_cmp(&b[0]));
    /// assert_eq!(scaled, vec![vec![-1.0, 0.0], vec![0.25, 0.0], vec![0.5, 0.0]]);
    /// ```
    MaxAbsScaler,
    "org.apache.flink.ml.feature.maxabsscaler.MaxAbsScaler",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

model!(
    /// Multiplies every element of `inputCol` by `1 / maxAbs` (by 1 where `maxAbs` is 0)
    /// into `outputCol`, which has the input's vector type (sparse vectors stay sparse).
    MaxAbsScalerModel,
    "org.apache.flink.ml.feature.maxabsscaler.MaxAbsScalerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(MaxAbsScaler, MaxAbsScalerModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxAbsScalerModelData {
    /// The maximum absolute value of every element.
    pub max_vector: Vec<f64>,
}

impl MaxAbsScalerModelData {
    /// The model data table's schema (Flink's `maxVector`).
    pub fn schema() -> Schema {
        Schema::new([("maxVector", DataType::DenseVector)])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(1, vec![dense_cell(self.max_vector.clone())])
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("MaxAbsScalerModel", schema, batches)?;
        Ok(MaxAbsScalerModelData {
            max_vector: row.vector("maxVector")?,
        })
    }
}

/// Maximum absolute value per element (`None`: no rows yet), and the first error.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct MaxAbs {
    max: Option<Vec<f64>>,
    error: Option<String>,
}

const SIZE_ERROR: &str = "MaxAbsScaler: the training data should all have same dimensions";

impl MaxAbs {
    fn fold(&mut self, column: usize, batch: &RowBatch) {
        if self.error.is_some() || batch.rows() == 0 {
            return;
        }
        if let Err(e) = self.fold_column(batch.column(column)) {
            self.error = Some(e);
        }
    }

    fn fold_column(&mut self, column: &Column) -> Result<(), String> {
        match column {
            Column::DenseVector { dim, values } => {
                let max = self.max.get_or_insert_with(|| vec![0.0; *dim]);
                if max.len() != *dim {
                    return Err(format!(
                        "{SIZE_ERROR} ({dim} elements, expected {})",
                        max.len()
                    ));
                }
                if *dim == 0 {
                    return Ok(());
                }
                for x in values.chunks_exact(*dim) {
                    for (m, v) in max.iter_mut().zip(x) {
                        *m = java_max(*m, v.abs());
                    }
                }
                Ok(())
            }
            Column::SparseVector(c) => {
                for v in c {
                    let max = self.max.get_or_insert_with(|| vec![0.0; v.size]);
                    if max.len() != v.size {
                        return Err(format!(
                            "{SIZE_ERROR} ({} elements, expected {})",
                            v.size,
                            max.len()
                        ));
                    }
                    for (&i, x) in v.indices.iter().zip(&v.values) {
                        max[i] = java_max(max[i], x.abs());
                    }
                }
                Ok(())
            }
            other => Err(format!(
                "MaxAbsScaler: expected a vector column, got a {} column",
                other.data_type()
            )),
        }
    }

    fn merge(&mut self, other: MaxAbs) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() {
            *self = other;
            return;
        }
        match (&mut self.max, other.max) {
            (_, None) => {}
            (None, Some(m)) => self.max = Some(m),
            (Some(a), Some(b)) => {
                if a.len() != b.len() {
                    self.error = Some(format!(
                        "{SIZE_ERROR} ({} elements, expected {})",
                        b.len(),
                        a.len()
                    ));
                    return;
                }
                for (x, y) in a.iter_mut().zip(b) {
                    *x = java_max(*x, y);
                }
            }
        }
    }

    fn finish(self) -> Result<MaxAbsScalerModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let max_vector = self.max.ok_or("MaxAbsScaler: the training data is empty")?;
        Ok(MaxAbsScalerModelData { max_vector })
    }
}

impl Stage for MaxAbsScaler {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "MaxAbsScaler",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let data = fit_aggregate(
            job,
            self,
            input,
            MaxAbsScalerModelData::schema(),
            MaxAbs::default,
            move |acc, batch| acc.fold(column, &batch),
            MaxAbs::merge,
            |acc| Ok(acc.finish()?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(MaxAbsScalerModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for MaxAbsScalerModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let column = input.schema.typed_index(
            "MaxAbsScalerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let output_type = input.schema.data_type(column);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, output_type)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = MaxAbsScalerModelData::from_batches(schema, &batches)?;
                Ok(data
                    .max_vector
                    .iter()
                    .map(|m| if *m != 0.0 { 1.0 / m } else { 1.0 })
                    .collect::<Vec<f64>>())
            },
            move |scale, batch| scale_column("MaxAbsScalerModel", scale, column, batch),
        );
        Ok(vec![out])
    }
}

/// Multiplies every vector of vector column `column` element-wise by `scale` (Flink's
/// `BLAS.hDot(scale, x.clone())`), appending the result with the input's vector type.
pub(crate) fn scale_column(
    stage: &str,
    scale: &[f64],
    column: usize,
    batch: RowBatch,
) -> Result<RowBatch, String> {
    let dim = scale.len();
    let mismatch =
        |size: usize| format!("{stage}: the input vectors have {size} elements, the model {dim}");
    let out = match batch.column(column) {
        Column::DenseVector { dim: d, values } => {
            if batch.rows() > 0 && *d != dim {
                return Err(mismatch(*d));
            }
            let mut out = VectorColumnBuilder::dense(dim, batch.rows());
            if dim > 0 {
                for x in values.chunks_exact(dim) {
                    let y = out.next_dense();
                    for j in 0..dim {
                        y[j] = x[j] * scale[j];
                    }
                }
            } else {
                for _ in 0..batch.rows() {
                    out.next_dense();
                }
            }
            out.finish()
        }
        Column::SparseVector(c) => {
            let mut out = Vec::with_capacity(c.len());
            for v in c {
                if v.size != dim {
                    return Err(mismatch(v.size));
                }
                out.push(SparseVector {
                    size: v.size,
                    indices: v.indices.clone(),
                    values: v
                        .indices
                        .iter()
                        .zip(&v.values)
                        .map(|(&i, x)| x * scale[i])
                        .collect(),
                });
            }
            Column::SparseVector(out)
        }
        other => {
            return Err(format!(
                "{stage}: expected a vector column, got a {} column",
                other.data_type()
            ))
        }
    };
    Ok(batch.with_column(out))
}
