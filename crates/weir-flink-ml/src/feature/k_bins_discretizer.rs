//! `KBinsDiscretizer`: maps every element of a vector to the index of its bin, with bins per
//! element of equal width (`uniform`), of equal population (`quantile`) or around 1-D k-means
//! centroids (`kmeans`) of the training data (Flink ML's
//! `org.apache.flink.ml.feature.kbinsdiscretizer`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::java_math::{java_max, java_min};
use crate::common::model_row::ModelRow;
use crate::common::vector_columns::{dense_rows, first_size};
use super::robust_scaler::java_compare;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::benchmark::{java_string_hash, JavaRandom};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `strategy`: how bin edges are chosen (`uniform`, `quantile` or `kmeans`).
pub const STRATEGY: Param<String> = Param::new(
    "strategy",
    "Strategy used to define the width of the bin.",
    Some("\"quantile\""),
    ParamType::String,
    Validator::InArray(&["uniform", "quantile", "kmeans"]),
);
/// `numBins`: the number of bins per element.
pub const NUM_BINS: Param<i64> = Param::new(
    "numBins",
    "Number of bins to produce.",
    Some("5"),
    ParamType::Int,
    Validator::GtEq(2.0),
);
/// `subSamples`: at most this many rows (a uniform sample) fit the `quantile` and `kmeans`
/// strategies.
pub const SUB_SAMPLES: Param<i64> = Param::new(
    "subSamples",
    "Maximum number of samples used to fit the model.",
    Some("200000"),
    ParamType::Int,
    Validator::GtEq(2.0),
);

stage!(
    /// Fits a [`KBinsDiscretizerModel`]: `numBins` bins for every element of `inputCol`
    /// (dense or sparse vectors of one size). `uniform` splits `[min, max]` evenly;
    /// `quantile` takes every `n / numBins`-th sorted value of a sample of `subSamples` rows
    /// (edges that repeat are spread to their neighbours' means); `kmeans` puts edges half
    /// way between the sorted centroids of a 1-D k-means of that sample. A constant element
    /// gets one bin.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{k_bins_discretizer::{NUM_BINS, STRATEGY}, KBinsDiscretizer};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let train = (0..=10).map(|i| vec![Value::DenseVector(vec![i as f64])]).collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), train)?;
    ///     let test = vec![vec![Value::DenseVector(vec![7.5])]];
    ///     let test = Table::from_rows(job, "test", schema, test)?;
    ///     let bins = KBinsDiscretizer::new()
    ///         .set(&STRATEGY, "uniform".to_string())?
    ///         .set(&NUM_BINS, 2)?;
    ///     let fitted = bins.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Bins [0, 5) and [5, 10]: 7.5 is in bin 1.
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![1.0]));
    /// ```
    KBinsDiscretizer,
    "org.apache.flink.ml.feature.kbinsdiscretizer.KBinsDiscretizer",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &STRATEGY.spec,
        &NUM_BINS.spec,
        &SUB_SAMPLES.spec,
    ]
);

model!(
    /// Replaces every element of `inputCol` by the index of its bin (as a double) in
    /// `outputCol` (dense vectors): values on an edge go to the bin that starts there,
    /// values outside the training range to the first or last bin.
    KBinsDiscretizerModel,
    "org.apache.flink.ml.feature.kbinsdiscretizer.KBinsDiscretizerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(KBinsDiscretizer, KBinsDiscretizerModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct KBinsDiscretizerModelData {
    /// The ascending bin edges of every element (`[-inf, inf]` for a constant one).
    pub bin_edges: Vec<Vec<f64>>,
}

impl KBinsDiscretizerModelData {
    /// The model data table's schema (Flink's `binEdges`, a `double[][]`).
    pub fn schema() -> Schema {
        Schema::new([("binEdges", DataType::DenseVectorArray)])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![Column::DenseVectorArray(vec![self.bin_edges.clone()])],
        )
    }

    /// The model data from its table. Saved model data is JSON, where infinities become
    /// null (read back as NaN): the edges `[NaN, NaN]` are read as a constant element's
    /// `[-inf, inf]` (the two put every value in bin 0 alike).
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("KBinsDiscretizerModel", schema, batches)?;
        let mut bin_edges = row.vectors("binEdges")?;
        for edges in &mut bin_edges {
            if edges.len() == 2 && edges.iter().all(|e| e.is_nan()) {
                *edges = vec![f64::NEG_INFINITY, f64::INFINITY];
            }
            if edges.len() < 2 {
                return Err(format!(
                    "KBinsDiscretizerModel: every element needs at least 2 bin edges, got {edges:?}"
                ));
            }
        }
        Ok(KBinsDiscretizerModelData { bin_edges })
    }
}

