//! `OnlineLogisticRegression` (Flink ML's
//! `org.apache.flink.ml.classification.logisticregression.OnlineLogisticRegression`): binary
//! logistic regression trained on an unbounded stream by FTRL-Proximal, one global
//! mini-batch of `globalBatchSize` rows at a time ([`weir_core::DataStream::iterate_online`]),
//! from initial model data. Its model data is the stream of every version (Flink's
//! `LogisticRegressionModelData`: `coefficient`, `modelVersion`), the initial one first;
//! `OnlineLogisticRegressionModel` scores each batch of rows with the newest version it has
//! and writes the version it used into `modelVersionCol`.
//!
//! The update is Flink's `FtrlIterationBody`: every instance sums `(p - label) * x` over its
//! share of the batch and, per feature, the rows' weight (1 for a dense vector, the row's
//! `weightCol` value for the stored elements of a sparse one); one reducer divides the
//! gradient by that weight per feature and takes the FTRL-Proximal step with `alpha`,
//! `beta`, L1 = `elasticNet * reg` and L2 = `(1 - elasticNet) * reg`. The FTRL
//! accumulators `z` and `n` travel with the model between rounds.

use std::collections::VecDeque;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use weir_core::{op, Job, OnlineBody, Round};

use crate::api::{Fitted, Stage};
use crate::common::distance::dot;
use crate::common::linear_model::{score_batch, LinearModelData, LinearOutput};
use crate::common::newest_model::score_with_newest;
use crate::common::stage_macros::{model, model_data_methods, stage_basics};
use crate::common::table_ops::{one_input, one_input_with_model};
use crate::common::vector_columns::dense_rows;
use crate::error::MlError;
use crate::param::shared::{
    BATCH_STRATEGY, ELASTIC_NET, FEATURES_COL, GLOBAL_BATCH_SIZE, LABEL_COL, PREDICTION_COL,
    RAW_PREDICTION_COL, REG, WEIGHT_COL,
};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `alpha`: FTRL's learning rate.
pub const ALPHA: Param<f64> = Param::new(
    "alpha",
    "The alpha parameter of ftrl.",
    Some("0.1"),
    ParamType::Double,
    Validator::Gt(0.0),
);

/// `beta`: FTRL's smoothing of the per-feature learning rates.
pub const BETA: Param<f64> = Param::new(
    "beta",
    "The beta parameter of ftrl.",
    Some("0.1"),
    ParamType::Double,
    Validator::Gt(0.0),
);

/// `modelVersionCol` of the online logistic regression (Flink gives it its own default,
/// `modelVersion`, unlike the shared param's `version`).
pub const MODEL_VERSION_COL: Param<String> = Param::new(
    "modelVersionCol",
    "Model version column name.",
    Some("\"modelVersion\""),
    ParamType::String,
    Validator::NotNull,
);

model!(
    /// Trains an [`OnlineLogisticRegressionModel`] on an unbounded stream of `featuresCol`
    /// vectors with 0/1 `labelCol` labels (optionally weighted by `weightCol`), from initial
    /// model data (a `LogisticRegressionModelData` row) set with [`Stage::set_model_data`]
    /// (Flink's `setInitialModelData`), which `save` stores.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{ModelCollector, Stage, TableData};
    /// use weir_flink_ml::classification::{LogisticRegressionModelData, OnlineLogisticRegression};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, Value};
    /// let mut online = OnlineLogisticRegression::new();
    /// online.param_map_mut().set_json("globalBatchSize", serde_json::json!(4)).unwrap();
    /// let init = LogisticRegressionModelData { coefficient: vec![0.0, 0.0], model_version: Some(0) };
    /// let schema = LogisticRegressionModelData::schema(true);
    /// online.set_model_data(vec![TableData { schema, batches: vec![init.to_batch()] }]).unwrap();
    /// let models = ModelCollector::new();
    /// let sink = models.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Double)]);
    ///     let rows: Vec<_> = [([1.0, 0.0], 1.0), ([0.0, 1.0], 0.0), ([2.0, 0.0], 1.0), ([0.0, 2.0], 0.0)]
    ///         .iter()
    ///         .map(|(x, y)| vec![Value::DenseVector(x.to_vec()), Value::Double(*y)])
    ///         .collect();
    ///     let points = Table::from_rows(job, "points", schema, rows)?;
    ///     online.fit(job, vec![points])?.collect(job, &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let model = models.model().unwrap();
    /// let data = &model.model_data().unwrap()[0];
    /// // Versions 0 (the initial model) and 1 (after the batch of 4 rows).
    /// assert_eq!(data.batches.len(), 2);
    /// let v1 = LogisticRegressionModelData::from_batches("test", &data.schema, &data.batches[1..]).unwrap();
    /// assert_eq!(v1.model_version, Some(1));
    /// assert!(v1.coefficient[0] > 0.0 && v1.coefficient[1] < 0.0);
    /// ```
    OnlineLogisticRegression,
    "org.apache.flink.ml.classification.logisticregression.OnlineLogisticRegression",
    [
        &FEATURES_COL.spec,
        &LABEL_COL.spec,
        &WEIGHT_COL.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec,
        &MODEL_VERSION_COL.spec,
        &BATCH_STRATEGY.spec,
        &GLOBAL_BATCH_SIZE.spec,
        &REG.spec,
        &ELASTIC_NET.spec,
        &ALPHA.spec,
        &BETA.spec
    ]
);

