//! `Knn` (Flink ML's `org.apache.flink.ml.classification.knn`): k-nearest-neighbours
//! classification by Euclidean distance and majority vote.
//!
//! The fit gathers the training points into one model data row (Flink's packed matrix, the
//! squared norm of every point and its label); prediction computes the distances to all of
//! them as Flink does, `sqrt(|-2 x·y + ||x||² + ||y||²|)` (the dot products for blocks of 8
//! rows in one pass over the points), and votes as Flink does, including its rules for ties:
//!
//! - the `k` nearest are kept in a Java `PriorityQueue` (farthest at the head) that a point
//!   enters only if it is strictly closer than the head, so of points at equal distance the
//!   earlier ones in the model data stay (Weir replays Java's heap exactly);
//! - the votes are counted in a Java `HashMap` filled, by `merge`, in the order the queue
//!   gives the neighbours (farthest first), and the label with the most votes wins; of equal
//!   counts, the first in the map's iteration order (Weir replays the map's buckets, resizes
//!   and head insertions of `merge`; treeified buckets, which take 9 colliding labels and a
//!   table of 64, keep insertion order here). For labels `0.0` to `4.0`, which share a bucket
//!   in tables of up to 8 (k up to 8), this is the label whose farthest neighbour among the k
//!   is nearest.
//!
//! At parallelism 1 the model data holds the points in input order, as Flink's. At a larger
//! parallelism every instance gathers its rows and the model data is their concatenation in
//! a fixed order (of the first point of each part), so that a job's result does not depend on
//! which instance finishes first.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::api::{Fitted, Stage};
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::{dense_rows, first_size};
use crate::error::MlError;
use crate::param::shared::{FEATURES_COL, LABEL_COL, PREDICTION_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `k`: the number of nearest neighbours that vote.
pub const K: Param<i64> = Param::new(
    "k",
    "The number of nearest neighbors.",
    Some("5"),
    ParamType::Int,
    Validator::Gt(0.0),
);

stage!(
    /// Fits a [`KnnModel`]: the training points of `featuresCol` (dense or sparse vectors of
    /// one size, finite) with their `labelCol` (numbers).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::classification::knn::{Knn, K};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Double)]);
    ///     let row = |x: f64, y: f64, label: f64| vec![Value::DenseVector(vec![x, y]), Value::Double(label)];
    ///     let train = vec![row(0.0, 0.0, 1.0), row(0.1, 0.0, 1.0), row(0.0, 0.2, 1.0), row(5.0, 5.0, 2.0), row(5.1, 5.0, 2.0)];
    ///     let train = Table::from_rows(job, "train", schema.clone(), train)?;
    ///     let test = Table::from_rows(job, "test", schema, vec![row(0.2, 0.1, 1.0), row(4.0, 4.5, 2.0)])?;
    ///     let fitted = Knn::new().set(&K, 3)?.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let mut rows = out.json_rows();
    /// rows.sort_by(|a, b| a["label"].as_f64().partial_cmp(&b["label"].as_f64()).unwrap());
    /// assert_eq!(rows[0]["prediction"], 1.0);
    /// assert_eq!(rows[1]["prediction"], 2.0);
    /// ```
    Knn,
    "org.apache.flink.ml.classification.knn.Knn",
    [&FEATURES_COL.spec, &PREDICTION_COL.spec, &K.spec, &LABEL_COL.spec]
);

model!(
    /// Predicts `predictionCol` (a `Double`): the majority label of the `k` training points
    /// nearest to `featuresCol` (Euclidean), with Flink's rules for ties (see the module).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{Stage, TableData};
    /// use weir_flink_ml::classification::knn::{KnnModel, KnnModelData, K};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let data = KnnModelData::from_points(&[vec![0.0], vec![1.0], vec![10.0]], &[0.0, 0.0, 1.0]);
    /// let mut model = KnnModel::new().set(&K, 1).unwrap();
    /// model
    ///     .set_model_data(vec![TableData { schema: KnnModelData::schema(), batches: vec![data.to_batch()] }])
    ///     .unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![2.0])], vec![Value::DenseVector(vec![8.0])]];
    ///     let test = Table::from_rows(job, "test", schema, rows)?;
    ///     model.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let predictions: Vec<_> = out.json_rows().iter().map(|r| r["prediction"].clone()).collect();
    /// assert_eq!(predictions, [0.0, 1.0]);
    /// ```
    KnnModel,
    "org.apache.flink.ml.classification.knn.KnnModel",
    [&FEATURES_COL.spec, &PREDICTION_COL.spec, &K.spec]
);

impl crate::param::HasFeaturesCol for Knn {}
impl crate::param::HasLabelCol for Knn {}
impl crate::param::HasPredictionCol for Knn {}
impl crate::param::HasFeaturesCol for KnnModel {}
impl crate::param::HasPredictionCol for KnnModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(Knn, KnnModel);

/// The model data: one row (Flink's `KnnModelData`).
///
/// Table columns: `packedFeatures` (`DenseVector`), `featureNormSquares` (`DenseVector`),
/// `labels` (`DenseVector`). Flink's `packedFeatures` is a `DenseMatrix` of one column per
/// training point (`numRows` = the number of features, `numCols` = the number of points);
/// Weir's tables have no matrix type, so the column holds the matrix's column-major values,
/// Flink's `DenseMatrix.values`: point after point. The number of features is its size
/// divided by the number of labels.
///
/// ```
/// use weir_flink_ml::classification::knn::KnnModelData;
/// let data = KnnModelData::from_points(&[vec![1.0, 2.0], vec![3.0, 4.0]], &[0.0, 1.0]);
/// assert_eq!(data.packed_features, [1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(data.feature_norm_squares, [5.0, 25.0]);
/// assert_eq!(data.num_features(), 2);
/// let back = KnnModelData::from_batches(&KnnModelData::schema(), &[data.to_batch()]).unwrap();
/// assert_eq!(back, data);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct KnnModelData {
    /// The training points, one after the other (a column-major features × points matrix).
    pub packed_features: Vec<f64>,
    /// The squared L2 norm of every point.
    pub feature_norm_squares: Vec<f64>,
    /// The label of every point.
    pub labels: Vec<f64>,
}

