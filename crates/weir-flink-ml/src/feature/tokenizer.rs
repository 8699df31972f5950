//! `Tokenizer`: lower-cases strings and splits them at every whitespace character (Flink
//! ML's `org.apache.flink.ml.feature.tokenizer`).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::WithParams;
use crate::table::{Column, DataType, Table};

stage!(
    /// Splits every string of `inputCol` into the `String[]` of `outputCol` as Flink ML does
    /// with `input.toLowerCase().split("\\s")`: lower-cased, then split at EACH whitespace
    /// character of Java's `\s` (space, `\t`, `\n`, `\x0B`, `\f`, `\r`), so consecutive
    /// whitespace gives empty tokens and leading whitespace a leading empty token; trailing
    /// empty tokens are dropped, and a string without whitespace is its own single token (`""`
    /// gives `[""]`). Other Unicode spaces (such as U+00A0) do not split.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::Tokenizer;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::String)]);
    ///     let rows = vec![vec![Value::String("Hello  World ".into())]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     Tokenizer::new().transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let tokens = ["hello", "", "world"].map(String::from).to_vec();
    /// assert_eq!(out.rows()[0][1], Value::StringArray(tokens));
    /// ```
    Tokenizer,
    "org.apache.flink.ml.feature.tokenizer.Tokenizer",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

impl crate::param::HasInputCol for Tokenizer {}
impl crate::param::HasOutputCol for Tokenizer {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Tokenizer);

/// Java's `\s`: `[ \t\n\x0B\f\r]`.
fn java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// `text.toLowerCase().split("\\s")`.
fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    if !lower.contains(java_space) {
        // Java's split returns the input itself when nothing matches (`""` gives `[""]`).
        return vec![lower];
    }
    let mut tokens: Vec<String> = lower.split(java_space).map(String::from).collect();
    while tokens.last().is_some_and(String::is_empty) {
        tokens.pop();
    }
    tokens
}

impl Stage for Tokenizer {
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
            .typed_index("Tokenizer", &name, &[DataType::String])?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::StringArray)?;
        Ok(vec![map_batches(job, self, input, schema, move |batch| {
            let Column::String(texts) = batch.column(column) else {
                return Err(format!("Tokenizer: column `{name}` is not a String column"));
            };
            let tokens = texts.iter().map(tokenize).collect();
            Ok(batch.with_column(Column::StringArray(tokens)))
        })])
    }
}