model!(
    /// Scores every row of `featuresCol` with the newest model version that has arrived:
    /// `predictionCol` (1 if the dot with the coefficient is at least 0), `rawPredictionCol`
    /// (`[1 - p, p]`) and `modelVersionCol` (the version used). Rows wait for the first
    /// version.
    OnlineLogisticRegressionModel,
    "org.apache.flink.ml.classification.logisticregression.OnlineLogisticRegressionModel",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &RAW_PREDICTION_COL.spec,
        &MODEL_VERSION_COL.spec
    ]
);

impl crate::param::HasFeaturesCol for OnlineLogisticRegression {}
impl crate::param::HasLabelCol for OnlineLogisticRegression {}
impl crate::param::HasWeightCol for OnlineLogisticRegression {}
impl crate::param::HasPredictionCol for OnlineLogisticRegression {}
impl crate::param::HasRawPredictionCol for OnlineLogisticRegression {}
impl crate::param::HasGlobalBatchSize for OnlineLogisticRegression {}
impl crate::param::HasReg for OnlineLogisticRegression {}
impl crate::param::HasElasticNet for OnlineLogisticRegression {}
impl crate::param::HasFeaturesCol for OnlineLogisticRegressionModel {}
impl crate::param::HasPredictionCol for OnlineLogisticRegressionModel {}
impl crate::param::HasRawPredictionCol for OnlineLogisticRegressionModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = crate::api::stage_classes!(
    OnlineLogisticRegression,
    OnlineLogisticRegressionModel
);

const STAGE: &str = "OnlineLogisticRegression";

/// A model version between rounds: the coefficient and FTRL's accumulators.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FtrlModel {
    coefficient: Vec<f64>,
    /// FTRL's `z` per feature.
    z: Vec<f64>,
    /// FTRL's `n` (the sum of squared gradients) per feature.
    n: Vec<f64>,
    version: i64,
}

impl FtrlModel {
    fn data(&self) -> LinearModelData {
        LinearModelData {
            coefficient: self.coefficient.clone(),
            model_version: Some(self.version),
        }
    }
}

/// A round's sums over the rows of a batch: `(p - label) * x` and the rows' weight per
/// feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GradientSums {
    gradient: Vec<f64>,
    weight: Vec<f64>,
}

/// The columns of the training rows.
#[derive(Clone, Copy, Debug)]
struct TrainColumns {
    features: usize,
    label: usize,
    weight: Option<usize>,
}

/// FTRL's hyper-parameters.
#[derive(Clone, Copy, Debug)]
struct Ftrl {
    alpha: f64,
    beta: f64,
    l1: f64,
    l2: f64,
}

impl Ftrl {
    /// Flink's `UpdateModel`: one FTRL-Proximal step of `model` with the batch's `sums`.
    fn step(&self, mut model: FtrlModel, mut sums: GradientSums) -> FtrlModel {
        for (g, w) in sums.gradient.iter_mut().zip(&sums.weight) {
            if *w != 0.0 {
                *g /= w;
            }
        }
        let (z, n, coefficient) = (&mut model.z, &mut model.n, &mut model.coefficient);
        for (i, g) in sums.gradient.iter().enumerate() {
            let sigma = ((n[i] + g * g).sqrt() - n[i].sqrt()) / self.alpha;
            z[i] += g - sigma * coefficient[i];
            n[i] += g * g;
            coefficient[i] = if z[i].abs() <= self.l1 {
                0.0
            } else {
                let sign = if z[i] < 0.0 { -1.0 } else { 1.0 };
                (sign * self.l1 - z[i]) / ((self.beta + n[i].sqrt()) / self.alpha + self.l2)
            };
        }
        model.version += 1;
        model
    }
}

