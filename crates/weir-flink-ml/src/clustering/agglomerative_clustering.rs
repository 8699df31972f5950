//! `AgglomerativeClustering` (Flink ML's
//! `org.apache.flink.ml.clustering.agglomerativeclustering`): bottom-up hierarchical
//! clustering. Every row starts as a cluster of its own and the two closest clusters are merged
//! until `numClusters` remain or the closest are farther apart than `distanceThreshold`.
//!
//! An AlgoOperator with two output tables:
//! 1. the input rows with their cluster in `predictionCol` (a `Long`; Flink's `Integer`),
//! 2. the merges, `(clusterId1, clusterId2, distance, sizeOfMergedCluster)`, in the order of
//!    their distances (scipy's linkage matrix): leaves are numbered by their position in the
//!    window, the cluster made by the `k`-th merge is `n + k`, and `clusterId1 < clusterId2`.
//!    All `n - 1` merges with `computeFullTree`, else those up to the cut.
//!
//! How it runs, as Flink's `windowAll` does: the whole input goes to one instance (a
//! `fold_to_end` at parallelism 1), which cuts it into windows (`windows`: `GlobalWindows`, the
//! default, is the whole bounded input; `CountTumblingWindows` is every `size` rows in
//! arrival order, an incomplete last window being dropped as Flink drops it) and clusters each
//! window on its own. Both outputs come from that instance.
//!
//! The algorithm is Flink's: the nearest-neighbour chain (Müllner, "Modern hierarchical,
//! agglomerative clustering algorithms") over a distance matrix updated by the Lance-Williams
//! formulas of the linkage, with Flink's tie rules: the chain restarts at the first cluster of a
//! Java `HashSet` of the cluster ids and, of equally near clusters, takes the previous link of
//! the chain, else the first in that set's iteration order (emulated here), so the merges and
//! ids are Flink's. Clusters are numbered by the first row (in window order) of each, as Flink
//! numbers them: at parallelism 1 that is the input order.
//!
//! Memory and time: the matrix holds the `n (n - 1) / 2` distances between the current clusters
//! (a merged cluster reuses the row of one of its parts: 36 MB for 3,000 rows, 3.6 GB for
//! 30,000; Flink allocates for `2n - 1` clusters, four times as much), and the chain takes
//! `O(n²)` steps after the `O(n² d)` distances. A matrix that cannot be allocated is an error
//! naming its size.
//!
//! Where Weir differs from Flink, on purpose:
//! - `sizeOfMergedCluster` is the merged cluster's size. Flink indexes its size array by the
//!   ids before they are sorted by distance, and reports another cluster's size when the chain
//!   found merges out of distance order.
//! - The merged ids are assigned by following the merged rows through a union-find (as scipy
//!   does), so that a merge whose distance rounds below an earlier one's cannot refer to a
//!   cluster that does not exist yet.
//! - A Ward distance whose Lance-Williams update rounds below zero is 0 (Flink: NaN, which
//!   breaks the chain).
//! - Rows with NaN or infinite features, vectors of different sizes, and zero vectors under
//!   the cosine distance are errors naming the row (Flink fails or gives NaN distances), as is
//!   a window with fewer rows than `numClusters`.
//! - `EventTimeTumblingWindows`, `ProcessingTimeTumblingWindows` and the session windows are
//!   accepted as params (and saved) but refused by `transform`: Weir's tables carry no event
//!   time or processing time attribute to cut by.

use serde::{Deserialize, Serialize};
use weir_core::{op, Job};

