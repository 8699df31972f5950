//! `CountVectorizer`: learns a vocabulary from arrays of terms, and
//! `CountVectorizerModel` counts the vocabulary's terms in arrays (Flink ML's
//! `org.apache.flink.ml.feature.countvectorizer`).
//!
//! The vocabulary is ordered by document frequency, descending; terms of equal document
//! frequency keep Flink's `HashMap` iteration order as Weir makes it deterministic (see
//! [`string_indexer`](super::string_indexer), whose module documentation describes it).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::model_row::ModelRow;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use super::string_indexer::java_hash_map_order;
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, SparseVector, Table};

/// `minTF`: the least count (>= 1) or fraction of a document's terms (< 1) a term needs in a
/// document to be counted.
pub const MIN_TF: Param<f64> = Param::new(
    "minTF",
    "Filter to ignore rare words in a document. For each document, terms with \
     frequency/count less than the given threshold are ignored. If this is an integer >= 1, \
     then this specifies a count (of times the term must appear in the document); if this \
     is a double in [0,1), then this specifies a fraction (out of the document's token \
     count).",
    Some("1.0"),
    ParamType::Double,
    Validator::GtEq(0.0),
);
/// `binary`: whether every counted term gets 1.0 instead of its count.
pub const BINARY: Param<bool> = Param::new(
    "binary",
    "Binary toggle to control the output vector values. If True, all nonzero counts (after \
     minTF filter applied) are set to 1.0.",
    Some("false"),
    ParamType::Boolean,
    Validator::Always,
);
/// `vocabularySize`: the most terms in the vocabulary.
pub const VOCABULARY_SIZE: Param<i64> = Param::new(
    "vocabularySize",
    "Max size of the vocabulary. CountVectorizer will build a vocabulary that only considers \
     the top vocabulary size terms ordered by term frequency across the corpus.",
    Some("262144"),
    ParamType::Int,
    Validator::Gt(0.0),
);
/// `minDF`: the least number (>= 1) or fraction (< 1) of documents a term must be in.
pub const MIN_DF: Param<f64> = Param::new(
    "minDF",
    "Specifies the minimum number of different documents a term must appear in to be \
     included in the vocabulary. If this is an integer >= 1, this specifies the number of \
     documents the term must appear in; if this is a double in [0,1), then this specifies \
     the fraction of documents.",
    Some("1.0"),
    ParamType::Double,
    Validator::GtEq(0.0),
);
/// `maxDF`: the most documents (>= 1) or fraction of documents (< 1) a term may be in.
pub const MAX_DF: Param<f64> = Param::new(
    "maxDF",
    "Specifies the maximum number of different documents a term could appear in to be \
     included in the vocabulary. A term that appears more than the threshold will be \
     ignored. If this is an integer >= 1, this specifies the maximum number of documents \
     the term could appear in; if this is a double in [0,1), then this specifies the \
     maximum fraction of documents the term could appear in.",
    Some("9.223372036854776E18"),
    ParamType::Double,
    Validator::GtEq(0.0),
);

/// `maxDF`'s default, Java's `(double) Long.MAX_VALUE`.
const MAX_DF_DEFAULT: f64 = i64::MAX as f64;

stage!(
    /// Fits a [`CountVectorizerModel`]: the vocabulary of the `String[]` documents of
    /// `inputCol`, the terms ordered by the number of documents they are in (descending),
    /// at most `vocabularySize` of them. When `minDF` or `maxDF` is not its default, only
    /// terms in at least `minDF` and at most `maxDF` documents are kept (each a count if
    /// >= 1, else a fraction of the documents).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::CountVectorizer;
    /// use weir_flink_ml::table::{DataType, SparseVector, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::StringArray)]);
    ///     let docs = [vec!["a", "c", "b", "c"], vec!["c", "d"], vec!["a", "c"]];
    ///     let rows: Vec<_> = docs
    ///         .iter()
    ///         .map(|d| vec![Value::StringArray(d.iter().map(|t| t.to_string()).collect())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows)?;
    ///     let test = Table::from_rows(job, "test", schema, vec![vec![Value::StringArray(
    ///         vec!["c".into(), "c".into(), "b".into(), "e".into()],
    ///     )]])?;
    ///     let fitted = CountVectorizer::new().fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Vocabulary: c (in 3 documents), a (2), then b and d (1 each).
    /// let expected = SparseVector::new(4, vec![0, 2], vec![2.0, 1.0]).unwrap();
    /// assert_eq!(out.rows()[0][1], Value::SparseVector(expected));
    /// ```
    CountVectorizer,
    "org.apache.flink.ml.feature.countvectorizer.CountVectorizer",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &MIN_TF.spec,
        &BINARY.spec,
        &VOCABULARY_SIZE.spec,
        &MIN_DF.spec,
        &MAX_DF.spec
    ]
);

