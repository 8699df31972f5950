//! `OnlineStandardScaler` (Flink ML's
//! `org.apache.flink.ml.feature.standardscaler.OnlineStandardScaler`): the online version of
//! [`super::StandardScaler`]. The input is cut into windows (`windows`, Flink's
//! `windowAllAndProcess`), and every window that closes with rows in it gives a new model
//! version computed from *all* the rows seen so far (this window's and every earlier one's):
//! the mean and the unbiased standard deviation of every element, numbered 0, 1, 2, ...
//! `OnlineStandardScalerModel` scales every row with the newest version it has, and writes that
//! version's number into `modelVersionCol` (unless it is null).
//!
//! The model data is Flink's `StandardScalerModelData` with its version and timestamp,
//! [`OnlineStandardScalerModelData`]: `mean`, `std`, `version`, `timestamp` (a stream of one
//! row per version).
//!
//! How it runs, as Flink's `windowAll` does, on one instance:
//! - `GlobalWindows` (the default): one version at the end of the bounded input (every instance
//!   sums its rows, one merges the sums); none for an empty input.
//! - `CountTumblingWindows` of `size`: a version every `size` rows, in the order they reach the
//!   instance; the rows of an incomplete last window are never counted (Flink's count windows
//!   never fire it).
//! - `ProcessingTimeTumblingWindows` and `ProcessingTimeSessionWindows`: by the wall clock of
//!   the instance when a batch of rows reaches it ([`weir_core::time::Windows::processing_time`]);
//!   a window closes when the clock passes its end, and every open window closes at the end of
//!   a bounded input (Flink drops the windows still open when its input ends).
//!
//! The model timestamp of a version is Flink's `Long.MAX_VALUE` for all of these; Flink gives
//! the window's max timestamp only to event-time windows.
//!
//! Where Weir differs from Flink:
//! - `EventTimeTumblingWindows` and `EventTimeSessionWindows` are accepted as params (and
//!   saved) but refused by `fit`: Weir's tables carry no event time to cut windows by. For the
//!   same reason `maxAllowedModelDelayMs` (validated and saved) has no effect on the model: a
//!   row without event time is always fresh enough for the newest version, which is what Flink
//!   does for a row without a timestamp at the default delay of 0.
//! - A variance that rounds below zero (a constant element) gives a standard deviation of 0,
//!   as Weir's `StandardScaler` (Flink: NaN, and NaN outputs).
//! - The output is always a dense vector (Flink keeps a sparse input sparse when `withMean` is
//!   false), as Weir's `StandardScalerModel`.
//! - Rows the model gets before its first version are held until it arrives; if the model data
//!   stream ends without a version, they become the job's dead letters (Flink holds them
//!   forever). A batch whose vectors do not have the model's size becomes a dead letter
//!   naming the sizes (Flink fails the job).
//! - Processing-time windows add each window's sums to the running sums (Flink adds the
//!   window's rows one by one): the same numbers to rounding.
//! - `OnlineStandardScalerModel` also takes the model data of `StandardScalerModel` (`mean`,
//!   `std`): its versions are 0 with timestamp `Long.MAX_VALUE`, as Flink's two-argument
//!   `StandardScalerModelData` constructor sets them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_core::time::{WindowResult, Windows as TimeWindows};
use weir_core::{op, DataStream, Job};

use super::standard_scaler::{StandardScalerModelData, WITH_MEAN, WITH_STD};
use crate::api::{Fitted, Stage};
use crate::common::newest_model::score_with_newest;
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{one_input, one_input_with_model};
use crate::common::vector_columns::{dense_rows, vector_column};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, MODEL_VERSION_COL, OUTPUT_COL, WINDOWS};
use crate::param::{Param, ParamType, Validator, Windows, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table, VectorRef};

/// `maxAllowedModelDelayMs`: the most a row's event time may be ahead of the timestamp of the
/// model version that scores it (Flink's `HasMaxAllowedModelDelayMs`; only for input with
/// event time, which Weir's tables do not carry).
pub const MAX_ALLOWED_MODEL_DELAY_MS: Param<i64> = Param::new(
    "maxAllowedModelDelayMs",
    "The maximum difference allowed between the timestamps of the input record and the model \
     data that is used to predict that input record. This param only works when the input \
     contains event time.",
    Some("0"),
    ParamType::Int,
    Validator::GtEq(0.0),
);

