//! Mini-batch stochastic gradient descent (Flink ML's `common.optimizer.SGD` with its loss
//! functions and `RegularizationUtils`), the trainer of LogisticRegression, LinearSVC and
//! LinearRegression, as an [`IterationBody`]: every instance caches its labelled points;
//! each round it takes its next `globalBatchSize / instances` points (cycling through its
//! cache as Flink does), sums the loss gradient, the weight and the loss, and the reducer
//! applies `coefficient -= learningRate * gradient / weight`, then the regularisation. The
//! iteration ends after `maxIter` rounds or once a round's mean loss is at most `tol`.

use serde::{Deserialize, Serialize};
use weir_core::{op, DataCache, DataStream, IterationBody, Round, Step};

use super::prefetch::prefetch;
use super::shared_values::SharedValues;
use super::vector_columns::{dense_rows, first_size};
use crate::table::{RowBatch, Table};

/// A loss function (Flink's `LossFunc`s); labels are 0/1 for the classifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// `BinaryLogisticLoss`: `log(1 + exp(-dot * (2y - 1)))`.
    BinaryLogistic,
    /// `HingeLoss`: `max(0, 1 - (2y - 1) * dot)`.
    Hinge,
    /// `LeastSquareLoss`: `(dot - y)² / 2`.
    LeastSquare,
}

impl Loss {
    /// The loss of one point and the multiplier of its features in the gradient.
    ///
    /// Without `exact` (when only whether the mean loss is 0 matters: `tol` 0), the
    /// logistic loss is replaced by `exp(-dot * y)`, which is 0 exactly when the loss is
    /// (both are never negative), and saves a `log1p` per row and round.
    fn loss_and_multiplier(self, dot: f64, label: f64, exact: bool) -> (f64, f64) {
        match self {
            Loss::BinaryLogistic => {
                let y = 2.0 * label - 1.0;
                // One `exp`: Flink's `-y / (exp(dot * y) + 1)` with `exp(dot * y)` as the
                // reciprocal of `e` (an overflowed `e` gives `-y`, as Flink's 0 + 1 does).
                let e = (-dot * y).exp();
                let loss = if exact { e.ln_1p() } else { e };
                (loss, -y / (e.recip() + 1.0))
            }
            Loss::Hinge => {
                let y = 2.0 * label - 1.0;
                let margin = 1.0 - y * dot;
                (margin.max(0.0), if margin > 0.0 { -y } else { 0.0 })
            }
            Loss::LeastSquare => (0.5 * (dot - label).powi(2), dot - label),
        }
    }
}

/// The SGD params (Flink's `SGDParams`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SgdParams {
    pub(crate) max_iter: u64,
    pub(crate) learning_rate: f64,
    pub(crate) global_batch_size: usize,
    pub(crate) tol: f64,
    pub(crate) reg: f64,
    pub(crate) elastic_net: f64,
}

/// Which columns hold the training points, and what labels are allowed.
#[derive(Clone, Debug)]
pub(crate) struct LabeledColumns {
    pub(crate) stage: &'static str,
    pub(crate) features: usize,
    pub(crate) label: usize,
    pub(crate) weight: Option<usize>,
    /// Labels must be 0 or 1: the message of the error otherwise.
    pub(crate) binary_labels: Option<&'static str>,
}

/// Labelled points cached by one instance, flat.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct LabeledBlock {
    dim: usize,
    /// The rows' features, flat (shared with the input batch when it has them so).
    features: SharedValues,
    labels: Vec<f64>,
    weights: Vec<f64>,
}

impl LabeledBlock {
    fn rows(&self) -> usize {
        self.labels.len()
    }

    /// The points of `batch` (`None` for an empty batch).
    pub(crate) fn of(columns: &LabeledColumns, batch: &RowBatch) -> Result<Option<Self>, String> {
        let Some(dim) = first_size(batch, columns.features) else {
            return Ok(None);
        };
        let stage = columns.stage;
        let number = |column: usize, row: usize, what: &str| {
            batch
                .column(column)
                .number(row)
                .ok_or_else(|| format!("{stage}: the {what} column must hold numbers"))
        };
        // Dense vectors of the size: shared with the batch; the rows then only check their
        // labels.
        let shared = SharedValues::of_dense(&batch.columns()[columns.features], dim);
        let dense = shared.is_some();
        let mut block = LabeledBlock {
            dim,
            features: shared
                .unwrap_or_else(|| SharedValues::Owned(Vec::with_capacity(dim * batch.rows()))),
            labels: Vec::with_capacity(batch.rows()),
            weights: Vec::with_capacity(batch.rows()),
        };
        dense_rows(stage, batch, columns.features, dim, |row, x| {
            let label = number(columns.label, row, "label")?;
            if let Some(message) = columns.binary_labels {
                if label != 0.0 && label != 1.0 {
                    return Err(format!("{stage}: {message} But detected label: {label}."));
                }
            }
            let weight = match columns.weight {
                Some(column) => number(column, row, "weight")?,
                None => 1.0,
            };
            if !dense {
                block.features.owned_mut().extend_from_slice(x);
            }
            block.labels.push(label);
            block.weights.push(weight);
            Ok(())
        })?;
        Ok(Some(block))
    }
}