model!(
    /// Counts the vocabulary's terms in every `String[]` document of `inputCol` into a
    /// sparse vector of the vocabulary's size in `outputCol` (index = position in the
    /// vocabulary). Terms counted fewer times than `minTF` (a count if >= 1, else a
    /// fraction of the document's length) are left out, and with `binary` counts are 1.0.
    /// A threshold of 0 (`minTF = 0`, or a fraction of an empty document) keeps every
    /// index, zeros included, as Flink ML does.
    CountVectorizerModel,
    "org.apache.flink.ml.feature.countvectorizer.CountVectorizerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &MIN_TF.spec, &BINARY.spec]
);

impl crate::param::HasInputCol for CountVectorizer {}
impl crate::param::HasOutputCol for CountVectorizer {}
impl crate::param::HasInputCol for CountVectorizerModel {}
impl crate::param::HasOutputCol for CountVectorizerModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(CountVectorizer, CountVectorizerModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountVectorizerModelData {
    /// The vocabulary: a term's index is its position.
    pub vocabulary: Vec<String>,
}

impl CountVectorizerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([("vocabulary", DataType::StringArray)])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(1, vec![Column::StringArray(vec![self.vocabulary.clone()])])
    }
}

/// A term's counts during the fit.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct TermCounts {
    /// Documents it is in.
    documents: u64,
    /// The last document (number on this instance) it was seen in.
    last: u64,
}

/// The fit's accumulator: documents and term counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Vocabulary {
    documents: u64,
    terms: FxHashMap<String, TermCounts>,
}

impl Vocabulary {
    fn add(&mut self, documents: &[Vec<String>]) {
        for document in documents {
            self.documents += 1;
            let id = self.documents;
            for term in document {
                let counts = match self.terms.get_mut(term.as_str()) {
                    Some(counts) => counts,
                    None => self.terms.entry(term.clone()).or_default(),
                };
                if counts.last != id {
                    counts.last = id;
                    counts.documents += 1;
                }
            }
        }
    }

    fn merge(&mut self, other: Vocabulary) {
        self.documents += other.documents;
        for (term, counts) in other.terms {
            let mine = self.terms.entry(term).or_default();
            mine.documents += counts.documents;
        }
    }

    /// Flink's `VocabularyAggregator.getResult`.
    fn finish(
        self,
        min_df: f64,
        max_df: f64,
        vocabulary_size: usize,
    ) -> Result<CountVectorizerModelData, String> {
        if self.documents == 0 {
            return Err("CountVectorizer: The training set is empty.".into());
        }
        let mut terms: Vec<(String, u64)> = self
            .terms
            .into_iter()
            .map(|(term, counts)| (term, counts.documents))
            .collect();
        if min_df != 1.0 || max_df != MAX_DF_DEFAULT {
            let rows = self.documents as f64;
            let min = if min_df >= 1.0 { min_df } else { min_df * rows };
            let max = if max_df >= 1.0 { max_df } else { max_df * rows };
            if max < min {
                return Err(format!(
                    "CountVectorizer: maxDF must be >= minDF (here {max} documents < {min})."
                ));
            }
            terms.retain(|(_, df)| *df as f64 >= min && *df as f64 <= max);
        }
        let mut terms = java_hash_map_order(terms);
        terms.sort_by_key(|t| std::cmp::Reverse(t.1));
        terms.truncate(vocabulary_size);
        Ok(CountVectorizerModelData {
            vocabulary: terms.into_iter().map(|(term, _)| term).collect(),
        })
    }
}

