//! `OneHotEncoder`: learns the largest category index of columns, and
//! `OneHotEncoderModel` encodes indices as one-hot sparse vectors (Flink ML's
//! `org.apache.flink.ml.feature.onehotencoder`).

use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{HANDLE_INVALID, INPUT_COLS, OUTPUT_COLS};
use crate::param::{Param, ParamMap, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, SparseVector, Table};

/// `dropLast`: whether the last category is left out (encoded as the all-zero vector).
pub const DROP_LAST: Param<bool> = Param::new(
    "dropLast",
    "Whether to drop the last category.",
    Some("true"),
    ParamType::Boolean,
    Validator::Always,
);

stage!(
    /// Fits a [`OneHotEncoderModel`]: the largest index of every column of `inputCols`
    /// (`Long` or `Double` columns of non-negative integers, as Java `int`s).
    /// `handleInvalid` must be `error` (Flink ML supports nothing else).
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::OneHotEncoder;
    /// use weir_flink_ml::param::{shared::{INPUT_COLS, OUTPUT_COLS}, WithParams};
    /// use weir_flink_ml::table::{DataType, SparseVector, Schema, Table, TableCollector, Value};
    /// let encoder = OneHotEncoder::new()
    ///     .set(&INPUT_COLS, vec!["category".into()]).unwrap()
    ///     .set(&OUTPUT_COLS, vec!["vector".into()]).unwrap();
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("category", DataType::Long)]);
    ///     let rows: Vec<_> = [0, 1, 2].iter().map(|c| vec![Value::Long(*c)]).collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows)?;
    ///     let test = Table::from_rows(job, "test", schema, vec![vec![Value::Long(1)]])?;
    ///     let fitted = encoder.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// // Categories 0, 1, 2; the last one dropped: vectors of size 2.
    /// let expected = SparseVector::new(2, vec![1], vec![1.0]).unwrap();
    /// assert_eq!(out.rows()[0][1], Value::SparseVector(expected));
    /// ```
    OneHotEncoder,
    "org.apache.flink.ml.feature.onehotencoder.OneHotEncoder",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COLS.spec,
        &HANDLE_INVALID.spec,
        &DROP_LAST.spec
    ]
);

model!(
    /// Encodes every index of each column of `inputCols` as a sparse vector with 1.0 at the
    /// index, in the column of `outputCols` at the same position. The vectors' size is the
    /// column's largest training index with `dropLast`, one more without; the index equal
    /// to the size (the last category with `dropLast`) is the all-zero vector, and larger or
    /// negative indices fail the job. `handleInvalid` must be `error`.
    OneHotEncoderModel,
    "org.apache.flink.ml.feature.onehotencoder.OneHotEncoderModel",
    [
        &INPUT_COLS.spec,
        &OUTPUT_COLS.spec,
        &HANDLE_INVALID.spec,
        &DROP_LAST.spec
    ]
);

impl crate::param::HasInputCols for OneHotEncoder {}
impl crate::param::HasOutputCols for OneHotEncoder {}
impl crate::param::HasHandleInvalid for OneHotEncoder {}
impl crate::param::HasInputCols for OneHotEncoderModel {}
impl crate::param::HasOutputCols for OneHotEncoderModel {}
impl crate::param::HasHandleInvalid for OneHotEncoderModel {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(OneHotEncoder, OneHotEncoderModel);

/// The model data (Flink's `Tuple2<Integer, Integer>` rows): one row per input column,
/// `f0` its position in `inputCols` and `f1` its largest index (`Integer.MIN_VALUE` if the
/// training data had no rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneHotEncoderModelData {
    /// The largest index of every column.
    pub max_indices: Vec<i32>,
}

impl OneHotEncoderModelData {
    /// The model data table's schema.
    pub fn schema() -> Schema {
        Schema::new([("f0", DataType::Long), ("f1", DataType::Long)])
    }

    /// The model data as a batch of one row per column.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            self.max_indices.len(),
            vec![
                Column::Long((0..self.max_indices.len() as i64).collect()),
                Column::Long(self.max_indices.iter().map(|m| *m as i64).collect()),
            ],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        let stage = "OneHotEncoderModel";
        let f0 = schema.index_of("f0").map_err(|e| format!("{stage}: {e}"))?;
        let f1 = schema.index_of("f1").map_err(|e| format!("{stage}: {e}"))?;
        let mut rows = Vec::new();
        for batch in batches {
            match (batch.column(f0), batch.column(f1)) {
                (Column::Long(i), Column::Long(m)) => rows.extend(i.iter().zip(m)),
                _ => return Err(format!("{stage}: the model data's f0 and f1 must be Long")),
            }
        }
        rows.sort_by_key(|(i, _)| **i);
        if rows.iter().enumerate().any(|(k, (i, _))| **i != k as i64) {
            return Err(format!(
                "{stage}: the model data's f0 values must be 0, 1, ... (one row per column)"
            ));
        }
        let max_indices = rows
            .into_iter()
            .map(|(_, m)| i32::try_from(*m).map_err(|_| format!("{stage}: f1 {m} is not an int")))
            .collect::<Result<_, _>>()?;
        Ok(OneHotEncoderModelData { max_indices })
    }
}

