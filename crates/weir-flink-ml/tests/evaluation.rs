//! BinaryClassificationEvaluator: Flink ML's BinaryClassificationEvaluatorTest cases exactly,
//! scikit-learn's metrics on breast-cancer scores with many ties, weighted and not
//! (fixtures/flink-ml/BinaryClassificationEvaluator.json); Weir's
//! MulticlassClassificationEvaluator against scikit-learn's accuracy, weighted precision,
//! recall and F1 and macro F1 (fixtures/flink-ml/MulticlassClassificationEvaluator.json). At
//! 1, 2 and 3 workers, with save and load and params JSON round trips, and errors.
//! The fixtures come from scripts/flink_ml_fixtures/learning_clustering_eval.py.

mod support;

use std::path::PathBuf;

use serde_json::{json, Value as Json};
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, new_stage, Stage, StageKind};
use weir_flink_ml::evaluation::binary_classification_evaluator::METRICS_NAMES;
use weir_flink_ml::evaluation::multiclass_classification_evaluator::MULTICLASS_METRICS_NAMES;
use weir_flink_ml::evaluation::{BinaryClassificationEvaluator, MulticlassClassificationEvaluator};
use weir_flink_ml::param::shared::{LABEL_COL, RAW_PREDICTION_COL, WEIGHT_COL};
use weir_flink_ml::param::WithParams;
use weir_flink_ml::table::{
    DataType, RowBatch, Schema, SparseVector, Table, TableCollector, Value,
};

/// Runs `stage` on `rows` (batches of 7 rows) on `workers` threads: the single output row.
fn evaluate(
    stage: &dyn Stage,
    schema: &Schema,
    rows: Vec<Vec<Value>>,
    workers: usize,
) -> Result<Json, String> {
    evaluate_with_columns(stage, schema, rows, workers).map(|(row, _)| row)
}

