//! `weir serve`: predictions over HTTP equal in-process ones, a new checkpoint is picked up
//! while serving, malformed requests get 4xx JSON errors; slow, stuck, oversized and
//! too many clients are bounded and cannot starve others; a panicking handler answers 500.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
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
        learner: "sgd".into(),
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
    start_with(store, &[])
}

/// Starts `weir serve` on a free port with `extra` flags.
fn start_with(store: &std::path::Path, extra: &[&str]) -> Server {
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
        .args(extra)
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

/// How long a test waits for an answer before calling the server hung. Not a timing
/// assertion: a healthy server answers at once; this only turns a hang into a failure.
const HANG: Duration = Duration::from_secs(20);

/// A connection that fails a read after [`HANG`] instead of blocking forever.
fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

/// Reads everything until the server closes; panics if it never does.
fn read_all(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "no answer within {HANG:?} ({e}); got {:?}",
            String::from_utf8_lossy(&response)
        ),
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// Status and body of a response read to the end.
fn parse(response: &str) -> (u16, String) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One HTTP/1.1 request; returns status and body.
fn http(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = connect(address);
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    parse(&read_all(&mut stream))
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

/// A store holding `model` as version 1, and `weir serve` on it with `extra` flags, once it
/// serves that version.
fn serving(model: LogisticModel, extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    DirStore::open(dir.path())
        .unwrap()
        .save(&checkpoint(1, model))
        .unwrap();
    let server = start_with(dir.path(), extra);
    wait_until_serving(&server.address, 1);
    (dir, server)
}

/// Polls `GET /models` until `version` is served (it never touches the model itself).
fn wait_until_serving(address: &str, version: u64) {
    let deadline = Instant::now() + HANG;
    loop {
        let (_, models) = http(address, "GET", "/models", "");
        let models: Value = serde_json::from_str(&models).unwrap();
        if models["serving"] == version {
            return;
        }
        assert!(Instant::now() < deadline, "v{version} was never served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of a metric in `GET /metrics`.
fn metric(address: &str, name: &str) -> Option<u64> {
    let (_, text) = http(address, "GET", "/metrics", "");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.parse().unwrap())
}

/// A request's head announcing a JSON body of `length` bytes.
fn head(length: usize) -> String {
    format!("POST /predict HTTP/1.1\r\nHost: weir\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
}

#[test]
fn clients_that_stall_mid_request_do_not_block_others() {
    let (_dir, server) = serving(LogisticModel::zeros(10, 64), &[]);
    // Eight clients announce a large body and send nothing; eight send half a header.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(&server.address);
        stream.write_all(head(1_000_000).as_bytes()).unwrap();
        stalled.push(stream);
        let mut stream = connect(&server.address);
        stream
            .write_all(b"POST /predict HTTP/1.1\r\nHost: we")
            .unwrap();
        stalled.push(stream);
    }
    // Well-behaved clients are still answered, more of them than there are threads.
    for _ in 0..10 {
        let (status, answer) = post(&server.address, &json!({"x": vec![0.5; 64]}));
        assert_eq!(status, 200, "{answer}");
    }
    let (status, _) = http(&server.address, "GET", "/metrics", "");
    assert_eq!(status, 200);
}

#[test]
fn a_stalled_body_gets_408_and_idle_or_slow_connections_are_closed() {
    let (_dir, server) = serving(
        LogisticModel::zeros(10, 64),
        &["--header-timeout-ms", "300", "--body-timeout-ms", "300"],
    );
    // A body that stops half way.
    let mut stream = connect(&server.address);
    stream.write_all(head(1000).as_bytes()).unwrap();
    stream.write_all(b"{\"x\": [0.5, ").unwrap();
    let (status, body) = parse(&read_all(&mut stream));
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 408, "{body}");
    assert!(
        answer["error"].as_str().unwrap().contains("body"),
        "{answer}"
    );
    // A connection that never sends a request, and one that dribbles half a header, are
    // closed without an answer.
    let mut silent = connect(&server.address);
    assert_eq!(read_all(&mut silent), "");
    let mut slow = connect(&server.address);
    slow.write_all(b"GET /models HTTP/1.1\r\nHo").unwrap();
    assert_eq!(read_all(&mut slow), "");
    // A keep-alive connection is answered, then closed once idle.
    let mut idle = connect(&server.address);
    let (status, body) = keep_alive_get(&mut idle, "/models");
    assert_eq!(status, 200);
    assert!(body.contains("\"serving\":1"), "{body}");
    assert_eq!(read_all(&mut idle), "");
    wait_for_open_connections(&server.address, 1);
}

/// Polls `GET /metrics` until `n` connections are open (counting the one asking).
fn wait_for_open_connections(address: &str, n: u64) {
    let deadline = Instant::now() + HANG;
    while metric(address, "weir_serve_connections_open") != Some(n) {
        assert!(
            Instant::now() < deadline,
            "the server never got down to {n} open connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request on a kept-alive connection; reads exactly one response.
fn keep_alive_get(stream: &mut TcpStream, path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: weir\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "closed: {head}");
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head}"))
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let (status, _) = parse(&head);
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn oversized_headers_get_431_and_oversized_bodies_413() {
    let (_dir, server) = serving(LogisticModel::zeros(10, 64), &[]);
    let mut stream = connect(&server.address);
    let pad = "a".repeat(100_000);
    write!(
        stream,
        "GET /models HTTP/1.1\r\nHost: weir\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (status, _) = parse(&read_all(&mut stream));
    assert_eq!(status, 431);

    // A declared length over the limit is refused before any of the body is read.
    let mut stream = connect(&server.address);
    stream.write_all(head(5 << 20).as_bytes()).unwrap();
    let (status, body) = parse(&read_all(&mut stream));
    assert_eq!(status, 413, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("4194304"),
        "{answer}"
    );

    // A chunked body is cut off once it passes the limit.
    let mut stream = connect(&server.address);
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = stream.write_all(
                b"POST /predict HTTP/1.1\r\nHost: weir\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
            for _ in 0..80 {
                if stream.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        })
    };
    let (status, body) = parse(&read_all(&mut stream));
    writer.join().unwrap();
    assert_eq!(status, 413, "{body}");

    let (status, answer) = post(&server.address, &json!({"x": vec![0.5; 64]}));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn connections_beyond_the_cap_get_503_and_are_served_once_others_leave() {
    let (_dir, server) = serving(LogisticModel::zeros(10, 64), &["--max-connections", "2"]);
    // Two kept-alive connections take both places: each is answered 200, so each has one.
    // (Until the server has seen the earlier connections close, a new one may get 503.)
    let deadline = Instant::now() + HANG;
    let mut kept = Vec::new();
    while kept.len() < 2 {
        let mut stream = connect(&server.address);
        match keep_alive_get(&mut stream, "/models").0 {
            200 => kept.push(stream),
            status => assert_eq!(status, 503),
        }
        assert!(Instant::now() < deadline, "never got two places");
    }
    let (status, answer) = post(&server.address, &json!({"x": vec![0.5; 64]}));
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("too many connections"),
        "{answer}"
    );
    drop(kept);
    let deadline = Instant::now() + HANG;
    while post(&server.address, &json!({"x": vec![0.5; 64]})).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never served after the others left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The metrics request is one more connection: until the server has seen the last one
    // close, it may be turned away too, so ask again.
    let deadline = Instant::now() + HANG;
    let rejected = loop {
        if let Some(n) = metric(&server.address, "weir_serve_connections_rejected_total") {
            break n;
        }
        assert!(Instant::now() < deadline, "the metrics were never served");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(rejected >= 1);
}

#[test]
fn a_client_that_stops_reading_its_answer_is_dropped() {
    // 1000 classes: a 2000-row batch is answered with tens of megabytes.
    let (_dir, server) = serving(LogisticModel::zeros(1000, 4), &["--body-timeout-ms", "300"]);
    let mut stream = connect(&server.address);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let small: libc::c_int = 4096;
    // SAFETY: a valid socket and a c_int option value of the given size.
    let set = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    let body = json!({"instances": vec![vec![0.5; 4]; 2000]}).to_string();
    stream.write_all(head(body.len()).as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    // The client reads nothing; the server gives up writing and drops the connection.
    wait_for_open_connections(&server.address, 1);
}

/// A checkpoint whose model has too few weights for its shape (3 instead of 640), with a
/// valid checksum: it once panicked every handler thread that scored with it.
fn inconsistent_model() -> LogisticModel {
    LogisticModel {
        classes: 10,
        features: 64,
        weights: vec![0.0; 3],
        bias: vec![0.0; 10],
    }
}

/// A 2.6 KB checkpoint file with a valid header and checksum whose payload says its first
/// metric name is 2^40 bytes long (it once aborted the server on reload).
fn length_bomb() -> Vec<u8> {
    let mut payload = vec![9u8, 0, 1, 253];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    payload.resize(2600, b'x');
    let mut bytes = b"WEIRCKP2".to_vec();
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

#[test]
fn inconsistent_and_oversized_checkpoints_are_never_served_and_the_previous_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store
        .save(&checkpoint(1, LogisticModel::zeros(10, 64)))
        .unwrap();
    store.save(&checkpoint(2, inconsistent_model())).unwrap();
    std::fs::write(store.path(3), length_bomb()).unwrap();
    let mut server = start(dir.path());
    wait_until_serving(&server.address, 1);
    for _ in 0..10 {
        let (status, answer) = post(&server.address, &json!({"x": vec![0.5; 64]}));
        assert_eq!(
            (status, &answer["model_version"]),
            (200, &json!(1)),
            "{answer}"
        );
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    store
        .save(&checkpoint(4, LogisticModel::zeros(10, 64)))
        .unwrap();
    wait_until_serving(&server.address, 4);
}

#[test]
fn a_model_trained_with_a_scaler_is_served_with_it() {
    let points = digits();
    // Raw pixel values 0..16, standardized by the trainer's scaler.
    let raw: Vec<LabeledPoint> = points
        .iter()
        .map(|p| LabeledPoint {
            x: p.x.iter().map(|v| v * 16.0).collect(),
            y: p.y,
        })
        .collect();
    let mut scaler = weir_ml::OnlineStandardScaler::default();
    raw.iter().for_each(|p| scaler.update(&p.x));
    let mut sgd = SgdClassifier::new(10, 64, 0.05, 1e-4, 1e-5);
    for p in raw.iter().cycle().take(5000) {
        sgd.learn(&scaler.transform(&p.x), p.y);
    }
    let mut c = checkpoint(1, sgd.model());
    c.scaler = Some(scaler.state().clone());
    let dir = tempfile::tempdir().unwrap();
    DirStore::open(dir.path()).unwrap().save(&c).unwrap();
    let server = start(dir.path());
    wait_until_serving(&server.address, 1);
    let sample: Vec<&LabeledPoint> = raw.iter().step_by(7).take(200).collect();
    let instances: Vec<&Vec<f32>> = sample.iter().map(|p| &p.x).collect();
    let (status, answer) = post(&server.address, &json!({ "instances": instances }));
    assert_eq!(status, 200, "{answer}");
    let served: Vec<usize> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_u64().unwrap() as usize)
        .collect();
    let in_process: Vec<usize> = sample.iter().map(|p| c.predict(&p.x)).collect();
    assert_eq!(served, in_process, "served labels equal the scaled model's");
    let right = sample
        .iter()
        .zip(&served)
        .filter(|(p, l)| p.y == **l)
        .count();
    assert!(
        right * 10 >= sample.len() * 9,
        "{right} of {} right",
        sample.len()
    );
}

#[test]
fn features_beyond_the_f32_range_are_rejected_naming_the_index() {
    let (_dir, server) = serving(LogisticModel::zeros(10, 64), &[]);
    let mut x = vec![json!(0.5); 64];
    x[5] = json!(1e300);
    let (status, answer) = post(&server.address, &json!({ "x": x }));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("x[5]"),
        "{answer}"
    );
    let (status, answer) = post(
        &server.address,
        &json!({"instances": [vec![json!(0.5); 64], x]}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("instances[1][5]"),
        "{answer}"
    );
}

#[test]
fn scores_that_overflow_get_422_instead_of_null_probabilities() {
    // A weight at the bound checkpoints allow and a finite feature whose product overflows f32.
    let mut model = LogisticModel::zeros(10, 64);
    model.weights[0] = 1e9;
    let (_dir, server) = serving(model, &[]);
    let mut x = vec![0.5; 64];
    x[0] = 1e30;
    let (status, answer) = post(&server.address, &json!({ "x": x }));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("not finite"),
        "{answer}"
    );
    let (status, answer) = post(&server.address, &json!({"instances": [vec![0.5; 64], x]}));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("instances[1]"),
        "{answer}"
    );
}

#[test]
fn an_address_in_use_is_an_error_and_a_non_zero_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--store", dir.path().to_str().unwrap()])
        .args(["--listen", &address])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}
