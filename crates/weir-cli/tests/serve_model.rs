//! `weir serve --model` with real HTTP clients (ureq): TensorFlow Serving's REST API and
//! KServe's v2 protocol answer like Python onnxruntime, concurrent clients' requests are
//! batched together, and malformed requests get 4xx with a reason while the server keeps
//! serving.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};

use serde::Deserialize;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `weir serve --model MODEL` on a free port of 127.0.0.1.
fn serve(model: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--model"])
        .arg(fixtures().join("models").join(model))
        .args(extra)
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
    Server { child, url }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into()
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let mut response = agent().get(format!("{}{path}", server.url)).call().unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn post(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let mut response = agent()
        .post(format!("{}{path}", server.url))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[derive(Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
}

#[derive(Deserialize)]
struct Expected {
    id: u64,
    label: i64,
    probabilities: Vec<f32>,
}

fn digits(n: usize) -> Vec<Digit> {
    std::fs::read_to_string(fixtures().join("data/digits.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected() -> HashMap<u64, Expected> {
    std::fs::read_to_string(fixtures().join("data/digits_cnn.expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Expected>(l).unwrap())
        .map(|e| (e.id, e))
        .collect()
}

/// A digit as the CNN's `[1, 8, 8]` image.
fn image(d: &Digit) -> Value {
    json!([d.x.chunks(8).collect::<Vec<_>>()])
}

fn assert_matches(
    id: u64,
    label: &Value,
    probabilities: &Value,
    expected: &HashMap<u64, Expected>,
) {
    let e = &expected[&id];
    assert_eq!(label.as_i64(), Some(e.label), "digit {id}");
    let p = probabilities.as_array().unwrap();
    for (got, want) in p.iter().zip(&e.probabilities) {
        assert!(
            (got.as_f64().unwrap() as f32 - want).abs() < 1e-5,
            "digit {id}"
        );
    }
}

#[test]
fn tensorflow_serving_rest_answers_like_python_onnxruntime() {
    let server = serve("digits_cnn.onnx", &[]);
    let expected = expected();
    let (status, body) = get(&server, "/v1/models/digits_cnn");
    assert_eq!(status, 200);
    assert_eq!(body["model_version_status"][0]["state"], "AVAILABLE");
    let (status, meta) = get(&server, "/v1/models/digits_cnn/metadata");
    assert_eq!(status, 200, "{meta}");
    let digits = digits(40);
    // Rows: one object of outputs per instance.
    let instances: Vec<Value> = digits.iter().map(image).collect();
    let (status, body) = post(
        &server,
        "/v1/models/digits_cnn:predict",
        &json!({ "instances": instances }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    for (d, p) in digits.iter().zip(body["predictions"].as_array().unwrap()) {
        assert_matches(d.id, &p["label"], &p["probabilities"], &expected);
    }
    // Columns, and the versioned path.
    let (status, body) = post(
        &server,
        "/v1/models/digits_cnn/versions/1:predict",
        &json!({ "inputs": {"image": instances} }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    for (i, d) in digits.iter().enumerate() {
        let outputs = &body["outputs"];
        assert_matches(
            d.id,
            &outputs["label"][i],
            &outputs["probabilities"][i],
            &expected,
        );
    }
}

#[test]
fn kserve_v2_answers_like_python_onnxruntime() {
    let server = serve("digits_cnn.onnx", &["--name", "cnn"]);
    let expected = expected();
    assert_eq!(get(&server, "/v2/health/ready").0, 200);
    assert_eq!(get(&server, "/v2/health/live").0, 200);
    assert_eq!(get(&server, "/v2/models/cnn/ready").0, 200);
    let (status, meta) = get(&server, "/v2/models/cnn");
    assert_eq!(status, 200);
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]})
    );
    let digits = digits(10);
    let data: Vec<f32> = digits.iter().flat_map(|d| d.x.iter().copied()).collect();
    let request = json!({
        "id": "batch-1",
        "inputs": [{"name": "image", "shape": [10, 1, 8, 8], "datatype": "FP32", "data": data}],
        "outputs": [{"name": "label"}, {"name": "probabilities"}],
    });
    let (status, body) = post(&server, "/v2/models/cnn/infer", &request.to_string());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "batch-1");
    assert_eq!(body["model_name"], "cnn");
    let outputs = body["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["name"], "label");
    assert_eq!(outputs[0]["datatype"], "INT64");
    assert_eq!(outputs[0]["shape"], json!([10]));
    assert_eq!(outputs[1]["shape"], json!([10, 10]));
    for (i, d) in digits.iter().enumerate() {
        let p = json!(outputs[1]["data"].as_array().unwrap()[i * 10..(i + 1) * 10]);
        assert_matches(d.id, &outputs[0]["data"][i], &p, &expected);
    }
    // Asking for one output returns only it.
    let mut only = request.clone();
    only["outputs"] = json!([{"name": "label"}]);
    let (_, body) = post(&server, "/v2/models/cnn/infer", &only.to_string());
    assert_eq!(body["outputs"].as_array().unwrap().len(), 1);
}

#[test]
fn zipmap_outputs_are_json_objects_and_string_labels_strings() {
    let server = serve("wine_zipmap.onnx", &[]);
    let line = std::fs::read_to_string(fixtures().join("data/wine.jsonl")).unwrap();
    let first: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let (status, body) = post(
        &server,
        "/v1/models/wine_zipmap:predict",
        &json!({"instances": [first["x"]]}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let p = &body["predictions"][0];
    assert_eq!(p["output_label"], "barolo");
    let total: f64 = ["barbera", "barolo", "grignolino"]
        .iter()
        .map(|k| p["output_probability"][k].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-5);
}

#[test]
fn concurrent_clients_are_batched_together_and_each_gets_its_own_answer() {
    // A long batching window, so that the clients' requests meet in shared runs however
    // slowly the threads start (it bounds the wait, it asserts nothing about time).
    let server = serve(
        "digits_cnn.onnx",
        &["--batch-wait-us", "200000", "--max-batch", "64"],
    );
    let expected = Arc::new(expected());
    let digits = Arc::new(digits(32));
    let url = server.url.clone();
    let barrier = Arc::new(Barrier::new(32));
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let (digits, expected, barrier, url) = (
                Arc::clone(&digits),
                Arc::clone(&expected),
                Arc::clone(&barrier),
                url.clone(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                barrier.wait();
                for round in 0..3 {
                    let d = &digits[(c + round) % 32];
                    let body = json!({"instances": [image(d)]}).to_string();
                    let mut response = agent
                        .post(format!("{url}/v1/models/digits_cnn:predict"))
                        .send(&body)
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    let answer: Value =
                        serde_json::from_str(&response.body_mut().read_to_string().unwrap())
                            .unwrap();
                    let p = &answer["predictions"][0];
                    assert_matches(d.id, &p["label"], &p["probabilities"], &expected);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let (_, metrics) = get(&server, "/metrics");
    let metrics = metrics.as_str().unwrap().to_string();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    assert_eq!(value("weir_serve_rows_total"), 96);
    assert!(
        value("weir_serve_batches_total") < 96,
        "no request shared a run: {metrics}"
    );
}

#[test]
fn malformed_requests_get_4xx_with_a_reason_and_the_server_keeps_serving() {
    let server = serve("digits_cnn.onnx", &["--max-rows", "100"]);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/models/digits_cnn:predict", "{not json".into(), 400, "not JSON"),
        ("/v1/models/digits_cnn:predict", r#"{"rows": []}"#.into(), 400, "instances"),
        ("/v1/models/digits_cnn:predict", r#"{"instances": [[[1, 2]]]}"#.into(), 400, "expected an item of shape [1, 8, 8], got [1, 2]"),
        ("/v1/models/digits_cnn:predict", r#"{"instances": [{"pixels": 1}]}"#.into(), 400, "no input `image`"),
        ("/v1/models/digits_cnn:predict", r#"{"instances": [[[["x"]]]]}"#.into(), 400, "expected a number"),
        ("/v1/models/digits_cnn:predict", r#"{"instances": []}"#.into(), 400, "no rows"),
        ("/v1/models/other:predict", r#"{"instances": []}"#.into(), 404, "no model `other`"),
        ("/v1/models/digits_cnn/versions/7:predict", r#"{"instances": []}"#.into(), 404, "no version 7"),
        ("/v2/models/digits_cnn/infer", r#"{"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "INT64", "data": []}]}"#.into(), 400, "is FP32, not \"INT64\""),
        ("/v2/models/digits_cnn/infer", r#"{"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [1]}]}"#.into(), 400, "needs 64 values, got 1"),
        ("/v2/models/digits_cnn/infer", r#"{"inputs": [{"name": "img", "shape": [1], "datatype": "FP32", "data": [1]}]}"#.into(), 400, "no input `img`"),
        ("/v1/models/digits_cnn:predict", json!({"instances": vec![vec![vec![vec![0; 8]; 8]; 1]; 101]}).to_string(), 413, "at most 100"),
        // A zero dimension makes no values stand for many rows: refused before any row is built.
        ("/v2/models/digits_cnn/infer", r#"{"inputs": [{"name": "image", "shape": [1000000000000, 0, 8, 8], "datatype": "FP32", "data": []}]}"#.into(), 400, "spans more than 65536 positions before its first 0"),
        ("/v1/models/digits_cnn:predict", r#"{"inputs": {"shape": [1000000000000, 0], "data": []}}"#.into(), 400, "spans more than 65536 positions before its first 0"),
        ("/v2/models/digits_cnn/infer", r#"{"inputs": [{"name": "image", "shape": [101, 0, 8, 8], "datatype": "FP32", "data": []}]}"#.into(), 413, "101 rows in one request; at most 100"),
        ("/nowhere", String::new(), 404, "no route"),
    ];
    for (path, body, status, reason) in cases {
        let (got, answer) = post(&server, path, &body);
        assert_eq!(got, status, "{path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{path} {body}: {error}");
    }
    let (status, _) = get(&server, "/v1/models/digits_cnn:predict");
    assert_eq!(status, 405);
    // Still serving.
    let d = &digits(1)[0];
    let (status, _) = post(
        &server,
        "/v1/models/digits_cnn:predict",
        &json!({"instances": [image(d)]}).to_string(),
    );
    assert_eq!(status, 200);
}
