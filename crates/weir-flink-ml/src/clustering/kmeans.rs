//! `KMeans` (Flink ML's `org.apache.flink.ml.clustering.kmeans`): Lloyd's algorithm over a
//! bounded input, every round a pass over each instance's cached points and one all-reduce
//! of the per-cluster sums and counts ([`weir_core::DataStream::iterate_bounded`]).
//!
//! Initial centroids (`initMode`):
//! - `random` (Flink's only mode, the default): `k` points drawn at random with `seed`. Weir
//!   draws the `k` points whose hash of `(seed, values)` is smallest, which picks the same
//!   points at every parallelism and batch size (Flink's reservoir sample depends on both).
//! - `k-means||` (a Weir extension, Bahmani et al., as Spark MLlib does it): a few rounds of
//!   oversampling points in proportion to their cost, then k-means++ over the weighted
//!   candidates; see [`super::kmeans_init`].
//!
//! Differences from Flink, deliberate: an empty cluster keeps its previous centroid (Flink
//! divides by its zero count and produces NaN), and the iteration stops early once no
//! centroid moves (later rounds would give the same centroids). The prediction column holds
//! Longs (Flink's Integers).

use serde::{Deserialize, Serialize};
use weir_core::{op, DataCache, IterationBody, Job, Round, Step};

use super::kmeans_init::{initial_centroids, InitMode};
use crate::api::{Fitted, Stage};
use crate::common::prefetch::prefetch;
use crate::common::shared_values::SharedValues;
use crate::common::distance::{l2_norm, DistanceMeasure};
use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::dense_rows;
use crate::error::MlError;
use crate::param::shared::{
    seed_of, DISTANCE_MEASURE, FEATURES_COL, MAX_ITER, PREDICTION_COL, SEED,
};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `k`: the (maximum) number of clusters.
pub const K: Param<i64> = Param::new(
    "k",
    "The max number of clusters to create.",
    Some("2"),
    ParamType::Int,
    Validator::Gt(1.0),
);
/// `initMode`: `random` (Flink) or `k-means||` (Weir).
pub const INIT_MODE: Param<String> = Param::new(
    "initMode",
    "The initialization algorithm. Supported options: 'random', 'k-means||'.",
    Some("\"random\""),
    ParamType::String,
    Validator::InArray(&["random", "k-means||"]),
);

stage!(
    /// Fits a [`KMeansModel`]: `k` centroids of the points in `featuresCol` (dense or sparse
    /// vectors of one size), by Lloyd's algorithm for at most `maxIter` rounds.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::clustering::KMeans;
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[0.0, 0.0], [0.0, 0.3], [0.3, 0.0], [9.0, 0.0], [9.0, 0.6], [9.6, 0.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema, rows)?;
    ///     let mut kmeans = KMeans::new();
    ///     kmeans.param_map_mut().set_json("k", serde_json::json!(2))?;
    ///     let fitted = kmeans.fit(job, vec![train.clone()])?;
    ///     fitted.transform(job, vec![train])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let rows = out.json_rows();
    /// let cluster_of = |x: f64| rows.iter().find(|r| r["features"][0] == x).unwrap()["prediction"].clone();
    /// assert_eq!(cluster_of(0.3), cluster_of(0.0));
    /// assert_eq!(cluster_of(9.6), cluster_of(9.0));
    /// assert_ne!(cluster_of(0.0), cluster_of(9.0));
    /// ```
    KMeans,
    "org.apache.flink.ml.clustering.kmeans.KMeans",
    [
        &DISTANCE_MEASURE.spec,
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &K.spec,
        &INIT_MODE.spec,
        &SEED.spec,
        &MAX_ITER.spec
    ]
);

model!(
    /// Assigns every point of `featuresCol` the index of its closest centroid (in
    /// `predictionCol`).
    KMeansModel,
    "org.apache.flink.ml.clustering.kmeans.KMeansModel",
    [
        &DISTANCE_MEASURE.spec,
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &K.spec
    ]
);

