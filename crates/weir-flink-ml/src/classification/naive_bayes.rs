//! `NaiveBayes` (Flink ML's `org.apache.flink.ml.classification.naivebayes`): categorical
//! naive Bayes. Every element of a feature vector is a *category* (a value compared with
//! Java's `Double.equals`: `-0.0` is not `0.0`, `NaN` is one value), not a count as in
//! scikit-learn's `MultinomialNB`; Flink's `modelType` `multinomial` means one categorical
//! distribution per feature and label.
//!
//! With `s` the smoothing, `n_c` the rows of label `c`, `N` all rows, `D` the vector size, `C`
//! the labels, `K_j` the distinct values of feature `j` in the training data and `n_cjv` the
//! rows of label `c` whose feature `j` is `v`, Flink's model is
//!
//! - `theta[c][j][v] = ln(n_cjv + s) - ln(n_c + s * K_j)` for every value `v` of feature `j`
//!   seen with any label (so every label's map of feature `j` has the same `K_j` keys),
//! - `piArray[c] = ln(n_c * D + s) - ln(N * D + C * s)`,
//!
//! and a row is predicted as the label maximising `sum_j theta[c][j][x_j] + piArray[c]`. This is
//! scikit-learn's `CategoricalNB(alpha=s)` when the categories of every feature are `0..K_j`
//! and the class prior is Flink's `exp(piArray)` (scikit-learn's own prior is `n_c / N`); as in
//! Flink, a value the training data did not have for a feature is an error at prediction
//! (Flink: a `NullPointerException`).
//!
//! The fit is a distributed aggregate: every instance counts its rows per label, feature and
//! value, and one instance merges the counts and computes the model.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::api::{Fitted, Stage};
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::error::MlError;
use crate::param::shared::{FEATURES_COL, LABEL_COL, PREDICTION_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `smoothing`: the additive (Laplace/Lidstone) smoothing of the value counts.
pub const SMOOTHING: Param<f64> = Param::new(
    "smoothing",
    "The smoothing parameter.",
    Some("1.0"),
    ParamType::Double,
    Validator::GtEq(0.0),
);
/// `modelType`: the model type; Flink ML has `multinomial` only.
pub const MODEL_TYPE: Param<String> = Param::new(
    "modelType",
    "The model type.",
    Some("\"multinomial\""),
    ParamType::String,
    Validator::InArray(&["multinomial"]),
);

stage!(
    /// Fits a [`NaiveBayesModel`] on `featuresCol` (dense or sparse vectors of one size,
    /// every element a category) and `labelCol` (numbers with integer values, as Flink
    /// requires: "Label value should be indexed number."), with additive `smoothing`.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::classification::naive_bayes::{NaiveBayes, SMOOTHING};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     // Flink ML's NaiveBayesTest.
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Long)]);
    ///     let train = [([0.0, 0.0], 11), ([1.0, 0.0], 10), ([1.0, 1.0], 10)]
    ///         .iter()
    ///         .map(|(x, y)| vec![Value::DenseVector(x.to_vec()), Value::Long(*y)])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema, train)?;
    ///     let test = Schema::new([("features", DataType::DenseVector)]);
    ///     let test = Table::from_rows(job, "test", test, vec![vec![Value::DenseVector(vec![0.0, 1.0])]])?;
    ///     let nb = NaiveBayes::new().set(&SMOOTHING, 1.0)?;
    ///     let fitted = nb.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.json_rows()[0]["prediction"], 11.0);
    /// ```
    NaiveBayes,
    "org.apache.flink.ml.classification.naivebayes.NaiveBayes",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &MODEL_TYPE.spec,
        &LABEL_COL.spec,
        &SMOOTHING.spec
    ]
);

