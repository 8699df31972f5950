//! How feature stages become dataflow operators: a column-batch map for transformers, a
//! whole-input aggregate for estimators' fits, and a map with the model data broadcast for
//! models.

use serde::{de::DeserializeOwned, Serialize};
use weir_core::{Data, Job};

use crate::api::Stage;
use crate::error::MlError;
use crate::table::{RowBatch, Schema, Table};

/// Exactly one input table, or an error naming the stage.
pub(crate) fn one_input<'s>(
    stage: &(impl Stage + ?Sized),
    mut inputs: Vec<Table<'s>>,
) -> Result<Table<'s>, MlError> {
    if inputs.len() != 1 {
        return Err(MlError::Inputs {
            stage: stage.short_name().to_string(),
            expected: 1,
            actual: inputs.len(),
        });
    }
    Ok(inputs.remove(0))
}

/// A model's one input table and its one model data table, or an error naming the stage.
pub(crate) fn one_input_with_model<'s>(
    stage: &(impl Stage + ?Sized),
    inputs: Vec<Table<'s>>,
    mut model_data: Vec<Table<'s>>,
) -> Result<(Table<'s>, Table<'s>), MlError> {
    let input = one_input(stage, inputs)?;
    let data = model_data
        .pop()
        .ok_or_else(|| MlError::NoModelData(stage.short_name().into()))?;
    Ok((input, data))
}

/// A transformer's operator: `f` turns every input batch into an output batch in `schema`.
/// An `Err` fails the job, naming the operator (Flink's transformers throw). Batches are
/// mapped as they arrive (`try_map_chunks`: no wait for their epoch to complete, and the
/// outputs go downstream a few at a time).
pub(crate) fn map_batches<'s>(
    job: &Job<'s>,
    stage: &(impl Stage + ?Sized),
    input: Table<'s>,
    schema: Schema,
    mut f: impl FnMut(RowBatch) -> Result<RowBatch, String> + 'static,
) -> Table<'s> {
    let name = job.unique_name(stage.short_name());
    let stream = input
        .stream
        .try_map_chunks(name, move |batches: Vec<RowBatch>| {
            batches
                .into_iter()
                .map(&mut f)
                .collect::<Result<Vec<_>, _>>()
        });
    Table::new(schema, stream)
}

/// An estimator's fit: folds every input batch into an accumulator (one per instance, merged
/// on one instance at the end of the input), and `finish` turns the total into the model
/// data batch (in `schema`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_aggregate<'s, A: Data>(
    job: &Job<'s>,
    stage: &(impl Stage + ?Sized),
    input: Table<'s>,
    schema: Schema,
    init: impl Fn() -> A + 'static,
    fold: impl FnMut(&mut A, RowBatch) + 'static,
    merge: impl FnMut(&mut A, A) + 'static,
    finish: impl FnMut(A) -> Result<RowBatch, String> + 'static,
) -> Table<'s> {
    let name = job.unique_name(&format!("{}.fit", stage.short_name()));
    let stream = input
        .stream
        .aggregate_to_end(name.clone(), init, fold, merge)
        .try_map_batch(weir_core::op(format!("{name}.modelData")).parallelism(1), {
            let mut finish = finish;
            move |totals: Vec<A>| {
                totals
                    .into_iter()
                    .map(&mut finish)
                    .collect::<Result<Vec<_>, _>>()
            }
        });
    Table::new(schema, stream)
}

/// A model's operator: the model data table is broadcast to every instance, decoded once it
/// is complete by `decode`, and `f` maps each input batch with it.
pub(crate) fn map_with_model<'s, M: 'static>(
    job: &Job<'s>,
    stage: &(impl Stage + ?Sized),
    input: Table<'s>,
    model_data: Table<'s>,
    schema: Schema,
    decode: impl FnOnce(&Schema, Vec<RowBatch>) -> Result<M, String> + 'static,
    mut f: impl FnMut(&M, RowBatch) -> Result<RowBatch, String> + 'static,
) -> Table<'s> {
    let name = job.unique_name(stage.short_name());
    let data_schema = model_data.schema.clone();
    let stream = input.stream.with_broadcast_weighing(
        name,
        model_data.stream,
        RowBatch::weight,
        move |batches: Vec<RowBatch>| decode(&data_schema, batches),
        move |model: &mut M, batches: Vec<RowBatch>| {
            batches
                .into_iter()
                .map(|b| f(model, b))
                .collect::<Result<Vec<_>, _>>()
        },
    );
    Table::new(schema, stream)
}

/// The single record of a model data table, decoded with serde.
pub(crate) fn single_record<T: DeserializeOwned>(
    stage: &str,
    schema: &Schema,
    batches: &[RowBatch],
) -> Result<T, String> {
    let mut records: Vec<T> = crate::api::records_of(schema, batches).map_err(|e| e.to_string())?;
    match records.len() {
        1 => Ok(records.remove(0)),
        0 => Err(format!(
            "{stage}: the model data is empty (was the fit input empty?)"
        )),
        n => Err(format!("{stage}: expected one model data row, got {n}")),
    }
}

/// A model data batch of one record (serde, fields matched by column name).
pub(crate) fn record_batch<T: Serialize>(schema: &Schema, record: &T) -> Result<RowBatch, String> {
    let json = serde_json::to_value(record).map_err(|e| e.to_string())?;
    let mut batches = RowBatch::from_json_rows(schema, &[json], 1).map_err(|e| e.to_string())?;
    Ok(batches.remove(0))
}

#[cfg(test)]
mod tests {
    use crate::table::{Column, RowBatch};

    /// Models cache their input batches until the model data is complete; the cache's
    /// budget must see what a batch holds on the heap, not the size of its handle.
    #[test]
    fn cached_batches_weigh_what_they_hold() {
        let batch = RowBatch::new(
            1000,
            vec![Column::DenseVector {
                dim: 10,
                values: vec![0.5; 10_000],
            }],
        );
        assert!(RowBatch::weight(&batch) >= 80_000);
        assert!(std::mem::size_of_val(&batch) < 100);
    }
}
