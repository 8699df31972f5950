//! `OnlineKMeans` (Flink ML's `org.apache.flink.ml.clustering.kmeans.OnlineKMeans`): k-means
//! over an unbounded stream in mini-batches of `globalBatchSize` points
//! ([`weir_core::DataStream::iterate_online`]), from initial model data, forgetting old
//! points by `decayFactor`: after a batch, every centroid is the weighted mean of itself
//! (weight `decayFactor * weight`) and its batch points, and its weight grows by their
//! count. Its model data is the stream of every version, the initial one first;
//! `OnlineKMeansModel` scores each batch of rows with the newest version it has.
//!
//! Flink updates per instance and averages the instances' centroids by weight; Weir sums the
//! instances' points first, which is the same update (to rounding).

use serde::{Deserialize, Serialize};
use weir_core::{op, Job, OnlineBody, Round};

use super::kmeans::{Centroids, KMeansModelData, K};
use crate::api::{Fitted, Stage};
use crate::common::distance::{l2_norm, DistanceMeasure};
use crate::common::newest_model::score_with_newest;
use crate::common::stage_macros::{model, model_data_methods, stage_basics};
use crate::common::table_ops::{one_input, one_input_with_model};
use crate::common::vector_columns::{dense_rows, first_size};
use crate::error::MlError;
use crate::param::shared::{
    BATCH_STRATEGY, DECAY_FACTOR, DISTANCE_MEASURE, FEATURES_COL, GLOBAL_BATCH_SIZE, PREDICTION_COL, SEED,
};
use crate::param::WithParams;
use crate::table::{Column, DataType, RowBatch, Table};

model!(
    /// Trains an [`OnlineKMeansModel`] on an unbounded stream of `featuresCol` vectors, from
    /// initial model data (`KMeansModelData` with `k` centroids and their weights) set with
    /// [`Stage::set_model_data`] (Flink's `setInitialModelData`), which `save` stores.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{ModelCollector, Stage, TableData};
    /// use weir_flink_ml::clustering::{KMeansModelData, OnlineKMeans};
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, Value};
    /// let mut online = OnlineKMeans::new();
    /// online.param_map_mut().set_json("globalBatchSize", serde_json::json!(4)).unwrap();
    /// let init = KMeansModelData { centroids: vec![vec![1.0, 1.0], vec![8.0, 8.0]], weights: vec![0.0, 0.0] };
    /// online
    ///     .set_model_data(vec![TableData { schema: KMeansModelData::schema(), batches: vec![init.to_batch()] }])
    ///     .unwrap();
    /// let models = ModelCollector::new();
    /// let sink = models.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector)]);
    ///     let rows: Vec<_> = [[0.0, 0.0], [0.0, 0.2], [9.0, 9.0], [9.2, 9.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let points = Table::from_rows(job, "points", schema, rows)?;
    ///     online.fit(job, vec![points])?.collect(job, &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let model = models.model().unwrap();
    /// let data = &model.model_data().unwrap()[0];
    /// // Versions 0 (the initial model) and 1 (after the batch of 4 points).
    /// let versions: Vec<_> = data.batches.iter().map(|b| KMeansModelData::from_batches(&data.schema, &[b.clone()]).unwrap()).collect();
    /// assert_eq!(versions.len(), 2);
    /// assert_eq!(versions[1].weights, vec![2.0, 2.0]);
    /// assert_eq!(versions[1].centroids[0], vec![0.0, 0.1]);
    /// ```
    OnlineKMeans,
    "org.apache.flink.ml.clustering.kmeans.OnlineKMeans",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &DISTANCE_MEASURE.spec,
        &K.spec,
        &DECAY_FACTOR.spec,
        &GLOBAL_BATCH_SIZE.spec,
        &SEED.spec,
        &BATCH_STRATEGY.spec
    ]
);

model!(
    /// Assigns every point of `featuresCol` its closest centroid (`predictionCol`) in the
    /// newest model version that has arrived; rows wait for the first version.
    OnlineKMeansModel,
    "org.apache.flink.ml.clustering.kmeans.OnlineKMeansModel",
    [
        &FEATURES_COL.spec,
        &PREDICTION_COL.spec,
        &DISTANCE_MEASURE.spec,
        &K.spec
    ]
);

