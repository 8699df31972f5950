//! `ElementwiseProduct`: multiplies vectors element by element with a scaling vector (the
//! Hadamard product; Flink ML's `org.apache.flink.ml.feature.elementwiseproduct`).

use serde_json::{json, Value as Json};
use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{vector_param, Param, ParamType, ParamValue, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// The value of a vector param (Flink ML's `VectorParam`): a dense or a sparse vector, as
/// JSON `{"values": [...]}` or `{"n": size, "indices": [...], "values": [...]}`.
#[derive(Clone, Debug, PartialEq)]
pub enum VectorValue {
    /// A dense vector.
    Dense(Vec<f64>),
    /// A sparse vector.
    Sparse(SparseVector),
}

impl VectorValue {
    /// The vector's size.
    pub fn size(&self) -> usize {
        match self {
            VectorValue::Dense(v) => v.len(),
            VectorValue::Sparse(v) => v.size,
        }
    }
}

impl ParamValue for VectorValue {
    /// Reads the JSON form; sparse indices are sorted with their values (as Flink's
    /// `SparseVector` constructor does), and repeated indices are refused.
    fn from_json(json: &Json) -> Option<Self> {
        let (size, indices, values) = vector_param(json)?;
        let Some(indices) = indices else {
            return Some(VectorValue::Dense(values));
        };
        let mut pairs: Vec<(usize, f64)> = indices.into_iter().zip(values).collect();
        pairs.sort_by_key(|(i, _)| *i);
        let (indices, values): (Vec<usize>, Vec<f64>) = pairs.into_iter().unzip();
        SparseVector::new(size, indices, values)
            .ok()
            .map(VectorValue::Sparse)
    }

    fn to_json(&self) -> Json {
        match self {
            VectorValue::Dense(v) => json!({ "values": v }),
            VectorValue::Sparse(v) => {
                json!({ "n": v.size, "indices": v.indices, "values": v.values })
            }
        }
    }
}

/// `scalingVec`: the vector to multiply with.
pub const SCALING_VEC: Param<VectorValue> = Param::new(
    "scalingVec",
    "The scaling vector to multiply with input vectors using hadamard product.",
    None,
    ParamType::Vector,
    Validator::NotNull,
);

stage!(
    /// Multiplies every vector of `inputCol` element by element with `scalingVec` (of the
    /// same size) into `outputCol`, a vector of the input's kind:
    ///
    /// - a dense scaling vector scales every element of a dense vector and the stored
    ///   elements of a sparse one (which keeps its indices);
    /// - a sparse scaling vector scales the elements it stores and sets the others to 0.0 (a
    ///   sparse input keeps its indices, with explicit zeros), as Flink ML's `BLAS.hDot` does.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{elementwise_product::{VectorValue, SCALING_VEC}, ElementwiseProduct};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let product = ElementwiseProduct::new()
    ///     .set(&SCALING_VEC, VectorValue::Dense(vec![2.0, 0.5])).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![3.0, 4.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     product.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![6.0, 2.0]));
    /// ```
    ElementwiseProduct,
    "org.apache.flink.ml.feature.elementwiseproduct.ElementwiseProduct",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &SCALING_VEC.spec]
);

impl crate::param::HasInputCol for ElementwiseProduct {}
impl crate::param::HasOutputCol for ElementwiseProduct {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(ElementwiseProduct);

fn size_error(scaling: usize, input: usize) -> String {
    format!(
        "ElementwiseProduct: The scaling vector size is {scaling}, which is not equal input \
         vector size({input})."
    )
}

/// The scaling of one vector size.
struct Scaling {
    vector: VectorValue,
}

impl Scaling {
    fn apply(&self, column: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let size = self.vector.size();
        let out = match (batch.column(column), &self.vector) {
            (Column::DenseVector { dim, values }, scaling) => {
                let dim = *dim;
                if dim != size && batch.rows() > 0 {
                    return Err(size_error(size, dim));
                }
                let values = match scaling {
                    VectorValue::Dense(s) if dim > 0 => {
                        let mut out = Vec::with_capacity(values.len());
                        for row in values.chunks_exact(dim) {
                            out.extend(row.iter().zip(s).map(|(x, s)| x * s));
                        }
                        out
                    }
                    VectorValue::Dense(_) => Vec::new(),
                    VectorValue::Sparse(s) => {
                        let mut out = vec![0.0; values.len()];
                        if dim > 0 {
                            for (row, o) in values.chunks_exact(dim).zip(out.chunks_exact_mut(dim))
                            {
                                for (j, s) in s.indices.iter().zip(&s.values) {
                                    o[*j] = row[*j] * s;
                                }
                            }
                        }
                        out
                    }
                };
                Column::DenseVector { dim, values }
            }
            (Column::SparseVector(c), scaling) => Column::SparseVector(
                c.iter()
                    .map(|v| {
                        if v.size != size {
                            return Err(size_error(size, v.size));
                        }
                        let mut out = v.clone();
                        match scaling {
                            VectorValue::Dense(s) => {
                                for (j, x) in out.indices.iter().zip(out.values.iter_mut()) {
                                    *x *= s[*j];
                                }
                            }
                            VectorValue::Sparse(s) => {
                                // Both index lists ascend: a merge.
                                let mut k = 0;
                                for (j, x) in out.indices.iter().zip(out.values.iter_mut()) {
                                    while k < s.indices.len() && s.indices[k] < *j {
                                        k += 1;
                                    }
                                    if k < s.indices.len() && s.indices[k] == *j {
                                        *x *= s.values[k];
                                    } else {
                                        *x = 0.0;
                                    }
                                }
                            }
                        }
                        Ok(out)
                    })
                    .collect::<Result<_, String>>()?,
            ),
            (other, _) => {
                return Err(format!(
                    "ElementwiseProduct: the input column is a {} column, not vectors",
                    other.data_type()
                ))
            }
        };
        Ok(batch.with_column(out))
    }
}

impl Stage for ElementwiseProduct {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "ElementwiseProduct",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, input.schema.data_type(column))?;
        let scaling = Scaling {
            vector: self.get(&SCALING_VEC)?,
        };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            scaling.apply(column, batch)
        })])
    }
}
