//! KMeans' initial centroids, chosen the same way at every parallelism:
//! - `random`: the `k` points with the smallest hash of `(seed, values)`;
//! - `k-means||` (Bahmani et al., "Scalable K-Means++", as Spark MLlib runs it, with five
//!   steps and an oversampling factor of `2k`): start from one random point; each step
//!   samples `2k` more points with probability proportional to their squared distance to
//!   the candidates so far (a weighted sample without replacement by exponential keys, so
//!   that every step is one pass and one all-reduce); then every candidate is weighted by
//!   the points closest to it, and greedy k-means++ (as scikit-learn's: the best of
//!   `2 + ln k` draws for every centre) with a weighted Lloyd's refinement picks `k` of them
//!   on one instance.

use serde::{Deserialize, Serialize};
use weir_core::{op, DataCache, DataStream, IterationBody, Round, Step};

use super::kmeans::{Centroids, PointBlock};
use crate::benchmark::JavaRandom;
use crate::common::distance::{squared_euclidean, DistanceMeasure};
use crate::common::vector_columns::dense_rows;
use crate::table::{Column, RowBatch, Table};

/// Steps of oversampling in `k-means||` (Spark's `initSteps` is 2; more steps cost a pass
/// each and find the separated clusters of unscaled data more reliably).
const OVERSAMPLING_STEPS: u64 = 5;
/// Rounds of weighted Lloyd's algorithm over the candidates (Spark's local k-means).
const LOCAL_ROUNDS: usize = 30;
/// Runs of k-means++ and Lloyd's algorithm over the candidates, of which the best is kept.
const LOCAL_INITS: usize = 10;

/// How KMeans picks its initial centroids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InitMode {
    /// `random`.
    Random,
    /// `k-means||`.
    Parallel,
}

impl InitMode {
    pub(crate) fn from_name(name: &str) -> Result<InitMode, String> {
        match name {
            "random" => Ok(InitMode::Random),
            "k-means||" => Ok(InitMode::Parallel),
            other => Err(format!(
                "initMode {other} is not supported; supported: 'random', 'k-means||'"
            )),
        }
    }
}

/// The initial centroids of the points in column `column` of `input`: one record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn initial_centroids<'s>(
    name: &str,
    input: &Table<'s>,
    column: usize,
    k: usize,
    seed: i64,
    mode: InitMode,
    measure: DistanceMeasure,
) -> DataStream<'s, Centroids> {
    let drawn = |count: usize, suffix: &str| {
        input
            .stream
            .clone()
            .aggregate_to_end(
                format!("{name}.{suffix}"),
                move || SmallestKeys::new(count),
                move |acc, batch| acc.fold(seed, column, &batch),
                SmallestKeys::merge,
            )
            .try_map_batch(
                op(format!("{name}.{suffix}.centroids")).parallelism(1),
                |drawn: Vec<SmallestKeys>| {
                    drawn
                        .into_iter()
                        .map(SmallestKeys::into_centroids)
                        .collect::<Result<Vec<_>, _>>()
                },
            )
    };
    match mode {
        InitMode::Random => drawn(k, "sample"),
        InitMode::Parallel => {
            let first =
                drawn(1, "first").map(op(format!("{name}.first.round0")).parallelism(1), |first| {
                    Candidates {
                        fresh_from: 0,
                        centroids: first,
                        phi: 0.0,
                        result: None,
                    }
                });
            let body = ParallelInit {
                column,
                k,
                seed,
                measure,
                costs: Vec::new(),
            };
            input
                .stream
                .clone()
                .iterate_bounded(format!("{name}.kmeans||"), first, body)
                .flat_map(
                    op(format!("{name}.kmeans||.centroids")).parallelism(1),
                    |candidates: Candidates| candidates.result,
                )
        }
    }
}