/// Rows buffered by an instance: whole input batches, the first partly used.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Pending {
    batches: VecDeque<RowBatch>,
    /// Rows of the first batch already used.
    used: usize,
    rows: usize,
}

impl Pending {
    fn push(&mut self, batch: RowBatch) {
        if batch.rows() > 0 {
            self.rows += batch.rows();
            self.batches.push_back(batch);
        }
    }

    /// Calls `f` on the batches and row ranges of the next `rows` rows, and drops them.
    fn take(
        &mut self,
        mut rows: usize,
        mut f: impl FnMut(&RowBatch, Range<usize>) -> Result<(), String>,
    ) -> Result<(), String> {
        while rows > 0 {
            let Some(front) = self.batches.front() else {
                break;
            };
            let n = rows.min(front.rows() - self.used);
            f(front, self.used..self.used + n)?;
            self.used += n;
            self.rows -= n;
            rows -= n;
            if self.used == front.rows() {
                self.batches.pop_front();
                self.used = 0;
            }
        }
        Ok(())
    }
}

/// Online FTRL as an online iteration body.
#[derive(Clone)]
struct FtrlBody {
    columns: TrainColumns,
    dim: usize,
    global_batch: usize,
    ftrl: Ftrl,
    pending: Pending,
}

impl FtrlBody {
    /// Checks the rows of `batch` before they are buffered: vectors of the model's size,
    /// 0/1 labels, finite weights; an error names the first bad row.
    fn check(&self, batch: &RowBatch) -> Result<(), String> {
        let labels = numbers(batch, self.columns.label, "label")?;
        for (row, &y) in labels.iter().enumerate() {
            if y != 0.0 && y != 1.0 {
                return Err(format!(
                    "{STAGE}: row {row} of a batch has label {y}; labels must be 0 or 1 \
                     (binomial logistic regression)"
                ));
            }
        }
        if let Some(column) = self.columns.weight {
            for (row, w) in numbers(batch, column, "weight")?.iter().enumerate() {
                if !w.is_finite() {
                    return Err(format!("{STAGE}: row {row} of a batch has weight {w}"));
                }
            }
        }
        match batch.column(self.columns.features) {
            Column::SparseVector(c) => match c.iter().position(|v| v.size != self.dim) {
                Some(row) => Err(format!(
                    "{STAGE}: row {row} of a batch has a vector of {} elements, the model {}",
                    c[row].size, self.dim
                )),
                None => Ok(()),
            },
            _ => dense_rows(STAGE, batch, self.columns.features, self.dim, |_, _| Ok(())),
        }
    }

    /// Adds the rows `range` of `batch` to `sums` under `coefficient`.
    fn add_rows(
        &self,
        batch: &RowBatch,
        range: Range<usize>,
        coefficient: &[f64],
        sums: &mut GradientSums,
    ) -> Result<(), String> {
        let labels = &numbers(batch, self.columns.label, "label")?[range.clone()];
        let weights = match self.columns.weight {
            Some(column) => Some(numbers(batch, column, "weight")?),
            None => None,
        };
        match batch.column(self.columns.features) {
            Column::SparseVector(c) => {
                for (row, &label) in range.clone().zip(labels) {
                    let x = &c[row];
                    let d: f64 = x
                        .indices
                        .iter()
                        .zip(&x.values)
                        .map(|(&i, v)| coefficient[i] * v)
                        .sum();
                    let residual = sigmoid(d) - label;
                    let weight = weights.as_ref().map_or(1.0, |w| w[row]);
                    for (&i, v) in x.indices.iter().zip(&x.values) {
                        sums.gradient[i] += residual * v;
                        sums.weight[i] += weight;
                    }
                }
            }
            Column::DenseVector { values, .. } => {
                let dim = self.dim;
                for (row, &label) in range.clone().zip(labels) {
                    let x = &values[row * dim..(row + 1) * dim];
                    let residual = sigmoid(dot(coefficient, x)) - label;
                    for (g, v) in sums.gradient.iter_mut().zip(x) {
                        *g += residual * v;
                    }
                    sums.weight.iter_mut().for_each(|w| *w += 1.0);
                }
            }
            other => {
                return Err(format!(
                    "{STAGE}: the features column is a {} column",
                    other.data_type()
                ))
            }
        }
        Ok(())
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The values of a `Double` or `Long` column as floats.
fn numbers<'a>(
    batch: &'a RowBatch,
    column: usize,
    what: &str,
) -> Result<std::borrow::Cow<'a, [f64]>, String> {
    match batch.column(column) {
        Column::Double(c) => Ok(std::borrow::Cow::Borrowed(c)),
        Column::Long(c) => Ok(std::borrow::Cow::Owned(
            c.iter().map(|&v| v as f64).collect(),
        )),
        other => Err(format!(
            "{STAGE}: the {what} column is a {} column",
            other.data_type()
        )),
    }
}

