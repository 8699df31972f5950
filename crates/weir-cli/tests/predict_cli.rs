//! `weir predict` on real model kinds: JSON Lines and TensorFlow Serving request files in,
//! one JSON line per record out (equal to Python onnxruntime's outputs at any worker count),
//! bad lines as dead letters, constants, whole runs, and the summary line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Runs `weir predict` with `args`; returns the summary line (or stderr on failure).
fn predict(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("predict")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(stdout.lines().last().unwrap()).unwrap())
}

/// Every output line of directory `out`, by id.
fn outputs(out: &Path) -> HashMap<String, Value> {
    let mut lines = HashMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("part-")
        {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                lines.insert(v["id"].to_string(), v["outputs"].clone());
            }
        }
    }
    lines
}

fn dead_letters(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("dead_letters.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_image_cnn_scores_a_jsonl_file_like_python_with_bad_lines_as_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    let digits = std::fs::read_to_string(fixtures().join("data/digits.jsonl")).unwrap();
    for line in digits.lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        let x: Vec<f64> = serde_json::from_value(d["x"].clone()).unwrap();
        let image = json!([x.chunks(8).collect::<Vec<_>>()]);
        text.push_str(&json!({"id": d["id"], "inputs": {"image": image}}).to_string());
        text.push('\n');
    }
    text.push_str("{\"id\": \"short\", \"inputs\": {\"image\": [[1, 2]]}}\n");
    text.push_str(
        "{\"id\": \"nan\", \"inputs\": {\"image\": {\"shape\": [1, 8, 8], \"data\": [\"NaN\"]}}}\n",
    );
    text.push_str("not json at all\n");
    std::fs::write(&input, text).unwrap();
    let expected: HashMap<String, Value> =
        std::fs::read_to_string(fixtures().join("data/digits_cnn.expected.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|e| (e["id"].to_string(), e))
            .collect();
    let model = fixtures().join("models/digits_cnn.onnx");
    for (workers, batch) in [("1", "256"), ("2", "16")] {
        let out = dir.path().join(format!("out-{workers}"));
        let summary = predict(&[
            "--model",
            path(&model),
            "--input",
            path(&input),
            "--output",
            path(&out),
            "-w",
            workers,
            "--batch",
            batch,
        ])
        .unwrap();
        assert_eq!(summary["records"], 1800, "{summary}");
        assert_eq!(summary["scored"], 1797);
        assert_eq!(summary["dead_letters"], 3);
        assert!(summary["seconds"].as_f64().unwrap() > 0.0);
        let got = outputs(&out);
        assert_eq!(got.len(), 1797);
        for (id, e) in &expected {
            let o = &got[id];
            assert_eq!(o["label"], e["label"], "digit {id}");
            for (g, w) in o["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .zip(e["probabilities"].as_array().unwrap())
            {
                assert!((g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-5);
            }
        }
        let mut reasons: Vec<String> = dead_letters(&out)
            .iter()
            .map(|d| d["reason"].as_str().unwrap().to_string())
            .collect();
        reasons.sort();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("expected ident"), "{reasons:?}");
        assert!(
            reasons[1].contains("a tensor of shape [1, 8, 8] needs 64 values, got 1"),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[2],
            "input `image`: expected an item of shape [1, 8, 8], got [1, 2]"
        );
    }
}

#[test]
fn a_tensorflow_serving_file_with_zipmap_outputs_becomes_json_objects() {
    let dir = tempfile::tempdir().unwrap();
    let wines: Vec<Value> = std::fs::read_to_string(fixtures().join("data/wine.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["x"].clone())
        .collect();
    let input = dir.path().join("request.json");
    // Pretty-printed, as people write these files.
    std::fs::write(
        &input,
        serde_json::to_string_pretty(&json!({"instances": wines})).unwrap(),
    )
    .unwrap();
    let out = dir.path().join("out");
    let model = fixtures().join("models/wine_zipmap.onnx");
    let summary = predict(&[
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&out),
    ])
    .unwrap();
    assert_eq!(summary["scored"], 178, "{summary}");
    let got = outputs(&out);
    for line in std::fs::read_to_string(fixtures().join("data/wine_zipmap.expected.jsonl"))
        .unwrap()
        .lines()
    {
        let e: Value = serde_json::from_str(line).unwrap();
        let o = &got[&e["id"].to_string()];
        assert_eq!(o["output_label"], e["label"]);
        for (class, p) in e["probabilities"].as_object().unwrap() {
            let g = o["output_probability"][class].as_f64().unwrap();
            assert!((g - p.as_f64().unwrap()).abs() < 1e-5);
        }
    }
}

#[test]
fn constants_feed_inputs_that_are_not_per_record_and_whole_runs_take_full_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/scaled.onnx");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"inputs\": {\"x\": [1, 2, 3]}}\n").unwrap();
    let out = dir.path().join("rows");
    predict(&[
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&out),
        "--constant",
        "scale=2",
        "--constant",
        "threshold=3.5",
    ])
    .unwrap();
    assert_eq!(
        outputs(&out)["1"],
        json!({"y": [2.0, 4.0, 6.0], "above": [false, true, true]})
    );
    // Without the constants the model is refused, naming them.
    let err = predict(&[
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&dir.path().join("x")),
    ]);
    let out = dir.path().join("x");
    let dead = dead_letters(&out);
    assert!(err.is_ok());
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.contains("input `scale` is a scalar f32: it has no batch axis to stack records on; give it as a constant"), "{reason}");
    // A whole run: the record is the batch.
    std::fs::write(
        &input,
        "{\"id\": 2, \"inputs\": {\"x\": [[1, 2, 3], [4, 5, 6]]}}\n",
    )
    .unwrap();
    let out = dir.path().join("whole");
    predict(&[
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&out),
        "--whole",
        "--constant",
        "scale=1",
        "--constant",
        "threshold=4",
    ])
    .unwrap();
    assert_eq!(
        outputs(&out)["2"]["above"],
        json!([[false, false, false], [false, true, true]])
    );
    // A constant for an input the model does not have is an error before anything runs.
    let err = predict(&[
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&dir.path().join("y")),
        "--constant",
        "bias=1",
    ])
    .unwrap_err();
    assert!(
        err.contains("--constant bias: the model has no such input"),
        "{err}"
    );
}
