//! The `weir` binary: help and explain.

use std::process::Command;

fn weir(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn help_lists_the_commands() {
    let (ok, out, _) = weir(&["--help"]);
    assert!(ok);
    assert!(out.contains("explain") && out.contains("jobs"), "{out}");
}

#[test]
fn explain_prints_text_json_and_dot() {
    let (ok, out, err) = weir(&["explain", "wordcount", "-w", "2"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Job graph (2 workers)") && out.contains("count") && out.contains("HASH"),
        "{out}"
    );
    let (ok, out, _) = weir(&[
        "explain", "enrich", "--format", "json", "-w", "2", "-n", "2",
    ]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["workers"], 4);
    assert!(json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["kind"] == "join:enrich"));
    let (ok, out, _) = weir(&["explain", "enrich", "--format", "dot"]);
    assert!(ok && out.starts_with("digraph"), "{out}");
}

#[test]
fn an_unknown_job_is_a_clear_error() {
    let (ok, _, err) = weir(&["explain", "nope"]);
    assert!(!ok);
    assert!(
        err.contains("unknown job `nope`") && err.contains("wordcount"),
        "{err}"
    );
}

#[test]
fn inspect_prints_a_models_interface() {
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/models/digits_logreg.onnx"
    );
    let (ok, out, err) = weir(&["inspect", model]);
    assert!(ok, "{err}");
    assert!(
        out.contains("input") && out.contains("f32") && out.contains("[N, 64]"),
        "{out}"
    );
    assert!(
        out.contains("probabilities") && out.contains("ai.onnx=17"),
        "{out}"
    );
    let (ok, out, _) = weir(&["inspect", model, "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["outputs"][0]["name"], "label");
    let (ok, _, err) = weir(&["inspect", "/nonexistent.onnx"]);
    assert!(!ok && err.contains("/nonexistent.onnx"), "{err}");
}
