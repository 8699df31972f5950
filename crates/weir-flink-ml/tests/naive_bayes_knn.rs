//! NaiveBayes and Knn: Flink ML's own unit tests (NaiveBayesTest, KnnTest) as exact
//! expectations, scikit-learn parity on the bundled data sets (fixtures/flink-ml/
//! {NaiveBayes,Knn}.json, written by scripts/flink_ml_fixtures/learning_nb_knn.py) at 1 and 2
//! workers, save/load and params JSON round trips, and errors for bad input.

mod support;

use std::path::PathBuf;

use serde_json::{json, Value as Json};
use support::{fit_transform, Dataset};
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, new_stage, ModelCollector, Stage};
use weir_flink_ml::classification::knn::{Knn, KnnModel, KnnModelData, K};
use weir_flink_ml::classification::naive_bayes::{
    NaiveBayes, NaiveBayesModel, NaiveBayesModelData, SMOOTHING,
};
use weir_flink_ml::param::{HasFeaturesCol, HasLabelCol, HasPredictionCol, WithParams};
use weir_flink_ml::table::{DataType, Schema, SparseVector, Table, TableCollector, Value};

fn cases(stage: &str) -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../fixtures/flink-ml/{stage}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn floats(json: &Json) -> Vec<f64> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn indices(json: &Json) -> Vec<usize> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// What a job gives: the output rows of the stage (a fitted estimator's transform of
/// `test`, or a model's transform), in the order of the `row` column if there is one.
fn run(
    stage: &dyn Stage,
    train: Option<(Schema, Vec<Vec<Value>>)>,
    test: (Schema, Vec<Vec<Value>>),
    workers: usize,
) -> Result<RowsAndModel, String> {
    run_with_columns(stage, train, test, workers).map(|(rows, _, model)| (rows, model))
}

