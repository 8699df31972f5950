//! Columns of a batch: one typed vector per column (dense vectors stored flat), so stages work
//! on whole columns at once.

use serde::{Deserialize, Serialize};

use super::data_type::DataType;
use super::strings::StringColumn;
use super::value::Value;
use super::vector::SparseVector;

/// The values of one column of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Column {
    /// Booleans.
    Boolean(Vec<bool>),
    /// Integers.
    Long(Vec<i64>),
    /// Floats.
    Double(Vec<f64>),
    /// Strings, stored flat (one buffer for the column).
    String(StringColumn),
    /// Dense vectors of `dim` elements each, row after row in `values`.
    DenseVector {
        /// The size of every vector of the column.
        dim: usize,
        /// `rows * dim` elements.
        values: Vec<f64>,
    },
    /// Sparse vectors.
    SparseVector(Vec<SparseVector>),
    /// Arrays of strings.
    StringArray(Vec<Vec<String>>),
    /// Arrays of doubles.
    DoubleArray(Vec<Vec<f64>>),
    /// Arrays of dense vectors.
    DenseVectorArray(Vec<Vec<Vec<f64>>>),
}

/// A vector cell, dense or sparse, borrowed from a column.
#[derive(Clone, Copy, Debug)]
pub enum VectorRef<'a> {
    /// A dense vector.
    Dense(&'a [f64]),
    /// A sparse vector.
    Sparse(&'a SparseVector),
}

impl VectorRef<'_> {
    /// The vector's size.
    pub fn size(&self) -> usize {
        match self {
            VectorRef::Dense(v) => v.len(),
            VectorRef::Sparse(v) => v.size,
        }
    }

    /// Calls `f(index, value)` for every stored element (all of a dense vector).
    pub fn for_each(&self, mut f: impl FnMut(usize, f64)) {
        match self {
            VectorRef::Dense(v) => v.iter().enumerate().for_each(|(i, x)| f(i, *x)),
            VectorRef::Sparse(v) => v.indices.iter().zip(&v.values).for_each(|(i, x)| f(*i, *x)),
        }
    }

    /// The vector as an owned dense vector.
    pub fn to_dense(&self) -> Vec<f64> {
        match self {
            VectorRef::Dense(v) => v.to_vec(),
            VectorRef::Sparse(v) => v.to_dense(),
        }
    }

    /// The vector as an owned value of its own kind.
    pub fn to_value(&self) -> Value {
        match self {
            VectorRef::Dense(v) => Value::DenseVector(v.to_vec()),
            VectorRef::Sparse(v) => Value::SparseVector((*v).clone()),
        }
    }
}

impl Column {
    /// An empty column of type `t`.
    pub fn empty(t: DataType) -> Column {
        match t {
            DataType::Boolean => Column::Boolean(Vec::new()),
            DataType::Long => Column::Long(Vec::new()),
            DataType::Double => Column::Double(Vec::new()),
            DataType::String => Column::String(StringColumn::new()),
            DataType::DenseVector => Column::DenseVector {
                dim: 0,
                values: Vec::new(),
            },
            DataType::SparseVector => Column::SparseVector(Vec::new()),
            DataType::StringArray => Column::StringArray(Vec::new()),
            DataType::DoubleArray => Column::DoubleArray(Vec::new()),
            DataType::DenseVectorArray => Column::DenseVectorArray(Vec::new()),
        }
    }