model!(
    /// Predicts `predictionCol` (a `Double`): the label with the largest
    /// `sum_j theta[label][j][x_j] + piArray[label]` for the categories `x_j` of
    /// `featuresCol`; of equally likely labels the smallest (the model data's labels are in
    /// ascending order, and Flink takes the first of equal maxima). A value a feature did not
    /// have in the training data, or a vector of another size, fails the job naming the row.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{Stage, TableData};
    /// use weir_flink_ml::classification::naive_bayes::{NaiveBayesModel, NaiveBayesModelData};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// // One feature with categories 0 and 1; label 1 prefers category 1.
    /// let data = NaiveBayesModelData {
    ///     theta: vec![
    ///         vec![vec![(0.0, 0.8f64.ln()), (1.0, 0.2f64.ln())]],
    ///         vec![vec![(0.0, 0.3f64.ln()), (1.0, 0.7f64.ln())]],
    ///     ],
    ///     pi_array: vec![0.5f64.ln(), 0.5f64.ln()],
    ///     labels: vec![0.0, 1.0],
    /// };
    /// let mut model = NaiveBayesModel::new();
    /// model
    ///     .set_model_data(vec![TableData { schema: NaiveBayesModelData::schema(), batches: vec![data.to_batch()] }])
    ///     .unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![0.0])], vec![Value::DenseVector(vec![1.0])]];
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     model.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let predictions: Vec<_> = out.json_rows().iter().map(|r| r["prediction"].clone()).collect();
    /// assert_eq!(predictions, [0.0, 1.0]);
    /// ```
    NaiveBayesModel,
    "org.apache.flink.ml.classification.naivebayes.NaiveBayesModel",
    [&FEATURES_COL.spec, &PREDICTION_COL.spec, &MODEL_TYPE.spec]
);

impl crate::param::HasFeaturesCol for NaiveBayes {}
impl crate::param::HasLabelCol for NaiveBayes {}
impl crate::param::HasPredictionCol for NaiveBayes {}
impl crate::param::HasFeaturesCol for NaiveBayesModel {}
impl crate::param::HasPredictionCol for NaiveBayesModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(NaiveBayes, NaiveBayesModel);

/// The model data: one row (Flink's `NaiveBayesModelData`).
///
/// Table columns: `theta` (`DenseVector[]`), `piArray` (`DenseVector`), `labels`
/// (`DenseVector`). Flink's `theta` is a `Map<Double, Double>[labels][features]`; Weir's
/// tables have no map type, so the column holds one vector per map, label after label
/// (entry `c * features + j` is `theta[c][j]`), each map flattened into its pairs
/// `[value_0, logProb_0, value_1, logProb_1, ...]` in ascending order of value. The number of
/// features is the number of vectors divided by the number of labels.
///
/// ```
/// use weir_flink_ml::classification::naive_bayes::NaiveBayesModelData;
/// let data = NaiveBayesModelData {
///     theta: vec![vec![vec![(1.0, -0.5), (2.0, -1.0)], vec![(0.0, 0.0)]]],
///     pi_array: vec![0.0],
///     labels: vec![11.0],
/// };
/// let batch = data.to_batch();
/// let back = NaiveBayesModelData::from_batches(&NaiveBayesModelData::schema(), &[batch]).unwrap();
/// assert_eq!(back, data);
/// assert_eq!(back.log_prob(0, 0, 2.0), Some(-1.0));
/// assert_eq!(back.log_prob(0, 1, 2.0), None);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NaiveBayesModelData {
    /// Per label, per feature: the (value, log probability) pairs, values ascending.
    pub theta: Vec<Vec<Vec<(f64, f64)>>>,
    /// The log prior of every label.
    pub pi_array: Vec<f64>,
    /// The labels, ascending.
    pub labels: Vec<f64>,
}

impl NaiveBayesModelData {
    /// The model data table's schema (Flink's `theta`, `piArray`, `labels`).
    ///
    /// ```
    /// use weir_flink_ml::classification::naive_bayes::NaiveBayesModelData;
    /// assert_eq!(NaiveBayesModelData::schema().names(), ["theta", "piArray", "labels"]);
    /// ```
    pub fn schema() -> Schema {
        Schema::new([
            ("theta", DataType::DenseVectorArray),
            ("piArray", DataType::DenseVector),
            ("labels", DataType::DenseVector),
        ])
    }