impl Stage for CountVectorizer {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let name = self.get(&INPUT_COL)?;
        let column =
            input
                .schema
                .typed_index("CountVectorizer", &name, &[DataType::StringArray])?;
        let (min_df, max_df) = (self.get(&MIN_DF)?, self.get(&MAX_DF)?);
        if ((min_df >= 1.0 && max_df >= 1.0) || (min_df < 1.0 && max_df < 1.0)) && max_df < min_df {
            return Err(MlError::InvalidParam {
                stage: "CountVectorizer".into(),
                param: MAX_DF.name().into(),
                message: format!(
                    "must be >= minDF ({min_df}), got {max_df}: maxDF must be >= minDF."
                ),
            });
        }
        let vocabulary_size = usize::try_from(self.get(&VOCABULARY_SIZE)?).unwrap_or(usize::MAX);
        let data = fit_aggregate(
            job,
            self,
            input,
            CountVectorizerModelData::schema(),
            Vocabulary::default,
            move |acc: &mut Vocabulary, batch: RowBatch| {
                if let Column::StringArray(documents) = batch.column(column) {
                    acc.add(documents);
                }
            },
            Vocabulary::merge,
            move |acc| Ok(acc.finish(min_df, max_df, vocabulary_size)?.to_batch()),
        );
        let mut model = CountVectorizerModel::new();
        model.params.copy_existing_from(&self.params)?;
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

/// The model's operator state.
struct Counting {
    column: usize,
    name: String,
    vocabulary: FxHashMap<String, u32>,
    size: usize,
    min_tf: f64,
    binary: bool,
    /// Vocabulary indices of the current document's terms.
    indices: Vec<u32>,
}

impl Counting {
    fn vector(&mut self, document: &[String]) -> SparseVector {
        self.indices.clear();
        self.indices.extend(
            document
                .iter()
                .filter_map(|t| self.vocabulary.get(t.as_str())),
        );
        self.indices.sort_unstable();
        let threshold = if self.min_tf >= 1.0 {
            self.min_tf
        } else {
            document.len() as f64 * self.min_tf
        };
        let value = |count: f64| if self.binary { 1.0 } else { count };
        if threshold <= 0.0 {
            // Every index passes, zeros included.
            let mut values = vec![0.0; self.size];
            for &i in &self.indices {
                values[i as usize] += 1.0;
            }
            for v in &mut values {
                *v = value(*v);
            }
            return SparseVector {
                size: self.size,
                indices: (0..self.size).collect(),
                values,
            };
        }
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut k = 0;
        while k < self.indices.len() {
            let index = self.indices[k];
            let run = self.indices[k..]
                .iter()
                .take_while(|i| **i == index)
                .count();
            if run as f64 >= threshold {
                indices.push(index as usize);
                values.push(value(run as f64));
            }
            k += run;
        }
        SparseVector {
            size: self.size,
            indices,
            values,
        }
    }

    fn apply(&mut self, batch: RowBatch) -> Result<RowBatch, String> {
        let Column::StringArray(documents) = batch.column(self.column) else {
            return Err(format!(
                "CountVectorizerModel: column `{}` is not a String[] column",
                self.name
            ));
        };
        let out = documents.iter().map(|d| self.vector(d)).collect();
        Ok(batch.with_column(Column::SparseVector(out)))
    }
}

impl Stage for CountVectorizerModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let name = self.get(&INPUT_COL)?;
        let column =
            input
                .schema
                .typed_index("CountVectorizerModel", &name, &[DataType::StringArray])?;
        let (min_tf, binary) = (self.get(&MIN_TF)?, self.get(&BINARY)?);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::SparseVector)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let row = ModelRow::single("CountVectorizerModel", schema, &batches)?;
                let terms = row.strings("vocabulary")?;
                let size = terms.len();
                // As Flink's HashMap: a repeated term keeps its last index.
                let vocabulary = terms
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (t, i as u32))
                    .collect();
                Ok(std::cell::RefCell::new(Counting {
                    column,
                    name,
                    vocabulary,
                    size,
                    min_tf,
                    binary,
                    indices: Vec::new(),
                }))
            },
            |counting, batch| counting.borrow_mut().apply(batch),
        );
        Ok(vec![out])
    }
}