/// [`evaluate`], with the output's column names.
fn evaluate_with_columns(
    stage: &dyn Stage,
    schema: &Schema,
    rows: Vec<Vec<Value>>,
    workers: usize,
) -> Result<(Json, Vec<String>), String> {
    let out = TableCollector::new();
    let sink = out.clone();
    let (stage, schema) = (stage.clone_stage(), schema.clone());
    execute(Config::threads(workers), move |job| {
        let batches = RowBatch::from_rows(&schema, rows.clone(), 7)?;
        let table = Table::from_batches(job, "input", schema.clone(), batches);
        let mut outputs = stage.transform(job, vec![table])?;
        assert_eq!(outputs.len(), 1);
        outputs.remove(0).collect("metrics", &sink);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let rows = out.json_rows();
    assert_eq!(rows.len(), 1, "one row of metrics: {rows:?}");
    let names = out
        .schema()
        .unwrap()
        .names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    Ok((rows[0].clone(), names))
}

fn assert_metrics(got: &Json, names: &[&str], expected: &[f64], tolerance: f64, what: &str) {
    let object = got.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>().len(),
        names.len(),
        "{what}: {got}"
    );
    for (name, e) in names.iter().zip(expected) {
        let g = got[name]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no {name} in {got}"));
        assert!(
            (g - e).abs() <= tolerance,
            "{what}: {name} = {g}, expected {e}"
        );
    }
}

fn binary(metrics: &[&str], weight: Option<&str>) -> BinaryClassificationEvaluator {
    let mut stage = BinaryClassificationEvaluator::new()
        .set(
            &METRICS_NAMES,
            metrics.iter().map(|m| m.to_string()).collect(),
        )
        .unwrap();
    if let Some(w) = weight {
        stage = stage.set(&WEIGHT_COL, w.to_string()).unwrap();
    }
    stage
}

fn scored(rows: &[(f64, [f64; 2])]) -> (Schema, Vec<Vec<Value>>) {
    let schema = Schema::new([
        ("label", DataType::Double),
        ("rawPrediction", DataType::DenseVector),
    ]);
    let rows = rows
        .iter()
        .map(|(l, p)| vec![Value::Double(*l), Value::DenseVector(p.to_vec())])
        .collect();
    (schema, rows)
}

const INPUT_DATA: [(f64, [f64; 2]); 12] = [
    (1.0, [0.1, 0.9]),
    (1.0, [0.2, 0.8]),
    (1.0, [0.3, 0.7]),
    (0.0, [0.25, 0.75]),
    (0.0, [0.4, 0.6]),
    (1.0, [0.35, 0.65]),
    (1.0, [0.45, 0.55]),
    (0.0, [0.6, 0.4]),
    (0.0, [0.7, 0.3]),
    (1.0, [0.65, 0.35]),
    (0.0, [0.8, 0.2]),
    (1.0, [0.9, 0.1]),
];

const INPUT_DATA_WITH_MULTI_SCORE: [(f64, [f64; 2]); 12] = [
    (1.0, [0.1, 0.9]),
    (1.0, [0.1, 0.9]),
    (1.0, [0.1, 0.9]),
    (0.0, [0.25, 0.75]),
    (0.0, [0.4, 0.6]),
    (1.0, [0.1, 0.9]),
    (1.0, [0.1, 0.9]),
    (0.0, [0.6, 0.4]),
    (0.0, [0.7, 0.3]),
    (1.0, [0.1, 0.9]),
    (0.0, [0.8, 0.2]),
    (1.0, [0.9, 0.1]),
];

const WEIGHTS: [f64; 12] = [0.8, 0.7, 0.5, 1.2, 1.3, 1.5, 1.4, 0.3, 0.5, 1.9, 1.2, 1.0];

const EXPECTED_DATA: [f64; 3] = [0.7691481137909708, 0.3714285714285714, 0.6571428571428571];
const EXPECTED_DATA_M: [f64; 4] = [
    0.8571428571428571,
    0.9377705627705628,
    0.8571428571428571,
    0.6488095238095237,
];
const EXPECTED_DATA_W: [f64; 2] = [0.8717948717948718, 0.9510202726261435];
const PR_KS_ROC: [&str; 3] = ["areaUnderPR", "ks", "areaUnderROC"];

#[test]
fn flinks_test_param() {
    let eval = BinaryClassificationEvaluator::new();
    assert_eq!(eval.get(&LABEL_COL).unwrap(), "label");
    assert_eq!(eval.param_map().get_opt(&WEIGHT_COL).unwrap(), None);
    assert_eq!(eval.get(&RAW_PREDICTION_COL).unwrap(), "rawPrediction");
    assert_eq!(
        eval.get(&METRICS_NAMES).unwrap(),
        vec!["areaUnderROC", "areaUnderPR"]
    );
    assert_eq!(eval.kind(), StageKind::AlgoOperator);
    let eval = eval
        .set(&LABEL_COL, "labelCol".into())
        .unwrap()
        .set(&RAW_PREDICTION_COL, "raw".into())
        .unwrap()
        .set(&METRICS_NAMES, vec!["areaUnderROC".into()])
        .unwrap()
        .set(&WEIGHT_COL, "weight".into())
        .unwrap();
    assert_eq!(eval.get(&LABEL_COL).unwrap(), "labelCol");
    assert_eq!(eval.get(&WEIGHT_COL).unwrap(), "weight");
    assert_eq!(eval.get(&RAW_PREDICTION_COL).unwrap(), "raw");
    assert_eq!(eval.get(&METRICS_NAMES).unwrap(), vec!["areaUnderROC"]);
    let saved = eval.param_map().to_json();
    let mut again = new_stage(BinaryClassificationEvaluator::CLASS).unwrap();
    again.param_map_mut().update_from_json(&saved).unwrap();
    assert_eq!(again.param_map().to_json(), saved);
}

#[test]
fn flinks_test_evaluate_input_types_and_double_raw() {
    for workers in [1, 2, 3] {
        let (schema, rows) = scored(&INPUT_DATA);
        let (got, columns) =
            evaluate_with_columns(&binary(&PR_KS_ROC, None), &schema, rows, workers).unwrap();
        assert_metrics(&got, &PR_KS_ROC, &EXPECTED_DATA, 1e-12, "testEvaluate");
        assert_eq!(columns, PR_KS_ROC, "the columns in metricsNames order");

        // testInputTypeConversion: Integer labels and sparse vectors.
        let schema = Schema::new([
            ("label", DataType::Long),
            ("rawPrediction", DataType::SparseVector),
        ]);
        let rows = INPUT_DATA
            .iter()
            .map(|(l, p)| {
                vec![
                    Value::Long(*l as i64),
                    Value::SparseVector(SparseVector::from_dense(p)),
                ]
            })
            .collect();
        let got = evaluate(&binary(&PR_KS_ROC, None), &schema, rows, workers).unwrap();
        assert_metrics(
            &got,
            &PR_KS_ROC,
            &EXPECTED_DATA,
            1e-12,
            "sparse, Integer labels",
        );

        // testEvaluateWithDoubleRaw: Integer labels and double scores.
        let schema = Schema::new([
            ("label", DataType::Long),
            ("rawPrediction", DataType::Double),
        ]);
        let raw = [
            (1, 0.9),
            (1, 0.8),
            (1, 0.7),
            (0, 0.75),
            (0, 0.6),
            (1, 0.65),
            (1, 0.55),
            (0, 0.4),
            (0, 0.3),
            (1, 0.35),
            (0, 0.2),
            (1, 0.1),
        ];
        let rows = raw
            .iter()
            .map(|(l, s)| vec![Value::Long(*l), Value::Double(*s)])
            .collect();
        let got = evaluate(&binary(&PR_KS_ROC, None), &schema, rows, workers).unwrap();
        assert_metrics(&got, &PR_KS_ROC, &EXPECTED_DATA, 1e-12, "double scores");
    }
}

#[test]
fn flinks_test_more_subtasks_than_data_multi_score_and_weight() {
    for workers in [1, 2, 3] {
        let (schema, rows) = scored(&[(1.0, [0.1, 0.9]), (0.0, [0.9, 0.1])]);
        let got = evaluate(&binary(&PR_KS_ROC, None), &schema, rows, workers).unwrap();
        assert_metrics(&got, &PR_KS_ROC, &[1.0, 1.0, 1.0], 0.0, "two rows");

        let names = ["areaUnderROC", "areaUnderPR", "ks", "areaUnderLorenz"];
        let (schema, rows) = scored(&INPUT_DATA_WITH_MULTI_SCORE);
        let got = evaluate(&binary(&names, None), &schema, rows, workers).unwrap();
        assert_metrics(
            &got,
            &names,
            &EXPECTED_DATA_M,
            1e-12,
            "testEvaluateWithMultiScore",
        );

        let (schema, rows) = scored(&INPUT_DATA_WITH_MULTI_SCORE);
        let schema = schema.with_column("weight", DataType::Double).unwrap();
        let rows = rows
            .into_iter()
            .zip(WEIGHTS)
            .map(|(mut r, w)| {
                r.push(Value::Double(w));
                r
            })
            .collect();
        let names = ["areaUnderROC", "areaUnderPR"];
        let got = evaluate(&binary(&names, Some("weight")), &schema, rows, workers).unwrap();
        assert_metrics(
            &got,
            &names,
            &EXPECTED_DATA_W,
            1e-12,
            "testEvaluateWithWeight",
        );
    }
}

#[test]
fn flinks_test_save_load_and_evaluate() {
    let eval = binary(&PR_KS_ROC, None);
    let dir = tempfile::tempdir().unwrap();
    eval.save(dir.path()).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata")).unwrap())
            .unwrap();
    assert_eq!(
        metadata["className"],
        "org.apache.flink.ml.evaluation.binaryclassification.BinaryClassificationEvaluator"
    );
    assert_eq!(
        metadata["paramMap"]["metricsNames"],
        json!(["areaUnderPR", "ks", "areaUnderROC"])
    );
    let loaded = load_stage(dir.path()).unwrap();
    let (schema, rows) = scored(&INPUT_DATA);
    let got = evaluate(&*loaded, &schema, rows, 2).unwrap();
    assert_metrics(&got, &PR_KS_ROC, &EXPECTED_DATA, 1e-12, "loaded");
}

fn fixture(stage: &str) -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../fixtures/flink-ml/{stage}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn numbers(json: &Json) -> Vec<f64> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Rows `(label, second column, weight)` of a fixture case (weight 1 when it has none).
fn case_rows(case: &Json, second: &str) -> Vec<Vec<Value>> {
    let labels = numbers(&case["label"]);
    let values = numbers(&case[second]);
    let weights = if case["weight"].is_null() {
        vec![1.0; labels.len()]
    } else {
        numbers(&case["weight"])
    };
    (0..labels.len())
        .map(|i| {
            vec![
                Value::Double(labels[i]),
                Value::Double(values[i]),
                Value::Double(weights[i]),
            ]
        })
        .collect()
}

#[test]
fn scikit_learns_binary_metrics_with_ties_and_weights() {
    let names = ["areaUnderROC", "areaUnderPR", "ks", "areaUnderLorenz"];
    for case in fixture("BinaryClassificationEvaluator") {
        let name = case["name"].as_str().unwrap();
        let schema = Schema::new([
            ("label", DataType::Double),
            ("rawPrediction", DataType::Double),
            ("weight", DataType::Double),
        ]);
        let weight = (!case["weight"].is_null()).then_some("weight");
        let expected: Vec<f64> = names
            .iter()
            .map(|n| case["expected"][n].as_f64().unwrap())
            .collect();
        let mut rows = case_rows(&case, "score");
        for workers in [1, 2, 3] {
            let got = evaluate(&binary(&names, weight), &schema, rows.clone(), workers).unwrap();
            assert_metrics(
                &got,
                &names,
                &expected,
                1e-12,
                &format!("{name}, {workers} workers"),
            );
            // Grouping ties makes the metrics independent of the rows' order.
            rows.reverse();
            rows.rotate_left(37);
        }
    }
}

fn multiclass(metrics: &[&str], weight: Option<&str>) -> MulticlassClassificationEvaluator {
    let mut stage = MulticlassClassificationEvaluator::new()
        .set(
            &MULTICLASS_METRICS_NAMES,
            metrics.iter().map(|m| m.to_string()).collect(),
        )
        .unwrap();
    if let Some(w) = weight {
        stage = stage.set(&WEIGHT_COL, w.to_string()).unwrap();
    }
    stage
}

#[test]
fn scikit_learns_multiclass_metrics() {
    let names = [
        "accuracy",
        "weightedPrecision",
        "weightedRecall",
        "f1",
        "macroF1",
    ];
    for case in fixture("MulticlassClassificationEvaluator") {
        let name = case["name"].as_str().unwrap();
        let schema = Schema::new([
            ("label", DataType::Double),
            ("prediction", DataType::Double),
            ("weight", DataType::Double),
        ]);
        let weight = (!case["weight"].is_null()).then_some("weight");
        let expected: Vec<f64> = names
            .iter()
            .map(|n| case["expected"][n].as_f64().unwrap())
            .collect();
        for workers in [1, 2, 3] {
            let rows = case_rows(&case, "prediction");
            let got = evaluate(&multiclass(&names, weight), &schema, rows, workers).unwrap();
            assert_metrics(
                &got,
                &names,
                &expected,
                1e-12,
                &format!("{name}, {workers} workers"),
            );
        }
    }
}

#[test]
fn the_multiclass_evaluator_is_weirs_and_saves_and_loads() {
    let eval = MulticlassClassificationEvaluator::new();
    assert_eq!(eval.class_name(), "weir.MulticlassClassificationEvaluator");
    assert_eq!(eval.kind(), StageKind::AlgoOperator);
    assert_eq!(
        eval.get(&MULTICLASS_METRICS_NAMES).unwrap(),
        vec!["accuracy", "weightedPrecision", "weightedRecall", "f1"]
    );
    for name in [
        "weir.MulticlassClassificationEvaluator",
        "MulticlassClassificationEvaluator",
    ] {
        assert_eq!(
            new_stage(name).unwrap().class_name(),
            "weir.MulticlassClassificationEvaluator"
        );
    }
    let eval = multiclass(&["macroF1", "accuracy"], Some("w"));
    let dir = tempfile::tempdir().unwrap();
    eval.save(dir.path()).unwrap();
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.param_map().to_json(), eval.param_map().to_json());
    let schema = Schema::new([
        ("label", DataType::Long),
        ("prediction", DataType::Long),
        ("w", DataType::Long),
    ]);
    let rows = [(0, 0, 1), (1, 1, 2), (2, 1, 1), (2, 2, 1)]
        .iter()
        .map(|(l, p, w)| vec![Value::Long(*l), Value::Long(*p), Value::Long(*w)])
        .collect();
    let got = evaluate(&*loaded, &schema, rows, 2).unwrap();
    // Class 1: tp 2, true 2, predicted 3 -> F1 0.8; class 2: tp 1, true 2, predicted 1 -> 2/3.
    assert_metrics(
        &got,
        &["macroF1", "accuracy"],
        &[(1.0 + 0.8 + 2.0 / 3.0) / 3.0, 0.8],
        1e-12,
        "weighted, loaded",
    );
}

