//! `StringIndexer`: indexes the strings (and numbers) of columns, `StringIndexerModel` maps
//! them to their indices, and `IndexToStringModel` maps indices back (Flink ML's
//! `org.apache.flink.ml.feature.stringindexer`).
//!
//! Numbers are indexed as the strings Java writes for them (`String.valueOf`): a `Long`
//! column's `3` is `"3"`, a `Double` column's `1.0` is `"1.0"`, `1.0E7`, `-0.0`. A NaN in a
//! `Double` column is Weir's missing value (Flink's null): ignored by the fit, unseen in
//! the model.
//!
//! **Order of the strings.** `stringOrderType` `alphabetAsc`/`alphabetDesc` sort by Java's
//! `String.compareTo` (UTF-16 code units); `frequencyAsc`/`frequencyDesc` sort by count
//! (stable, so equal counts keep the order below); `arbitrary` (the default) is the order
//! below. Flink ML leaves that order to the iteration order of a `java.util.HashMap` of the
//! strings, which depends on insertion order and so on partitioning. Weir's order is
//! deterministic and is that of a `HashMap` built by inserting the strings one by one into
//! a default `new HashMap<>()` (capacity 16, doubled whenever the size exceeds 0.75 times
//! the capacity): by bucket `(h ^ (h >>> 16)) & (capacity - 1)` with `h = s.hashCode()`, and
//! within one bucket (where Java keeps insertion order) by `String.compareTo`. It is Flink's
//! order whenever no two strings share a bucket and the map reaching Flink's model generator
//! is the one the strings were counted in (one partition with object reuse). Flink copies
//! maps it serialises into `new HashMap<>(size)`, whose capacity is smaller for 12 strings
//! or fewer, so Flink's order can differ there; bins Java turns into trees (8 or more
//! strings in one bucket) are not modelled.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::benchmark::java_string_hash;

use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use super::vector_assembler::{retain_rows, Invalid};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{HANDLE_INVALID, INPUT_COLS, OUTPUT_COLS};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `stringOrderType`: how the strings of a column are ordered (their index is their
/// position): `arbitrary`, `frequencyDesc`, `frequencyAsc`, `alphabetDesc`, `alphabetAsc`.
pub const STRING_ORDER_TYPE: Param<String> = Param::new(
    "stringOrderType",
    "How to order strings of each column.",
    Some("\"arbitrary\""),
    ParamType::String,
    Validator::InArray(&[
        "arbitrary",
        "frequencyDesc",
        "frequencyAsc",
        "alphabetDesc",
        "alphabetAsc",
    ]),
);
/// `maxIndexNum`: the most indices per column (with `frequencyDesc` only: the most frequent
/// `maxIndexNum - 1` strings are kept, the last index is left for the others).
pub const MAX_INDEX_NUM: Param<i64> = Param::new(
    "maxIndexNum",
    "The max number of indices for each column. It only works when 'stringOrderType' is set \
     as 'frequencyDesc'.",
    Some("2147483647"),
    ParamType::Int,
    Validator::Gt(1.0),
);

stage!(
    /// Fits a [`StringIndexerModel`]: the distinct strings of every column of `inputCols`
    /// (`String`, `Long` or `Double`; numbers as Java writes them) in the order of
    /// `stringOrderType` (see the module documentation).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{string_indexer::STRING_ORDER_TYPE, StringIndexer};
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, OUTPUT_COLS}, WithParams};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let indexer = StringIndexer::new()
    ///     .set(&INPUT_COLS, vec!["color".into()]).unwrap()
    ///     .set(&OUTPUT_COLS, vec!["index".into()]).unwrap()
    ///     .set(&STRING_ORDER_TYPE, "frequencyDesc".to_string()).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("color", DataType::String)]);
    ///     let rows: Vec<_> = ["red", "blue", "red"]
    ///         .iter()
    ///         .map(|c| vec![Value::String(c.to_string())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     let fitted = indexer.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let mut indices: Vec<(String, f64)> = out
    ///     .rows()
    ///     .iter()
    ///     .map(|r| match (&r[0], &r[1]) {
    ///         (Value::String(s), Value::Double(i)) => (s.clone(), *i),
    ///         _ => unreachable!(),
    ///     })
    ///     .collect();
    /// indices.sort_by(|a, b| a.partial_cmp(b).unwrap());
    /// assert_eq!(indices, [("blue".into(), 1.0), ("red".into(), 0.0), ("red".into(), 0.0)]);
    /// ```
    StringIndexer,
    "org.apache.flink.ml.feature.stringindexer.StringIndexer",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COLS.spec,
        &HANDLE_INVALID.spec,
        &STRING_ORDER_TYPE.spec,
        &MAX_INDEX_NUM.spec
    ]
);

