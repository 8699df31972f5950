//! The real ONNX Runtime: provisioning, model inspection, and scoring that matches Python's
//! onnxruntime on the committed digits fixtures.

use std::path::PathBuf;
use std::process::Command;

use ort::session::Session;
use ort::value::TensorRef;
use weir_onnx::{inspect, runtime, OnnxError};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[derive(serde::Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

#[derive(serde::Deserialize)]
struct Expected {
    id: u64,
    label: i64,
    probabilities: Vec<f32>,
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: PathBuf) -> Vec<T> {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn inspect_describes_inputs_outputs_opsets_and_metadata() {
    let info = inspect(fixtures().join("models/digits_logreg.onnx")).expect("model loads");
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(
        (info.inputs[0].name.as_str(), info.inputs[0].dtype.as_str()),
        ("input", "f32")
    );
    assert_eq!(info.inputs[0].shape, vec![-1, 64]);
    let outputs: Vec<(&str, &str)> = info
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.dtype.as_str()))
        .collect();
    assert_eq!(outputs, vec![("label", "i64"), ("probabilities", "f32")]);
    assert_eq!(info.outputs[1].shape, vec![-1, 10]);
    assert_eq!(info.opsets.get(""), Some(&17));
    assert!(info.opsets.contains_key("ai.onnx.ml"), "{:?}", info.opsets);
    assert_eq!(
        info.metadata.get("weir.version").map(String::as_str),
        Some("1")
    );
    assert!(info
        .producer
        .as_deref()
        .unwrap_or_default()
        .contains("skl2onnx"));
    let text = info.to_string();
    assert!(
        text.contains("probabilities") && text.contains("[N, 10]"),
        "{text}"
    );
}

#[test]
fn a_broken_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, b"not a model").unwrap();
    match inspect(&path) {
        Err(OnnxError::Model { model, .. }) => assert!(model.ends_with("broken.onnx")),
        other => panic!("expected a model error, got {other:?}"),
    }
}

#[test]
fn scoring_matches_python_onnxruntime_on_all_digits() {
    let digits: Vec<Digit> = read_jsonl(fixtures().join("data/digits.jsonl"));
    for model in ["digits_logreg", "digits_mlp256"] {
        let expected: Vec<Expected> =
            read_jsonl(fixtures().join(format!("data/{model}.expected.jsonl")));
        let mut session = Session::builder(runtime().unwrap().environment())
            .unwrap()
            .with_intra_threads(1)
            .unwrap()
            .commit_from_file(fixtures().join(format!("models/{model}.onnx")))
            .unwrap();
        let mut correct = 0;
        for (batch, want) in digits.chunks(256).zip(expected.chunks(256)) {
            let x: Vec<f32> = batch.iter().flat_map(|d| d.x.iter().copied()).collect();
            let input = TensorRef::from_array_view(([batch.len(), 64], &x[..])).unwrap();
            let out = session.run(ort::inputs!["input" => input]).unwrap();
            let (_, labels) = out["label"].try_extract_tensor::<i64>().unwrap();
            let (_, probabilities) = out["probabilities"].try_extract_tensor::<f32>().unwrap();
            for (i, (d, w)) in batch.iter().zip(want).enumerate() {
                assert_eq!(d.id, w.id);
                assert_eq!(labels[i], w.label, "{model}: record {}", d.id);
                for (c, p) in w.probabilities.iter().enumerate() {
                    let got = probabilities[i * w.probabilities.len() + c];
                    assert!(
                        (got - p).abs() <= 1e-6,
                        "{model}: record {} class {c}: {got} vs {p}",
                        d.id
                    );
                }
                correct += usize::from(labels[i] == d.y);
            }
        }
        assert!(
            correct as f64 / digits.len() as f64 > 0.95,
            "{model}: accuracy {correct}/{}",
            digits.len()
        );
    }
}

/// Run directly it checks the runtime is found; started by `a_missing_runtime_is_an_error_not_a_panic`
/// with a bad ORT_DYLIB_PATH, it reports the error it gets.
#[test]
fn runtime_child() {
    if std::env::var_os("WEIR_TEST_RUNTIME_CHILD").is_none() {
        let runtime = runtime().expect("ONNX Runtime is provisioned");
        assert!(runtime
            .library()
            .ends_with(weir_onnx::runtime::LIBRARY_FILE));
        return;
    }
    match runtime() {
        Ok(_) => std::process::exit(10),
        Err(e) => {
            println!("ERROR: {e}");
            std::process::exit(0);
        }
    }
}

#[test]
fn a_missing_runtime_is_an_error_not_a_panic() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "runtime_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("WEIR_TEST_RUNTIME_CHILD", "1")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "child: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so.1.31.1 is not a file")
            && stdout.contains("python3 -m pip install onnxruntime==1.31.1"),
        "{stdout}"
    );
}
