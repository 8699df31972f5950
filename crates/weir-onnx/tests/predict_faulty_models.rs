//! The predict operator against models that are wrong in one way each (fixtures built by
//! `scripts/make_models.py`): what a model declares is checked when it loads (a rejected
//! model never serves, the previous one keeps serving), what it returns is checked on every
//! batch (a batch it got wrong becomes dead letters that say why), and records that no model
//! could score say why not. Nothing panics, nothing is silently sliced.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config, DeadLetter, EpochPolicy};
use weir_onnx::{
    ModelUpdate, PredictConfig, PredictExt, Prediction, TensorPredictConfig, TensorSpec,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

/// The first `n` digits of the fixture data set.
fn digits(n: usize) -> Vec<Digit> {
    std::fs::read_to_string(fixtures().join("data/digits.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A model update of the fixture `file`, named `name`.
fn model(name: &str, version: u64, file: &str) -> ModelUpdate {
    ModelUpdate::from_path(name, version, fixtures().join("models").join(file))
}

/// What `first10.onnx` computes: the argmax (first index of the maximum) of the first 10
/// features.
fn first10_label(x: &[f32]) -> i64 {
    let max = x[..10].iter().copied().fold(f32::MIN, f32::max);
    x.iter().position(|&v| v == max).unwrap() as i64
}

/// What a job produced: outputs, dead letters (sorted by reason, then record) and the
/// predict operator's counters.
struct Run<U> {
    out: Vec<U>,
    dead: Vec<DeadLetter>,
    counters: BTreeMap<String, u64>,
}

/// Runs `n` digits (epochs of `per_epoch` records) through an operator built by `predict`
/// from the records and the model stream (one update per epoch), on one worker.
fn run<U: weir_core::Data>(
    n: usize,
    per_epoch: u64,
    models: Vec<ModelUpdate>,
    predict: impl for<'s> Fn(
            weir_core::DataStream<'s, Digit>,
            weir_core::DataStream<'s, ModelUpdate>,
        ) -> (
            weir_core::DataStream<'s, U>,
            weir_core::DataStream<'s, DeadLetter>,
        ) + Send
        + Sync
        + 'static,
) -> Run<U> {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    let records = digits(n);
    let report = execute(Config::threads(1), move |job| {
        let digits = job.from_vec(
            op("digits").epochs(EpochPolicy::Records(per_epoch)),
            records.clone(),
        );
        let updates = job.from_vec(op("models").epochs(EpochPolicy::Records(1)), models.clone());
        let (scored, dead_letters) = predict(digits, updates);
        scored.collect("out", &o);
        dead_letters.collect("dead", &d);
        Ok(())
    })
    .unwrap();
    let mut dead = dead.take();
    dead.sort_by(|a, b| (&a.reason, &a.raw).cmp(&(&b.reason, &b.raw)));
    Run {
        out: out.take(),
        dead,
        counters: report.operator("predict").unwrap().counters.clone(),
    }
}

/// The classifier form with the default configuration (batches of at most `max_batch`).
fn classify(
    n: usize,
    per_epoch: u64,
    models: Vec<ModelUpdate>,
    max_batch: usize,
) -> Run<Prediction<Digit>> {
    run(n, per_epoch, models, move |digits, updates| {
        digits.predict(
            "predict",
            updates,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig {
                max_batch,
                ..PredictConfig::default()
            },
        )
    })
}

/// The general form, reading `label` (i64, any width) and returning each record's values.
fn label_values(
    n: usize,
    per_epoch: u64,
    models: Vec<ModelUpdate>,
    inputs: Vec<TensorSpec>,
) -> Run<(u64, Vec<i64>)> {
    let feed = !inputs.is_empty();
    run(n, per_epoch, models, move |digits, updates| {
        digits.predict_tensors(
            "predict",
            updates,
            |_| 0,
            move |d: &Digit, rows| {
                if feed {
                    rows.f32(0).extend_from_slice(&d.x)
                }
            },
            |d: Digit, out| (d.id, out.i64(0).to_vec()),
            TensorPredictConfig {
                inputs: inputs.clone(),
                outputs: vec![TensorSpec::i64("label")],
                ..PredictConfig::default().tensors()
            },
        )
    })
}

/// Every dead letter has this reason; returns how many there are.
fn all_dead_because(dead: &[DeadLetter], reason: &str) -> usize {
    assert!(!dead.is_empty(), "no dead letters (expected: {reason})");
    for d in dead {
        assert_eq!(d.reason, reason, "{d:?}");
        assert_eq!(d.operator, "predict");
    }
    dead.len()
}

#[test]
fn a_model_declaring_one_label_for_the_whole_batch_is_rejected_and_the_previous_keeps_serving() {
    // v1 from epoch 0; v2 declares `label` [1, 1] and arrives at epoch 1.
    let models = vec![
        model("digits", 1, "digits_logreg.onnx"),
        model("digits", 2, "label_fixed_1x1.onnx"),
    ];
    let run = classify(600, 200, models, 64);
    assert!(run.dead.is_empty(), "{:?}", &run.dead[..1]);
    assert_eq!(run.out.len(), 600);
    assert!(run.out.iter().all(|p| p.model_version == 1));
    assert_eq!(run.counters["models_rejected"], 1);
    assert_eq!(run.counters["v1"], 600);
}

#[test]
fn a_model_with_only_that_fault_leaves_records_dead_with_the_rejection_reason() {
    let run = classify(10, 10, vec![model("digits", 2, "label_fixed_1x1.onnx")], 64);
    assert!(run.out.is_empty());
    let count = all_dead_because(
        &run.dead,
        "the side input ended before the state could process this record: model digits v2 rejected: output `label` is \
         i64 [1, 1], expected [N] or [N, 1] with N the batch: the first dimension must \
         be dynamic (or 1 with max_batch 1)",
    );
    assert_eq!(count, 10);
}

#[test]
fn an_output_that_is_not_one_row_per_record_at_run_time_makes_its_batch_dead_letters() {
    // `label_one_row.onnx` declares `label` [N] but returns [1]: only the run shows it.
    // One batch of 10 records.
    let run = label_values(
        10,
        10,
        vec![model("first10", 3, "label_one_row.onnx")],
        vec![TensorSpec::f32("input")],
    );
    assert!(run.out.is_empty(), "silently sliced: {:?}", run.out);
    let count = all_dead_because(
        &run.dead,
        "output `label` of model first10 v3 has shape [1]; expected [10, ...] with at least one \
         value per record (one item per record of the batch of 10)",
    );
    assert_eq!(count, 10);
    assert!(run.dead.iter().all(|d| d.location == "model v3"));
    // A batch of one row fits that shape, so the same model scores it.
    let run = label_values(
        1,
        1,
        vec![model("first10", 3, "label_one_row.onnx")],
        vec![TensorSpec::f32("input")],
    );
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_eq!(run.out, vec![(0, vec![first10_label(&digits(1)[0].x)])]);
}

#[test]
fn the_classifier_reads_its_label_from_a_one_row_per_record_output_or_dead_letters() {
    // The same model through `predict`: used to panic the worker at `out.i64(0)[0]`.
    let run = classify(10, 10, vec![model("first10", 3, "label_one_row.onnx")], 64);
    assert!(run.out.is_empty());
    all_dead_because(
        &run.dead,
        "output `label` of model first10 v3 has shape [1]; expected [10] or [10, 1] \
         (one item per record of the batch of 10)",
    );
}

#[test]
fn a_label_output_with_two_columns_is_rejected_at_load_or_at_run_time() {
    // Declared [N, 2]: rejected when it loads.
    let run = classify(
        10,
        10,
        vec![model("digits", 1, "label_two_columns.onnx")],
        64,
    );
    assert!(run.out.is_empty(), "silently used the first column");
    all_dead_because(
        &run.dead,
        "the side input ended before the state could process this record: model digits v1 rejected: output `label` is \
         i64 [N, 2], expected [N] or [N, 1] with N the batch: it has 2 values per record, \
         expected 1",
    );
    // Declared [N, C]: the run shows C = 2.
    let run = classify(
        10,
        10,
        vec![model("digits", 1, "label_columns_unknown.onnx")],
        64,
    );
    assert!(run.out.is_empty(), "silently used the first column");
    all_dead_because(
        &run.dead,
        "output `label` of model digits v1 has shape [10, 2]; expected [10] or [10, 1] \
         (one item per record of the batch of 10)",
    );
}

#[test]
fn a_configuration_with_no_inputs_is_rejected_instead_of_panicking_the_worker() {
    for file in ["zero_inputs.onnx", "digits_logreg.onnx"] {
        let run = label_values(5, 5, vec![model("constant", 1, file)], vec![]);
        assert!(run.out.is_empty());
        all_dead_because(
            &run.dead,
            "the side input ended before the state could process this record: model constant v1 rejected: the operator \
             feeds no inputs (TensorPredictConfig::inputs is empty); it needs at least one",
        );
    }
}

#[test]
fn a_model_with_zero_inputs_is_rejected() {
    let run = classify(5, 5, vec![model("constant", 1, "zero_inputs.onnx")], 64);
    assert!(run.out.is_empty());
    all_dead_because(
        &run.dead,
        "the side input ended before the state could process this record: model constant v1 rejected: the model has no \
         inputs, so a record has nothing to feed (the operator feeds `input`)",
    );
}

#[test]
fn a_model_with_a_required_input_the_operator_does_not_feed_is_rejected() {
    // v2 also needs `mask`: it would fail every batch, so it never serves.
    let models = vec![
        model("digits", 1, "digits_logreg.onnx"),
        model("digits", 2, "extra_input.onnx"),
    ];
    let run = classify(600, 200, models, 64);
    assert!(run.dead.is_empty(), "{:?}", &run.dead[..1]);
    assert!(run.out.iter().all(|p| p.model_version == 1));
    assert_eq!(run.out.len(), 600);
    assert_eq!(run.counters["models_rejected"], 1);
    // Alone, it leaves the records dead, naming the input.
    let run = classify(5, 5, vec![model("digits", 2, "extra_input.onnx")], 64);
    all_dead_because(
        &run.dead,
        "the side input ended before the state could process this record: model digits v2 rejected: the model's input \
         `mask` is not fed by the operator (it feeds `input`); give it as a constant if it is not \
         per record",
    );
}

#[test]
fn a_model_with_a_fixed_batch_of_one_scores_one_record_a_run() {
    let models = || vec![model("first10", 1, "fixed_batch_1.onnx")];
    // Its fixed batch dimension of 1 is the batch, whatever max_batch says.
    for max_batch in [64, 1] {
        let run = classify(20, 20, models(), max_batch);
        assert!(run.dead.is_empty(), "{:?}", run.dead);
        assert_eq!(run.out.len(), 20);
        for p in &run.out {
            assert_eq!(
                p.label,
                first10_label(&p.record.x),
                "record {}",
                p.record.id
            );
            assert_eq!(p.probabilities.len(), 10);
        }
    }
}

#[test]
fn records_that_never_found_a_model_say_that_no_update_arrived() {
    let run = classify(5, 5, vec![], 64);
    assert!(run.out.is_empty());
    let count = all_dead_because(
        &run.dead,
        "the side input ended before the state could process this record: no model update arrived",
    );
    assert_eq!(count, 5);
}

#[test]
fn records_waiting_for_a_primary_model_say_what_the_candidates_did() {
    let loaded = classify(
        5,
        5,
        vec![model("digits", 1, "digits_logreg.onnx").as_candidate()],
        64,
    );
    assert!(loaded.out.is_empty());
    all_dead_because(
        &loaded.dead,
        "the side input ended before the state could process this record: only a candidate \
         model (digits v1) has loaded; records wait for a primary one",
    );
    let rejected = classify(
        5,
        5,
        vec![model("digits", 1, "label_fixed_1x1.onnx").as_candidate()],
        64,
    );
    all_dead_because(
        &rejected.dead,
        "the side input ended before the state could process this record: no primary model \
         update arrived (candidate model digits v1 rejected: output `label` is i64 [1, 1], \
         expected [N] or [N, 1] with N the batch: the first dimension must be dynamic (or \
         1 with max_batch 1))",
    );
}

#[test]
fn a_shadow_model_whose_outputs_are_not_one_row_per_record_is_counted_as_failed() {
    // The candidate declares `label` [N] but returns [1]: its rows are not compared (they
    // used to count as disagreements, against an empty slice); the primary's predictions go
    // out as usual. The candidate arrives at epoch 1, the second 50 records.
    let models = vec![
        model("digits", 1, "digits_logreg.onnx"),
        model("first10", 2, "label_one_row.onnx").as_candidate(),
    ];
    let run = run(100, 50, models, |digits, updates| {
        digits.predict(
            "predict",
            updates,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig {
                serving: weir_onnx::Serving::Shadow,
                ..PredictConfig::default()
            },
        )
    });
    assert!(run.dead.is_empty(), "{:?}", run.dead);
    assert_eq!(run.out.len(), 100);
    assert!(run.out.iter().all(|p| p.model_version == 1));
    assert!(
        !run.counters.contains_key("shadow_agree"),
        "compared: {:?}",
        run.counters
    );
    assert_eq!(run.counters["shadow_failed"], 50);
}