/// A round's sums over one mini-batch: the gradient, the weight and the loss.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GradientSums {
    gradient: Vec<f64>,
    weight: f64,
    loss: f64,
}

/// The coefficient between rounds, with its size (known from the first point).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Coefficient {
    pub(crate) values: Vec<f64>,
}

/// SGD as an iteration body; `offset` is this instance's position in its cache.
#[derive(Clone)]
pub(crate) struct Sgd {
    columns: LabeledColumns,
    params: SgdParams,
    loss: Loss,
    offset: usize,
}

impl Sgd {
    /// Trains a coefficient on `input` from zeros of the features' size: the final
    /// coefficient, one record.
    pub(crate) fn train<'s>(
        name: &str,
        input: &Table<'s>,
        columns: LabeledColumns,
        params: SgdParams,
        loss: Loss,
    ) -> DataStream<'s, Coefficient> {
        let column = columns.features;
        let stage = columns.stage;
        let init = input
            .stream
            .clone()
            .aggregate_to_end(
                format!("{name}.dim"),
                Dims::default,
                move |dims, batch| dims.fold(&batch, column),
                Dims::merge,
            )
            .try_map_batch(
                op(format!("{name}.init")).parallelism(1),
                move |dims: Vec<Dims>| {
                    dims.into_iter()
                        .map(|d| d.coefficient(stage))
                        .collect::<Result<Vec<_>, _>>()
                },
            );
        let body = Sgd {
            columns,
            params,
            loss,
            offset: 0,
        };
        input
            .stream
            .clone()
            .iterate_bounded(format!("{name}.sgd"), init, body)
    }

    /// This instance's share of the global batch (Flink: the first `global % n` instances
    /// take one more).
    fn local_batch_size(&self, round: Round) -> usize {
        let n = round.instances.max(1);
        let global = self.params.global_batch_size;
        global / n + usize::from(global % n > round.instance)
    }
}

impl IterationBody for Sgd {
    type Record = RowBatch;
    type Cached = LabeledBlock;
    type Model = Coefficient;
    type Partial = GradientSums;

    fn cache(&mut self, batch: RowBatch) -> Result<Option<LabeledBlock>, String> {
        LabeledBlock::of(&self.columns, &batch)
    }

    fn weigh(block: &LabeledBlock) -> usize {
        8 * (block.features.values().len() + 2 * block.labels.len())
    }

    fn partial(
        &mut self,
        round: Round,
        model: &Coefficient,
        data: &mut DataCache<LabeledBlock>,
    ) -> Result<GradientSums, String> {
        let w = &model.values;
        let dim = w.len();
        let mut sums = GradientSums {
            gradient: vec![0.0; dim],
            weight: 0.0,
            loss: 0.0,
        };
        let (from, to) = (self.offset, self.offset + self.local_batch_size(round));
        let mut start = 0;
        let mut total = 0;
        let mut wrong_size = None;
        data.for_each_ref(|block| {
            total += block.rows();
            let (lo, hi) = (from.max(start), to.min(start + block.rows()));
            if block.dim != dim {
                wrong_size = wrong_size.or(Some(block.dim));
            } else if lo < hi {
                self.add_gradients(block, lo - start..hi - start, w, &mut sums);
            }
            start += block.rows();
        })
        .map_err(|e| e.to_string())?;
        if let Some(size) = wrong_size {
            return Err(format!(
                "{}: the training data should all have the same dimensions: {size} and {dim}",
                self.columns.stage
            ));
        }
        self.offset = if to >= total { 0 } else { to };
        Ok(sums)
    }

    fn merge(&mut self, total: &mut GradientSums, other: GradientSums) {
        total
            .gradient
            .iter_mut()
            .zip(other.gradient)
            .for_each(|(a, b)| *a += b);
        total.weight += other.weight;
        total.loss += other.loss;
    }

