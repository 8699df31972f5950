//! The predict operator with models nobody on the project wrote the operator for: an image
//! CNN (`[N, 1, 8, 8]`), a scikit-learn pipeline exported with skl2onnx's defaults (ZipMap,
//! string labels), a text model over int32 token ids of any length, every element type, a
//! fixed batch of 6, inputs that are not per record, NaN policies and whole-run batching.
//! Each is checked against Python onnxruntime's outputs (fixtures from
//! `scripts/make_typed_models.py`) or a plain sequential reference, at parallelism 1 and 2.

use std::collections::HashMap;
use std::path::PathBuf;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config, DataStream, DeadLetter, EpochPolicy};
use weir_onnx::{
    Batching, InputRows, ModelUpdate, OutputRow, PredictExt, Tensor, TensorData,
    TensorPredictConfig, TensorSpec, Value,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn lines<T: for<'a> Deserialize<'a>>(file: &str) -> Vec<T> {
    std::fs::read_to_string(fixtures().join("data").join(file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn model(file: &str) -> ModelUpdate {
    ModelUpdate::from_path(file, 1, fixtures().join("models").join(file))
}

/// Runs `records` through `predict_tensors` with `config` at operator parallelism `p` (2
/// workers, epochs of `epoch` records); returns the outputs sorted and the dead letters.
fn run<T, U>(
    records: Vec<T>,
    file: &str,
    p: usize,
    epoch: u64,
    features: fn(&T, &mut InputRows),
    attach: fn(T, &OutputRow<'_>) -> U,
    config: TensorPredictConfig,
) -> (Vec<U>, Vec<DeadLetter>)
where
    T: weir_core::Data + Sync,
    U: weir_core::Data + Ord,
{
    let out = Collector::new();
    let dead = Collector::new();
    let (o, d) = (out.clone(), dead.clone());
    let update = model(file);
    execute(Config::threads(2), move |job| {
        let models = job.from_vec(op("models").parallelism(1), vec![update.clone()]);
        let records: DataStream<'_, T> = job.from_vec(
            op("records").epochs(EpochPolicy::Records(epoch)),
            records.clone(),
        );
        let (scored, dead_letters) = records.predict_tensors(
            op("predict").parallelism(p),
            models,
            |_| 0,
            features,
            attach,
            config.clone(),
        );
        scored.collect("out", &o);
        dead_letters.collect("dead", &d);
        Ok(())
    })
    .unwrap();
    let mut out = out.take();
    out.sort();
    (out, dead.take())
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

#[test]
fn an_image_cnn_scores_records_as_1x8x8_items_like_python() {
    let digits: Vec<Digit> = lines("digits.jsonl");
    let expected: HashMap<u64, Expected> = lines::<Expected>("digits_cnn.expected.jsonl")
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let config = TensorPredictConfig {
        inputs: vec![TensorSpec::f32("image")],
        outputs: vec![
            TensorSpec::i64("label").with_width(1),
            TensorSpec::f32("probabilities"),
        ],
        max_batch: 32,
        ..TensorPredictConfig::default()
    };
    for p in [1, 2] {
        let (out, dead) = run(
            digits.clone(),
            "digits_cnn.onnx",
            p,
            500,
            |d: &Digit, rows| rows.f32(0).extend_from_slice(&d.x),
            |d, out| {
                assert_eq!(out.shape(1), &[10]);
                let p: Vec<u32> = out.f32(1).iter().map(|v| v.to_bits()).collect();
                (d.id, out.i64(0)[0], p)
            },
            config.clone(),
        );
        assert!(dead.is_empty(), "{dead:?}");
        assert_eq!(out.len(), 1797);
        for (id, label, p) in out {
            let e = &expected[&id];
            assert_eq!(label, e.label, "digit {id} at parallelism {p:?}");
            for (got, want) in p.iter().zip(&e.probabilities) {
                assert!((f32::from_bits(*got) - want).abs() < 1e-5, "digit {id}");
            }
        }
    }
}

#[test]
fn an_item_of_the_wrong_shape_is_a_dead_letter_naming_input_and_shapes() {
    let digits: Vec<Digit> = lines::<Digit>("digits.jsonl")
        .into_iter()
        .take(10)
        .collect();
    let (out, dead) = run(
        digits,
        "digits_cnn.onnx",
        1,
        10,
        |d: &Digit, rows| {
            if d.id == 3 {
                rows.f32(0).extend_from_slice(&d.x[..56]);
                rows.set_shape(0, &[1, 7, 8]);
            } else if d.id == 4 {
                rows.f32(0).extend_from_slice(&d.x[..60]);
            } else {
                rows.f32(0).extend_from_slice(&d.x);
            }
        },
        |d, out| (d.id, out.i64(0)[0]),
        TensorPredictConfig {
            inputs: vec![TensorSpec::f32("image")],
            outputs: vec![TensorSpec::i64("label")],
            ..TensorPredictConfig::default()
        },
    );
    assert_eq!(out.len(), 8);
    let mut reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "input `image`: expected an item of shape [1, 8, 8] (64 values), got 60 values",
            "input `image`: expected an item of shape [1, 8, 8], got [1, 7, 8]",
        ]
    );
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Wine {
    id: u64,
    x: Vec<f32>,
    y: String,
}

#[derive(Deserialize)]
struct ExpectedWine {
    id: u64,
    label: String,
    probabilities: HashMap<String, f32>,
}

#[test]
fn a_scikit_learn_pipeline_with_zipmap_and_string_labels_scores_like_python() {
    let wines: Vec<Wine> = lines("wine.jsonl");
    let expected: HashMap<u64, ExpectedWine> = lines::<ExpectedWine>("wine_zipmap.expected.jsonl")
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    for p in [1, 2] {
        let (out, dead) = run(
            wines.clone(),
            "wine_zipmap.onnx",
            p,
            50,
            |w: &Wine, rows| rows.f32(0).extend_from_slice(&w.x),
            |w, out| {
                let map = out.map(1).expect("a ZipMap per record").clone();
                let probabilities: Vec<(String, u32)> = ["barbera", "barolo", "grignolino"]
                    .iter()
                    .map(|k| (k.to_string(), (map.get_str(k).unwrap() as f32).to_bits()))
                    .collect();
                (w.id, out.string(0)[0].clone(), probabilities)
            },
            TensorPredictConfig {
                inputs: vec![TensorSpec::f32("X")],
                outputs: vec![
                    TensorSpec::string("output_label").with_width(1),
                    TensorSpec::any("output_probability"),
                ],
                max_batch: 16,
                ..TensorPredictConfig::default()
            },
        );
        assert!(dead.is_empty(), "{dead:?}");
        assert_eq!(out.len(), 178);
        for (id, label, probabilities) in out {
            let e = &expected[&id];
            assert_eq!(label, e.label, "wine {id}");
            for (class, bits) in probabilities {
                assert!((f32::from_bits(bits) - e.probabilities[&class]).abs() < 1e-5);
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Text {
    id: u64,
    tokens: Vec<i32>,
}

#[derive(Deserialize)]
struct TextLine {
    id: u64,
    text: String,
}

#[derive(Deserialize)]
struct Vocabulary {
    vocabulary: Vec<String>,
}

fn texts() -> Vec<Text> {
    let vocab: Vocabulary = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("data/text_vocab.json")).unwrap(),
    )
    .unwrap();
    let index: HashMap<&str, i32> = vocab
        .vocabulary
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as i32))
        .collect();
    lines::<TextLine>("text.jsonl")
        .into_iter()
        .map(|l| Text {
            id: l.id,
            tokens: l
                .text
                .split_whitespace()
                .map(|w| *index.get(w).unwrap_or(&1))
                .collect(),
        })
        .collect()
}

#[test]
fn a_text_model_over_int32_tokens_of_any_length_scores_like_python_at_any_batch_size() {
    let expected: HashMap<u64, Expected> = lines::<Expected>("text_bow.expected.jsonl")
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let mut previous = None;
    for (p, max_batch) in [(1, 1), (2, 64), (1, 7)] {
        let (out, dead) = run(
            texts(),
            "text_bow.onnx",
            p,
            100,
            // `[N, L]`: the one open dimension (L) follows from the number of tokens.
            |t: &Text, rows| rows.i32(0).extend_from_slice(&t.tokens),
            |t, out| (t.id, out.i64(0)[0], out.shape(1).to_vec()),
            TensorPredictConfig {
                inputs: vec![TensorSpec::i32("tokens")],
                outputs: vec![TensorSpec::i64("label"), TensorSpec::f32("probabilities")],
                max_batch,
                ..TensorPredictConfig::default()
            },
        );
        assert!(dead.is_empty(), "{dead:?}");
        assert_eq!(out.len(), 300);
        for (id, label, shape) in &out {
            assert_eq!(*label, expected[id].label, "text {id}");
            assert_eq!(shape, &[3]);
        }
        if let Some(previous) = &previous {
            assert_eq!(previous, &out, "results depend on the batch size");
        }
        previous = Some(out);
    }
}

/// One record of every element type: two values each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Typed {
    id: u64,
    values: Vec<Tensor>,
}

const TYPES: [&str; 14] = [
    "f32", "f64", "f16", "bf16", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "bool",
    "string",
];

fn typed(id: u64) -> Typed {
    let i = id as i64;
    let data = [
        TensorData::F32(vec![i as f32 + 0.5, -1.25]),
        TensorData::F64(vec![i as f64 * 1e-3, 1e300]),
        TensorData::F16(vec![f16::from_f32(i as f32), f16::from_f32(0.5)]),
        TensorData::BF16(vec![bf16::from_f32(-(i as f32)), bf16::from_f32(2.0)]),
        TensorData::I8(vec![-(i as i8), i8::MIN]),
        TensorData::I16(vec![i as i16, i16::MAX]),
        TensorData::I32(vec![-(i as i32), i32::MIN]),
        TensorData::I64(vec![i, i64::MAX]),
        TensorData::U8(vec![i as u8, u8::MAX]),
        TensorData::U16(vec![i as u16, u16::MAX]),
        TensorData::U32(vec![i as u32, u32::MAX]),
        TensorData::U64(vec![i as u64, u64::MAX]),
        TensorData::Bool(vec![id % 2 == 0, true]),
        TensorData::String(vec![format!("record {id}"), "ü".into()]),
    ];
    Typed {
        id,
        values: data
            .into_iter()
            .map(|d| Tensor::new(vec![2], d).unwrap())
            .collect(),
    }
}

#[test]
fn every_element_type_goes_in_and_comes_back_unchanged() {
    let records: Vec<Typed> = (0..50).map(typed).collect();
    for p in [1, 2] {
        let (out, dead) = run(
            records.clone(),
            "all_types.onnx",
            p,
            20,
            |r: &Typed, rows| {
                for (i, t) in r.values.iter().enumerate() {
                    rows.push(i, t);
                }
            },
            |r, out| {
                let back: Vec<Value> = out.values();
                let same = back
                    .iter()
                    .zip(&r.values)
                    .all(|(b, t)| b == &Value::Tensor(t.clone()));
                (r.id, same)
            },
            TensorPredictConfig {
                inputs: TYPES
                    .iter()
                    .map(|t| TensorSpec::any(format!("x_{t}")))
                    .collect(),
                outputs: TYPES
                    .iter()
                    .map(|t| TensorSpec::any(format!("y_{t}")))
                    .collect(),
                max_batch: 8,
                ..TensorPredictConfig::default()
            },
        );
        assert!(dead.is_empty(), "{dead:?}");
        assert_eq!(out, (0..50).map(|id| (id, true)).collect::<Vec<_>>());
    }
}

#[test]
fn a_value_of_the_wrong_type_is_a_dead_letter() {
    let (out, dead) = run(
        vec![typed(1)],
        "all_types.onnx",
        1,
        1,
        |r: &Typed, rows| {
            // Every input gets the f32 tensor: the second input wants f64.
            for i in 0..TYPES.len() {
                rows.push(i, &r.values[0]);
            }
        },
        |r, _| r.id,
        TensorPredictConfig {
            inputs: TYPES
                .iter()
                .map(|t| TensorSpec::any(format!("x_{t}")))
                .collect(),
            outputs: vec![TensorSpec::any("y_f32")],
            ..TensorPredictConfig::default()
        },
    );
    assert!(out.is_empty());
    assert_eq!(dead[0].reason, "input 1: expected f64 values, got f32");
}

#[test]
fn a_fixed_batch_of_6_is_padded_and_the_padded_rows_dropped() {
    let records: Vec<(u64, Vec<f32>)> = (0..20)
        .map(|i| (i, vec![i as f32, 1.0, 2.0 * i as f32]))
        .collect();
    for (p, epoch) in [(1, 20), (2, 7), (1, 1)] {
        let (out, dead) = run(
            records.clone(),
            "fixed_batch_6.onnx",
            p,
            epoch,
            |r: &(u64, Vec<f32>), rows| rows.f32(0).extend_from_slice(&r.1),
            |r, out| (r.0, out.f32(0)[0] as i64),
            TensorPredictConfig {
                inputs: vec![TensorSpec::f32("x")],
                outputs: vec![TensorSpec::f32("sum")],
                max_batch: 64,
                ..TensorPredictConfig::default()
            },
        );
        assert!(dead.is_empty(), "{dead:?}");
        let want: Vec<(u64, i64)> = (0..20).map(|i| (i, 3 * i as i64 + 1)).collect();
        assert_eq!(out, want, "parallelism {p}, epochs of {epoch}");
    }
}

fn scaled_config(constants: Vec<(String, Tensor)>) -> TensorPredictConfig {
    TensorPredictConfig {
        inputs: vec![TensorSpec::f32("x")],
        outputs: vec![TensorSpec::f32("y"), TensorSpec::bool("above")],
        constants,
        ..TensorPredictConfig::default()
    }
}

fn scalar(v: f32) -> Tensor {
    Tensor::f32(vec![], vec![v]).unwrap()
}

type Scaled = (u64, Vec<u32>, Vec<bool>);

fn scaled_run(
    records: Vec<(u64, Vec<f32>)>,
    config: TensorPredictConfig,
) -> (Vec<Scaled>, Vec<DeadLetter>) {
    run(
        records,
        "scaled.onnx",
        2,
        4,
        |r: &(u64, Vec<f32>), rows| rows.f32(0).extend_from_slice(&r.1),
        |r, out| {
            let y = out.f32(0).iter().map(|v| v.to_bits()).collect();
            (r.0, y, out.bool(1).to_vec())
        },
        config,
    )
}

#[test]
fn inputs_that_are_not_per_record_are_given_once_as_constants() {
    let records: Vec<(u64, Vec<f32>)> = (0..10).map(|i| (i, vec![i as f32, 1.0, -2.0])).collect();
    let constants = vec![
        ("scale".into(), scalar(3.0)),
        ("threshold".into(), scalar(10.0)),
    ];
    let (out, dead) = scaled_run(records.clone(), scaled_config(constants));
    assert!(dead.is_empty(), "{dead:?}");
    for (id, y, above) in out {
        let want = [id as f32 * 3.0, 3.0, -6.0];
        let y: Vec<f32> = y.into_iter().map(f32::from_bits).collect();
        assert_eq!(y, want);
        assert_eq!(above, want.map(|v| v > 10.0).to_vec());
    }
    // Without them the model is rejected, saying what to do.
    let (out, dead) = scaled_run(records, scaled_config(vec![]));
    assert!(out.is_empty());
    assert!(
        dead[0].reason.ends_with(
            "the model's inputs `scale`, `threshold` are not fed by the operator (it feeds `x`)"
        ),
        "{}",
        dead[0].reason
    );
}

#[test]
fn nan_is_rejected_by_default_and_fed_where_the_input_allows_it() {
    let records = vec![(0u64, vec![f32::NAN, 1.0, 2.0]), (1, vec![1.0, 2.0, 3.0])];
    let constants = || {
        vec![
            ("scale".into(), scalar(1.0)),
            ("threshold".into(), scalar(0.0)),
        ]
    };
    let (out, dead) = scaled_run(records.clone(), scaled_config(constants()));
    assert_eq!(out.len(), 1);
    assert_eq!(dead[0].reason, "input `x`: value 0 is NaN");
    let mut config = scaled_config(constants());
    config.inputs = vec![TensorSpec::f32("x").allow_nan()];
    let (out, dead) = scaled_run(records, config);
    assert!(dead.is_empty());
    assert!(f32::from_bits(out[0].1[0]).is_nan());
    assert_eq!(out[0].2, [false, true, true]);
}

#[test]
fn whole_run_records_feed_full_tensors_and_get_full_outputs() {
    // Each record is a batch of its own, of any number of rows.
    let records: Vec<(u64, Tensor)> = (1..6u64)
        .map(|n| {
            let values = (0..n * 3).map(|v| v as f32).collect();
            (n, Tensor::f32(vec![n as usize, 3], values).unwrap())
        })
        .collect();
    let mut config = scaled_config(vec![
        ("scale".into(), scalar(2.0)),
        ("threshold".into(), scalar(4.0)),
    ]);
    config.batching = Batching::Whole;
    let (out, dead) = run(
        records,
        "scaled.onnx",
        2,
        2,
        |r: &(u64, Tensor), rows| rows.push(0, &r.1),
        |r, out| (r.0, out.shape(0).to_vec(), out.f32(0).len()),
        config,
    );
    assert!(dead.is_empty(), "{dead:?}");
    let want: Vec<(u64, Vec<usize>, usize)> = (1..6u64)
        .map(|n| (n, vec![n as usize, 3], 3 * n as usize))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn an_optimised_model_cache_is_written_once_and_then_read_with_the_same_results() {
    use weir_onnx::{GraphOptimization, SessionOptions};
    let cache = tempfile::tempdir().unwrap();
    let digits: Vec<Digit> = lines::<Digit>("digits.jsonl")
        .into_iter()
        .take(200)
        .collect();
    let config = TensorPredictConfig {
        inputs: vec![TensorSpec::f32("image")],
        outputs: vec![TensorSpec::i64("label")],
        session: SessionOptions {
            optimization: GraphOptimization::All,
            optimized_model_cache: Some(cache.path().to_path_buf()),
            inter_threads: Some(1),
            ..SessionOptions::default()
        },
        ..TensorPredictConfig::default()
    };
    let score = || {
        run(
            digits.clone(),
            "digits_cnn.onnx",
            2,
            50,
            |d: &Digit, rows| rows.f32(0).extend_from_slice(&d.x),
            |d, out| (d.id, out.i64(0)[0]),
            config.clone(),
        )
    };
    let (first, dead) = score();
    assert!(dead.is_empty(), "{dead:?}");
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".onnx"), "{cached:?}");
    let (second, dead) = score();
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(first, second);
    let expected: HashMap<u64, Expected> = lines::<Expected>("digits_cnn.expected.jsonl")
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    assert!(second
        .iter()
        .all(|(id, label)| expected[id].label == *label));
}
