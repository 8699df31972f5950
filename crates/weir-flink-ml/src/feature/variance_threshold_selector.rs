//! `VarianceThresholdSelector`: keeps the elements of a vector whose (population) variance
//! in the training data is above a threshold (Flink ML's
//! `org.apache.flink.ml.feature.variancethresholdselector`).
//!
//! Also home of [`select_column`], Flink's `VectorUtils.selectByIndices` over a column, which
//! the feature selectors share.

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::model_row::ModelRow;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, SparseVector, Table};

/// `varianceThreshold`: elements with a variance not above it are removed.
pub const VARIANCE_THRESHOLD: Param<f64> = Param::new(
    "varianceThreshold",
    "Features with a variance not greater than this threshold will be removed.",
    Some("0.0"),
    ParamType::Double,
    Validator::GtEq(0.0),
);

stage!(
    /// Fits a [`VarianceThresholdSelectorModel`]: the elements of `inputCol` (dense or sparse
    /// vectors of one size) whose population variance `E[x²] - E[x]²` is above
    /// `varianceThreshold` (so constant elements go at the default 0).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::VarianceThresholdSelector;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[1.0, 7.0, 2.0], [2.0, 7.0, 4.0], [3.0, 7.0, 6.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows[..1].to_vec())?;
    ///     let fitted = VarianceThresholdSelector::new().fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // The constant middle element is dropped.
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![1.0, 2.0]));
    /// ```
    VarianceThresholdSelector,
    "org.apache.flink.ml.feature.variancethresholdselector.VarianceThresholdSelector",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &VARIANCE_THRESHOLD.spec]
);

model!(
    /// Keeps the selected elements of `inputCol` in `outputCol`, which has the input's
    /// vector type (input vectors must have the training size).
    VarianceThresholdSelectorModel,
    "org.apache.flink.ml.feature.variancethresholdselector.VarianceThresholdSelectorModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(VarianceThresholdSelector, VarianceThresholdSelectorModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct VarianceThresholdSelectorModelData {
    /// The size of the training vectors.
    pub num_of_features: usize,
    /// The kept elements, ascending (Flink's `int[]`, stored as a `Double[]` column).
    pub indices: Vec<usize>,
}

impl VarianceThresholdSelectorModelData {
    /// The model data table's schema (Flink's `numOfFeatures`, `indices`).
    pub fn schema() -> Schema {
        Schema::new([
            ("numOfFeatures", DataType::Long),
            ("indices", DataType::DoubleArray),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                Column::Long(vec![self.num_of_features as i64]),
                Column::DoubleArray(vec![self.indices.iter().map(|&i| i as f64).collect()]),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        const STAGE: &str = "VarianceThresholdSelectorModel";
        let row = ModelRow::single(STAGE, schema, batches)?;
        let num_of_features = row.number("numOfFeatures")?;
        let mut indices = indices_of(STAGE, &row.doubles("indices")?)?;
        indices.sort_unstable();
        Ok(VarianceThresholdSelectorModelData {
            num_of_features: num_of_features.max(0.0) as usize,
            indices,
        })
    }
}

/// Element indices stored as doubles, checked to be non-negative integers.
pub(crate) fn indices_of(stage: &str, values: &[f64]) -> Result<Vec<usize>, String> {
    values
        .iter()
        .map(|&x| {
            if x >= 0.0 && x.fract() == 0.0 && x < usize::MAX as f64 {
                Ok(x as usize)
            } else {
                Err(format!(
                    "{stage}: the model data's indices must be non-negative integers, got {x}"
                ))
            }
        })
        .collect()
}

/// Flink's `VectorUtils.selectByIndices` over vector column `column` with ascending
/// `indices` (all below the vectors' sizes): dense vectors give dense vectors, sparse ones
/// sparse vectors of size `indices.len()` with the stored elements that were selected.
/// `check(row, size)` vets every vector's size first.
pub(crate) fn select_column(
    batch: &RowBatch,
    column: usize,
    indices: &[usize],
    mut check: impl FnMut(usize) -> Result<(), String>,
) -> Result<Column, String> {
    let k = indices.len();
    Ok(match batch.column(column) {
        Column::DenseVector { dim, values } => {
            let mut out = VectorColumnBuilder::dense(k, batch.rows());
            if batch.rows() > 0 {
                check(*dim)?;
            }
            for row in 0..batch.rows() {
                let x = &values[row * dim..(row + 1) * dim];
                let y = out.next_dense();
                for (y, &i) in y.iter_mut().zip(indices) {
                    *y = x[i];
                }
            }
            out.finish()
        }
        Column::SparseVector(c) => {
            let mut out = Vec::with_capacity(c.len());
            for v in c {
                check(v.size)?;
                let (mut result_indices, mut result_values) = (Vec::new(), Vec::new());
                let (mut i, mut j) = (0, 0);
                while i < v.indices.len() && j < k {
                    if v.indices[i] == indices[j] {
                        result_indices.push(j);
                        result_values.push(v.values[i]);
                        i += 1;
                        j += 1;
                    } else if v.indices[i] > indices[j] {
                        j += 1;
                    } else {
                        i += 1;
                    }
                }
                out.push(SparseVector {
                    size: k,
                    indices: result_indices,
                    values: result_values,
                });
            }
            Column::SparseVector(out)
        }
        other => {
            return Err(format!(
                "expected a vector column, got a {} column",
                other.data_type()
            ))
        }
    })
}

/// Rows, sums and sums of squares per element (`None`: no rows yet), and the first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Sums {
    rows: u64,
    sums: Vec<f64>,
    squares: Vec<f64>,
    error: Option<String>,
}

fn size_error(size: usize, expected: usize) -> String {
    format!(
        "VarianceThresholdSelector: the input vectors have {size} elements, expected {expected}"
    )
}

impl Sums {
    fn fold(&mut self, column: usize, batch: &RowBatch) {
        if self.error.is_some() || batch.rows() == 0 {
            return;
        }
        if let Err(e) = self.fold_column(batch.column(column), batch.rows()) {
            self.error = Some(e);
        }
    }