impl crate::param::HasFeaturesCol for KMeans {}
impl crate::param::HasPredictionCol for KMeans {}
impl crate::param::HasMaxIter for KMeans {}
impl crate::param::HasSeed for KMeans {}
impl crate::param::HasDistanceMeasure for KMeans {}
impl crate::param::HasFeaturesCol for KMeansModel {}
impl crate::param::HasPredictionCol for KMeansModel {}
impl crate::param::HasDistanceMeasure for KMeansModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(KMeans, KMeansModel);

/// The model data (Flink's `KMeansModelData`): one row of centroids and their weights (the
/// number of training points of each cluster in the last round).
#[derive(Clone, Debug, PartialEq)]
pub struct KMeansModelData {
    /// The centroids.
    pub centroids: Vec<Vec<f64>>,
    /// The weight of every centroid.
    pub weights: Vec<f64>,
}

impl KMeansModelData {
    /// The model data table's schema (Flink's `centroids`, `weights`).
    pub fn schema() -> Schema {
        Schema::new([
            ("centroids", DataType::DenseVectorArray),
            ("weights", DataType::DenseVector),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                Column::DenseVectorArray(vec![self.centroids.clone()]),
                dense_cell(self.weights.clone()),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("KMeansModel", schema, batches)?;
        Ok(KMeansModelData {
            centroids: row.vectors("centroids")?,
            weights: row.vector("weights")?,
        })
    }
}

/// Centroids stored flat, `dim` values each, with their L2 norms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Centroids {
    pub(crate) dim: usize,
    pub(crate) values: Vec<f64>,
    pub(crate) norms: Vec<f64>,
}

impl Centroids {
    pub(crate) fn new(dim: usize, values: Vec<f64>) -> Centroids {
        let norms = values.chunks_exact(dim.max(1)).map(l2_norm).collect();
        Centroids { dim, values, norms }
    }

    pub(crate) fn from_vectors(vectors: &[Vec<f64>]) -> Result<Centroids, String> {
        let dim = vectors.first().map_or(0, Vec::len);
        if let Some(v) = vectors.iter().find(|v| v.len() != dim) {
            return Err(format!(
                "KMeansModel: the centroids have {} and {dim} elements",
                v.len()
            ));
        }
        Ok(Centroids::new(dim, vectors.concat()))
    }

    pub(crate) fn len(&self) -> usize {
        self.norms.len()
    }

    fn vectors(&self) -> Vec<Vec<f64>> {
        self.values
            .chunks_exact(self.dim.max(1))
            .map(<[f64]>::to_vec)
            .collect()
    }
}

/// Points cached by one instance: a batch's vectors densified, flat (shared with the batch
/// when it has them so), with their norms.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct PointBlock {
    pub(crate) dim: usize,
    pub(crate) shared: SharedValues,
    pub(crate) norms: Vec<f64>,
}

impl PointBlock {
    /// The vectors of column `column` of `batch` (`None` for an empty batch).
    pub(crate) fn of(
        stage: &str,
        batch: &RowBatch,
        column: usize,
    ) -> Result<Option<PointBlock>, String> {
        let Some(dim) = crate::common::vector_columns::first_size(batch, column) else {
            return Ok(None);
        };
        // Dense vectors of the size: shared with the batch.
        let shared = SharedValues::of_dense(&batch.columns()[column], dim);
        let dense = shared.is_some();
        let mut block = PointBlock {
            dim,
            shared: shared
                .unwrap_or_else(|| SharedValues::Owned(Vec::with_capacity(dim * batch.rows()))),
            norms: Vec::with_capacity(batch.rows()),
        };
        if !dense {
            let values = block.shared.owned_mut();
            dense_rows(stage, batch, column, dim, |_, x| {
                values.extend_from_slice(x);
                Ok(())
            })?;
        }
        if dim > 0 {
            // `l2_norm` of every point, `POINTS_AT_ONCE` points at a time.
            let mut groups = block.shared.values().chunks_exact(POINTS_AT_ONCE * dim);
            for group in &mut groups {
                let squares = squared_norms::<POINTS_AT_ONCE>(group, dim);
                block.norms.extend(squares.map(f64::sqrt));
            }
            let rest = groups.remainder().chunks_exact(dim);
            block.norms.extend(rest.map(l2_norm));
        } else {
            block.norms.resize(batch.rows(), l2_norm(&[]));
        }
        Ok(Some(block))
    }