    /// Rows `range` of the column, copied.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Column {
        match self {
            Column::Boolean(c) => Column::Boolean(c[range].to_vec()),
            Column::Long(c) => Column::Long(c[range].to_vec()),
            Column::Double(c) => Column::Double(c[range].to_vec()),
            Column::String(c) => Column::String(c.slice(range)),
            Column::DenseVector { dim, values } => Column::DenseVector {
                dim: *dim,
                values: values[range.start * dim..range.end * dim].to_vec(),
            },
            Column::SparseVector(c) => Column::SparseVector(c[range].to_vec()),
            Column::StringArray(c) => Column::StringArray(c[range].to_vec()),
            Column::DoubleArray(c) => Column::DoubleArray(c[range].to_vec()),
            Column::DenseVectorArray(c) => Column::DenseVectorArray(c[range].to_vec()),
        }
    }

    /// The column's type.
    pub fn data_type(&self) -> DataType {
        match self {
            Column::Boolean(_) => DataType::Boolean,
            Column::Long(_) => DataType::Long,
            Column::Double(_) => DataType::Double,
            Column::String(_) => DataType::String,
            Column::DenseVector { .. } => DataType::DenseVector,
            Column::SparseVector(_) => DataType::SparseVector,
            Column::StringArray(_) => DataType::StringArray,
            Column::DoubleArray(_) => DataType::DoubleArray,
            Column::DenseVectorArray(_) => DataType::DenseVectorArray,
        }
    }

    /// Appends a value, which must have the column's type (a `Long` goes into a `Double`
    /// column); a dense vector must have the size of those already there.
    pub fn push(&mut self, rows: usize, value: Value) -> Result<(), String> {
        match (self, value) {
            (Column::Boolean(c), Value::Boolean(v)) => c.push(v),
            (Column::Long(c), Value::Long(v)) => c.push(v),
            (Column::Double(c), Value::Double(v)) => c.push(v),
            (Column::Double(c), Value::Long(v)) => c.push(v as f64),
            (Column::String(c), Value::String(v)) => c.push(&v),
            (Column::DenseVector { dim, values }, Value::DenseVector(v)) => {
                if rows == 0 {
                    *dim = v.len();
                } else if v.len() != *dim {
                    return Err(format!(
                        "dense vectors of one column must have one size: {} after {}",
                        v.len(),
                        dim
                    ));
                }
                values.extend(v);
            }
            (Column::SparseVector(c), Value::SparseVector(v)) => c.push(v),
            (Column::StringArray(c), Value::StringArray(v)) => c.push(v),
            (Column::DoubleArray(c), Value::DoubleArray(v)) => c.push(v),
            (Column::DenseVectorArray(c), Value::DenseVectorArray(v)) => c.push(v),
            (c, v) => {
                return Err(format!(
                    "a {} column cannot hold a {}",
                    c.data_type(),
                    v.data_type()
                ))
            }
        }
        Ok(())
    }

    /// The value of row `i`.
    pub fn value(&self, i: usize) -> Value {
        match self {
            Column::Boolean(c) => Value::Boolean(c[i]),
            Column::Long(c) => Value::Long(c[i]),
            Column::Double(c) => Value::Double(c[i]),
            Column::String(c) => Value::String(c[i].to_string()),
            Column::DenseVector { dim, values } => {
                Value::DenseVector(values[i * dim..(i + 1) * dim].to_vec())
            }
            Column::SparseVector(c) => Value::SparseVector(c[i].clone()),
            Column::StringArray(c) => Value::StringArray(c[i].clone()),
            Column::DoubleArray(c) => Value::DoubleArray(c[i].clone()),
            Column::DenseVectorArray(c) => Value::DenseVectorArray(c[i].clone()),
        }
    }

    /// Row `i` as a number (`Long` or `Double` columns).
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            Column::Long(c) => Some(c[i] as f64),
            Column::Double(c) => Some(c[i]),
            _ => None,
        }
    }

    /// Row `i` as a vector (dense or sparse columns).
    pub fn vector(&self, i: usize) -> Option<VectorRef<'_>> {
        match self {
            Column::DenseVector { dim, values } => {
                Some(VectorRef::Dense(&values[i * dim..(i + 1) * dim]))
            }
            Column::SparseVector(c) => Some(VectorRef::Sparse(&c[i])),
            _ => None,
        }
    }

    /// Row `i` as a string (`String` columns).
    pub fn string(&self, i: usize) -> Option<&str> {
        match self {
            Column::String(c) => Some(&c[i]),
            _ => None,
        }
    }

    /// Appends all rows of `other` (of the same type).
    pub fn append(&mut self, rows: usize, other: Column) -> Result<(), String> {
        match (self, other) {
            (Column::Boolean(a), Column::Boolean(b)) => a.extend(b),
            (Column::Long(a), Column::Long(b)) => a.extend(b),
            (Column::Double(a), Column::Double(b)) => a.extend(b),
            (Column::String(a), Column::String(b)) => a.append(&b),
            (Column::SparseVector(a), Column::SparseVector(b)) => a.extend(b),
            (Column::StringArray(a), Column::StringArray(b)) => a.extend(b),
            (Column::DoubleArray(a), Column::DoubleArray(b)) => a.extend(b),
            (Column::DenseVectorArray(a), Column::DenseVectorArray(b)) => a.extend(b),
            (
                Column::DenseVector { dim, values },
                Column::DenseVector {
                    dim: d2,
                    values: v2,
                },
            ) => {
                if rows == 0 {
                    *dim = d2;
                } else if d2 != *dim && !v2.is_empty() {
                    return Err(format!("cannot append vectors of size {d2} to size {dim}"));
                }
                values.extend(v2);
            }
            (a, b) => {
                return Err(format!(
                    "cannot append a {} column to a {} column",
                    b.data_type(),
                    a.data_type()
                ))
            }
        }
        Ok(())
    }

    /// Approximate bytes held (for data cache budgets).
    pub fn weight(&self) -> usize {
        match self {
            Column::Boolean(c) => c.len(),
            Column::Long(c) => 8 * c.len(),
            Column::Double(c) => 8 * c.len(),
            Column::String(c) => 8 * c.len() + c.text_len(),
            Column::DenseVector { values, .. } => 8 * values.len(),
            Column::SparseVector(c) => c.iter().map(|v| 48 + 16 * v.values.len()).sum(),
            Column::StringArray(c) => c
                .iter()
                .map(|a| 24 + a.iter().map(|s| 24 + s.len()).sum::<usize>())
                .sum(),
            Column::DoubleArray(c) => c.iter().map(|a| 24 + 8 * a.len()).sum(),
            Column::DenseVectorArray(c) => c
                .iter()
                .map(|a| 24 + a.iter().map(|v| 24 + 8 * v.len()).sum::<usize>())
                .sum(),
        }
    }
}
