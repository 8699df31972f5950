//! `weir kafka` and `weir predict` with kafka:// endpoints, against a real broker (tansu):
//! topics made, a JSON Lines file produced, a model published, a topic scored into another
//! with the model from the model topic, and the result dumped, equal to scoring the file.
#![cfg(feature = "kafka")]

#[path = "../../weir-kafka/tests/common/mod.rs"]
mod common;
mod weir_command;

use std::collections::HashMap;
use std::process::Command;

use common::Broker;
use serde_json::{json, Value};
use weir_command::{fixtures, p, weir};

#[test]
fn predict_scores_a_topic_into_a_topic_with_the_model_from_a_model_topic() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    for (topic, parts) in [("requests", "2"), ("scores", "2"), ("models", "1")] {
        let out = weir(&[
            "kafka",
            "create-topic",
            topic,
            "--partitions",
            parts,
            "--bootstrap",
            &b,
        ]);
        assert_eq!(out.trim(), format!("{topic}: created"));
    }
    let digits = std::fs::read_to_string(fixtures().join("data/digits.jsonl")).unwrap();
    let mut lines = String::new();
    for line in digits.lines().take(200) {
        let d: Value = serde_json::from_str(line).unwrap();
        lines.push_str(&json!({"id": d["id"], "inputs": {"input": d["x"]}}).to_string());
        lines.push('\n');
    }
    lines.push_str("{\"id\": \"bad\", \"inputs\": {\"input\": [[1, 2]]}}\n");
    let input = dir.path().join("requests.jsonl");
    std::fs::write(&input, &lines).unwrap();
    let out = weir(&[
        "kafka",
        "produce",
        "requests",
        p(&input),
        "--key-field",
        "id",
        "--bootstrap",
        &b,
    ]);
    assert_eq!(out.trim(), "201 messages to requests");
    let model = fixtures().join("models/digits_logreg.onnx");
    let out = weir(&[
        "kafka",
        "publish-model",
        "models",
        "--model",
        p(&model),
        "--name",
        "digits",
        "--version",
        "1",
        "--bootstrap",
        &b,
    ]);
    assert_eq!(out.trim(), "digits v1 published to models");

    let models = format!("kafka://{b}/models");
    let (requests, scores) = (
        format!("kafka://{b}/requests"),
        format!("kafka://{b}/scores"),
    );
    let out = weir(&[
        "predict", "--models", &models, "--input", &requests, "--output", &scores, "-w", "2",
    ]);
    let summary: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["scored"], 200, "{summary}");
    assert_eq!(summary["dead_letters"], 1, "{summary}");

    let dumped = dir.path().join("scores.jsonl");
    let out = weir(&[
        "kafka",
        "dump",
        "scores",
        "--output",
        p(&dumped),
        "--bootstrap",
        &b,
    ]);
    assert_eq!(out.trim(), "200 messages from scores");
    let from_topic: HashMap<String, Value> = std::fs::read_to_string(&dumped)
        .unwrap()
        .lines()
        .map(|l| {
            let m: Value = serde_json::from_str(l).unwrap();
            assert_eq!(m["key"].as_str().unwrap(), m["value"]["id"].to_string());
            (
                m["value"]["id"].to_string(),
                m["value"]["outputs"]["label"].clone(),
            )
        })
        .collect();

    // The same requests scored from the file with the model file.
    let file_out = dir.path().join("file-out");
    weir(&[
        "predict",
        "--model",
        p(&model),
        "--input",
        p(&input),
        "--output",
        p(&file_out),
    ]);
    let mut from_file = HashMap::new();
    for entry in std::fs::read_dir(&file_out).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("part-") {
            for l in std::fs::read_to_string(entry.path()).unwrap().lines() {
                let v: Value = serde_json::from_str(l).unwrap();
                from_file.insert(v["id"].to_string(), v["outputs"]["label"].clone());
            }
        }
    }
    assert_eq!(from_topic.len(), 200);
    assert_eq!(from_topic, from_file);

    let values = weir(&[
        "kafka",
        "dump",
        "scores",
        "--values",
        "--limit",
        "5",
        "--bootstrap",
        &b,
    ]);
    assert_eq!(values.lines().count(), 5);
    assert!(values
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
}

#[test]
fn kafka_tools_name_what_is_wrong() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let fail = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fail(&[
        "predict",
        "--models",
        &format!("kafka://{b}/nomodels"),
        "--input",
        "x",
        "--output",
        "y",
    ]);
    assert!(e.contains("nomodels"), "{e}");
    let e = fail(&[
        "predict",
        "--model",
        "m.onnx",
        "--models",
        "kafka://h:1/t",
        "--input",
        "x",
        "--output",
        "y",
    ]);
    assert!(e.contains("not both"), "{e}");
    let e = fail(&[
        "predict",
        "--model",
        "m.onnx",
        "--input",
        "kafka://h:1",
        "--output",
        "y",
    ]);
    assert!(e.contains("expected kafka://HOST:PORT/TOPIC"), "{e}");
    let e = fail(&["kafka", "dump", "absent", "--bootstrap", &b]);
    assert!(e.contains("`absent` does not exist"), "{e}");
}
