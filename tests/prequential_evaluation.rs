//! The online trainer's prequential (test-then-train) accuracy, computed by Flink ML's
//! `MulticlassClassificationEvaluator` with `CountTumblingWindows` over the trainer's
//! predictions (as `examples/digits_online.rs` reports it): each window's accuracy is that of
//! the predictions it holds, the windows are consecutive, and together they give the trainer's
//! own running accuracy.

use std::sync::{Arc, Mutex};

use serde_json::json;
use weir::flink_ml::api::Stage;
use weir::flink_ml::evaluation::multiclass_classification_evaluator::MULTICLASS_METRICS_NAMES;
use weir::flink_ml::evaluation::MulticlassClassificationEvaluator;
use weir::flink_ml::param::WithParams;
use weir::flink_ml::table::{Column, DataType, RowBatch, Schema, Table, TableCollector};
use weir::ml::{
    LabeledPoint, OnlineLearnExt, OnlineMetrics, OnlineOptions, OnlinePrediction, SgdClassifier,
};
use weir::prelude::*;

/// The digits of `fixtures/`, features scaled to [0, 1].
fn digits() -> Vec<LabeledPoint> {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/data/digits.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let point = |line: &str| {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let x = row["x"].as_array().unwrap();
        LabeledPoint {
            x: x.iter()
                .map(|v| v.as_f64().unwrap() as f32 / 16.0)
                .collect(),
            y: row["y"].as_u64().unwrap() as usize,
        }
    };
    text.lines().map(point).collect()
}

const RECORDS: u64 = 5_000;
const WINDOW: u64 = 400;

/// Each epoch's predictions as a batch of `label` and `prediction` columns.
fn scored_table<'s>(predictions: DataStream<'s, OnlinePrediction>) -> Table<'s> {
    let schema = Schema::new([
        ("label", DataType::Double),
        ("prediction", DataType::Double),
    ]);
    let batches = predictions.try_map_batch(
        op("scored_table").parallelism(1),
        |predictions: Vec<OnlinePrediction>| {
            let labels = predictions.iter().map(|p| p.truth as f64).collect();
            let guesses = predictions.iter().map(|p| p.label as f64).collect();
            let columns = vec![Column::Double(labels), Column::Double(guesses)];
            Ok::<_, String>([RowBatch::new(predictions.len(), columns)])
        },
    );
    Table::new(schema, batches)
}

/// Trains on the digits at `workers` workers; returns the predictions (by index), the
/// evaluator's window accuracies and the trainer's metrics.
fn run(workers: usize) -> (Vec<(u64, bool)>, Vec<f64>, OnlineMetrics) {
    let data = Arc::new(digits());
    let (outcomes, windows) = (Collector::new(), TableCollector::new());
    let (outcome_sink, window_sink) = (outcomes.clone(), windows.clone());
    let metrics = Arc::new(Mutex::new(OnlineMetrics::default()));
    let options = OnlineOptions {
        metrics: Arc::clone(&metrics),
        ..OnlineOptions::default()
    };
    let mut evaluator = MulticlassClassificationEvaluator::new()
        .set(&MULTICLASS_METRICS_NAMES, vec!["accuracy".to_string()])
        .unwrap();
    evaluator
        .param_map_mut()
        .set_json(
            "windows",
            json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": WINDOW}),
        )
        .unwrap();
    let config = Config::threads(workers).with_epochs(EpochPolicy::Records(333));
    execute(config, move |job| {
        let d = Arc::clone(&data);
        let points = job.generate(op("digits").parallelism(1), Some(RECORDS), move |k| {
            d[k as usize % d.len()].clone()
        });
        let predictions = points
            .learn_online(
                "train",
                SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
                |p| p,
                options.clone(),
            )
            .predictions;
        predictions
            .clone()
            .map("outcome", |p| (p.index, p.label == p.truth))
            .collect(op("outcomes").parallelism(1), &outcome_sink);
        evaluator
            .transform(job, vec![scored_table(predictions)])?
            .remove(0)
            .collect(op("window_metrics").parallelism(1), &window_sink);
        Ok(())
    })
    .unwrap();
    let accuracies = windows
        .json_rows()
        .iter()
        .map(|row| row["accuracy"].as_f64().unwrap())
        .collect();
    let metrics = metrics.lock().unwrap().clone();
    (outcomes.sorted(), accuracies, metrics)
}

#[test]
fn the_evaluator_gives_the_trainers_prequential_accuracy_window_by_window() {
    for workers in [1, 2] {
        let (outcomes, windows, metrics) = run(workers);
        assert_eq!(outcomes.len() as u64, RECORDS, "{workers} workers");
        let expected: Vec<f64> = outcomes
            .chunks_exact(WINDOW as usize)
            .map(|w| w.iter().filter(|o| o.1).count() as f64 / WINDOW as f64)
            .collect();
        assert_eq!(windows, expected, "{workers} workers");
        // The windows together: the trainer's running accuracy over the same records.
        let complete = expected.len() as u64 * WINDOW;
        let right = outcomes[..complete as usize].iter().filter(|o| o.1).count();
        let mean = windows.iter().sum::<f64>() / windows.len() as f64;
        assert!((mean - right as f64 / complete as f64).abs() < 1e-12);
        assert_eq!(metrics.records, RECORDS);
        let all_right = outcomes.iter().filter(|o| o.1).count() as u64;
        assert_eq!(metrics.correct, all_right, "{workers} workers");
        // The learner improves: the last window beats the first.
        assert!(windows.last() > windows.first(), "{windows:?}");
    }
}