    fn update(
        &mut self,
        round: u64,
        mut model: Coefficient,
        total: GradientSums,
    ) -> Result<Step<Coefficient>, String> {
        let p = self.params;
        let mut mean_loss = f64::MAX;
        if total.weight > 0.0 {
            let step = p.learning_rate / total.weight;
            model
                .values
                .iter_mut()
                .zip(&total.gradient)
                .for_each(|(w, g)| *w -= step * g);
            regularize(&mut model.values, p.reg, p.elastic_net, p.learning_rate);
            mean_loss = total.loss / total.weight;
        }
        Ok(if round + 1 >= p.max_iter || mean_loss <= p.tol {
            Step::Finish(model)
        } else {
            Step::Continue(model)
        })
    }
}

/// Rows whose gradient terms are added together: each element of the gradient gets its
/// rows' terms in the same order as row by row (the same sums, bit for bit), but in one pass
/// over the gradient per group instead of one per row.
const ROWS_AT_ONCE: usize = 8;
/// How many groups of rows ahead to prefetch.
const PREFETCH_GROUPS: usize = 2;
/// The lanes of a training dot product: element `j` is summed into lane `j % LANES`, and the
/// lanes are added pairwise at the end (then the elements past the last whole group of
/// `LANES`). The lanes are independent chains of additions that the compiler keeps in vector
/// registers; the order is fixed, so every CPU, with or without AVX2, gives the same bits.
const LANES: usize = 8;

impl Sgd {
    fn add_gradients(
        &self,
        block: &LabeledBlock,
        rows: std::ops::Range<usize>,
        w: &[f64],
        sums: &mut GradientSums,
    ) {
        // Only `tol` reads the loss: with `tol` 0 only whether it is 0 matters.
        let exact = self.params.tol > 0.0;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { add_gradients_avx2(self.loss, exact, block, rows, w, sums) };
        }
        add_gradients_kernel(self.loss, exact, block, rows, w, sums)
    }
}

/// [`add_gradients_kernel`] compiled for AVX2 (the same operations, four lanes wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_gradients_avx2(
    loss: Loss,
    exact: bool,
    block: &LabeledBlock,
    rows: std::ops::Range<usize>,
    w: &[f64],
    sums: &mut GradientSums,
) {
    add_gradients_kernel(loss, exact, block, rows, w, sums)
}

/// Adds the loss, weight and gradient terms of rows `rows` of `block` under `w` to `sums`.
#[inline(always)]
fn add_gradients_kernel(
    loss: Loss,
    exact: bool,
    block: &LabeledBlock,
    rows: std::ops::Range<usize>,
    w: &[f64],
    sums: &mut GradientSums,
) {
    let dim = block.dim;
    let labels = &block.labels[rows.clone()];
    let weights = &block.weights[rows.clone()];
    let features = &block.features.values()[rows.start * dim..rows.end * dim];
    let w = &w[..dim];
    let mut done = 0;
    if dim > 0 {
        let size = ROWS_AT_ONCE * dim;
        for (k, group) in features.chunks_exact(size).enumerate() {
            if PREFETCH_GROUPS > 0 {
                if let Some(ahead) = features.get((k + PREFETCH_GROUPS) * size..) {
                    prefetch(&ahead[..size.min(ahead.len())]);
                }
            }
            let mut m = [0.0; ROWS_AT_ONCE];
            for (i, (m, x)) in m.iter_mut().zip(group.chunks_exact(dim)).enumerate() {
                let weight = weights[done + i];
                let (l, multiplier) =
                    loss.loss_and_multiplier(lane_dot(x, w), labels[done + i], exact);
                sums.loss += weight * l;
                sums.weight += weight;
                *m = weight * multiplier;
            }
            if m.iter().all(|&m| m != 0.0) {
                add_multiples(&mut sums.gradient, m, group);
            } else {
                for (x, &m) in group.chunks_exact(dim).zip(&m) {
                    if m != 0.0 {
                        axpy(&mut sums.gradient, m, x);
                    }
                }
            }
            done += ROWS_AT_ONCE;
        }
    }
    for row in done..labels.len() {
        let x = &features[row * dim..(row + 1) * dim];
        let weight = weights[row];
        let (l, multiplier) = loss.loss_and_multiplier(lane_dot(x, w), labels[row], exact);
        sums.loss += weight * l;
        sums.weight += weight;
        let m = weight * multiplier;
        if m != 0.0 {
            axpy(&mut sums.gradient, m, x);
        }
    }
}

