//! `VectorAssembler`: concatenates number and vector columns into one vector column (Flink ML's
//! `org.apache.flink.ml.feature.vectorassembler`).
//!
//! Also home of [`retain_rows`], which drops rows of a batch (`handleInvalid = skip`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{HANDLE_INVALID, INPUT_COLS, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// `inputSizes`: the size of every input column's values (1 for numbers), in `inputCols`
/// order.
pub const INPUT_SIZES: Param<Vec<i64>> = Param::new(
    "inputSizes",
    "Sizes of the input elements to be assembled.",
    None,
    ParamType::IntArray,
    Validator::NonEmptyPositiveArray,
);

stage!(
    /// Concatenates the values of `inputCols` (numbers, dense and sparse vectors, of the sizes
    /// `inputSizes`) into one vector in `outputCol`.
    ///
    /// `handleInvalid` decides what happens to a row with a NaN number or a value of another
    /// size than `inputSizes` says: `error` fails the job, `skip` drops the row, `keep`
    /// assembles it anyway (NaN stays NaN, sizes are not checked).
    ///
    /// Flink ML stores each assembled vector dense when `1.5 * nnz > size` (`nnz` counts a
    /// number as 1, a dense vector as its size and a sparse vector as its stored entries) and
    /// sparse otherwise. A Weir column holds one kind of vector, so the output column is
    /// `DenseVector` when every row is dense by that rule (no sparse input, or the dense
    /// inputs alone pass the threshold at `inputSizes`) and `SparseVector` otherwise, which
    /// stores every entry of the dense and number inputs (zeros too) and the stored entries
    /// of the sparse ones, as Flink's sparse vectors do.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{vector_assembler::INPUT_SIZES, VectorAssembler};
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, OUTPUT_COL}, WithParams};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let assembler = VectorAssembler::new()
    ///     .set(&INPUT_COLS, vec!["a".into(), "v".into()]).unwrap()
    ///     .set(&OUTPUT_COL, "features".into()).unwrap()
    ///     .set(&INPUT_SIZES, vec![1, 2]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("a", DataType::Double), ("v", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::Double(1.0), Value::DenseVector(vec![2.0, 3.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     assembler.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][2], Value::DenseVector(vec![1.0, 2.0, 3.0]));
    /// ```
    VectorAssembler,
    "org.apache.flink.ml.feature.vectorassembler.VectorAssembler",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COL.spec,
        &HANDLE_INVALID.spec,
        &INPUT_SIZES.spec
    ]
);

impl crate::param::HasInputCols for VectorAssembler {}
impl crate::param::HasOutputCol for VectorAssembler {}
impl crate::param::HasHandleInvalid for VectorAssembler {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(VectorAssembler);

/// What to do with invalid rows (`handleInvalid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Fail the job.
    Error,
    /// Drop the row.
    Skip,
    /// Keep the row.
    Keep,
}

impl Invalid {
    /// The mode of a `handleInvalid` value.
    pub(crate) fn parse(stage: &str, value: &str) -> Result<Invalid, MlError> {
        match value {
            "error" => Ok(Invalid::Error),
            "skip" => Ok(Invalid::Skip),
            "keep" => Ok(Invalid::Keep),
            other => Err(MlError::InvalidParam {
                stage: stage.to_string(),
                param: HANDLE_INVALID.name().to_string(),
                message: format!("must be one of error, skip, keep, got \"{other}\""),
            }),
        }
    }
}

/// A transformer's operator whose function may split an input batch into several output
/// batches (dense vector columns hold one size per batch, so rows that give dense vectors
/// of other sizes go to batches of their own); otherwise as `map_batches`.
pub(crate) fn flat_map_batches<'s>(
    job: &Job<'s>,
    stage: &(impl Stage + ?Sized),
    input: Table<'s>,
    schema: crate::table::Schema,
    mut f: impl FnMut(RowBatch) -> Result<Vec<RowBatch>, String> + 'static,
) -> Table<'s> {
    let name = job.unique_name(stage.short_name());
    let stream = input
        .stream
        .try_map_chunks(name, move |batches: Vec<RowBatch>| {
            let mut out = Vec::with_capacity(batches.len());
            for batch in batches {
                out.extend(f(batch)?);
            }
            Ok(out)
        });
    Table::new(schema, stream)
}

