//! A batch of rows stored column by column: the record type that flows through a table's
//! dataflow stream.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::column::Column;
use super::schema::Schema;
use super::value::{short, Value};
use crate::error::MlError;

/// Rows of a table, column by column (in the table's schema order).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowBatch {
    rows: usize,
    columns: Vec<Column>,
}

impl RowBatch {
    /// A batch of `rows` rows from columns of that length.
    pub fn new(rows: usize, columns: Vec<Column>) -> RowBatch {
        RowBatch { rows, columns }
    }

    /// An empty batch for `schema`.
    pub fn empty(schema: &Schema) -> RowBatch {
        RowBatch {
            rows: 0,
            columns: schema
                .fields()
                .iter()
                .map(|f| Column::empty(f.data_type))
                .collect(),
        }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Column `i`.
    pub fn column(&self, i: usize) -> &Column {
        &self.columns[i]
    }

    /// Takes the columns out (to build an output batch without copying).
    pub fn into_columns(self) -> Vec<Column> {
        self.columns
    }

    /// This batch with `column` (of `rows()` rows) appended.
    pub fn with_column(mut self, column: Column) -> RowBatch {
        self.columns.push(column);
        self
    }

    /// Appends a row of values in schema order.
    pub fn push_row(&mut self, schema: &Schema, row: Vec<Value>) -> Result<(), MlError> {
        if row.len() != schema.len() {
            return Err(MlError::Row(format!(
                "a row has {} values, the schema {} columns",
                row.len(),
                schema.len()
            )));
        }
        for ((column, field), value) in self.columns.iter_mut().zip(schema.fields()).zip(row) {
            column
                .push(self.rows, value)
                .map_err(|e| MlError::Row(format!("column `{}`: {e}", field.name)))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Batches of at most `batch_rows` rows from rows of values in schema order.
    ///
    /// ```
    /// use weir_flink_ml::table::{DataType, RowBatch, Schema, Value};
    /// let schema = Schema::new([("x", DataType::Double)]);
    /// let rows = (0..5).map(|i| vec![Value::Double(i as f64)]).collect();
    /// let batches = RowBatch::from_rows(&schema, rows, 2).unwrap();
    /// assert_eq!(batches.iter().map(|b| b.rows()).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// ```
    pub fn from_rows(
        schema: &Schema,
        rows: Vec<Vec<Value>>,
        batch_rows: usize,
    ) -> Result<Vec<RowBatch>, MlError> {
        let mut batches = Vec::new();
        let mut batch = RowBatch::empty(schema);
        for (i, row) in rows.into_iter().enumerate() {
            batch
                .push_row(schema, row)
                .map_err(|e| MlError::Row(format!("row {i}: {e}")))?;
            if batch.rows >= batch_rows.max(1) {
                batches.push(std::mem::replace(&mut batch, RowBatch::empty(schema)));
            }
        }
        if batch.rows > 0 {
            batches.push(batch);
        }
        Ok(batches)
    }

    /// Rows given as JSON objects keyed by column name (missing columns are errors).
    pub fn from_json_rows(
        schema: &Schema,
        rows: &[Json],
        batch_rows: usize,
    ) -> Result<Vec<RowBatch>, MlError> {
        let values = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                json_row(schema, row).map_err(|e| MlError::Row(format!("row {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        RowBatch::from_rows(schema, values, batch_rows)
    }

    /// Row `i` as values in schema order.
    pub fn row(&self, i: usize) -> Vec<Value> {
        self.columns.iter().map(|c| c.value(i)).collect()
    }

    /// Row `i` as a JSON object keyed by column name.
    pub fn json_row(&self, schema: &Schema, i: usize) -> Json {
        let mut object = Map::new();
        for (field, column) in schema.fields().iter().zip(&self.columns) {
            object.insert(field.name.clone(), column.value(i).to_json());
        }
        Json::Object(object)
    }

    /// Appends all rows of `other` (same schema).
    pub fn append(&mut self, other: RowBatch) -> Result<(), MlError> {
        if other.columns.len() != self.columns.len() {
            return Err(MlError::Row(format!(
                "cannot append a batch of {} columns to one of {}",
                other.columns.len(),
                self.columns.len()
            )));
        }
        for (a, b) in self.columns.iter_mut().zip(other.columns) {
            a.append(self.rows, b).map_err(MlError::Row)?;
        }
        self.rows += other.rows;
        Ok(())
    }

    /// Approximate bytes held.
    pub fn weight(&self) -> usize {
        self.columns.iter().map(Column::weight).sum::<usize>() + 32
    }
}

/// Reads one JSON object as values in schema order.
pub fn json_row(schema: &Schema, row: &Json) -> Result<Vec<Value>, String> {
    let Json::Object(object) = row else {
        return Err(format!("expected a JSON object, got {}", short(row)));
    };
    schema
        .fields()
        .iter()
        .map(|field| {
            let json = object
                .get(&field.name)
                .ok_or_else(|| format!("no column `{}`", field.name))?;
            Value::from_json(field.data_type, json)
                .map_err(|e| format!("column `{}`: {e}", field.name))
        })
        .collect()
}