impl OnlineBody for FtrlBody {
    type Record = RowBatch;
    type Model = FtrlModel;
    type Partial = GradientSums;
    type Buffer = Pending;

    fn push(&mut self, batch: RowBatch) -> Result<(), String> {
        self.check(&batch)?;
        self.pending.push(batch);
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.pending.rows
    }

    fn batch_rows(&self, round: Round) -> usize {
        let n = round.instances.max(1);
        self.global_batch / n + usize::from(self.global_batch % n > round.instance)
    }

    fn partial(
        &mut self,
        _round: Round,
        model: &FtrlModel,
        rows: usize,
    ) -> Result<GradientSums, String> {
        let mut sums = GradientSums {
            gradient: vec![0.0; self.dim],
            weight: vec![0.0; self.dim],
        };
        let mut pending = std::mem::take(&mut self.pending);
        let result = pending.take(rows, |batch, range| {
            self.add_rows(batch, range, &model.coefficient, &mut sums)
        });
        self.pending = pending;
        result.map(|()| sums)
    }

    fn merge(&mut self, total: &mut GradientSums, other: GradientSums) {
        total
            .gradient
            .iter_mut()
            .zip(other.gradient)
            .for_each(|(a, b)| *a += b);
        total
            .weight
            .iter_mut()
            .zip(other.weight)
            .for_each(|(a, b)| *a += b);
    }

    fn update(&mut self, model: FtrlModel, total: GradientSums) -> Result<FtrlModel, String> {
        Ok(self.ftrl.step(model, total))
    }

    fn save_buffer(&self) -> Pending {
        self.pending.clone()
    }

    fn restore_buffer(&mut self, pending: Pending) -> Result<(), String> {
        pending.batches.iter().try_for_each(|b| self.check(b))?;
        self.pending = pending;
        Ok(())
    }
}

impl OnlineLogisticRegression {
    /// The initial model from the initial model data.
    fn initial_model(&self) -> Result<FtrlModel, MlError> {
        let initial = self
            .data
            .as_ref()
            .and_then(|d| d.first())
            .ok_or_else(|| self.wrong_kind("Initial Model Data Table should have been set."))?;
        let data = LinearModelData::from_batches(STAGE, &initial.schema, &initial.batches)
            .map_err(|e| self.wrong_kind(&e))?;
        let dim = data.coefficient.len();
        Ok(FtrlModel {
            coefficient: data.coefficient,
            z: vec![0.0; dim],
            n: vec![0.0; dim],
            version: data.model_version.unwrap_or(0),
        })
    }

    fn train_columns(&self, schema: &Schema) -> Result<TrainColumns, MlError> {
        let numeric = [DataType::Double, DataType::Long];
        let weight = match self.param_map().get_opt(&WEIGHT_COL)? {
            Some(column) => Some(schema.typed_index(STAGE, &column, &numeric)?),
            None => None,
        };
        Ok(TrainColumns {
            features: schema.typed_index(
                STAGE,
                &self.get(&FEATURES_COL)?,
                &[DataType::DenseVector, DataType::SparseVector],
            )?,
            label: schema.typed_index(STAGE, &self.get(&LABEL_COL)?, &numeric)?,
            weight,
        })
    }
}

impl Stage for OnlineLogisticRegression {
    stage_basics!(Estimator);