    fn start(&mut self, size: usize) -> Result<(), String> {
        if self.rows == 0 {
            self.sums = vec![0.0; size];
            self.squares = vec![0.0; size];
        } else if self.sums.len() != size {
            return Err(size_error(size, self.sums.len()));
        }
        Ok(())
    }

    fn fold_column(&mut self, column: &Column, rows: usize) -> Result<(), String> {
        match column {
            Column::DenseVector { dim, values } => {
                self.start(*dim)?;
                if *dim > 0 {
                    for x in values.chunks_exact(*dim) {
                        for (j, &v) in x.iter().enumerate() {
                            self.sums[j] += v;
                            self.squares[j] += v * v;
                        }
                    }
                }
                self.rows += rows as u64;
            }
            Column::SparseVector(c) => {
                for v in c {
                    self.start(v.size)?;
                    for (&j, &x) in v.indices.iter().zip(&v.values) {
                        self.sums[j] += x;
                        self.squares[j] += x * x;
                    }
                    self.rows += 1;
                }
            }
            other => {
                return Err(format!(
                    "VarianceThresholdSelector: expected a vector column, got a {} column",
                    other.data_type()
                ))
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Sums) {
        if self.error.is_some() || other.rows == 0 && other.error.is_none() {
            return;
        }
        if other.error.is_some() || self.rows == 0 {
            *self = other;
            return;
        }
        if other.sums.len() != self.sums.len() {
            self.error = Some(size_error(other.sums.len(), self.sums.len()));
            return;
        }
        for j in 0..self.sums.len() {
            self.sums[j] += other.sums[j];
            self.squares[j] += other.squares[j];
        }
        self.rows += other.rows;
    }

    fn finish(self, threshold: f64) -> Result<VarianceThresholdSelectorModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.rows == 0 {
            return Err("VarianceThresholdSelector: the training set is empty".into());
        }
        let n = self.rows as f64;
        let indices = (0..self.sums.len())
            .filter(|&i| self.squares[i] / n - (self.sums[i] / n) * (self.sums[i] / n) > threshold)
            .collect();
        Ok(VarianceThresholdSelectorModelData {
            num_of_features: self.sums.len(),
            indices,
        })
    }
}

impl Stage for VarianceThresholdSelector {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "VarianceThresholdSelector",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let threshold = self.get(&VARIANCE_THRESHOLD)?;
        let mut model = VarianceThresholdSelectorModel::new();
        model.params.copy_existing_from(&self.params)?;
        let data = fit_aggregate(
            job,
            self,
            input,
            VarianceThresholdSelectorModelData::schema(),
            Sums::default,
            move |acc, batch| acc.fold(column, &batch),
            Sums::merge,
            move |acc| Ok(acc.finish(threshold)?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for VarianceThresholdSelectorModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let input_col = self.get(&INPUT_COL)?;
        let column = input.schema.typed_index(
            "VarianceThresholdSelectorModel",
            &input_col,
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
            |schema, batches| VarianceThresholdSelectorModelData::from_batches(schema, &batches),
            move |data, batch| {
                let expected = data.num_of_features;
                let selected = select_column(&batch, column, &data.indices, |size| {
                    if size == expected {
                        Ok(())
                    } else {
                        Err(format!(
                            "VarianceThresholdSelectorModel: {input_col} has {size} features, \
                             but VarianceThresholdSelector is expecting {expected} features as input"
                        ))
                    }
                })?;
                Ok(batch.with_column(selected))
            },
        );
        Ok(vec![out])
    }
}