/// The batch split into runs of consecutive rows with equal `keys` (one batch, not copied,
/// when all rows have the same key).
pub(crate) fn split_runs<K: PartialEq>(batch: RowBatch, keys: &[K]) -> Vec<RowBatch> {
    let rows = batch.rows();
    let mut starts = vec![0];
    starts.extend((1..rows).filter(|i| keys[*i] != keys[i - 1]));
    if starts.len() == 1 {
        return vec![batch];
    }
    starts.push(rows);
    starts
        .windows(2)
        .map(|w| {
            let columns = batch
                .columns()
                .iter()
                .map(|c| c.slice(w[0]..w[1]))
                .collect();
            RowBatch::new(w[1] - w[0], columns)
        })
        .collect()
}

/// The batch with only the rows whose `keep` flag is set.
pub(crate) fn retain_rows(batch: RowBatch, keep: &[bool]) -> RowBatch {
    let rows = keep.iter().filter(|k| **k).count();
    if rows == batch.rows() {
        return batch;
    }
    let columns = batch
        .into_columns()
        .into_iter()
        .map(|c| retain_column(c, keep))
        .collect();
    RowBatch::new(rows, columns)
}

fn retain_column(column: Column, keep: &[bool]) -> Column {
    fn pick<T>(values: Vec<T>, keep: &[bool]) -> Vec<T> {
        values
            .into_iter()
            .zip(keep)
            .filter_map(|(v, k)| k.then_some(v))
            .collect()
    }
    match column {
        Column::Boolean(c) => Column::Boolean(pick(c, keep)),
        Column::Long(c) => Column::Long(pick(c, keep)),
        Column::Double(c) => Column::Double(pick(c, keep)),
        Column::String(c) => Column::String(c.filter(keep)),
        Column::DenseVector { dim, values } => {
            let mut out = Vec::new();
            if dim > 0 {
                for (row, k) in values.chunks_exact(dim).zip(keep) {
                    if *k {
                        out.extend_from_slice(row);
                    }
                }
            }
            Column::DenseVector { dim, values: out }
        }
        Column::SparseVector(c) => Column::SparseVector(pick(c, keep)),
        Column::StringArray(c) => Column::StringArray(pick(c, keep)),
        Column::DoubleArray(c) => Column::DoubleArray(pick(c, keep)),
        Column::DenseVectorArray(c) => Column::DenseVectorArray(pick(c, keep)),
    }
}

/// Whether `values` hold a NaN: a scan without an exit per element (which the compiler
/// vectorises), a block at a time.
fn has_nan(values: &[f64]) -> bool {
    values
        .chunks(512)
        .any(|block| block.iter().fold(false, |nan, x| nan | x.is_nan()))
}

/// The kind of an input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Number,
    Dense,
    Sparse,
}

/// One input column.
struct Input {
    column: usize,
    name: String,
    kind: Kind,
    size: usize,
}

/// The assembling operator's state.
struct Assembler {
    inputs: Vec<Input>,
    invalid: Invalid,
    dense: bool,
}

const NAN_MESSAGE: &str = "Encountered NaN while assembling a row with handleInvalid = 'error'. \
     Consider removing NaNs from dataset or using handleInvalid = 'keep' or 'skip'.";

fn size_message(name: &str, expected: usize, actual: usize) -> String {
    format!(
        "VectorAssembler: column `{name}`: Input vector/number size does not meet with \
         expected. Expected size: {expected}, actual size: {actual}."
    )
}

