//! [`SharedValues`]: the flat values of a dense vector column that a cache of training data
//! keeps, shared with the input batch instead of copied where the column already has the
//! layout the algorithm reads (a cache of 1M rows × 100 features is then 800 MB less to copy
//! and fault in).

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::table::Column;

/// Flat `f64` values: a dense vector column of an input batch (shared), or values of their
/// own (built from sparse rows, or read back from disk).
#[derive(Clone, Debug)]
pub(crate) enum SharedValues {
    /// The `values` of a `Column::DenseVector`.
    Column(Arc<Column>),
    /// Values of their own.
    Owned(Vec<f64>),
}

impl SharedValues {
    /// The values of `column` if it is a dense vector column of `dim` elements per row.
    pub(crate) fn of_dense(column: &Arc<Column>, dim: usize) -> Option<SharedValues> {
        match &**column {
            Column::DenseVector { dim: d, .. } if *d == dim => {
                Some(SharedValues::Column(Arc::clone(column)))
            }
            _ => None,
        }
    }

    /// The values.
    #[inline]
    pub(crate) fn values(&self) -> &[f64] {
        match self {
            SharedValues::Column(column) => match &**column {
                Column::DenseVector { values, .. } => values,
                _ => &[],
            },
            SharedValues::Owned(values) => values,
        }
    }

    /// The values, to append to (shared ones are copied first).
    pub(crate) fn owned_mut(&mut self) -> &mut Vec<f64> {
        if let SharedValues::Column(_) = self {
            *self = SharedValues::Owned(self.values().to_vec());
        }
        match self {
            SharedValues::Owned(values) => values,
            SharedValues::Column(_) => unreachable!("made owned just above"),
        }
    }
}

impl Default for SharedValues {
    fn default() -> Self {
        SharedValues::Owned(Vec::new())
    }
}

/// Serialised as the list of the values (as a `Vec<f64>` is).
impl Serialize for SharedValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.values().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<f64>::deserialize(deserializer).map(SharedValues::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_a_dense_column_and_serialises_as_its_values() {
        let column = Arc::new(Column::DenseVector {
            dim: 2,
            values: vec![1.0, 2.0, 3.0, 4.0],
        });
        assert!(SharedValues::of_dense(&column, 3).is_none());
        let mut shared = SharedValues::of_dense(&column, 2).unwrap();
        assert_eq!(shared.values(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(Arc::strong_count(&column), 2, "shared, not copied");
        let json = serde_json::to_string(&shared).unwrap();
        assert_eq!(json, "[1.0,2.0,3.0,4.0]");
        let back: SharedValues = serde_json::from_str(&json).unwrap();
        assert_eq!(back.values(), shared.values());
        shared.owned_mut().push(5.0);
        assert_eq!(shared.values(), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(Arc::strong_count(&column), 1);
    }
}
