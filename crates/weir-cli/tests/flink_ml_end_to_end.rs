//! The Flink ML example end to end (`examples/flink-ml/`): a JSON pipeline (StringIndexer ->
//! VectorAssembler -> StandardScaler -> LogisticRegression) is fitted with `weir run`, saved
//! and exported to ONNX; a second job loads the model and scores a stream; the ONNX graph
//! gives the same predictions on the predict operator (`weir predict`) and over HTTP
//! (`weir serve --model`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/flink-ml")
}

fn weir(args: &[&str], dir: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "weir {args:?}:\n{text}");
    text
}

/// The JSON lines of a part-file directory (or file), by `id`.
fn rows_by_id(dir: &Path) -> HashMap<i64, Value> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect()
}

fn copy_example(to: &Path) {
    for file in ["fit.json", "score.json", "customers.jsonl", "stream.jsonl"] {
        std::fs::copy(example_dir().join(file), to.join(file)).unwrap();
    }
}

#[test]
fn the_example_pipeline_fits_scores_a_stream_and_serves_as_one_onnx_graph() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    weir(&["run", "fit.json", "-w", "2"], dir.path());
    let fitted = rows_by_id(&dir.path().join("out/fitted"));
    assert_eq!(fitted.len(), 2000);
    let accuracy = |rows: &HashMap<i64, Value>| {
        rows.values()
            .filter(|r| r["prediction"] == r["label"])
            .count() as f64
            / rows.len() as f64
    };
    assert!(
        accuracy(&fitted) > 0.85,
        "training accuracy {}",
        accuracy(&fitted)
    );
    let metadata = std::fs::read_to_string(dir.path().join("out/model/metadata")).unwrap();
    assert!(
        metadata.contains("org.apache.flink.ml.builder.PipelineModel"),
        "{metadata}"
    );

    // A second job loads the model and scores the stream.
    weir(&["run", "score.json", "-w", "2"], dir.path());
    let scored = rows_by_id(&dir.path().join("out/scored"));
    assert_eq!(scored.len(), 500);
    assert!(
        accuracy(&scored) > 0.85,
        "stream accuracy {}",
        accuracy(&scored)
    );

    // The ONNX graph on the predict operator: the loaded model's predictions, and its
    // probabilities to 1e-9.
    let stream: Vec<Value> = std::fs::read_to_string(dir.path().join("stream.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: String = stream
        .iter()
        .map(|r| {
            json!({"id": r["id"], "inputs": {"plan": r["plan"], "age": r["age"], "usage": r["usage"]}})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(dir.path().join("requests.jsonl"), requests).unwrap();
    weir(
        &[
            "predict",
            "--model",
            "out/model.onnx",
            "--input",
            "requests.jsonl",
            "--output",
            "out/onnx",
            "-w",
            "2",
        ],
        dir.path(),
    );
    let onnx = rows_by_id(&dir.path().join("out/onnx"));
    assert_eq!(onnx.len(), 500);
    for (id, row) in &scored {
        let outputs = &onnx[id]["outputs"];
        assert_eq!(
            outputs["prediction"].as_f64(),
            row["prediction"].as_f64(),
            "row {id}: {outputs}"
        );
        let (got, want) = (&outputs["rawPrediction"], &row["rawPrediction"]);
        for k in 0..2 {
            let (g, w) = (got[k].as_f64().unwrap(), want[k].as_f64().unwrap());
            assert!((g - w).abs() < 1e-9, "row {id}: {got} vs {want}");
        }
        assert_eq!(outputs["planIndex"].as_f64(), row["planIndex"].as_f64());
    }

    // And over HTTP, TensorFlow Serving's REST API.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--model",
            "out/model.onnx",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("serving on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let instances: Vec<Value> = stream[..20]
        .iter()
        .map(|r| json!({"plan": r["plan"], "age": r["age"], "usage": r["usage"]}))
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .post(format!("{url}/v1/models/model:predict"))
        .header("Content-Type", "application/json")
        .send(json!({ "instances": instances }).to_string())
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    for (r, p) in stream[..20]
        .iter()
        .zip(body["predictions"].as_array().unwrap())
    {
        let id = r["id"].as_i64().unwrap();
        assert_eq!(
            p["prediction"].as_f64(),
            scored[&id]["prediction"].as_f64(),
            "row {id}: {p}"
        );
    }
}

/// Every stage with an ONNX export in one pipeline (VectorAssembler, MinMaxScaler,
/// MaxAbsScaler, KMeans with each distance, LinearSVC, LinearRegression, StringIndexer, and
/// NaiveBayes on the plan and the cluster as categories): the graph's outputs
/// on the predict operator equal the fitted pipeline's columns.
#[test]
fn every_exportable_stage_scores_in_onnx_as_in_the_job() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    for measure in ["euclidean", "manhattan", "cosine"] {
        let job = json!({
            "sources": {"customers": {"path": "customers.jsonl", "schema": [["id", "Long"], ["plan", "String"], ["age", "Double"], ["usage", "Double"], ["label", "Double"]]}},
            "pipeline": [
                {"className": "VectorAssembler", "paramMap": {"inputCols": ["age", "usage", "id"], "outputCol": "raw", "inputSizes": [1, 1, 1]}},
                {"className": "MinMaxScaler", "paramMap": {"inputCol": "raw", "outputCol": "minMax", "min": -1.0, "max": 2.0}},
                {"className": "MaxAbsScaler", "paramMap": {"inputCol": "minMax", "outputCol": "features"}},
                {"className": "KMeans", "paramMap": {"featuresCol": "features", "predictionCol": "cluster", "k": 4, "distanceMeasure": measure, "maxIter": 30}},
                {"className": "LinearSVC", "paramMap": {"featuresCol": "features", "predictionCol": "svc", "rawPredictionCol": "svcRaw", "threshold": 0.1, "maxIter": 50, "globalBatchSize": 500}},
                {"className": "LinearRegression", "paramMap": {"featuresCol": "features", "predictionCol": "regression", "maxIter": 50, "globalBatchSize": 500}},
                {"className": "StringIndexer", "paramMap": {"inputCols": ["plan"], "outputCols": ["planIndex"], "stringOrderType": "alphabetAsc"}},
                {"className": "VectorAssembler", "paramMap": {"inputCols": ["planIndex", "cluster"], "outputCol": "categories", "inputSizes": [1, 1]}},
                {"className": "NaiveBayes", "paramMap": {"featuresCol": "categories", "predictionCol": "nb", "smoothing": 0.5}}
            ],
            "fit": "customers",
            "transform": "customers",
            "output": format!("out/{measure}"),
            "exportOnnx": format!("out/{measure}.onnx")
        });
        std::fs::write(dir.path().join("all.json"), job.to_string()).unwrap();
        weir(&["run", "all.json", "-w", "2"], dir.path());
        let fitted = rows_by_id(&dir.path().join(format!("out/{measure}")));
        let requests: String = fitted
            .values()
            .map(|r| {
                json!({"id": r["id"], "inputs": {"id": r["id"], "plan": r["plan"], "age": r["age"], "usage": r["usage"]}})
                    .to_string()
                    + "\n"
            })
            .collect();
        // A plan the model has never seen: NaiveBayes cannot score it (the job would fail).
        let unseen =
            json!({"id": -1, "inputs": {"id": 0, "plan": "unheard-of", "age": 40.0, "usage": 5.0}});
        let requests = requests + &unseen.to_string() + "\n";
        std::fs::write(dir.path().join("all.jsonl"), requests).unwrap();
        let out = format!("out/{measure}-onnx");
        weir(
            &[
                "predict",
                "--model",
                &format!("out/{measure}.onnx"),
                "--input",
                "all.jsonl",
                "--output",
                &out,
            ],
            dir.path(),
        );
        let mut onnx = rows_by_id(&dir.path().join(&out));
        let unseen = onnx.remove(&-1).expect("the unseen plan's row");
        let nb = unseen["outputs"].get("nb").expect("an `nb` output");
        assert!(
            nb.as_f64().is_none_or(f64::is_nan) && !unseen["outputs"]["cluster"].is_null(),
            "{measure}: {unseen}"
        );
        assert_eq!(onnx.len(), fitted.len());
        for (id, row) in &fitted {
            let outputs = &onnx[id]["outputs"];
            for column in ["cluster", "svc", "nb"] {
                assert!(
                    row[column].is_number(),
                    "{measure}: row {id} `{column}`: {row}"
                );
                assert_eq!(
                    outputs[column], row[column],
                    "{measure}: row {id} `{column}`: {outputs}"
                );
            }
            for column in ["features", "svcRaw"] {
                for (g, w) in outputs[column]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(row[column].as_array().unwrap())
                {
                    assert!(
                        (g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-9,
                        "{measure}: row {id} `{column}`"
                    );
                }
            }
            let (g, w) = (
                outputs["regression"].as_f64().unwrap(),
                row["regression"].as_f64().unwrap(),
            );
            assert!((g - w).abs() < 1e-9, "{measure}: row {id}: {g} vs {w}");
        }
    }
}

/// The model data of stage `stage` of a saved PipelineModel (its one JSON line).
fn saved_stage_data(dir: &Path, stage: usize) -> Value {
    let path = dir.join(format!("stages/{stage}/data/0.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => Vec::new(),
    }
}

/// KMeans and LogisticRegression trained at 1 worker, 2 workers and 2 OS processes (`weir
/// launch`): KMeans gives one model everywhere (to 1e-9); LogisticRegression's mini-batches
/// are each instance's own rows, so 2 workers and 2 processes agree exactly and 1 worker
/// closely (coefficient cosine above 0.999).
#[test]
fn kmeans_and_logistic_regression_train_alike_on_threads_and_processes() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let schema = json!([
        ["id", "Long"],
        ["plan", "String"],
        ["age", "Double"],
        ["usage", "Double"],
        ["label", "Double"]
    ]);
    let job = |estimator: Value, model: &str| {
        json!({
            "sources": {"customers": {"path": "customers.jsonl", "schema": schema}},
            "pipeline": [
                {"className": "VectorAssembler", "paramMap": {"inputCols": ["age", "usage"], "outputCol": "raw", "inputSizes": [1, 1]}},
                {"className": "StandardScaler", "paramMap": {"inputCol": "raw", "outputCol": "features", "withMean": true}},
                estimator
            ],
            "fit": "customers",
            "saveModel": model
        })
    };
    let kmeans = json!({"className": "KMeans", "paramMap": {"k": 3, "initMode": "k-means||", "maxIter": 50}});
    let lr = json!({"className": "LogisticRegression", "paramMap": {"maxIter": 100, "globalBatchSize": 2000, "learningRate": 0.5}});
    let weir_bin = env!("CARGO_BIN_EXE_weir");
    let mut models: HashMap<(&str, &str), Vec<f64>> = HashMap::new();
    for (name, estimator) in [("kmeans", &kmeans), ("lr", &lr)] {
        for layout in ["w1", "w2", "p2"] {
            let model = format!("out/{name}-{layout}");
            let file = format!("{name}-{layout}.json");
            std::fs::write(
                dir.path().join(&file),
                job(estimator.clone(), &model).to_string(),
            )
            .unwrap();
            match layout {
                "w1" => weir(&["run", &file, "-w", "1", "--quiet"], dir.path()),
                "w2" => weir(&["run", &file, "-w", "2", "--quiet"], dir.path()),
                _ => weir(
                    &[
                        "launch", "-n", "2", "-w", "1", "--", weir_bin, "run", &file, "--quiet",
                    ],
                    dir.path(),
                ),
            };
            let data = saved_stage_data(&dir.path().join(&model), 2);
            let key = if name == "kmeans" {
                "centroids"
            } else {
                "coefficient"
            };
            models.insert((name, layout), numbers(&data[key]));
        }
    }
    let close = |a: &[f64], b: &[f64], tolerance: f64| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= tolerance * (1.0 + x.abs()))
    };
    let k1 = &models[&("kmeans", "w1")];
    assert_eq!(k1.len(), 6);
    assert!(close(k1, &models[&("kmeans", "w2")], 1e-9), "{models:?}");
    assert!(close(k1, &models[&("kmeans", "p2")], 1e-9), "{models:?}");
    let (l1, l2, lp) = (
        &models[&("lr", "w1")],
        &models[&("lr", "w2")],
        &models[&("lr", "p2")],
    );
    assert!(
        close(l2, lp, 1e-12),
        "2 workers and 2 processes split alike: {l2:?} vs {lp:?}"
    );
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cosine = dot(l1, l2) / (dot(l1, l1) * dot(l2, l2)).sqrt();
    assert!(cosine > 0.999, "{cosine}: {l1:?} vs {l2:?}");
}