stage!(
    /// Fits an [`OnlineStandardScalerModel`]: after every window of `inputCol` vectors (see
    /// `windows` and the module docs), a model version with the mean and the unbiased standard
    /// deviation of every row so far.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{ModelCollector, Stage};
    /// use weir_flink_ml::feature::{OnlineStandardScaler, OnlineStandardScalerModelData};
    /// use weir_flink_ml::param::{HasWindows, Windows};
    /// use weir_flink_ml::table::{DataType, Schema, Table, Value};
    /// let scaler = OnlineStandardScaler::new()
    ///     .set_windows(Windows::CountTumbling { size: 2 })
    ///     .unwrap();
    /// let models = ModelCollector::new();
    /// let sink = models.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = [[1.0, 10.0], [3.0, 10.0], [5.0, 40.0], [7.0, 100.0], [9.0, 0.0]]
    ///         .iter()
    ///         .map(|v| vec![Value::DenseVector(v.to_vec())])
    ///         .collect();
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     scaler.fit(job, vec![table])?.collect(job, &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let model = models.model().unwrap();
    /// let data = &model.model_data().unwrap()[0];
    /// let versions = OnlineStandardScalerModelData::from_batches(&data.schema, &data.batches).unwrap();
    /// // Two windows of 2 rows close (the fifth row's never does): the first 2 rows, then the
    /// // first 4.
    /// assert_eq!(versions.len(), 2);
    /// assert_eq!((versions[0].mean.clone(), versions[0].version), (vec![2.0, 10.0], 0));
    /// assert_eq!((versions[1].mean.clone(), versions[1].version), (vec![4.0, 40.0], 1));
    /// assert!((versions[1].std[0] - (20.0f64 / 3.0).sqrt()).abs() < 1e-12);
    /// assert_eq!(versions[1].timestamp, i64::MAX);
    /// ```
    OnlineStandardScaler,
    "org.apache.flink.ml.feature.standardscaler.OnlineStandardScaler",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &WITH_MEAN.spec,
        &WITH_STD.spec,
        &MODEL_VERSION_COL.spec,
        &MAX_ALLOWED_MODEL_DELAY_MS.spec,
        &WINDOWS.spec
    ]
);

model!(
    /// Scales `inputCol` into `outputCol` (a dense vector) with the newest model version that
    /// has arrived: minus the mean with `withMean`, divided by the standard deviation with
    /// `withStd` (an element whose deviation is 0 becomes 0), and writes the version's number
    /// into `modelVersionCol` unless it is null. Rows wait for the first version.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::{Stage, TableData};
    /// use weir_flink_ml::feature::{OnlineStandardScalerModel, OnlineStandardScalerModelData};
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let version = OnlineStandardScalerModelData {
    ///     mean: vec![2.0, 10.0],
    ///     std: vec![2.0, 0.0],
    ///     version: 7,
    ///     timestamp: i64::MAX,
    /// };
    /// let mut model = OnlineStandardScalerModel::new();
    /// let schema = OnlineStandardScalerModelData::schema();
    /// model.set_model_data(vec![TableData { schema, batches: vec![version.to_batch()] }]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![4.0, 3.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     model.transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// let row = &out.json_rows()[0];
    /// // withStd (the default) divides by the standard deviation; withMean is off.
    /// assert_eq!(row["output"], serde_json::json!([2.0, 0.0]));
    /// assert_eq!(row["version"], 7);
    /// ```
    OnlineStandardScalerModel,
    "org.apache.flink.ml.feature.standardscaler.OnlineStandardScalerModel",
    [
        &INPUT_COL.spec,
        &OUTPUT_COL.spec,
        &WITH_MEAN.spec,
        &WITH_STD.spec,
        &MODEL_VERSION_COL.spec,
        &MAX_ALLOWED_MODEL_DELAY_MS.spec
    ]
);

impl crate::param::HasInputCol for OnlineStandardScaler {}
impl crate::param::HasOutputCol for OnlineStandardScaler {}
impl crate::param::HasModelVersionCol for OnlineStandardScaler {}
impl crate::param::HasWindows for OnlineStandardScaler {}
impl crate::param::HasInputCol for OnlineStandardScalerModel {}
impl crate::param::HasOutputCol for OnlineStandardScalerModel {}
impl crate::param::HasModelVersionCol for OnlineStandardScalerModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(OnlineStandardScaler, OnlineStandardScalerModel);

/// One model version: Flink's `StandardScalerModelData` (`mean`, `std`, `version`,
/// `timestamp`).
///
/// ```
/// use weir_flink_ml::feature::{OnlineStandardScalerModelData, StandardScalerModelData};
/// let data = OnlineStandardScalerModelData { mean: vec![1.0], std: vec![0.5], version: 3, timestamp: 2999 };
/// let schema = OnlineStandardScalerModelData::schema();
/// assert_eq!(schema.names(), vec!["mean", "std", "version", "timestamp"]);
/// let back = OnlineStandardScalerModelData::from_batches(&schema, &[data.to_batch()]).unwrap();
/// assert_eq!(back, vec![data]);
/// // The batch StandardScaler's model data is version 0 at Long.MAX_VALUE.
/// let batch = OnlineStandardScalerModelData::from(StandardScalerModelData { mean: vec![1.0], std: vec![2.0] });
/// assert_eq!((batch.version, batch.timestamp), (0, i64::MAX));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineStandardScalerModelData {
    /// The mean of every element.
    pub mean: Vec<f64>,
    /// The unbiased standard deviation of every element.
    pub std: Vec<f64>,
    /// The version: 0 for the first window, then one more per window.
    pub version: i64,
    /// The model timestamp: the window's max timestamp for event-time windows, else
    /// `i64::MAX` (Java's `Long.MAX_VALUE`).
    pub timestamp: i64,
}