/// A hash of `(seed, salt, values)` in `[0, 2^64)`: the same for equal points anywhere.
/// Values are hashed at f32 precision, so that points computed upstream in a different
/// order (a scaler's statistics summed over 1 or 2 workers differ in the last bits) still
/// draw the same. Two values (as f32 bits) make one 64-bit word; each word takes one
/// multiply into the state, and a SplitMix64 finaliser mixes the state at the end (a tenth
/// of the work of mixing every value fully, which made the sample pass of `KMeans` cost as
/// much as a round).
fn point_hash(seed: i64, salt: u64, values: &[f64]) -> u64 {
    let mut h = hash_start(seed, salt);
    let mut pairs = values.chunks_exact(2);
    for pair in &mut pairs {
        h = hash_word(h, pair_word(pair[0], pair[1]));
    }
    if let [v] = pairs.remainder() {
        h = hash_word(h, u64::from((*v as f32).to_bits()));
    }
    splitmix(h)
}

/// [`point_hash`] before the values.
fn hash_start(seed: i64, salt: u64) -> u64 {
    splitmix(seed as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Two values at f32 precision as one word.
#[inline(always)]
fn pair_word(a: f64, b: f64) -> u64 {
    u64::from((a as f32).to_bits()) | u64::from((b as f32).to_bits()) << 32
}

/// [`point_hash`]'s step for one word.
#[inline(always)]
fn hash_word(h: u64, word: u64) -> u64 {
    (h ^ word)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// [`point_hash`] of each of the `N` points of `dim` values in `points`.
#[inline(always)]
fn point_hashes<const N: usize>(seed: i64, salt: u64, points: &[f64], dim: usize) -> [u64; N] {
    let x: [&[f64]; N] = std::array::from_fn(|i| &points[i * dim..(i + 1) * dim]);
    let mut h = [hash_start(seed, salt); N];
    let mut j = 0;
    while j + 1 < dim {
        for (h, x) in h.iter_mut().zip(&x) {
            *h = hash_word(*h, pair_word(x[j], x[j + 1]));
        }
        j += 2;
    }
    if j < dim {
        for (h, x) in h.iter_mut().zip(&x) {
            *h = hash_word(*h, u64::from((x[j] as f32).to_bits()));
        }
    }
    h.map(splitmix)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `count` points with the smallest keys seen, and the first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SmallestKeys {
    count: usize,
    points: Vec<(u64, Vec<f64>)>,
    error: Option<String>,
}

impl SmallestKeys {
    fn new(count: usize) -> SmallestKeys {
        SmallestKeys {
            count,
            ..SmallestKeys::default()
        }
    }

    fn fold(&mut self, seed: i64, column: usize, batch: &RowBatch) {
        if self.error.is_some() {
            return;
        }
        let Some(dim) = crate::common::vector_columns::first_size(batch, column) else {
            return;
        };
        if let (Column::DenseVector { dim: d, values }, true) = (batch.column(column), dim > 0) {
            if *d == dim {
                // Eight hashes at a time: their chains of multiplications overlap in the CPU.
                let mut groups = values.chunks_exact(8 * dim);
                for group in &mut groups {
                    let keys = point_hashes::<8>(seed, 0, group, dim);
                    for (key, x) in keys.into_iter().zip(group.chunks_exact(dim)) {
                        self.offer(key, x);
                    }
                }
                for x in groups.remainder().chunks_exact(dim) {
                    self.offer(point_hash(seed, 0, x), x);
                }
                return;
            }
        }
        let result = dense_rows("KMeans", batch, column, dim, |_, x| {
            self.offer(point_hash(seed, 0, x), x);
            Ok(())
        });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn offer(&mut self, key: u64, x: &[f64]) {
        let full = self.points.len() >= self.count;
        if full && self.points.last().is_some_and(|(k, _)| *k <= key) {
            return;
        }
        let at = self.points.partition_point(|(k, _)| *k <= key);
        self.points.insert(at, (key, x.to_vec()));
        self.points.truncate(self.count);
    }

    fn merge(&mut self, other: SmallestKeys) {
        if self.error.is_none() {
            self.error = other.error;
        }
        for (key, x) in other.points {
            self.offer(key, &x);
        }
    }

    fn into_centroids(self) -> Result<Centroids, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let vectors: Vec<Vec<f64>> = self.points.into_iter().map(|(_, x)| x).collect();
        Centroids::from_vectors(&vectors)
            .map_err(|_| "KMeans: the input vectors do not all have one size".to_string())
    }
}

/// The `k-means||` model between rounds: the candidates so far (those from `fresh_from` on
/// are new in the last round), the total cost of the last round, and at the end the chosen
/// centroids.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Candidates {
    fresh_from: usize,
    centroids: Centroids,
    phi: f64,
    result: Option<Centroids>,
}

/// One instance's part of a `k-means||` round: its cost, and either its heaviest-keyed
/// sampled points (oversampling rounds) or the number of points closest to each candidate
/// (the last round).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ParallelPartial {
    phi: f64,
    sample: Vec<(f64, Vec<f64>)>,
    closest: Vec<u64>,
}

/// `k-means||` as an iteration body; `costs` holds this instance's squared distance of
/// every cached point to its closest candidate, in cache order.
#[derive(Clone)]
struct ParallelInit {
    column: usize,
    k: usize,
    seed: i64,
    measure: DistanceMeasure,
    costs: Vec<f64>,
}

impl ParallelInit {
    fn sample_size(&self) -> usize {
        2 * self.k
    }
}

impl IterationBody for ParallelInit {
    type Record = RowBatch;
    type Cached = PointBlock;
    type Model = Candidates;
    type Partial = ParallelPartial;

    fn cache(&mut self, batch: RowBatch) -> Result<Option<PointBlock>, String> {
        PointBlock::of("KMeans", &batch, self.column)
    }

    fn weigh(block: &PointBlock) -> usize {
        PointBlock::weigh(block)
    }

    fn partial(
        &mut self,
        round: Round,
        model: &Candidates,
        data: &mut DataCache<PointBlock>,
    ) -> Result<ParallelPartial, String> {
        let c = &model.centroids;
        if c.len() == 0 {
            return Err("KMeans: the training data is empty".into());
        }
        let fresh = c.dim * model.fresh_from;
        let (fresh_values, fresh_norms) = (&c.values[fresh..], &c.norms[model.fresh_from..]);
        let last = round.number == OVERSAMPLING_STEPS;
        let mut part = ParallelPartial {
            phi: 0.0,
            sample: Vec::new(),
            closest: vec![0; if last { c.len() } else { 0 }],
        };
        let (seed, size, measure) = (self.seed, self.sample_size(), self.measure);
        let mut costs = std::mem::take(&mut self.costs);
        let mut i = 0;
        let mut wrong_size = None;
        data.for_each_ref(|block| {
            if block.dim != c.dim {
                wrong_size = Some(block.dim);
                return;
            }
            for (x, norm) in block.points() {
                if i == costs.len() {
                    costs.push(f64::INFINITY);
                }
                let (_, d) = DistanceMeasure::Euclidean.closest(fresh_values, fresh_norms, x, norm);
                costs[i] = costs[i].min(d);
                part.phi += costs[i];
                if last {
                    let (j, _) = measure.closest(&c.values, &c.norms, x, norm);
                    part.closest[j] += 1;
                } else if costs[i] > 0.0 {
                    let u =
                        (point_hash(seed, round.number + 1, x) >> 11) as f64 / (1u64 << 53) as f64;
                    let key = u.max(f64::MIN_POSITIVE).ln() / costs[i];
                    keep_heaviest(&mut part.sample, size, key, x);
                }
                i += 1;
            }
        })
        .map_err(|e| e.to_string())?;
        self.costs = costs;
        match wrong_size {
            Some(size) => Err(format!(
                "KMeans: the input vectors have {size} elements, expected {}",
                c.dim
            )),
            None => Ok(part),
        }
    }

    fn merge(&mut self, total: &mut ParallelPartial, other: ParallelPartial) {
        total.phi += other.phi;
        for (key, x) in other.sample {
            keep_heaviest(&mut total.sample, self.sample_size(), key, &x);
        }
        total
            .closest
            .iter_mut()
            .zip(other.closest)
            .for_each(|(a, b)| *a += b);
    }

    fn update(
        &mut self,
        round: u64,
        mut model: Candidates,
        total: ParallelPartial,
    ) -> Result<Step<Candidates>, String> {
        if model.centroids.len() == 0 {
            return Err("KMeans: the training data is empty".into());
        }
        if round == OVERSAMPLING_STEPS {
            let weights: Vec<f64> = total.closest.iter().map(|&c| c as f64).collect();
            model.result = Some(best_local_clustering(
                &model.centroids,
                &weights,
                self.k,
                self.seed,
            ));
            return Ok(Step::Finish(model));
        }
        let dim = model.centroids.dim;
        model.fresh_from = model.centroids.len();
        let mut values = std::mem::take(&mut model.centroids.values);
        for (_, x) in total.sample {
            values.extend(x);
        }
        model.centroids = Centroids::new(dim, values);
        model.phi = total.phi;
        Ok(Step::Continue(model))
    }
}

/// Keeps the `size` entries with the largest keys (ties: the smaller point).
fn keep_heaviest(sample: &mut Vec<(f64, Vec<f64>)>, size: usize, key: f64, x: &[f64]) {
    let heavier =
        |a: &(f64, Vec<f64>), key: f64, x: &[f64]| a.0 > key || (a.0 == key && a.1.as_slice() <= x);
    if sample.len() >= size && sample.last().is_some_and(|last| heavier(last, key, x)) {
        return;
    }
    let at = sample.partition_point(|a| heavier(a, key, x));
    sample.insert(at, (key, x.to_vec()));
    sample.truncate(size);
}

/// The best of [`LOCAL_INITS`] runs of greedy k-means++ and weighted Lloyd's algorithm over
/// the candidates, by the weighted cost it leaves (scikit-learn's `n_init`, on the few
/// candidates instead of the data).
fn best_local_clustering(
    candidates: &Centroids,
    weights: &[f64],
    k: usize,
    seed: i64,
) -> Centroids {
    let mut random = JavaRandom::new(seed);
    let mut best: Option<(f64, Centroids)> = None;
    for _ in 0..LOCAL_INITS {
        let chosen = kmeans_plus_plus(candidates, weights, k, &mut random);
        let centers = weighted_lloyd(candidates, weights, chosen);
        let cost = weighted_cost(candidates, weights, &centers);
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, centers));
        }
    }
    best.map(|(_, centers)| centers).unwrap_or_default()
}