#[test]
fn bad_params_and_inputs_are_errors_naming_what_is_wrong() {
    let e = BinaryClassificationEvaluator::new()
        .set(&METRICS_NAMES, vec!["accuracy".into()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("metricsNames") && e.contains("areaUnderLorenz"),
        "{e}"
    );
    let (schema, rows) = scored(&INPUT_DATA);
    let e = evaluate(&binary(&["ks", "ks"], None), &schema, rows.clone(), 2).unwrap_err();
    assert!(e.contains("names metric ks twice"), "{e}");
    let e = evaluate(&binary(&["ks"], Some("w")), &schema, rows.clone(), 2).unwrap_err();
    assert!(e.contains("no column `w`"), "{e}");
    let mut nan = rows.clone();
    nan[5][0] = Value::Double(f64::NAN);
    let e = evaluate(&binary(&["ks"], None), &schema, nan, 2).unwrap_err();
    assert!(
        e.contains("BinaryClassificationEvaluator") && e.contains("`label`") && e.contains("NaN"),
        "{e}"
    );
    let mut short = rows.clone();
    for r in short.iter_mut() {
        r[1] = Value::DenseVector(vec![0.5]);
    }
    let e = evaluate(&binary(&["ks"], None), &schema, short, 1).unwrap_err();
    assert!(
        e.contains("vector of size 1") && e.contains("[p0, p1]"),
        "{e}"
    );
    let schema_s = Schema::new([
        ("label", DataType::Double),
        ("rawPrediction", DataType::String),
    ]);
    let e = evaluate(
        &binary(&["ks"], None),
        &schema_s,
        vec![vec![Value::Double(1.0), Value::String("x".into())]],
        1,
    )
    .unwrap_err();
    assert!(e.contains("`rawPrediction` must be"), "{e}");

    // No rows: Flink's zeros.
    let got = evaluate(&binary(&PR_KS_ROC, None), &schema, Vec::new(), 2).unwrap();
    assert_metrics(&got, &PR_KS_ROC, &[0.0, 0.0, 0.0], 0.0, "no rows");

    let e = MulticlassClassificationEvaluator::new()
        .set(&MULTICLASS_METRICS_NAMES, vec!["areaUnderROC".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("metricsNames") && e.contains("macroF1"), "{e}");
    let schema = Schema::new([
        ("label", DataType::Double),
        ("prediction", DataType::Double),
    ]);
    let e = evaluate(
        &multiclass(&["accuracy"], None),
        &schema,
        vec![vec![Value::Double(1.0), Value::Double(f64::NAN)]],
        2,
    )
    .unwrap_err();
    assert!(e.contains("`prediction`") && e.contains("NaN"), "{e}");
}

/// Runs `stage` on `rows` (batches of `batch_rows`) on `workers` threads: every output row.
fn evaluate_stream(
    stage: &dyn Stage,
    schema: &Schema,
    rows: Vec<Vec<Value>>,
    batch_rows: usize,
    workers: usize,
) -> Result<Vec<Json>, String> {
    let out = TableCollector::new();
    let sink = out.clone();
    let (stage, schema) = (stage.clone_stage(), schema.clone());
    execute(Config::threads(workers), move |job| {
        let batches = RowBatch::from_rows(&schema, rows.clone(), batch_rows)?;
        let table = Table::from_batches(job, "input", schema.clone(), batches);
        stage
            .transform(job, vec![table])?
            .remove(0)
            .collect("metrics", &sink);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out.json_rows())
}

/// A stream of (label, prediction) pairs whose predictions get better: row `i` is right
/// unless `i % 10` is below the number of mistakes of its hundred (9 in the first hundred, 0
/// from the tenth on), as an online learner's would.
fn improving_stream() -> Vec<(f64, f64)> {
    (0..1000)
        .map(|i| {
            let label = (i % 3) as f64;
            let mistakes = 9usize.saturating_sub(i / 100);
            let prediction = if i % 10 < mistakes {
                (label + 1.0) % 3.0
            } else {
                label
            };
            (label, prediction)
        })
        .collect()
}

/// Prequential evaluation: with `CountTumblingWindows`, the evaluators give a row of metrics
/// per window of rows as they arrive (the last, incomplete window dropped, as Flink's count
/// windows drop it); at 1 worker the windows are the stream's consecutive rows, at more the
/// windows hold other rows but together all complete ones.
#[test]
fn count_windows_evaluate_a_stream_window_by_window() {
    let windows =
        json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 100});
    let mut stage = multiclass(&["accuracy"], None);
    stage
        .param_map_mut()
        .set_json("windows", windows.clone())
        .unwrap();
    let schema = Schema::new([
        ("label", DataType::Double),
        ("prediction", DataType::Double),
    ]);
    let stream = improving_stream();
    let rows: Vec<Vec<Value>> = stream
        .iter()
        .map(|(l, p)| vec![Value::Double(*l), Value::Double(*p)])
        .collect();
    // Batches of 30 rows: windows end inside batches.
    let got = evaluate_stream(&stage, &schema, rows.clone(), 30, 1).unwrap();
    let accuracies: Vec<f64> = got
        .iter()
        .map(|r| r["accuracy"].as_f64().unwrap())
        .collect();
    let expected: Vec<f64> = stream
        .chunks(100)
        .map(|w| w.iter().filter(|(l, p)| l == p).count() as f64 / 100.0)
        .collect();
    assert_eq!(accuracies, expected);
    assert_eq!(accuracies[0], 0.1);
    assert_eq!(accuracies[9], 1.0);
    for workers in [2, 3] {
        let got = evaluate_stream(&stage, &schema, rows.clone(), 30, workers).unwrap();
        assert_eq!(got.len(), 10, "{workers} workers");
        let mean = got
            .iter()
            .map(|r| r["accuracy"].as_f64().unwrap())
            .sum::<f64>()
            / 10.0;
        let overall = expected.iter().sum::<f64>() / 10.0;
        assert!(
            (mean - overall).abs() < 1e-12,
            "{workers} workers: {mean} vs {overall}"
        );
    }
    // 1,050 rows: the last 50 are an incomplete window, never evaluated.
    let mut more = rows.clone();
    more.extend(rows[..50].iter().cloned());
    assert_eq!(
        evaluate_stream(&stage, &schema, more, 30, 1).unwrap().len(),
        10
    );

    // The binary evaluator: areaUnderROC of each window of 4 scored rows.
    let mut binary = binary(&["areaUnderROC"], None);
    binary
        .param_map_mut()
        .set_json(
            "windows",
            json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 4}),
        )
        .unwrap();
    let (schema, rows) = scored(&[
        (1.0, [0.1, 0.9]),
        (0.0, [0.8, 0.2]),
        (1.0, [0.3, 0.7]),
        (0.0, [0.6, 0.4]),
        (1.0, [0.8, 0.2]),
        (0.0, [0.1, 0.9]),
        (1.0, [0.3, 0.7]),
        (0.0, [0.6, 0.4]),
    ]);
    let got = evaluate_stream(&binary, &schema, rows, 3, 1).unwrap();
    let auc: Vec<f64> = got
        .iter()
        .map(|r| r["areaUnderROC"].as_f64().unwrap())
        .collect();
    // Window 1 ranks both positives first; window 2 ranks a negative first, then the
    // positive at 0.7 above the negative at 0.4, then the positive at 0.2 last.
    assert_eq!(auc, vec![1.0, 0.25]);

    // Time windows need event or processing time, which tables do not carry.
    let mut timed = multiclass(&["accuracy"], None);
    timed.param_map_mut().set_json("windows", json!({"class": "org.apache.flink.ml.common.window.EventTimeTumblingWindows", "size": 1000})).unwrap();
    let schema = Schema::new([
        ("label", DataType::Double),
        ("prediction", DataType::Double),
    ]);
    let error = evaluate_stream(&timed, &schema, Vec::new(), 30, 1).unwrap_err();
    assert!(
        error.contains("EventTimeTumblingWindows") && error.contains("CountTumblingWindows"),
        "{error}"
    );
}
