//! Reading and building vector columns row by row, without a vector allocation per row.

use crate::table::{Column, RowBatch, SparseVector, VectorRef};

/// Calls `f(row, vector)` for every row of vector column `column`.
pub(crate) fn vector_column(
    batch: &RowBatch,
    column: usize,
    mut f: impl FnMut(usize, VectorRef<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let col = batch.column(column);
    for i in 0..batch.rows() {
        let v = col
            .vector(i)
            .ok_or_else(|| format!("column {column} is not a vector column"))?;
        f(i, v)?;
    }
    Ok(())
}

/// Builds an output vector column.
pub(crate) enum VectorColumnBuilder {
    /// Dense vectors of one size, stored flat.
    Dense {
        /// Their size.
        dim: usize,
        /// The elements so far.
        values: Vec<f64>,
    },
    /// Sparse vectors.
    // For stages that output sparse vectors (none of the stages built so far does).
    #[allow(dead_code)]
    Sparse(Vec<SparseVector>),
}

impl VectorColumnBuilder {
    /// A dense column for `rows` vectors of size `dim`.
    pub(crate) fn dense(dim: usize, rows: usize) -> Self {
        VectorColumnBuilder::Dense {
            dim,
            values: Vec::with_capacity(dim * rows),
        }
    }

    /// A sparse column.
    #[allow(dead_code)]
    pub(crate) fn sparse(rows: usize) -> Self {
        VectorColumnBuilder::Sparse(Vec::with_capacity(rows))
    }

    /// The next dense vector, zeroed, to fill in.
    pub(crate) fn next_dense(&mut self) -> &mut [f64] {
        match self {
            VectorColumnBuilder::Dense { dim, values } => {
                let start = values.len();
                values.resize(start + *dim, 0.0);
                &mut values[start..]
            }
            VectorColumnBuilder::Sparse(_) => panic!("next_dense on a sparse builder"),
        }
    }

    /// Appends a sparse vector.
    #[allow(dead_code)]
    pub(crate) fn push_sparse(&mut self, v: SparseVector) {
        match self {
            VectorColumnBuilder::Sparse(c) => c.push(v),
            VectorColumnBuilder::Dense { .. } => panic!("push_sparse on a dense builder"),
        }
    }

    /// The finished column.
    pub(crate) fn finish(self) -> Column {
        match self {
            VectorColumnBuilder::Dense { dim, values } => Column::DenseVector { dim, values },
            VectorColumnBuilder::Sparse(c) => Column::SparseVector(c),
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