impl KnnModelData {
    /// The model data table's schema (Flink's `packedFeatures`, `featureNormSquares`,
    /// `labels`).
    ///
    /// ```
    /// use weir_flink_ml::classification::knn::KnnModelData;
    /// assert_eq!(KnnModelData::schema().names(), ["packedFeatures", "featureNormSquares", "labels"]);
    /// ```
    pub fn schema() -> Schema {
        Schema::new([
            ("packedFeatures", DataType::DenseVector),
            ("featureNormSquares", DataType::DenseVector),
            ("labels", DataType::DenseVector),
        ])
    }

    /// The model data of `points` (of one size) and their `labels`.
    ///
    /// ```
    /// use weir_flink_ml::classification::knn::KnnModelData;
    /// let data = KnnModelData::from_points(&[vec![3.0, 4.0]], &[7.0]);
    /// assert_eq!((data.feature_norm_squares[0], data.labels[0]), (25.0, 7.0));
    /// ```
    pub fn from_points(points: &[Vec<f64>], labels: &[f64]) -> KnnModelData {
        KnnModelData {
            packed_features: points.concat(),
            feature_norm_squares: points.iter().map(|p| norm_square(p)).collect(),
            labels: labels.to_vec(),
        }
    }

    /// The number of features of every point (0 without points).
    ///
    /// ```
    /// use weir_flink_ml::classification::knn::KnnModelData;
    /// assert_eq!(KnnModelData::from_points(&[vec![0.0; 3]], &[1.0]).num_features(), 3);
    /// ```
    pub fn num_features(&self) -> usize {
        self.packed_features
            .len()
            .checked_div(self.labels.len())
            .unwrap_or(0)
    }

