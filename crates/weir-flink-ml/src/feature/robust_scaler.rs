//! `RobustScaler`: centres vectors on the training data's medians and scales them by their
//! quantile ranges (`upper` quantile minus `lower` quantile), both robust to outliers (Flink
//! ML's `org.apache.flink.ml.feature.robustscaler`).
//!
//! Also home of [`QuantileSummary`], the port of Flink ML's
//! `org.apache.flink.ml.common.util.QuantileSummary` (Greenwald–Khanna, itself a port of
//! Spark's `QuantileSummaries`) that `RobustScaler` and `Imputer` use.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::model_row::{dense_cell, ModelRow};
use crate::common::vector_columns::{dense_rows, first_size};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::common::vector_columns::VectorColumnBuilder;
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL, RELATIVE_ERROR};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{DataType, RowBatch, Schema, Table};

/// `lower`: the lower quantile of the range.
pub const LOWER: Param<f64> = Param::new(
    "lower",
    "Lower quantile to calculate quantile range.",
    Some("0.25"),
    ParamType::Double,
    Validator::InRange {
        lower: 0.0,
        upper: 1.0,
        lower_inclusive: false,
        upper_inclusive: false,
    },
);
/// `upper`: the upper quantile of the range.
pub const UPPER: Param<f64> = Param::new(
    "upper",
    "Upper quantile to calculate quantile range.",
    Some("0.75"),
    ParamType::Double,
    Validator::InRange {
        lower: 0.0,
        upper: 1.0,
        lower_inclusive: false,
        upper_inclusive: false,
    },
);
/// `withCentering`: whether to subtract the median before scaling.
pub const WITH_CENTERING: Param<bool> = Param::new(
    "withCentering",
    "Whether to center the data with median before scaling.",
    Some("false"),
    ParamType::Boolean,
    Validator::Always,
);
/// `withScaling`: whether to scale by the quantile range.
pub const WITH_SCALING: Param<bool> = Param::new(
    "withScaling",
    "Whether to scale the data to quantile range.",
    Some("true"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// Fits a [`RobustScalerModel`]: per element of `inputCol` (dense or sparse vectors, NaN
    /// elements ignored), the median and the range between the `lower` and `upper`
    /// quantiles, from a Greenwald–Khanna summary with `relativeError`.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::{robust_scaler::WITH_CENTERING, RobustScaler};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let train = (0..9).map(|i| vec![Value::DenseVector(vec![i as f64])]).collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), train)?;
    ///     let test = vec![vec![Value::DenseVector(vec![3.0])]];
    ///     let test = Table::from_rows(job, "test", schema, test)?;
    ///     let scaler = RobustScaler::new().set(&WITH_CENTERING, true)?;
    ///     let fitted = scaler.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Median 4, quartiles 2 and 6: (3 - 4) / 4.
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![-0.25]));
    /// ```
    RobustScaler,
    "org.apache.flink.ml.feature.robustscaler.RobustScaler",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &WITH_CENTERING.spec,
        &WITH_SCALING.spec,
        &LOWER.spec,
        &UPPER.spec,
        &RELATIVE_ERROR.spec,
    ]
);