/// The weighted sum of squared distances of the candidates to their closest centre.
fn weighted_cost(candidates: &Centroids, weights: &[f64], centers: &Centroids) -> f64 {
    let dim = candidates.dim;
    (0..candidates.len())
        .map(|i| {
            let point = &candidates.values[i * dim..(i + 1) * dim];
            let norm = candidates.norms[i];
            let (_, d) =
                DistanceMeasure::Euclidean.closest(&centers.values, &centers.norms, point, norm);
            weights[i] * d
        })
        .sum()
}

/// Greedy k-means++ over weighted candidates (scikit-learn's: each centre is the best of
/// `2 + ln k` draws by the weighted cost it leaves): the indices of `k` of them (fewer if
/// fewer have weight).
fn kmeans_plus_plus(
    candidates: &Centroids,
    weights: &[f64],
    k: usize,
    random: &mut JavaRandom,
) -> Vec<usize> {
    let n = candidates.len();
    let dim = candidates.dim;
    let point = |i: usize| &candidates.values[i * dim..(i + 1) * dim];
    let distance = |i: usize, j: usize| {
        squared_euclidean(point(i), candidates.norms[i], point(j), candidates.norms[j])
    };
    let trials = 2 + (k as f64).ln() as usize;
    let mut chosen = Vec::with_capacity(k);
    let Some(first) = weighted_draw(weights, &vec![1.0; n], random) else {
        return chosen;
    };
    chosen.push(first);
    let mut costs: Vec<f64> = (0..n).map(|i| distance(i, first)).collect();
    while chosen.len() < k {
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let Some(next) = weighted_draw(weights, &costs, random) else {
                break;
            };
            let after: Vec<f64> = (0..n).map(|i| costs[i].min(distance(i, next))).collect();
            let total: f64 = after.iter().zip(weights).map(|(c, w)| c * w).sum();
            if best.as_ref().is_none_or(|(t, _, _)| total < *t) {
                best = Some((total, next, after));
            }
        }
        let Some((_, next, after)) = best else {
            break;
        };
        chosen.push(next);
        costs = after;
    }
    chosen
}