impl Assembler {
    /// The first invalid value of row `i` (NaN numbers, sizes other than `inputSizes`), as an
    /// error message; `None` for a valid row (or any row with `keep`).
    fn check_row(&self, batch: &RowBatch, i: usize) -> Option<String> {
        if self.invalid == Invalid::Keep {
            return None;
        }
        for input in &self.inputs {
            let col = batch.column(input.column);
            let actual = match input.kind {
                Kind::Number => {
                    if col.number(i).is_some_and(f64::is_nan) {
                        return Some(format!(
                            "VectorAssembler: column `{}`: {NAN_MESSAGE}",
                            input.name
                        ));
                    }
                    1
                }
                Kind::Dense | Kind::Sparse => col.vector(i).map_or(0, |v| v.size()),
            };
            if actual != input.size {
                return Some(size_message(&input.name, input.size, actual));
            }
        }
        None
    }

    /// Row `i` invalid: the error, or whether to drop it.
    fn reject(&self, message: String) -> Result<(), String> {
        match self.invalid {
            Invalid::Error => Err(message),
            _ => Ok(()),
        }
    }

    /// The batch with the assembled column; with `keep`, rows whose sparse inputs have
    /// other sizes than the rows before them start a new batch when the output is dense.
    fn apply(&self, batch: RowBatch) -> Result<Vec<RowBatch>, String> {
        let sparse: Vec<usize> = self
            .inputs
            .iter()
            .filter(|i| i.kind == Kind::Sparse)
            .map(|i| i.column)
            .collect();
        if !(self.dense && self.invalid == Invalid::Keep && !sparse.is_empty()) {
            return Ok(vec![self.apply_run(batch)?]);
        }
        let sizes: Vec<Vec<usize>> = (0..batch.rows())
            .map(|i| {
                sparse
                    .iter()
                    .map(|c| batch.column(*c).vector(i).map_or(0, |v| v.size()))
                    .collect()
            })
            .collect();
        let runs = split_runs(batch, &sizes);
        runs.into_iter().map(|run| self.apply_run(run)).collect()
    }

    /// The batch with the assembled column, for a batch whose rows assemble to vectors of
    /// one size when the output is dense.
    fn apply_run(&self, batch: RowBatch) -> Result<RowBatch, String> {
        let rows = batch.rows();
        let mut keep = vec![true; rows];
        let column = if self.dense {
            self.assemble_dense(&batch, &mut keep)?
        } else {
            self.assemble_sparse(&batch, &mut keep)?
        };
        let batch = retain_rows(batch, &keep);
        Ok(batch.with_column(column))
    }