use crate::api::Stage;
use crate::common::distance::{dot, l2_norm, DistanceMeasure};
use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::one_input;
use crate::common::vector_columns::dense_rows;
use crate::error::MlError;
use crate::param::shared::{DISTANCE_MEASURE, FEATURES_COL, PREDICTION_COL, WINDOWS};
use crate::param::{Param, ParamType, Validator, Windows, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `numClusters`: the number of clusters to stop at (null to cut by `distanceThreshold`).
pub const NUM_CLUSTERS: Param<i64> = Param::new(
    "numClusters",
    "The max number of clusters to create.",
    Some("2"),
    ParamType::Int,
    Validator::Always,
);
/// `distanceThreshold`: merge while the closest clusters are at most this far apart (null to
/// cut at `numClusters`).
pub const DISTANCE_THRESHOLD: Param<f64> = Param::new(
    "distanceThreshold",
    "Threshold to decide whether two clusters should be merged.",
    None,
    ParamType::Double,
    Validator::Always,
);
/// `linkage`: the distance between clusters: `ward` (the increase of the within-cluster
/// variance, Euclidean only), `complete` (the largest distance between their rows), `single`
/// (the smallest) or `average` (the mean).
pub const LINKAGE: Param<String> = Param::new(
    "linkage",
    "Criterion for computing distance between two clusters.",
    Some("\"ward\""),
    ParamType::String,
    Validator::InArray(&["ward", "complete", "average", "single"]),
);
/// `computeFullTree`: whether the merge info goes on to the single cluster of all rows.
pub const COMPUTE_FULL_TREE: Param<bool> = Param::new(
    "computeFullTree",
    "Whether computes the full tree after convergence.",
    Some("false"),
    ParamType::Boolean,
    Validator::NotNull,
);

stage!(
    /// Hierarchical clustering of the vectors of `featuresCol`: outputs the rows with their
    /// cluster (`predictionCol`) and the merge info table (see the module docs).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::clustering::agglomerative_clustering::{AgglomerativeClustering, LINKAGE};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let (rows, merges) = (TableCollector::new(), TableCollector::new());
    /// let (rows_sink, merges_sink) = (rows.clone(), merges.clone());
    /// let stage = AgglomerativeClustering::new().set(&LINKAGE, "average".to_string()).unwrap();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector)]);
    ///     let points = [[1.0, 1.0], [1.0, 4.0], [1.0, 0.0], [4.0, 4.0], [4.0, 1.5], [4.0, 0.0]];
    ///     let input = points.iter().map(|p| vec![Value::DenseVector(p.to_vec())]).collect();
    ///     let table = Table::from_rows(job, "points", schema, input)?;
    ///     let mut outputs = stage.transform(job, vec![table])?;
    ///     outputs.remove(1).collect("merges", &merges_sink);
    ///     outputs.remove(0).collect("rows", &rows_sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let clusters: Vec<i64> = rows.json_rows().iter().map(|r| r["prediction"].as_i64().unwrap()).collect();
    /// assert_eq!(clusters, vec![0, 1, 0, 1, 0, 0]);
    /// let distances: Vec<f64> = merges.json_rows().iter().map(|r| r["distance"].as_f64().unwrap()).collect();
    /// assert_eq!(distances.len(), 4);
    /// assert!(distances.iter().zip([1.0, 1.5, 3.0, 3.1394402]).all(|(d, e)| (d - e).abs() < 1e-7));
    /// ```
    AgglomerativeClustering,
    "org.apache.flink.ml.clustering.agglomerativeclustering.AgglomerativeClustering",
    [
        &NUM_CLUSTERS.spec,
        &DISTANCE_THRESHOLD.spec,
        &LINKAGE.spec,
        &COMPUTE_FULL_TREE.spec,
        &DISTANCE_MEASURE.spec,
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &WINDOWS.spec
    ]
);

impl crate::param::HasFeaturesCol for AgglomerativeClustering {}
impl crate::param::HasPredictionCol for AgglomerativeClustering {}
impl crate::param::HasDistanceMeasure for AgglomerativeClustering {}
impl crate::param::HasWindows for AgglomerativeClustering {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(AgglomerativeClustering);

/// The schema of the merge info table (Flink's `clusterId1`, `clusterId2`, `distance`,
/// `sizeOfMergedCluster`).
///
/// ```
/// let schema = weir_flink_ml::clustering::agglomerative_clustering::merge_info_schema();
/// assert_eq!(schema.names(), vec!["clusterId1", "clusterId2", "distance", "sizeOfMergedCluster"]);
/// ```
pub fn merge_info_schema() -> Schema {
    Schema::new([
        ("clusterId1", DataType::Long),
        ("clusterId2", DataType::Long),
        ("distance", DataType::Double),
        ("sizeOfMergedCluster", DataType::Long),
    ])
}

/// How the distance between a merged cluster and another is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Linkage {
    Ward,
    Complete,
    Average,
    Single,
}

impl Linkage {
    fn from_name(name: &str) -> Option<Linkage> {
        Some(match name {
            "ward" => Linkage::Ward,
            "complete" => Linkage::Complete,
            "average" => Linkage::Average,
            "single" => Linkage::Single,
            _ => return None,
        })
    }

    /// The distance between cluster `k` and the union of clusters `i` and `j` (Flink's
    /// `computeClusterDistances`, with Java's order of operations).
    #[inline]
    fn update(self, dik: f64, djk: f64, dij: f64, si: u32, sj: u32, sk: u32) -> f64 {
        match self {
            Linkage::Single => {
                if dik <= djk {
                    dik
                } else {
                    djk
                }
            }
            Linkage::Complete => {
                if dik >= djk {
                    dik
                } else {
                    djk
                }
            }
            Linkage::Average => (si as f64 * dik + sj as f64 * djk) / (si + sj) as f64,
            Linkage::Ward => {
                let (si, sj, sk) = (si as f64, sj as f64, sk as f64);
                let sum = (si + sk) * dik * dik + (sj + sk) * djk * djk - sk * dij * dij;
                (sum / (si + sj + sk)).max(0.0).sqrt()
            }
        }
    }
}

/// When to stop merging.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum Cut {
    /// At this many clusters.
    Clusters(usize),
    /// When the closest clusters are farther apart than this.
    Threshold(f64),
}