/// `number.intValue()` of a row of a `Long` or `Double` column, checked to be that number
/// (`Value %s cannot be parsed as indexed integer.`).
fn int_value(stage: &str, name: &str, column: &Column, row: usize) -> Result<i32, String> {
    let (int, exact) = match column {
        Column::Long(v) => (v[row] as i32, v[row] as i32 as i64 == v[row]),
        Column::Double(v) => (v[row] as i32, v[row] as i32 as f64 == v[row]),
        other => {
            return Err(format!(
                "{stage}: column `{name}` is a {} column, not numbers",
                other.data_type()
            ))
        }
    };
    if !exact {
        let value = column.number(row).expect("a number column");
        return Err(format!(
            "{stage}: column `{name}`: Value {value} cannot be parsed as indexed integer."
        ));
    }
    Ok(int)
}

/// The input and output columns (as many), with `handleInvalid` checked to be `error`.
fn check_params(stage: &str, params: &ParamMap) -> Result<(Vec<String>, Vec<String>), MlError> {
    if params.get(&HANDLE_INVALID)? != "error" {
        return Err(MlError::InvalidParam {
            stage: stage.into(),
            param: HANDLE_INVALID.name().into(),
            message: "must be \"error\": OneHotEncoder supports no other".into(),
        });
    }
    params.paired_columns()
}

impl Stage for OneHotEncoder {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let (cols, _) = check_params("OneHotEncoder", &self.params)?;
        let mut columns = Vec::with_capacity(cols.len());
        for name in cols {
            let column = input.schema.typed_index(
                "OneHotEncoder",
                &name,
                &[DataType::Long, DataType::Double],
            )?;
            columns.push((column, name));
        }
        let n = columns.len();
        // The fold cannot fail: the first bad value is kept and reported by `finish`.
        type Acc = (Vec<i32>, Option<String>);
        let data = fit_aggregate(
            job,
            self,
            input,
            OneHotEncoderModelData::schema(),
            move || (vec![i32::MIN; n], None),
            move |(max, error): &mut Acc, batch: RowBatch| {
                if error.is_some() {
                    return;
                }
                for ((column, name), max) in columns.iter().zip(max.iter_mut()) {
                    let column = batch.column(*column);
                    for row in 0..batch.rows() {
                        match int_value("OneHotEncoder", name, column, row) {
                            Ok(v) if v < 0 => {
                                *error = Some(format!(
                                    "OneHotEncoder: column `{name}` holds {v}: Negative value \
                                     not supported."
                                ));
                                return;
                            }
                            Ok(v) => *max = (*max).max(v),
                            Err(e) => {
                                *error = Some(e);
                                return;
                            }
                        }
                    }
                }
            },
            |(max, error): &mut Acc, (other_max, other_error): Acc| {
                for (m, o) in max.iter_mut().zip(other_max) {
                    *m = (*m).max(o);
                }
                if error.is_none() {
                    *error = other_error;
                }
            },
            |(max_indices, error): Acc| match error {
                Some(e) => Err(e),
                None => Ok(OneHotEncoderModelData { max_indices }.to_batch()),
            },
        );
        let mut model = OneHotEncoderModel::new();
        model.params.copy_existing_from(&self.params)?;
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for OneHotEncoderModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let (cols, out_cols) = check_params("OneHotEncoderModel", &self.params)?;
        let mut columns = Vec::with_capacity(cols.len());
        for name in cols {
            let column = input.schema.typed_index(
                "OneHotEncoderModel",
                &name,
                &[DataType::Long, DataType::Double],
            )?;
            columns.push((column, name));
        }
        let offset = if self.get(&DROP_LAST)? { 0 } else { 1 };
        let outputs: Vec<(String, DataType)> = out_cols
            .into_iter()
            .map(|c| (c, DataType::SparseVector))
            .collect();
        let schema = input.schema.with_columns(&outputs)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            move |schema, batches| {
                let data = OneHotEncoderModelData::from_batches(schema, &batches)?;
                if data.max_indices.len() != columns.len() {
                    return Err(format!(
                        "OneHotEncoderModel: the model data has {} columns, inputCols {}",
                        data.max_indices.len(),
                        columns.len()
                    ));
                }
                // Flink's `categorySizes` (int arithmetic).
                let sizes: Vec<i32> = data
                    .max_indices
                    .iter()
                    .map(|m| m.wrapping_add(offset))
                    .collect();
                Ok((columns, sizes))
            },
            |(columns, sizes), batch| {
                let mut outputs = Vec::with_capacity(columns.len());
                for ((column, name), &size) in columns.iter().zip(sizes) {
                    let values = batch.column(*column);
                    let mut out = Vec::with_capacity(batch.rows());
                    for row in 0..batch.rows() {
                        let index = int_value("OneHotEncoderModel", name, values, row)?;
                        if index == size {
                            out.push(SparseVector {
                                size: size.max(0) as usize,
                                indices: Vec::new(),
                                values: Vec::new(),
                            });
                        } else if index < 0 || index >= size {
                            return Err(format!(
                                "OneHotEncoderModel: column `{name}` holds index {index}, \
                                 outside the {} categories the model knows: Index out of \
                                 bound.",
                                size.max(0)
                            ));
                        } else {
                            out.push(SparseVector {
                                size: size as usize,
                                indices: vec![index as usize],
                                values: vec![1.0],
                            });
                        }
                    }
                    outputs.push(Column::SparseVector(out));
                }
                Ok(outputs.into_iter().fold(batch, RowBatch::with_column))
            },
        );
        Ok(vec![out])
    }
}
