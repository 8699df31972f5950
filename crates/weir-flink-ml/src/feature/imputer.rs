//! `Imputer`: replaces missing values (`missingValue`, NaN by default, and nulls) of numeric
//! columns with a surrogate per column: the mean, the median or the most frequent value of
//! the training data (Flink ML's `org.apache.flink.ml.feature.imputer`).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::benchmark::java_string_hash;

use crate::common::java_math::java_min;
use crate::common::model_row::ModelRow;
use super::robust_scaler::QuantileSummary;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COLS, OUTPUT_COLS, RELATIVE_ERROR};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `missingValue`: the placeholder for missing values; null (the default) stands for NaN.
pub const MISSING_VALUE: Param<f64> = Param::new(
    "missingValue",
    "The placeholder for the missing values. All occurrences of missingValue will be imputed.",
    Some("null"),
    ParamType::Double,
    Validator::Always,
);
/// `strategy`: `mean`, `median` or `most_frequent`.
pub const STRATEGY: Param<String> = Param::new(
    "strategy",
    "The imputation strategy.",
    Some("\"mean\""),
    ParamType::String,
    Validator::InArray(&["mean", "median", "most_frequent"]),
);

stage!(
    /// Fits an [`ImputerModel`]: a surrogate for every column of `inputCols` (numbers, or
    /// strings of numbers) from its valid values, those that are neither NaN nor
    /// `missingValue`: their mean, their median (a Greenwald–Khanna summary with
    /// `relativeError`) or their most frequent value (the smallest among ties).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{imputer::STRATEGY, Imputer};
    /// use weir_flink_ml::param::shared::{INPUT_COLS, OUTPUT_COLS};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("x", DataType::Double)]);
    ///     let rows: Vec<_> = [1.0, f64::NAN, 2.0, 9.0]
    ///         .iter()
    ///         .map(|x| vec![Value::Double(*x)])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     let imputer = Imputer::new()
    ///         .set(&INPUT_COLS, vec!["x".to_string()])?
    ///         .set(&OUTPUT_COLS, vec!["y".to_string()])?
    ///         .set(&STRATEGY, "median".to_string())?;
    ///     let fitted = imputer.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let mut imputed: Vec<f64> = out
    ///     .rows()
    ///     .iter()
    ///     .map(|row| row[1].as_f64().unwrap())
    ///     .collect();
    /// imputed.sort_by(f64::total_cmp);
    /// // NaN became the median of 1, 2 and 9.
    /// assert_eq!(imputed, vec![1.0, 2.0, 2.0, 9.0]);
    /// ```
    Imputer,
    "org.apache.flink.ml.feature.imputer.Imputer",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COLS.spec,
        &MISSING_VALUE.spec,
        &STRATEGY.spec,
        &RELATIVE_ERROR.spec,
    ]
);

