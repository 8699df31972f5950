//! A table's schema: named, typed columns.

use serde::{Deserialize, Serialize};

use super::data_type::DataType;
use crate::error::MlError;

/// A named, typed column of a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The column's name.
    pub name: String,
    /// The column's type.
    pub data_type: DataType,
}

/// The columns of a table, in order.
///
/// ```
/// use weir_flink_ml::table::{DataType, Schema};
/// let schema = Schema::new([("id", DataType::Long), ("features", DataType::DenseVector)]);
/// assert_eq!(schema.index_of("features").unwrap(), 1);
/// assert!(schema.index_of("label").is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    fields: Vec<Field>,
}

impl Schema {
    /// A schema of `(name, type)` pairs.
    pub fn new<S: Into<String>>(fields: impl IntoIterator<Item = (S, DataType)>) -> Schema {
        Schema {
            fields: fields
                .into_iter()
                .map(|(name, data_type)| Field {
                    name: name.into(),
                    data_type,
                })
                .collect(),
        }
    }

    /// The columns.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The position of column `name`, or an error that lists the columns there are.
    pub fn index_of(&self, name: &str) -> Result<usize, MlError> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| MlError::UnknownColumn {
                column: name.to_string(),
                columns: self.names().join(", "),
            })
    }

    /// The position of column `name`, checked to have one of `types`.
    pub fn typed_index(
        &self,
        stage: &str,
        name: &str,
        types: &[DataType],
    ) -> Result<usize, MlError> {
        let i = self.index_of(name)?;
        let actual = self.fields[i].data_type;
        if types.contains(&actual) {
            Ok(i)
        } else {
            Err(MlError::ColumnType {
                stage: stage.to_string(),
                column: name.to_string(),
                expected: types
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
                actual,
            })
        }
    }

    /// The column names.
    pub fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }

    /// The type of column `i`.
    pub fn data_type(&self, i: usize) -> DataType {
        self.fields[i].data_type
    }

    /// This schema with column `name` of type `data_type` appended (an output column);
    /// an existing column of that name is an error, as in Flink ML.
    pub fn with_column(&self, name: &str, data_type: DataType) -> Result<Schema, MlError> {
        if self.fields.iter().any(|f| f.name == name) {
            return Err(MlError::DuplicateColumn(name.to_string()));
        }
        let mut fields = self.fields.clone();
        fields.push(Field {
            name: name.to_string(),
            data_type,
        });
        Ok(Schema { fields })
    }

    /// This schema with several columns appended.
    pub fn with_columns(&self, columns: &[(String, DataType)]) -> Result<Schema, MlError> {
        let mut schema = self.clone();
        for (name, t) in columns {
            schema = schema.with_column(name, *t)?;
        }
        Ok(schema)
    }
}
