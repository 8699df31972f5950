//! `Binarizer`: maps numbers and vector elements to 1.0 above a threshold and 0.0 otherwise
//! (Flink ML's `org.apache.flink.ml.feature.binarizer`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COLS, OUTPUT_COLS};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// `thresholds`: one threshold per input column.
pub const THRESHOLDS: Param<Vec<f64>> = Param::new(
    "thresholds",
    "The thresholds used to binarize continuous features. Each threshold would be used against \
     one input column. If the value of a continuous feature is greater than the threshold, it \
     will be binarized to 1.0. If the value is equal to or less than the threshold, it will be \
     binarized to 0.0.",
    None,
    ParamType::DoubleArray,
    Validator::NonEmptyArray,
);

stage!(
    /// Binarizes every column of `inputCols` with its threshold of `thresholds` into the
    /// column of `outputCols` at the same position: values `> threshold` become 1.0, the
    /// others (NaN too) 0.0.
    ///
    /// Numbers (`Long`, `Double`, or `String` columns of numbers, which Flink ML parses) give
    /// a `Double` column; dense vectors a dense vector of the same size; sparse vectors a
    /// sparse vector of the same size storing 1.0 at the stored entries above the threshold
    /// (with a negative threshold, entries not stored stay 0.0, as in Flink ML).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{binarizer::THRESHOLDS, Binarizer};
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, OUTPUT_COLS}, WithParams};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let binarizer = Binarizer::new()
    ///     .set(&INPUT_COLS, vec!["x".into(), "v".into()]).unwrap()
    ///     .set(&OUTPUT_COLS, vec!["bx".into(), "bv".into()]).unwrap()
    ///     .set(&THRESHOLDS, vec![0.5, 1.0]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("x", DataType::Double), ("v", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::Double(0.7), Value::DenseVector(vec![1.0, 2.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     binarizer.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let row = &out.rows()[0];
    /// assert_eq!(row[2], Value::Double(1.0));
    /// assert_eq!(row[3], Value::DenseVector(vec![0.0, 1.0]));
    /// ```
    Binarizer,
    "org.apache.flink.ml.feature.binarizer.Binarizer",
    [&INPUT_COLS.spec, &OUTPUT_COLS.spec, &THRESHOLDS.spec]
);

impl crate::param::HasInputCols for Binarizer {}
impl crate::param::HasOutputCols for Binarizer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Binarizer);

fn binarize(x: f64, threshold: f64) -> f64 {
    if x > threshold {
        1.0
    } else {
        0.0
    }
}

/// The binarized column `column` (named `name`).
fn binarize_column(name: &str, column: &Column, threshold: f64) -> Result<Column, String> {
    Ok(match column {
        Column::Long(c) => {
            Column::Double(c.iter().map(|x| binarize(*x as f64, threshold)).collect())
        }
        Column::Double(c) => Column::Double(c.iter().map(|x| binarize(*x, threshold)).collect()),
        Column::String(c) => {
            Column::Double(
                c.iter()
                    .map(|s| {
                        s.trim().parse::<f64>().map(|x| binarize(x, threshold)).map_err(|_| {
                        format!("Binarizer: column `{name}` holds \"{s}\", which is not a number")
                    })
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Column::DenseVector { dim, values } => Column::DenseVector {
            dim: *dim,
            values: values.iter().map(|x| binarize(*x, threshold)).collect(),
        },
        Column::SparseVector(c) => Column::SparseVector(
            c.iter()
                .map(|v| {
                    let indices: Vec<usize> = v
                        .indices
                        .iter()
                        .zip(&v.values)
                        .filter(|(_, x)| **x > threshold)
                        .map(|(i, _)| *i)
                        .collect();
                    SparseVector {
                        size: v.size,
                        values: vec![1.0; indices.len()],
                        indices,
                    }
                })
                .collect(),
        ),
        other => {
            return Err(format!(
                "Binarizer: column `{name}` is a {} column, not numbers or vectors",
                other.data_type()
            ))
        }
    })
}

impl Stage for Binarizer {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let cols = self.get(&INPUT_COLS)?;
        let out_cols = self.get(&OUTPUT_COLS)?;
        let thresholds = self.get(&THRESHOLDS)?;
        if thresholds.len() != cols.len() {
            return Err(MlError::InvalidParam {
                stage: "Binarizer".into(),
                param: THRESHOLDS.name().into(),
                message: format!(
                    "must have one threshold per input column ({}), got {}",
                    cols.len(),
                    thresholds.len()
                ),
            });
        }
        if out_cols.len() != cols.len() {
            return Err(MlError::InvalidParam {
                stage: "Binarizer".into(),
                param: OUTPUT_COLS.name().into(),
                message: format!(
                    "must name one output column per input column ({}), got {}",
                    cols.len(),
                    out_cols.len()
                ),
            });
        }
        let mut columns = Vec::with_capacity(cols.len());
        let mut outputs = Vec::with_capacity(cols.len());
        for ((name, out), threshold) in cols.iter().zip(&out_cols).zip(&thresholds) {
            let column = input.schema.typed_index(
                "Binarizer",
                name,
                &[
                    DataType::Long,
                    DataType::Double,
                    DataType::String,
                    DataType::DenseVector,
                    DataType::SparseVector,
                ],
            )?;
            let out_type = match input.schema.data_type(column) {
                t @ (DataType::DenseVector | DataType::SparseVector) => t,
                _ => DataType::Double,
            };
            outputs.push((out.clone(), out_type));
            columns.push((column, name.clone(), *threshold));
        }
        let schema = input.schema.with_columns(&outputs)?;
        Ok(vec![map_batches(
            job,
            self,
            input,
            schema,
            move |batch: RowBatch| {
                let binarized = columns
                    .iter()
                    .map(|(column, name, threshold)| {
                        binarize_column(name, batch.column(*column), *threshold)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(binarized.into_iter().fold(batch, RowBatch::with_column))
            },
        )])
    }
}
