//! What the models of online estimators share: scoring every batch of rows with the newest
//! model version that has arrived on the model-data stream (Flink's `PredictLabelOperator`s
//! of `OnlineKMeansModel` and `OnlineLogisticRegressionModel`), holding rows until the
//! first version comes.

use weir_core::{BatchOutcome, DeadLetter};

use crate::table::{RowBatch, Schema, Table};

/// The newest model version an instance has, or why the last one was rejected.
pub(crate) struct NewestModel<M> {
    model: Option<M>,
    rejected: Option<String>,
}

impl<M> Default for NewestModel<M> {
    fn default() -> Self {
        NewestModel {
            model: None,
            rejected: None,
        }
    }
}

impl<M> NewestModel<M> {
    /// Takes a decoded version: a good one replaces the model, a bad one is remembered (the
    /// model stays) so that rows held for lack of a model say why.
    pub(crate) fn update(&mut self, decoded: Result<M, String>) {
        match decoded {
            Ok(model) => {
                self.model = Some(model);
                self.rejected = None;
            }
            Err(e) => self.rejected = Some(e),
        }
    }

    /// Scores `batches` with the newest model (`score`); a batch it refuses becomes a dead
    /// letter of `operator`. Without a model yet, the batches are held.
    pub(crate) fn score(
        &self,
        operator: &str,
        batches: Vec<RowBatch>,
        score: impl Fn(&M, RowBatch) -> Result<RowBatch, String>,
    ) -> BatchOutcome<RowBatch, RowBatch> {
        let Some(model) = &self.model else {
            let why = self
                .rejected
                .clone()
                .unwrap_or_else(|| "no model data yet".into());
            return BatchOutcome::Hold(batches, why);
        };
        let scored = batches
            .into_iter()
            .map(|batch| {
                let rows = batch.rows();
                score(model, batch).map_err(|e| {
                    DeadLetter::new(operator, format!("a batch of {rows} rows"), e, b"")
                })
            })
            .collect();
        BatchOutcome::Done(scored)
    }
}

/// Scores `input` (as operator `name`) with the newest version of `model_data` it has:
/// `decode` reads a version from one model-data batch, `score` appends the outputs of a
/// batch of rows; the result has schema `schema`.
pub(crate) fn score_with_newest<'s, M: 'static>(
    name: String,
    input: Table<'s>,
    model_data: Table<'s>,
    schema: Schema,
    decode: impl Fn(&Schema, RowBatch) -> Result<M, String> + 'static,
    score: impl Fn(&M, RowBatch) -> Result<RowBatch, String> + 'static,
) -> Table<'s> {
    let data_schema = model_data.schema.clone();
    let operator = name.clone();
    let (scored, _dead) = input.stream.map_batch_with_broadcast(
        name,
        model_data.stream,
        |_waker| NewestModel::default(),
        move |newest: &mut NewestModel<M>, batch: RowBatch| {
            newest.update(decode(&data_schema, batch))
        },
        move |newest: &mut NewestModel<M>, batches: Vec<RowBatch>, _metrics| {
            newest.score(&operator, batches, &score)
        },
    );
    Table::new(schema, scored)
}