/// [`run`], with the output's column names.
fn run_with_columns(
    stage: &dyn Stage,
    train: Option<(Schema, Vec<Vec<Value>>)>,
    test: (Schema, Vec<Vec<Value>>),
    workers: usize,
) -> Result<Output, String> {
    let out = TableCollector::new();
    let models = ModelCollector::new();
    let (sink, model_sink) = (out.clone(), models.clone());
    let stage = stage.clone_stage();
    let fitting = train.is_some();
    execute(Config::threads(workers), move |job| {
        let test = Table::from_rows(job, "test", test.0.clone(), test.1.clone())?;
        let output = match &train {
            Some((schema, rows)) => {
                let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
                let fitted = stage.fit(job, vec![train])?;
                let output = fitted.transform(job, vec![test])?;
                fitted.collect(job, &model_sink);
                output
            }
            None => stage.transform(job, vec![test])?,
        };
        output.into_iter().next().unwrap().collect("out", &sink);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let mut rows = out.json_rows();
    if rows.first().is_some_and(|r| r.get("row").is_some()) {
        rows.sort_by_key(|r| r["row"].as_i64().unwrap());
    }
    let model = if fitting {
        Some(models.model().map_err(|e| e.to_string())?)
    } else {
        None
    };
    let columns = out
        .schema()
        .map(|s| s.names().iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    Ok((rows, columns, model))
}

/// The error of a job expected to fail.
trait Failure {
    fn failure(self) -> String;
}

impl<T> Failure for Result<T, String> {
    fn failure(self) -> String {
        match self {
            Ok(_) => panic!("expected the job to fail"),
            Err(e) => e,
        }
    }
}

/// A job's output rows, its column names and the fitted model.
type Output = (Vec<Json>, Vec<String>, Option<Box<dyn Stage>>);

/// A job's output rows and the fitted model.
type RowsAndModel = (Vec<Json>, Option<Box<dyn Stage>>);

fn vector_label_schema(label: DataType) -> Schema {
    Schema::new([("features", DataType::DenseVector), ("label", label)])
}

fn dense_rows(rows: &[(&[f64], f64)]) -> Vec<Vec<Value>> {
    rows.iter()
        .map(|(x, y)| vec![Value::DenseVector(x.to_vec()), Value::Double(*y)])
        .collect()
}

fn features_only(rows: &[&[f64]]) -> (Schema, Vec<Vec<Value>>) {
    (
        Schema::new([("features", DataType::DenseVector)]),
        rows.iter()
            .map(|x| vec![Value::DenseVector(x.to_vec())])
            .collect(),
    )
}

fn prediction_of(rows: &[Json], features: &[f64]) -> f64 {
    rows.iter()
        .find(|r| floats(&r["features"]) == features)
        .unwrap_or_else(|| panic!("no row {features:?} in {rows:?}"))["prediction"]
        .as_f64()
        .unwrap()
}

fn nb_model_data(model: &dyn Stage) -> NaiveBayesModelData {
    let data = &model.model_data().unwrap()[0];
    NaiveBayesModelData::from_batches(&data.schema, &data.batches).unwrap()
}

fn knn_model_data(model: &dyn Stage) -> KnnModelData {
    let data = &model.model_data().unwrap()[0];
    KnnModelData::from_batches(&data.schema, &data.batches).unwrap()
}

// ---------------------------------------------------------------- NaiveBayes, Flink's tests

/// NaiveBayesTest's training rows (labels are `Integer`s).
fn flink_nb_train() -> (Schema, Vec<Vec<Value>>) {
    let rows = [([0.0, 0.0], 11), ([1.0, 0.0], 10), ([1.0, 1.0], 10)]
        .iter()
        .map(|(x, y)| vec![Value::DenseVector(x.to_vec()), Value::Long(*y)])
        .collect();
    (vector_label_schema(DataType::Long), rows)
}

const FLINK_NB_EXPECTED: [([f64; 2], f64); 4] = [
    ([0.0, 1.0], 11.0),
    ([0.0, 0.0], 11.0),
    ([1.0, 0.0], 10.0),
    ([1.0, 1.0], 10.0),
];

fn flink_nb_predict() -> (Schema, Vec<Vec<Value>>) {
    features_only(&[&[0.0, 1.0], &[0.0, 0.0], &[1.0, 0.0], &[1.0, 1.0]])
}

fn flink_nb_estimator() -> NaiveBayes {
    NaiveBayes::new()
        .set(&SMOOTHING, 1.0)
        .unwrap()
        .set_features_col("features")
        .unwrap()
        .set_label_col("label")
        .unwrap()
        .set_prediction_col("prediction")
        .unwrap()
        .set(
            &weir_flink_ml::classification::naive_bayes::MODEL_TYPE,
            "multinomial".to_string(),
        )
        .unwrap()
}

fn check_flink_nb_output(rows: &[Json], features_col: &str, prediction_col: &str) {
    assert_eq!(rows.len(), 4);
    for (x, expected) in FLINK_NB_EXPECTED {
        let row = rows
            .iter()
            .find(|r| floats(&r[features_col]) == x)
            .unwrap_or_else(|| panic!("{x:?} in {rows:?}"));
        assert_eq!(row[prediction_col].as_f64(), Some(expected), "{x:?}");
    }
}

#[test]
fn naive_bayes_params_as_flinks_test_param() {
    let nb = NaiveBayes::new();
    assert_eq!(nb.features_col().unwrap(), "features");
    assert_eq!(nb.label_col().unwrap(), "label");
    assert_eq!(
        nb.get(&weir_flink_ml::classification::naive_bayes::MODEL_TYPE)
            .unwrap(),
        "multinomial"
    );
    assert_eq!(nb.prediction_col().unwrap(), "prediction");
    assert_eq!(nb.get(&SMOOTHING).unwrap(), 1.0);
    let nb = nb
        .set_features_col("test_feature")
        .unwrap()
        .set_label_col("test_label")
        .unwrap()
        .set_prediction_col("test_prediction")
        .unwrap()
        .set(&SMOOTHING, 2.0)
        .unwrap();
    assert_eq!(nb.features_col().unwrap(), "test_feature");
    assert_eq!(nb.label_col().unwrap(), "test_label");
    assert_eq!(nb.prediction_col().unwrap(), "test_prediction");
    assert_eq!(nb.get(&SMOOTHING).unwrap(), 2.0);
    let model = NaiveBayesModel::new();
    assert_eq!(model.features_col().unwrap(), "features");
    assert_eq!(model.prediction_col().unwrap(), "prediction");
    assert!(NaiveBayes::new().set(&SMOOTHING, -0.1).is_err());
    assert!(NaiveBayes::new()
        .set(
            &weir_flink_ml::classification::naive_bayes::MODEL_TYPE,
            "bernoulli".to_string()
        )
        .is_err());
}

#[test]
fn naive_bayes_fit_and_predict_as_flinks_tests() {
    for workers in [1, 2] {
        // testFitAndPredict
        let (rows, model) = run(
            &flink_nb_estimator(),
            Some(flink_nb_train()),
            flink_nb_predict(),
            workers,
        )
        .unwrap();
        check_flink_nb_output(&rows, "features", "prediction");
        // testSetModelData: a new model with the fitted model's data and params.
        let model = model.unwrap();
        let mut b = NaiveBayesModel::new();
        b.param_map_mut()
            .copy_existing_from(model.param_map())
            .unwrap();
        b.set_model_data(model.model_data().unwrap().to_vec())
            .unwrap();
        let (rows, _) = run(&b, None, flink_nb_predict(), workers).unwrap();
        check_flink_nb_output(&rows, "features", "prediction");

        // testInputTypeConversion: sparse vectors and Integer labels.
        let sparse = |x: &[f64]| Value::SparseVector(SparseVector::from_dense(x));
        let (_, train) = flink_nb_train();
        let train: Vec<Vec<Value>> = train
            .into_iter()
            .map(|r| match &r[0] {
                Value::DenseVector(x) => vec![sparse(x), r[1].clone()],
                _ => unreachable!(),
            })
            .collect();
        let train_schema = Schema::new([
            ("features", DataType::SparseVector),
            ("label", DataType::Long),
        ]);
        let test_schema = Schema::new([("features", DataType::SparseVector)]);
        let test = FLINK_NB_EXPECTED
            .iter()
            .map(|(x, _)| vec![sparse(x)])
            .collect();
        let (rows, _) = run(
            &flink_nb_estimator(),
            Some((train_schema, train)),
            (test_schema, test),
            workers,
        )
        .unwrap();
        let rows: Vec<Json> = rows
            .into_iter()
            .map(|mut r| {
                let Ok(Value::SparseVector(sv)) =
                    Value::from_json(DataType::SparseVector, &r["features"])
                else {
                    panic!("{}", r["features"])
                };
                r["features"] = json!(sv.to_dense());
                r
            })
            .collect();
        check_flink_nb_output(&rows, "features", "prediction");

        // testOutputSchema: other column names.
        let nb = flink_nb_estimator()
            .set_features_col("test_features")
            .unwrap()
            .set_label_col("test_label")
            .unwrap()
            .set_prediction_col("test_prediction")
            .unwrap();
        let (_, train) = flink_nb_train();
        let train_schema = Schema::new([
            ("test_features", DataType::DenseVector),
            ("test_label", DataType::Long),
        ]);
        let (_, test) = flink_nb_predict();
        let test_schema = Schema::new([("test_features", DataType::DenseVector)]);
        let (rows, columns, _) = run_with_columns(
            &nb,
            Some((train_schema, train)),
            (test_schema, test),
            workers,
        )
        .unwrap();
        assert_eq!(columns, ["test_features", "test_prediction"]);
        check_flink_nb_output(&rows, "test_features", "test_prediction");
    }
}

#[test]
fn naive_bayes_errors_as_flinks_tests() {
    // testPredictUnseenFeature: Flink fails with a NullPointerException.
    let error = run(
        &flink_nb_estimator(),
        Some(flink_nb_train()),
        features_only(&[&[2.0, 1.0]]),
        2,
    )
    .failure();
    assert!(
        error.contains("NaiveBayesModel")
            && error.contains("feature 0 has the value 2")
            && error.contains("NullPointerException"),
        "{error}"
    );
    // testVectorWithDiffLen, testVectorWithDiffLen2.
    for train in [
        dense_rows(&[(&[0.0, 0.0], 11.0), (&[1.0, 0.0], 10.0), (&[1.0], 10.0)]),
        dense_rows(&[(&[0.0, 0.0], 11.0), (&[1.0], 10.0)]),
    ] {
        let error = run(
            &flink_nb_estimator(),
            Some((vector_label_schema(DataType::Double), train.clone())),
            features_only(&[&[0.0, 0.0]]),
            1,
        )
        .failure();
        let expected = "NaiveBayes: Feature vectors should be of equal length.";
        assert!(error.contains(expected), "{error}");
        // Regression: at several workers, the transform's "the model data is empty" (the
        // failed fit left it so) could be the job's error instead of the fit's.
        for workers in [1, 2, 3, 2, 3] {
            let schema = vector_label_schema(DataType::Double);
            let test = features_only(&[&[0.0, 0.0]]);
            let error = run(
                &flink_nb_estimator(),
                Some((schema, train.clone())),
                test,
                workers,
            )
            .failure();
            assert!(error.contains(expected), "{workers} workers: {error}");
        }
    }
}

#[test]
fn naive_bayes_model_data_as_flinks_test_get_model_data() {
    let train = dense_rows(&[(&[1.0, 1.0], 11.0), (&[2.0, 1.0], 11.0)]);
    let (_, model) = run(
        &flink_nb_estimator(),
        Some((vector_label_schema(DataType::Double), train)),
        features_only(&[&[1.0, 1.0]]),
        2,
    )
    .unwrap();
    let data = nb_model_data(&*model.unwrap());
    assert_eq!(data.labels, [11.0]);
    assert!(data.pi_array[0].abs() < 1e-5);
    assert!((data.log_prob(0, 0, 1.0).unwrap() + std::f64::consts::LN_2).abs() < 1e-12);
    assert!((data.log_prob(0, 0, 2.0).unwrap() + std::f64::consts::LN_2).abs() < 1e-12);
    assert!(data.log_prob(0, 1, 1.0).unwrap().abs() < 1e-12);
    assert_eq!(
        data.theta[0][0],
        [(1.0, data.theta[0][0][0].1), (2.0, data.theta[0][0][1].1)]
    );
}

#[test]
fn naive_bayes_save_load_as_flinks_test_save_load() {
    // The estimator saved and loaded, fitted, and its model saved and loaded.
    let dir = tempfile::tempdir().unwrap();
    let nb = flink_nb_estimator().set(&SMOOTHING, 0.0).unwrap();
    nb.save(&dir.path().join("estimator")).unwrap();
    let loaded = load_stage(&dir.path().join("estimator")).unwrap();
    assert_eq!(loaded.class_name(), NaiveBayes::CLASS);
    assert_eq!(loaded.param_map().to_json(), nb.param_map().to_json());
    let seen = || features_only(&[&[0.0, 0.0], &[1.0, 1.0]]);
    let (_, model) = run(&*loaded, Some(flink_nb_train()), seen(), 2).unwrap();
    let model = model.unwrap();
    // Smoothing 0: the values a label never had have log probability -inf, which the
    // saved model data keeps.
    let data = nb_model_data(&*model);
    assert_eq!(data.labels, [10.0, 11.0]);
    // Label 11 never had feature 1 = 1.
    assert_eq!(data.log_prob(1, 1, 1.0), Some(f64::NEG_INFINITY));
    model.save(&dir.path().join("model")).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model/metadata")).unwrap())
            .unwrap();
    assert_eq!(metadata["className"], NaiveBayesModel::CLASS);
    assert_eq!(metadata["paramMap"]["modelType"], "multinomial");
    let reloaded = load_stage(&dir.path().join("model")).unwrap();
    assert_eq!(nb_model_data(&*reloaded), data);
    let (rows, _) = run(&*reloaded, None, seen(), 2).unwrap();
    assert_eq!(prediction_of(&rows, &[0.0, 0.0]), 11.0);
    assert_eq!(prediction_of(&rows, &[1.0, 1.0]), 10.0);
    // [0, 1] has probability 0 with both labels (label 10 never had feature 0 = 0, label 11
    // never feature 1 = 1): Flink's `checkArgument(maxVal > -inf)` fails, and so does Weir.
    let error = run(&*reloaded, None, features_only(&[&[0.0, 1.0]]), 1).failure();
    assert!(
        error.contains("NaiveBayesModel: row 0: every label has probability 0"),
        "{error}"
    );
}

#[test]
fn naive_bayes_bad_input_fails_naming_stage_column_and_row() {
    let nb = NaiveBayes::new();
    // A label column that is not numeric.
    let schema = Schema::new([
        ("features", DataType::DenseVector),
        ("label", DataType::String),
    ]);
    let rows = vec![vec![
        Value::DenseVector(vec![1.0]),
        Value::String("a".into()),
    ]];
    let error = run(&nb, Some((schema, rows)), features_only(&[&[1.0]]), 1).failure();
    assert!(
        error.contains("NaiveBayes") && error.contains("`label`"),
        "{error}"
    );
    // A features column that is not a vector.
    let schema = Schema::new([("features", DataType::Double), ("label", DataType::Double)]);
    let rows = vec![vec![Value::Double(1.0), Value::Double(1.0)]];
    let error = run(&nb, Some((schema, rows)), features_only(&[&[1.0]]), 1).failure();
    assert!(
        error.contains("NaiveBayes") && error.contains("`features`"),
        "{error}"
    );
    // Labels that are not indexed numbers, or missing.
    for label in [0.5, f64::NAN] {
        let rows = dense_rows(&[(&[1.0], 1.0), (&[0.0], label)]);
        let error = run(
            &nb,
            Some((vector_label_schema(DataType::Double), rows)),
            features_only(&[&[1.0]]),
            1,
        )
        .failure();
        assert!(
            error.contains("NaiveBayes") && error.contains("row 1"),
            "{error}"
        );
    }
    // No training rows.
    let empty = Some((vector_label_schema(DataType::Double), Vec::new()));
    let error = run(&nb, empty, features_only(&[&[1.0]]), 2).failure();
    assert!(
        error.contains("NaiveBayes: the training data is empty"),
        "{error}"
    );
    // A vector of another size at prediction.
    let error = run(
        &nb,
        Some((
            vector_label_schema(DataType::Double),
            dense_rows(&[(&[1.0], 1.0)]),
        )),
        features_only(&[&[1.0, 2.0]]),
        1,
    )
    .failure();
    assert!(
        error.contains("NaiveBayesModel: row 0 has a vector of size 2"),
        "{error}"
    );
}

// ---------------------------------------------------------------- NaiveBayes, scikit-learn

/// The data set of a NaiveBayes case: quartile bins from the fixture's edges (the number of
/// inner edges at most the value), or the raw values (digits).
fn nb_dataset(case: &Json) -> Dataset {
    let data = Dataset::load(case["dataset"].as_str().unwrap());
    match case["binEdges"].as_array() {
        None => data,
        Some(edges) => {
            let edges: Vec<Vec<f64>> = edges.iter().map(floats).collect();
            let features = data
                .features
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&edges)
                        .map(|(v, e)| e.iter().filter(|&&edge| edge <= *v).count() as f64)
                        .collect()
                })
                .collect();
            Dataset { features, ..data }
        }
    }
}

