//! `DCT`: the orthonormal discrete cosine transform of vectors (Flink ML's
//! `org.apache.flink.ml.feature.dct`).

use std::f64::consts::PI;

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use super::vector_assembler::{flat_map_batches, split_runs};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Table, VectorRef};

/// `inverse`: whether to compute the inverse transform.
pub const INVERSE: Param<bool> = Param::new(
    "inverse",
    "Whether to perform the inverse DCT (true) or forward DCT (false).",
    Some("false"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// The orthonormal DCT-II of every vector of `inputCol` (or with `inverse` its inverse,
    /// the orthonormal DCT-III) as a dense vector of the same size in `outputCol`, as Flink
    /// ML computes it with JTransforms' `DoubleDCT_1D` (scaled):
    /// `X[k] = s(k) * sum_n x[n] * cos(pi * k * (2n + 1) / 2N)` with `s(0) = sqrt(1/N)` and
    /// `s(k) = sqrt(2/N)` (scipy's `dct(x, norm="ortho")`). Sparse vectors are transformed as
    /// the dense vectors they stand for.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::DCT;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![1.0, 1.0, 1.0, 1.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     DCT::new().transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let Value::DenseVector(y) = &out.rows()[0][1] else { panic!() };
    /// let expected = [2.0, 0.0, 0.0, 0.0];
    /// assert!(y.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12));
    /// ```
    DCT,
    "org.apache.flink.ml.feature.dct.DCT",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &INVERSE.spec]
);

impl crate::param::HasInputCol for DCT {}
impl crate::param::HasOutputCol for DCT {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(DCT);

/// Sizes up to this get a full `n x n` matrix; larger ones a cosine table of `4n` entries.
const MATRIX_SIZE: usize = 512;

/// The transform of one vector size: `y = M x` with `M[k][n] = s(k) cos(pi k (2n+1) / 2N)`
/// (forward) or its transpose (inverse).
struct Transform {
    n: usize,
    inverse: bool,
    /// The matrix, row by row (forward `M`, inverse `M^T`), for sizes up to `MATRIX_SIZE`.
    matrix: Vec<f64>,
    /// `cos(pi m / 2N)` for `m` in `0..4N`, for larger sizes.
    cosines: Vec<f64>,
    scale0: f64,
    scale: f64,
}

impl Transform {
    fn new(n: usize, inverse: bool) -> Transform {
        let nf = n as f64;
        let (scale0, scale) = if n == 0 {
            (0.0, 0.0)
        } else {
            ((1.0 / nf).sqrt(), (2.0 / nf).sqrt())
        };
        // cos(pi m / 2N) with m reduced mod 4N, the period, for accuracy.
        let cosine = |m: usize| (PI * (m % (4 * n)) as f64 / (2.0 * nf)).cos();
        let mut t = Transform {
            n,
            inverse,
            matrix: Vec::new(),
            cosines: Vec::new(),
            scale0,
            scale,
        };
        if n <= MATRIX_SIZE {
            t.matrix = vec![0.0; n * n];
            for k in 0..n {
                let s = if k == 0 { scale0 } else { scale };
                for j in 0..n {
                    let m = s * cosine(k * (2 * j + 1));
                    if inverse {
                        t.matrix[j * n + k] = m;
                    } else {
                        t.matrix[k * n + j] = m;
                    }
                }
            }
        } else {
            t.cosines = (0..4 * n).map(cosine).collect();
        }
        t
    }

    /// `out = transform(x)`; both of size `n`.
    fn apply(&self, x: &[f64], out: &mut [f64]) {
        let n = self.n;
        if !self.matrix.is_empty() {
            for (o, row) in out.iter_mut().zip(self.matrix.chunks_exact(n)) {
                *o = row.iter().zip(x).map(|(m, x)| m * x).sum();
            }
            return;
        }
        let period = 4 * n;
        for (i, o) in out.iter_mut().enumerate() {
            let mut sum = 0.0;
            if self.inverse {
                // x[i] = sum_k s(k) X[k] cos(pi k (2i+1) / 2N)
                let step = 2 * i + 1;
                let mut m = 0;
                for (k, xk) in x.iter().enumerate() {
                    let s = if k == 0 { self.scale0 } else { self.scale };
                    sum += s * xk * self.cosines[m];
                    m = (m + step) % period;
                }
            } else {
                // X[i] = s(i) sum_j x[j] cos(pi i (2j+1) / 2N)
                let step = 2 * i;
                let mut m = i % period;
                for xj in x {
                    sum += xj * self.cosines[m];
                    m = (m + step) % period;
                }
                sum *= if i == 0 { self.scale0 } else { self.scale };
            }
            *o = sum;
        }
    }
}

/// The operator's state: the transform of the last size seen, and a row buffer.
struct Dct {
    column: usize,
    inverse: bool,
    transform: Option<Transform>,
    row: Vec<f64>,
}

impl Dct {
    fn transform_for(&mut self, n: usize) -> &Transform {
        if self.transform.as_ref().is_none_or(|t| t.n != n) {
            self.transform = Some(Transform::new(n, self.inverse));
        }
        self.transform.as_ref().expect("set above")
    }