    /// The points' values, flat.
    pub(crate) fn values(&self) -> &[f64] {
        self.shared.values()
    }

    pub(crate) fn points(&self) -> impl Iterator<Item = (&[f64], f64)> {
        self.values()
            .chunks_exact(self.dim.max(1))
            .zip(self.norms.iter().copied())
    }

    pub(crate) fn weigh(block: &PointBlock) -> usize {
        8 * (block.values().len() + block.norms.len())
    }
}

/// A round's sums: per cluster the sum of its points and their count.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ClusterSums {
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl ClusterSums {
    /// Adds point `x` to cluster `i`.
    #[inline(always)]
    fn add(&mut self, i: usize, x: &[f64]) {
        let dim = x.len();
        self.counts[i] += 1;
        let sum = &mut self.sums[i * dim..(i + 1) * dim];
        sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
    }
}

/// Points whose distances are computed together: each point's dot products are summed in
/// the order of [`DistanceMeasure::closest`], so the result is the same bit for bit, but the
/// points' chains of additions are independent and overlap in the CPU.
const POINTS_AT_ONCE: usize = 4;

/// Points at a time of the kernels specialised to the points' size.
const POINTS_AT_ONCE_FIXED: usize = 8;
/// How many groups of points ahead the kernels specialised to the points' size prefetch.
const PREFETCH_GROUPS: usize = 4;

/// Adds the points of `block` to the sums of their closest centroids, a few at a time, with
/// the Euclidean rules of [`DistanceMeasure::closest`] (the first of equally close
/// centroids; a centroid whose norm alone rules it out is passed over) but without
/// branches on the data: the same sums, bit for bit, as one point after the other. Points
/// of up to 16 values have kernels of their size (constant loops, no bounds checks),
/// compiled for AVX2 too where the CPU has it (the same operations, wider). Returns the
/// points done (all but the last few); `c.dim > 0`.
fn add_closest_euclidean(c: &Centroids, block: &PointBlock, sums: &mut ClusterSums) -> usize {
    macro_rules! by_size {
        ($($d:literal)*) => {
            match c.dim {
                $($d => return add_closest_fixed::<$d>(c, block, sums),)*
                _ => {}
            }
        };
    }
    by_size!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    add_closest_any::<POINTS_AT_ONCE>(c, block, sums)
}

/// [`add_closest_euclidean`] for points of `D` values.
fn add_closest_fixed<const D: usize>(
    c: &Centroids,
    block: &PointBlock,
    sums: &mut ClusterSums,
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { add_closest_fixed_avx2::<D>(c, block, sums) };
    }
    add_closest_fixed_kernel::<POINTS_AT_ONCE_FIXED, D>(c, block, sums)
}

/// [`add_closest_fixed_kernel`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_closest_fixed_avx2<const D: usize>(
    c: &Centroids,
    block: &PointBlock,
    sums: &mut ClusterSums,
) -> usize {
    add_closest_fixed_kernel::<POINTS_AT_ONCE_FIXED, D>(c, block, sums)
}