model!(
    /// Maps every value of each column of `inputCols` to its index (a `Double`) in the
    /// column of `outputCols` at the same position. An unseen value (or NaN) fails the job
    /// with `handleInvalid = error`, drops the row with `skip`, and gets the index after
    /// the last (the number of strings) with `keep`.
    StringIndexerModel,
    "org.apache.flink.ml.feature.stringindexer.StringIndexerModel",
    [&INPUT_COLS.spec, &OUTPUT_COLS.spec, &HANDLE_INVALID.spec]
);

model!(
    /// Maps every index of each column of `inputCols` (`Long`: Flink ML takes Java
    /// `Integer`s) back to its string, in the `String` column of `outputCols` at the same
    /// position, with the model data of a [`StringIndexerModel`]. An index outside the
    /// strings fails the job.
    IndexToStringModel,
    "org.apache.flink.ml.feature.stringindexer.IndexToStringModel",
    [&INPUT_COLS.spec, &OUTPUT_COLS.spec]
);

impl crate::param::HasInputCols for StringIndexer {}
impl crate::param::HasOutputCols for StringIndexer {}
impl crate::param::HasHandleInvalid for StringIndexer {}
impl crate::param::HasInputCols for StringIndexerModel {}
impl crate::param::HasOutputCols for StringIndexerModel {}
impl crate::param::HasHandleInvalid for StringIndexerModel {}
impl crate::param::HasInputCols for IndexToStringModel {}
impl crate::param::HasOutputCols for IndexToStringModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(StringIndexer, StringIndexerModel, IndexToStringModel);

/// The model data (Flink's `stringArrays: String[][]`): the strings of every input column,
/// a string's index being its position. Its table has one row per input column:
/// `columnIndex` (`Long`, the column's position in `inputCols`) and `stringArray`
/// (`String[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StringIndexerModelData {
    /// The strings of every column, in index order.
    pub string_arrays: Vec<Vec<String>>,
}

impl StringIndexerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([
            ("columnIndex", DataType::Long),
            ("stringArray", DataType::StringArray),
        ])
    }

    /// The model data as a batch of one row per column.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            self.string_arrays.len(),
            vec![
                Column::Long((0..self.string_arrays.len() as i64).collect()),
                Column::StringArray(self.string_arrays.clone()),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(
        stage: &str,
        schema: &Schema,
        batches: &[RowBatch],
    ) -> Result<Self, String> {
        let index = schema
            .index_of("columnIndex")
            .map_err(|e| format!("{stage}: {e}"))?;
        let strings = schema
            .index_of("stringArray")
            .map_err(|e| format!("{stage}: {e}"))?;
        let mut rows = Vec::new();
        for batch in batches {
            match (batch.column(index), batch.column(strings)) {
                (Column::Long(i), Column::StringArray(s)) => {
                    rows.extend(i.iter().copied().zip(s.iter().cloned()));
                }
                _ => {
                    return Err(format!(
                        "{stage}: the model data must have a Long column `columnIndex` and a \
                         String[] column `stringArray`"
                    ))
                }
            }
        }
        rows.sort_by_key(|(i, _)| *i);
        if rows.iter().enumerate().any(|(k, (i, _))| *i != k as i64) {
            return Err(format!(
                "{stage}: the model data's `columnIndex` values must be 0, 1, ... (one row \
                 per input column)"
            ));
        }
        Ok(StringIndexerModelData {
            string_arrays: rows.into_iter().map(|(_, s)| s).collect(),
        })
    }
}

