//! `Table`: a schema plus a dataflow stream of row batches, the unit that stages consume and
//! produce (Flink's `Table`), and the ways in and out of a job.

use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value as Json;
use weir_core::{Collector, DataStream, Job, Op};

use super::batch::RowBatch;
use super::schema::Schema;
use super::value::Value;
use crate::error::MlError;

/// Rows per batch when a table is made from rows in memory.
pub const DEFAULT_BATCH_ROWS: usize = 4096;

/// A table inside a job: its schema (known when the job is built) and its rows, as a stream
/// of [`RowBatch`]es in that schema.
#[derive(Clone)]
pub struct Table<'s> {
    /// The columns.
    pub schema: Schema,
    /// The rows.
    pub stream: DataStream<'s, RowBatch>,
}

impl<'s> Table<'s> {
    /// A table of a stream of batches in `schema`.
    pub fn new(schema: Schema, stream: DataStream<'s, RowBatch>) -> Table<'s> {
        Table { schema, stream }
    }

    /// A bounded table of batches (a source named `op`).
    pub fn from_batches(
        job: &mut Job<'s>,
        op: impl Into<Op>,
        schema: Schema,
        batches: Vec<RowBatch>,
    ) -> Table<'s> {
        let stream = job.from_vec(op, batches);
        Table { schema, stream }
    }

    /// A bounded table of rows of values (in schema order).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("x", DataType::Double)]);
    ///     let rows = (0..10).map(|i| vec![Value::Double(i as f64)]).collect();
    ///     Table::from_rows(job, "numbers", schema, rows).unwrap().collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.rows().len(), 10);
    /// ```
    pub fn from_rows(
        job: &mut Job<'s>,
        op: impl Into<Op>,
        schema: Schema,
        rows: Vec<Vec<Value>>,
    ) -> Result<Table<'s>, MlError> {
        let batches = RowBatch::from_rows(&schema, rows, DEFAULT_BATCH_ROWS)?;
        Ok(Table::from_batches(job, op, schema, batches))
    }

    /// A bounded table of JSON objects keyed by column name.
    pub fn from_json_rows(
        job: &mut Job<'s>,
        op: impl Into<Op>,
        schema: Schema,
        rows: &[Json],
    ) -> Result<Table<'s>, MlError> {
        let batches = RowBatch::from_json_rows(&schema, rows, DEFAULT_BATCH_ROWS)?;
        Ok(Table::from_batches(job, op, schema, batches))
    }

    /// A bounded table of typed records, converted with serde: each record's fields are
    /// matched to the schema's columns by name.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector};
    /// #[derive(Serialize, Deserialize, Debug, PartialEq)]
    /// struct Point { id: i64, features: Vec<f64> }
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("id", DataType::Long), ("features", DataType::DenseVector)]);
    ///     let points = vec![Point { id: 1, features: vec![0.5, 1.0] }];
    ///     Table::from_records(job, "points", schema, &points).unwrap().collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// let back: Vec<Point> = out.records().unwrap();
    /// assert_eq!(back, vec![Point { id: 1, features: vec![0.5, 1.0] }]);
    /// ```
    pub fn from_records<T: Serialize>(
        job: &mut Job<'s>,
        op: impl Into<Op>,
        schema: Schema,
        records: &[T],
    ) -> Result<Table<'s>, MlError> {
        let rows = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::to_value(r).map_err(|e| MlError::Row(format!("record {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Table::from_json_rows(job, op, schema, &rows)
    }

    /// A table of a stream of typed records, converted with serde as in
    /// [`Table::from_records`]: each epoch's records become row batches (operator `op`, at
    /// the stream's parallelism), so that a running job's records (predictions, say) go on
    /// into stages and evaluators. A record that does not fit the schema fails the job,
    /// naming the record's place in its epoch and the column.
    ///
    /// ```
    /// use serde::Serialize;
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector};
    /// #[derive(Clone, Debug, Serialize, serde::Deserialize)]
    /// struct Scored { label: f64, prediction: f64 }
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let scored = job.from_vec("scored", vec![Scored { label: 1.0, prediction: 0.0 }; 10]);
    ///     let schema = Schema::new([("label", DataType::Double), ("prediction", DataType::Double)]);
    ///     Table::from_stream("to_table", schema, scored).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.rows().len(), 10);
    /// ```
    pub fn from_stream<T: weir_core::Data + Serialize>(
        op: impl Into<Op>,
        schema: Schema,
        records: DataStream<'s, T>,
    ) -> Table<'s> {
        let batch_schema = schema.clone();
        let stream = records.try_map_batch(op, move |records: Vec<T>| {
            let rows = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    serde_json::to_value(r).map_err(|e| format!("record {i} of its epoch: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            RowBatch::from_json_rows(&batch_schema, &rows, DEFAULT_BATCH_ROWS)
                .map_err(|e| e.to_string())
        });
        Table { schema, stream }
    }

    /// Sends the table's batches to `collector` (the schema goes with them).
    pub fn collect(self, op: impl Into<Op>, collector: &TableCollector) {
        *collector.schema.lock().expect("schema lock") = Some(self.schema.clone());
        self.stream.collect(op, &collector.batches);
    }
}

/// Collects a table's rows from every worker of a job (for tests and small results).
#[derive(Clone, Default)]
pub struct TableCollector {
    schema: Arc<Mutex<Option<Schema>>>,
    batches: Collector<RowBatch>,
}

impl TableCollector {
    /// An empty collector.
    pub fn new() -> TableCollector {
        TableCollector::default()
    }

    /// The collected table's schema (after the job was built).
    pub fn schema(&self) -> Option<Schema> {
        self.schema.lock().expect("schema lock").clone()
    }

    /// The batches collected, in arrival order.
    pub fn batches(&self) -> Vec<RowBatch> {
        self.batches.take()
    }

    /// The rows collected, as values in schema order (arrival order: sort them in tests
    /// with parallelism above 1).
    pub fn rows(&self) -> Vec<Vec<Value>> {
        self.batches
            .take()
            .iter()
            .flat_map(|b| (0..b.rows()).map(move |i| b.row(i)))
            .collect()
    }

    /// The rows as JSON objects keyed by column name.
    pub fn json_rows(&self) -> Vec<Json> {
        let schema = self.schema().unwrap_or_default();
        self.batches
            .take()
            .iter()
            .flat_map(|b| {
                (0..b.rows())
                    .map(|i| b.json_row(&schema, i))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The rows as typed records (serde, fields matched by column name).
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<T>, MlError> {
        self.json_rows()
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                serde_json::from_value(row).map_err(|e| MlError::Row(format!("row {i}: {e}")))
            })
            .collect()
    }
}