/// [`add_closest_any`] with the points' size `D` known.
#[inline(always)]
fn add_closest_fixed_kernel<const N: usize, const D: usize>(
    c: &Centroids,
    block: &PointBlock,
    sums: &mut ClusterSums,
) -> usize {
    let centroids: Vec<(&[f64; D], f64)> = c
        .values
        .chunks_exact(D)
        .map(|v| v.try_into().expect("D values"))
        .zip(c.norms.iter().copied())
        .collect();
    let mut done = 0;
    for (k, (group, norms)) in block
        .values()
        .chunks_exact(N * D)
        .zip(block.norms.chunks_exact(N))
        .enumerate()
    {
        if let Some(ahead) = block.values().get((k + PREFETCH_GROUPS) * N * D..) {
            prefetch(&ahead[..(N * D).min(ahead.len())]);
        }
        let x: [&[f64; D]; N] =
            std::array::from_fn(|p| group[p * D..(p + 1) * D].try_into().expect("D values"));
        let mut best = [f64::INFINITY; N];
        let mut index = [0; N];
        for (i, &(centroid, c_norm)) in centroids.iter().enumerate() {
            let mut dots = [-0.0; N];
            for j in 0..D {
                for p in 0..N {
                    dots[p] += x[p][j] * centroid[j];
                }
            }
            for p in 0..N {
                let p_norm = norms[p];
                let bound = p_norm - c_norm;
                // `squared_euclidean`'s formula.
                let d = (p_norm * p_norm + c_norm * c_norm - 2.0 * dots[p]).max(0.0);
                let ruled_out = bound * bound >= best[p];
                let take = !ruled_out & (d < best[p]);
                best[p] = if take { d } else { best[p] };
                index[p] = if take { i } else { index[p] };
            }
        }
        for (x, &i) in x.iter().zip(&index) {
            sums.counts[i] += 1;
            let sum: &mut [f64; D] = (&mut sums.sums[i * D..(i + 1) * D])
                .try_into()
                .expect("D values");
            for j in 0..D {
                sum[j] += x[j];
            }
        }
        done += N;
    }
    done
}

/// [`add_closest_euclidean`] for points of any size, `N` at a time.
fn add_closest_any<const N: usize>(
    c: &Centroids,
    block: &PointBlock,
    sums: &mut ClusterSums,
) -> usize {
    let dim = c.dim;
    let mut done = 0;
    for (group, norms) in block
        .values()
        .chunks_exact(N * dim)
        .zip(block.norms.chunks_exact(N))
    {
        let mut best = [f64::INFINITY; N];
        let mut index = [0; N];
        for (i, (centroid, &c_norm)) in c.values.chunks_exact(dim).zip(&c.norms).enumerate() {
            let dots = dots::<N>(group, centroid);
            for p in 0..N {
                let p_norm = norms[p];
                let bound = p_norm - c_norm;
                // `squared_euclidean`'s formula.
                let d = (p_norm * p_norm + c_norm * c_norm - 2.0 * dots[p]).max(0.0);
                let ruled_out = bound * bound >= best[p];
                let take = !ruled_out & (d < best[p]);
                best[p] = if take { d } else { best[p] };
                index[p] = if take { i } else { index[p] };
            }
        }
        for (x, &i) in group.chunks_exact(dim).zip(&index) {
            sums.add(i, x);
        }
        done += N;
    }
    done
}

/// `dot(row, w)` of each of the `N` rows of `rows` (`N` rows of `w.len()` elements), each
/// summed in the order of `dot` (from -0.0, as `Sum` does).
#[inline(always)]
fn dots<const N: usize>(rows: &[f64], w: &[f64]) -> [f64; N] {
    let dim = w.len();
    let x: [&[f64]; N] = std::array::from_fn(|i| &rows[i * dim..(i + 1) * dim]);
    let mut sums = [-0.0; N];
    for (j, &wj) in w.iter().enumerate() {
        for (sum, x) in sums.iter_mut().zip(&x) {
            *sum += x[j] * wj;
        }
    }
    sums
}

/// `dot(x, x)` of each of the `N` rows of `dim` elements of `rows`, each summed in the order
/// of `dot`.
#[inline(always)]
fn squared_norms<const N: usize>(rows: &[f64], dim: usize) -> [f64; N] {
    let x: [&[f64]; N] = std::array::from_fn(|i| &rows[i * dim..(i + 1) * dim]);
    let mut sums = [-0.0; N];
    for j in 0..dim {
        for (sum, x) in sums.iter_mut().zip(&x) {
            *sum += x[j] * x[j];
        }
    }
    sums
}