/// Java's `String.compareTo`: UTF-16 code unit order.
pub(crate) fn java_string_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}


/// `keys` (distinct) in the iteration order of a `java.util.HashMap` they were put into one
/// by one from the default capacity, within a bucket by `String.compareTo` (see the module
/// documentation).
pub(crate) fn java_hash_map_order<T>(mut entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut capacity = 16usize;
    while entries.len() as f64 > 0.75 * capacity as f64 {
        capacity *= 2;
    }
    let mask = (capacity - 1) as u32;
    let bucket = |s: &str| {
        let h = java_string_hash(s) as i32 as u32;
        (h ^ (h >> 16)) & mask
    };
    entries.sort_by(|(a, _), (b, _)| {
        bucket(a)
            .cmp(&bucket(b))
            .then_with(|| java_string_cmp(a, b))
    });
    entries
}

/// Java's `Double.toString(x)`.
pub(crate) fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let a = x.abs();
    if a == 0.0 {
        return format!("{sign}0.0");
    }
    // The shortest digits that read back as `a` (Rust and Java >= 19 agree on them).
    let shortest = format!("{a:e}");
    let (mantissa, exponent) = shortest.split_once('e').expect("`{:e}` has an exponent");
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut exponent: i32 = exponent.parse().expect("an integer exponent");
    if digits.len() == 1 && a < f64::MIN_POSITIVE {
        // Java prints at least two digits, and for subnormals the two closest to `x` may
        // differ from the shortest one padded (Double.MIN_VALUE is `4.9E-324`).
        let two = format!("{a:.1e}");
        if two.parse::<f64>() == Ok(a) {
            let (m, e) = two.split_once('e').expect("`{:e}` has an exponent");
            digits = m.chars().filter(char::is_ascii_digit).collect();
            while digits.len() > 1 && digits.ends_with('0') {
                digits.pop();
            }
            exponent = e.parse().expect("an integer exponent");
        }
    }
    let (first, rest) = digits.split_at(1);
    if (1e-3..1e7).contains(&a) {
        if exponent >= 0 {
            let e = exponent as usize;
            if rest.len() <= e {
                format!("{sign}{first}{rest}{}.0", "0".repeat(e - rest.len()))
            } else {
                format!("{sign}{first}{}.{}", &rest[..e], &rest[e..])
            }
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exponent}")
    }
}

/// The key of a string of at most 7 bytes: its bytes (little-endian) and its length in the
/// top byte, so that a short string is hashed and compared as one integer. `None` for longer
/// strings.
#[inline]
fn short_key(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let n = b.len();
    let bytes = match n {
        0 => 0,
        // The first, middle and last bytes (1 to 3 distinct ones) at their positions.
        1..=3 => b[0] as u64 | (b[n / 2] as u64) << (8 * (n / 2)) | (b[n - 1] as u64) << (8 * (n - 1)),
        // The first four and the last four bytes (overlapping) at their positions.
        4..=7 => {
            let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
            let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]) as u64;
            lo | hi << (8 * (n - 4))
        }
        _ => return None,
    };
    Some(bytes | (n as u64) << 56)
}

/// The string of a [`short_key`].
fn short_string(key: u64) -> String {
    let n = (key >> 56) as usize;
    let bytes = key.to_le_bytes();
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}

/// A map keyed by strings: those of up to 7 bytes by their [`short_key`] (one integer to hash
/// and compare, no allocation to look one up), longer ones by themselves.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StringMap<V> {
    short: FxHashMap<u64, V>,
    long: FxHashMap<String, V>,
}

