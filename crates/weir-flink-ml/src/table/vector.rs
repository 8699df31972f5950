//! Sparse vectors (dense vectors are plain `Vec<f64>` values, and flat arrays in columns).

use serde::{Deserialize, Serialize};

/// A vector of `size` elements of which only those at `indices` (ascending) are non-zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVector {
    /// The vector's size.
    pub size: usize,
    /// The indices of the stored elements, ascending.
    pub indices: Vec<usize>,
    /// The stored elements.
    pub values: Vec<f64>,
}

impl SparseVector {
    /// The largest size a sparse vector may have: 2^31 - 1, as in Flink (a Java `int`;
    /// `HashingTF`'s `numFeatures` goes up to it). A size from data beyond it is refused
    /// instead of sizing a dense copy by it.
    pub const MAX_SIZE: usize = i32::MAX as usize;

    /// A sparse vector; indices must be ascending and below `size`, and `size` at most
    /// [`SparseVector::MAX_SIZE`].
    ///
    /// ```
    /// use weir_flink_ml::table::SparseVector;
    /// let v = SparseVector::new(4, vec![1, 3], vec![2.0, 5.0]).unwrap();
    /// assert_eq!(v.to_dense(), vec![0.0, 2.0, 0.0, 5.0]);
    /// ```
    pub fn new(size: usize, indices: Vec<usize>, values: Vec<f64>) -> Result<Self, String> {
        if indices.len() != values.len() {
            return Err(format!(
                "a sparse vector has {} indices but {} values",
                indices.len(),
                values.len()
            ));
        }
        if size > Self::MAX_SIZE {
            return Err(format!(
                "a sparse vector's size is at most {} (2^31 - 1), got {size}",
                Self::MAX_SIZE
            ));
        }
        if indices.windows(2).any(|w| w[0] >= w[1]) {
            return Err("a sparse vector's indices must be strictly ascending".into());
        }
        if let Some(&last) = indices.last() {
            if last >= size {
                return Err(format!(
                    "sparse vector index {last} is not below its size {size}"
                ));
            }
        }
        Ok(SparseVector {
            size,
            indices,
            values,
        })
    }

    /// The vector as a dense one.
    pub fn to_dense(&self) -> Vec<f64> {
        let mut dense = vec![0.0; self.size];
        for (&i, &v) in self.indices.iter().zip(&self.values) {
            dense[i] = v;
        }
        dense
    }

    /// A sparse vector of the non-zero elements of `dense`.
    pub fn from_dense(dense: &[f64]) -> SparseVector {
        let (indices, values) = dense
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(i, v)| (i, *v))
            .unzip();
        SparseVector {
            size: dense.len(),
            indices,
            values,
        }
    }

    /// Builds a sparse vector from `(index, value)` pairs in any order, summing repeats.
    pub fn from_pairs(size: usize, pairs: impl IntoIterator<Item = (usize, f64)>) -> SparseVector {
        let mut map = std::collections::BTreeMap::new();
        for (i, v) in pairs {
            *map.entry(i).or_insert(0.0) += v;
        }
        let (indices, values) = map.into_iter().unzip();
        SparseVector {
            size,
            indices,
            values,
        }
    }
}
