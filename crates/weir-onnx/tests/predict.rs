//! The predict operator in a real dataflow: same predictions as Python onnxruntime at any
//! parallelism, live model swaps tagged by version, bad inputs and bad models.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config, DeadLetter, EpochPolicy, JobReport};
use weir_onnx::{
    ModelSource, ModelUpdate, PredictConfig, PredictExt, Prediction, Serving, SwapPolicy,
    TensorPredictConfig, TensorSpec,
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

#[derive(Deserialize)]
struct Expected {
    id: u64,
    label: i64,
    probabilities: Vec<f32>,
}

fn expected(model: &str) -> HashMap<u64, Expected> {
    std::fs::read_to_string(fixtures().join(format!("data/{model}.expected.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Expected>(l).unwrap())
        .map(|e| (e.id, e))
        .collect()
}

fn model(version: u64, file: &str) -> ModelUpdate {
    ModelUpdate::from_path("digits", version, fixtures().join("models").join(file))
}

/// Scores the digits file with the given model updates (one per epoch of the model stream).
fn score(
    workers: usize,
    source_p: usize,
    p: usize,
    models: Vec<ModelUpdate>,
    epoch: u64,
) -> (Vec<Prediction<Digit>>, Vec<DeadLetter>) {
    let (predictions, dead, _) = score_with(
        serving(Serving::Primary),
        1,
        workers,
        source_p,
        p,
        models,
        epoch,
    );
    (predictions, dead)
}

/// The tests' operator configuration: batches of 64 and the given serving mode.
fn serving(serving: Serving) -> PredictConfig {
    PredictConfig {
        max_batch: 64,
        serving,
        ..PredictConfig::default()
    }
}

/// [`score`] with an operator configuration (routing key: the record id); also returns the
/// job report.
fn score_with(
    config: PredictConfig,
    models_per_epoch: u64,
    workers: usize,
    source_p: usize,
    p: usize,
    models: Vec<ModelUpdate>,
    epoch: u64,
) -> (Vec<Prediction<Digit>>, Vec<DeadLetter>, JobReport) {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    let predict_config = config;
    let config = Config::threads(workers).with_epochs(EpochPolicy::Records(epoch));
    let report = execute(config, move |job| {
        let digits = job.read_jsonl::<Digit>(
            op("digits").parallelism(source_p),
            fixtures().join("data/digits.jsonl"),
        );
        let updates = job.from_vec(
            op("models")
                .parallelism(1)
                .epochs(EpochPolicy::Records(models_per_epoch)),
            models.clone(),
        );
        let (scored, dead_letters) = digits.predict_with_key(
            op("predict").parallelism(p),
            updates,
            |d: &Digit| d.id,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            predict_config.clone(),
        );
        scored.collect(op("out").parallelism(1), &o);
        dead_letters.collect(op("dead").parallelism(1), &d);
        Ok(())
    })
    .unwrap();
    (out.take(), dead.take(), report)
}

fn check_against(model: &str, predictions: &[Prediction<Digit>]) {
    let want = expected(model);
    for p in predictions {
        let w = &want[&p.record.id];
        assert_eq!(p.label, w.label, "{model}: record {}", p.record.id);
        for (got, exp) in p.probabilities.iter().zip(&w.probabilities) {
            assert!(
                (got - exp).abs() <= 1e-6,
                "{model}: record {}: {got} vs {exp}",
                p.record.id
            );
        }
    }
}

#[test]
fn predictions_equal_python_onnxruntime_at_parallelism_1_and_2() {
    for (workers, p) in [(1, 1), (2, 1), (2, 2)] {
        let (predictions, dead) = score(workers, p, p, vec![model(1, "digits_logreg.onnx")], 4096);
        assert!(dead.is_empty(), "{dead:?}");
        assert_eq!(predictions.len(), 1797, "-w {workers} p={p}");
        let mut ids: Vec<u64> = predictions.iter().map(|p| p.record.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1797, "no duplicates");
        assert!(predictions
            .iter()
            .all(|p| p.model_version == 1 && p.probabilities.len() == 10));
        check_against("digits_logreg", &predictions);
    }
}

#[test]
fn a_live_model_swap_applies_from_its_epoch_and_tags_every_prediction() {
    // v1 at epoch 0, v2 at epoch 1; the digits come in 200-record epochs from one source
    // instance and are scored by two.
    let (predictions, dead) = score(
        2,
        1,
        2,
        vec![
            model(1, "digits_logreg.onnx"),
            model(2, "digits_logreg_v2.onnx"),
        ],
        200,
    );
    assert!(dead.is_empty());
    assert_eq!(predictions.len(), 1797);
    let (v1, v2): (Vec<_>, Vec<_>) = predictions.into_iter().partition(|p| p.model_version == 1);
    assert!(
        v1.iter().all(|p| p.record.id < 200),
        "epoch 0 only is scored by v1"
    );
    assert_eq!(v1.len(), 200);
    assert_eq!(v2.len(), 1597);
    check_against("digits_logreg", &v1);
    check_against("digits_logreg_v2", &v2);
}

#[test]
fn with_swap_when_loaded_the_old_model_serves_until_the_new_one_is_ready() {
    // No stall at the swap: where v2 takes over depends on timing, but every record is
    // scored once, by v1 or v2, and each version's predictions match Python's.
    let config = PredictConfig {
        swap: SwapPolicy::WhenLoaded,
        ..serving(Serving::Primary)
    };
    let models = vec![
        model(1, "digits_logreg.onnx"),
        model(2, "digits_logreg_v2.onnx"),
    ];
    let (predictions, dead, report) = score_with(config, 1, 2, 1, 2, models, 200);
    assert!(dead.is_empty());
    let mut ids: Vec<u64> = predictions.iter().map(|p| p.record.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..1797).collect::<Vec<_>>(),
        "none lost or duplicated"
    );
    let (v1, v2): (Vec<_>, Vec<_>) = predictions.into_iter().partition(|p| p.model_version == 1);
    assert!(!v2.is_empty(), "v2 never took over");
    check_against("digits_logreg", &v1);
    check_against("digits_logreg_v2", &v2);
    // The report names the operator's kind as the user wrote it, not what it is built on.
    assert_eq!(report.operator("predict").unwrap().kind, "predict");
    let counters = &report.operator("predict").unwrap().counters;
    assert_eq!(
        counters["models_loaded"], 4,
        "two versions on two instances"
    );
}

#[test]
fn a_broken_model_update_is_rejected_and_the_old_model_keeps_serving() {
    let broken = ModelUpdate {
        name: "digits".into(),
        version: 2,
        source: ModelSource::Bytes(b"garbage".to_vec()),
        candidate: false,
    };
    // Loads, and its outputs fit, but it takes 13 features.
    let wrong_shape = model(3, "wine_logreg.onnx");
    let (predictions, dead) = score(
        1,
        1,
        1,
        vec![model(1, "digits_logreg.onnx"), broken, wrong_shape],
        200,
    );
    // The wine model loads fine (its outputs match), so from its epoch on every digit has the
    // wrong feature count for it and becomes a dead letter that says so.
    let v1: Vec<_> = predictions
        .iter()
        .filter(|p| p.model_version == 1)
        .collect();
    assert!(!v1.is_empty());
    assert!(
        predictions.iter().all(|p| p.model_version == 1),
        "the broken v2 never served"
    );
    assert_eq!(predictions.len() + dead.len(), 1797);
    assert!(
        dead.iter().all(|d| d.reason
            == "input `input`: expected an item of shape [13] (13 values), got 64 values"
            && d.location == "model v3"),
        "{:?}",
        &dead[..1]
    );
}

#[test]
fn bad_feature_vectors_become_dead_letters_and_the_rest_is_scored() {
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    execute(Config::threads(1), move |job| {
        let mut rows: Vec<Digit> = (0..10)
            .map(|id| Digit {
                id,
                x: vec![1.0; 64],
                y: 0,
            })
            .collect();
        rows[3].x.pop();
        rows[7].x[5] = f32::NAN;
        let digits = job.from_vec("rows", rows);
        let models = job.from_vec("models", vec![model(1, "digits_logreg.onnx")]);
        let (scored, dead_letters) = digits.predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        scored.collect("out", &o);
        dead_letters.collect("dead", &d);
        Ok(())
    })
    .unwrap();
    let scored: Vec<u64> = out
        .take()
        .into_iter()
        .map(|p: Prediction<Digit>| p.record.id)
        .collect();
    assert_eq!(scored.len(), 8);
    let mut dead = dead.take();
    dead.sort_by_key(|d| d.reason.clone());
    assert_eq!(dead.len(), 2);
    assert_eq!(
        dead[0].reason,
        "input `input`: expected an item of shape [64] (64 values), got 63 values"
    );
    assert_eq!(dead[1].reason, "input `input`: value 5 is NaN");
    assert!(dead.iter().all(|d| d.operator == "predict"));
}

const CHILD_ENV: &str = "WEIR_TEST_PREDICT_CHILD";
const CHILD_OUT: &str = "WEIR_TEST_PREDICT_OUT";

/// One process of `two_processes_predict_like_python`; run directly, it scores in-process.
#[test]
fn predict_child() {
    let config = match std::env::var(CHILD_ENV) {
        Ok(args) => Config::from_args(
            std::iter::once("child".to_string()).chain(args.split(' ').map(String::from)),
        )
        .unwrap()
        .with_verbose(false),
        Err(_) => Config::threads(2),
    };
    let process = config.process_index();
    let out = Collector::new();
    let o = out.clone();
    execute(config, move |job| {
        let digits = job.read_jsonl::<Digit>("digits", fixtures().join("data/digits.jsonl"));
        let models = job.from_vec(
            op("models").parallelism(1),
            vec![model(1, "digits_mlp256.onnx")],
        );
        let (scored, _) = digits.predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        scored.collect(op("out").parallelism(1), &o);
        Ok(())
    })
    .unwrap();
    if process == 0 {
        let predictions = out.take();
        assert_eq!(predictions.len(), 1797);
        check_against("digits_mlp256", &predictions);
        if let Ok(path) = std::env::var(CHILD_OUT) {
            std::fs::write(path, predictions.len().to_string()).unwrap();
        }
    }
}

#[test]
fn two_processes_predict_like_python() {
    let dir = tempfile::tempdir().unwrap();
    // Listeners bound here and inherited by the processes: no port race.
    let cluster = weir_core::LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let done = dir.path().join("done");
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            {
                let mut command = std::process::Command::new(std::env::current_exe().unwrap());
                cluster.pass_listener(p, &mut command);
                command
                    .args([
                        "--exact",
                        "predict_child",
                        "--nocapture",
                        "--test-threads",
                        "1",
                    ])
                    .env(
                        CHILD_ENV,
                        format!("-w 1 -n 2 -p {p} -h {}", hosts.display()),
                    )
                    .env(CHILD_OUT, &done)
                    .spawn()
            }
            .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for child in &mut children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a process failed: {status}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the 2-process job hung"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert_eq!(std::fs::read_to_string(done).unwrap(), "1797");
}

#[test]
fn a_b_split_routes_a_deterministic_share_of_keys_to_the_candidate() {
    let models = vec![
        model(1, "digits_logreg.onnx"),
        model(2, "digits_logreg_v2.onnx").as_candidate(),
    ];
    // Both models arrive in epoch 0, with the digits.
    let run = || {
        score_with(
            serving(Serving::Split {
                candidate_fraction: 0.3,
            }),
            2,
            2,
            1,
            2,
            models.clone(),
            4096,
        )
    };
    let (first, dead, report) = run();
    assert!(dead.is_empty());
    assert_eq!(first.len(), 1797);
    let on_candidate = first.iter().filter(|p| p.model_version == 2).count() as f64 / 1797.0;
    assert!(
        (on_candidate - 0.3).abs() < 0.05,
        "candidate share {on_candidate}"
    );
    let counters = &report.operator("predict").unwrap().counters;
    assert_eq!(counters["v1"] + counters["v2"], 1797);
    assert_eq!(
        counters["v2"],
        first.iter().filter(|p| p.model_version == 2).count() as u64
    );
    // Deterministic by key: a second run routes every id the same way.
    let version_of = |ps: &[Prediction<Digit>]| {
        let mut v: Vec<(u64, u64)> = ps.iter().map(|p| (p.record.id, p.model_version)).collect();
        v.sort();
        v
    };
    let (second, _, _) = run();
    assert_eq!(version_of(&first), version_of(&second));
    check_against(
        "digits_logreg",
        &first
            .iter()
            .filter(|p| p.model_version == 1)
            .cloned()
            .collect::<Vec<_>>(),
    );
    check_against(
        "digits_logreg_v2",
        &first
            .iter()
            .filter(|p| p.model_version == 2)
            .cloned()
            .collect::<Vec<_>>(),
    );
}

#[test]
fn shadow_mode_emits_the_primary_and_counts_agreement_with_the_candidate() {
    let models = vec![
        model(1, "digits_logreg.onnx"),
        model(2, "digits_logreg_v2.onnx").as_candidate(),
    ];
    let (predictions, _, report) = score_with(serving(Serving::Shadow), 2, 2, 1, 2, models, 4096);
    assert_eq!(predictions.len(), 1797);
    assert!(predictions.iter().all(|p| p.model_version == 1));
    let (v1, v2) = (expected("digits_logreg"), expected("digits_logreg_v2"));
    let disagree = v1.iter().filter(|(id, e)| v2[id].label != e.label).count() as u64;
    let counters = &report.operator("predict").unwrap().counters;
    assert_eq!(counters["shadow_disagree"], disagree);
    assert_eq!(counters["shadow_agree"], 1797 - disagree);
    assert_eq!(counters["v1"], 1797);
}

#[test]
fn a_watched_model_directory_swaps_in_a_new_version_mid_stream() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use weir_onnx::{ModelWatch, ModelWatchExt};

    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("digits/1")).unwrap();
    std::fs::copy(
        fixtures().join("models/digits_logreg.onnx"),
        models.join("digits/1/model.onnx"),
    )
    .unwrap();
    // Version 2 is prepared elsewhere and renamed in once records are flowing.
    std::fs::create_dir_all(dir.path().join("staging/2")).unwrap();
    std::fs::copy(
        fixtures().join("models/digits_logreg_v2.onnx"),
        dir.path().join("staging/2/model.onnx"),
    )
    .unwrap();
    let scored = Arc::new(AtomicU64::new(0));
    let placer = {
        let (scored, from, to) = (
            scored.clone(),
            dir.path().join("staging/2"),
            models.join("digits/2"),
        );
        std::thread::spawn(move || {
            while scored.load(Ordering::Relaxed) < 300 {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::fs::rename(from, to).unwrap();
        })
    };
    let out = Collector::new();
    let o = out.clone();
    let epochs = Duration::from_millis(20);
    let watch = ModelWatch::new(&models)
        .poll(Duration::from_millis(10))
        .epochs(epochs)
        .stop_after_versions(2)
        .idle_timeout(Duration::from_secs(30));
    let report = execute(Config::threads(2), move |job| {
        let digits = job.read_jsonl::<Digit>(
            op("digits")
                .parallelism(1)
                .rate(2_000.0)
                .epochs(EpochPolicy::Interval(epochs)),
            fixtures().join("data/digits.jsonl"),
        );
        let updates = job.watch_models("watch", watch.clone());
        let (predictions, _) = digits.predict(
            "predict",
            updates,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        let counter = scored.clone();
        predictions
            .inspect("count", move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .collect(op("out").parallelism(1), &o);
        Ok(())
    })
    .unwrap();
    placer.join().unwrap();
    let predictions = out.take();
    assert_eq!(predictions.len(), 1797);
    let (v1, v2): (Vec<_>, Vec<_>) = predictions.into_iter().partition(|p| p.model_version == 1);
    assert!(v1.len() >= 300, "v1 scored {} before the swap", v1.len());
    assert!(!v2.is_empty(), "v2 never served");
    check_against("digits_logreg", &v1);
    check_against("digits_logreg_v2", &v2);
    let counters = &report.operator("predict").unwrap().counters;
    assert_eq!(counters["v1"] as usize, v1.len());
    assert_eq!(counters["v2"] as usize, v2.len());
}

/// A record for the two-input model: `a` (3 doubles) and `b` (int64s, 2 expected).
type Mixed = (u64, Vec<f64>, Vec<i64>);

#[test]
fn models_with_several_typed_inputs_and_outputs_score_through_predict_tensors() {
    // mixed_types.onnx: a f64 [N,3], b i64 [N,2] -> total f64 [N] = sum(a) + sum(b),
    // scaled f64 [N,3] = 2a, count i64 [N,1] = sum(b). The reference is plain arithmetic.
    let mut records: Vec<Mixed> = (0..500u64)
        .map(|i| {
            let f = i as f64;
            (i, vec![f, f * 0.5, -f], vec![i as i64, 7])
        })
        .collect();
    records.push((500, vec![1.0, f64::INFINITY, 0.0], vec![1, 2]));
    records.push((501, vec![1.0, 2.0, 3.0], vec![1, 2, 3]));
    for (workers, p) in [(1, 1), (2, 2)] {
        let out = Collector::new();
        let dead = Collector::new();
        let (o, d) = (out.clone(), dead.clone());
        let data = records.clone();
        execute(
            Config::threads(workers).with_epochs(EpochPolicy::Records(100)),
            move |job| {
                let models = job.from_vec(
                    op("models").parallelism(1),
                    vec![ModelUpdate::from_path(
                        "mixed",
                        7,
                        fixtures().join("models/mixed_types.onnx"),
                    )],
                );
                let config = TensorPredictConfig {
                    inputs: vec![TensorSpec::f64("a"), TensorSpec::i64("b")],
                    outputs: vec![
                        TensorSpec::f64("total"),
                        TensorSpec::f64("scaled"),
                        TensorSpec::i64("count"),
                    ],
                    max_batch: 64,
                    ..TensorPredictConfig::default()
                };
                let (scored, dead_letters) = job
                    .from_vec(op("records").parallelism(1), data.clone())
                    .predict_tensors(
                        op("score").parallelism(p),
                        models,
                        |r: &Mixed| r.0,
                        |(_, a, b): &Mixed, rows| {
                            rows.f64(0).extend_from_slice(a);
                            rows.i64(1).extend_from_slice(b);
                        },
                        |(id, _, _): Mixed, out| {
                            (
                                id,
                                out.f64(0).to_vec(),
                                out.f64(1).to_vec(),
                                out.i64(2).to_vec(),
                                out.model_version(),
                            )
                        },
                        config,
                    );
                scored.collect(op("out").parallelism(1), &o);
                dead_letters.collect(op("dead").parallelism(1), &d);
                Ok(())
            },
        )
        .unwrap();
        let mut scored = out.take();
        scored.sort_by_key(|s| s.0);
        assert_eq!(
            scored.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..500).collect::<Vec<_>>()
        );
        assert_eq!(scored.len(), 500, "-w {workers} p={p}");
        for (id, total, scaled, count, version) in scored {
            let (_, a, b) = &records[id as usize];
            let sum_b: i64 = b.iter().sum();
            assert_eq!(
                total,
                vec![a.iter().sum::<f64>() + sum_b as f64],
                "record {id}"
            );
            assert_eq!(scaled, a.iter().map(|v| v * 2.0).collect::<Vec<_>>());
            assert_eq!(count, vec![sum_b]);
            assert_eq!(version, 7);
        }
        let mut dead = dead.take();
        dead.sort_by_key(|d| d.reason.clone());
        let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                "input `a`: value 1 is inf",
                "input `b`: expected an item of shape [2] (2 values), got 3 values"
            ]
        );
    }
}

#[test]
fn a_model_whose_input_types_do_not_match_is_rejected() {
    // The digits classifier fed as if its input were f64: rejected at load, so with no
    // other model the records are dead letters at the end.
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    let report = execute(Config::threads(1), move |job| {
        let models = job.from_vec("models", vec![model(1, "digits_logreg.onnx")]);
        let (scored, dead_letters) = job
            .from_vec("records", vec![vec![0.0f64; 64]])
            .predict_tensors(
                "score",
                models,
                |_| 0,
                |x: &Vec<f64>, rows| rows.f64(0).extend_from_slice(x),
                |_, out| out.i64(0)[0],
                TensorPredictConfig {
                    inputs: vec![TensorSpec::f64("input")],
                    outputs: vec![TensorSpec::i64("label")],
                    ..PredictConfig::default().tensors()
                },
            );
        scored.collect("out", &o);
        dead_letters.collect("dead", &d);
        Ok(())
    })
    .unwrap();
    assert!(out.take().is_empty());
    assert_eq!(dead.take().len(), 1);
    assert_eq!(
        report.operator("score").unwrap().counters["models_rejected"],
        1
    );
}
