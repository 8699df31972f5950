//! `weir serve`: predictions over HTTP equal in-process ones, a new checkpoint is picked up
//! while serving, malformed requests get 4xx JSON errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_ml::{
    Checkpoint, DirStore, LabeledPoint, LogisticModel, ModelStore, OnlineClassifier, SgdClassifier,
};

fn digits() -> Vec<LabeledPoint> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/data/digits.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            LabeledPoint {
                x: v["x"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_f64().unwrap() as f32 / 16.0)
                    .collect(),
                y: v["y"].as_u64().unwrap() as usize,
            }
        })
        .collect()
}

fn trained(points: &[LabeledPoint], n: usize) -> LogisticModel {
    let mut sgd = SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5);
    for p in points.iter().cycle().take(n) {
        sgd.learn(&p.x, p.y);
    }
    sgd.model()
}

fn checkpoint(version: u64, model: LogisticModel) -> Checkpoint {
    Checkpoint {
        version,
        records: version * 1000,
        metrics: Default::default(),
        model,
        scaler: None,
    }
}

/// The `weir serve` process; killed on drop.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(store: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--store",
            store.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--reload-ms",
            "50",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    Server { child, address }
}

/// One HTTP/1.1 request; returns status and body.
fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(address: &str, body: &Value) -> (u16, Value) {
    let (status, text) = http(address, "POST", "/predict", &body.to_string());
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[test]
fn served_predictions_equal_in_process_ones_and_a_new_model_is_picked_up() {
    let points = digits();
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let v1 = trained(&points, 500);
    store.save(&checkpoint(1, v1.clone())).unwrap();
    let server = start(dir.path());

    for p in points.iter().step_by(97) {
        let (status, answer) = post(&server.address, &json!({"x": p.x}));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["label"], v1.predict(&p.x));
        assert_eq!(answer["model_version"], 1);
        let want = v1.probabilities(&p.x);
        let got: Vec<f64> = answer["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - *w as f64).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
    let batch: Vec<&Vec<f32>> = points.iter().take(5).map(|p| &p.x).collect();
    let (status, answer) = post(&server.address, &json!({"instances": batch}));
    assert_eq!(status, 200);
    let labels: Vec<u64> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = points
        .iter()
        .take(5)
        .map(|p| v1.predict(&p.x) as u64)
        .collect();
    assert_eq!(labels, want);

    // A training job checkpoints v2: clients see it without a restart.
    let v2 = trained(&points, 5000);
    store.save(&checkpoint(2, v2.clone())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let x = &points[3].x;
    loop {
        let (_, answer) = post(&server.address, &json!({"x": x}));
        if answer["model_version"] == 2 {
            assert_eq!(answer["label"], v2.predict(x));
            break;
        }
        assert!(Instant::now() < deadline, "v2 was never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, models) = http(&server.address, "GET", "/models", "");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models, json!({"versions": [1, 2], "serving": 2}));
    let (status, metrics) = http(&server.address, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("weir_serve_model_version 2"), "{metrics}");
    let (status, page) = http(&server.address, "GET", "/", "");
    assert!(status == 200 && page.contains("<canvas"), "{page}");
}

#[test]
fn malformed_requests_get_4xx_json_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (status, answer) = post(&server.address, &json!({"x": vec![0.0; 64]}));
    assert_eq!(
        (status, answer["error"].as_str().unwrap()),
        (503, "no model in the store yet")
    );
    DirStore::open(dir.path())
        .unwrap()
        .save(&checkpoint(1, LogisticModel::zeros(10, 64)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(&server.address, &json!({"x": vec![0.0; 64]})).0 != 200 {
        assert!(Instant::now() < deadline, "the model was never loaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cases = [
        ("{not json", "invalid JSON"),
        (
            r#"{"x": [1, 2, 3]}"#,
            "x has 3 values, the model expects 64",
        ),
        (r#"{"x": "seven"}"#, "x must be an array of 64 numbers"),
        (r#"{"y": 1}"#, "expected {\"x\""),
        (r#"{"instances": [[1]]}"#, "instances[0] has 1 values"),
    ];
    for (body, message) in cases {
        let (status, text) = http(&server.address, "POST", "/predict", body);
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(
            answer["error"].as_str().unwrap().contains(message),
            "{body}: {text}"
        );
    }
    let mut nan = vec![json!(0.0); 64];
    nan[7] = json!("NaN");
    let (status, answer) = post(&server.address, &json!({"x": nan}));
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("x[7]"),
        "{answer}"
    );
    let (status, text) = http(&server.address, "GET", "/nope", "");
    assert_eq!(status, 404);
    assert!(text.contains("no route GET /nope"), "{text}");
}

#[test]
fn the_page_predicts_a_drawn_digit_in_headless_chromium() {
    let browser = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "this test drives Debian's Chromium: apt-get install -y chromium (scripts/test.sh does)"
    );
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "this test needs playwright-core: npm ci --prefix {} (scripts/test.sh does)",
        browser.display()
    );
    let points = digits();
    let dir = tempfile::tempdir().unwrap();
    DirStore::open(dir.path())
        .unwrap()
        .save(&checkpoint(1, trained(&points, 5000)))
        .unwrap();
    let server = start(dir.path());
    let artifacts =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("serve-page.png");
    let _ = std::fs::remove_file(&screenshot);
    let out = Command::new("node")
        .current_dir(&browser)
        .args([
            "draw_digit.mjs",
            &format!("http://{}/", server.address),
            screenshot.to_str().unwrap(),
        ])
        .output()
        .expect("node (nodejs) must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    let label: u32 = result["label"].as_str().unwrap().parse().unwrap();
    assert!(label < 10);
    assert_eq!(result["version"], "1");
    assert_eq!(result["bars"], 10, "a probability bar per class");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 1000,
        "screenshot kept at {}",
        screenshot.display()
    );
}
