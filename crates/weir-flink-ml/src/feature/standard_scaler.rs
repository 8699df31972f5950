//! `StandardScaler`: scales vectors by the training data's standard deviation (unbiased, as
//! Flink ML computes it) and optionally centres them on its mean.

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{
    fit_aggregate, map_with_model, one_input, one_input_with_model, record_batch, single_record,
};
use crate::common::vector_columns::{vector_column, VectorColumnBuilder};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `withMean`: whether to centre the data on the mean before scaling.
pub const WITH_MEAN: Param<bool> = Param::new(
    "withMean",
    "Whether centers the data with mean before scaling.",
    Some("false"),
    ParamType::Boolean,
    Validator::Always,
);
/// `withStd`: whether to scale the data to unit standard deviation.
pub const WITH_STD: Param<bool> = Param::new(
    "withStd",
    "Whether scales the data with standard deviation.",
    Some("true"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// Fits a [`StandardScalerModel`]: the mean and the unbiased standard deviation of every
    /// element of `inputCol`.
    StandardScaler,
    "org.apache.flink.ml.feature.standardscaler.StandardScaler",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &WITH_MEAN.spec, &WITH_STD.spec]
);

model!(
    /// Scales `inputCol` into `outputCol` with the fitted mean and standard deviation.
    StandardScalerModel,
    "org.apache.flink.ml.feature.standardscaler.StandardScalerModel",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &WITH_MEAN.spec, &WITH_STD.spec]
);

impl crate::param::HasInputCol for StandardScaler {}
impl crate::param::HasOutputCol for StandardScaler {}
impl crate::param::HasInputCol for StandardScalerModel {}
impl crate::param::HasOutputCol for StandardScalerModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(StandardScaler, StandardScalerModel);

/// The model data: one row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StandardScalerModelData {
    /// The mean of every element.
    pub mean: Vec<f64>,
    /// The unbiased standard deviation of every element.
    pub std: Vec<f64>,
}

impl StandardScalerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([
            ("mean", DataType::DenseVector),
            ("std", DataType::DenseVector),
        ])
    }
}

/// Count, sum and sum of squares per element.
type Moments = (u64, Vec<f64>, Vec<f64>);

fn fold_moments(acc: &mut Moments, column: usize, batch: &RowBatch) {
    let col = batch.column(column);
    if let Column::DenseVector { dim, values } = col {
        // Dense rows: element-wise sums over flat rows, which the compiler vectorises (the
        // same additions in the same order as the general path below).
        let dim = *dim;
        if batch.rows() == 0 || dim == 0 {
            acc.0 += batch.rows() as u64;
            return;
        }
        if acc.1.len() < dim {
            acc.1.resize(dim, 0.0);
            acc.2.resize(dim, 0.0);
        }
        let (sum, sumsq) = (&mut acc.1[..dim], &mut acc.2[..dim]);
        for row in values.chunks_exact(dim) {
            for ((s, q), x) in sum.iter_mut().zip(sumsq.iter_mut()).zip(row) {
                *s += x;
                *q += x * x;
            }
        }
        acc.0 += batch.rows() as u64;
        return;
    }
    for i in 0..batch.rows() {
        let v = col.vector(i).expect("a vector column");
        if acc.1.len() < v.size() {
            acc.1.resize(v.size(), 0.0);
            acc.2.resize(v.size(), 0.0);
        }
        v.for_each(|j, x| {
            acc.1[j] += x;
            acc.2[j] += x * x;
        });
        acc.0 += 1;
    }
}

fn merge_moments(acc: &mut Moments, other: Moments) {
    if acc.1.len() < other.1.len() {
        acc.1.resize(other.1.len(), 0.0);
        acc.2.resize(other.1.len(), 0.0);
    }
    for (j, (s, q)) in other.1.into_iter().zip(other.2).enumerate() {
        acc.1[j] += s;
        acc.2[j] += q;
    }
    acc.0 += other.0;
}

fn finish_moments((n, sum, sumsq): Moments) -> Result<StandardScalerModelData, String> {
    if n == 0 {
        return Err("StandardScaler: the training data is empty".into());
    }
    let n_f = n as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n_f).collect();
    let std = sum
        .iter()
        .zip(&sumsq)
        .map(|(s, q)| {
            if n == 1 {
                0.0
            } else {
                let variance = (q - s * s / n_f) / (n_f - 1.0);
                variance.max(0.0).sqrt()
            }
        })
        .collect();
    Ok(StandardScalerModelData { mean, std })
}

impl Stage for StandardScaler {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "StandardScaler",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = StandardScalerModelData::schema();
        let data_schema = schema.clone();
        let data = fit_aggregate(
            job,
            self,
            input,
            schema,
            || (0u64, Vec::new(), Vec::new()),
            move |acc, batch| fold_moments(acc, column, &batch),
            merge_moments,
            move |moments| record_batch(&data_schema, &finish_moments(moments)?),
        );
        Ok(Fitted {
            model: Box::new(StandardScalerModel::with_params(&self.params)),
            model_data: vec![data],
        })
    }
}

impl Stage for StandardScalerModel {
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
            "StandardScalerModel",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let (with_mean, with_std) = (self.get(&WITH_MEAN)?, self.get(&WITH_STD)?);
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
                let data: StandardScalerModelData =
                    single_record("StandardScalerModel", schema, &batches)?;
                Ok(Scaling::new(&data, with_mean, with_std))
            },
            move |scaling, batch| scaling.apply(column, batch),
        );
        Ok(vec![out])
    }
}

/// `(x - shift) * factor` per element.
struct Scaling {
    shift: Vec<f64>,
    factor: Vec<f64>,
}

impl Scaling {
    fn new(data: &StandardScalerModelData, with_mean: bool, with_std: bool) -> Scaling {
        let dim = data.mean.len();
        Scaling {
            shift: if with_mean {
                data.mean.clone()
            } else {
                vec![0.0; dim]
            },
            factor: data
                .std
                .iter()
                .map(|s| {
                    if !with_std {
                        1.0
                    } else if *s == 0.0 {
                        0.0
                    } else {
                        1.0 / s
                    }
                })
                .collect(),
        }
    }

    fn apply(&self, column: usize, batch: RowBatch) -> Result<RowBatch, String> {
        let dim = self.factor.len();
        if let Column::DenseVector { dim: d, values } = batch.column(column) {
            if *d == dim && dim > 0 {
                // Dense rows of the model's size: one pass, written straight into the output
                // column (no zeroing first).
                let mut out = Vec::with_capacity(values.len());
                for row in values.chunks_exact(dim) {
                    out.extend(
                        row.iter()
                            .zip(&self.shift)
                            .zip(&self.factor)
                            .map(|((x, shift), factor)| (x - shift) * factor),
                    );
                }
                return Ok(batch.with_column(Column::DenseVector { dim, values: out }));
            }
        }
        let mut out = VectorColumnBuilder::dense(dim, batch.rows());
        vector_column(&batch, column, |row, v| {
            if v.size() != dim {
                return Err(format!(
                    "StandardScalerModel: row {row} has a vector of size {}, the model {dim}",
                    v.size()
                ));
            }
            let dense = out.next_dense();
            v.for_each(|j, x| dense[j] = x);
            for ((x, shift), factor) in dense.iter_mut().zip(&self.shift).zip(&self.factor) {
                *x = (*x - shift) * factor;
            }
            Ok(())
        })?;
        Ok(batch.with_column(out.finish()))
    }
}