/// The dot product of `x` and `w` in [`LANES`] lanes (see there for the order).
#[inline(always)]
pub(crate) fn lane_dot(x: &[f64], w: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (mut xs, mut ws) = (x.chunks_exact(LANES), w.chunks_exact(LANES));
    for (a, b) in (&mut xs).zip(&mut ws) {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
    }
    let mut sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (a, b) in xs.remainder().iter().zip(ws.remainder()) {
        sum += a * b;
    }
    sum
}

/// `gradient += m[i] * row i` for the `N` rows of `rows` in turn, element by element (the
/// same additions in the same order as one row after the other).
#[inline(always)]
fn add_multiples<const N: usize>(gradient: &mut [f64], m: [f64; N], rows: &[f64]) {
    let dim = gradient.len();
    let x: [&[f64]; N] = std::array::from_fn(|i| &rows[i * dim..(i + 1) * dim]);
    for (j, g) in gradient.iter_mut().enumerate() {
        let mut acc = *g;
        for (&m, x) in m.iter().zip(&x) {
            acc += m * x[j];
        }
        *g = acc;
    }
}

/// `gradient += m * x`.
fn axpy(gradient: &mut [f64], m: f64, x: &[f64]) {
    gradient.iter_mut().zip(x).for_each(|(g, x)| *g += m * x);
}

/// Flink's `RegularizationUtils.regularize`: shrinks the coefficient in place (L2, L1 or
/// elastic net).
pub(crate) fn regularize(w: &mut [f64], reg: f64, elastic_net: f64, learning_rate: f64) {
    if reg == 0.0 {
        return;
    }
    if elastic_net == 0.0 {
        w.iter_mut().for_each(|x| *x *= 1.0 - learning_rate * reg);
    } else if elastic_net == 1.0 {
        for x in w.iter_mut().filter(|x| **x != 0.0) {
            *x -= learning_rate * elastic_net * reg * x.signum();
        }
    } else {
        for x in w.iter_mut() {
            let signum = if *x == 0.0 { 0.0 } else { x.signum() };
            *x -= learning_rate * (elastic_net * reg * signum + (1.0 - elastic_net) * reg * *x);
        }
    }
}

/// The feature size seen by one instance (and whether sizes differ).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Dims {
    dim: Option<usize>,
    mixed: Option<(usize, usize)>,
}

impl Dims {
    fn fold(&mut self, batch: &RowBatch, column: usize) {
        if let Some(size) = first_size(batch, column) {
            self.fold_size(size);
        }
    }

    fn merge(&mut self, other: Dims) {
        self.mixed = self.mixed.or(other.mixed);
        if let Some(size) = other.dim {
            self.fold_size(size);
        }
    }

    fn fold_size(&mut self, size: usize) {
        match self.dim {
            None => self.dim = Some(size),
            Some(d) if d != size => self.mixed = self.mixed.or(Some((d, size))),
            _ => {}
        }
    }

