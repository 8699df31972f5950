//! `Normalizer`: scales every vector to unit p-norm (Flink ML's
//! `org.apache.flink.ml.feature.normalizer`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Table};

/// `p`: the norm's order.
pub const P: Param<f64> = Param::new(
    "p",
    "The p norm value.",
    Some("2.0"),
    ParamType::Double,
    Validator::GtEq(1.0),
);

stage!(
    /// Divides every vector of `inputCol` by its `p`-norm into `outputCol` (a vector of the
    /// input's kind; a sparse vector's norm is over its stored elements, which keep their
    /// indices). As in Flink ML the vector is multiplied by `1 / norm`, so a zero vector gives
    /// NaN elements.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{normalizer::P, Normalizer};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let normalizer = Normalizer::new().set(&P, 1.0).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![1.0, -3.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     normalizer.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![0.25, -0.75]));
    /// ```
    Normalizer,
    "org.apache.flink.ml.feature.normalizer.Normalizer",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &P.spec]
);

impl crate::param::HasInputCol for Normalizer {}
impl crate::param::HasOutputCol for Normalizer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Normalizer);

/// Java's `Math.max` (NaN wins).
fn java_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The Euclidean norm: the plain sum of squares, or BLAS `dnrm2`'s scaled sum where that
/// overflows or underflows.
fn norm2(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().map(|v| v * v).sum();
    if sum.is_finite() && sum >= f64::MIN_POSITIVE {
        return sum.sqrt();
    }
    if sum.is_nan() || (sum == 0.0 && x.iter().all(|v| *v == 0.0)) {
        return sum;
    }
    let (mut scale, mut ssq) = (0.0f64, 1.0f64);
    for v in x {
        if *v != 0.0 {
            let a = v.abs();
            if scale < a {
                ssq = 1.0 + ssq * (scale / a) * (scale / a);
                scale = a;
            } else {
                ssq += (a / scale) * (a / scale);
            }
        }
    }
    scale * ssq.sqrt()
}

/// Flink ML's `BLAS.norm(x, p)` over the stored elements `x`.
fn norm(x: &[f64], p: f64) -> f64 {
    if p == 1.0 {
        x.iter().map(|v| v.abs()).sum()
    } else if p == 2.0 {
        norm2(x)
    } else if p == f64::INFINITY {
        x.iter().fold(0.0, |m, v| java_max(v.abs(), m))
    } else {
        x.iter().map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

fn normalize(column: &Column, p: f64) -> Result<Column, String> {
    Ok(match column {
        Column::DenseVector { dim, values } => {
            let mut out = Vec::with_capacity(values.len());
            if *dim > 0 {
                for row in values.chunks_exact(*dim) {
                    let factor = 1.0 / norm(row, p);
                    out.extend(row.iter().map(|v| v * factor));
                }
            }
            Column::DenseVector {
                dim: *dim,
                values: out,
            }
        }
        Column::SparseVector(c) => Column::SparseVector(
            c.iter()
                .map(|v| {
                    let factor = 1.0 / norm(&v.values, p);
                    let mut out = v.clone();
                    out.values.iter_mut().for_each(|x| *x *= factor);
                    out
                })
                .collect(),
        ),
        other => {
            return Err(format!(
                "Normalizer: the input column is a {} column, not vectors",
                other.data_type()
            ))
        }
    })
}

impl Stage for Normalizer {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "Normalizer",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, input.schema.data_type(column))?;
        let p = self.get(&P)?;
        Ok(vec![map_batches(
            job,
            self,
            input,
            schema,
            move |batch: RowBatch| {
                let out = normalize(batch.column(column), p)?;
                Ok(batch.with_column(out))
            },
        )])
    }
}