    /// The model data as a one-row batch (see the type's documentation for the layout).
    ///
    /// ```
    /// use weir_flink_ml::classification::knn::KnnModelData;
    /// assert_eq!(KnnModelData::from_points(&[vec![1.0]], &[0.0]).to_batch().rows(), 1);
    /// ```
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                dense_cell(self.packed_features.clone()),
                dense_cell(self.feature_norm_squares.clone()),
                dense_cell(self.labels.clone()),
            ],
        )
    }

    /// The model data from its table.
    ///
    /// ```
    /// use weir_flink_ml::classification::knn::KnnModelData;
    /// let data = KnnModelData::from_points(&[vec![1.0]], &[0.0]);
    /// let schema = KnnModelData::schema();
    /// assert_eq!(KnnModelData::from_batches(&schema, &[data.to_batch()]).unwrap(), data);
    /// assert!(KnnModelData::from_batches(&schema, &[]).unwrap_err().contains("empty"));
    /// ```
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("KnnModel", schema, batches)?;
        let data = KnnModelData {
            packed_features: row.vector("packedFeatures")?,
            feature_norm_squares: row.vector("featureNormSquares")?,
            labels: row.vector("labels")?,
        };
        let n = data.labels.len();
        if n == 0 {
            return Err("KnnModel: model data: no training points".into());
        }
        if data.feature_norm_squares.len() != n || data.packed_features.len() % n != 0 {
            return Err(format!(
                "KnnModel: model data: {} labels, {} norms and {} feature values do not make {n} points of one size",
                n,
                data.feature_norm_squares.len(),
                data.packed_features.len()
            ));
        }
        Ok(data)
    }
}

/// `||x||²`, summed in order.
fn norm_square(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |s, v| s + v * v)
}

/// The points one instance gathered: in input order, a part per instance after merging.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Points {
    parts: Vec<Part>,
    error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Part {
    dim: usize,
    features: Vec<f64>,
    norms: Vec<f64>,
    labels: Vec<f64>,
}

impl Part {
    /// The order of parts: by their first point's label, then its features.
    fn order(&self, other: &Part) -> Ordering {
        let first = |p: &Part| (p.labels.first().copied(), p.features.get(..p.dim).map(<[f64]>::to_vec));
        let (a, b) = (first(self), first(other));
        a.0.unwrap_or(0.0)
            .total_cmp(&b.0.unwrap_or(0.0))
            .then_with(|| {
                let (x, y) = (a.1.unwrap_or_default(), b.1.unwrap_or_default());
                x.iter()
                    .zip(&y)
                    .map(|(u, v)| u.total_cmp(v))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
    }
}

impl Points {
    fn dim(&self) -> Option<usize> {
        self.parts.first().map(|p| p.dim)
    }

    fn fold(&mut self, features: usize, label: usize, batch: &RowBatch) {
        if self.error.is_some() || batch.rows() == 0 {
            return;
        }
        if let Err(e) = self.fold_rows(features, label, batch) {
            self.error = Some(e);
        }
    }

    fn fold_rows(&mut self, features: usize, label: usize, batch: &RowBatch) -> Result<(), String> {
        let dim = match self.dim() {
            Some(dim) => dim,
            None => first_size(batch, features).unwrap_or(0),
        };
        if self.parts.is_empty() {
            self.parts.push(Part {
                dim,
                ..Part::default()
            });
        }
        let part = self.parts.last_mut().expect("a part");
        let labels = batch.column(label);
        dense_rows("Knn", batch, features, dim, |row, x| {
            let y = labels.number(row).ok_or_else(|| {
                format!(
                    "Knn: the label column must be numeric, got a {} column",
                    labels.data_type()
                )
            })?;
            if y.is_nan() {
                return Err(format!("Knn: row {row}: the label is missing (NaN)"));
            }
            if x.iter().any(|v| !v.is_finite()) {
                return Err(format!(
                    "Knn: row {row}: the features have a NaN or infinite element"
                ));
            }
            part.features.extend_from_slice(x);
            part.norms.push(norm_square(x));
            part.labels.push(y);
            Ok(())
        })
    }

    fn merge(&mut self, other: Points) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() {
            self.error = other.error;
            return;
        }
        if let (Some(a), Some(b)) = (self.dim(), other.dim()) {
            if a != b {
                self.error = Some(format!(
                    "Knn: the input vectors have {b} elements, expected {a}"
                ));
                return;
            }
        }
        self.parts
            .extend(other.parts.into_iter().filter(|p| !p.labels.is_empty()));
    }

    fn finish(self) -> Result<KnnModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut parts: Vec<Part> = self
            .parts
            .into_iter()
            .filter(|p| !p.labels.is_empty())
            .collect();
        if parts.is_empty() {
            return Err("Knn: the training data is empty".into());
        }
        parts.sort_by(Part::order);
        let mut data = KnnModelData {
            packed_features: Vec::new(),
            feature_norm_squares: Vec::new(),
            labels: Vec::new(),
        };
        for p in parts {
            data.packed_features.extend(p.features);
            data.feature_norm_squares.extend(p.norms);
            data.labels.extend(p.labels);
        }
        Ok(data)
    }
}