/// An index drawn with probability proportional to `weights[i] * costs[i]` (`None` when all
/// are 0).
fn weighted_draw(weights: &[f64], costs: &[f64], random: &mut JavaRandom) -> Option<usize> {
    let mass = |i: usize| weights[i] * costs[i];
    let total: f64 = (0..weights.len()).map(mass).sum();
    if total <= 0.0 {
        return None;
    }
    let target = random.next_double() * total;
    let mut acc = 0.0;
    for i in 0..weights.len() {
        acc += mass(i);
        if acc >= target && mass(i) > 0.0 {
            return Some(i);
        }
    }
    (0..weights.len()).rev().find(|&i| mass(i) > 0.0)
}

/// Lloyd's algorithm over the weighted candidates from the `chosen` ones.
fn weighted_lloyd(candidates: &Centroids, weights: &[f64], chosen: Vec<usize>) -> Centroids {
    let dim = candidates.dim;
    let point = |i: usize| &candidates.values[i * dim..(i + 1) * dim];
    let mut centers = Centroids::new(
        dim,
        chosen.iter().flat_map(|&i| point(i).to_vec()).collect(),
    );
    for _ in 0..LOCAL_ROUNDS {
        let mut sums = vec![0.0; centers.values.len()];
        let mut mass = vec![0.0; centers.len()];
        for (i, (&weight, &norm)) in weights.iter().zip(&candidates.norms).enumerate() {
            let (j, _) =
                DistanceMeasure::Euclidean.closest(&centers.values, &centers.norms, point(i), norm);
            mass[j] += weight;
            let sum = &mut sums[j * dim..(j + 1) * dim];
            sum.iter_mut()
                .zip(point(i))
                .for_each(|(s, x)| *s += weight * x);
        }
        let mut values = centers.values.clone();
        for (j, &m) in mass.iter().enumerate() {
            if m > 0.0 {
                for d in 0..dim {
                    values[j * dim + d] = sums[j * dim + d] / m;
                }
            }
        }
        if values == centers.values {
            break;
        }
        centers = Centroids::new(dim, values);
    }
    centers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_hashes_are_point_hashes() {
        let points: Vec<f64> = (0..36).map(|i| f64::from(i) * 1.7 - 9.0).collect();
        for dim in [1, 3, 9] {
            let hashes = point_hashes::<4>(42, 3, &points[..4 * dim], dim);
            for (h, x) in hashes.iter().zip(points.chunks_exact(dim)) {
                assert_eq!(*h, point_hash(42, 3, x));
            }
        }
    }

    /// The keys of distinct points spread evenly (they pick the sample), also for points
    /// that differ in one value only.
    #[test]
    fn point_hashes_spread_evenly() {
        let mut buckets = [0u32; 16];
        for i in 0..16_000u32 {
            let x = [1.0, f64::from(i) * 0.25, 3.0];
            buckets[(point_hash(7, 0, &x) >> 60) as usize] += 1;
        }
        for count in buckets {
            assert!((800..1200).contains(&count), "{buckets:?}");
        }
    }

    #[test]
    fn interleaved_draws_pick_the_same_points() {
        let dim = 3;
        let values: Vec<f64> = (0..3 * 37).map(|i| (f64::from(i) * 0.61).sin()).collect();
        let batch = RowBatch::new(37, vec![Column::DenseVector { dim, values }]);
        let mut drawn = SmallestKeys::new(5);
        drawn.fold(9, 0, &batch);
        let mut one_by_one = SmallestKeys::new(5);
        dense_rows("KMeans", &batch, 0, dim, |_, x| {
            one_by_one.offer(point_hash(9, 0, x), x);
            Ok(())
        })
        .unwrap();
        assert_eq!(drawn.points, one_by_one.points);
    }
}