    /// Number and dense inputs with every row valid (no NaN numbers unless `keep`, the sizes
    /// of `inputSizes` unless `keep`): the whole column, assembled in blocks of rows, input
    /// by input. `None` when some row needs a look of its own.
    fn assemble_plain(&self, batch: &RowBatch) -> Option<Column> {
        /// Rows per block: a block of output stays in cache while every input writes to it.
        const BLOCK: usize = 256;
        enum Source<'a> {
            Long(&'a [i64]),
            Double(&'a [f64]),
            Dense(usize, &'a [f64]),
        }
        let rows = batch.rows();
        let keep = self.invalid == Invalid::Keep;
        let mut sources = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            let source = match batch.column(input.column) {
                Column::Long(c) if keep || input.size == 1 => Source::Long(c),
                Column::Double(c) if keep || (input.size == 1 && !has_nan(c)) => {
                    Source::Double(c)
                }
                Column::DenseVector { dim, values } if keep || *dim == input.size => {
                    Source::Dense(*dim, values)
                }
                _ => return None,
            };
            sources.push(source);
        }
        let sizes: Vec<usize> = sources
            .iter()
            .map(|s| match s {
                Source::Dense(dim, _) => *dim,
                _ => 1,
            })
            .collect();
        let dim: usize = sizes.iter().sum();
        if dim == 0 {
            return Some(Column::DenseVector {
                dim,
                values: Vec::new(),
            });
        }
        // The output grows a block at a time, each block zeroed while it is in cache (not
        // the whole column first, which would be written twice through memory).
        let mut values = Vec::with_capacity(rows * dim);
        for start in (0..rows).step_by(BLOCK) {
            let filled = values.len();
            values.resize(filled + BLOCK.min(rows - start) * dim, 0.0);
            let block = &mut values[filled..];
            let mut offset = 0;
            for (source, size) in sources.iter().zip(&sizes) {
                let out = block.chunks_exact_mut(dim);
                match source {
                    Source::Long(c) => {
                        for (row, x) in out.zip(&c[start..]) {
                            row[offset] = *x as f64;
                        }
                    }
                    Source::Double(c) => {
                        for (row, x) in out.zip(&c[start..]) {
                            row[offset] = *x;
                        }
                    }
                    Source::Dense(d, c) if *d > 0 => {
                        for (row, x) in out.zip(c[start * d..].chunks_exact(*d)) {
                            row[offset..offset + d].copy_from_slice(x);
                        }
                    }
                    Source::Dense(..) => {}
                }
                offset += size;
            }
        }
        Some(Column::DenseVector { dim, values })
    }

    fn assemble_dense(&self, batch: &RowBatch, keep: &mut [bool]) -> Result<Column, String> {
        if let Some(column) = self.assemble_plain(batch) {
            return Ok(column);
        }
        let rows = batch.rows();
        // The size of every input's segment in this batch: numbers 1, dense vectors the
        // column's size, sparse vectors `inputSizes` (rows of other sizes are invalid), or
        // with `keep` the first row's size (checked on every row).
        let mut sizes = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            sizes.push(match (input.kind, batch.column(input.column)) {
                (Kind::Number, _) => 1,
                (Kind::Dense, Column::DenseVector { dim, .. }) => *dim,
                (_, col) if rows > 0 && self.invalid == Invalid::Keep => {
                    col.vector(0).map_or(0, |v| v.size())
                }
                _ => input.size,
            });
        }
        let dim: usize = sizes.iter().sum();
        let mut values = Vec::with_capacity(rows * dim);
        for (i, kept) in keep.iter_mut().enumerate() {
            if let Some(message) = self.check_row(batch, i) {
                self.reject(message)?;
                *kept = false;
                continue;
            }
            let start = values.len();
            values.resize(start + dim, 0.0);
            let out = &mut values[start..];
            let mut offset = 0;
            for (input, size) in self.inputs.iter().zip(&sizes) {
                let col = batch.column(input.column);
                match input.kind {
                    Kind::Number => out[offset] = col.number(i).unwrap_or(f64::NAN),
                    Kind::Dense | Kind::Sparse => {
                        let v = col.vector(i).ok_or_else(|| {
                            format!(
                                "VectorAssembler: column `{}` is not a vector column",
                                input.name
                            )
                        })?;
                        if v.size() != *size {
                            return Err(format!(
                                "VectorAssembler: column `{}`: with handleInvalid = 'keep', a \
                                 batch holds vectors of sizes {} and {size}, but the dense output \
                                 column holds vectors of one size",
                                input.name,
                                v.size()
                            ));
                        }
                        let segment = &mut out[offset..offset + size];
                        match v {
                            crate::table::VectorRef::Dense(d) => segment.copy_from_slice(d),
                            crate::table::VectorRef::Sparse(s) => {
                                for (j, x) in s.indices.iter().zip(&s.values) {
                                    segment[*j] = *x;
                                }
                            }
                        }
                    }
                }
                offset += size;
            }
        }
        Ok(Column::DenseVector { dim, values })
    }

    fn assemble_sparse(&self, batch: &RowBatch, keep: &mut [bool]) -> Result<Column, String> {
        let mut out = Vec::with_capacity(batch.rows());
        for (i, kept) in keep.iter_mut().enumerate() {
            if let Some(message) = self.check_row(batch, i) {
                self.reject(message)?;
                *kept = false;
                continue;
            }
            let mut nnz = 0;
            for input in &self.inputs {
                let col = batch.column(input.column);
                nnz += match (input.kind, col.vector(i)) {
                    (Kind::Number, _) | (_, None) => 1,
                    (_, Some(crate::table::VectorRef::Dense(d))) => d.len(),
                    (_, Some(crate::table::VectorRef::Sparse(s))) => s.indices.len(),
                };
            }
            let mut indices = Vec::with_capacity(nnz);
            let mut values = Vec::with_capacity(nnz);
            let mut offset = 0;
            for input in &self.inputs {
                let col = batch.column(input.column);
                match (input.kind, col.vector(i)) {
                    (Kind::Number, _) | (_, None) => {
                        indices.push(offset);
                        values.push(col.number(i).unwrap_or(f64::NAN));
                        offset += 1;
                    }
                    (_, Some(crate::table::VectorRef::Dense(d))) => {
                        indices.extend(offset..offset + d.len());
                        values.extend_from_slice(d);
                        offset += d.len();
                    }
                    (_, Some(crate::table::VectorRef::Sparse(s))) => {
                        indices.extend(s.indices.iter().map(|j| offset + j));
                        values.extend_from_slice(&s.values);
                        offset += s.size;
                    }
                }
            }
            out.push(SparseVector {
                size: offset,
                indices,
                values,
            });
        }
        Ok(Column::SparseVector(out))
    }
}