model!(
    /// Scales `inputCol` into `outputCol` (dense vectors): `x - median` if `withCentering`,
    /// then times `1 / range` if `withScaling` (0 where the range is 0).
    RobustScalerModel,
    "org.apache.flink.ml.feature.robustscaler.RobustScalerModel",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &WITH_CENTERING.spec,
        &WITH_SCALING.spec
    ]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(RobustScaler, RobustScalerModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct RobustScalerModelData {
    /// The median of every element.
    pub medians: Vec<f64>,
    /// The `upper` minus the `lower` quantile of every element.
    pub ranges: Vec<f64>,
}

impl RobustScalerModelData {
    /// The model data table's schema (Flink's `medians`, `ranges`).
    pub fn schema() -> Schema {
        Schema::new([
            ("medians", DataType::DenseVector),
            ("ranges", DataType::DenseVector),
        ])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                dense_cell(self.medians.clone()),
                dense_cell(self.ranges.clone()),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let row = ModelRow::single("RobustScalerModel", schema, batches)?;
        Ok(RobustScalerModelData {
            medians: row.vector("medians")?,
            ranges: row.vector("ranges")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// QuantileSummary
// ---------------------------------------------------------------------------------------

/// Flink's `DEFAULT_HEAD_SIZE`: values buffered before they are merged into the summary.
const DEFAULT_HEAD_SIZE: usize = 50_000;
/// Flink's `DEFAULT_COMPRESS_THRESHOLD`: summary size above which an insert compresses.
const DEFAULT_COMPRESS_THRESHOLD: usize = 10_000;

/// One Greenwald–Khanna tuple: a sampled value, `g` (its minimum rank minus the previous
/// tuple's) and `delta` (the span of its rank).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct StatsTuple {
    value: f64,
    g: i64,
    delta: i64,
}

/// Approximate quantiles with a relative rank error (Greenwald–Khanna), exactly as Flink ML's
/// `QuantileSummary` computes them: values go to a head buffer, which is sorted and merged
/// into the sampled tuples every 50 000 values (compressing once there are 10 000 tuples);
/// queries need a compressed summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileSummary {
    relative_error: f64,
    compress_threshold: usize,
    count: i64,
    sampled: Vec<StatsTuple>,
    head_buffer: Vec<f64>,
    compressed: bool,
}

/// Java's `Double.compare` (what sorting a `List<Double>` uses): `-0.0 < 0.0`, NaN last.
pub(crate) fn java_compare(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

impl QuantileSummary {
    /// An empty summary with `relative_error` in `[0, 1]`.
    pub fn new(relative_error: f64) -> QuantileSummary {
        QuantileSummary {
            relative_error,
            compress_threshold: DEFAULT_COMPRESS_THRESHOLD,
            count: 0,
            sampled: Vec::new(),
            head_buffer: Vec::new(),
            compressed: false,
        }
    }

    /// The number of values in the summary (those in the head buffer not counted).
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Whether no value was inserted.
    pub fn is_empty(&self) -> bool {
        self.head_buffer.is_empty() && self.sampled.is_empty()
    }

    /// Inserts a value (Flink's `insert`, keeping the summary it returns).
    pub fn insert(&mut self, item: f64) {
        self.head_buffer.push(item);
        self.compressed = false;
        if self.head_buffer.len() >= DEFAULT_HEAD_SIZE {
            self.insert_head_buffer();
            if self.sampled.len() >= self.compress_threshold {
                self.compress();
            }
        }
    }

    /// Adds values to the head buffer without ever merging it (what Flink's `Imputer` does:
    /// it drops the summaries `insert` returns, so its values all reach the first
    /// `compress`).
    pub fn buffer(&mut self, item: f64) {
        self.head_buffer.push(item);
        self.compressed = false;
    }

    /// Merges the head buffer into the tuples and compresses them (Flink's `compress`).
    pub fn compress(&mut self) {
        if self.compressed {
            return;
        }
        self.insert_head_buffer();
        let threshold = 2.0 * self.relative_error * self.count as f64;
        self.sampled = compress_internal(&self.sampled, threshold);
        self.compressed = true;
    }

    fn insert_head_buffer(&mut self) {
        if self.head_buffer.is_empty() {
            return;
        }
        let mut sorted = std::mem::take(&mut self.head_buffer);
        sorted.sort_by(|a, b| java_compare(*a, *b));
        let delta_inside = (2.0 * self.relative_error * self.count as f64).floor() as i64;
        let mut new_samples = Vec::with_capacity(self.sampled.len() + sorted.len());
        let mut cursor = 0;
        let last = sorted.len() - 1;
        for (i, &value) in sorted.iter().enumerate() {
            while cursor < self.sampled.len() && self.sampled[cursor].value <= value {
                new_samples.push(self.sampled[cursor]);
                cursor += 1;
            }
            let delta = if new_samples.is_empty() || (cursor == self.sampled.len() && i == last) {
                0
            } else {
                delta_inside
            };
            new_samples.push(StatsTuple { value, g: 1, delta });
            self.count += 1;
        }
        new_samples.extend_from_slice(&self.sampled[cursor..]);
        self.sampled = new_samples;
        self.compressed = false;
    }

    /// Merges two compressed summaries (Flink's `merge`); uncompressed ones are compressed
    /// first.
    pub fn merge(&mut self, mut other: QuantileSummary) {
        self.compress();
        other.compress();
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other;
            return;
        }
        let merged_relative_error = self.relative_error.max(other.relative_error);
        let merged_count = self.count + other.count;
        let additional_self_delta =
            (2.0 * other.relative_error * other.count as f64).floor() as i64;
        let additional_other_delta = (2.0 * self.relative_error * self.count as f64).floor() as i64;
        let (a, b) = (&self.sampled, &other.sampled);
        let mut merged = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let mut next;
            if a[i].value < b[j].value {
                next = a[i];
                if j > 0 {
                    next.delta += additional_self_delta;
                }
                i += 1;
            } else {
                next = b[j];
                if i > 0 {
                    next.delta += additional_other_delta;
                }
                j += 1;
            }
            merged.push(next);
        }
        merged.extend_from_slice(&a[i..]);
        merged.extend_from_slice(&b[j..]);
        self.sampled =
            compress_internal(&merged, 2.0 * merged_relative_error * merged_count as f64);
        self.relative_error = merged_relative_error;
        self.count = merged_count;
        self.compressed = true;
    }

    /// The approximate quantiles `percentiles` (each in `[0, 1]`), in their order (Flink's
    /// `query`, including its quirk that a repeated percentile is answered only at its last
    /// position, the others staying 0).
    pub fn query(&self, percentiles: &[f64]) -> Result<Vec<f64>, String> {
        if percentiles.iter().any(|x| !(*x >= 0.0 && *x <= 1.0)) {
            return Err("percentile should be in the range [0.0, 1.0].".into());
        }
        if !self.head_buffer.is_empty() {
            return Err("Cannot operate on an uncompressed summary, call compress() first.".into());
        }
        if self.sampled.is_empty() {
            return Err("Cannot query percentiles without any records inserted.".into());
        }
        let mut target_error = i64::MIN as f64;
        for t in &self.sampled {
            target_error = target_error.max((t.delta + t.g) as f64);
        }
        target_error /= 2.0;
        let position = |p: f64| {
            percentiles
                .iter()
                .rposition(|q| q.to_bits() == p.to_bits())
                .expect("a percentile asked for")
        };
        let mut sorted = percentiles.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mut result = vec![0.0; percentiles.len()];
        let (mut index, mut min_rank) = (0usize, self.sampled[0].g);
        let last = self.sampled.len() - 1;
        for p in sorted {
            let at = position(p);
            if p <= self.relative_error {
                result[at] = self.sampled[0].value;
            } else if p >= 1.0 - self.relative_error {
                result[at] = self.sampled[last].value;
            } else {
                let (i, rank, value) =
                    self.find_approximate_quantile(index, min_rank, target_error, p);
                index = i;
                min_rank = rank;
                result[at] = value;
            }
        }
        Ok(result)
    }

    fn find_approximate_quantile(
        &self,
        index: usize,
        min_rank_at_index: i64,
        target_error: f64,
        percentile: f64,
    ) -> (usize, i64, f64) {
        let mut current = self.sampled[index];
        let rank = (percentile * self.count as f64).ceil() as i64;
        let mut min_rank = min_rank_at_index;
        let mut i = index;
        while i + 1 < self.sampled.len() {
            let max_rank = min_rank + current.delta;
            if (max_rank as f64) - target_error < rank as f64
                && rank as f64 <= min_rank as f64 + target_error
            {
                return (i, min_rank, current.value);
            }
            i += 1;
            current = self.sampled[i];
            min_rank += current.g;
        }
        let last = self.sampled.len() - 1;
        (last, 0, self.sampled[last].value)
    }
}

/// GK's COMPRESS over `samples` (Flink's `compressInternal`).
fn compress_internal(samples: &[StatsTuple], merge_threshold: f64) -> Vec<StatsTuple> {
    if samples.is_empty() {
        return Vec::new();
    }
    let mut reversed = Vec::new();
    let mut head = samples[samples.len() - 1];
    for i in (1..samples.len().saturating_sub(1)).rev() {
        let tuple = samples[i];
        if ((tuple.g + head.g + head.delta) as f64) < merge_threshold {
            head.g += tuple.g;
        } else {
            reversed.push(head);
            head = tuple;
        }
    }
    reversed.push(head);
    let first = samples[0];
    if first.value <= head.value && samples.len() > 1 {
        reversed.push(first);
    }
    reversed.reverse();
    reversed
}

// ---------------------------------------------------------------------------------------
// The stages
// ---------------------------------------------------------------------------------------

/// One summary per element, and the first error.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Summaries {
    summaries: Vec<QuantileSummary>,
    error: Option<String>,
}

impl Summaries {
    fn fold(&mut self, column: usize, batch: &RowBatch, relative_error: f64) {
        if self.error.is_some() {
            return;
        }
        let Some(size) = first_size(batch, column) else {
            return;
        };
        if self.summaries.is_empty() {
            self.summaries = vec![QuantileSummary::new(relative_error); size];
        }
        let dim = self.summaries.len();
        let summaries = &mut self.summaries;
        let result = dense_rows("RobustScaler", batch, column, dim, |_, x| {
            for (s, &v) in summaries.iter_mut().zip(x) {
                if !v.is_nan() {
                    s.insert(v);
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn merge(&mut self, other: Summaries) {
        if self.error.is_some() {
            return;
        }
        if other.error.is_some() || self.summaries.is_empty() {
            *self = other;
            return;
        }
        if other.summaries.is_empty() {
            return;
        }
        if other.summaries.len() != self.summaries.len() {
            self.error = Some(format!(
                "RobustScaler: number of features must be {} but got {}",
                self.summaries.len(),
                other.summaries.len()
            ));
            return;
        }
        for (a, b) in self.summaries.iter_mut().zip(other.summaries) {
            a.merge(b);
        }
    }

    fn finish(self, lower: f64, upper: f64) -> Result<RobustScalerModelData, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.summaries.is_empty() {
            return Err("RobustScaler: the training set is empty".into());
        }
        let mut medians = Vec::with_capacity(self.summaries.len());
        let mut ranges = Vec::with_capacity(self.summaries.len());
        for (i, mut summary) in self.summaries.into_iter().enumerate() {
            summary.compress();
            let q = summary
                .query(&[0.5, lower, upper])
                .map_err(|e| format!("RobustScaler: element {i}: {e}"))?;
            medians.push(q[0]);
            ranges.push(q[2] - q[1]);
        }
        Ok(RobustScalerModelData { medians, ranges })
    }
}

impl Stage for RobustScaler {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "RobustScaler",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let relative_error = self.get(&RELATIVE_ERROR)?;
        let (lower, upper) = (self.get(&LOWER)?, self.get(&UPPER)?);
        let mut model = RobustScalerModel::new();
        model.params.copy_existing_from(&self.params)?;
        let data = fit_aggregate(
            job,
            self,
            input,
            RobustScalerModelData::schema(),
            Summaries::default,
            move |acc, batch| acc.fold(column, &batch, relative_error),
            Summaries::merge,
            move |acc| Ok(acc.finish(lower, upper)?.to_batch()),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for RobustScalerModel {
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
            "RobustScalerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let (with_centering, with_scaling) = (self.get(&WITH_CENTERING)?, self.get(&WITH_SCALING)?);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::DenseVector)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = RobustScalerModelData::from_batches(schema, &batches)?;
                let scales = data
                    .ranges
                    .iter()
                    .map(|r| if *r == 0.0 { 0.0 } else { 1.0 / r })
                    .collect();
                Ok((data.medians, scales))
            },
            move |(medians, scales): &(Vec<f64>, Vec<f64>), batch| {
                let dim = medians.len();
                let mut out = VectorColumnBuilder::dense(dim, batch.rows());
                dense_rows("RobustScalerModel", &batch, column, dim, |_, x| {
                    let y = out.next_dense();
                    y.copy_from_slice(x);
                    if with_centering {
                        for (y, m) in y.iter_mut().zip(medians) {
                            *y += -m;
                        }
                    }
                    if with_scaling {
                        for (y, s) in y.iter_mut().zip(scales) {
                            *y *= s;
                        }
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
    use super::QuantileSummary;

    fn summary(values: impl IntoIterator<Item = f64>, relative_error: f64) -> QuantileSummary {
        let mut s = QuantileSummary::new(relative_error);
        for v in values {
            s.insert(v);
        }
        s.compress();
        s
    }

    #[test]
    fn small_inputs_are_exact_ranks() {
        let s = summary((0..9).rev().map(f64::from), 0.001);
        assert_eq!(s.query(&[0.5, 0.25, 0.75]).unwrap(), vec![4.0, 2.0, 6.0]);
        // p <= relativeError: the minimum; p >= 1 - relativeError: the maximum.
        assert_eq!(s.query(&[0.0, 1.0]).unwrap(), vec![0.0, 8.0]);
        // A percentile asked twice is answered at its last position only (as in Flink).
        assert_eq!(s.query(&[0.5, 0.5]).unwrap(), vec![0.0, 4.0]);
    }

    #[test]
    fn empty_summary_cannot_be_queried() {
        let s = summary([], 0.01);
        assert!(s.query(&[0.5]).unwrap_err().contains("without any records"));
    }

    /// Bit-exact against Flink's Java `QuantileSummary` (run with OpenJDK 17 on the same
    /// data: `s1.compress().merge(s2.compress()).query(...)`, the answers' `doubleToLongBits`
    /// and the merged summary's size).
    #[test]
    fn same_as_flink_java() {
        let cases: [(usize, f64, usize, [u64; 7], usize); 3] = [
            (
                300_000,
                0.001,
                120_000,
                [
                    4664560747241687333,
                    4653852603498776869,
                    4660026832508008155,
                    4667116247874273280,
                    4668294374583435264,
                    4638908669746404206,
                    4669000653731191662,
                ],
                1324,
            ),
            (
                1000,
                0.01,
                0,
                [
                    4664259166909497344,
                    4653054672203190857,
                    4659895205258854400,
                    4667025381091892078,
                    4668301678482105490,
                    4623186281761566135,
                    4669069530281017344,
                ],
                54,
            ),
            (
                123_457,
                0.0001,
                123_457,
                [
                    4664565930653646848,
                    4653838152774526098,
                    4659995732036251063,
                    4667110436169955035,
                    4668292568242903918,
                    4639049407234759534,
                    4669001674706274597,
                ],
                7678,
            ),
        ];
        for (n, eps, split, expected, size) in cases {
            let mut seed: u64 = 12345;
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) % 100_000) as f64 / 7.0
                })
                .collect();
            let mut s = summary(values[..split].iter().copied(), eps);
            s.merge(summary(values[split..].iter().copied(), eps));
            let q = s.query(&[0.5, 0.1, 0.25, 0.75, 0.9, 0.01, 0.99]).unwrap();
            let bits: Vec<u64> = q.iter().map(|x| x.to_bits()).collect();
            assert_eq!(bits, expected, "n {n}");
            assert_eq!(s.sampled.len(), size, "n {n}");
        }
    }

    /// Beyond the head buffer and the compress threshold, answers stay within the error
    /// bound, also after merging summaries.
    #[test]
    fn large_inputs_within_relative_error() {
        let n = 300_000usize;
        // A deterministic permutation of 0..n.
        let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64).collect();
        let eps = 0.001;
        let whole = summary(values.iter().copied(), eps);
        let mut merged = summary(values[..n / 3].iter().copied(), eps);
        merged.merge(summary(values[n / 3..].iter().copied(), eps));
        assert_eq!(merged.count(), n as i64);
        for s in [&whole, &merged] {
            for p in [0.1, 0.25, 0.5, 0.75, 0.9] {
                let q = s.query(&[p]).unwrap()[0];
                let exact = (p * n as f64).ceil() - 1.0;
                assert!(
                    (q - exact).abs() <= 2.0 * eps * n as f64,
                    "p {p}: {q} vs {exact}"
                );
            }
        }
    }
}