model!(
    /// Copies every column of `inputCols` into the `Double` column of `outputCols` at the
    /// same position, with missing values (`missingValue`, NaN when that is null) replaced
    /// by the column's surrogate.
    ImputerModel,
    "org.apache.flink.ml.feature.imputer.ImputerModel",
    [&INPUT_COLS.spec, &OUTPUT_COLS.spec, &MISSING_VALUE.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(Imputer, ImputerModel);

/// The model data: one row. Flink's single `surrogates` map column (column name to
/// surrogate) is stored as two arrays, `columnNames` and `surrogates`, since tables have no
/// map type.
#[derive(Clone, Debug, PartialEq)]
pub struct ImputerModelData {
    /// The columns that have a surrogate.
    pub column_names: Vec<String>,
    /// Their surrogates, in the same order.
    pub surrogates: Vec<f64>,
}

impl ImputerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([
            ("columnNames", DataType::StringArray),
            ("surrogates", DataType::DoubleArray),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                Column::StringArray(vec![self.column_names.clone()]),
                Column::DoubleArray(vec![self.surrogates.clone()]),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("ImputerModel", schema, batches)?;
        let data = ImputerModelData {
            column_names: row.strings("columnNames")?,
            surrogates: row.doubles("surrogates")?,
        };
        if data.column_names.len() != data.surrogates.len() {
            return Err(format!(
                "ImputerModel: the model data has {} column names but {} surrogates",
                data.column_names.len(),
                data.surrogates.len()
            ));
        }
        Ok(data)
    }

    /// The surrogate of column `name`.
    pub fn surrogate(&self, name: &str) -> Option<f64> {
        self.column_names
            .iter()
            .position(|c| c == name)
            .map(|i| self.surrogates[i])
    }
}

/// Java's `Double.equals`: bit equality, except that every NaN equals every NaN.
fn java_equals(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// The positions of the distinct `keys` in the order a Java `HashMap<String, _>` they were
/// put into (in order) iterates them: by bucket, then by insertion within a bucket.
fn java_hash_map_order(keys: &[String]) -> Vec<usize> {
    let mut distinct: Vec<usize> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if !distinct.iter().any(|&j| keys[j] == *k) {
            distinct.push(i);
        }
    }
    let mut capacity = 16usize;
    while distinct.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |s: &str| {
        let h = java_string_hash(s) as i32 as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    distinct.sort_by_key(|&i| (bucket(&keys[i]), i));
    distinct
}

/// Calls `f(row, value)` for every row of a `Long`, `Double` or `String` column, as Flink
/// reads them (`Double.valueOf(value.toString())`).
fn for_each_number(
    column: &Column,
    name: &str,
    mut f: impl FnMut(usize, f64),
) -> Result<(), String> {
    match column {
        Column::Double(c) => c.iter().enumerate().for_each(|(i, x)| f(i, *x)),
        Column::Long(c) => c.iter().enumerate().for_each(|(i, x)| f(i, *x as f64)),
        Column::String(c) => {
            for (i, s) in c.iter().enumerate() {
                f(
                    i,
                    parse_java_double(s).ok_or_else(|| {
                        format!("Imputer: column `{name}` has a value that is not a number: {s:?}")
                    })?,
                );
            }
        }
        other => {
            return Err(format!(
                "Imputer: column `{name}` must be numeric, got a {} column",
                other.data_type()
            ))
        }
    }
    Ok(())
}

/// `Double.valueOf(String)`: trimmed, Java's `NaN` / `Infinity` spellings, an optional
/// `d`/`f` suffix.
fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim();
    let unsigned = t.trim_start_matches(['+', '-']);
    match unsigned {
        "NaN" => return Some(f64::NAN),
        "Infinity" => {
            return Some(if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        _ => {}
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    t.parse().ok()
}

/// Per column (of the distinct input columns): the strategy's statistics.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Statistics {
    /// Sum and count of the valid values.
    Mean(Vec<(f64, i64)>),
    /// All valid values (Flink buffers them all: see [`QuantileSummary::buffer`]).
    Median(Vec<QuantileSummary>),
    /// The count of every valid value (by its bits).
    MostFrequent(Vec<FxHashMap<u64, i64>>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Accumulator {
    statistics: Statistics,
    error: Option<String>,
}

/// The fit's settings.
#[derive(Clone)]
struct Fit {
    /// The distinct input columns: names and positions in the input.
    columns: Vec<(String, usize)>,
    missing_value: f64,
    relative_error: f64,
    strategy: String,
}

impl Fit {
    fn init(&self) -> Accumulator {
        let n = self.columns.len();
        let statistics = match self.strategy.as_str() {
            "median" => Statistics::Median(vec![QuantileSummary::new(self.relative_error); n]),
            "most_frequent" => Statistics::MostFrequent(vec![FxHashMap::default(); n]),
            _ => Statistics::Mean(vec![(0.0, 0); n]),
        };
        Accumulator {
            statistics,
            error: None,
        }
    }

    fn fold(&self, acc: &mut Accumulator, batch: &RowBatch) {
        if acc.error.is_some() {
            return;
        }
        let missing = self.missing_value;
        let valid = move |x: f64| !x.is_nan() && !java_equals(x, missing);
        for (k, (name, index)) in self.columns.iter().enumerate() {
            let column = batch.column(*index);
            let result = match &mut acc.statistics {
                Statistics::Mean(s) => {
                    let (sum, count) = &mut s[k];
                    for_each_number(column, name, |_, x| {
                        if valid(x) {
                            *sum += x;
                            *count += 1;
                        }
                    })
                }
                Statistics::Median(s) => for_each_number(column, name, |_, x| {
                    if valid(x) {
                        s[k].buffer(x);
                    }
                }),
                Statistics::MostFrequent(s) => for_each_number(column, name, |_, x| {
                    if valid(x) {
                        *s[k].entry(x.to_bits()).or_insert(0) += 1;
                    }
                }),
            };
            if let Err(e) = result {
                acc.error = Some(e);
                return;
            }
        }
    }

    fn merge(acc: &mut Accumulator, other: Accumulator) {
        if acc.error.is_some() {
            return;
        }
        if other.error.is_some() {
            *acc = other;
            return;
        }
        match (&mut acc.statistics, other.statistics) {
            (Statistics::Mean(a), Statistics::Mean(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0 += y.0;
                    x.1 += y.1;
                }
            }
            (Statistics::Median(a), Statistics::Median(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
            }
            (Statistics::MostFrequent(a), Statistics::MostFrequent(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    for (value, count) in y {
                        *x.entry(value).or_insert(0) += count;
                    }
                }
            }
            _ => unreachable!("one strategy per fit"),
        }
    }

    fn finish(&self, acc: Accumulator) -> Result<RowBatch, String> {
        if let Some(e) = acc.error {
            return Err(e);
        }
        const NO_DATA: &str = "Imputer: the training set is empty or does not contains valid data";
        let names: Vec<String> = self.columns.iter().map(|(n, _)| n.clone()).collect();
        let surrogates = match acc.statistics {
            Statistics::Mean(s) => {
                // Flink checks the count of the first column in its HashMap's order only.
                let first = java_hash_map_order(&names)[0];
                if s[first].1 <= 0 {
                    return Err(NO_DATA.into());
                }
                s.iter().map(|(sum, n)| sum / *n as f64).collect()
            }
            Statistics::Median(s) => {
                let mut out = Vec::with_capacity(s.len());
                for (mut summary, name) in s.into_iter().zip(&names) {
                    summary.compress();
                    if summary.is_empty() {
                        return Err(format!(
                            "Imputer: surrogate cannot be computed. All the values in column \
                             [{name}] are null, NaN or missingValue"
                        ));
                    }
                    out.push(summary.query(&[0.5]).map_err(|e| format!("Imputer: {e}"))?[0]);
                }
                out
            }
            Statistics::MostFrequent(s) => {
                if s.iter().all(|counts| counts.is_empty()) {
                    return Err(NO_DATA.into());
                }
                s.iter()
                    .map(|counts| {
                        let max = counts.values().copied().max().unwrap_or(0);
                        counts
                            .iter()
                            .filter(|(_, c)| **c == max)
                            .map(|(bits, _)| f64::from_bits(*bits))
                            .reduce(java_min)
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            }
        };
        Ok(ImputerModelData {
            column_names: names,
            surrogates,
        }
        .to_batch())
    }
}

/// The input and output columns, checked to be as many.
fn columns_of(
    stage: &str,
    params: &crate::param::ParamMap,
) -> Result<(Vec<String>, Vec<String>), MlError> {
    let inputs = params.get(&INPUT_COLS)?;
    let outputs = params.get(&OUTPUT_COLS)?;
    if inputs.len() != outputs.len() {
        return Err(MlError::Stage {
            stage: stage.into(),
            message: format!(
                "num of input columns and output columns are inconsistent ({} inputCols, {} outputCols)",
                inputs.len(),
                outputs.len()
            ),
        });
    }
    Ok((inputs, outputs))
}

const NUMERIC: &[DataType] = &[DataType::Double, DataType::Long, DataType::String];

impl Stage for Imputer {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let (input_cols, _) = columns_of("Imputer", &self.params)?;
        let mut columns: Vec<(String, usize)> = Vec::new();
        for name in input_cols {
            if !columns.iter().any(|(c, _)| *c == name) {
                let index = input.schema.typed_index("Imputer", &name, NUMERIC)?;
                columns.push((name, index));
            }
        }
        let settings = Fit {
            columns,
            missing_value: self.params.get_opt(&MISSING_VALUE)?.unwrap_or(f64::NAN),
            relative_error: self.get(&RELATIVE_ERROR)?,
            strategy: self.get(&STRATEGY)?,
        };
        let mut model = ImputerModel::new();
        model.params.copy_existing_from(&self.params)?;
        let (init, fold, finish) = (settings.clone(), settings.clone(), settings);
        let data = fit_aggregate(
            job,
            self,
            input,
            ImputerModelData::schema(),
            move || init.init(),
            move |acc, batch| fold.fold(acc, &batch),
            Fit::merge,
            move |acc| finish.finish(acc),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for ImputerModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let (input_cols, output_cols) = columns_of("ImputerModel", &self.params)?;
        let indices = input_cols
            .iter()
            .map(|name| input.schema.typed_index("ImputerModel", name, NUMERIC))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs: Vec<(String, DataType)> = output_cols
            .into_iter()
            .map(|name| (name, DataType::Double))
            .collect();
        let schema = input.schema.with_columns(&outputs)?;
        let missing = self.params.get_opt(&MISSING_VALUE)?.unwrap_or(f64::NAN);
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = ImputerModelData::from_batches(schema, &batches)?;
                input_cols
                    .iter()
                    .map(|name| {
                        data.surrogate(name).ok_or_else(|| {
                            format!(
                                "ImputerModel: column {name} is unacceptable for the Imputer model"
                            )
                        })
                    })
                    .collect::<Result<Vec<f64>, String>>()
                    .map(|surrogates| (input_cols.clone(), surrogates))
            },
            move |(names, surrogates), batch| {
                let mut columns = Vec::with_capacity(indices.len());
                for ((&index, name), &surrogate) in indices.iter().zip(names).zip(surrogates) {
                    let mut out = Vec::with_capacity(batch.rows());
                    for_each_number(batch.column(index), name, |_, x| {
                        out.push(if java_equals(x, missing) {
                            surrogate
                        } else {
                            x
                        });
                    })
                    .map_err(|e| e.replacen("Imputer:", "ImputerModel:", 1))?;
                    columns.push(Column::Double(out));
                }
                let mut batch = batch;
                for c in columns {
                    batch = batch.with_column(c);
                }
                Ok(batch)
            },
        );
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_map_iteration_order() {
        let keys: Vec<String> = ["f0", "f1", "f2", "f3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(java_hash_map_order(&keys), vec![0, 1, 2, 3]);
        // "b" (98) and "a" (97) land in buckets 2 and 1; "BB" and "Aa" collide (2112) in
        // bucket 0, in insertion order.
        let keys: Vec<String> = ["b", "a", "BB", "Aa"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(java_hash_map_order(&keys), vec![2, 3, 1, 0]);
        assert_eq!(java_string_hash("hello"), 99_162_322);
    }

    #[test]
    fn java_double_parsing() {
        assert_eq!(parse_java_double(" 1.5 "), Some(1.5));
        assert_eq!(parse_java_double("2d"), Some(2.0));
        assert_eq!(parse_java_double("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_java_double("NaN").unwrap().is_nan());
        assert_eq!(parse_java_double("inf"), None);
        assert_eq!(parse_java_double("x"), None);
    }
}
