//! `Interaction`: the flattened outer product of number and vector columns (Flink ML's
//! `org.apache.flink.ml.feature.interaction`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COLS, OUTPUT_COL};
use crate::param::WithParams;
use crate::table::{Column, DataType, RowBatch, SparseVector, Table, VectorRef};

stage!(
    /// The interaction of `inputCols` (numbers and vectors) in `outputCol`: every product of
    /// one element of each input, the first input's element varying slowest, e.g.
    /// `[1, 2] x [3, 4] = [3, 4, 6, 8]` and `2 x [3, 4] = [6, 8]`.
    ///
    /// With a sparse input, the output is a sparse vector of the product of the sizes that
    /// stores the products of stored elements (a dense input's elements and numbers count as
    /// stored); otherwise it is dense. Numbers may be `Long`, `Double` or `String` columns of
    /// numbers (Flink ML parses them).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::Interaction;
    /// use weir_flink_ml::param::{shared::INPUT_COLS, WithParams};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let interaction = Interaction::new()
    ///     .set(&INPUT_COLS, vec!["a".into(), "b".into()]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("a", DataType::DenseVector), ("b", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![1.0, 2.0]), Value::DenseVector(vec![3.0, 4.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     interaction.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][2], Value::DenseVector(vec![3.0, 4.0, 6.0, 8.0]));
    /// ```
    Interaction,
    "org.apache.flink.ml.feature.interaction.Interaction",
    [&INPUT_COLS.spec, &OUTPUT_COL.spec]
);

impl crate::param::HasInputCols for Interaction {}
impl crate::param::HasOutputCol for Interaction {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Interaction);

/// One input's value in a row.
enum Part<'a> {
    Number(f64),
    Dense(&'a [f64]),
    Sparse(&'a SparseVector),
}

/// Row `i` of input column `col` (named `name`).
fn part<'a>(name: &str, col: &'a Column, i: usize) -> Result<Part<'a>, String> {
    Ok(match col {
        Column::Long(c) => Part::Number(c[i] as f64),
        Column::Double(c) => Part::Number(c[i]),
        Column::String(c) => Part::Number(c[i].trim().parse().map_err(|_| {
            format!(
                "Interaction: column `{name}` holds \"{}\", which is not a number",
                &c[i]
            )
        })?),
        col => match col.vector(i) {
            Some(VectorRef::Dense(v)) => Part::Dense(v),
            Some(VectorRef::Sparse(v)) => Part::Sparse(v),
            None => {
                return Err(format!(
                    "Interaction: column `{name}` is a {} column, not numbers or vectors",
                    col.data_type()
                ))
            }
        },
    })
}

/// The operator's state: the input columns and scratch buffers.
struct Interact {
    columns: Vec<(usize, String)>,
    sparse: bool,
    scratch: Scratch,
}

/// The products so far and the next ones.
#[derive(Default)]
struct Scratch {
    values: Vec<f64>,
    next_values: Vec<f64>,
    indices: Vec<usize>,
    next_indices: Vec<usize>,
}

impl Scratch {
    /// The dense interaction of row `i` into `self.values` (Flink's order of products: the
    /// last input's element times the one before, and so on).
    fn dense_row(
        &mut self,
        columns: &[(usize, String)],
        batch: &RowBatch,
        i: usize,
    ) -> Result<(), String> {
        self.values.clear();
        self.values.push(1.0);
        for (column, name) in columns.iter().rev() {
            let slice: &[f64] = match part(name, batch.column(*column), i)? {
                Part::Number(x) => &[x],
                Part::Dense(v) => v,
                Part::Sparse(_) => unreachable!("dense interaction of a sparse column"),
            };
            self.next_values.clear();
            for x in slice {
                self.next_values.extend(self.values.iter().map(|v| v * x));
            }
            std::mem::swap(&mut self.values, &mut self.next_values);
        }
        Ok(())
    }

    /// Appends to the next products those of the current ones (of size `size`) with the
    /// elements `stored` of the input before.
    fn extend_sparse(&mut self, size: usize, stored: impl Iterator<Item = (usize, f64)>) {
        for (j, x) in stored {
            self.next_indices
                .extend(self.indices.iter().map(|k| j * size + k));
            self.next_values.extend(self.values.iter().map(|v| v * x));
        }
    }