/// The checked params of a run.
#[derive(Clone, Debug)]
struct Settings {
    column: usize,
    measure: DistanceMeasure,
    linkage: Linkage,
    cut: Cut,
    full_tree: bool,
    window_size: Option<usize>,
}

/// What the clustering instance emits: output rows or merge info rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Output {
    Rows(RowBatch),
    Merges(RowBatch),
}

impl AgglomerativeClustering {
    fn error(&self, message: impl Into<String>) -> MlError {
        MlError::Stage {
            stage: self.short_name().to_string(),
            message: message.into(),
        }
    }

    /// The params checked as Flink checks them when `transform` is called.
    fn settings(&self, schema: &Schema) -> Result<Settings, MlError> {
        let column = schema.typed_index(
            self.short_name(),
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let clusters = self.params.get_opt(&NUM_CLUSTERS)?;
        let threshold = self.params.get_opt(&DISTANCE_THRESHOLD)?;
        let cut = match (clusters, threshold) {
            (Some(k), None) if k > 0 => Cut::Clusters(k as usize),
            (Some(k), None) => {
                return Err(MlError::InvalidParam {
                    stage: self.short_name().into(),
                    param: NUM_CLUSTERS.name().into(),
                    message: format!("must be > 0, got {k}"),
                })
            }
            (None, Some(t)) if !t.is_nan() => Cut::Threshold(t),
            (None, Some(_)) => {
                return Err(MlError::InvalidParam {
                    stage: self.short_name().into(),
                    param: DISTANCE_THRESHOLD.name().into(),
                    message: "must be a number, got NaN".into(),
                })
            }
            (k, t) => {
                return Err(self.error(format!(
                    "exactly one of numClusters and distanceThreshold must be set, the other \
                     null (One of param numCluster and distanceThreshold should be null.); got \
                     numClusters = {}, distanceThreshold = {}",
                    k.map_or("null".into(), |k| k.to_string()),
                    t.map_or("null".into(), |t| t.to_string())
                )))
            }
        };
        let measure_name = self.get(&DISTANCE_MEASURE)?;
        let measure = DistanceMeasure::from_name(&measure_name).map_err(|e| self.error(e))?;
        let linkage_name = self.get(&LINKAGE)?;
        let linkage = Linkage::from_name(&linkage_name)
            .ok_or_else(|| self.error(format!("unsupported linkage {linkage_name}")))?;
        if linkage == Linkage::Ward && measure != DistanceMeasure::Euclidean {
            return Err(self.error(format!(
                "{measure_name} was provided as distance measure while linkage was ward. Ward \
                 only works with euclidean."
            )));
        }
        let window_size = match self.get(&WINDOWS)? {
            Windows::Global => None,
            Windows::CountTumbling { size } => Some(size as usize),
            other => {
                return Err(self.error(format!(
                    "windows {} are not supported: Weir's tables have no event time or \
                     processing time to cut windows by (use GlobalWindows or \
                     CountTumblingWindows)",
                    other.class_name()
                )))
            }
        };
        Ok(Settings {
            column,
            measure,
            linkage,
            cut,
            full_tree: self.get(&COMPUTE_FULL_TREE)?,
            window_size,
        })
    }
}

impl Stage for AgglomerativeClustering {
    stage_basics!(AlgoOperator);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let settings = self.settings(&input.schema)?;
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Long)?;
        let name = job.unique_name(self.short_name());
        let gathered = input.stream.fold_to_end(
            op(format!("{name}.gather")).parallelism(1),
            Vec::new,
            |all: &mut Vec<RowBatch>, batch: RowBatch| {
                if batch.rows() > 0 {
                    all.push(batch)
                }
            },
        );
        let outputs = gathered.try_map_batch(
            op(name.clone()).parallelism(1),
            move |gathered: Vec<Vec<RowBatch>>| {
                let batches: Vec<RowBatch> = gathered.into_iter().flatten().collect();
                run(&settings, batches)
            },
        );
        let rows = outputs
            .clone()
            .flat_map(op(format!("{name}.rows")).parallelism(1), |o| match o {
                Output::Rows(b) => Some(b),
                Output::Merges(_) => None,
            });
        let merges = outputs.flat_map(
            op(format!("{name}.mergeInfo")).parallelism(1),
            |o| match o {
                Output::Merges(b) => Some(b),
                Output::Rows(_) => None,
            },
        );
        Ok(vec![
            Table::new(schema, rows),
            Table::new(merge_info_schema(), merges),
        ])
    }
}