    fn apply(&mut self, batch: RowBatch) -> Result<RowBatch, String> {
        let rows = batch.rows();
        let column = match batch.column(self.column) {
            Column::DenseVector { dim, values } => {
                let dim = *dim;
                let mut out = vec![0.0; values.len()];
                if dim > 0 {
                    let t = self.transform_for(dim);
                    for (x, o) in values.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
                        t.apply(x, o);
                    }
                }
                Column::DenseVector { dim, values: out }
            }
            col => {
                // Sparse rows, densified; the output column is dense, so of one size.
                let dim = if rows > 0 {
                    col.vector(0).map_or(0, |v| v.size())
                } else {
                    0
                };
                let mut out = vec![0.0; rows * dim];
                let mut row = std::mem::take(&mut self.row);
                row.resize(dim, 0.0);
                for i in 0..rows {
                    let Some(VectorRef::Sparse(v)) = col.vector(i) else {
                        return Err("DCT: the input column is not a vector column".into());
                    };
                    if v.size != dim {
                        return Err(format!(
                            "DCT: a batch holds sparse vectors of sizes {dim} and {}, but the \
                             dense output column holds vectors of one size",
                            v.size
                        ));
                    }
                    row.fill(0.0);
                    for (j, x) in v.indices.iter().zip(&v.values) {
                        row[*j] = *x;
                    }
                    let t = self.transform_for(dim);
                    t.apply(&row, &mut out[i * dim..(i + 1) * dim]);
                }
                self.row = row;
                Column::DenseVector { dim, values: out }
            }
        };
        Ok(batch.with_column(column))
    }
}

impl Stage for DCT {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "DCT",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::DenseVector)?;
        let mut dct = Dct {
            column,
            inverse: self.get(&INVERSE)?,
            transform: None,
            row: Vec::new(),
        };
        Ok(vec![flat_map_batches(
            job,
            self,
            input,
            schema,
            move |batch| {
                // A dense output column holds one size: sparse rows of another size than
                // the rows before them go to a batch of their own.
                let runs = match batch.column(column) {
                    Column::SparseVector(c) => {
                        let sizes: Vec<usize> = c.iter().map(|v| v.size).collect();
                        split_runs(batch, &sizes)
                    }
                    _ => vec![batch],
                };
                runs.into_iter().map(|run| dct.apply(run)).collect()
            },
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table path (sizes above `MATRIX_SIZE`) agrees with the matrix path.
    #[test]
    fn cosine_table_matches_matrix() {
        for inverse in [false, true] {
            let n = MATRIX_SIZE + 3;
            let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
            let table = Transform::new(n, inverse);
            assert!(table.matrix.is_empty());
            let mut reference = Transform::new(n, inverse);
            reference.matrix = vec![0.0; n * n];
            // Build the reference matrix directly.
            for k in 0..n {
                let s = if k == 0 {
                    reference.scale0
                } else {
                    reference.scale
                };
                for j in 0..n {
                    let m = s * (PI * (k * (2 * j + 1)) as f64 / (2.0 * n as f64)).cos();
                    if inverse {
                        reference.matrix[j * n + k] = m;
                    } else {
                        reference.matrix[k * n + j] = m;
                    }
                }
            }
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            table.apply(&x, &mut a);
            reference.apply(&x, &mut b);
            for (a, b) in a.iter().zip(&b) {
                assert!((a - b).abs() < 1e-8 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }

    /// Forward then inverse is the identity.
    #[test]
    fn inverse_undoes_forward() {
        let x = [1.0, -2.0, 0.5, 3.0, 0.0];
        let (mut y, mut z) = ([0.0; 5], [0.0; 5]);
        Transform::new(5, false).apply(&x, &mut y);
        Transform::new(5, true).apply(&y, &mut z);
        for (a, b) in x.iter().zip(&z) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