impl Stage for Knn {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let features = input.schema.typed_index(
            "Knn",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let label = input.schema.typed_index(
            "Knn",
            &self.get(&LABEL_COL)?,
            &[DataType::Double, DataType::Long],
        )?;
        let data = fit_aggregate(
            job,
            self,
            input,
            KnnModelData::schema(),
            Points::default,
            move |acc, batch| acc.fold(features, label, &batch),
            Points::merge,
            |acc| Ok(acc.finish()?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(KnnModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for KnnModel {
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
            "KnnModel",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let k = usize::try_from(self.get(&K)?).unwrap_or(usize::MAX);
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Double)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = KnnModelData::from_batches(schema, &batches)?;
                Ok(Predictor {
                    dim: data.num_features(),
                    k,
                    data,
                })
            },
            move |predictor, batch| predictor.predict_batch(features, batch),
        );
        Ok(vec![out])
    }
}

/// Rows whose dot products with the points are computed in one pass over the points.
const BLOCK: usize = 8;

struct Predictor {
    data: KnnModelData,
    dim: usize,
    k: usize,
}

impl Predictor {
    fn predict_batch(&self, features: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let (dim, rows, n) = (self.dim, batch.rows(), self.data.labels.len());
        let mut queries = Vec::with_capacity(rows * dim);
        dense_rows("KnnModel", &batch, features, dim, |row, x| {
            if x.iter().any(|v| !v.is_finite()) {
                return Err(format!(
                    "KnnModel: row {row}: the features have a NaN or infinite element"
                ));
            }
            queries.extend_from_slice(x);
            Ok(())
        })?;
        let mut predictions = Vec::with_capacity(rows);
        let mut dots = vec![0.0; BLOCK * n];
        let mut block = vec![0.0; dim * BLOCK];
        for start in (0..rows).step_by(BLOCK) {
            let b = BLOCK.min(rows - start);
            // The block's rows transposed: element t of every row together.
            block.fill(0.0);
            for q in 0..b {
                let x = &queries[(start + q) * dim..(start + q + 1) * dim];
                for (t, &v) in x.iter().enumerate() {
                    block[t * BLOCK + q] = v;
                }
            }
            for p in 0..n {
                let point = &self.data.packed_features[p * dim..(p + 1) * dim];
                // Every row's dot product summed in order (Flink's gemv), 8 rows at once.
                let mut acc = [0.0f64; BLOCK];
                for (&a, column) in point.iter().zip(block.chunks_exact(BLOCK)) {
                    for (s, &v) in acc.iter_mut().zip(column) {
                        *s += a * v;
                    }
                }
                for (q, &s) in acc.iter().enumerate().take(b) {
                    dots[q * n + p] = s;
                }
            }
            for q in 0..b {
                let x = &queries[(start + q) * dim..(start + q + 1) * dim];
                predictions.push(self.vote(&dots[q * n..(q + 1) * n], norm_square(x)));
            }
        }
        Ok(batch.with_column(Column::Double(predictions)))
    }

