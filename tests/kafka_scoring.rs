//! The `kafka_scoring` example against a real broker: it scores digits from a topic with the
//! model published to the model topic, writes predictions to another topic, and swaps in the
//! version published mid-stream. The predictions are read back with kafka-python.

#[path = "../crates/weir-kafka/tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::Broker;

#[test]
fn scores_a_topic_and_swaps_the_model_mid_stream() {
    let broker = Broker::start();
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/kafka_scoring");
    assert!(
        example.exists(),
        "{} is missing: build it with `cargo build --examples` (scripts/test.sh does)",
        example.display()
    );
    let out = Command::new(&example)
        .args([
            "--bootstrap",
            &broker.bootstrap(),
            "--records",
            "1000",
            "-w",
            "2",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("model v1 scored 500 records"), "{stdout}");
    assert!(stdout.contains("model v2 scored 500 records"), "{stdout}");
    let got = broker.consume_python("predictions", 1000);
    assert_eq!(got.len(), 1000);
    let mut right = 0;
    for m in &got {
        let v: serde_json::Value = serde_json::from_str(m["value"].as_str().unwrap()).unwrap();
        let id = v["id"].as_u64().unwrap();
        let version = v["model_version"].as_u64().unwrap();
        assert_eq!(version, if id < 500 { 1 } else { 2 }, "record {id}");
        assert_eq!(m["key"].as_str().unwrap(), id.to_string());
        assert_eq!(m["headers"]["source"], "kafka_scoring");
        right += usize::from(v["label"] == v["truth"]);
    }
    // Both models score the digits well above 90% (on their training data).
    assert!(right > 900, "{right} of 1000 right");
}