/// A run of consecutive rows of one batch.
struct Segment {
    batch: RowBatch,
    start: usize,
    end: usize,
}

/// Cuts the gathered batches into windows and clusters each.
fn run(settings: &Settings, batches: Vec<RowBatch>) -> Result<Vec<Output>, String> {
    let mut windows: Vec<Vec<Segment>> = Vec::new();
    match settings.window_size {
        None => {
            if !batches.is_empty() {
                windows.push(
                    batches
                        .into_iter()
                        .map(|batch| Segment {
                            start: 0,
                            end: batch.rows(),
                            batch,
                        })
                        .collect(),
                );
            }
        }
        Some(size) => {
            let mut window = Vec::new();
            let mut filled = 0;
            for batch in batches {
                let mut start = 0;
                while start < batch.rows() {
                    let end = batch.rows().min(start + size - filled);
                    window.push(Segment {
                        batch: batch.clone(),
                        start,
                        end,
                    });
                    filled += end - start;
                    start = end;
                    if filled == size {
                        windows.push(std::mem::take(&mut window));
                        filled = 0;
                    }
                }
            }
            // Flink's count trigger never fires for an incomplete last window.
        }
    }
    let mut out = Vec::new();
    for (w, window) in windows.into_iter().enumerate() {
        let what = if settings.window_size.is_some() {
            format!("window {w}")
        } else {
            "the input".to_string()
        };
        cluster_window(settings, window, &what, &mut out)?;
    }
    Ok(out)
}