/// The seed of Flink's sampling: `KBinsDiscretizer.class.getName().hashCode()`.
fn sampling_seed() -> i64 {
    java_string_hash(KBinsDiscretizer::CLASS)
}

/// Rows (densified, flat) kept by one instance's reservoir, and how many it saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Reservoir {
    seen: u64,
    dim: usize,
    rows: Vec<f64>,
}

impl Reservoir {
    fn len(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }
}

/// What a fit gathers: per-element minima and maxima (`uniform`) or a row sample.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Gathered {
    /// Minimum and maximum per element, once there was a row.
    MinMax(Option<(Vec<f64>, Vec<f64>)>),
    /// One reservoir per instance that folded rows (merging appends).
    Sample(Vec<Reservoir>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Accumulator {
    gathered: Gathered,
    error: Option<String>,
}

/// The fit's settings.
#[derive(Clone, Copy)]
struct Fit {
    column: usize,
    uniform: bool,
    num_bins: usize,
    sub_samples: usize,
}

const EMPTY: &str = "KBinsDiscretizer: the training set is empty";

fn size_error(size: usize, expected: usize) -> String {
    format!("KBinsDiscretizer: the input vectors have {size} elements, expected {expected}")
}

impl Fit {
    fn init(&self) -> Accumulator {
        Accumulator {
            gathered: if self.uniform {
                Gathered::MinMax(None)
            } else {
                Gathered::Sample(vec![Reservoir::default()])
            },
            error: None,
        }
    }

    /// Folds a batch: min/max, or Flink's reservoir sampling (`DataStreamUtils.sample`:
    /// the first `subSamples` rows, then row `count` replaces sample `nextInt(count)` when
    /// that is below `subSamples`), with this instance's `random`.
    fn fold(&self, acc: &mut Accumulator, batch: &RowBatch, random: &mut JavaRandom) {
        if acc.error.is_some() {
            return;
        }
        let Some(size) = first_size(batch, self.column) else {
            return;
        };
        let k = self.sub_samples;
        let result = match &mut acc.gathered {
            Gathered::MinMax(state) => {
                let (min, max) = state.get_or_insert_with(|| {
                    (vec![f64::INFINITY; size], vec![f64::NEG_INFINITY; size])
                });
                let dim = min.len();
                dense_rows("KBinsDiscretizer", batch, self.column, dim, |_, x| {
                    for j in 0..dim {
                        min[j] = java_min(min[j], x[j]);
                        max[j] = java_max(max[j], x[j]);
                    }
                    Ok(())
                })
            }
            Gathered::Sample(parts) => {
                let r = &mut parts[0];
                if r.seen == 0 {
                    r.dim = size;
                }
                let dim = r.dim;
                dense_rows("KBinsDiscretizer", batch, self.column, dim, |_, x| {
                    r.seen += 1;
                    if r.len() < k || dim == 0 {
                        r.rows.extend_from_slice(x);
                    } else {
                        let count = i32::try_from(r.seen).unwrap_or(i32::MAX);
                        let index = random.next_int(count) as usize;
                        if index < k {
                            r.rows[index * dim..(index + 1) * dim].copy_from_slice(x);
                        }
                    }
                    Ok(())
                })
            }
        };
        if let Err(e) = result {
            acc.error = Some(e);
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
        match (&mut acc.gathered, other.gathered) {
            (Gathered::MinMax(a), Gathered::MinMax(b)) => match (a.as_mut(), b) {
                (_, None) => {}
                (None, b) => *a = b,
                (Some((min, max)), Some((min2, max2))) => {
                    if min.len() != min2.len() {
                        acc.error = Some(size_error(min2.len(), min.len()));
                        return;
                    }
                    for j in 0..min.len() {
                        min[j] = java_min(min[j], min2[j]);
                        max[j] = java_max(max[j], max2[j]);
                    }
                }
            },
            (Gathered::Sample(a), Gathered::Sample(b)) => {
                a.extend(b.into_iter().filter(|r| r.seen > 0));
                a.retain(|r| r.seen > 0);
            }
            _ => unreachable!("one strategy per fit"),
        }
    }

    fn finish(&self, acc: Accumulator, strategy: &str) -> Result<RowBatch, String> {
        if let Some(e) = acc.error {
            return Err(e);
        }
        let bin_edges = match acc.gathered {
            Gathered::MinMax(None) => return Err(EMPTY.into()),
            Gathered::MinMax(Some((min, max))) => min
                .iter()
                .zip(&max)
                .map(|(&lo, &hi)| {
                    if lo == hi {
                        vec![f64::NEG_INFINITY, f64::INFINITY]
                    } else {
                        uniform_edges(lo, hi, self.num_bins)
                    }
                })
                .collect(),
            Gathered::Sample(parts) => {
                let (dim, rows) = self.sample(parts)?;
                let n = rows.len() / dim.max(1);
                if n == 0 {
                    return Err(EMPTY.into());
                }
                let mut features = vec![0.0; n];
                (0..dim)
                    .map(|j| {
                        for (i, f) in features.iter_mut().enumerate() {
                            *f = rows[i * dim + j];
                        }
                        features.sort_by(|a, b| java_compare(*a, *b));
                        if features[0] == features[n - 1] {
                            Ok(vec![f64::NEG_INFINITY, f64::INFINITY])
                        } else if strategy == "kmeans" {
                            Ok(kmeans_edges(&features, self.num_bins))
                        } else {
                            quantile_edges(&features, self.num_bins)
                        }
                    })
                    .collect::<Result<Vec<_>, String>>()?
            }
        };
        Ok(KBinsDiscretizerModelData { bin_edges }.to_batch())
    }

    /// The final sample of at most `subSamples` rows from the instances' reservoirs. One
    /// instance's reservoir is the sample as is (Flink's result at parallelism 1). Several
    /// are merged without bias whatever the instances' shares of the input: each of the
    /// `subSamples` draws picks an instance with probability proportional to its rows not
    /// drawn yet, then one of its sampled rows at random (Flink instead relies on `rebalance`
    /// giving every instance the same share and samples the union again).
    fn sample(&self, mut parts: Vec<Reservoir>) -> Result<(usize, Vec<f64>), String> {
        parts.retain(|r| r.seen > 0);
        let Some(dim) = parts.first().map(|r| r.dim) else {
            return Err(EMPTY.into());
        };
        if let Some(r) = parts.iter().find(|r| r.dim != dim) {
            return Err(size_error(r.dim, dim));
        }
        if parts.len() == 1 {
            return Ok((dim, parts.remove(0).rows));
        }
        let mut random = JavaRandom::new(sampling_seed());
        let mut left: Vec<u64> = parts.iter().map(|r| r.seen).collect();
        let mut total: u64 = left.iter().sum();
        let draws = (self.sub_samples as u64).min(total);
        let mut rows = Vec::with_capacity(draws as usize * dim);
        for _ in 0..draws {
            let mut pick = ((random.next_double() * total as f64) as u64).min(total - 1);
            let mut p = 0;
            while pick >= left[p] {
                pick -= left[p];
                p += 1;
            }
            let part = &mut parts[p];
            let i = random.next_int(part.len() as i32) as usize;
            let last = part.len() - 1;
            rows.extend_from_slice(&part.rows[i * dim..(i + 1) * dim]);
            if i != last {
                let (head, tail) = part.rows.split_at_mut(last * dim);
                head[i * dim..(i + 1) * dim].copy_from_slice(&tail[..dim]);
            }
            part.rows.truncate(last * dim);
            left[p] -= 1;
            total -= 1;
        }
        Ok((dim, rows))
    }
}

/// `numBins + 1` edges from `min` by cumulative steps of `(max - min) / numBins`.
fn uniform_edges(min: f64, max: f64, num_bins: usize) -> Vec<f64> {
    let width = (max - min) / num_bins as f64;
    let mut edges = Vec::with_capacity(num_bins + 1);
    edges.push(min);
    for b in 1..=num_bins {
        edges.push(edges[b - 1] + width);
    }
    edges
}

/// Flink's quantile edges of sorted `features` (not constant).
fn quantile_edges(features: &[f64], num_bins: usize) -> Result<Vec<f64>, String> {
    let n = features.len();
    let temp: Vec<f64> = if n > num_bins {
        let width = n as f64 / num_bins as f64;
        let mut e: Vec<f64> = (0..num_bins)
            .map(|b| features[(b as f64 * width) as usize])
            .collect();
        e.push(features[n - 1]);
        e
    } else {
        features.to_vec()
    };
    // Every distinct edge (Java `Double` equality: by bits, NaNs equal) once, twice if it
    // repeats; then sorted.
    let key = |x: f64| {
        if x.is_nan() {
            f64::NAN.to_bits()
        } else {
            x.to_bits()
        }
    };
    let mut counted: Vec<(f64, usize)> = Vec::new();
    for &e in &temp {
        match counted.iter_mut().find(|(v, _)| key(*v) == key(e)) {
            Some((_, c)) => *c += 1,
            None => counted.push((e, 1)),
        }
    }
    let mut edges: Vec<f64> = Vec::with_capacity(temp.len());
    for (v, c) in counted {
        edges.push(v);
        if c > 1 {
            edges.push(v);
        }
    }
    edges.sort_by(|a, b| java_compare(*a, *b));
    let len = edges.len();
    let mut i = 1;
    while i + 1 < len {
        if edges[i] == edges[i - 1] {
            edges[i] = (edges[i + 1] + edges[i - 1]) / 2.0;
        }
        i += 1;
    }
    if i < len && edges[i] == edges[i - 1] {
        if i < 2 {
            return Err("KBinsDiscretizer: cannot build bin edges from one value".into());
        }
        edges[i - 1] = (edges[i] + edges[i - 2]) / 2.0;
    }
    Ok(edges)
}

/// Flink's 1-D k-means edges of sorted `features` (not constant).
fn kmeans_edges(features: &[f64], num_bins: usize) -> Vec<f64> {
    let n = features.len();
    // At most `numBins` distinct values (Java `Double` equality): uniform edges.
    let key = |x: f64| {
        if x.is_nan() {
            f64::NAN.to_bits()
        } else {
            x.to_bits()
        }
    };
    let mut distinct: Vec<u64> = Vec::with_capacity(num_bins + 1);
    for &f in features {
        let k = key(f);
        if !distinct.contains(&k) {
            distinct.push(k);
            if distinct.len() > num_bins {
                break;
            }
        }
    }
    if distinct.len() <= num_bins {
        return uniform_edges(features[0], features[n - 1], num_bins);
    }
    let width = n as f64 / num_bins as f64;
    let mut centroids: Vec<f64> = (0..num_bins)
        .map(|c| features[(c as f64 * width) as usize])
        .collect();
    let mut sums = vec![0.0; num_bins];
    let mut counts = vec![0i64; num_bins];
    let (tolerance, max_iterations) = (1e-4, 300);
    let (mut old_loss, mut relative_loss) = (f64::MAX, f64::MAX);
    let mut iter = 0;
    while iter < max_iterations && relative_loss > tolerance {
        let mut loss = 0.0;
        for &x in features {
            let mut min_distance = (centroids[0] - x).abs();
            let mut cluster = 0;
            for (c, centroid) in centroids.iter().enumerate().skip(1) {
                let distance = (centroid - x).abs();
                if distance < min_distance {
                    min_distance = distance;
                    cluster = c;
                }
            }
            counts[cluster] += 1;
            sums[cluster] += x;
            loss += min_distance;
        }
        for c in 0..num_bins {
            centroids[c] = sums[c] / counts[c] as f64;
        }
        loss /= n as f64;
        relative_loss = (loss - old_loss).abs();
        old_loss = loss;
        iter += 1;
        sums.fill(0.0);
        counts.fill(0);
    }
    centroids.sort_by(|a, b| java_compare(*a, *b));
    let mut edges = vec![0.0; num_bins + 1];
    edges[0] = features[0];
    edges[num_bins] = features[n - 1];
    for b in 1..num_bins {
        edges[b] = (centroids[b - 1] + centroids[b]) / 2.0;
    }
    edges
}

/// Java's `Arrays.binarySearch(double[], key)`.
pub(crate) fn java_binary_search(a: &[f64], key: f64) -> isize {
    let (mut low, mut high) = (0isize, a.len() as isize - 1);
    while low <= high {
        let mid = ((low + high) as usize) >> 1;
        let value = a[mid];
        let order = if value < key {
            Ordering::Less
        } else if value > key {
            Ordering::Greater
        } else {
            let bits = |x: f64| {
                if x.is_nan() {
                    f64::NAN.to_bits() as i64
                } else {
                    x.to_bits() as i64
                }
            };
            bits(value).cmp(&bits(key))
        };
        match order {
            Ordering::Less => low = mid as isize + 1,
            Ordering::Greater => high = mid as isize - 1,
            Ordering::Equal => return mid as isize,
        }
    }
    -(low + 1)
}

/// The bin of `x` among `edges` (Flink's `FindBinFunction`).
fn find_bin(edges: &[f64], x: f64) -> f64 {
    let mut index = java_binary_search(edges, x);
    if index < 0 {
        index = -index - 1;
        index -= 1;
    }
    index = index.min(edges.len() as isize - 2);
    index.max(0) as f64
}

impl Stage for KBinsDiscretizer {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "KBinsDiscretizer",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let strategy = self.get(&STRATEGY)?;
        let settings = Fit {
            column,
            uniform: strategy == "uniform",
            num_bins: usize::try_from(self.get(&NUM_BINS)?).unwrap_or(usize::MAX),
            sub_samples: usize::try_from(self.get(&SUB_SAMPLES)?).unwrap_or(usize::MAX),
        };
        let mut model = KBinsDiscretizerModel::new();
        model.params.copy_existing_from(&self.params)?;
        let mut random = JavaRandom::new(sampling_seed());
        let data = fit_aggregate(
            job,
            self,
            input,
            KBinsDiscretizerModelData::schema(),
            move || settings.init(),
            move |acc, batch| settings.fold(acc, &batch, &mut random),
            Fit::merge,
            move |acc| settings.finish(acc, &strategy),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for KBinsDiscretizerModel {
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
            "KBinsDiscretizerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::DenseVector)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            |schema, batches| KBinsDiscretizerModelData::from_batches(schema, &batches),
            move |data, batch| {
                let dim = data.bin_edges.len();
                let mut out = VectorColumnBuilder::dense(dim, batch.rows());
                dense_rows("KBinsDiscretizerModel", &batch, column, dim, |_, x| {
                    let y = out.next_dense();
                    for ((y, x), edges) in y.iter_mut().zip(x).zip(&data.bin_edges) {
                        *y = find_bin(edges, *x);
                    }
                    Ok(())
                })?;
                Ok(batch.with_column(out.finish()))
            },
        );
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_search_is_javas() {
        let a = [-1.0, -0.0, 0.0, 2.0, f64::NAN];
        assert_eq!(java_binary_search(&a, -0.0), 1);
        assert_eq!(java_binary_search(&a, 0.0), 2);
        assert_eq!(java_binary_search(&a, 1.0), -4);
        assert_eq!(java_binary_search(&a, f64::NAN), 4);
        assert_eq!(java_binary_search(&a, -5.0), -1);
        assert_eq!(find_bin(&[f64::NEG_INFINITY, f64::INFINITY], 3.0), 0.0);
        assert_eq!(find_bin(&[0.0, 1.0, 2.0], 5.0), 1.0);
        assert_eq!(find_bin(&[0.0, 1.0, 2.0], 1.0), 1.0);
        assert_eq!(find_bin(&[0.0, 1.0, 2.0], -1.0), 0.0);
    }

    #[test]
    fn quantile_edges_spread_repeats() {
        // Edges at ranks 0, 2, 4 and the maximum: 0, 0, 1, 2; the repeated 0 moves half
        // way to the next edge.
        let f = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0];
        let e = quantile_edges(&f, 3).unwrap();
        assert_eq!(e, vec![0.0, 0.5, 1.0, 2.0]);
        // Fewer values than bins: the values themselves.
        assert_eq!(
            quantile_edges(&[1.0, 2.0, 2.0, 3.0], 8).unwrap(),
            vec![1.0, 2.0, 2.5, 3.0]
        );
    }

    /// A reservoir over one instance is Flink's sample at parallelism 1; several merge to
    /// the requested size.
    #[test]
    fn sampling() {
        let fit = Fit {
            column: 0,
            uniform: false,
            num_bins: 2,
            sub_samples: 3,
        };
        let schema = Schema::new([("input", DataType::DenseVector)]);
        let rows: Vec<_> = (0..10)
            .map(|i| vec![crate::table::Value::DenseVector(vec![i as f64])])
            .collect();
        let batch = RowBatch::from_rows(&schema, rows, 100).unwrap().remove(0);
        let mut random = JavaRandom::new(sampling_seed());
        let mut a = fit.init();
        fit.fold(&mut a, &batch, &mut random);
        let Gathered::Sample(parts) = &a.gathered else {
            panic!()
        };
        assert_eq!(parts[0].seen, 10);
        assert_eq!(parts[0].rows.len(), 3);
        let mut b = fit.init();
        fit.fold(&mut b, &batch, &mut JavaRandom::new(sampling_seed()));
        Fit::merge(&mut a, b);
        let Gathered::Sample(parts) = a.gathered else {
            panic!()
        };
        let (dim, rows) = fit.sample(parts).unwrap();
        assert_eq!((dim, rows.len()), (1, 3));
    }
}