#[test]
fn naive_bayes_matches_scikit_learn_categorical_nb() {
    for case in cases("NaiveBayes") {
        let data = nb_dataset(&case);
        let test = indices(&case["test"]);
        let tolerance = case["tolerance"].as_f64().unwrap();
        for run_case in case["runs"].as_array().unwrap() {
            let smoothing = run_case["smoothing"].as_f64().unwrap();
            let nb = NaiveBayes::new().set(&SMOOTHING, smoothing).unwrap();
            let one = fit_transform(&nb, &data, &data.train, &test, 1);
            let two = fit_transform(&nb, &data, &data.train, &test, 2);
            let name = format!("{} smoothing {smoothing}", case["name"]);
            let model = nb_model_data(&*one.model);
            assert_eq!(nb_model_data(&*two.model), model, "{name}: 2 workers");
            assert_eq!(model.labels, floats(&run_case["labels"]), "{name}");
            for (a, b) in model.pi_array.iter().zip(floats(&run_case["piArray"])) {
                assert!((a - b).abs() <= tolerance, "{name}: piArray {a} {b}");
            }
            if let Some(theta) = run_case["theta"].as_array() {
                for (c, per_label) in theta.iter().enumerate() {
                    for (j, expected) in per_label.as_array().unwrap().iter().enumerate() {
                        let ours: Vec<f64> = model.theta[c][j].iter().map(|p| p.1).collect();
                        let expected = floats(expected);
                        assert_eq!(ours.len(), expected.len(), "{name}: theta[{c}][{j}]");
                        for (a, b) in ours.iter().zip(&expected) {
                            assert!((a - b).abs() <= tolerance, "{name}: theta[{c}][{j}]");
                        }
                    }
                }
            }
            let near_ties = indices(&run_case["nearTies"]);
            let expected = floats(&run_case["predictions"]);
            for rows in [&one.rows, &two.rows] {
                assert_eq!(rows.len(), test.len());
                for (r, e) in rows.iter().zip(&expected) {
                    let i = r["row"].as_u64().unwrap() as usize;
                    if !near_ties.contains(&i) {
                        assert_eq!(r["prediction"].as_f64(), Some(*e), "{name}: row {i}");
                    }
                }
            }
            let ours = support::accuracy(&data, &one.rows, "prediction");
            let theirs = run_case["accuracy"].as_f64().unwrap();
            println!("{name}: accuracy {ours}, scikit-learn {theirs}");
            assert_eq!(ours, theirs, "{name}");
        }
    }
}

