//! The Flink ML example end to end (`examples/flink-ml/`): a JSON pipeline (StringIndexer ->
//! VectorAssembler -> StandardScaler -> LogisticRegression) is fitted with `weir run`, saved
//! and exported to ONNX; a second job loads the model and scores a stream; the ONNX graph
//! gives the same predictions on the predict operator (`weir predict`) and over HTTP
//! (`weir serve --model`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/flink-ml")
}

fn weir(args: &[&str], dir: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "weir {args:?}:\n{text}");
    text
}

/// The JSON lines of a part-file directory (or file), by `id`.
fn rows_by_id(dir: &Path) -> HashMap<i64, Value> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect()
}

fn copy_example(to: &Path) {
    for file in ["fit.json", "score.json", "customers.jsonl", "stream.jsonl"] {
        std::fs::copy(example_dir().join(file), to.join(file)).unwrap();
    }
}

#[test]
fn the_example_pipeline_fits_scores_a_stream_and_serves_as_one_onnx_graph() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    weir(&["run", "fit.json", "-w", "2"], dir.path());
    let fitted = rows_by_id(&dir.path().join("out/fitted"));
    assert_eq!(fitted.len(), 2000);
    let accuracy = |rows: &HashMap<i64, Value>| {
        rows.values()
            .filter(|r| r["prediction"] == r["label"])
            .count() as f64
            / rows.len() as f64
    };
    assert!(
        accuracy(&fitted) > 0.85,
        "training accuracy {}",
        accuracy(&fitted)
    );
    let metadata = std::fs::read_to_string(dir.path().join("out/model/metadata")).unwrap();
    assert!(
        metadata.contains("org.apache.flink.ml.builder.PipelineModel"),
        "{metadata}"
    );

    // A second job loads the model and scores the stream.
    weir(&["run", "score.json", "-w", "2"], dir.path());
    let scored = rows_by_id(&dir.path().join("out/scored"));
    assert_eq!(scored.len(), 500);
    assert!(
        accuracy(&scored) > 0.85,
        "stream accuracy {}",
        accuracy(&scored)
    );

    // The ONNX graph on the predict operator: the loaded model's predictions, and its
    // probabilities to 1e-9.
    let stream: Vec<Value> = std::fs::read_to_string(dir.path().join("stream.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: String = stream
        .iter()
        .map(|r| {
            json!({"id": r["id"], "inputs": {"plan": r["plan"], "age": r["age"], "usage": r["usage"]}})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.path().join("requests.jsonl"), requests).unwrap();
    weir(
        &[
            "predict",
            "--model",
            "out/model.onnx",
            "--input",
            "requests.jsonl",
            "--output",
            "out/onnx",
            "-w",
            "2",
        ],
        dir.path(),
    );
    let onnx = rows_by_id(&dir.path().join("out/onnx"));
    assert_eq!(onnx.len(), 500);
    for (id, row) in &scored {
        let outputs = &onnx[id]["outputs"];
        assert_eq!(
            outputs["prediction"].as_f64(),
            row["prediction"].as_f64(),
            "row {id}: {outputs}"
        );
        let (got, want) = (&outputs["rawPrediction"], &row["rawPrediction"]);
        for k in 0..2 {
            let (g, w) = (got[k].as_f64().unwrap(), want[k].as_f64().unwrap());
            assert!((g - w).abs() < 1e-9, "row {id}: {got} vs {want}");
        }
        assert_eq!(outputs["planIndex"].as_f64(), row["planIndex"].as_f64());
    }

    // And over HTTP, TensorFlow Serving's REST API.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model",
            "out/model.onnx",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("serving on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let instances: Vec<Value> = stream[..20]
        .iter()
        .map(|r| json!({"plan": r["plan"], "age": r["age"], "usage": r["usage"]}))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .post(format!("{url}/v1/models/model:predict"))
        .header("Content-Type", "application/json")
        .send(json!({ "instances": instances }).to_string())
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    for (r, p) in stream[..20]
        .iter()
        .zip(body["predictions"].as_array().unwrap())
    {
        let id = r["id"].as_i64().unwrap();
        assert_eq!(
            p["prediction"].as_f64(),
            scored[&id]["prediction"].as_f64(),
            "row {id}: {p}"
        );
    }
}
