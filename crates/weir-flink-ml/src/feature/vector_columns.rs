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