#[test]
fn naive_bayes_model_is_saved_loaded_and_predicts_the_same() {
    let case = &cases("NaiveBayes")[0];
    let data = nb_dataset(case);
    let test = indices(&case["test"]);
    let nb = NaiveBayes::new().set(&SMOOTHING, 0.5).unwrap();
    let fitted = fit_transform(&nb, &data, &data.train, &test, 2);
    let dir = tempfile::tempdir().unwrap();
    fitted.model.save(dir.path()).unwrap();
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.class_name(), NaiveBayesModel::CLASS);
    assert_eq!(
        loaded.param_map().to_json(),
        fitted.model.param_map().to_json()
    );
    assert_eq!(nb_model_data(&*loaded), nb_model_data(&*fitted.model));
    let (rows, _) = run(&*loaded, None, (Dataset::schema(), data.rows(&test)), 2).unwrap();
    assert_eq!(rows, fitted.rows);

    // Params JSON round trips.
    let params = nb.param_map().to_json();
    assert_eq!(params["smoothing"], json!(0.5));
    let mut back = new_stage("NaiveBayes").unwrap();
    back.param_map_mut().update_from_json(&params).unwrap();
    assert_eq!(back.param_map().to_json(), params);
    let mut bad = new_stage("NaiveBayes").unwrap();
    assert!(bad
        .param_map_mut()
        .update_from_json(json!({"smoothing": -1.0}).as_object().unwrap())
        .is_err());
}