/// The model between rounds: the centroids and the counts of the last round.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LloydModel {
    centroids: Centroids,
    counts: Vec<u64>,
}

/// Lloyd's algorithm as an iteration body.
#[derive(Clone)]
struct Lloyd {
    column: usize,
    measure: DistanceMeasure,
    max_iter: u64,
}

impl IterationBody for Lloyd {
    type Record = RowBatch;
    type Cached = PointBlock;
    type Model = LloydModel;
    type Partial = ClusterSums;

    fn cache(&mut self, batch: RowBatch) -> Result<Option<PointBlock>, String> {
        PointBlock::of("KMeans", &batch, self.column)
    }

    fn weigh(block: &PointBlock) -> usize {
        PointBlock::weigh(block)
    }

    fn partial(
        &mut self,
        _round: Round,
        model: &LloydModel,
        data: &mut DataCache<PointBlock>,
    ) -> Result<ClusterSums, String> {
        let c = &model.centroids;
        if c.len() == 0 {
            return Err("KMeans: the training data is empty".into());
        }
        let mut sums = ClusterSums {
            sums: vec![0.0; c.values.len()],
            counts: vec![0; c.len()],
        };
        let mut wrong_size = None;
        data.for_each_ref(|block| {
            if block.dim != c.dim {
                wrong_size = Some(block.dim);
                return;
            }
            let mut done = 0;
            if self.measure == DistanceMeasure::Euclidean && c.dim > 0 {
                done = add_closest_euclidean(c, block, &mut sums);
            }
            for (x, norm) in block.points().skip(done) {
                let (i, _) = self.measure.closest(&c.values, &c.norms, x, norm);
                sums.add(i, x);
            }
        })
        .map_err(|e| e.to_string())?;
        match wrong_size {
            Some(size) => Err(format!(
                "KMeans: the input vectors have {size} elements, expected {}",
                c.dim
            )),
            None => Ok(sums),
        }
    }

    fn merge(&mut self, total: &mut ClusterSums, other: ClusterSums) {
        total.sums.iter_mut().zip(other.sums).for_each(|(a, b)| *a += b);
        total
            .counts
            .iter_mut()
            .zip(other.counts)
            .for_each(|(a, b)| *a += b);
    }

    fn update(
        &mut self,
        round: u64,
        model: LloydModel,
        total: ClusterSums,
    ) -> Result<Step<LloydModel>, String> {
        let dim = model.centroids.dim;
        let mut values = model.centroids.values.clone();
        for (i, &count) in total.counts.iter().enumerate() {
            if count > 0 {
                let sum = &total.sums[i * dim..(i + 1) * dim];
                let centroid = &mut values[i * dim..(i + 1) * dim];
                centroid
                    .iter_mut()
                    .zip(sum)
                    .for_each(|(c, s)| *c = s / count as f64);
            }
        }
        let moved = values != model.centroids.values;
        let next = LloydModel {
            centroids: Centroids::new(dim, values),
            counts: total.counts,
        };
        Ok(if round + 1 >= self.max_iter || !moved {
            Step::Finish(next)
        } else {
            Step::Continue(next)
        })
    }
}

impl Stage for KMeans {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "KMeans",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let measure =
            DistanceMeasure::from_name(&self.get(&DISTANCE_MEASURE)?).map_err(|e| self.wrong_kind(&e))?;
        let k = self.get(&K)? as usize;
        let mode = InitMode::from_name(&self.get(&INIT_MODE)?).map_err(|e| self.wrong_kind(&e))?;
        let seed = seed_of(&self.params, Self::CLASS)?;
        let name = job.unique_name("KMeans.fit");
        let init = initial_centroids(&name, &input, column, k, seed, mode, measure)
            .map(op(format!("{name}.round0")).parallelism(1), |centroids| {
                let counts = vec![0; centroids.len()];
                LloydModel { centroids, counts }
            });
        let lloyd = Lloyd {
            column,
            measure,
            max_iter: self.get(&MAX_ITER)? as u64,
        };
        let fitted = input.stream.iterate_bounded(name.clone(), init, lloyd);
        let data = fitted.map(op(format!("{name}.modelData")).parallelism(1), |m| {
            KMeansModelData {
                centroids: m.centroids.vectors(),
                weights: m.counts.iter().map(|&c| c as f64).collect(),
            }
            .to_batch()
        });
        Ok(Fitted {
            model: Box::new(KMeansModel::with_params(&self.params)),
            model_data: vec![Table::new(KMeansModelData::schema(), data)],
        })
    }
}