impl From<StandardScalerModelData> for OnlineStandardScalerModelData {
    fn from(data: StandardScalerModelData) -> Self {
        OnlineStandardScalerModelData {
            mean: data.mean,
            std: data.std,
            version: 0,
            timestamp: i64::MAX,
        }
    }
}

impl OnlineStandardScalerModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([
            ("mean", DataType::DenseVector),
            ("std", DataType::DenseVector),
            ("version", DataType::Long),
            ("timestamp", DataType::Long),
        ])
    }

    /// A batch of this one row, in [`OnlineStandardScalerModelData::schema`] (built column by
    /// column: NaNs and infinities survive).
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![
                Column::DenseVector {
                    dim: self.mean.len(),
                    values: self.mean.clone(),
                },
                Column::DenseVector {
                    dim: self.std.len(),
                    values: self.std.clone(),
                },
                Column::Long(vec![self.version]),
                Column::Long(vec![self.timestamp]),
            ],
        )
    }

    /// Every row of `batches`, in order. Without a `version` or `timestamp` column (the model
    /// data of `StandardScalerModel`), the version is 0 and the timestamp `i64::MAX`.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Vec<Self>, String> {
        let mut versions = Vec::new();
        for batch in batches {
            for row in 0..batch.rows() {
                versions.push(Self::read(schema, batch, row)?);
            }
        }
        Ok(versions)
    }

    /// Row `row` of `batch`.
    fn read(schema: &Schema, batch: &RowBatch, row: usize) -> Result<Self, String> {
        let stage = "OnlineStandardScalerModel";
        let vector = |name: &str| -> Result<Vec<f64>, String> {
            let i = schema
                .index_of(name)
                .map_err(|e| format!("{stage}: model data: {e}"))?;
            batch
                .column(i)
                .vector(row)
                .map(|v| v.to_dense())
                .ok_or_else(|| format!("{stage}: model data column `{name}` must be a vector"))
        };
        let long = |name: &str, default: i64| -> Result<i64, String> {
            let Ok(i) = schema.index_of(name) else {
                return Ok(default);
            };
            match batch.column(i) {
                Column::Long(c) => Ok(c[row]),
                Column::Double(c) if c[row].fract() == 0.0 => Ok(c[row] as i64),
                _ => Err(format!(
                    "{stage}: model data column `{name}` must be a 64-bit integer"
                )),
            }
        };
        let data = OnlineStandardScalerModelData {
            mean: vector("mean")?,
            std: vector("std")?,
            version: long("version", 0)?,
            timestamp: long("timestamp", i64::MAX)?,
        };
        if data.mean.len() != data.std.len() {
            return Err(format!(
                "{stage}: the model data has a mean of {} elements and a std of {}",
                data.mean.len(),
                data.std.len()
            ));
        }
        Ok(data)
    }
}