// ---------------------------------------------------------------- Knn, Flink's tests

fn flink_knn_train() -> (Schema, Vec<Vec<Value>>) {
    let rows: [(&[f64], f64); 21] = [
        (&[2.0, 3.0], 1.0),
        (&[2.1, 3.1], 1.0),
        (&[200.1, 300.1], 2.0),
        (&[200.2, 300.2], 2.0),
        (&[200.3, 300.3], 2.0),
        (&[200.4, 300.4], 2.0),
        (&[200.4, 300.4], 2.0),
        (&[200.6, 300.6], 2.0),
        (&[2.1, 3.1], 1.0),
        (&[2.1, 3.1], 1.0),
        (&[2.1, 3.1], 1.0),
        (&[2.1, 3.1], 1.0),
        (&[2.3, 3.2], 1.0),
        (&[2.3, 3.2], 1.0),
        (&[2.8, 3.2], 3.0),
        (&[300., 3.2], 4.0),
        (&[2.2, 3.2], 1.0),
        (&[2.4, 3.2], 5.0),
        (&[2.5, 3.2], 5.0),
        (&[2.5, 3.2], 5.0),
        (&[2.1, 3.1], 1.0),
    ];
    (vector_label_schema(DataType::Double), dense_rows(&rows))
}

fn flink_knn_predict() -> (Schema, Vec<Vec<Value>>) {
    (
        vector_label_schema(DataType::Double),
        dense_rows(&[(&[4.0, 4.1], 5.0), (&[300.0, 42.0], 2.0)]),
    )
}