    /// Flink's `predictLabel` given the dot products of a row with every point.
    fn vote(&self, dots: &[f64], norm: f64) -> f64 {
        let labels = &self.data.labels;
        let mut nearest = JavaPriorityQueue::with_capacity(self.k.min(labels.len()));
        for ((&dot, &norm_i), &label) in dots
            .iter()
            .zip(&self.data.feature_norm_squares)
            .zip(labels)
        {
            let distance = (-2.0 * dot + norm + norm_i).abs().sqrt();
            if nearest.len() < self.k {
                nearest.offer((distance, label));
            } else if nearest.peek().0 > distance {
                nearest.poll();
                nearest.offer((distance, label));
            }
        }
        let mut weights = JavaHashMap::new(nearest.len());
        while let Some((_, label)) = nearest.poll() {
            weights.merge(label, 1.0);
        }
        let (mut max_weight, mut predicted) = (0.0, -1.0);
        for (label, weight) in weights.iter() {
            if weight > max_weight {
                max_weight = weight;
                predicted = label;
            }
        }
        predicted
    }
}

/// Java's `Double.doubleToLongBits` (one NaN).
fn java_bits(v: f64) -> u64 {
    if v.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        v.to_bits()
    }
}

/// Java's `Double.compare`.
fn java_compare(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        (java_bits(a) as i64).cmp(&(java_bits(b) as i64))
    }
}

/// Java's `PriorityQueue<Tuple2<distance, label>>` with Flink's comparator
/// `comparingDouble(-distance)`: the farthest at the head; `offer`, `peek` and `poll` move
/// the elements as Java's `siftUp` and `siftDown` do.
struct JavaPriorityQueue {
    queue: Vec<(f64, f64)>,
}

impl JavaPriorityQueue {
    fn with_capacity(capacity: usize) -> Self {
        JavaPriorityQueue {
            queue: Vec::with_capacity(capacity),
        }
    }

    fn compare(a: &(f64, f64), b: &(f64, f64)) -> Ordering {
        java_compare(-a.0, -b.0)
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn peek(&self) -> (f64, f64) {
        self.queue[0]
    }

    fn offer(&mut self, x: (f64, f64)) {
        let mut k = self.queue.len();
        self.queue.push(x);
        while k > 0 {
            let parent = (k - 1) >> 1;
            let e = self.queue[parent];
            if Self::compare(&x, &e) != Ordering::Less {
                break;
            }
            self.queue[k] = e;
            k = parent;
        }
        self.queue[k] = x;
    }

    fn poll(&mut self) -> Option<(f64, f64)> {
        let result = *self.queue.first()?;
        let x = self.queue.pop().expect("not empty");
        let n = self.queue.len();
        if n > 0 {
            let mut k = 0;
            let half = n >> 1;
            while k < half {
                let mut child = 2 * k + 1;
                let mut c = self.queue[child];
                let right = child + 1;
                if right < n && Self::compare(&c, &self.queue[right]) == Ordering::Greater {
                    child = right;
                    c = self.queue[child];
                }
                if Self::compare(&x, &c) != Ordering::Greater {
                    break;
                }
                self.queue[k] = c;
                k = child;
            }
            self.queue[k] = x;
        }
        Some(result)
    }
}

/// Java's `HashMap<Double, Double>` as far as Flink's vote uses it: `new HashMap<>(capacity)`,
/// `merge(key, value, Double::sum)` and iteration order. Buckets are replayed exactly (hash
/// spreading, lazy table creation and resizes, `merge`'s insertion at the head of a bucket,
/// `treeifyBin`'s resize of small tables); a bucket treeified in a table of 64 or more keeps
/// its list order.
struct JavaHashMap {
    table: Vec<Vec<(i32, u64, f64, f64)>>,
    threshold: i32,
    size: usize,
}

impl JavaHashMap {
    fn new(initial_capacity: usize) -> Self {
        // `tableSizeFor`: the power of two at least `initial_capacity` (at least 1).
        let threshold = initial_capacity.max(1).next_power_of_two().min(1 << 30) as i32;
        JavaHashMap {
            table: Vec::new(),
            threshold,
            size: 0,
        }
    }

    /// `HashMap.hash(key)` of a `Double`.
    fn hash(key: f64) -> i32 {
        let bits = java_bits(key);
        let h = (bits ^ (bits >> 32)) as u32;
        (h ^ (h >> 16)) as i32
    }

