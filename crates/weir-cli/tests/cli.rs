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

/// A checkpoint directory written by a real job: a running count per key over 5 000
/// records in 97 keys, checkpointed every few epochs.
fn checkpointed_job(dir: &std::path::Path) {
    let config = weir_core::Config::threads(2)
        .with_epochs(weir_core::EpochPolicy::Records(250))
        .with_checkpoints(
            weir_core::CheckpointConfig::new(dir).interval(std::time::Duration::from_millis(5)),
        );
    weir_core::execute(config, |job| {
        job.generate(weir_core::op("numbers").rate(50_000.0), Some(5_000), |i| i)
            .key_by(|i: &u64| i % 97)
            .map_with_state("running", |n: &mut u64, _i: u64| {
                *n += 1;
                *n
            })
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
}

#[test]
fn inspect_lists_a_checkpoint_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    checkpointed_job(&dir);
    let dir_arg = dir.to_str().unwrap();
    let (ok, out, err) = weir(&["inspect", "checkpoint", dir_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("a restore takes checkpoint"), "{out}");
    assert!(out.contains("running"), "{out}");
    let (ok, out, err) = weir(&["inspect", "checkpoint", dir_arg, "--json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let checkpoints = json["checkpoints"].as_array().unwrap();
    assert!(!checkpoints.is_empty(), "{out}");
    // The newest full checkpoint before the final one holds every key of the running count.
    let keys = checkpoints
        .iter()
        .filter_map(|c| c["manifest"].as_object())
        .filter(|m| m["base"] == m["id"] && m["final"] != true)
        .flat_map(|m| m["operators"].as_array().unwrap().clone())
        .find(|o| o["name"] == "running")
        .map(|o| o["entries"].as_u64().unwrap());
    assert_eq!(keys, Some(97), "{out}");
    // A damaged worker file is named, and the checkpoint is not the one restored.
    let damaged = checkpoints
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .find(|id| dir.join(format!("chk-{id:08}/worker-0000.state")).exists())
        .expect("a checkpoint with worker files");
    let file = dir.join(format!("chk-{damaged:08}/worker-0000.state"));
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let (ok, out, err) = weir(&["inspect", "checkpoint", dir_arg]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("checkpoint {damaged}: broken")),
        "{out}"
    );
    assert!(
        out.contains("worker-0000.state: checksum mismatch"),
        "{out}"
    );
    assert!(
        !out.contains(&format!("a restore takes checkpoint {damaged}\n")),
        "{out}"
    );
    let (ok, _, err) = weir(&["inspect", "checkpoint", "/nonexistent-ckpt"]);
    assert!(
        !ok && err.contains("/nonexistent-ckpt: no such checkpoint directory"),
        "{err}"
    );
}