/// KnnTest's `verifyPredictionResult`: every prediction is the row's label.
fn check_flink_knn(rows: &[Json], label: &str, prediction: &str) {
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r[label].as_f64(), r[prediction].as_f64(), "{r}");
    }
}

#[test]
fn knn_params_as_flinks_test_param() {
    let knn = Knn::new();
    assert_eq!(knn.features_col().unwrap(), "features");
    assert_eq!(knn.label_col().unwrap(), "label");
    assert_eq!(knn.get(&K).unwrap(), 5);
    assert_eq!(knn.prediction_col().unwrap(), "prediction");
    let knn = knn
        .set_label_col("test_label")
        .unwrap()
        .set_features_col("test_features")
        .unwrap()
        .set(&K, 4)
        .unwrap()
        .set_prediction_col("test_prediction")
        .unwrap();
    assert_eq!(knn.features_col().unwrap(), "test_features");
    assert_eq!(knn.label_col().unwrap(), "test_label");
    assert_eq!(knn.get(&K).unwrap(), 4);
    assert_eq!(knn.prediction_col().unwrap(), "test_prediction");
    assert!(Knn::new().set(&K, 0).is_err());

    // Params JSON round trips.
    let params = knn.param_map().to_json();
    let mut back = new_stage("Knn").unwrap();
    back.param_map_mut().update_from_json(&params).unwrap();
    assert_eq!(back.param_map().to_json(), params);
    let model = KnnModel::with_params(knn.param_map());
    assert_eq!(model.get(&K).unwrap(), 4);
}

#[test]
fn knn_fit_and_predict_as_flinks_tests() {
    for workers in [1, 2] {
        // testFitAndPredict, testSetModelData
        let (rows, model) = run(
            &Knn::new(),
            Some(flink_knn_train()),
            flink_knn_predict(),
            workers,
        )
        .unwrap();
        check_flink_knn(&rows, "label", "prediction");
        let model = model.unwrap();
        let mut b = KnnModel::new();
        b.param_map_mut()
            .copy_existing_from(model.param_map())
            .unwrap();
        b.set_model_data(model.model_data().unwrap().to_vec())
            .unwrap();
        let (rows, _) = run(&b, None, flink_knn_predict(), workers).unwrap();
        check_flink_knn(&rows, "label", "prediction");

        // testGetModelData
        let data = knn_model_data(&*model);
        assert_eq!(data.num_features(), 2);
        assert_eq!(data.labels.len(), 21);
        assert_eq!(data.feature_norm_squares.len(), data.labels.len());
        assert_eq!(
            KnnModelData::schema().names(),
            ["packedFeatures", "featureNormSquares", "labels"]
        );

        // testFewerDistinctPointsThanCluster: 2 points, k = 5; each row's own label wins the
        // 1:1 vote by Flink's HashMap order.
        let (rows, _) = run(
            &Knn::new(),
            Some(flink_knn_predict()),
            flink_knn_predict(),
            workers,
        )
        .unwrap();
        check_flink_knn(&rows, "label", "prediction");

        // testInputTypeConversion: sparse vectors and Integer labels.
        let convert = |(_, rows): (Schema, Vec<Vec<Value>>)| {
            let rows = rows
                .into_iter()
                .map(|r| match (&r[0], &r[1]) {
                    (Value::DenseVector(x), Value::Double(y)) => vec![
                        Value::SparseVector(SparseVector::from_dense(x)),
                        Value::Long(*y as i64),
                    ],
                    _ => unreachable!(),
                })
                .collect();
            let schema = Schema::new([
                ("features", DataType::SparseVector),
                ("label", DataType::Long),
            ]);
            (schema, rows)
        };
        let (rows, _) = run(
            &Knn::new(),
            Some(convert(flink_knn_train())),
            convert(flink_knn_predict()),
            workers,
        )
        .unwrap();
        check_flink_knn(&rows, "label", "prediction");

        // testOutputSchema
        let knn = Knn::new()
            .set_label_col("test_label")
            .unwrap()
            .set_features_col("test_features")
            .unwrap()
            .set(&K, 4)
            .unwrap()
            .set_prediction_col("test_prediction")
            .unwrap();
        let rename = |(_, rows): (Schema, Vec<Vec<Value>>)| {
            let schema = Schema::new([
                ("test_features", DataType::DenseVector),
                ("test_label", DataType::Double),
            ]);
            (schema, rows)
        };
        let (rows, columns, _) = run_with_columns(
            &knn,
            Some(rename(flink_knn_train())),
            rename(flink_knn_predict()),
            workers,
        )
        .unwrap();
        assert_eq!(columns, ["test_features", "test_label", "test_prediction"]);
        check_flink_knn(&rows, "test_label", "test_prediction");
    }
}

