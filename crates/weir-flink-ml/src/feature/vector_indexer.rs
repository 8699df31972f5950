//! `VectorIndexer`: finds the elements of a vector that take few distinct values
//! (categorical features) and replaces their values by category indices (Flink ML's
//! `org.apache.flink.ml.feature.vectorindexer`).

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use weir_core::Job;

use super::k_bins_discretizer::java_binary_search;
use crate::common::model_row::ModelRow;
use crate::common::vector_columns::{dense_rows, first_size};
use super::robust_scaler::java_compare;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{HANDLE_INVALID, INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, SparseVector, Table};

/// `maxCategories`: elements with more distinct values than this are continuous.
pub const MAX_CATEGORIES: Param<i64> = Param::new(
    "maxCategories",
    "Threshold for the number of values a categorical feature can take (>= 2). If a feature is \
     found to have > maxCategories values, then it is declared continuous.",
    Some("20"),
    ParamType::Int,
    Validator::GtEq(2.0),
);

stage!(
    /// Fits a [`VectorIndexerModel`]: every element of `inputCol` (dense or sparse vectors
    /// of one size) with at most `maxCategories` distinct values is categorical; its values
    /// get indices in ascending order, except that 0.0 (if present) gets index 0.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{vector_indexer::MAX_CATEGORIES, VectorIndexer};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[-1.0, 0.5], [0.0, 1.5], [1.0, 2.5]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows[..1].to_vec())?;
    ///     let indexer = VectorIndexer::new().set(&MAX_CATEGORIES, 2)?;
    ///     let fitted = indexer.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Both elements have 3 distinct values: more than 2, so both stay continuous.
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![-1.0, 0.5]));
    /// ```
    VectorIndexer,
    "org.apache.flink.ml.feature.vectorindexer.VectorIndexer",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &HANDLE_INVALID.spec,
        &MAX_CATEGORIES.spec,
    ]
);

