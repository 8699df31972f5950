//! `MinMaxScaler`: rescales every element of a vector linearly from the training data's range
//! `[min, max]` of that element to the target range `[min, max]` of the params (Flink ML's
//! `org.apache.flink.ml.feature.minmaxscaler`).
//!
//! Also home of small helpers the scalers and selectors of this crate share: Java's
//! `Math.min` / `Math.max` and reading a one-row model data table by column.

use weir_core::Job;

use super::stage_macros::{model, model_data_methods, stage, stage_basics};
use super::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use super::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamMap, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table, VectorRef};

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

/// Java's `Math.min`: NaN if either is NaN, and `-0.0 < 0.0`.
pub(crate) fn java_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Java's `Math.max`: NaN if either is NaN, and `0.0 > -0.0`.
pub(crate) fn java_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Copies the values of the params `to` has from `from` (Flink's
/// `ParamUtils.updateExistingParams(model, estimator.getParamMap())`: a model takes the
/// estimator's values of the params it declares and ignores the others).
pub(crate) fn copy_existing_params(from: &ParamMap, to: &mut ParamMap) -> Result<(), MlError> {
    let values = from.to_json();
    for spec in to.specs() {
        if let Some(value) = values.get(spec.name) {
            to.set_json(spec.name, value.clone())?;
        }
    }
    Ok(())
}

/// A one-cell dense vector column.
pub(crate) fn dense_cell(values: Vec<f64>) -> Column {
    Column::DenseVector {
        dim: values.len(),
        values,
    }
}

/// The single row of a model data table, read by column name straight from the columns (no
/// JSON, so infinities and NaNs survive).
pub(crate) struct ModelRow<'a> {
    stage: &'static str,
    schema: &'a Schema,
    batch: &'a RowBatch,
    row: usize,
}

impl<'a> ModelRow<'a> {
    /// The one row of `batches`, or an error naming `stage` if there are none or several.
    pub(crate) fn single(
        stage: &'static str,
        schema: &'a Schema,
        batches: &'a [RowBatch],
    ) -> Result<Self, String> {
        let rows: usize = batches.iter().map(RowBatch::rows).sum();
        match rows {
            1 => {
                let batch = batches.iter().find(|b| b.rows() == 1).expect("one row");
                Ok(ModelRow {
                    stage,
                    schema,
                    batch,
                    row: 0,
                })
            }
            0 => Err(format!(
                "{stage}: the model data is empty (was the fit input empty?)"
            )),
            n => Err(format!("{stage}: expected one model data row, got {n}")),
        }
    }

    /// The cell of column `name`.
    pub(crate) fn column(&self, name: &str) -> Result<&'a Column, String> {
        let i = self
            .schema
            .index_of(name)
            .map_err(|e| format!("{}: model data: {e}", self.stage))?;
        Ok(self.batch.column(i))
    }

    fn wrong(&self, name: &str, expected: &str) -> String {
        format!(
            "{}: model data column `{name}` must be {expected}",
            self.stage
        )
    }

    /// A vector (dense or sparse) cell, as a dense vector.
    pub(crate) fn vector(&self, name: &str) -> Result<Vec<f64>, String> {
        self.column(name)?
            .vector(self.row)
            .map(|v| v.to_dense())
            .ok_or_else(|| self.wrong(name, "a vector"))
    }

    /// A number cell.
    pub(crate) fn number(&self, name: &str) -> Result<f64, String> {
        self.column(name)?
            .number(self.row)
            .ok_or_else(|| self.wrong(name, "a number"))
    }

    /// A `Double[]` cell (a dense vector cell is accepted too).
    pub(crate) fn doubles(&self, name: &str) -> Result<Vec<f64>, String> {
        match self.column(name)? {
            Column::DoubleArray(c) => Ok(c[self.row].clone()),
            c => c
                .vector(self.row)
                .map(|v| v.to_dense())
                .ok_or_else(|| self.wrong(name, "an array of numbers")),
        }
    }

    /// A `String[]` cell.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        match self.column(name)? {
            Column::StringArray(c) => Ok(c[self.row].clone()),
            _ => Err(self.wrong(name, "an array of strings")),
        }
    }

    /// A `DenseVector[]` cell.
    pub(crate) fn vectors(&self, name: &str) -> Result<Vec<Vec<f64>>, String> {
        match self.column(name)? {
            Column::DenseVectorArray(c) => Ok(c[self.row].clone()),
            _ => Err(self.wrong(name, "an array of dense vectors")),
        }
    }
}

/// Calls `f(row, values)` for every row of vector column `column` with the row as a dense
/// slice of `dim` elements: dense cells are borrowed, sparse cells are spread into a scratch
/// buffer (no allocation per row). Vectors of another size are an error naming `stage`.
pub(crate) fn dense_rows(
    stage: &str,
    batch: &RowBatch,
    column: usize,
    dim: usize,
    mut f: impl FnMut(usize, &[f64]) -> Result<(), String>,
) -> Result<(), String> {
    let col = batch.column(column);
    let wrong_size =
        |size: usize| format!("{stage}: the input vectors have {size} elements, expected {dim}");
    match col {
        Column::DenseVector { dim: d, values } => {
            if batch.rows() == 0 {
                return Ok(());
            }
            if *d != dim {
                return Err(wrong_size(*d));
            }
            if dim == 0 {
                for row in 0..batch.rows() {
                    f(row, &[])?;
                }
                return Ok(());
            }
            for (row, x) in values.chunks_exact(dim).enumerate() {
                f(row, x)?;
            }
            Ok(())
        }
        Column::SparseVector(c) => {
            let mut scratch = vec![0.0; dim];
            for (row, v) in c.iter().enumerate() {
                if v.size != dim {
                    return Err(wrong_size(v.size));
                }
                for (&i, &x) in v.indices.iter().zip(&v.values) {
                    scratch[i] = x;
                }
                f(row, &scratch)?;
                for &i in &v.indices {
                    scratch[i] = 0.0;
                }
            }
            Ok(())
        }
        other => Err(format!(
            "{stage}: expected a vector column, got a {} column",
            other.data_type()
        )),
    }
}

/// The size of the first vector of a vector column batch (`None` for an empty batch).
pub(crate) fn first_size(batch: &RowBatch, column: usize) -> Option<usize> {
    (batch.rows() > 0)
        .then(|| {
            batch
                .column(column)
                .vector(0)
                .map(|v: VectorRef<'_>| v.size())
        })
        .flatten()
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
