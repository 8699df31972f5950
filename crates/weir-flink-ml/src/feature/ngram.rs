//! `NGram`: the n-grams of arrays of strings (Flink ML's `org.apache.flink.ml.feature.ngram`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, Table};

/// `n`: the number of elements per n-gram (>= 1).
pub const N: Param<i64> = Param::new(
    "n",
    "Number of elements per n-gram (>=1).",
    Some("2"),
    ParamType::Int,
    Validator::GtEq(1.0),
);

stage!(
    /// Turns every `String[]` of `inputCol` into the `String[]` of its n-grams in `outputCol`:
    /// every `n` consecutive elements joined by a single space, in order. An array shorter
    /// than `n` gives no n-grams.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::NGram;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::StringArray)]);
    ///     let words = ["a", "b", "c"].map(String::from).to_vec();
    ///     let table = Table::from_rows(job, "rows", schema, vec![vec![Value::StringArray(words)]])?;
    ///     NGram::new().transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let grams = ["a b", "b c"].map(String::from).to_vec();
    /// assert_eq!(out.rows()[0][1], Value::StringArray(grams));
    /// ```
    NGram,
    "org.apache.flink.ml.feature.ngram.NGram",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &N.spec]
);

impl crate::param::HasInputCol for NGram {}
impl crate::param::HasOutputCol for NGram {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(NGram);

/// The n-grams of `items`.
fn ngrams(items: &[String], n: usize) -> Vec<String> {
    if n > items.len() {
        return Vec::new();
    }
    items
        .windows(n)
        .map(|window| {
            let len = window.iter().map(String::len).sum::<usize>() + n - 1;
            let mut gram = String::with_capacity(len);
            for (i, item) in window.iter().enumerate() {
                if i > 0 {
                    gram.push(' ');
                }
                gram.push_str(item);
            }
            gram
        })
        .collect()
}

impl Stage for NGram {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let name = self.get(&INPUT_COL)?;
        let column = input
            .schema
            .typed_index("NGram", &name, &[DataType::StringArray])?;
        let n = usize::try_from(self.get(&N)?).map_err(|_| MlError::InvalidParam {
            stage: "NGram".into(),
            param: N.name().into(),
            message: "must be >= 1".into(),
        })?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::StringArray)?;
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            let Column::StringArray(rows) = batch.column(column) else {
                return Err(format!("NGram: column `{name}` is not a String[] column"));
            };
            let grams = rows.iter().map(|items| ngrams(items, n)).collect();
            Ok(batch.with_column(Column::StringArray(grams)))
        })])
    }
}
