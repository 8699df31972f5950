//! `weir run job.json`: a JSON ML job fits a pipeline on a JSON Lines file, transforms it,
//! writes the outputs and saves the model; a second job loads the model and scores; rows
//! that do not fit the schema become dead letters; `--explain` prints the plan.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

fn weir(args: &[&str], dir: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

/// Output rows of a part-file directory, by id.
fn output_rows(dir: &Path) -> Vec<Value> {
    let mut rows: Vec<Value> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    rows
}

#[test]
fn a_json_pipeline_is_fitted_saved_loaded_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..40)
        .map(|i| json!({"id": i, "x": [i as f64, (i % 4) as f64]}).to_string())
        .collect();
    lines.insert(7, "not json".into());
    lines.insert(20, json!({"id": 99, "x": "not a vector"}).to_string());
    std::fs::write(dir.path().join("train.jsonl"), lines.join("\n") + "\n").unwrap();
    let source = json!({"path": "train.jsonl", "schema": [["id", "Long"], ["x", "DenseVector"]]});
    let fit_job = json!({
        "sources": {"train": source},
        "pipeline": [{"className": "org.apache.flink.ml.feature.standardscaler.StandardScaler",
                      "paramMap": {"inputCol": "x", "outputCol": "scaled", "withMean": true}}],
        "fit": "train",
        "transform": "train",
        "output": "out/fitted",
        "saveModel": "model"
    });
    std::fs::write(dir.path().join("fit.json"), fit_job.to_string()).unwrap();
    let (ok, text) = weir(&["run", "fit.json", "-w", "2"], dir.path());
    assert!(ok, "{text}");
    let rows = output_rows(&dir.path().join("out/fitted"));
    assert_eq!(rows.len(), 40, "the two bad lines are dead letters: {text}");
    // Mean-centred and scaled: the mean of each column is 0.
    let mean0: f64 = rows
        .iter()
        .map(|r| r["scaled"][0].as_f64().unwrap())
        .sum::<f64>()
        / 40.0;
    assert!(mean0.abs() < 1e-9, "{mean0}");
    let metadata = std::fs::read_to_string(dir.path().join("model/metadata")).unwrap();
    assert!(
        metadata.contains("org.apache.flink.ml.builder.PipelineModel"),
        "{metadata}"
    );

    let score_job = json!({
        "sources": {"rows": source},
        "load": "model",
        "transform": "rows",
        "output": "out/scored"
    });
    std::fs::write(dir.path().join("score.json"), score_job.to_string()).unwrap();
    let (ok, text) = weir(&["run", "score.json", "-w", "2"], dir.path());
    assert!(ok, "{text}");
    let scored = output_rows(&dir.path().join("out/scored"));
    assert_eq!(scored, rows, "the loaded model scores as the fitted one");

    // Two OS processes (weir launch) fit and score the same: the model data reaches process 0,
    // which saves the model.
    std::fs::write(
        dir.path().join("fit2.json"),
        fit_job
            .to_string()
            .replace("out/fitted", "out/fitted2")
            .replace("\"model\"", "\"model2\""),
    )
    .unwrap();
    let weir_bin = env!("CARGO_BIN_EXE_weir");
    let (ok, text) = weir(
        &[
            "launch",
            "-n",
            "2",
            "-w",
            "1",
            "--",
            weir_bin,
            "run",
            "fit2.json",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(ok, "{text}");
    assert_eq!(output_rows(&dir.path().join("out/fitted2")), rows);
    assert!(dir.path().join("model2/stages/0/data/0.jsonl").is_file());

    let (ok, plan) = weir(&["run", "fit.json", "-w", "2", "--explain"], dir.path());
    assert!(ok, "{plan}");
    assert!(
        plan.contains("StandardScaler.fit") && plan.contains("train.rows"),
        "{plan}"
    );
}

#[test]
fn a_json_job_with_an_unknown_stage_or_param_fails_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let job = json!({
        "sources": {"gen": {"className": "DenseVectorGenerator", "paramMap": {"colNames": [["input"]], "numValues": 10}}},
        "pipeline": [{"className": "StandardScaler", "paramMap": {"withMeans": true}}],
        "fit": "gen"
    });
    std::fs::write(dir.path().join("bad.json"), job.to_string()).unwrap();
    let (ok, text) = weir(&["run", "bad.json"], dir.path());
    assert!(!ok);
    assert!(
        text.contains("StandardScaler: unknown parameter `withMeans`"),
        "{text}"
    );
    let job = json!({"pipeline": [{"className": "NoSuchStage"}]});
    std::fs::write(dir.path().join("bad2.json"), job.to_string()).unwrap();
    let (ok, text) = weir(&["run", "bad2.json"], dir.path());
    assert!(!ok);
    assert!(text.contains("unknown stage class `NoSuchStage`"), "{text}");
}
