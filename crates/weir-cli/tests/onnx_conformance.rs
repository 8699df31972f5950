//! A fixed subset of the ONNX backend node tests (fixtures/onnx-conformance/, written by
//! `scripts/onnx_conformance.py --write-subset`, which runs the whole suite) through
//! `weir predict --whole`: every output must match what the test expects, within rtol/atol
//! for floats and exactly for integers, bools and strings.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/onnx-conformance");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    cases
}

/// A float from the JSON forms Weir and the fixtures use (numbers, "NaN", "Infinity").
fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn flatten(v: &Value, into: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, into)),
        other => into.push(other.clone()),
    }
}

/// Why `got` (Weir's JSON of an output) does not match `expected` (the fixture's), if not.
fn mismatch(expected: &Value, got: &Value, rtol: f64, atol: f64) -> Option<String> {
    if let Value::Array(items) = expected {
        // A sequence.
        let Value::Array(got) = got else {
            return Some(format!("expected a sequence, got {got}"));
        };
        if items.len() != got.len() {
            return Some(format!("expected {} items, got {}", items.len(), got.len()));
        }
        return items
            .iter()
            .zip(got)
            .find_map(|(e, g)| mismatch(e, g, rtol, atol));
    }
    let want = expected["data"].as_array().unwrap();
    let mut values = Vec::new();
    flatten(got, &mut values);
    if values.len() != want.len() {
        return Some(format!(
            "expected {} values, got {}",
            want.len(),
            values.len()
        ));
    }
    for (i, (e, g)) in want.iter().zip(&values).enumerate() {
        let same = if expected["kind"] == "float" {
            match (float(e), float(g)) {
                (Some(e), Some(g)) if e.is_nan() || g.is_nan() => e.is_nan() && g.is_nan(),
                (Some(e), Some(g)) if e.is_infinite() || g.is_infinite() => e == g,
                (Some(e), Some(g)) => (e - g).abs() <= atol + rtol * e.abs(),
                _ => false,
            }
        } else {
            e == g
        };
        if !same {
            return Some(format!("value {i}: expected {e}, got {g}"));
        }
    }
    None
}

fn check(case: &Path) -> Option<String> {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["predict", "--whole", "--nan", "allow", "--model"])
        .arg(case.join("model.onnx"))
        .arg("--input")
        .arg(case.join("input.jsonl"))
        .arg("--output")
        .arg(out.path().join("out"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    if !status.status.success() {
        return Some(String::from_utf8_lossy(&status.stderr).into_owned());
    }
    let dead = out.path().join("out/dead_letters.jsonl");
    if dead.exists() {
        return Some(std::fs::read_to_string(dead).unwrap());
    }
    let line = std::fs::read_to_string(out.path().join("out/part-00000.jsonl")).unwrap();
    let got: Value = serde_json::from_str(line.trim()).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
            .unwrap();
    let (rtol, atol) = (
        expected["rtol"].as_f64().unwrap(),
        expected["atol"].as_f64().unwrap(),
    );
    for (name, want) in expected["outputs"].as_object().unwrap() {
        let Some(value) = got["outputs"].get(name) else {
            return Some(format!("no output `{name}` in {got}"));
        };
        if let Some(why) = mismatch(want, value, rtol, atol) {
            return Some(format!("output `{name}`: {why}"));
        }
    }
    None
}

#[test]
fn the_committed_onnx_node_tests_pass_through_weir_predict() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check(case).map(|why| format!("{}: {why}", case.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
