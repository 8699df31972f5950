//! `weir bench`: a small configuration in Flink ML's format gives results JSON with every key
//! at every parallelism, an error entry for a broken benchmark, a table and a chart.

use std::process::Command;

use serde_json::{json, Value};

const KEYS: &[&str] = &[
    "parallelism",
    "totalTimeMs",
    "inputRecordNum",
    "inputThroughput",
    "outputRecordNum",
    "outputThroughput",
    "minTimeMs",
    "medianTimeMs",
    "maxTimeMs",
    "latencyP50Ms",
    "latencyP99Ms",
    "peakMemoryBytes",
    "speedup",
];

#[test]
fn a_small_config_gives_every_result_key_and_an_error_entry_for_a_broken_benchmark() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models/digits_logreg.onnx");
    let dense = |n: u64, dim: u64| json!({"className": "weir.DenseVectorGenerator", "paramMap": {"seed": 1, "numValues": n, "vectorDim": dim}});
    let strings = |n: u64, words: u64| {
        json!({"className": "org.apache.flink.ml.benchmark.datagenerator.common.RandomStringGenerator",
               "paramMap": {"seed": 1, "numValues": n, "numDistinctValues": 50, "wordsPerValue": words}})
    };
    let config = json!({
        "version": 1,
        "parallelisms": [1, 2],
        "warmupRuns": 0,
        "repetitions": 2,
        "map": {"stage": {"className": "weir.Map"}, "inputData": dense(2000, 4)},
        "flat_map": {"stage": {"className": "weir.FlatMap"}, "inputData": strings(1000, 3)},
        "key_by": {"stage": {"className": "weir.KeyByAggregate"}, "inputData": strings(2000, 1)},
        "join": {"stage": {"className": "weir.Join", "paramMap": {"tableKeys": 50}}, "inputData": strings(2000, 1)},
        "predict": {
            "stage": {"className": "weir.Predict", "paramMap": {"maxBatch": 64}},
            "inputData": dense(1000, 64),
            "modelData": {"className": "weir.OnnxModel", "paramMap": {"path": model}}
        },
        "ps_training": {
            "stage": {"className": "weir.PsTraining", "paramMap": {"epochs": 1}},
            "inputData": {"className": "weir.LabeledPointGenerator", "paramMap": {"numValues": 500, "vectorDim": 5, "numClasses": 3}}
        },
        "broken": {"stage": {"className": "weir.NoSuchOperator"}, "inputData": dense(10, 2)},
        "wrong_input": {"stage": {"className": "weir.FlatMap"}, "inputData": dense(10, 2)},
        "no_stage": {"inputData": dense(10, 2)},
        "endless": {"stage": {"className": "weir.Map"}, "inputData": dense(10, 2), "warmupRuns": u64::MAX},
        "too_wide": {"stage": {"className": "weir.Map"}, "inputData": dense(10, 2), "parallelisms": [1_000_000]}
    });
    let config_path = dir.path().join("small.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let output = dir.path().join("out/results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "bench",
            config_path.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // The broken benchmarks make the exit code non-zero; the others still ran.
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("some benchmarks failed"), "{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    for name in [
        "map",
        "flat_map",
        "key_by",
        "join",
        "predict",
        "ps_training",
    ] {
        let headline = &results[name]["results"];
        for key in KEYS {
            assert!(
                headline.get(*key).is_some(),
                "{name} lacks {key}: {headline}"
            );
        }
        let runs = headline["sweep"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {results}"));
        assert_eq!(runs.len(), 2, "{name}");
        assert_eq!(
            headline["parallelism"], 2,
            "the headline is the largest parallelism"
        );
        for (run, p) in runs.iter().zip([1, 2]) {
            assert!(run.get("exception").is_none(), "{name} p={p}: {run}");
            for key in KEYS {
                assert!(run.get(*key).is_some(), "{name} p={p} lacks {key}: {run}");
            }
            assert_eq!(run["parallelism"], p);
        }
        assert!(stdout.contains(name), "the table shows {name}");
    }
    let outputs = |name: &str| {
        results[name]["results"]["sweep"][1]["outputRecordNum"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(outputs("map"), 2000);
    assert_eq!(outputs("flat_map"), 3000);
    assert_eq!(outputs("join"), 2000);
    assert_eq!(outputs("predict"), 1000);
    assert_eq!(results["map"]["results"]["sweep"][0]["speedup"], 1.0);
    assert!(results["map"]["results"]["sweep"][0]["latencyP50Ms"].is_number());
    let error = |name: &str| {
        results[name]["results"]["exception"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        error("broken").contains("unknown stage class `weir.NoSuchOperator`"),
        "{}",
        error("broken")
    );
    assert!(
        error("wrong_input").contains("needs string input"),
        "{}",
        error("wrong_input")
    );
    assert!(
        error("no_stage").contains("has no `stage`"),
        "{}",
        error("no_stage")
    );
    assert!(
        error("endless").contains("`warmupRuns` must be an integer from 0 to 100000"),
        "{}",
        error("endless")
    );
    assert!(
        error("too_wide").contains("`parallelisms` must be integers from 1 to 1024"),
        "{}",
        error("too_wide")
    );
    let chart = std::fs::read_to_string(output.with_extension("svg")).unwrap();
    assert!(chart.contains("<svg") && chart.contains("parallelism"));
}

#[test]
fn embedded_and_served_predict_score_the_same_stream_with_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../benches/configs/embedded_vs_server.json"),
    )
    .unwrap();
    let mut config: Value = serde_json::from_str(&config).unwrap();
    // Small: 2,000 vectors, no warm-up, one repetition; the model path made absolute (the
    // config lives in the temporary directory).
    let model = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models/digits_logreg.onnx");
    config["warmupRuns"] = json!(0);
    config["repetitions"] = json!(1);
    for name in ["embedded_predict", "served_predict"] {
        config[name]["inputData"]["paramMap"]["numValues"] = json!(2000);
        config[name]["modelData"]["paramMap"]["path"] = json!(model);
    }
    let config_path = dir.path().join("embedded_vs_server.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let output = dir.path().join("results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "bench",
            config_path.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    for name in ["embedded_predict", "served_predict"] {
        let runs = results[name]["results"]["sweep"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {results}"));
        assert_eq!(runs.len(), 2, "{name}");
        for (run, p) in runs.iter().zip([1, 2]) {
            assert!(run.get("exception").is_none(), "{name} p={p}: {run}");
            assert_eq!(run["parallelism"], p);
            assert_eq!(run["inputRecordNum"], 2000, "{name} p={p}");
            assert_eq!(run["outputRecordNum"], 2000, "{name} p={p}");
            for key in ["latencyP50Ms", "latencyP99Ms", "inputThroughput"] {
                assert!(run[key].is_number(), "{name} p={p} lacks {key}: {run}");
            }
        }
        assert!(stdout.contains(name), "the table shows {name}");
    }
    let chart = std::fs::read_to_string(output.with_extension("svg")).unwrap();
    assert!(chart.contains("embedded_predict") && chart.contains("served_predict"));
}