    /// The sparse interaction of row `i`.
    fn sparse_row(
        &mut self,
        columns: &[(usize, String)],
        batch: &RowBatch,
        i: usize,
    ) -> Result<SparseVector, String> {
        self.values.clear();
        self.values.push(1.0);
        self.indices.clear();
        self.indices.push(0);
        let mut size = 1usize;
        for (column, name) in columns.iter().rev() {
            self.next_values.clear();
            self.next_indices.clear();
            let n = match part(name, batch.column(*column), i)? {
                Part::Number(x) => {
                    self.extend_sparse(size, std::iter::once((0, x)));
                    1
                }
                Part::Dense(v) => {
                    self.extend_sparse(size, v.iter().copied().enumerate());
                    v.len()
                }
                Part::Sparse(v) => {
                    let stored = v.indices.iter().copied().zip(v.values.iter().copied());
                    self.extend_sparse(size, stored);
                    v.size
                }
            };
            size = size.checked_mul(n).ok_or_else(|| {
                "Interaction: the product of the input sizes overflows".to_string()
            })?;
            std::mem::swap(&mut self.values, &mut self.next_values);
            std::mem::swap(&mut self.indices, &mut self.next_indices);
        }
        Ok(SparseVector {
            size,
            indices: self.indices.clone(),
            values: self.values.clone(),
        })
    }
}

impl Interact {
    /// The products of number columns only, column by column (`None` if some input is not
    /// a `Long` or `Double` column); in Flink's order: the last input times the one before.
    fn numbers(&self, batch: &RowBatch) -> Option<Column> {
        let mut product: Option<Vec<f64>> = None;
        for (column, _) in self.columns.iter().rev() {
            match (batch.column(*column), product.as_mut()) {
                (Column::Double(c), None) => product = Some(c.clone()),
                (Column::Long(c), None) => product = Some(c.iter().map(|x| *x as f64).collect()),
                (Column::Double(c), Some(p)) => p.iter_mut().zip(c).for_each(|(p, x)| *p *= x),
                (Column::Long(c), Some(p)) => {
                    p.iter_mut().zip(c).for_each(|(p, x)| *p *= *x as f64)
                }
                _ => return None,
            }
        }
        product.map(|values| Column::DenseVector { dim: 1, values })
    }

    fn apply(&mut self, batch: RowBatch) -> Result<RowBatch, String> {
        if let Some(column) = self.numbers(&batch) {
            return Ok(batch.with_column(column));
        }
        let (columns, scratch) = (&self.columns, &mut self.scratch);
        let rows = batch.rows();
        let column = if self.sparse {
            let mut out = Vec::with_capacity(rows);
            for i in 0..rows {
                out.push(scratch.sparse_row(columns, &batch, i)?);
            }
            Column::SparseVector(out)
        } else {
            let mut dim = 0;
            let mut out = Vec::new();
            for i in 0..rows {
                scratch.dense_row(columns, &batch, i)?;
                if i == 0 {
                    dim = scratch.values.len();
                    out.reserve(rows * dim);
                }
                out.extend_from_slice(&scratch.values);
            }
            Column::DenseVector { dim, values: out }
        };
        Ok(batch.with_column(column))
    }
}

impl Stage for Interaction {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let mut columns = Vec::new();
        let mut sparse = false;
        for name in self.get(&INPUT_COLS)? {
            let column = input.schema.typed_index(
                "Interaction",
                &name,
                &[
                    DataType::Long,
                    DataType::Double,
                    DataType::String,
                    DataType::DenseVector,
                    DataType::SparseVector,
                ],
            )?;
            sparse |= input.schema.data_type(column) == DataType::SparseVector;
            columns.push((column, name));
        }
        let schema = input.schema.with_column(
            &self.get(&OUTPUT_COL)?,
            if sparse {
                DataType::SparseVector
            } else {
                DataType::DenseVector
            },
        )?;
        let mut interact = Interact {
            columns,
            sparse,
            scratch: Scratch::default(),
        };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            interact.apply(batch)
        })])
    }
}