/// Clusters the rows of one window and appends its outputs.
fn cluster_window(
    settings: &Settings,
    window: Vec<Segment>,
    what: &str,
    out: &mut Vec<Output>,
) -> Result<(), String> {
    let stage = "AgglomerativeClustering";
    let n: usize = window.iter().map(|s| s.end - s.start).sum();
    if n == 0 {
        return Ok(());
    }
    let first = &window[0];
    let dim = first
        .batch
        .column(settings.column)
        .vector(first.start)
        .map(|v| v.size())
        .ok_or_else(|| format!("{stage}: the features column holds no vectors"))?;
    let mut points = Points {
        dim,
        values: Vec::with_capacity(n * dim),
        norms: Vec::with_capacity(n),
    };
    let mut offset = 0;
    for segment in &window {
        let base = offset;
        dense_rows(
            stage,
            &segment.batch,
            settings.column,
            dim,
            |row, x| {
                if row < segment.start || row >= segment.end {
                    return Ok(());
                }
                let index = base + row - segment.start;
                if x.iter().any(|v| !v.is_finite()) {
                    return Err(format!(
                        "{stage}: row {index} of {what} has a NaN or infinite feature"
                    ));
                }
                let norm = l2_norm(x);
                if settings.measure == DistanceMeasure::Cosine && norm == 0.0 {
                    return Err(format!(
                        "{stage}: row {index} of {what} is a zero vector, for which the cosine \
                         distance is not defined"
                    ));
                }
                points.values.extend_from_slice(x);
                points.norms.push(norm);
                Ok(())
            },
        )
        .map_err(|e| format!("{e} (in {what}, around row {base})"))?;
        offset += segment.end - segment.start;
    }
    if let Cut::Clusters(k) = settings.cut {
        if k > n {
            return Err(format!(
                "{stage}: numClusters is {k}, but {what} has only {n} rows"
            ));
        }
    }
    let tree = Dendrogram::build(&points, settings.measure, settings.linkage)
        .map_err(|e| format!("{stage}: {e} ({what}, {n} rows)"))?;
    let stop = match settings.cut {
        Cut::Clusters(k) => n - k,
        Cut::Threshold(t) => tree.merges.iter().filter(|m| m.2 <= t).count(),
    };
    let (labels, merges) = tree.cut(stop, settings.full_tree);
    let mut next = 0;
    for segment in window {
        let rows = segment.end - segment.start;
        let mut batch = segment.batch;
        if rows != batch.rows() {
            let keep: Vec<bool> = (0..batch.rows())
                .map(|i| i >= segment.start && i < segment.end)
                .collect();
            batch = crate::feature::vector_assembler::retain_rows(batch, &keep);
        }
        let column = Column::Long(labels[next..next + rows].to_vec());
        next += rows;
        out.push(Output::Rows(batch.with_column(column)));
    }
    if !merges.is_empty() {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for m in &merges {
            columns.0.push(m.id1 as i64);
            columns.1.push(m.id2 as i64);
            columns.2.push(m.distance);
            columns.3.push(m.size as i64);
        }
        out.push(Output::Merges(RowBatch::new(
            merges.len(),
            vec![
                Column::Long(columns.0),
                Column::Long(columns.1),
                Column::Double(columns.2),
                Column::Long(columns.3),
            ],
        )));
    }
    Ok(())
}

/// The points of a window, flat, with their L2 norms.
struct Points {
    dim: usize,
    values: Vec<f64>,
    norms: Vec<f64>,
}

impl Points {
    fn len(&self) -> usize {
        self.norms.len()
    }