#[test]
fn knn_save_load_as_flinks_tests() {
    // testSaveLoadAndPredict, testModelSaveLoadAndPredict
    let dir = tempfile::tempdir().unwrap();
    let knn = Knn::new();
    knn.save(&dir.path().join("estimator")).unwrap();
    let loaded = load_stage(&dir.path().join("estimator")).unwrap();
    assert_eq!(loaded.class_name(), Knn::CLASS);
    let (_, model) = run(&*loaded, Some(flink_knn_train()), flink_knn_predict(), 2).unwrap();
    let model = model.unwrap();
    model.save(&dir.path().join("model")).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model/metadata")).unwrap())
            .unwrap();
    assert_eq!(metadata["className"], KnnModel::CLASS);
    assert_eq!(
        metadata["modelData"][0]["schema"],
        json!([
            ["packedFeatures", "DenseVector"],
            ["featureNormSquares", "DenseVector"],
            ["labels", "DenseVector"]
        ])
    );
    let reloaded = load_stage(&dir.path().join("model")).unwrap();
    assert_eq!(knn_model_data(&*reloaded), knn_model_data(&*model));
    let (rows, _) = run(&*reloaded, None, flink_knn_predict(), 2).unwrap();
    check_flink_knn(&rows, "label", "prediction");
}

#[test]
fn knn_ties_follow_flinks_priority_queue_and_hash_map() {
    // Two points of label 2.0 at distance 1 and two of label 1.0 at distance 2 (k = 4, a
    // 2:2 vote): Flink's map gets 1.0 first, then 2.0 (farthest first); both share bucket 0,
    // and merge inserts at the head, so 2.0 comes first and wins.
    let train = dense_rows(&[
        (&[2.0], 1.0),
        (&[-2.0], 1.0),
        (&[1.0], 2.0),
        (&[-1.0], 2.0),
        (&[9.0], 3.0),
    ]);
    let knn = Knn::new().set(&K, 4).unwrap();
    let (rows, _) = run(
        &knn,
        Some((vector_label_schema(DataType::Double), train.clone())),
        features_only(&[&[0.0]]),
        1,
    )
    .unwrap();
    assert_eq!(rows[0]["prediction"], 2.0);
    // Equal distances at the k-th place: the earlier point stays in the queue (k = 1: the
    // first of the two points at distance 1, label 3.0 ahead of 4.0).
    let train = dense_rows(&[(&[1.0], 3.0), (&[-1.0], 4.0)]);
    let knn = Knn::new().set(&K, 1).unwrap();
    let (rows, _) = run(
        &knn,
        Some((vector_label_schema(DataType::Double), train)),
        features_only(&[&[0.0]]),
        1,
    )
    .unwrap();
    assert_eq!(rows[0]["prediction"], 3.0);
}