impl Stage for VectorAssembler {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let cols = self.get(&INPUT_COLS)?;
        let sizes = self.get(&INPUT_SIZES)?;
        if sizes.len() != cols.len() {
            return Err(MlError::InvalidParam {
                stage: "VectorAssembler".into(),
                param: INPUT_SIZES.name().into(),
                message: format!(
                    "must have one size per input column ({}), got {} sizes",
                    cols.len(),
                    sizes.len()
                ),
            });
        }
        let invalid = Invalid::parse("VectorAssembler", &self.get(&HANDLE_INVALID)?)?;
        let mut assembled = Vec::with_capacity(cols.len());
        for (name, size) in cols.iter().zip(&sizes) {
            let column = input.schema.typed_index(
                "VectorAssembler",
                name,
                &[
                    DataType::Long,
                    DataType::Double,
                    DataType::DenseVector,
                    DataType::SparseVector,
                ],
            )?;
            let kind = match input.schema.data_type(column) {
                DataType::DenseVector => Kind::Dense,
                DataType::SparseVector => Kind::Sparse,
                _ => Kind::Number,
            };
            assembled.push(Input {
                column,
                name: name.clone(),
                kind,
                size: *size as usize,
            });
        }
        // Every row is dense by Flink's rule (1.5 * nnz > size) when the number and dense
        // inputs alone pass it: sparse inputs only add stored entries.
        let total: usize = assembled.iter().map(|i| i.size).sum();
        let always_dense: usize = assembled
            .iter()
            .filter(|i| i.kind != Kind::Sparse)
            .map(|i| i.size)
            .sum();
        let dense = assembled.iter().all(|i| i.kind != Kind::Sparse)
            || always_dense as f64 * 1.5 > total as f64;
        let schema = input.schema.with_column(
            &self.get(&OUTPUT_COL)?,
            if dense {
                DataType::DenseVector
            } else {
                DataType::SparseVector
            },
        )?;
        let assembler = Assembler {
            inputs: assembled,
            invalid,
            dense,
        };
        Ok(vec![flat_map_batches(
            job,
            self,
            input,
            schema,
            move |batch| assembler.apply(batch),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Schema, Value};

    /// Rows `(x: Double, v: DenseVector of 2, s: SparseVector of 3)`; row 1 has a NaN number,
    /// row 2 a sparse vector of size 4.
    fn batch() -> RowBatch {
        let schema = Schema::new([
            ("x", DataType::Double),
            ("v", DataType::DenseVector),
            ("s", DataType::SparseVector),
        ]);
        let sparse =
            |size| Value::SparseVector(SparseVector::new(size, vec![1], vec![5.0]).unwrap());
        let rows = vec![
            vec![
                Value::Double(1.0),
                Value::DenseVector(vec![2.0, 3.0]),
                sparse(3),
            ],
            vec![
                Value::Double(f64::NAN),
                Value::DenseVector(vec![4.0, 5.0]),
                sparse(3),
            ],
            vec![
                Value::Double(6.0),
                Value::DenseVector(vec![7.0, 8.0]),
                sparse(4),
            ],
        ];
        RowBatch::from_rows(&schema, rows, 10).unwrap().remove(0)
    }

    fn assembler(invalid: Invalid, dense: bool) -> Assembler {
        let input = |column, name: &str, kind, size| Input {
            column,
            name: name.into(),
            kind,
            size,
        };
        Assembler {
            inputs: vec![
                input(0, "x", Kind::Number, 1),
                input(1, "v", Kind::Dense, 2),
                input(2, "s", Kind::Sparse, 3),
            ],
            invalid,
            dense,
        }
    }

    #[test]
    fn error_fails_on_nan_and_wrong_sizes() {
        let error = assembler(Invalid::Error, false).apply(batch()).unwrap_err();
        assert!(
            error.contains("column `x`") && error.contains("Encountered NaN"),
            "{error}"
        );
        let mut one = batch();
        one = retain_rows(one, &[false, false, true]);
        let error = assembler(Invalid::Error, true).apply(one).unwrap_err();
        assert!(
            error.contains("Expected size: 3, actual size: 4"),
            "{error}"
        );
    }

    #[test]
    fn skip_drops_invalid_rows() {
        for dense in [false, true] {
            let mut out = assembler(Invalid::Skip, dense).apply(batch()).unwrap();
            assert_eq!(out.len(), 1);
            let out = out.remove(0);
            assert_eq!(out.rows(), 1);
            assert_eq!(out.column(0), &Column::Double(vec![1.0]));
            let v = out.column(3).vector(0).unwrap().to_dense();
            assert_eq!(v, vec![1.0, 2.0, 3.0, 0.0, 5.0, 0.0]);
        }
    }

    #[test]
    fn keep_keeps_nan_and_other_sizes() {
        let out = assembler(Invalid::Keep, false).apply(batch()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rows(), 3);
        let row1 = out[0].column(3).vector(1).unwrap().to_dense();
        assert!(row1[0].is_nan());
        assert_eq!(out[0].column(3).vector(2).unwrap().size(), 7);
        // A dense output column holds one size: the row of another size gets a batch.
        let out = assembler(Invalid::Keep, true).apply(batch()).unwrap();
        assert_eq!(
            out.iter().map(RowBatch::rows).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(
            out[1].column(3),
            &Column::DenseVector {
                dim: 7,
                values: vec![6.0, 7.0, 8.0, 0.0, 5.0, 0.0, 0.0]
            }
        );
    }

    /// The block path (numbers and dense vectors) gives what the row path gives.
    #[test]
    fn block_path_matches_row_path() {
        let rows = 600;
        let schema = Schema::new([
            ("n", DataType::Long),
            ("v", DataType::DenseVector),
            ("x", DataType::Double),
        ]);
        let data = (0..rows)
            .map(|i| {
                vec![
                    Value::Long(i as i64),
                    Value::DenseVector(vec![i as f64 * 0.5, -(i as f64)]),
                    Value::Double(i as f64 / 7.0),
                ]
            })
            .collect();
        let batch = RowBatch::from_rows(&schema, data, rows).unwrap().remove(0);
        let input = |column, kind, size| Input {
            column,
            name: "c".into(),
            kind,
            size,
        };
        let a = Assembler {
            inputs: vec![
                input(2, Kind::Number, 1),
                input(1, Kind::Dense, 2),
                input(0, Kind::Number, 1),
            ],
            invalid: Invalid::Error,
            dense: true,
        };
        let block = a.assemble_plain(&batch).unwrap();
        let Column::DenseVector { dim, values } = &block else {
            panic!("a dense column")
        };
        assert_eq!(*dim, 4);
        for i in 0..rows {
            let f = i as f64;
            assert_eq!(&values[i * 4..i * 4 + 4], &[f / 7.0, f * 0.5, -f, f]);
        }
        // A NaN number takes the row path, which fails on it.
        let mut nan = batch.clone().into_columns();
        nan[2] = Column::Double(
            (0..rows)
                .map(|i| if i == 300 { f64::NAN } else { 1.0 })
                .collect(),
        );
        let nan = RowBatch::new(rows, nan);
        assert!(a.assemble_plain(&nan).is_none());
        assert!(a.apply(nan).unwrap_err().contains("Encountered NaN"));
    }
}