    model_data_methods!();

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let columns = self.train_columns(&input.schema)?;
        let init = self.initial_model()?;
        let (reg, elastic_net) = (self.get(&REG)?, self.get(&ELASTIC_NET)?);
        let body = FtrlBody {
            columns,
            dim: init.coefficient.len(),
            global_batch: self.get(&GLOBAL_BATCH_SIZE)? as usize,
            ftrl: Ftrl {
                alpha: self.get(&ALPHA)?,
                beta: self.get(&BETA)?,
                l1: elastic_net * reg,
                l2: (1.0 - elastic_net) * reg,
            },
            pending: Pending::default(),
        };
        let name = job.unique_name(&format!("{STAGE}.fit"));
        let init = job.from_vec(op(format!("{name}.initial")).parallelism(1), vec![init]);
        let versions = input
            .stream
            .iterate_online(name.clone(), init, body)
            .map(op(format!("{name}.modelData")).parallelism(1), |m| {
                m.data().to_batch()
            });
        Ok(Fitted {
            model: Box::new(OnlineLogisticRegressionModel::with_params(&self.params)),
            model_data: vec![Table::new(LinearModelData::schema(true), versions)],
        })
    }
}

impl Stage for OnlineLogisticRegressionModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let name_of = "OnlineLogisticRegressionModel";
        let column = input.schema.typed_index(
            name_of,
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Double)?
            .with_column(&self.get(&RAW_PREDICTION_COL)?, DataType::DenseVector)?
            .with_column(&self.get(&MODEL_VERSION_COL)?, DataType::Long)?;
        let name = job.unique_name(self.short_name());
        Ok(vec![score_with_newest(
            name,
            input,
            model_data,
            schema,
            |schema, batch| {
                LinearModelData::from_batches(name_of, schema, std::slice::from_ref(&batch))
            },
            move |model, batch| score(name_of, model, column, batch),
        )])
    }
}

/// The batch with the prediction, raw prediction (as LogisticRegressionModel scores them) and
/// model version of every row appended.
fn score(
    stage: &str,
    model: &LinearModelData,
    column: usize,
    batch: RowBatch,
) -> Result<RowBatch, String> {
    let rows = batch.rows();
    let version = model.model_version.unwrap_or(0);
    let scored = score_batch(stage, model, column, LinearOutput::Logistic, true, batch)?;
    Ok(scored.with_column(Column::Long(vec![version; rows])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One FTRL step by hand: `g` averaged by weight, `sigma`, `z`, `n`, and the closed form.
    #[test]
    fn one_ftrl_step_is_flinks_formula() {
        let ftrl = Ftrl {
            alpha: 0.1,
            beta: 0.1,
            l1: 0.1,
            l2: 0.1,
        };
        let model = FtrlModel {
            coefficient: vec![0.5, -0.2],
            z: vec![0.0; 2],
            n: vec![0.0; 2],
            version: 0,
        };
        let sums = GradientSums {
            gradient: vec![0.6, 0.0],
            weight: vec![2.0, 0.0],
        };
        let next = ftrl.step(model, sums);
        let g: f64 = 0.3;
        let sigma = g.abs() / 0.1;
        let z = g - sigma * 0.5;
        let n = g * g;
        let expected = (-0.1 - z) / ((0.1 + n.sqrt()) / 0.1 + 0.1);
        assert!((next.z[0] - z).abs() < 1e-15);
        assert!((next.n[0] - n).abs() < 1e-15);
        assert!((next.coefficient[0] - expected).abs() < 1e-15, "{next:?}");
        // No gradient and |z| <= l1: the coefficient is cleared.
        assert_eq!(next.coefficient[1], 0.0);
        assert_eq!(next.version, 1);
    }

    #[test]
    fn pending_rows_are_taken_across_batches() {
        let batch = |n: usize| RowBatch::new(n, vec![Column::Long((0..n as i64).collect())]);
        let mut pending = Pending::default();
        pending.push(batch(3));
        pending.push(batch(0));
        pending.push(batch(4));
        let mut seen = Vec::new();
        pending
            .take(5, |b, r| {
                seen.push((b.rows(), r));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![(3, 0..3), (4, 0..2)]);
        assert_eq!(pending.rows, 2);
        seen.clear();
        pending
            .take(9, |b, r| {
                seen.push((b.rows(), r));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![(4, 2..4)]);
        assert_eq!(pending.rows, 0);
    }
}
