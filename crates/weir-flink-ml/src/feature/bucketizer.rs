//! `Bucketizer`: maps numbers to the index of their bucket between split points (Flink ML's
//! `org.apache.flink.ml.feature.bucketizer`).

use std::cmp::Ordering;

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use super::vector_assembler::{retain_rows, Invalid};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{HANDLE_INVALID, INPUT_COLS, OUTPUT_COLS};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Table};

/// `splitsArray`: the split points of every input column: at least 3, strictly increasing.
pub const SPLITS_ARRAY: Param<Vec<Vec<f64>>> = Param::new(
    "splitsArray",
    "Array of split points for mapping continuous features into buckets.",
    None,
    ParamType::DoubleArrayArray,
    Validator::NonEmptyArray,
);

stage!(
    /// Maps every number of `inputCols` to its bucket in the splits of `splitsArray` at the
    /// same position, as a `Double` in the column of `outputCols` at that position.
    ///
    /// Splits `s0 < s1 < ... < sk` make the buckets `[s0, s1), [s1, s2), ..., [s(k-1), sk]`
    /// (the last one includes `sk`), numbered from 0. Numbers outside `[s0, sk]` and NaN are
    /// invalid: `handleInvalid = error` fails the job, `skip` drops the row, `keep` puts them
    /// in an extra bucket `k`. Numbers are compared as Java's `Double.compareTo` does, so
    /// `-0.0` falls below a split at `0.0`.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{bucketizer::SPLITS_ARRAY, Bucketizer};
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, OUTPUT_COLS}, WithParams};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let bucketizer = Bucketizer::new()
    ///     .set(&INPUT_COLS, vec!["x".into()]).unwrap()
    ///     .set(&OUTPUT_COLS, vec!["bucket".into()]).unwrap()
    ///     .set(&SPLITS_ARRAY, vec![vec![0.0, 1.0, 2.0]]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("x", DataType::Double)]);
    ///     let rows = [0.5, 1.0, 2.0].iter().map(|x| vec![Value::Double(*x)]).collect();
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     bucketizer.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let mut buckets: Vec<(f64, f64)> = out
    ///     .rows()
    ///     .iter()
    ///     .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
    ///     .collect();
    /// buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    /// assert_eq!(buckets, vec![(0.5, 0.0), (1.0, 1.0), (2.0, 1.0)]);
    /// ```
    Bucketizer,
    "org.apache.flink.ml.feature.bucketizer.Bucketizer",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COLS.spec,
        &HANDLE_INVALID.spec,
        &SPLITS_ARRAY.spec
    ]
);

impl crate::param::HasInputCols for Bucketizer {}
impl crate::param::HasOutputCols for Bucketizer {}
impl crate::param::HasHandleInvalid for Bucketizer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Bucketizer);

/// Java's `Double.compareTo` (NaN, never a feature here, above everything).
fn java_compare(a: f64, b: f64) -> Ordering {
    a.total_cmp(&b)
}

/// The bucket of `x`, `None` when it is invalid (`Arrays.binarySearch` as Flink ML uses it).
fn bucket(splits: &[f64], x: f64) -> Option<f64> {
    if x.is_nan() {
        return None;
    }
    match splits.binary_search_by(|s| java_compare(*s, x)) {
        Ok(i) if i == splits.len() - 1 => Some((i - 1) as f64),
        Ok(i) => Some(i as f64),
        Err(0) => None,
        Err(i) if i == splits.len() => None,
        Err(i) => Some((i - 1) as f64),
    }
}

/// The operator's state: input columns, their names and splits, and `handleInvalid`.
struct Buckets {
    columns: Vec<(usize, String, Vec<f64>)>,
    invalid: Invalid,
}

impl Buckets {
    /// The buckets of one column's numbers; invalid rows are errors or cleared in `keep`.
    fn bucket_column(
        &self,
        name: &str,
        splits: &[f64],
        numbers: impl Iterator<Item = f64>,
        keep: &mut [bool],
    ) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(keep.len());
        for (x, kept) in numbers.zip(keep.iter_mut()) {
            out.push(match bucket(splits, x) {
                Some(b) => b,
                None => match self.invalid {
                    Invalid::Error => {
                        return Err(format!(
                            "Bucketizer: column `{name}` holds {x}, outside the splits [{}, {}]: \
                             The input contains invalid value. See handleInvalid parameter for \
                             more options.",
                            splits[0],
                            splits[splits.len() - 1]
                        ))
                    }
                    Invalid::Skip => {
                        *kept = false;
                        0.0
                    }
                    Invalid::Keep => (splits.len() - 1) as f64,
                },
            });
        }
        Ok(out)
    }

    fn apply(&self, batch: RowBatch) -> Result<RowBatch, String> {
        let mut keep = vec![true; batch.rows()];
        let mut outputs = Vec::with_capacity(self.columns.len());
        for (column, name, splits) in &self.columns {
            let out = match batch.column(*column) {
                Column::Double(c) => {
                    self.bucket_column(name, splits, c.iter().copied(), &mut keep)?
                }
                Column::Long(c) => {
                    self.bucket_column(name, splits, c.iter().map(|x| *x as f64), &mut keep)?
                }
                other => {
                    return Err(format!(
                        "Bucketizer: column `{name}` is a {} column, not numbers",
                        other.data_type()
                    ))
                }
            };
            outputs.push(Column::Double(out));
        }
        let batch = outputs.into_iter().fold(batch, RowBatch::with_column);
        Ok(retain_rows(batch, &keep))
    }
}

/// Flink ML's `SplitsArrayValidator`: every splits array has at least 3 strictly increasing
/// split points.
fn check_splits(splits_array: &[Vec<f64>]) -> Result<(), MlError> {
    for splits in splits_array {
        if splits.len() < 3 || splits.windows(2).any(|w| w[1] <= w[0]) {
            return Err(MlError::InvalidParam {
                stage: "Bucketizer".into(),
                param: SPLITS_ARRAY.name().into(),
                message: format!(
                    "must hold arrays of at least 3 strictly increasing split points, got {splits:?}"
                ),
            });
        }
    }
    Ok(())
}

impl Stage for Bucketizer {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let cols = self.get(&INPUT_COLS)?;
        let out_cols = self.get(&OUTPUT_COLS)?;
        let splits_array = self.get(&SPLITS_ARRAY)?;
        check_splits(&splits_array)?;
        for (param, len) in [
            (OUTPUT_COLS.name(), out_cols.len()),
            (SPLITS_ARRAY.name(), splits_array.len()),
        ] {
            if len != cols.len() {
                return Err(MlError::InvalidParam {
                    stage: "Bucketizer".into(),
                    param: param.into(),
                    message: format!(
                        "must have one entry per input column ({}), got {len}",
                        cols.len()
                    ),
                });
            }
        }
        let invalid = Invalid::parse("Bucketizer", &self.get(&HANDLE_INVALID)?)?;
        let mut columns = Vec::with_capacity(cols.len());
        for (name, splits) in cols.iter().zip(splits_array) {
            let column = input.schema.typed_index(
                "Bucketizer",
                name,
                &[DataType::Long, DataType::Double],
            )?;
            columns.push((column, name.clone(), splits));
        }
        let outputs: Vec<(String, DataType)> = out_cols
            .into_iter()
            .map(|c| (c, DataType::Double))
            .collect();
        let schema = input.schema.with_columns(&outputs)?;
        let buckets = Buckets { columns, invalid };
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            buckets.apply(batch)
        })])
    }
}
