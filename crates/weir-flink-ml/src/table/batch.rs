//! A batch of rows stored column by column: the record type that flows through a table's
//! dataflow stream.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value as Json};

use super::column::Column;
use super::schema::Schema;
use super::value::{short, Value};
use crate::error::MlError;

/// Rows of a table, column by column (in the table's schema order).
///
/// Each column is shared between clones and copied on write: a stream that feeds several
/// operators (a table fitted and transformed in one job) hands each a clone of every batch,
/// and those clones cost a reference count per column, not a copy of the rows. Appending a
/// column ([`RowBatch::with_column`], what every transformer does) copies nothing;
/// changing the rows ([`RowBatch::push_row`], [`RowBatch::append`]) copies a column only
/// while another clone still holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RowBatch {
    rows: usize,
    columns: Vec<Arc<Column>>,
}

/// The serialised form of a batch (as `#[derive(Serialize)]` of `{rows, columns}` gives).
#[derive(Serialize)]
#[serde(rename = "RowBatch")]
struct BatchRef<'a> {
    rows: usize,
    columns: ColumnsRef<'a>,
}

/// Shared columns serialised as the list of the columns.
struct ColumnsRef<'a>(&'a [Arc<Column>]);

impl Serialize for ColumnsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|c| &**c))
    }
}

/// What [`BatchRef`] deserialises into.
#[derive(Deserialize)]
#[serde(rename = "RowBatch")]
struct BatchOwned {
    rows: usize,
    columns: Vec<Column>,
}

impl Serialize for RowBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BatchRef {
            rows: self.rows,
            columns: ColumnsRef(&self.columns),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RowBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let BatchOwned { rows, columns } = BatchOwned::deserialize(deserializer)?;
        Ok(RowBatch::new(rows, columns))
    }
}

impl RowBatch {
    /// A batch of `rows` rows from columns of that length.
    pub fn new(rows: usize, columns: Vec<Column>) -> RowBatch {
        RowBatch {
            rows,
            columns: columns.into_iter().map(Arc::new).collect(),
        }
    }

    /// An empty batch for `schema`.
    pub fn empty(schema: &Schema) -> RowBatch {
        RowBatch::new(
            0,
            schema
                .fields()
                .iter()
                .map(|f| Column::empty(f.data_type))
                .collect(),
        )
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns (each shared with the batch's clones).
    pub fn columns(&self) -> &[Arc<Column>] {
        &self.columns
    }

    /// Column `i`.
    pub fn column(&self, i: usize) -> &Column {
        &self.columns[i]
    }

    /// Takes the columns out (to build an output batch without copying; a column is copied
    /// if a clone of this batch still holds it).
    pub fn into_columns(self) -> Vec<Column> {
        self.columns
            .into_iter()
            .map(|c| Arc::try_unwrap(c).unwrap_or_else(|shared| (*shared).clone()))
            .collect()
    }

    /// This batch with `column` (of `rows()` rows) appended; the other columns stay shared
    /// with the batch's clones.
    pub fn with_column(mut self, column: Column) -> RowBatch {
        self.columns.push(Arc::new(column));
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
            Arc::make_mut(column)
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
            // Dense vectors of one column have one size within a batch: a row whose vector
            // sizes differ from the batch's starts a new batch (tables may mix sizes).
            if batch.rows > 0 && !batch.same_vector_sizes(&row) {
                batches.push(std::mem::replace(&mut batch, RowBatch::empty(schema)));
            }
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

    /// Whether the dense vectors of `row` have the sizes of this batch's dense vector columns.
    fn same_vector_sizes(&self, row: &[Value]) -> bool {
        self.columns()
            .iter()
            .zip(row)
            .all(|(column, value)| match (&**column, value) {
                (Column::DenseVector { dim, .. }, Value::DenseVector(v)) => v.len() == *dim,
                _ => true,
            })
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
        for (field, column) in schema.fields().iter().zip(self.columns.iter()) {
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
        let other_rows = other.rows;
        for (a, b) in self.columns.iter_mut().zip(other.into_columns()) {
            Arc::make_mut(a)
                .append(self.rows, b)
                .map_err(MlError::Row)?;
        }
        self.rows += other_rows;
        Ok(())
    }

    /// Rows `range` of the batch, copied.
    ///
    /// ```
    /// use weir_flink_ml::table::{Column, RowBatch};
    /// let batch = RowBatch::new(3, vec![Column::Long(vec![1, 2, 3])]);
    /// assert_eq!(batch.slice(1..3).column(0), &Column::Long(vec![2, 3]));
    /// ```
    pub fn slice(&self, range: std::ops::Range<usize>) -> RowBatch {
        let rows = range.len();
        RowBatch::new(
            rows,
            self.columns
                .iter()
                .map(|c| c.slice(range.clone()))
                .collect(),
        )
    }

    /// Approximate bytes held.
    pub fn weight(&self) -> usize {
        self.columns.iter().map(|c| c.weight()).sum::<usize>() + 32
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::DataType;

    fn batch() -> RowBatch {
        RowBatch::new(
            2,
            vec![
                Column::Double(vec![1.0, 2.0]),
                Column::DenseVector {
                    dim: 2,
                    values: vec![1.0, 2.0, 3.0, 4.0],
                },
            ],
        )
    }

    #[test]
    fn clones_share_columns_and_copy_on_write() {
        let a = batch();
        let b = a.clone();
        assert!(
            a.columns()
                .iter()
                .zip(b.columns())
                .all(|(x, y)| Arc::ptr_eq(x, y)),
            "a clone shares the columns"
        );
        let c = b.clone().with_column(Column::Long(vec![7, 8]));
        assert_eq!(
            (a.columns().len(), b.columns().len(), c.columns().len()),
            (2, 2, 3)
        );
        assert_eq!(a, b);
        // The last holder changes the columns in place.
        let ptr = c.column(0) as *const Column;
        let d = c.with_column(Column::Boolean(vec![true, false]));
        assert!(std::ptr::eq(ptr, d.column(0)));
        assert_eq!(b.into_columns().len(), 2);
        let mut e = a.clone();
        let schema = Schema::new([("x", DataType::Double), ("v", DataType::DenseVector)]);
        e.push_row(
            &schema,
            vec![Value::Double(3.0), Value::DenseVector(vec![5.0, 6.0])],
        )
        .unwrap();
        assert_eq!((a.rows(), e.rows()), (2, 3));
        e.append(a.clone()).unwrap();
        assert_eq!(e.rows(), 5);
        assert_eq!(a, batch());
    }

    #[test]
    fn serialises_as_rows_and_columns() {
        let json = serde_json::to_value(batch()).unwrap();
        assert_eq!(json["rows"], 2);
        assert_eq!(json["columns"].as_array().unwrap().len(), 2);
        let back: RowBatch = serde_json::from_value(json).unwrap();
        assert_eq!(back, batch());
    }
}
