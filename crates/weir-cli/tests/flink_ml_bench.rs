//! Flink ML's own benchmark files (`benches/flink-ml/`, copied unchanged from apache/flink-ml
//! with their `//` licence headers) run in `weir bench` with `--num-values`: every benchmark
//! whose stage Weir has succeeds with Flink's result keys, the others fail naming the unknown
//! class, and the two deliberately broken demo benchmarks fail for Flink's reasons.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use weir_flink_ml::api::find_class;

const FLINK_KEYS: &[&str] = &[
    "totalTimeMs",
    "inputRecordNum",
    "inputThroughput",
    "outputRecordNum",
    "outputThroughput",
];

fn files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/flink-ml");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The benchmarks of a file as Flink reads it (comments stripped).
fn benchmarks(file: &PathBuf) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.starts_with("//"),
        "{} keeps Flink's licence header",
        file.display()
    );
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut map: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
    map.remove("version");
    map
}

#[test]
fn every_flink_ml_benchmark_file_runs_unchanged() {
    let files = files();
    assert_eq!(files.len(), 36, "Flink ML has 36 benchmark files");
    let out = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for file in files {
        let output = out.path().join(file.file_name().unwrap());
        let o = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args([
                "bench",
                file.to_str().unwrap(),
                "--num-values",
                "3000",
                "--output",
            ])
            .arg(&output)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        let results: Value = serde_json::from_str(
            &std::fs::read_to_string(&output)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", file.display())),
        )
        .unwrap();
        let mut all_ok = true;
        for (name, bench) in benchmarks(&file) {
            let result = &results[&name]["results"];
            let class = bench["stage"]["className"].as_str().unwrap();
            let broken = name == "Undefined-Parameter" || name == "Unmatch-Input";
            if find_class(class).is_some() && !broken {
                for key in FLINK_KEYS {
                    assert!(
                        result[*key].is_number(),
                        "{name} ({}): no {key}: {result}",
                        file.display()
                    );
                }
                assert!(
                    result["inputRecordNum"].as_u64().unwrap() <= 3000,
                    "{name}: --num-values caps"
                );
                assert!(
                    result["outputRecordNum"].as_u64().unwrap() > 0,
                    "{name}: {result}"
                );
                ran += 1;
            } else {
                all_ok = false;
                let exception = result["exception"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: {result}"));
                if find_class(class).is_none() {
                    assert!(
                        exception.contains("unknown stage class"),
                        "{name}: {exception}"
                    );
                } else if name == "Undefined-Parameter" {
                    // Flink: "Parameter featureCol is not defined on the stage".
                    assert!(
                        exception.contains("unknown parameter `featureCol`"),
                        "{name}: {exception}"
                    );
                } else {
                    assert!(exception.contains("`colNames`"), "{name}: {exception}");
                }
            }
        }
        assert_eq!(
            o.status.success(),
            all_ok,
            "{}: exit code\n{text}",
            file.display()
        );
    }
    assert!(ran > 0);
}

#[test]
fn a_benchmark_with_an_unknown_param_or_a_wrong_column_shape_fails_for_flinks_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
    // Flink's reader allows comments: so does Weir's.
    {
      "version": 1,
      "Undefined-Parameter": {
        "stage": {"className": "org.apache.flink.ml.feature.standardscaler.StandardScaler",
                  "paramMap": {"inputCol": "features", "inputCols": ["features"]}},
        "inputData": {"className": "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorGenerator",
                      "paramMap": {"seed": 2, "colNames": [["features"]], "numValues": 100, "vectorDim": 10}}
      },
      /* the Unmatch-Input demo: colNames must be an array of arrays */
      "Unmatch-Input": {
        "stage": {"className": "org.apache.flink.ml.feature.standardscaler.StandardScaler",
                  "paramMap": {"inputCol": "features"}},
        "inputData": {"className": "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorGenerator",
                      "paramMap": {"seed": 2, "colNames": ["non-features"], "numValues": 100, "vectorDim": 10}}
      },
      "ok": {
        "stage": {"className": "org.apache.flink.ml.feature.standardscaler.StandardScaler",
                  "paramMap": {"inputCol": "features"}},
        "inputData": {"className": "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorGenerator",
                      "paramMap": {"seed": 2, "colNames": [["features"]], "numValues": 100, "vectorDim": 10}},
        "parallelisms": [1], "warmupRuns": 0, "repetitions": 1
      }
    }"#;
    let path = dir.path().join("demo.json");
    std::fs::write(&path, config).unwrap();
    let output = dir.path().join("results.json");
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "bench",
            path.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let exception = |name: &str| {
        results[name]["results"]["exception"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        exception("Undefined-Parameter").contains("unknown parameter `inputCols`"),
        "{}",
        exception("Undefined-Parameter")
    );
    assert!(
        exception("Unmatch-Input").contains("`colNames`")
            && exception("Unmatch-Input").contains("an array of arrays of strings"),
        "{}",
        exception("Unmatch-Input")
    );
    assert_eq!(results["ok"]["results"]["outputRecordNum"], 1, "{results}");
    assert_eq!(
        results["ok"]["inputData"]["paramMap"]["numValues"], 100,
        "the config is echoed"
    );
}
