//! `VectorSlicer`: picks elements of vectors by index (Flink ML's
//! `org.apache.flink.ml.feature.vectorslicer`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// `indices`: the indices of the elements to pick, in output order (non-negative, no
/// repeats).
pub const INDICES: Param<Vec<i64>> = Param::new(
    "indices",
    "An array of indices to select features from a vector column.",
    None,
    ParamType::IntArray,
    Validator::NonEmptyArray,
);

stage!(
    /// Picks the elements at `indices` (in that order) of every vector of `inputCol` into
    /// `outputCol`: a dense vector of them for a dense input; for a sparse input a sparse
    /// vector of size `indices.len()` storing the picked elements that are not 0.0.
    /// A vector with fewer elements than the largest index fails the job.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{vector_slicer::INDICES, VectorSlicer};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let slicer = VectorSlicer::new().set(&INDICES, vec![2, 0]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![1.0, 2.0, 3.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     slicer.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![3.0, 1.0]));
    /// ```
    VectorSlicer,
    "org.apache.flink.ml.feature.vectorslicer.VectorSlicer",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &INDICES.spec]
);

impl crate::param::HasInputCol for VectorSlicer {}
impl crate::param::HasOutputCol for VectorSlicer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(VectorSlicer);

/// The indices to pick, and the largest.
struct Slicer {
    indices: Vec<usize>,
    max: usize,
}

impl Slicer {
    fn check(&self, size: usize) -> Result<(), String> {
        if self.max >= size {
            return Err(format!(
                "VectorSlicer: Index value {} is greater than vector size:{size}",
                self.max
            ));
        }
        Ok(())
    }

    fn apply(&self, column: &Column, rows: usize) -> Result<Column, String> {
        let n = self.indices.len();
        Ok(match column {
            Column::DenseVector { dim, values } => {
                let mut out = Vec::with_capacity(rows * n);
                if rows > 0 {
                    // Checked: `dim > max >= 0`.
                    self.check(*dim)?;
                    for row in values.chunks_exact(*dim) {
                        out.extend(self.indices.iter().map(|i| row[*i]));
                    }
                }
                Column::DenseVector {
                    dim: n,
                    values: out,
                }
            }
            Column::SparseVector(c) => Column::SparseVector(
                c.iter()
                    .map(|v| {
                        self.check(v.size)?;
                        let mut indices = Vec::new();
                        let mut values = Vec::new();
                        for (k, i) in self.indices.iter().enumerate() {
                            if let Ok(p) = v.indices.binary_search(i) {
                                let x = v.values[p];
                                if x != 0.0 {
                                    indices.push(k);
                                    values.push(x);
                                }
                            }
                        }
                        Ok(SparseVector {
                            size: n,
                            indices,
                            values,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => {
                return Err(format!(
                    "VectorSlicer: the input column is a {} column, not vectors",
                    other.data_type()
                ))
            }
        })
    }
}

impl Stage for VectorSlicer {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "VectorSlicer",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let indices = self.get(&INDICES)?;
        // Flink ML's validator: non-negative indices without repeats.
        let mut seen = std::collections::HashSet::new();
        if indices.iter().any(|i| *i < 0 || !seen.insert(*i)) {
            return Err(MlError::InvalidParam {
                stage: "VectorSlicer".into(),
                param: INDICES.name().into(),
                message: format!(
                    "must be a non-empty array of indices >= 0 without repeats, got {indices:?}"
                ),
            });
        }
        let indices: Vec<usize> = indices.into_iter().map(|i| i as usize).collect();
        let slicer = Slicer {
            max: indices.iter().copied().max().unwrap_or(0),
            indices,
        };
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, input.schema.data_type(column))?;
        Ok(vec![map_batches(
            job,
            self,
            input,
            schema,
            move |batch: RowBatch| {
                let out = slicer.apply(batch.column(column), batch.rows())?;
                Ok(batch.with_column(out))
            },
        )])
    }
}