impl<V> Default for StringMap<V> {
    fn default() -> Self {
        StringMap {
            short: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }
}

impl<V> StringMap<V> {
    #[inline]
    fn get(&self, s: &str) -> Option<&V> {
        match short_key(s) {
            Some(key) => self.short.get(&key),
            None => self.long.get(s),
        }
    }

    /// The value of `s`, inserted with `init` if it is not there (`s` is copied only then).
    #[inline]
    fn get_or_insert(&mut self, s: &str, init: impl FnOnce() -> V) -> &mut V {
        match short_key(s) {
            Some(key) => self.short.entry(key).or_insert_with(init),
            None => {
                if !self.long.contains_key(s) {
                    self.long.insert(s.to_string(), init());
                }
                self.long.get_mut(s).expect("just inserted")
            }
        }
    }

    fn insert(&mut self, s: String, value: V) {
        match short_key(&s) {
            Some(key) => self.short.insert(key, value),
            None => self.long.insert(s, value),
        };
    }

    fn into_entries(self) -> impl Iterator<Item = (String, V)> {
        self.short
            .into_iter()
            .map(|(k, v)| (short_string(k), v))
            .chain(self.long)
    }
}

/// The counts of one column's values during the fit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counts {
    strings: StringMap<u64>,
    longs: FxHashMap<i64, u64>,
    /// By bit pattern (`-0.0` and `0.0` are two values, as their strings are).
    doubles: FxHashMap<u64, u64>,
}