    /// The model data as a one-row batch (see the type's documentation for the layout).
    ///
    /// ```
    /// use weir_flink_ml::classification::naive_bayes::NaiveBayesModelData;
    /// let data = NaiveBayesModelData { theta: vec![vec![vec![(0.0, -0.1)]]], pi_array: vec![0.0], labels: vec![1.0] };
    /// assert_eq!(data.to_batch().rows(), 1);
    /// ```
    pub fn to_batch(&self) -> RowBatch {
        let maps = self
            .theta
            .iter()
            .flatten()
            .map(|map| map.iter().flat_map(|&(v, p)| [v, p]).collect())
            .collect();
        RowBatch::new(
            1,
            vec![
                Column::DenseVectorArray(vec![maps]),
                dense_cell(self.pi_array.clone()),
                dense_cell(self.labels.clone()),
            ],
        )
    }

    /// The model data from its table.
    ///
    /// ```
    /// use weir_flink_ml::classification::naive_bayes::NaiveBayesModelData;
    /// let data = NaiveBayesModelData { theta: vec![vec![vec![(0.0, -0.1)]]], pi_array: vec![0.0], labels: vec![1.0] };
    /// let schema = NaiveBayesModelData::schema();
    /// assert_eq!(NaiveBayesModelData::from_batches(&schema, &[data.to_batch()]).unwrap(), data);
    /// assert!(NaiveBayesModelData::from_batches(&schema, &[]).unwrap_err().contains("empty"));
    /// ```
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("NaiveBayesModel", schema, batches)?;
        let maps = row.vectors("theta")?;
        let pi_array = row.vector("piArray")?;
        let labels = row.vector("labels")?;
        let wrong = |message: String| format!("NaiveBayesModel: model data: {message}");
        if labels.is_empty() {
            return Err(wrong("no labels".into()));
        }
        if pi_array.len() != labels.len() {
            return Err(wrong(format!(
                "piArray has {} elements for {} labels",
                pi_array.len(),
                labels.len()
            )));
        }
        if maps.len() % labels.len() != 0 {
            return Err(wrong(format!(
                "theta has {} maps, not a multiple of the {} labels",
                maps.len(),
                labels.len()
            )));
        }
        let features = maps.len() / labels.len();
        if features == 0 {
            return Ok(NaiveBayesModelData {
                theta: vec![Vec::new(); labels.len()],
                pi_array,
                labels,
            });
        }
        let mut theta = Vec::with_capacity(labels.len());
        for chunk in maps.chunks(features) {
            let mut per_label = Vec::with_capacity(features);
            for map in chunk {
                if map.len() % 2 != 0 {
                    return Err(wrong(
                        "a theta map must be [value, logProb, ...] pairs".into(),
                    ));
                }
                per_label.push(map.chunks_exact(2).map(|p| (p[0], p[1])).collect());
            }
            theta.push(per_label);
        }
        Ok(NaiveBayesModelData {
            theta,
            pi_array,
            labels,
        })
    }

    /// The log probability of `value` for feature `feature` given the label at
    /// `label_index` (`None` if the map has no such value).
    ///
    /// ```
    /// use weir_flink_ml::classification::naive_bayes::NaiveBayesModelData;
    /// let data = NaiveBayesModelData { theta: vec![vec![vec![(0.0, -0.1)]]], pi_array: vec![0.0], labels: vec![1.0] };
    /// assert_eq!(data.log_prob(0, 0, 0.0), Some(-0.1));
    /// assert_eq!(data.log_prob(0, 0, -0.0), None, "Java's Double.equals: -0.0 is not 0.0");
    /// ```
    pub fn log_prob(&self, label_index: usize, feature: usize, value: f64) -> Option<f64> {
        let key = java_bits(value);
        self.theta
            .get(label_index)?
            .get(feature)?
            .iter()
            .find(|(v, _)| java_bits(*v) == key)
            .map(|&(_, p)| p)
    }
}

/// The key of a double as Java's `Double.equals` compares them (`doubleToLongBits`: one NaN,
/// `-0.0` distinct from `0.0`).
fn java_bits(v: f64) -> u64 {
    if v.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        v.to_bits()
    }
}

/// Values counted in a dense array: non-negative integers below this (the usual encodings
/// of categories); other values go to a hash map.
const SMALL_VALUES: usize = 256;