/// The count, sum and squared sum of every element of the rows folded in so far, or why a row
/// could not be.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Moments {
    count: u64,
    sum: Vec<f64>,
    squared_sum: Vec<f64>,
    error: Option<String>,
}

impl Moments {
    /// Adds every row of vector column `column`, in order (Flink: `sum += x`,
    /// `squaredSum += x * x`).
    fn add_batch(&mut self, column: usize, batch: &RowBatch) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = vector_column(batch, column, |_, v| self.add_row(v)) {
            self.error = Some(e);
        }
    }

    /// Adds one row; the first row sets the size.
    fn add_row(&mut self, v: VectorRef<'_>) -> Result<(), String> {
        if self.count == 0 {
            self.sum = vec![0.0; v.size()];
            self.squared_sum = vec![0.0; v.size()];
        } else if v.size() != self.sum.len() {
            return Err(format!(
                "OnlineStandardScaler: a vector has {} elements, the rows before it {}",
                v.size(),
                self.sum.len()
            ));
        }
        let (sum, squared_sum) = (&mut self.sum, &mut self.squared_sum);
        match v {
            VectorRef::Dense(x) => {
                for ((s, q), x) in sum.iter_mut().zip(squared_sum.iter_mut()).zip(x) {
                    *s += x;
                    *q += x * x;
                }
            }
            other => other.for_each(|j, x| {
                sum[j] += x;
                squared_sum[j] += x * x;
            }),
        }
        self.count += 1;
        Ok(())
    }

    /// Adds the sums of `other`.
    fn merge(&mut self, other: Moments) {
        if self.error.is_some() || (other.error.is_none() && other.count == 0) {
            return;
        }
        if other.error.is_some() || self.count == 0 {
            *self = other;
            return;
        }
        if other.sum.len() != self.sum.len() {
            self.error = Some(format!(
                "OnlineStandardScaler: some vectors have {} elements, others {}",
                self.sum.len(),
                other.sum.len()
            ));
            return;
        }
        for (s, o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        for (q, o) in self.squared_sum.iter_mut().zip(&other.squared_sum) {
            *q += o;
        }
        self.count += other.count;
    }

    /// The model data of these sums (Flink's `buildModelData`: the mean is the sum times
    /// `1.0 / n`, the variance `(squaredSum - n * mean * mean) / (n - 1)`, 0 for one row).
    fn model_data(&self, version: i64, timestamp: i64) -> OnlineStandardScalerModelData {
        let n = self.count as f64;
        let inverse = 1.0 / n;
        let mean: Vec<f64> = self.sum.iter().map(|s| s * inverse).collect();
        let std = if self.count > 1 {
            mean.iter()
                .zip(&self.squared_sum)
                .map(|(m, q)| {
                    let variance = (q - n * m * m) / (n - 1.0);
                    // Rounding below zero is a zero deviation (NaN stays NaN).
                    if variance < 0.0 {
                        0.0
                    } else {
                        variance.sqrt()
                    }
                })
                .collect()
        } else {
            vec![0.0; mean.len()]
        };
        OnlineStandardScalerModelData {
            mean,
            std,
            version,
            timestamp,
        }
    }
}

/// The running sums of the windows closed so far and the next version's number (Flink's
/// `ComputeModelDataFunction` state).
#[derive(Default)]
struct Versions {
    moments: Moments,
    next: i64,
}

impl Versions {
    /// The next model version, from the running sums (which include the window just closed).
    fn emit(&mut self, timestamp: i64) -> Result<RowBatch, String> {
        if let Some(e) = &self.moments.error {
            return Err(e.clone());
        }
        let data = self.moments.model_data(self.next, timestamp);
        self.next += 1;
        Ok(data.to_batch())
    }

    /// Closes a window with the sums of its rows: a version if it had any.
    fn close(&mut self, window: Moments, timestamp: i64) -> Result<Option<RowBatch>, String> {
        if let Some(e) = window.error {
            return Err(e);
        }
        if window.count == 0 {
            return Ok(None);
        }
        self.moments.merge(window);
        self.emit(timestamp).map(Some)
    }
}

