//! `MinMaxScaler`: rescales every element of a vector linearly from the training data's range
//! `[min, max]` of that element to the target range `[min, max]` of the params (Flink ML's
//! `org.apache.flink.ml.feature.minmaxscaler`).
//!
//! Also home of small helpers the scalers and selectors of this crate share: Java's
//! `Math.min` / `Math.max` and reading a one-row model data table by column.

use weir_core::Job;

use crate::common::java_math::{java_max, java_min, java_min_max_rows};
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::vector_columns::{dense_rows, first_size};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `min`: the lower bound of the output range.
pub const MIN: Param<f64> = Param::new(
    "min",
    "Lower bound of the output feature range.",
    Some("0.0"),
    ParamType::Double,
    Validator::NotNull,
);
/// `max`: the upper bound of the output range.
pub const MAX: Param<f64> = Param::new(
    "max",
    "Upper bound of the output feature range.",
    Some("1.0"),
    ParamType::Double,
    Validator::NotNull,
);

stage!(
    /// Fits a [`MinMaxScalerModel`]: the minimum and the maximum of every element of
    /// `inputCol` (dense or sparse vectors, all of one size).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::MinMaxScaler;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[0.0, 3.0], [5.0, 3.0], [10.0, 3.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     let fitted = MinMaxScaler::new().fit(job, vec![train])?;
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
    /// // A constant element maps to the middle of the range.
    /// assert_eq!(scaled, vec![vec![0.0, 0.5], vec![0.5, 0.5], vec![1.0, 0.5]]);
    /// ```
    MinMaxScaler,
    "org.apache.flink.ml.feature.minmaxscaler.MinMaxScaler",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &MIN.spec, &MAX.spec]
);

model!(
    /// Rescales `inputCol` into `outputCol` (dense vectors) with the fitted minima and maxima:
    /// `x * scale + offset` with `scale = (max - min) / (maxV - minV)` and
    /// `offset = min - minV * scale`; an element whose training range is below `1e-5` maps to
    /// `(min + max) / 2`.
    MinMaxScalerModel,
    "org.apache.flink.ml.feature.minmaxscaler.MinMaxScalerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &MIN.spec, &MAX.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(MinMaxScaler, MinMaxScalerModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScalerModelData {
    /// The minimum of every element.
    pub min_vector: Vec<f64>,
    /// The maximum of every element.
    pub max_vector: Vec<f64>,
}

impl MinMaxScalerModelData {
    /// The model data table's schema (Flink's `minVector`, `maxVector`).
    pub fn schema() -> Schema {
        Schema::new([
            ("minVector", DataType::DenseVector),
            ("maxVector", DataType::DenseVector),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                dense_cell(self.min_vector.clone()),
                dense_cell(self.max_vector.clone()),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("MinMaxScalerModel", schema, batches)?;
        Ok(MinMaxScalerModelData {
            min_vector: row.vector("minVector")?,
            max_vector: row.vector("maxVector")?,
        })
    }
}

/// Minimum and maximum per element, rows seen, and the first error.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct MinMax {
    rows: u64,
    min: Vec<f64>,
    max: Vec<f64>,
    error: Option<String>,
}

impl MinMax {
    fn fold(&mut self, column: usize, batch: &RowBatch) {
        if self.error.is_some() {
            return;
        }
        let Some(size) = first_size(batch, column) else {
            return;
        };
        if self.rows == 0 {
            self.min = vec![f64::INFINITY; size];
            self.max = vec![f64::NEG_INFINITY; size];
        }
        let dim = self.min.len();
        if let Column::DenseVector { dim: d, values } = batch.column(column) {
            if *d == dim && dim > 0 {
                // Dense rows of the model's size: a vectorised fold over the flat values.
                java_min_max_rows(values, &mut self.min, &mut self.max);
                self.rows += batch.rows() as u64;
                return;
            }
        }
        let (min, max) = (&mut self.min, &mut self.max);
        let result = dense_rows("MinMaxScaler", batch, column, dim, |_, x| {
            for j in 0..dim {
                min[j] = java_min(min[j], x[j]);
                max[j] = java_max(max[j], x[j]);
            }
            Ok(())
        });
        match result {
            Ok(()) => self.rows += batch.rows() as u64,
            Err(e) => self.error = Some(e),
        }
    }

    fn merge(&mut self, other: MinMax) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() || self.rows == 0 {
            *self = other;
            return;
        }
        if other.rows == 0 {
            return;
        }
        if other.min.len() != self.min.len() {
            self.error = Some(format!(
                "MinMaxScaler: the input vectors have {} elements, expected {}",
                other.min.len(),
                self.min.len()
            ));
            return;
        }
        for j in 0..self.min.len() {
            self.min[j] = java_min(self.min[j], other.min[j]);
            self.max[j] = java_max(self.max[j], other.max[j]);
        }
        self.rows += other.rows;
    }

    fn finish(self) -> Result<MinMaxScalerModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.rows == 0 {
            return Err("MinMaxScaler: the training data is empty".into());
        }
        Ok(MinMaxScalerModelData {
            min_vector: self.min,
            max_vector: self.max,
        })
    }
}

impl Stage for MinMaxScaler {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "MinMaxScaler",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let data = fit_aggregate(
            job,
            self,
            input,
            MinMaxScalerModelData::schema(),
            MinMax::default,
            move |acc, batch| acc.fold(column, &batch),
            MinMax::merge,
            |acc| Ok(acc.finish()?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(MinMaxScalerModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for MinMaxScalerModel {
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
            "MinMaxScalerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let (lower, upper) = (self.get(&MIN)?, self.get(&MAX)?);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::DenseVector)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = MinMaxScalerModelData::from_batches(schema, &batches)?;
                Ok(Rescaling::new(&data, lower, upper))
            },
            move |rescaling, batch| rescaling.apply(column, batch),
        );
        Ok(vec![out])
    }
}

/// `x * scale + offset` per element.
struct Rescaling {
    scale: Vec<f64>,
    offset: Vec<f64>,
}

impl Rescaling {
    fn new(data: &MinMaxScalerModelData, lower: f64, upper: f64) -> Rescaling {
        let (mut scale, mut offset) = (Vec::new(), Vec::new());
        for (min, max) in data.min_vector.iter().zip(&data.max_vector) {
            if (min - max).abs() < 1.0e-5 {
                scale.push(0.0);
                offset.push((upper + lower) / 2.0);
            } else {
                let s = (upper - lower) / (max - min);
                scale.push(s);
                offset.push(lower - min * s);
            }
        }
        Rescaling { scale, offset }
    }

    fn apply(&self, column: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let dim = self.scale.len();
        if let Column::DenseVector { dim: d, values } = batch.column(column) {
            if *d == dim && dim > 0 {
                // Dense rows of the model's size: one pass, written straight into the output
                // column (no zeroing first, no closure per row).
                let mut out = Vec::with_capacity(values.len());
                for row in values.chunks_exact(dim) {
                    out.extend(
                        row.iter()
                            .zip(&self.scale)
                            .zip(&self.offset)
                            .map(|((x, scale), offset)| x * scale + offset),
                    );
                }
                return Ok(batch.with_column(Column::DenseVector { dim, values: out }));
            }
        }
        let mut out = VectorColumnBuilder::dense(dim, batch.rows());
        dense_rows("MinMaxScalerModel", &batch, column, dim, |_, x| {
            let y = out.next_dense();
            for j in 0..dim {
                y[j] = x[j] * self.scale[j] + self.offset[j];
            }
            Ok(())
        })?;
        Ok(batch.with_column(out.finish()))
    }
}