/// The index of `v` among the small values, if it is one (`+0.0` only: `-0.0` is another
/// value in Java).
fn small_index(v: f64) -> Option<usize> {
    if v >= 0.0 && v < SMALL_VALUES as f64 && v.fract() == 0.0 && v.to_bits() >> 63 == 0 {
        Some(v as usize)
    } else {
        None
    }
}

/// The rows of one label and feature per value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ValueCounts {
    /// Counts of the values `0.0, 1.0, ...` (see [`SMALL_VALUES`]).
    small: Vec<u64>,
    /// Counts of other values by [`java_bits`].
    other: HashMap<u64, u64>,
}

impl ValueCounts {
    #[inline]
    fn add(&mut self, v: f64, n: u64) {
        match small_index(v) {
            Some(i) => {
                if self.small.len() <= i {
                    self.small.resize(i + 1, 0);
                }
                self.small[i] += n;
            }
            None => *self.other.entry(java_bits(v)).or_insert(0) += n,
        }
    }

    fn merge(&mut self, other: ValueCounts) {
        for (i, n) in other.small.into_iter().enumerate() {
            if n > 0 {
                self.add(i as f64, n);
            }
        }
        for (key, n) in other.other {
            *self.other.entry(key).or_insert(0) += n;
        }
    }

    /// The counted values (as [`java_bits`]) and their counts.
    fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.small
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| ((i as f64).to_bits(), n))
            .chain(self.other.iter().map(|(&k, &n)| (k, n)))
    }
}

/// The rows of one label: how many, and per feature per value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LabelCounts {
    label: f64,
    rows: u64,
    features: Vec<ValueCounts>,
}

/// What every instance counts, and the first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counts {
    /// The vector size (set by the first row).
    dim: Option<usize>,
    /// Per label (by [`java_bits`]).
    labels: HashMap<u64, LabelCounts>,
    error: Option<String>,
}

const UNEQUAL_LENGTHS: &str = "Feature vectors should be of equal length.";

/// A label as Flink reads it: a number whose `intValue()` equals its `doubleValue()`.
fn label_of(stage: &str, column: &Column, row: usize) -> Result<f64, String> {
    let (ok, value) = match column {
        Column::Long(c) => {
            let v = c[row];
            ((v as i32) as i64 == v, v as f64)
        }
        Column::Double(c) => {
            let v = c[row];
            if v.is_nan() {
                return Err(format!(
                    "{stage}: row {row}: the label is missing (NaN); Input data should contain label value."
                ));
            }
            ((v as i32) as f64 == v, v)
        }
        other => {
            return Err(format!(
                "{stage}: the label column must be numeric, got a {} column",
                other.data_type()
            ))
        }
    };
    if !ok {
        return Err(format!(
            "{stage}: row {row}: label {value}: Label value should be indexed number."
        ));
    }
    Ok(value)
}

impl Counts {
    fn fold(&mut self, features: usize, label: usize, batch: &RowBatch) {
        if self.error.is_some() || batch.rows() == 0 {
            return;
        }
        if let Err(e) = self.fold_rows(features, label, batch) {
            self.error = Some(e);
        }
    }