impl Stage for KMeansModel {
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
            "KMeansModel",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let measure =
            DistanceMeasure::from_name(&self.get(&DISTANCE_MEASURE)?).map_err(|e| self.wrong_kind(&e))?;
        let k = self.get(&K)? as usize;
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Long)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = KMeansModelData::from_batches(schema, &batches)?;
                if data.centroids.len() > k {
                    return Err(format!(
                        "KMeansModel: the model data has {} centroids, more than k = {k}",
                        data.centroids.len()
                    ));
                }
                Centroids::from_vectors(&data.centroids)
            },
            move |centroids, batch| assign(measure, centroids, column, batch),
        );
        Ok(vec![out])
    }
}

/// The batch with the index of every point's closest centroid appended.
fn assign(
    measure: DistanceMeasure,
    centroids: &Centroids,
    column: usize,
    batch: RowBatch,
) -> Result<RowBatch, String> {
    let mut predictions = Vec::with_capacity(batch.rows());
    dense_rows("KMeansModel", &batch, column, centroids.dim, |_, x| {
        let (i, _) = measure.closest(&centroids.values, &centroids.norms, x, l2_norm(x));
        predictions.push(i as i64);
        Ok(())
    })?;
    Ok(batch.with_column(Column::Long(predictions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_points_pick_and_sum_the_same_as_one_by_one() {
        let mut state = 11u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for (dim, points, k) in [(3, 41, 2), (10, 64, 5), (1, 9, 3), (17, 30, 2), (20, 13, 4)] {
            let mut values: Vec<f64> = (0..dim * points).map(|_| next()).collect();
            // Ties: a point repeated, and a point equally far from two centroids.
            values.copy_within(0..dim, dim);
            let mut centroids: Vec<f64> = (0..dim * k).map(|_| next()).collect();
            centroids.copy_within(0..dim, dim);
            let c = Centroids::new(dim, centroids);
            let norms = values.chunks_exact(dim).map(l2_norm).collect();
            let block = PointBlock {
                dim,
                shared: SharedValues::Owned(values),
                norms,
            };
            let mut fast = ClusterSums {
                sums: vec![0.0; dim * k],
                counts: vec![0; k],
            };
            let done = add_closest_euclidean(&c, &block, &mut fast);
            let mut slow = ClusterSums {
                sums: vec![0.0; dim * k],
                counts: vec![0; k],
            };
            for (x, norm) in block.points() {
                let (i, _) = DistanceMeasure::Euclidean.closest(&c.values, &c.norms, x, norm);
                slow.add(i, x);
            }
            for (x, norm) in block.points().skip(done) {
                let (i, _) = DistanceMeasure::Euclidean.closest(&c.values, &c.norms, x, norm);
                fast.add(i, x);
            }
            assert_eq!(fast.counts, slow.counts);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast.sums), bits(&slow.sums));
        }
    }

    #[test]
    fn interleaved_norms_are_l2_norms() {
        let batch = RowBatch::new(
            6,
            vec![Column::DenseVector {
                dim: 3,
                values: (0..18).map(|i| f64::from(i) * 0.37 - 2.0).collect(),
            }],
        );
        let block = PointBlock::of("KMeans", &batch, 0).unwrap().unwrap();
        let expected: Vec<f64> = block.values().chunks_exact(3).map(l2_norm).collect();
        assert_eq!(block.norms, expected);
    }
}