model!(
    /// Replaces the values of the categorical elements of `inputCol` by their indices in
    /// `outputCol` (the input's vector type; continuous elements are copied). An unseen
    /// value fails the job (`handleInvalid` `error`), drops the row (`skip`) or gets the
    /// index after the last (`keep`).
    VectorIndexerModel,
    "org.apache.flink.ml.feature.vectorindexer.VectorIndexerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &HANDLE_INVALID.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(VectorIndexer, VectorIndexerModel);

/// The model data: one row. Flink's `categoryMaps` (element index -> value -> category
/// index) is stored as two columns, since tables have no map type: `columnIndices` (the
/// categorical elements, ascending) and `categories` (per such element, its values in
/// category index order).
#[derive(Clone, Debug, PartialEq)]
pub struct VectorIndexerModelData {
    /// The categorical elements, ascending.
    pub column_indices: Vec<usize>,
    /// For each, its values: value `categories[k][i]` has category index `i`.
    pub categories: Vec<Vec<f64>>,
}

impl VectorIndexerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([
            ("columnIndices", DataType::DoubleArray),
            ("categories", DataType::DenseVectorArray),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                Column::DoubleArray(vec![self
                    .column_indices
                    .iter()
                    .map(|&i| i as f64)
                    .collect()]),
                Column::DenseVectorArray(vec![self.categories.clone()]),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        const STAGE: &str = "VectorIndexerModel";
        let row = ModelRow::single(STAGE, schema, batches)?;
        let column_indices =
            super::variance_threshold_selector::indices_of(STAGE, &row.doubles("columnIndices")?)?;
        let categories = row.vectors("categories")?;
        if column_indices.len() != categories.len() {
            return Err(format!(
                "{STAGE}: the model data has {} column indices but {} category lists",
                column_indices.len(),
                categories.len()
            ));
        }
        Ok(VectorIndexerModelData {
            column_indices,
            categories,
        })
    }
}

/// Java `Double` equality as a key: bits, with every NaN the same.
fn key(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// Per element the distinct values seen (`None`: more than `maxCategories`), and the
/// first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Distinct {
    dim: Option<usize>,
    values: Vec<Option<FxHashSet<u64>>>,
    error: Option<String>,
}

fn size_error(size: usize, expected: usize) -> String {
    format!(
        "VectorIndexer: the size of the all input vectors should be the same ({size} elements, \
         expected {expected})"
    )
}

impl Distinct {
    fn fold(&mut self, column: usize, batch: &RowBatch, max: usize) {
        if self.error.is_some() {
            return;
        }
        let Some(size) = first_size(batch, column) else {
            return;
        };
        let dim = *self.dim.get_or_insert(size);
        if self.values.len() != dim {
            self.values = vec![Some(FxHashSet::default()); dim];
        }
        let values = &mut self.values;
        let result = dense_rows("VectorIndexer", batch, column, dim, |_, x| {
            for (set, &v) in values.iter_mut().zip(x) {
                if let Some(s) = set {
                    s.insert(key(v));
                    if s.len() > max {
                        *set = None;
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.error = Some(e.replace(
                "VectorIndexer: the input vectors have",
                "VectorIndexer: the size of the all input vectors should be the same: got",
            ));
        }
    }

    fn merge(&mut self, other: Distinct, max: usize) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() || self.dim.is_none() {
            *self = other;
            return;
        }
        let (Some(dim), Some(other_dim)) = (self.dim, other.dim) else {
            return;
        };
        if dim != other_dim {
            self.error = Some(size_error(other_dim, dim));
            return;
        }
        for (a, b) in self.values.iter_mut().zip(other.values) {
            match (a.as_mut(), b) {
                (Some(x), Some(y)) => {
                    x.extend(y);
                    if x.len() > max {
                        *a = None;
                    }
                }
                _ => *a = None,
            }
        }
    }

    fn finish(self) -> Result<VectorIndexerModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.dim.is_none() {
            return Err("VectorIndexer: the training set is empty".into());
        }
        let mut data = VectorIndexerModelData {
            column_indices: Vec::new(),
            categories: Vec::new(),
        };
        for (j, set) in self.values.into_iter().enumerate() {
            let Some(set) = set else { continue };
            let mut values: Vec<f64> = set.into_iter().map(f64::from_bits).collect();
            values.sort_by(|a, b| java_compare(*a, *b));
            // 0.0, if there, goes first (Flink's shifting loop).
            let mut index0 = java_binary_search(&values, 0.0);
            while index0 > 0 {
                values[index0 as usize] = values[index0 as usize - 1];
                index0 -= 1;
            }
            if index0 == 0 {
                values[0] = 0.0;
            }
            data.column_indices.push(j);
            data.categories.push(values);
        }
        Ok(data)
    }
}

impl Stage for VectorIndexer {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "VectorIndexer",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let max = usize::try_from(self.get(&MAX_CATEGORIES)?).unwrap_or(usize::MAX);
        let mut model = VectorIndexerModel::new();
        model.params.copy_existing_from(&self.params)?;
        let data = fit_aggregate(
            job,
            self,
            input,
            VectorIndexerModelData::schema(),
            Distinct::default,
            move |acc, batch| acc.fold(column, &batch, max),
            move |acc, other| acc.merge(other, max),
            |acc| Ok(acc.finish()?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

/// What to do with a value a categorical element did not have in training.
#[derive(Clone, Copy, PartialEq)]
enum Invalid {
    Error,
    Skip,
    Keep,
}

/// The decoded model: per categorical element (ascending), its value -> index map.
struct Mappings {
    columns: Vec<(usize, FxHashMap<u64, f64>)>,
    invalid: Invalid,
}

impl Mappings {
    fn new(data: VectorIndexerModelData, invalid: Invalid) -> Mappings {
        let mut columns: Vec<(usize, FxHashMap<u64, f64>)> = data
            .column_indices
            .into_iter()
            .zip(data.categories)
            .map(|(j, values)| {
                let map = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| (key(v), i as f64))
                    .collect();
                (j, map)
            })
            .collect();
        columns.sort_by_key(|c| c.0);
        Mappings { columns, invalid }
    }

    /// The index of `value` in `map`, `None` to drop the row.
    fn index(&self, map: &FxHashMap<u64, f64>, value: f64) -> Result<Option<f64>, String> {
        if let Some(&i) = map.get(&key(value)) {
            return Ok(Some(i));
        }
        match self.invalid {
            Invalid::Skip => Ok(None),
            Invalid::Keep => Ok(Some(map.len() as f64)),
            Invalid::Error => Err(format!(
                "VectorIndexerModel: the input contains unseen double: {}. See handleInvalid \
                 parameter for more options",
                java_double_string(value)
            )),
        }
    }

    fn check_size(&self, size: usize) -> Result<(), String> {
        match self.columns.last() {
            Some(&(j, _)) if j >= size => Err(format!(
                "VectorIndexerModel: the input vectors have {size} elements, but element {j} is \
                 categorical"
            )),
            _ => Ok(()),
        }
    }

    fn apply(&self, column: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let rows = batch.rows();
        let mut keep = vec![true; rows];
        let out = match batch.column(column) {
            Column::DenseVector { dim, values } => {
                if rows > 0 {
                    self.check_size(*dim)?;
                }
                let mut out = values.clone();
                if *dim > 0 {
                    for (row, y) in out.chunks_exact_mut(*dim).enumerate() {
                        for (j, map) in &self.columns {
                            match self.index(map, y[*j])? {
                                Some(i) => y[*j] = i,
                                None => {
                                    keep[row] = false;
                                    break;
                                }
                            }
                        }
                    }
                }
                Column::DenseVector {
                    dim: *dim,
                    values: out,
                }
            }
            Column::SparseVector(c) => {
                let mut out = Vec::with_capacity(c.len());
                for (row, v) in c.iter().enumerate() {
                    self.check_size(v.size)?;
                    let mut y = v.clone();
                    for (j, map) in &self.columns {
                        let pos = y.indices.binary_search(j);
                        let x = pos.map_or(0.0, |p| y.values[p]);
                        match self.index(map, x)? {
                            Some(i) => sparse_set(&mut y, pos, *j, i),
                            None => {
                                keep[row] = false;
                                break;
                            }
                        }
                    }
                    out.push(y);
                }
                Column::SparseVector(out)
            }
            other => {
                return Err(format!(
                    "VectorIndexerModel: expected a vector column, got a {} column",
                    other.data_type()
                ))
            }
        };
        let batch = batch.with_column(out);
        if keep.iter().all(|k| *k) {
            Ok(batch)
        } else {
            Ok(filter_rows(batch, &keep))
        }
    }
}

/// Flink's `SparseVector.set`: overwrites a stored element, inserts a non-zero one.
fn sparse_set(v: &mut SparseVector, pos: Result<usize, usize>, i: usize, value: f64) {
    match pos {
        Ok(p) => v.values[p] = value,
        Err(p) if value != 0.0 => {
            v.indices.insert(p, i);
            v.values.insert(p, value);
        }
        Err(_) => {}
    }
}

/// Java's `Double.toString` for the values of error messages (`1.0`, `-0.5`, `NaN`,
/// `Infinity`; other forms as Rust prints them).
fn java_double_string(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// The rows of `batch` whose `keep` is true.
fn filter_rows(batch: RowBatch, keep: &[bool]) -> RowBatch {
    fn pick<T: Clone>(values: Vec<T>, keep: &[bool]) -> Vec<T> {
        values
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| v)
            .collect()
    }
    let rows = keep.iter().filter(|k| **k).count();
    let columns = batch
        .into_columns()
        .into_iter()
        .map(|column| match column {
            Column::Boolean(c) => Column::Boolean(pick(c, keep)),
            Column::Long(c) => Column::Long(pick(c, keep)),
            Column::Double(c) => Column::Double(pick(c, keep)),
            Column::String(c) => Column::String(c.filter(keep)),
            Column::DenseVector { dim, values } => Column::DenseVector {
                dim,
                values: if dim == 0 {
                    values
                } else {
                    values
                        .chunks_exact(dim)
                        .zip(keep)
                        .filter(|(_, k)| **k)
                        .flat_map(|(v, _)| v.iter().copied())
                        .collect()
                },
            },
            Column::SparseVector(c) => Column::SparseVector(pick(c, keep)),
            Column::StringArray(c) => Column::StringArray(pick(c, keep)),
            Column::DoubleArray(c) => Column::DoubleArray(pick(c, keep)),
            Column::DenseVectorArray(c) => Column::DenseVectorArray(pick(c, keep)),
        })
        .collect();
    RowBatch::new(rows, columns)
}

impl Stage for VectorIndexerModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let column = input.schema.typed_index(
            "VectorIndexerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let invalid = match self.get(&HANDLE_INVALID)?.as_str() {
            "skip" => Invalid::Skip,
            "keep" => Invalid::Keep,
            _ => Invalid::Error,
        };
        let output_type = input.schema.data_type(column);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, output_type)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                Ok(Mappings::new(
                    VectorIndexerModelData::from_batches(schema, &batches)?,
                    invalid,
                ))
            },
            move |mappings, batch| mappings.apply(column, batch),
        );
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> VectorIndexerModelData {
        VectorIndexerModelData {
            column_indices: vec![1],
            categories: vec![vec![0.0, -1.0, 1.0]],
        }
    }

    fn batch() -> RowBatch {
        RowBatch::new(
            3,
            vec![
                Column::Long(vec![10, 11, 12]),
                Column::DenseVector {
                    dim: 2,
                    values: vec![5.0, -1.0, 6.0, 2.0, 7.0, 0.0],
                },
            ],
        )
    }

    #[test]
    fn unseen_values() {
        let skip = Mappings::new(data(), Invalid::Skip)
            .apply(1, batch())
            .unwrap();
        assert_eq!(skip.rows(), 2);
        assert_eq!(skip.column(0), &Column::Long(vec![10, 12]));
        assert_eq!(
            skip.column(2),
            &Column::DenseVector {
                dim: 2,
                values: vec![5.0, 1.0, 7.0, 0.0]
            }
        );
        let keep = Mappings::new(data(), Invalid::Keep)
            .apply(1, batch())
            .unwrap();
        assert_eq!(keep.column(2).vector(1).unwrap().to_dense(), vec![6.0, 3.0]);
        let error = Mappings::new(data(), Invalid::Error)
            .apply(1, batch())
            .unwrap_err();
        assert!(error.contains("unseen double: 2.0."), "{error}");
    }

    #[test]
    fn sparse_set_is_flinks() {
        let mut v = SparseVector::new(4, vec![0, 2], vec![5.0, 0.0]).unwrap();
        let pos = v.indices.binary_search(&2);
        sparse_set(&mut v, pos, 2, 0.0);
        let pos = v.indices.binary_search(&1);
        sparse_set(&mut v, pos, 1, 0.0);
        let pos = v.indices.binary_search(&3);
        sparse_set(&mut v, pos, 3, 2.0);
        assert_eq!(v.indices, vec![0, 2, 3]);
        assert_eq!(v.values, vec![5.0, 0.0, 2.0]);
    }
}