    fn coefficient(self, stage: &str) -> Result<Coefficient, String> {
        if let Some((a, b)) = self.mixed {
            return Err(format!(
                "{stage}: the training data should all have the same dimensions: {a} and {b}"
            ));
        }
        match self.dim {
            Some(dim) => Ok(Coefficient {
                values: vec![0.0; dim],
            }),
            None => Err(format!("{stage}: the training data is empty")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::distance::dot;

    #[test]
    fn regularization_follows_flink() {
        let mut w = vec![1.0, -2.0, 0.0];
        regularize(&mut w, 0.1, 0.0, 0.5);
        assert_eq!(w, vec![0.95, -1.9, 0.0]);
        let mut w = vec![1.0, -2.0, 0.0];
        regularize(&mut w, 0.1, 1.0, 0.5);
        assert_eq!(w, vec![0.95, -1.95, 0.0]);
        let mut w = vec![1.0, -2.0, 0.0];
        regularize(&mut w, 0.1, 0.5, 0.5);
        assert!((w[0] - (1.0 - 0.5 * (0.05 + 0.05))).abs() < 1e-15);
        assert!((w[1] - (-2.0 - 0.5 * (-0.05 - 0.1))).abs() < 1e-15);
    }

    /// Row by row, one `lane_dot` and one pass over the gradient per row.
    fn gradients_row_by_row(loss: Loss, block: &LabeledBlock, w: &[f64]) -> GradientSums {
        let mut sums = GradientSums {
            gradient: vec![0.0; w.len()],
            weight: 0.0,
            loss: 0.0,
        };
        for (row, x) in block.features.values().chunks_exact(block.dim).enumerate() {
            let weight = block.weights[row];
            let (l, multiplier) = loss.loss_and_multiplier(lane_dot(x, w), block.labels[row], true);
            sums.loss += weight * l;
            sums.weight += weight;
            let m = weight * multiplier;
            if m != 0.0 {
                sums.gradient
                    .iter_mut()
                    .zip(x)
                    .for_each(|(g, x)| *g += m * x);
            }
        }
        sums
    }

    #[test]
    fn grouped_rows_sum_the_same_bits_as_row_by_row() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for (dim, rows) in [(7, 45), (1, 20), (13, 8), (3, 5), (100, 37), (16, 9)] {
            let block = LabeledBlock {
                dim,
                features: SharedValues::Owned((0..dim * rows).map(|_| next()).collect()),
                labels: (0..rows).map(|_| f64::from(next() > 0.0)).collect(),
                weights: (0..rows).map(|_| next() + 1.5).collect(),
            };
            let w: Vec<f64> = (0..dim).map(|_| next()).collect();
            for loss in [Loss::BinaryLogistic, Loss::Hinge, Loss::LeastSquare] {
                let sgd = Sgd {
                    columns: LabeledColumns {
                        stage: "test",
                        features: 0,
                        label: 1,
                        weight: None,
                        binary_labels: None,
                    },
                    params: SgdParams {
                        max_iter: 1,
                        learning_rate: 0.1,
                        global_batch_size: rows,
                        tol: 1e-9,
                        reg: 0.0,
                        elastic_net: 0.0,
                    },
                    loss,
                    offset: 0,
                };
                let mut sums = GradientSums {
                    gradient: vec![0.0; dim],
                    weight: 0.0,
                    loss: 0.0,
                };
                sgd.add_gradients(&block, 0..rows, &w, &mut sums);
                // The kernel without AVX2 gives the same bits as the one the CPU ran.
                let mut plain = GradientSums {
                    gradient: vec![0.0; dim],
                    weight: 0.0,
                    loss: 0.0,
                };
                add_gradients_kernel(loss, true, &block, 0..rows, &w, &mut plain);
                assert_eq!(sums.loss.to_bits(), plain.loss.to_bits());
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&sums.gradient), bits(&plain.gradient));
                // Lanes only reorder the additions of a dot.
                for x in block.features.values().chunks_exact(dim) {
                    assert!((lane_dot(x, &w) - dot(x, &w)).abs() < 1e-12);
                }
                let expected = gradients_row_by_row(loss, &block, &w);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&sums.gradient),
                    bits(&expected.gradient),
                    "{loss:?} {dim}"
                );
                assert_eq!(sums.loss.to_bits(), expected.loss.to_bits());
                assert_eq!(sums.weight.to_bits(), expected.weight.to_bits());
            }
        }
    }

    /// The logistic multiplier is Flink's to rounding, also where `exp` overflows; the
    /// loss stand-in without `exact` is 0 exactly when the loss is.
    #[test]
    fn the_logistic_loss_with_one_exp() {
        for dot in [-800.0f64, -40.0, -3.5, -0.1, 0.0, 0.7, 12.0, 750.0, 1e300] {
            for label in [0.0, 1.0] {
                let y = 2.0 * label - 1.0;
                let flink = -y / ((dot * y).exp() + 1.0);
                let (loss, m) = Loss::BinaryLogistic.loss_and_multiplier(dot, label, true);
                assert!(
                    (m - flink).abs() <= 1e-15 * flink.abs().max(1e-300),
                    "{dot} {label}"
                );
                assert_eq!(loss, (-dot * y).exp().ln_1p());
                let (stand_in, m2) = Loss::BinaryLogistic.loss_and_multiplier(dot, label, false);
                assert_eq!(m2.to_bits(), m.to_bits());
                assert_eq!(stand_in == 0.0, loss == 0.0, "{dot} {label}");
            }
        }
    }

    #[test]
    fn losses_match_flinks_formulas() {
        let (l, m) = Loss::BinaryLogistic.loss_and_multiplier(0.5, 1.0, true);
        assert!((l - (1.0 + (-0.5f64).exp()).ln()).abs() < 1e-15);
        assert!((m - (-1.0 / (0.5f64.exp() + 1.0))).abs() < 1e-15);
        assert_eq!(Loss::Hinge.loss_and_multiplier(0.5, 0.0, true), (1.5, 1.0));
        assert_eq!(Loss::Hinge.loss_and_multiplier(2.0, 1.0, true), (0.0, 0.0));
        assert_eq!(
            Loss::LeastSquare.loss_and_multiplier(3.0, 1.0, true),
            (2.0, 2.0)
        );
    }
}