impl crate::param::HasFeaturesCol for OnlineKMeans {}
impl crate::param::HasPredictionCol for OnlineKMeans {}
impl crate::param::HasDecayFactor for OnlineKMeans {}
impl crate::param::HasGlobalBatchSize for OnlineKMeans {}
impl crate::param::HasFeaturesCol for OnlineKMeansModel {}
impl crate::param::HasPredictionCol for OnlineKMeansModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(OnlineKMeans, OnlineKMeansModel);

/// A model version between rounds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Versioned {
    centroids: Centroids,
    weights: Vec<f64>,
}

impl Versioned {
    fn of(data: KMeansModelData) -> Result<Versioned, String> {
        let centroids = Centroids::from_vectors(&data.centroids)?;
        if data.weights.len() != centroids.len() {
            return Err(format!(
                "OnlineKMeans: the model data has {} centroids and {} weights",
                centroids.len(),
                data.weights.len()
            ));
        }
        Ok(Versioned {
            centroids,
            weights: data.weights,
        })
    }

    fn to_data(&self) -> KMeansModelData {
        let dim = self.centroids.dim.max(1);
        KMeansModelData {
            centroids: self.centroids.values.chunks(dim).map(<[f64]>::to_vec).collect(),
            weights: self.weights.clone(),
        }
    }
}

/// A round's sums: per cluster the sum of the batch points closest to it and their count.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BatchSums {
    sums: Vec<f64>,
    counts: Vec<u64>,
}

/// Online k-means as an online iteration body: buffered points, flat.
#[derive(Clone)]
struct OnlineLloyd {
    column: usize,
    measure: DistanceMeasure,
    decay: f64,
    global_batch: usize,
    dim: Option<usize>,
    points: Vec<f64>,
}

impl OnlineBody for OnlineLloyd {
    type Record = RowBatch;
    type Model = Versioned;
    type Partial = BatchSums;
    type Buffer = (Option<usize>, Vec<f64>);

    fn push(&mut self, batch: RowBatch) -> Result<(), String> {
        let Some(size) = first_size(&batch, self.column) else {
            return Ok(());
        };
        let dim = *self.dim.get_or_insert(size);
        let points = &mut self.points;
        dense_rows("OnlineKMeans", &batch, self.column, dim, |_, x| {
            points.extend_from_slice(x);
            Ok(())
        })
    }

    fn buffered(&self) -> usize {
        self.dim.map_or(0, |d| self.points.len() / d.max(1))
    }

    fn batch_rows(&self, round: Round) -> usize {
        let n = round.instances.max(1);
        self.global_batch / n + usize::from(self.global_batch % n > round.instance)
    }

    fn partial(&mut self, _round: Round, model: &Versioned, rows: usize) -> Result<BatchSums, String> {
        let c = &model.centroids;
        let mut sums = BatchSums {
            sums: vec![0.0; c.values.len()],
            counts: vec![0; c.len()],
        };
        let dim = self.dim.unwrap_or(c.dim);
        if rows > 0 && dim != c.dim {
            return Err(format!(
                "OnlineKMeans: the input vectors have {dim} elements, the model {}",
                c.dim
            ));
        }
        for x in self.points[..rows * dim].chunks_exact(dim.max(1)) {
            let (i, _) = self.measure.closest(&c.values, &c.norms, x, l2_norm(x));
            sums.counts[i] += 1;
            let sum = &mut sums.sums[i * dim..(i + 1) * dim];
            sum.iter_mut().zip(x).for_each(|(s, v)| *s += v);
        }
        self.points.drain(..rows * dim);
        Ok(sums)
    }

    fn merge(&mut self, total: &mut BatchSums, other: BatchSums) {
        total.sums.iter_mut().zip(other.sums).for_each(|(a, b)| *a += b);
        total
            .counts
            .iter_mut()
            .zip(other.counts)
            .for_each(|(a, b)| *a += b);
    }