/// Count windows: the rows go straight into the running sums, in order, and a version comes
/// every `size` rows. The rows of the open window are in the sums too, but no version shows
/// them until it closes.
struct CountWindows {
    size: u64,
    rows: u64,
    versions: Versions,
}

impl CountWindows {
    fn add(&mut self, column: usize, batch: &RowBatch) -> Result<Vec<RowBatch>, String> {
        let mut out = Vec::new();
        let versions = &mut self.versions;
        let (size, rows) = (self.size, &mut self.rows);
        vector_column(batch, column, |_, v| {
            versions.moments.add_row(v)?;
            *rows += 1;
            if *rows == size {
                *rows = 0;
                out.push(versions.emit(i64::MAX)?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl OnlineStandardScaler {
    /// The model versions of `input` (vector column `column`) under `windows`.
    fn versions<'s>(
        &self,
        job: &Job<'s>,
        input: Table<'s>,
        column: usize,
    ) -> Result<DataStream<'s, RowBatch>, MlError> {
        let name = job.unique_name(&format!("{}.fit", self.short_name()));
        let model_data = op(format!("{name}.modelData")).parallelism(1);
        let time_windows = match self.get(&WINDOWS)? {
            Windows::Global => {
                let mut versions = Versions::default();
                return Ok(input
                    .stream
                    .aggregate_to_end(
                        name,
                        Moments::default,
                        move |moments, batch: RowBatch| moments.add_batch(column, &batch),
                        Moments::merge,
                    )
                    .try_map_batch(model_data, move |totals: Vec<Moments>| {
                        let mut out = Vec::new();
                        for total in totals {
                            out.extend(versions.close(total, i64::MAX)?);
                        }
                        Ok(out)
                    }));
            }
            Windows::CountTumbling { size } => {
                let mut windows = CountWindows {
                    size: size as u64,
                    rows: 0,
                    versions: Versions::default(),
                };
                return Ok(input
                    .stream
                    .try_map_batch(model_data, move |batches: Vec<RowBatch>| {
                        let mut out = Vec::new();
                        for batch in &batches {
                            out.extend(windows.add(column, batch)?);
                        }
                        Ok(out)
                    }));
            }
            Windows::ProcessingTimeTumbling { size } => {
                TimeWindows::tumbling(Duration::from_millis(size as u64)).processing_time()
            }
            Windows::ProcessingTimeSession { gap } => {
                TimeWindows::session(Duration::from_millis(gap as u64)).processing_time()
            }
            other @ (Windows::EventTimeTumbling { .. } | Windows::EventTimeSession { .. }) => {
                return Err(MlError::InvalidParam {
                    stage: self.short_name().into(),
                    param: WINDOWS.name().into(),
                    message: format!(
                        "is {}: event-time windows need the rows' event time, which Weir's \
                         tables do not carry (use GlobalWindows, CountTumblingWindows, \
                         ProcessingTimeTumblingWindows or ProcessingTimeSessionWindows)",
                        other.class_name()
                    ),
                });
            }
        };
        // One key: every batch goes to one instance, which cuts windows by its clock.
        let mut versions = Versions::default();
        Ok(input
            .stream
            .ingestion_time(op(format!("{name}.clock")))
            .key_by(|_: &RowBatch| ())
            .window(time_windows)
            .aggregate(
                op(format!("{name}.windows")),
                Moments::default,
                move |moments, batch: &RowBatch| moments.add_batch(column, batch),
                Moments::merge,
            )
            .results()
            .try_map_batch(
                model_data,
                move |mut windows: Vec<WindowResult<(), Moments>>| {
                    windows.sort_by_key(|w| (w.window.start, w.window.end));
                    let mut out = Vec::new();
                    for window in windows {
                        out.extend(versions.close(window.value, i64::MAX)?);
                    }
                    Ok(out)
                },
            ))
    }
}

impl Stage for OnlineStandardScaler {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            self.short_name(),
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let versions = self.versions(job, input, column)?;
        Ok(Fitted {
            model: Box::new(OnlineStandardScalerModel::with_params(&self.params)),
            model_data: vec![Table::new(OnlineStandardScalerModelData::schema(), versions)],
        })
    }
}

impl Stage for OnlineStandardScalerModel {
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
            self.short_name(),
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let (with_mean, with_std) = (self.get(&WITH_MEAN)?, self.get(&WITH_STD)?);
        // Validated, without effect: Weir's rows carry no event time (see the module docs).
        self.get(&MAX_ALLOWED_MODEL_DELAY_MS)?;
        let version_col = self.params.get_opt(&MODEL_VERSION_COL)?;
        let mut schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, DataType::DenseVector)?;
        if let Some(name) = &version_col {
            schema = schema.with_column(name, DataType::Long)?;
        }
        let with_version = version_col.is_some();
        let name = job.unique_name(self.short_name());
        Ok(vec![score_with_newest(
            name,
            input,
            model_data,
            schema,
            move |schema, batch| Scaling::decode(schema, &batch, with_mean, with_std),
            move |scaling, batch| scaling.apply(column, with_version, batch),
        )])
    }
}

/// A model version as the model applies it: `(x - shift) * factor` per element.
struct Scaling {
    shift: Vec<f64>,
    factor: Vec<f64>,
    version: i64,
}

impl Scaling {
    /// The newest version of a model data batch (its last row).
    fn decode(
        schema: &Schema,
        batch: &RowBatch,
        with_mean: bool,
        with_std: bool,
    ) -> Result<Scaling, String> {
        let Some(last) = batch.rows().checked_sub(1) else {
            return Err("OnlineStandardScalerModel: an empty model data batch".into());
        };
        let data = OnlineStandardScalerModelData::read(schema, batch, last)?;
        let dim = data.mean.len();
        Ok(Scaling {
            shift: if with_mean { data.mean } else { vec![0.0; dim] },
            // Flink's `scale`: the inverse of the deviation, 0 where it is 0.
            factor: data
                .std
                .iter()
                .map(|&s| match (with_std, s == 0.0) {
                    (false, _) => 1.0,
                    (true, true) => 0.0,
                    (true, false) => 1.0 / s,
                })
                .collect(),
            version: data.version,
        })
    }