    fn point(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

/// The distances between the current clusters, stored as the upper triangle of an `n × n`
/// matrix over *slots*: cluster ids map to slots, and a merged cluster takes the slot of one of
/// its parts.
struct Matrix {
    n: usize,
    values: Vec<f64>,
}

impl Matrix {
    /// The pairwise distances of `points` (Flink's distance measures).
    fn of(points: &Points, measure: DistanceMeasure) -> Result<Matrix, String> {
        let n = points.len();
        let len = n * (n - 1) / 2;
        let mut values = Vec::new();
        values.try_reserve_exact(len).map_err(|_| {
            format!(
                "the distance matrix of {n} rows ({:.1} GiB) cannot be allocated",
                (len * 8) as f64 / (1u64 << 30) as f64
            )
        })?;
        for i in 0..n {
            let (a, na) = (points.point(i), points.norms[i]);
            for j in i + 1..n {
                let (b, nb) = (points.point(j), points.norms[j]);
                values.push(match measure {
                    DistanceMeasure::Euclidean => {
                        (na * na + nb * nb - 2.0 * dot(a, b)).max(0.0).sqrt()
                    }
                    other => other.distance(a, na, b, nb),
                });
            }
        }
        Ok(Matrix { n, values })
    }

    /// The start of row `i`'s entries (those of columns `j > i`, at `row(i) + j - i - 1`).
    #[inline]
    fn row(&self, i: usize) -> usize {
        i * (2 * self.n - i - 1) / 2
    }

    #[inline]
    fn index(&self, i: usize, j: usize) -> usize {
        let (lo, hi) = if i < j { (i, j) } else { (j, i) };
        self.row(lo) + hi - lo - 1
    }

    #[inline]
    fn get(&self, i: usize, j: usize) -> f64 {
        self.values[self.index(i, j)]
    }

    #[inline]
    fn set(&mut self, i: usize, j: usize, value: f64) {
        let k = self.index(i, j);
        self.values[k] = value;
    }
}

/// The order in which Java iterates a `HashSet<Integer>` created with capacity `n` and filled
/// with `0..n`: by hash bucket, then (as ids are only ever added in increasing order) by id.
struct JavaSetOrder {
    mask: u32,
}

impl JavaSetOrder {
    /// The table size of `new HashSet<>(n)` once `n` elements are in (`HashMap`'s
    /// `tableSizeFor` and its doubling past 3/4 full); it never shrinks.
    fn new(n: usize) -> JavaSetOrder {
        let table_size_for = |c: usize| c.max(1).next_power_of_two();
        let mut cap = table_size_for(n);
        let mut threshold = (cap as f32 * 0.75) as usize;
        for size in 1..=n {
            if size > threshold {
                let old = cap;
                cap <<= 1;
                threshold = if old >= 16 {
                    threshold << 1
                } else {
                    (cap as f32 * 0.75) as usize
                };
            }
        }
        JavaSetOrder {
            mask: cap as u32 - 1,
        }
    }

    /// The sort key of id `id` in iteration order.
    #[inline]
    fn key(&self, id: u32) -> u64 {
        let bucket = (id ^ (id >> 16)) & self.mask;
        ((bucket as u64) << 32) | id as u64
    }
}

/// The merges of a window, in the order the chain found them: the rows that stand for the two
/// merged clusters (any row of each) and their distance.
struct Dendrogram {
    n: usize,
    merges: Vec<(u32, u32, f64)>,
}

/// One merge of the output.
#[derive(Clone, Debug, PartialEq)]
struct Merge {
    id1: usize,
    id2: usize,
    distance: f64,
    size: usize,
}

impl Dendrogram {
    /// Flink's `nnChainCore`, with slots for the matrix and the merges sorted by distance.
    fn build(points: &Points, measure: DistanceMeasure, linkage: Linkage) -> Result<Self, String> {
        let n = points.len();
        if n < 2 {
            return Ok(Dendrogram {
                n,
                merges: Vec::new(),
            });
        }
        let mut matrix = Matrix::of(points, measure)?;
        let order = JavaSetOrder::new(n);
        let ids = 2 * n - 1;
        // Cluster id -> slot (and slot -> cluster id), the ids in the set, and their sizes.
        let mut slot_of: Vec<u32> = (0..ids as u32).collect();
        let mut id_of: Vec<u32> = (0..n as u32).collect();
        let mut active = vec![false; ids];
        active[..n].iter_mut().for_each(|a| *a = true);
        let mut size = vec![1u32; ids];
        // The slots of the clusters in the set, ascending.
        let mut alive: Vec<u32> = (0..n as u32).collect();
        let mut chain: Vec<u32> = Vec::new();
        let mut merges = Vec::with_capacity(n - 1);
        let mut next_id = n as u32;
        while alive.len() > 1 {
            let (mut a, mut b);
            if chain.len() <= 3 {
                // The first two ids in the set's iteration order.
                let mut first = (u64::MAX, 0u32);
                let mut second = (u64::MAX, 0u32);
                for &s in &alive {
                    let id = id_of[s as usize];
                    let key = order.key(id);
                    if key < first.0 {
                        second = first;
                        first = (key, id);
                    } else if key < second.0 {
                        second = (key, id);
                    }
                }
                a = first.1;
                b = second.1;
                chain.clear();
                chain.push(a);
            } else {
                let len = chain.len();
                a = chain[len - 4];
                b = chain[len - 3];
                chain.truncate(len - 3);
            }
            while chain.len() < 3 || chain[chain.len() - 3] != a {
                let sa = slot_of[a as usize] as usize;
                let row = matrix.row(sa);
                let mut best = (f64::MAX, u64::MAX, u32::MAX);
                for &s in &alive {
                    let s = s as usize;
                    let d = match s.cmp(&sa) {
                        std::cmp::Ordering::Equal => continue,
                        std::cmp::Ordering::Greater => matrix.values[row + s - sa - 1],
                        std::cmp::Ordering::Less => matrix.values[matrix.row(s) + sa - s - 1],
                    };
                    // Java: the first strictly nearer in iteration order (from
                    // `Double.MAX_VALUE`), so among equals the least key.
                    if d < best.0 || (d == best.0 && best.2 != u32::MAX) {
                        let id = id_of[s];
                        let key = order.key(id);
                        if d < best.0 || key < best.1 {
                            best = (d, key, id);
                        }
                    }
                }
                let mut c = best.2;
                if c == u32::MAX {
                    return Err("the distances are not finite numbers".into());
                }
                if active[b as usize] && best.0 == matrix.get(sa, slot_of[b as usize] as usize) {
                    c = b;
                }
                b = a;
                a = c;
                chain.push(a);
            }
            let (sa, sb) = (slot_of[a as usize] as usize, slot_of[b as usize] as usize);
            let dab = matrix.get(sa, sb);
            merges.push((sa as u32, sb as u32, dab));
            let merged = next_id;
            next_id += 1;
            active[a as usize] = false;
            active[b as usize] = false;
            let (si, sj) = (size[a as usize], size[b as usize]);
            if let Ok(i) = alive.binary_search(&(sb as u32)) {
                alive.remove(i);
            }
            for &s in &alive {
                let s = s as usize;
                if s == sa {
                    continue;
                }
                let sk = size[id_of[s] as usize];
                let d = linkage.update(matrix.get(sa, s), matrix.get(sb, s), dab, si, sj, sk);
                matrix.set(sa, s, d);
            }
            // The merged cluster takes a's slot.
            slot_of[merged as usize] = sa as u32;
            id_of[sa] = merged;
            size[merged as usize] = si + sj;
            active[merged as usize] = true;
        }
        // Flink's stable sort by distance (Java's `Double.compare` order).
        merges.sort_by(|x, y| x.2.total_cmp(&y.2));
        Ok(Dendrogram { n, merges })
    }

    /// The cluster of every row after the first `stop` merges, numbered by first row, and the
    /// merge info: the first `stop` merges, or all with `full_tree`.
    fn cut(&self, stop: usize, full_tree: bool) -> (Vec<i64>, Vec<Merge>) {
        let n = self.n;
        let mut parent: Vec<u32> = (0..n as u32).collect();
        let mut id: Vec<usize> = (0..n).collect();
        let mut size = vec![1usize; n];
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let p = parent[x as usize];
                parent[x as usize] = parent[p as usize];
                x = p;
            }
            x
        }
        let mut labels = Vec::new();
        let mut merges = Vec::new();
        // `stop <= end <= n - 1`.
        let end = if full_tree { self.merges.len() } else { stop };
        for k in 0..=end {
            if k == stop {
                let mut number = vec![u32::MAX; n];
                let mut count = 0;
                labels = (0..n as u32)
                    .map(|i| {
                        let root = find(&mut parent, i) as usize;
                        if number[root] == u32::MAX {
                            number[root] = count;
                            count += 1;
                        }
                        number[root] as i64
                    })
                    .collect();
            }
            if k == end {
                break;
            }
            let (a, b, distance) = self.merges[k];
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            let (ia, ib) = (id[ra as usize], id[rb as usize]);
            let merged = size[ra as usize] + size[rb as usize];
            merges.push(Merge {
                id1: ia.min(ib),
                id2: ia.max(ib),
                distance,
                size: merged,
            });
            parent[rb as usize] = ra;
            id[ra as usize] = n + k;
            size[ra as usize] = merged;
        }
        (labels, merges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(rows: &[[f64; 2]]) -> Points {
        Points {
            dim: 2,
            values: rows.iter().flatten().copied().collect(),
            norms: rows.iter().map(|r| l2_norm(r)).collect(),
        }
    }

    const FLINK: [[f64; 2]; 6] = [
        [1.0, 1.0],
        [1.0, 4.0],
        [1.0, 0.0],
        [4.0, 4.0],
        [4.0, 1.5],
        [4.0, 0.0],
    ];

    #[test]
    fn java_hash_set_order() {
        // new HashSet<>(6): 8 buckets; 8 lands in bucket 0 after 0.
        let order = JavaSetOrder::new(6);
        let mut ids: Vec<u32> = (0..11).collect();
        ids.sort_by_key(|&i| order.key(i));
        assert_eq!(ids, vec![0, 8, 1, 9, 2, 10, 3, 4, 5, 6, 7]);
        // new HashSet<>(1000) grows from 1024 to 2048 buckets at 769 elements.
        assert_eq!(JavaSetOrder::new(1000).mask, 2047);
        assert_eq!(JavaSetOrder::new(700).mask, 1023);
        assert_eq!(JavaSetOrder::new(1).mask, 1);
    }

    #[test]
    fn flinks_merge_distances() {
        let expected: [(Linkage, DistanceMeasure, [f64; 5]); 5] = [
            (
                Linkage::Average,
                DistanceMeasure::Euclidean,
                [1.0, 1.5, 3.0, 3.1394402, 3.9559706],
            ),
            (
                Linkage::Average,
                DistanceMeasure::Manhattan,
                [1.0, 1.5, 3.0, 3.75, 4.875],
            ),
            (
                Linkage::Single,
                DistanceMeasure::Euclidean,
                [1.0, 1.5, 2.5, 3.0, 3.0],
            ),
            (
                Linkage::Ward,
                DistanceMeasure::Euclidean,
                [1.0, 1.5, 3.0, 4.2573465, 5.5113519],
            ),
            (
                Linkage::Complete,
                DistanceMeasure::Euclidean,
                [1.0, 1.5, 3.0, 3.3541019, 5.0],
            ),
        ];
        for (linkage, measure, distances) in expected {
            let tree = Dendrogram::build(&points(&FLINK), measure, linkage).unwrap();
            let (_, merges) = tree.cut(4, true);
            let got: Vec<f64> = merges.iter().map(|m| m.distance).collect();
            for (g, e) in got.iter().zip(distances) {
                assert!((g - e).abs() < 1e-7, "{linkage:?} {measure:?}: {got:?}");
            }
            assert_eq!(merges.last().unwrap().size, 6);
        }
    }

    #[test]
    fn cut_numbers_clusters_by_first_row() {
        let tree =
            Dendrogram::build(&points(&FLINK), DistanceMeasure::Euclidean, Linkage::Ward).unwrap();
        let (labels, merges) = tree.cut(4, false);
        assert_eq!(labels, vec![0, 1, 0, 1, 0, 0]);
        assert_eq!(merges.len(), 4);
        let (labels, _) = tree.cut(0, false);
        assert_eq!(labels, vec![0, 1, 2, 3, 4, 5]);
        let (labels, merges) = tree.cut(5, false);
        assert_eq!(labels, vec![0; 6]);
        // Leaves keep their row numbers, merged clusters are n + k.
        // (Flink's Euclidean distance goes through the norms: 1 + 2e-16 here.)
        assert_eq!((merges[0].id1, merges[0].id2, merges[0].size), (0, 2, 2));
        assert!((merges[0].distance - 1.0).abs() < 1e-12);
        assert_eq!((merges[1].id1, merges[1].id2, merges[1].size), (4, 5, 2));
        assert_eq!(merges[4].size, 6);
    }
}