    fn update(&mut self, model: Versioned, total: BatchSums) -> Result<Versioned, String> {
        let dim = model.centroids.dim;
        let mut values = model.centroids.values;
        let mut weights = model.weights;
        for (i, &count) in total.counts.iter().enumerate() {
            let kept = weights[i] * self.decay;
            weights[i] = kept + count as f64;
            if count == 0 {
                continue;
            }
            let denominator = weights[i].max(1e-16);
            let sum = &total.sums[i * dim..(i + 1) * dim];
            for (c, s) in values[i * dim..(i + 1) * dim].iter_mut().zip(sum) {
                *c = (*c * kept + s) / denominator;
            }
        }
        Ok(Versioned {
            centroids: Centroids::new(dim, values),
            weights,
        })
    }

    fn save_buffer(&self) -> (Option<usize>, Vec<f64>) {
        (self.dim, self.points.clone())
    }

    fn restore_buffer(&mut self, (dim, points): (Option<usize>, Vec<f64>)) -> Result<(), String> {
        if dim.is_some_and(|d| d == 0 || points.len() % d != 0) {
            return Err(format!(
                "OnlineKMeans: {} buffered values are not whole {dim:?}-element points",
                points.len()
            ));
        }
        self.dim = dim;
        self.points = points;
        Ok(())
    }
}

impl Stage for OnlineKMeans {
    stage_basics!(Estimator);

    model_data_methods!();

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "OnlineKMeans",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let initial = self
            .data
            .as_ref()
            .and_then(|d| d.first())
            .ok_or_else(|| self.wrong_kind("Initial Model Data Table should have been set."))?;
        let data = KMeansModelData::from_batches(&initial.schema, &initial.batches)
            .map_err(|e| self.wrong_kind(&e))?;
        let k = self.get(&K)? as usize;
        if data.centroids.len() != k {
            return Err(self.wrong_kind(&format!(
                "the initial model data has {} centroids, k is {k}",
                data.centroids.len()
            )));
        }
        let init = Versioned::of(data).map_err(|e| self.wrong_kind(&e))?;
        let name = job.unique_name("OnlineKMeans.fit");
        let init = job.from_vec(op(format!("{name}.initial")).parallelism(1), vec![init]);
        let body = OnlineLloyd {
            column,
            measure: DistanceMeasure::from_name(&self.get(&DISTANCE_MEASURE)?)
                .map_err(|e| self.wrong_kind(&e))?,
            decay: self.get(&DECAY_FACTOR)?,
            global_batch: self.get(&GLOBAL_BATCH_SIZE)? as usize,
            dim: None,
            points: Vec::new(),
        };
        let versions = input
            .stream
            .iterate_online(name.clone(), init, body)
            .map(op(format!("{name}.modelData")).parallelism(1), |v| {
                v.to_data().to_batch()
            });
        Ok(Fitted {
            model: Box::new(OnlineKMeansModel::with_params(&self.params)),
            model_data: vec![Table::new(KMeansModelData::schema(), versions)],
        })
    }
}

impl Stage for OnlineKMeansModel {
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
            "OnlineKMeansModel",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let measure = DistanceMeasure::from_name(&self.get(&DISTANCE_MEASURE)?)
            .map_err(|e| self.wrong_kind(&e))?;
        let schema = input
            .schema
            .with_column(&self.get(&PREDICTION_COL)?, DataType::Long)?;
        let name = job.unique_name(self.short_name());
        Ok(vec![score_with_newest(
            name,
            input,
            model_data,
            schema,
            |schema, batch| {
                KMeansModelData::from_batches(schema, std::slice::from_ref(&batch))
                    .and_then(|data| Centroids::from_vectors(&data.centroids))
            },
            move |centroids, batch| assign(measure, centroids, column, batch),
        )])
    }
}

/// The batch with every point's closest centroid appended.
fn assign(
    measure: DistanceMeasure,
    centroids: &Centroids,
    column: usize,
    batch: RowBatch,
) -> Result<RowBatch, String> {
    let mut predictions = Vec::with_capacity(batch.rows());
    dense_rows("OnlineKMeansModel", &batch, column, centroids.dim, |_, x| {
        let (i, _) = measure.closest(&centroids.values, &centroids.norms, x, l2_norm(x));
        predictions.push(i as i64);
        Ok(())
    })?;
    Ok(batch.with_column(Column::Long(predictions)))
}
