//! Training and scoring connected: the online trainer's model versions, exported to ONNX,
//! are the model stream of the ONNX predict operator, and every prediction equals what the
//! version that made it computes in Rust.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use weir::ml::{Checkpoint, LabeledPoint, OnlineLearnExt, OnlineOptions, SgdClassifier};
use weir::onnx::{ModelSource, ModelUpdate, PredictConfig, PredictExt, Prediction};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn digits() -> Vec<Digit> {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/data/digits.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut d: Digit = serde_json::from_str(l).unwrap();
            d.x.iter_mut().for_each(|v| *v /= 16.0);
            d
        })
        .collect()
}

#[test]
fn online_model_versions_feed_the_onnx_predict_operator() {
    versions_feed_predict(false);
}

/// A model trained with a scaler is exported with it: ONNX predictions equal the trainer's.
#[test]
fn a_model_trained_with_a_scaler_is_exported_with_it() {
    versions_feed_predict(true);
}

fn versions_feed_predict(scale: bool) {
    let data = digits();
    let predictions = Collector::new();
    let models = Collector::new();
    let (p_sink, m_sink) = (predictions.clone(), models.clone());
    let training = data.clone();
    execute(Config::threads(2), move |job| {
        let d = training.clone();
        let stream = job.generate(op("training").parallelism(1), Some(6000), move |k| {
            let digit = &d[k as usize % d.len()];
            LabeledPoint {
                x: digit.x.clone(),
                y: digit.y,
            }
        });
        let options = OnlineOptions {
            checkpoint_records: 2000,
            scale,
            ..OnlineOptions::default()
        };
        let trained = stream.learn_online(
            "train",
            SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
            |p| p,
            options,
        );
        trained
            .models
            .clone()
            .collect(op("versions").parallelism(1), &m_sink);
        let updates = trained.models.map("to_onnx", |c: Checkpoint| ModelUpdate {
            name: "online".into(),
            version: c.version,
            source: ModelSource::Bytes(c.to_onnx()),
            candidate: false,
        });
        let (scored, _dead) = job
            .from_vec(op("to_score").parallelism(2), training.clone())
            .predict(
                op("predict").parallelism(2),
                updates,
                |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
                PredictConfig::default(),
            );
        scored.collect(op("scored").parallelism(1), &p_sink);
        Ok(())
    })
    .unwrap();
    let models: HashMap<u64, Checkpoint> =
        models.take().into_iter().map(|c| (c.version, c)).collect();
    assert_eq!(models.len(), 3, "versions at 2000, 4000 and 6000 records");
    let predictions: Vec<Prediction<Digit>> = predictions.take();
    assert_eq!(predictions.len(), data.len(), "every record scored once");
    for p in &predictions {
        let model = &models[&p.model_version];
        assert_eq!(model.scaler.is_some(), scale);
        let want = model.probabilities(&p.record.x);
        for (got, want) in p.probabilities.iter().zip(&want) {
            assert!(
                (got - want).abs() < 1e-4,
                "record {}: {:?} vs {want:?}",
                p.record.id,
                p.probabilities
            );
        }
        let mut sorted = want.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 1e-4 {
            assert_eq!(
                p.label as usize,
                model.predict(&p.record.x),
                "record {}",
                p.record.id
            );
        }
    }
    // The scoring model learned something: the latest version is good on the digits.
    let best = predictions.iter().filter(|p| p.model_version == 3);
    let (n, right) = best.fold((0, 0), |(n, r), p| {
        (n + 1, r + (p.label as usize == p.record.y) as usize)
    });
    assert!(n == 0 || right as f64 / n as f64 > 0.9, "{right}/{n}");
}