impl Counts {
    fn add(&mut self, column: &Column) {
        match column {
            Column::String(values) => {
                for v in values {
                    *self.strings.get_or_insert(v, || 0) += 1;
                }
            }
            Column::Long(values) => {
                for v in values {
                    *self.longs.entry(*v).or_default() += 1;
                }
            }
            Column::Double(values) => {
                for v in values.iter().filter(|v| !v.is_nan()) {
                    *self.doubles.entry(v.to_bits()).or_default() += 1;
                }
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: Counts) {
        for (k, v) in other.strings.short {
            *self.strings.short.entry(k).or_default() += v;
        }
        for (k, v) in other.strings.long {
            *self.strings.long.entry(k).or_default() += v;
        }
        for (k, v) in other.longs {
            *self.longs.entry(k).or_default() += v;
        }
        for (k, v) in other.doubles {
            *self.doubles.entry(k).or_default() += v;
        }
    }

    /// The strings and their counts.
    fn into_strings(self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self.strings.into_entries().collect();
        out.extend(self.longs.into_iter().map(|(v, c)| (v.to_string(), c)));
        out.extend(
            self.doubles
                .into_iter()
                .map(|(bits, c)| (java_double(f64::from_bits(bits)), c)),
        );
        out
    }
}

/// The strings of one column in the order of `order` (Flink's `ModelGenerator`).
fn ordered(counts: Counts, order: &str, max_index_num: i64) -> Vec<String> {
    let mut entries = java_hash_map_order(counts.into_strings());
    match order {
        "alphabetAsc" => entries.sort_by(|a, b| java_string_cmp(&a.0, &b.0)),
        "alphabetDesc" => entries.sort_by(|a, b| java_string_cmp(&b.0, &a.0)),
        "frequencyAsc" => entries.sort_by_key(|e| e.1),
        "frequencyDesc" => {
            entries.sort_by_key(|e| std::cmp::Reverse(e.1));
            if entries.len() as i64 > max_index_num {
                entries.truncate((max_index_num - 1) as usize);
            }
        }
        _ => {}
    }
    entries.into_iter().map(|e| e.0).collect()
}

impl Stage for StringIndexer {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let (cols, _) = self.params.paired_columns()?;
        let order = self.get(&STRING_ORDER_TYPE)?;
        let max_index_num = self.get(&MAX_INDEX_NUM)?;
        if max_index_num < i32::MAX as i64 && order != "frequencyDesc" {
            return Err(MlError::InvalidParam {
                stage: "StringIndexer".into(),
                param: MAX_INDEX_NUM.name().into(),
                message: "Setting maxIndexNum smaller than INT.MAX only works when \
                          stringOrderType is set as frequencyDesc."
                    .into(),
            });
        }
        let columns = cols
            .iter()
            .map(|c| {
                input.schema.typed_index(
                    "StringIndexer",
                    c,
                    &[DataType::String, DataType::Long, DataType::Double],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = columns.len();
        let data = fit_aggregate(
            job,
            self,
            input,
            StringIndexerModelData::schema(),
            move || vec![Counts::default(); n],
            move |acc: &mut Vec<Counts>, batch: RowBatch| {
                for (counts, column) in acc.iter_mut().zip(&columns) {
                    counts.add(batch.column(*column));
                }
            },
            |acc, other| {
                for (counts, other) in acc.iter_mut().zip(other) {
                    counts.merge(other);
                }
            },
            move |acc| {
                let string_arrays = acc
                    .into_iter()
                    .map(|counts| ordered(counts, &order, max_index_num))
                    .collect();
                Ok(StringIndexerModelData { string_arrays }.to_batch())
            },
        );
        let mut model = StringIndexerModel::new();
        model.params.copy_existing_from(&self.params)?;
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

/// The index of every value of one column, by the column's type.
enum Lookup {
    Strings(StringMap<f64>),
    Longs(FxHashMap<i64, f64>),
    /// By bit pattern.
    Doubles(FxHashMap<u64, f64>),
}

impl Lookup {
    /// The lookup of `strings` for values of type `data_type` (numbers whose Java string is
    /// one of the strings).
    fn new(strings: &[String], data_type: DataType) -> Lookup {
        let indexed = strings.iter().enumerate().map(|(i, s)| (s, i as f64));
        match data_type {
            DataType::Long => Lookup::Longs(
                indexed
                    .filter_map(|(s, i)| {
                        s.parse::<i64>()
                            .ok()
                            .filter(|v| v.to_string() == *s)
                            .map(|v| (v, i))
                    })
                    .collect(),
            ),
            DataType::Double => Lookup::Doubles(
                indexed
                    .filter_map(|(s, i)| {
                        s.parse::<f64>()
                            .ok()
                            .filter(|v| !v.is_nan() && java_double(*v) == *s)
                            .map(|v| (v.to_bits(), i))
                    })
                    .collect(),
            ),
            _ => {
                let mut map = StringMap::default();
                for (s, i) in indexed {
                    map.insert(s.clone(), i);
                }
                Lookup::Strings(map)
            }
        }
    }
}

/// The model's operator state.
struct Indexing {
    /// Input column, its name, its lookup and the number of its strings.
    columns: Vec<(usize, String, Lookup, f64)>,
    invalid: Invalid,
}

impl Indexing {
    fn unseen(&self, name: &str, value: String) -> String {
        format!(
            "StringIndexerModel: column `{name}`: The input contains unseen string: {value}. \
             See handleInvalid parameter for more options."
        )
    }

    /// The indices of `values` (`find`), with unseen ones (`show` writes them) handled
    /// as `handleInvalid` says: `skip` clears their `keep` flag.
    fn index<T: Copy>(
        &self,
        name: &str,
        size: f64,
        values: impl Iterator<Item = T>,
        keep: &mut [bool],
        find: impl Fn(T) -> Option<f64>,
        show: impl Fn(T) -> String,
    ) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(keep.len());
        for (x, kept) in values.zip(keep.iter_mut()) {
            out.push(match find(x) {
                Some(index) => index,
                None => match self.invalid {
                    Invalid::Error => return Err(self.unseen(name, show(x))),
                    Invalid::Skip => {
                        *kept = false;
                        0.0
                    }
                    Invalid::Keep => size,
                },
            });
        }
        Ok(out)
    }

    fn apply(&self, batch: RowBatch) -> Result<RowBatch, String> {
        let rows = batch.rows();
        let mut keep = vec![true; rows];
        let mut outputs = Vec::with_capacity(self.columns.len());
        for (column, name, lookup, size) in &self.columns {
            let out = match (lookup, batch.column(*column)) {
                (Lookup::Strings(m), Column::String(v)) => self.index(
                    name,
                    *size,
                    v.iter(),
                    &mut keep,
                    |s| m.get(s).copied(),
                    str::to_string,
                )?,
                (Lookup::Longs(m), Column::Long(v)) => self.index(
                    name,
                    *size,
                    v.iter().copied(),
                    &mut keep,
                    |x| m.get(&x).copied(),
                    |x| x.to_string(),
                )?,
                (Lookup::Doubles(m), Column::Double(v)) => self.index(
                    name,
                    *size,
                    v.iter().copied(),
                    &mut keep,
                    |x| {
                        if x.is_nan() {
                            None
                        } else {
                            m.get(&x.to_bits()).copied()
                        }
                    },
                    |x| {
                        if x.is_nan() {
                            "null".to_string()
                        } else {
                            java_double(x)
                        }
                    },
                )?,
                (_, other) => {
                    return Err(format!(
                        "StringIndexerModel: column `{name}` is a {} column; The input \
                         column only supports string and numeric type.",
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

impl Stage for StringIndexerModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let (cols, out_cols) = self.params.paired_columns()?;
        let invalid = Invalid::parse("StringIndexerModel", &self.get(&HANDLE_INVALID)?)?;
        let mut columns = Vec::with_capacity(cols.len());
        for name in cols {
            let column = input.schema.typed_index(
                "StringIndexerModel",
                &name,
                &[DataType::String, DataType::Long, DataType::Double],
            )?;
            columns.push((column, name, input.schema.data_type(column)));
        }
        let outputs: Vec<(String, DataType)> = out_cols
            .into_iter()
            .map(|c| (c, DataType::Double))
            .collect();
        let schema = input.schema.with_columns(&outputs)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data =
                    StringIndexerModelData::from_batches("StringIndexerModel", schema, &batches)?;
                if data.string_arrays.len() != columns.len() {
                    return Err(format!(
                        "StringIndexerModel: the model data has strings for {} columns, \
                         inputCols has {}",
                        data.string_arrays.len(),
                        columns.len()
                    ));
                }
                let columns = columns
                    .into_iter()
                    .zip(&data.string_arrays)
                    .map(|((column, name, data_type), strings)| {
                        let lookup = Lookup::new(strings, data_type);
                        (column, name, lookup, strings.len() as f64)
                    })
                    .collect();
                Ok(Indexing { columns, invalid })
            },
            |indexing, batch| indexing.apply(batch),
        );
        Ok(vec![out])
    }
}

impl Stage for IndexToStringModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let (cols, out_cols) = self.params.paired_columns()?;
        let mut columns = Vec::with_capacity(cols.len());
        for name in cols {
            let column =
                input
                    .schema
                    .typed_index("IndexToStringModel", &name, &[DataType::Long])?;
            columns.push((column, name));
        }
        let outputs: Vec<(String, DataType)> = out_cols
            .into_iter()
            .map(|c| (c, DataType::String))
            .collect();
        let schema = input.schema.with_columns(&outputs)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data =
                    StringIndexerModelData::from_batches("IndexToStringModel", schema, &batches)?;
                if data.string_arrays.len() != columns.len() {
                    return Err(format!(
                        "IndexToStringModel: the model data has strings for {} columns, \
                         inputCols has {}",
                        data.string_arrays.len(),
                        columns.len()
                    ));
                }
                Ok((columns, data.string_arrays))
            },
            |(columns, arrays), batch| {
                let mut outputs = Vec::with_capacity(columns.len());
                for ((column, name), strings) in columns.iter().zip(arrays) {
                    let Column::Long(ids) = batch.column(*column) else {
                        return Err(format!(
                            "IndexToStringModel: column `{name}` is not a Long column"
                        ));
                    };
                    let out = ids
                        .iter()
                        .map(|id| {
                            usize::try_from(*id)
                                .ok()
                                .and_then(|i| strings.get(i))
                                .cloned()
                                .ok_or_else(|| {
                                    format!(
                                        "IndexToStringModel: column `{name}`: The input \
                                         contains unseen index: {id}."
                                    )
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    outputs.push(Column::String(out.into()));
                }
                Ok(outputs.into_iter().fold(batch, RowBatch::with_column))
            },
        );
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings of every short length (with NUL bytes, multi-byte characters, Java hash
    /// collisions like `Aa`/`BB`) and longer ones: distinct keys that give the string back,
    /// counted and looked up as a map of `String`s would.
    #[test]
    fn short_keys_and_string_maps() {
        let strings = [
            "", "\0", "\0\0", "a", "a\0", "\0a", "ab", "ba", "abc", "acb", "abcd", "abce",
            "abcde", "abcdef", "abcdefg", "bbcdefg", "abcdefh", "abcdefgh", "abcdefgi",
            "a long string", "é", "日本", "Aa", "BB", "AaAa", "BBBB", "AaBB", "BBAa", "0", "99",
            "100", "\u{10348}", "7",
        ];
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        let mut keys = std::collections::HashSet::new();
        for s in strings {
            match short_key(s) {
                Some(key) => {
                    assert!(s.len() <= 7, "{s:?}");
                    assert_eq!(short_string(key), s);
                    assert!(keys.insert(key), "{s:?} has a key of its own");
                }
                None => assert!(s.len() > 7, "{s:?}"),
            }
        }
        // Counts: every string `i + 1` times, in two halves merged.
        let column = |range: std::ops::Range<usize>| {
            Column::String(
                range
                    .flat_map(|i| std::iter::repeat_n(strings[i].to_string(), i + 1))
                    .collect(),
            )
        };
        let (mut a, mut b) = (Counts::default(), Counts::default());
        a.add(&column(0..20));
        b.add(&column(20..strings.len()));
        b.add(&column(0..3));
        a.merge(b);
        let mut counted = a.into_strings();
        counted.sort();
        let mut expected: Vec<(String, u64)> = strings
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), i as u64 + 1 + u64::from(i < 3) * (i as u64 + 1)))
            .collect();
        expected.sort();
        assert_eq!(counted, expected);
        // Lookups: every string at its position, no other string.
        let owned: Vec<String> = strings.iter().map(|s| s.to_string()).collect();
        let Lookup::Strings(map) = Lookup::new(&owned, DataType::String) else {
            panic!("a string lookup")
        };
        for (i, s) in strings.iter().enumerate() {
            assert_eq!(map.get(s), Some(&(i as f64)), "{s:?}");
        }
        for unseen in ["b", "\0\0\0", "abcdefgj", "AaAaAa", "aa", "BBB"] {
            assert_eq!(map.get(unseen), None, "{unseen:?}");
        }
    }

    /// Java's `Double.toString`.
    #[test]
    fn doubles_print_as_in_java() {
        for (x, text) in [
            (1.0, "1.0"),
            (-2.25, "-2.25"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1.0e7, "1.0E7"),
            (9999999.0, "9999999.0"),
            (1.23456789e8, "1.23456789E8"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (100.0, "100.0"),
            (123.456, "123.456"),
            (5e-324, "4.9E-324"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_double(x), text);
        }
    }

    /// A fitted StringIndexerModel's data drives an IndexToStringModel back to the strings
    /// (Flink's IndexToStringModelTest: model data `{{"a", "b", "c", "d"}, {"-1.0", "0.0",
    /// "1.0", "2.0"}}`), and an index outside the strings fails the job.
    #[test]
    fn index_to_string_inverts_the_indexer() {
        use crate::api::ModelCollector;
        use crate::param::shared::{INPUT_COLS, OUTPUT_COLS};
        use crate::table::{TableCollector, Value};
        use weir_core::{execute, Config};

        let models = ModelCollector::new();
        let sink = models.clone();
        execute(Config::threads(2), move |job| {
            let schema = Schema::new([("s", DataType::String), ("x", DataType::Double)]);
            let rows = [("a", 1.0), ("b", 1.0), ("b", 2.0), ("c", 0.0), ("d", -1.0)]
                .iter()
                .map(|(s, x)| vec![Value::String(s.to_string()), Value::Double(*x)])
                .collect();
            let table = Table::from_rows(job, "rows", schema, rows)?;
            let indexer = StringIndexer::new()
                .set(&INPUT_COLS, vec!["s".into(), "x".into()])?
                .set(&OUTPUT_COLS, vec!["si".into(), "xi".into()])?
                .set(&STRING_ORDER_TYPE, "alphabetAsc".to_string())?;
            indexer.fit(job, vec![table])?.collect(job, &sink);
            Ok(())
        })
        .unwrap();
        let data = models.model().unwrap().model_data().unwrap().to_vec();
        let fitted =
            StringIndexerModelData::from_batches("test", &data[0].schema, &data[0].batches)
                .unwrap();
        let expected = [vec!["a", "b", "c", "d"], vec!["-1.0", "0.0", "1.0", "2.0"]];
        assert_eq!(fitted.string_arrays, expected);

        let mut model = IndexToStringModel::new()
            .set(&INPUT_COLS, vec!["i".into(), "j".into()])
            .unwrap()
            .set(&OUTPUT_COLS, vec!["s".into(), "x".into()])
            .unwrap();
        model.set_model_data(data).unwrap();
        let run = |ids: Vec<(i64, i64)>| {
            let model = model.clone();
            let out = TableCollector::new();
            let sink = out.clone();
            execute(Config::threads(2), move |job| {
                let schema = Schema::new([("i", DataType::Long), ("j", DataType::Long)]);
                let rows = ids
                    .iter()
                    .map(|(i, j)| vec![Value::Long(*i), Value::Long(*j)])
                    .collect();
                let table = Table::from_rows(job, "rows", schema, rows)?;
                model
                    .transform(job, vec![table])?
                    .remove(0)
                    .collect("out", &sink);
                Ok(())
            })
            .map(|_| {
                let mut rows: Vec<(String, String)> = out
                    .rows()
                    .into_iter()
                    .map(|r| match (&r[2], &r[3]) {
                        (Value::String(s), Value::String(x)) => (s.clone(), x.clone()),
                        _ => panic!("string outputs"),
                    })
                    .collect();
                rows.sort();
                rows
            })
        };
        let strings = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(vec![(0, 3), (1, 2), (3, 0)]).unwrap(),
            strings(&[("a", "2.0"), ("b", "1.0"), ("d", "-1.0")])
        );
        let error = run(vec![(0, 4)]).unwrap_err().to_string();
        assert!(
            error.contains("The input contains unseen index: 4."),
            "{error}"
        );
    }

    /// Iteration orders of `java.util.HashMap` (values from Java).
    #[test]
    fn hash_map_order_as_java() {
        let keys = |n: usize| (0..n).map(|i| (i.to_string(), ())).collect::<Vec<_>>();
        let order = |n| {
            java_hash_map_order(keys(n))
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        let expected: Vec<String> = (88..98)
            .chain([10, 98, 11, 99])
            .chain(12..20)
            .chain(0..10)
            .chain(20..88)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(order(100), expected);
        assert_eq!(
            order(10),
            (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
        );
    }
}
