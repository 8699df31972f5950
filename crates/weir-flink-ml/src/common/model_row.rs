//! Model data of one row, written and read column by column (no JSON in between, so
//! infinities and NaNs survive).

use crate::table::{Column, RowBatch, Schema};

/// A one-cell dense vector column.
pub(crate) fn dense_cell(values: Vec<f64>) -> Column {
    Column::DenseVector {
        dim: values.len(),
        values,
    }
}

/// The single row of a model data table, read by column name straight from the columns (no
/// JSON, so infinities and NaNs survive).
pub(crate) struct ModelRow<'a> {
    stage: &'static str,
    schema: &'a Schema,
    batch: &'a RowBatch,
    row: usize,
}

impl<'a> ModelRow<'a> {
    /// The one row of `batches`, or an error naming `stage` if there are none or several.
    pub(crate) fn single(
        stage: &'static str,
        schema: &'a Schema,
        batches: &'a [RowBatch],
    ) -> Result<Self, String> {
        let rows: usize = batches.iter().map(RowBatch::rows).sum();
        match rows {
            1 => {
                let batch = batches.iter().find(|b| b.rows() == 1).expect("one row");
                Ok(ModelRow {
                    stage,
                    schema,
                    batch,
                    row: 0,
                })
            }
            0 => Err(format!(
                "{stage}: the model data is empty (was the fit input empty?)"
            )),
            n => Err(format!("{stage}: expected one model data row, got {n}")),
        }
    }

    /// The cell of column `name`.
    pub(crate) fn column(&self, name: &str) -> Result<&'a Column, String> {
        let i = self
            .schema
            .index_of(name)
            .map_err(|e| format!("{}: model data: {e}", self.stage))?;
        Ok(self.batch.column(i))
    }

    fn wrong(&self, name: &str, expected: &str) -> String {
        format!(
            "{}: model data column `{name}` must be {expected}",
            self.stage
        )
    }

    /// A vector (dense or sparse) cell, as a dense vector.
    pub(crate) fn vector(&self, name: &str) -> Result<Vec<f64>, String> {
        self.column(name)?
            .vector(self.row)
            .map(|v| v.to_dense())
            .ok_or_else(|| self.wrong(name, "a vector"))
    }

    /// A number cell.
    pub(crate) fn number(&self, name: &str) -> Result<f64, String> {
        self.column(name)?
            .number(self.row)
            .ok_or_else(|| self.wrong(name, "a number"))
    }

    /// A `Double[]` cell (a dense vector cell is accepted too).
    pub(crate) fn doubles(&self, name: &str) -> Result<Vec<f64>, String> {
        match self.column(name)? {
            Column::DoubleArray(c) => Ok(c[self.row].clone()),
            c => c
                .vector(self.row)
                .map(|v| v.to_dense())
                .ok_or_else(|| self.wrong(name, "an array of numbers")),
        }
    }

    /// A `String[]` cell.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        match self.column(name)? {
            Column::StringArray(c) => Ok(c[self.row].clone()),
            _ => Err(self.wrong(name, "an array of strings")),
        }
    }

    /// A `DenseVector[]` cell.
    pub(crate) fn vectors(&self, name: &str) -> Result<Vec<Vec<f64>>, String> {
        match self.column(name)? {
            Column::DenseVectorArray(c) => Ok(c[self.row].clone()),
            _ => Err(self.wrong(name, "an array of dense vectors")),
        }
    }
}