    fn fold_rows(&mut self, features: usize, label: usize, batch: &RowBatch) -> Result<(), String> {
        let (features, labels) = (batch.column(features), batch.column(label));
        for row in 0..batch.rows() {
            let y = label_of("NaiveBayes", labels, row)?;
            let x = features.vector(row).ok_or_else(|| {
                format!(
                    "NaiveBayes: expected a vector column, got a {} column",
                    features.data_type()
                )
            })?;
            let dim = *self.dim.get_or_insert(x.size());
            if x.size() != dim {
                return Err(format!(
                    "NaiveBayes: {UNEQUAL_LENGTHS} (row {row} has {} elements, others {dim})",
                    x.size()
                ));
            }
            let counts = self.labels.entry(java_bits(y)).or_insert_with(|| LabelCounts {
                label: y,
                rows: 0,
                features: vec![ValueCounts::default(); dim],
            });
            counts.rows += 1;
            match x {
                crate::table::VectorRef::Dense(values) => {
                    for (c, &v) in counts.features.iter_mut().zip(values) {
                        c.add(v, 1);
                    }
                }
                crate::table::VectorRef::Sparse(v) => {
                    // Every element, the zeros too (Flink's `vector.get(i)` for i < size).
                    let mut next = 0;
                    for (&i, &value) in v.indices.iter().zip(&v.values) {
                        for c in &mut counts.features[next..i] {
                            c.add(0.0, 1);
                        }
                        counts.features[i].add(value, 1);
                        next = i + 1;
                    }
                    for c in &mut counts.features[next..] {
                        c.add(0.0, 1);
                    }
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: Counts) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() {
            self.error = other.error;
            return;
        }
        match (self.dim, other.dim) {
            (_, None) => return,
            (None, Some(_)) => {
                *self = other;
                return;
            }
            (Some(a), Some(b)) if a != b => {
                self.error = Some(format!(
                    "NaiveBayes: {UNEQUAL_LENGTHS} (vectors of {a} and of {b} elements)"
                ));
                return;
            }
            _ => {}
        }
        for (key, theirs) in other.labels {
            match self.labels.get_mut(&key) {
                None => {
                    self.labels.insert(key, theirs);
                }
                Some(ours) => {
                    ours.rows += theirs.rows;
                    for (a, b) in ours.features.iter_mut().zip(theirs.features) {
                        a.merge(b);
                    }
                }
            }
        }
    }

    /// Flink's `GenerateModelFunction`.
    fn finish(self, smoothing: f64) -> Result<NaiveBayesModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let dim = match self.dim {
            Some(dim) if !self.labels.is_empty() => dim,
            _ => return Err("NaiveBayes: the training data is empty".into()),
        };
        let mut labels: Vec<LabelCounts> = self.labels.into_values().collect();
        labels.sort_by(|a, b| a.label.total_cmp(&b.label));
        // The values of every feature over all labels, ascending.
        let categories: Vec<Vec<f64>> = (0..dim)
            .map(|j| {
                let mut keys: Vec<u64> = labels
                    .iter()
                    .flat_map(|l| l.features[j].entries().map(|(k, _)| k))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                let mut values: Vec<f64> = keys.into_iter().map(f64::from_bits).collect();
                values.sort_by(f64::total_cmp);
                values
            })
            .collect();
        let total_rows: f64 = labels.iter().map(|l| l.rows as f64).sum();
        let num_labels = labels.len() as f64;
        let pi_log = (total_rows * dim as f64 + num_labels * smoothing).ln();
        let mut theta = Vec::with_capacity(labels.len());
        let mut pi_array = Vec::with_capacity(labels.len());
        for l in &labels {
            let n = l.rows as f64;
            let mut per_feature = Vec::with_capacity(dim);
            for (j, values) in categories.iter().enumerate() {
                let counts: HashMap<u64, u64> = l.features[j].entries().collect();
                let theta_log = (n + smoothing * values.len() as f64).ln();
                per_feature.push(
                    values
                        .iter()
                        .map(|&v| {
                            let count = counts.get(&java_bits(v)).copied().unwrap_or(0) as f64;
                            (v, (count + smoothing).ln() - theta_log)
                        })
                        .collect(),
                );
            }
            theta.push(per_feature);
            pi_array.push((n * dim as f64 + smoothing).ln() - pi_log);
        }
        Ok(NaiveBayesModelData {
            theta,
            pi_array,
            labels: labels.iter().map(|l| l.label).collect(),
        })
    }
}

impl Stage for NaiveBayes {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let features = input.schema.typed_index(
            "NaiveBayes",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let label = input.schema.typed_index(
            "NaiveBayes",
            &self.get(&LABEL_COL)?,
            &[DataType::Double, DataType::Long],
        )?;
        let smoothing = self.get(&SMOOTHING)?;
        let data = fit_aggregate(
            job,
            self,
            input,
            NaiveBayesModelData::schema(),
            Counts::default,
            move |acc, batch| acc.fold(features, label, &batch),
            Counts::merge,
            move |acc| Ok(acc.finish(smoothing)?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(NaiveBayesModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for NaiveBayesModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let features = input.schema.typed_index(
            "NaiveBayesModel",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Double)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            |schema, batches| Predictor::new(&NaiveBayesModelData::from_batches(schema, &batches)?),
            move |predictor, batch| predictor.predict_batch(features, batch),
        );
        Ok(vec![out])
    }
}

/// The value -> category index lookup of one feature.
struct Lookup {
    /// Indices of the small values (`u32::MAX`: not a category).
    small: Vec<u32>,
    /// Indices of the other values, by [`java_bits`].
    other: HashMap<u64, u32>,
}

impl Lookup {
    #[inline]
    fn get(&self, v: f64) -> Option<usize> {
        match small_index(v) {
            Some(i) => self
                .small
                .get(i)
                .copied()
                .filter(|&c| c != u32::MAX)
                .map(|c| c as usize),
            None => self.other.get(&java_bits(v)).map(|&c| c as usize),
        }
    }
}

/// The model data laid out for prediction: per feature, a lookup of its categories and
/// their log probabilities for every label (labels contiguous).
struct Predictor {
    labels: Vec<f64>,
    pi_array: Vec<f64>,
    lookups: Vec<Lookup>,
    tables: Vec<Vec<f64>>,
}

impl Predictor {
    fn new(data: &NaiveBayesModelData) -> Result<Predictor, String> {
        let num_labels = data.labels.len();
        let dim = data.theta.first().map_or(0, Vec::len);
        if data.theta.len() != num_labels
            || data.pi_array.len() != num_labels
            || data.theta.iter().any(|t| t.len() != dim)
        {
            return Err(format!(
                "NaiveBayesModel: model data: theta must have {num_labels} labels of {dim} features and piArray {num_labels} elements"
            ));
        }
        let mut lookups = Vec::with_capacity(dim);
        let mut tables = Vec::with_capacity(dim);
        for j in 0..dim {
            let values = &data.theta[0][j];
            let mut lookup = Lookup {
                small: Vec::new(),
                other: HashMap::new(),
            };
            for (c, &(v, _)) in values.iter().enumerate() {
                match small_index(v) {
                    Some(i) => {
                        if lookup.small.len() <= i {
                            lookup.small.resize(i + 1, u32::MAX);
                        }
                        lookup.small[i] = c as u32;
                    }
                    None => {
                        lookup.other.insert(java_bits(v), c as u32);
                    }
                }
            }
            let mut table = vec![0.0; values.len() * num_labels];
            for (i, per_label) in data.theta.iter().enumerate() {
                let map = &per_label[j];
                if map.len() != values.len()
                    || map
                        .iter()
                        .zip(values)
                        .any(|((a, _), (b, _))| java_bits(*a) != java_bits(*b))
                {
                    return Err(format!(
                        "NaiveBayesModel: model data: the theta maps of feature {j} have other values for label {} than for label {}",
                        data.labels[i], data.labels[0]
                    ));
                }
                for (c, &(_, p)) in map.iter().enumerate() {
                    table[c * num_labels + i] = p;
                }
            }
            lookups.push(lookup);
            tables.push(table);
        }
        Ok(Predictor {
            labels: data.labels.clone(),
            pi_array: data.pi_array.clone(),
            lookups,
            tables,
        })
    }

    /// Flink's `calculateProb` and `findMaxProbLabel` for one row.
    fn predict(&self, row: usize, x: &[f64], probs: &mut [f64]) -> Result<f64, String> {
        let num_labels = self.labels.len();
        probs.fill(0.0);
        for (j, &v) in x.iter().enumerate() {
            let c = self.lookups[j].get(v).ok_or_else(|| {
                format!(
                    "NaiveBayesModel: row {row}: feature {j} has the value {v}, which it does not have in the training data (Flink fails with a NullPointerException)"
                )
            })?;
            let logp = &self.tables[j][c * num_labels..(c + 1) * num_labels];
            for (p, l) in probs.iter_mut().zip(logp) {
                *p += l;
            }
        }
        let mut best = (f64::NEG_INFINITY, 0.0);
        for ((p, pi), &label) in probs.iter().zip(&self.pi_array).zip(&self.labels) {
            let p = p + pi;
            if best.0 < p {
                best = (p, label);
            }
        }
        if best.0 > f64::NEG_INFINITY {
            Ok(best.1)
        } else {
            Err(format!(
                "NaiveBayesModel: row {row}: every label has probability 0 (smoothing 0 and values unseen with every label)"
            ))
        }
    }

    fn predict_batch(&self, features: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let dim = self.lookups.len();
        let mut probs = vec![0.0; self.labels.len()];
        let mut predictions = Vec::with_capacity(batch.rows());
        let column = batch.column(features);
        let mut dense = vec![0.0; dim];
        for row in 0..batch.rows() {
            let x = column.vector(row).ok_or_else(|| {
                format!(
                    "NaiveBayesModel: expected a vector column, got a {} column",
                    column.data_type()
                )
            })?;
            if x.size() != dim {
                return Err(format!(
                    "NaiveBayesModel: row {row} has a vector of size {}, the model {dim}",
                    x.size()
                ));
            }
            let values = match x {
                crate::table::VectorRef::Dense(values) => values,
                crate::table::VectorRef::Sparse(v) => {
                    dense.fill(0.0);
                    for (&i, &value) in v.indices.iter().zip(&v.values) {
                        dense[i] = value;
                    }
                    &dense[..]
                }
            };
            predictions.push(self.predict(row, values, &mut probs)?);
        }
        Ok(batch.with_column(Column::Double(predictions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(&[f64], f64)]) -> Counts {
        let schema = Schema::new([
            ("features", DataType::DenseVector),
            ("label", DataType::Double),
        ]);
        let rows = rows
            .iter()
            .map(|(x, y)| {
                vec![
                    crate::table::Value::DenseVector(x.to_vec()),
                    crate::table::Value::Double(*y),
                ]
            })
            .collect();
        let batch = RowBatch::from_rows(&schema, rows, 1000).unwrap().remove(0);
        let mut c = Counts::default();
        c.fold(0, 1, &batch);
        c
    }

    /// Flink's `testGetModelData`.
    #[test]
    fn model_data_as_flinks_unit_test() {
        let data = counts(&[(&[1.0, 1.0], 11.0), (&[2.0, 1.0], 11.0)])
            .finish(1.0)
            .unwrap();
        assert_eq!(data.labels, [11.0]);
        assert!(data.pi_array[0].abs() < 1e-12);
        assert!((data.log_prob(0, 0, 1.0).unwrap() + std::f64::consts::LN_2).abs() < 1e-12);
        assert!((data.log_prob(0, 0, 2.0).unwrap() + std::f64::consts::LN_2).abs() < 1e-12);
        assert!(data.log_prob(0, 1, 1.0).unwrap().abs() < 1e-12);
    }

    #[test]
    fn counts_merge_as_one_and_values_are_javas() {
        let rows: [(&[f64], f64); 4] = [
            (&[0.0, 300.5], 1.0),
            (&[-0.0, 300.5], 1.0),
            (&[f64::NAN, 7.0], 2.0),
            (&[0.0, 7.0], 2.0),
        ];
        let whole = counts(&rows).finish(0.5).unwrap();
        let mut a = counts(&rows[..1]);
        a.merge(counts(&rows[1..3]));
        a.merge(counts(&rows[3..]));
        // (Debug forms: NaN is a category, and NaN != NaN.)
        assert_eq!(format!("{:?}", a.finish(0.5).unwrap()), format!("{whole:?}"));
        // -0.0, 0.0 and NaN: three categories of feature 0.
        assert_eq!(whole.theta[0][0].len(), 3);
        assert!(whole.log_prob(1, 0, f64::NAN).is_some());
        let mut b = counts(&rows[..1]);
        b.merge(counts(&[(&[1.0], 1.0)]));
        assert!(b.finish(1.0).unwrap_err().contains(UNEQUAL_LENGTHS));
    }

    #[test]
    fn labels_must_be_indexed_numbers() {
        let c = counts(&[(&[1.0], 1.5)]);
        assert!(c
            .finish(1.0)
            .unwrap_err()
            .contains("Label value should be indexed number."));
        assert!(Counts::default().finish(1.0).unwrap_err().contains("empty"));
    }
}
