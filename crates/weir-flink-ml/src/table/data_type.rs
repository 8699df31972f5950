//! Column types of a table, named as Flink ML names them (`DenseVector`, `SparseVector`, ...).

use serde::{Deserialize, Serialize};

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `Boolean`.
    Boolean,
    /// `Long` (also Flink's `Integer`): 64-bit signed integers.
    Long,
    /// `Double`: 64-bit floats (also Flink's `Float`).
    Double,
    /// `String`.
    String,
    /// `DenseVector`: vectors of doubles; within one batch every vector of a column has the
    /// same size.
    DenseVector,
    /// `SparseVector`: a size, ascending indices and their values.
    SparseVector,
    /// `String[]`.
    StringArray,
    /// `Double[]` (Flink's `double[]` columns).
    DoubleArray,
    /// `DenseVector[]` (rows of `DenseVectorArrayGenerator`, KMeans centroids).
    DenseVectorArray,
}

impl DataType {
    /// The type's name, as in fixtures and JSON job files.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "Boolean",
            DataType::Long => "Long",
            DataType::Double => "Double",
            DataType::String => "String",
            DataType::DenseVector => "DenseVector",
            DataType::SparseVector => "SparseVector",
            DataType::StringArray => "StringArray",
            DataType::DoubleArray => "DoubleArray",
            DataType::DenseVectorArray => "DenseVectorArray",
        }
    }

    /// Parses a type name; Flink's aliases (`Integer`, `Float`, `String[]`, `Vector`) are
    /// accepted.
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name {
            "Boolean" | "boolean" => DataType::Boolean,
            "Long" | "Integer" | "Int" | "long" | "int" => DataType::Long,
            "Double" | "Float" | "double" | "float" => DataType::Double,
            "String" | "string" => DataType::String,
            "DenseVector" | "Vector" => DataType::DenseVector,
            "SparseVector" => DataType::SparseVector,
            "StringArray" | "String[]" => DataType::StringArray,
            "DoubleArray" | "Double[]" | "double[]" => DataType::DoubleArray,
            "DenseVectorArray" | "DenseVector[]" => DataType::DenseVectorArray,
            _ => return None,
        })
    }

    /// Whether values of this type are numbers (`Long` or `Double`).
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Long | DataType::Double)
    }

    /// Whether values of this type are vectors (dense or sparse).
    pub fn is_vector(self) -> bool {
        matches!(self, DataType::DenseVector | DataType::SparseVector)
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