#[test]
fn knn_bad_input_fails_naming_stage_column_and_row() {
    let knn = Knn::new();
    let schema = Schema::new([
        ("features", DataType::DenseVector),
        ("label", DataType::String),
    ]);
    let rows = vec![vec![
        Value::DenseVector(vec![1.0]),
        Value::String("a".into()),
    ]];
    let error = run(&knn, Some((schema, rows)), features_only(&[&[1.0]]), 1).failure();
    assert!(
        error.contains("Knn") && error.contains("`label`"),
        "{error}"
    );
    let error = run(
        &knn,
        Some((
            vector_label_schema(DataType::Double),
            dense_rows(&[(&[1.0], 1.0), (&[f64::NAN], 1.0)]),
        )),
        features_only(&[&[1.0]]),
        1,
    )
    .failure();
    assert!(
        error.contains("Knn: row 1") && error.contains("NaN"),
        "{error}"
    );
    let error = run(
        &knn,
        Some((
            vector_label_schema(DataType::Double),
            dense_rows(&[(&[1.0], f64::NAN)]),
        )),
        features_only(&[&[1.0]]),
        1,
    )
    .failure();
    assert!(
        error.contains("Knn: row 0: the label is missing"),
        "{error}"
    );
    let empty = Some((vector_label_schema(DataType::Double), Vec::new()));
    let error = run(&knn, empty, features_only(&[&[1.0]]), 2).failure();
    assert!(error.contains("Knn: the training data is empty"), "{error}");
    let train = Some((
        vector_label_schema(DataType::Double),
        dense_rows(&[(&[1.0], 1.0)]),
    ));
    let error = run(&knn, train.clone(), features_only(&[&[1.0, 2.0]]), 1).failure();
    assert!(
        error.contains("KnnModel") && error.contains("2 elements"),
        "{error}"
    );
    let error = run(&knn, train, features_only(&[&[f64::INFINITY]]), 1).failure();
    assert!(error.contains("KnnModel: row 0"), "{error}");
}

// ---------------------------------------------------------------- Knn, scikit-learn

#[test]
fn knn_matches_scikit_learn_brute_force() {
    for case in cases("Knn") {
        let data = Dataset::load(case["dataset"].as_str().unwrap());
        for run_case in case["runs"].as_array().unwrap() {
            let k = run_case["k"].as_i64().unwrap();
            let knn = Knn::new().set(&K, k).unwrap();
            let name = format!("{} k={k}", case["name"]);
            let one = fit_transform(&knn, &data, &data.train, &data.test, 1);
            let two = fit_transform(&knn, &data, &data.train, &data.test, 2);
            let expected = floats(&run_case["predictions"]);
            let candidates: Vec<Vec<f64>> = run_case["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .map(floats)
                .collect();
            let ties = indices(&run_case["ties"]);
            let mut differ = 0;
            for rows in [&one.rows, &two.rows] {
                assert_eq!(rows.len(), data.test.len());
                for (j, r) in rows.iter().enumerate() {
                    let i = r["row"].as_u64().unwrap() as usize;
                    let ours = r["prediction"].as_f64().unwrap();
                    if ties.contains(&i) {
                        assert!(candidates[j].contains(&ours), "{name}: row {i}: {ours}");
                        if std::ptr::eq(rows, &one.rows) {
                            differ += usize::from(ours != expected[j]);
                        }
                    } else {
                        assert_eq!(ours, expected[j], "{name}: row {i}");
                    }
                }
            }
            // The same model data (points in another order) at 2 workers.
            let (a, b) = (knn_model_data(&*one.model), knn_model_data(&*two.model));
            assert_eq!(a.labels.len(), data.train.len());
            let mut sorted_a: Vec<_> = a.labels.iter().map(|l| l.to_bits()).collect();
            let mut sorted_b: Vec<_> = b.labels.iter().map(|l| l.to_bits()).collect();
            sorted_a.sort_unstable();
            sorted_b.sort_unstable();
            assert_eq!(sorted_a, sorted_b);
            let ours = support::accuracy(&data, &one.rows, "prediction");
            let theirs = run_case["accuracy"].as_f64().unwrap();
            println!(
                "{name}: accuracy {ours}, scikit-learn {theirs}; {} exact ties, {} decided otherwise than scikit-learn",
                ties.len(),
                differ
            );
            assert!(
                (ours - theirs).abs() <= ties.len() as f64 / data.test.len() as f64 + 1e-12,
                "{name}: ours {ours}, scikit-learn {theirs}"
            );
        }
    }
}

#[test]
fn knn_model_is_saved_loaded_and_predicts_the_same() {
    let data = Dataset::load("wine");
    let knn = Knn::new().set(&K, 5).unwrap();
    let fitted = fit_transform(&knn, &data, &data.train, &data.test, 2);
    let dir = tempfile::tempdir().unwrap();
    fitted.model.save(dir.path()).unwrap();
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.class_name(), KnnModel::CLASS);
    assert_eq!(knn_model_data(&*loaded), knn_model_data(&*fitted.model));
    let (rows, _) = run(
        &*loaded,
        None,
        (Dataset::schema(), data.rows(&data.test)),
        2,
    )
    .unwrap();
    assert_eq!(rows, fitted.rows);
}