    /// The batch with the scaled vectors (and the version) appended.
    fn apply(&self, column: usize, with_version: bool, batch: RowBatch) -> Result<RowBatch, String> {
        let dim = self.factor.len();
        let mut values = Vec::with_capacity(batch.rows() * dim);
        dense_rows("OnlineStandardScalerModel", &batch, column, dim, |_, x| {
            values.extend(
                x.iter()
                    .zip(&self.shift)
                    .zip(&self.factor)
                    .map(|((x, shift), factor)| (x - shift) * factor),
            );
            Ok(())
        })?;
        let rows = batch.rows();
        let batch = batch.with_column(Column::DenseVector { dim, values });
        Ok(if with_version {
            batch.with_column(Column::Long(vec![self.version; rows]))
        } else {
            batch
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flink's `OnlineStandardScalerTest` rows.
    const FLINK: [[f64; 3]; 9] = [
        [-2.5, 9.0, 1.0],
        [1.4, -5.0, 1.0],
        [2.0, -1.0, -2.0],
        [0.7, 3.0, 1.0],
        [0.0, 1.0, 1.0],
        [0.5, 0.0, -2.0],
        [0.4, 1.0, 1.0],
        [0.3, 2.0, 1.0],
        [0.5, 1.0, -2.0],
    ];

    fn batch(rows: &[[f64; 3]]) -> RowBatch {
        RowBatch::new(
            rows.len(),
            vec![Column::DenseVector {
                dim: 3,
                values: rows.iter().flatten().copied().collect(),
            }],
        )
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-7)
    }

    #[test]
    fn count_windows_give_flinks_versions() {
        let mut windows = CountWindows {
            size: 3,
            rows: 0,
            versions: Versions::default(),
        };
        // Batches that straddle the windows' ends.
        let mut out = windows.add(0, &batch(&FLINK[..2])).unwrap();
        out.extend(windows.add(0, &batch(&FLINK[2..7])).unwrap());
        out.extend(windows.add(0, &batch(&FLINK[7..])).unwrap());
        let schema = OnlineStandardScalerModelData::schema();
        let got = OnlineStandardScalerModelData::from_batches(&schema, &out).unwrap();
        let expected = [
            ([0.3, 1.0, 0.0], [2.4433583, 7.2111026, 1.7320508]),
            ([0.35, 1.1666667, 0.0], [1.5630099, 4.6654760, 1.5491933]),
            ([0.3666667, 1.2222222, 0.0], [1.2369316, 3.7006005, 1.5]),
        ];
        assert_eq!(got.len(), 3);
        for (i, (g, (mean, std))) in got.iter().zip(expected).enumerate() {
            assert!(close(&g.mean, &mean), "{i}: {g:?}");
            assert!(close(&g.std, &std), "{i}: {g:?}");
            assert_eq!((g.version, g.timestamp), (i as i64, i64::MAX));
        }
    }

    #[test]
    fn an_incomplete_window_gives_no_version_and_sizes_must_agree() {
        let mut windows = CountWindows {
            size: 4,
            rows: 0,
            versions: Versions::default(),
        };
        assert!(windows.add(0, &batch(&FLINK[..3])).unwrap().is_empty());
        let bad = RowBatch::new(
            1,
            vec![Column::DenseVector {
                dim: 2,
                values: vec![1.0, 2.0],
            }],
        );
        let error = windows.add(0, &bad).unwrap_err();
        assert!(error.contains("2 elements, the rows before it 3"), "{error}");
    }

    #[test]
    fn one_row_has_zero_deviation_and_a_constant_element_never_nan() {
        let mut moments = Moments::default();
        moments.add_batch(0, &batch(&[[0.7, 0.7, 0.7]]));
        assert_eq!(moments.model_data(0, 0).std, vec![0.0; 3]);
        // Five times 0.7: Flink's formula gives a variance of -2.2e-16 (and a NaN deviation).
        moments.add_batch(0, &batch(&[[0.7, 0.7, 0.7]; 4]));
        let (n, m, q) = (5.0, moments.sum[0] * (1.0 / 5.0), moments.squared_sum[0]);
        assert!((q - n * m * m) / (n - 1.0) < 0.0);
        assert_eq!(moments.model_data(0, 0).std, vec![0.0; 3]);
        // NaN rows stay NaN.
        moments.add_batch(0, &batch(&[[f64::NAN, 0.7, 0.7]]));
        assert!(moments.model_data(0, 0).std[0].is_nan());
    }

    #[test]
    fn merged_sums_are_the_sums_of_all_rows() {
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        a.add_batch(0, &batch(&FLINK[..4]));
        b.add_batch(0, &batch(&FLINK[4..]));
        all.add_batch(0, &batch(&FLINK));
        let mut empty = Moments::default();
        empty.merge(a);
        empty.merge(Moments::default());
        empty.merge(b);
        let (m, n) = (empty.model_data(0, 0), all.model_data(0, 0));
        assert!(close(&m.mean, &n.mean) && close(&m.std, &n.std));
        assert_eq!(empty.count, 9);
    }

    #[test]
    fn the_newest_row_of_a_batch_scores_and_the_batch_scalers_data_is_version_0() {
        let schema = OnlineStandardScalerModelData::schema();
        let mut versions = RowBatch::empty(&schema);
        for v in 0..3 {
            let data = OnlineStandardScalerModelData {
                mean: vec![v as f64],
                std: vec![2.0],
                version: v,
                timestamp: i64::MAX,
            };
            versions.append(data.to_batch()).unwrap();
        }
        let scaling = Scaling::decode(&schema, &versions, true, true).unwrap();
        assert_eq!((scaling.shift.clone(), scaling.version), (vec![2.0], 2));
        let rows = RowBatch::new(
            1,
            vec![Column::DenseVector {
                dim: 1,
                values: vec![6.0],
            }],
        );
        let out = scaling.apply(0, true, rows.clone()).unwrap();
        assert_eq!(out.column(1), &Column::DenseVector { dim: 1, values: vec![2.0] });
        assert_eq!(out.column(2), &Column::Long(vec![2]));

        let batch_schema = StandardScalerModelData::schema();
        let batch_data = RowBatch::new(
            1,
            vec![
                Column::DenseVector { dim: 1, values: vec![1.0] },
                Column::DenseVector { dim: 1, values: vec![0.0] },
            ],
        );
        let scaling = Scaling::decode(&batch_schema, &batch_data, true, true).unwrap();
        assert_eq!(scaling.version, 0);
        let out = scaling.apply(0, false, rows).unwrap();
        assert_eq!(out.columns().len(), 2);
        assert_eq!(out.column(1), &Column::DenseVector { dim: 1, values: vec![0.0] });
    }
}