    fn resize(&mut self) {
        let old_cap = self.table.len();
        let (new_cap, mut new_threshold) = if old_cap > 0 {
            let threshold = if old_cap >= 16 { self.threshold << 1 } else { 0 };
            (old_cap << 1, threshold)
        } else if self.threshold > 0 {
            (self.threshold as usize, 0)
        } else {
            (16, 12)
        };
        if new_threshold == 0 {
            new_threshold = (new_cap as f32 * 0.75) as i32;
        }
        self.threshold = new_threshold;
        let mut table = vec![Vec::new(); new_cap];
        // Java splits every bucket into a low and a high list, keeping the order.
        for bucket in std::mem::take(&mut self.table) {
            for e in bucket {
                table[(e.0 as u32 as usize) & (new_cap - 1)].push(e);
            }
        }
        self.table = table;
    }

    fn merge(&mut self, key: f64, value: f64) {
        if self.size as i64 > self.threshold as i64 || self.table.is_empty() {
            self.resize();
        }
        let hash = Self::hash(key);
        let bits = java_bits(key);
        let i = (hash as u32 as usize) & (self.table.len() - 1);
        let bucket = &mut self.table[i];
        if let Some(e) = bucket.iter_mut().find(|e| e.0 == hash && e.1 == bits) {
            e.3 += value;
            return;
        }
        let bin_count = bucket.len();
        bucket.insert(0, (hash, bits, key, value));
        // TREEIFY_THRESHOLD - 1: `treeifyBin` resizes tables smaller than 64.
        if bin_count >= 7 && self.table.len() < 64 {
            self.resize();
        }
        self.size += 1;
    }

    /// (key, value) in Java's iteration order.
    fn iter(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.table.iter().flatten().map(|e| (e.2, e.3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(keys: &[f64], capacity: usize) -> Vec<f64> {
        let mut map = JavaHashMap::new(capacity);
        for &k in keys {
            map.merge(k, 1.0);
        }
        map.iter().map(|(k, _)| k).collect()
    }

    /// Java: `m = new HashMap<>(n); for (k : keys) m.merge(k, 1.0, Double::sum);
    /// m.keySet()`, printed by a JDK (values checked against Java's bucket arithmetic).
    #[test]
    fn hash_map_order_is_javas() {
        // 1.0, 2.0, 3.0 and 4.0 share bucket 0 in any table up to 8: merge inserts at the
        // head, so the last merged comes first.
        assert_eq!(order(&[2.0, 5.0], 2), [5.0, 2.0]);
        assert_eq!(order(&[1.0, 2.0, 3.0], 3), [3.0, 2.0, 1.0]);
        // 5.0 = 0x4014..: hash 0x40144014, bucket 4 of 8.
        assert_eq!(order(&[5.0, 1.0, 2.0], 5), [2.0, 1.0, 5.0]);
        assert_eq!(JavaHashMap::hash(5.0), 0x4014_4014);
        assert_eq!(JavaHashMap::hash(1.0), 0x3ff0_3ff0);
        assert_eq!(JavaHashMap::hash(0.0), 0);
    }

    #[test]
    fn priority_queue_polls_farthest_first() {
        let mut q = JavaPriorityQueue::with_capacity(4);
        for (d, l) in [(1.0, 1.0), (3.0, 3.0), (2.0, 2.0), (3.0, 4.0)] {
            q.offer((d, l));
        }
        let mut polled = Vec::new();
        while let Some(e) = q.poll() {
            polled.push(e);
        }
        // Java's heap: [3/3, 1/1, 2/2] + 3/4 -> [3/3, 3/4, 2/2, 1/1]; polls 3/3, 3/4, 2, 1.
        assert_eq!(polled, [(3.0, 3.0), (3.0, 4.0), (2.0, 2.0), (1.0, 1.0)]);
    }

    #[test]
    fn parts_merge_in_a_fixed_order() {
        let part = |x: f64, y: f64| Points {
            parts: vec![Part {
                dim: 1,
                features: vec![x],
                norms: vec![x * x],
                labels: vec![y],
            }],
            error: None,
        };
        let mut a = part(2.0, 1.0);
        a.merge(part(1.0, 0.0));
        let mut b = part(1.0, 0.0);
        b.merge(part(2.0, 1.0));
        assert_eq!(a.finish().unwrap(), b.finish().unwrap());
        assert!(Points::default().finish().unwrap_err().contains("empty"));
    }
}
