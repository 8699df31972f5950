//! KMeans and KMeansModel: Flink ML's KMeansTest example, inertia within 1% of scikit-learn's
//! (k-means++, 10 inits) on the bundled data sets with `initMode` k-means||, the same model at
//! 1, 2 and 3 workers, save/load and params JSON round trips, and errors.

mod support;

use std::path::PathBuf;

use serde_json::{json, Value as Json};
use support::{fit_transform, Dataset};
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, Stage};
use weir_flink_ml::clustering::{KMeans, KMeansModelData};
use weir_flink_ml::param::WithParams;
use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};

fn kmeans(params: Json) -> KMeans {
    let mut stage = KMeans::new();
    stage
        .param_map_mut()
        .update_from_json(params.as_object().unwrap())
        .unwrap();
    stage
}

fn model_data(model: &dyn Stage) -> KMeansModelData {
    let data = &model.model_data().expect("fitted model data")[0];
    KMeansModelData::from_batches(&data.schema, &data.batches).unwrap()
}

/// The sum of squared distances of `points` to their closest centroid.
fn inertia(centroids: &[Vec<f64>], points: &[Vec<f64>]) -> f64 {
    points
        .iter()
        .map(|p| {
            centroids
                .iter()
                .map(|c| c.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
                .fold(f64::INFINITY, f64::min)
        })
        .sum()
}

fn fixture_cases() -> Vec<Json> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flink-ml/KMeans.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn flinks_example_splits_the_two_groups() {
    let points = [
        [0.0, 0.0],
        [0.0, 0.3],
        [0.3, 0.0],
        [9.0, 0.0],
        [9.0, 0.6],
        [9.6, 0.0],
    ];
    let data = Dataset {
        name: "flink".into(),
        classes: 2,
        features: points.iter().map(|p| p.to_vec()).collect(),
        label: vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        train: (0..6).collect(),
        test: (0..6).collect(),
    };
    for mode in ["random", "k-means||"] {
        for workers in [1, 2] {
            let stage = kmeans(json!({"k": 2, "initMode": mode}));
            let result = fit_transform(&stage, &data, &data.train, &data.test, workers);
            let cluster: Vec<i64> = result
                .rows
                .iter()
                .map(|r| r["prediction"].as_i64().unwrap())
                .collect();
            assert_eq!(cluster[0], cluster[1], "{mode}: {cluster:?}");
            assert_eq!(cluster[0], cluster[2], "{mode}: {cluster:?}");
            assert_eq!(cluster[3], cluster[4], "{mode}: {cluster:?}");
            assert_eq!(cluster[3], cluster[5], "{mode}: {cluster:?}");
            assert_ne!(cluster[0], cluster[3], "{mode}: {cluster:?}");
            let mut centroids = model_data(&*result.model).centroids;
            centroids.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let expected = [[0.1, 0.1], [9.2, 0.2]];
            for (c, e) in centroids.iter().zip(expected) {
                assert!(
                    (c[0] - e[0]).abs() < 1e-9 && (c[1] - e[1]).abs() < 1e-9,
                    "{centroids:?}"
                );
            }
            assert_eq!(model_data(&*result.model).weights, vec![3.0, 3.0]);
        }
    }
}

#[test]
fn inertia_is_within_one_percent_of_scikit_learn() {
    for case in fixture_cases() {
        let data = Dataset::load(case["dataset"].as_str().unwrap());
        let stage =
            kmeans(json!({"k": case["k"], "initMode": "k-means||", "maxIter": 300, "seed": 7}));
        let train: Vec<Vec<f64>> = data
            .train
            .iter()
            .map(|&i| data.features[i].clone())
            .collect();
        let mut models = Vec::new();
        for workers in [1, 2, 3] {
            let result = fit_transform(&stage, &data, &data.train, &data.test, workers);
            models.push(model_data(&*result.model));
        }
        let ours = inertia(&models[0].centroids, &train);
        let theirs = case["inertia"].as_f64().unwrap();
        assert!(
            ours <= theirs * (1.0 + case["tolerance"].as_f64().unwrap()),
            "{}: inertia {ours} vs scikit-learn's {theirs}",
            case["name"]
        );
        for other in &models[1..] {
            for (a, b) in other
                .centroids
                .iter()
                .flatten()
                .zip(models[0].centroids.iter().flatten())
            {
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "{}: parallelism changed the model",
                    case["name"]
                );
            }
            assert_eq!(other.weights, models[0].weights);
        }
    }
}

#[test]
fn random_init_gives_one_model_at_any_parallelism_and_survives_save_and_load() {
    let data = Dataset::load("iris");
    let stage = kmeans(json!({"k": 3, "seed": 11, "maxIter": 50, "distanceMeasure": "manhattan"}));
    let one = fit_transform(&stage, &data, &data.train, &data.test, 1);
    let two = fit_transform(&stage, &data, &data.train, &data.test, 2);
    let (a, b) = (model_data(&*one.model), model_data(&*two.model));
    assert_eq!(a.weights, b.weights);
    for (x, y) in a
        .centroids
        .iter()
        .flatten()
        .zip(b.centroids.iter().flatten())
    {
        assert!((x - y).abs() < 1e-9);
    }
    assert_eq!(one.rows, two.rows);

    let dir = tempfile::tempdir().unwrap();
    one.model.save(dir.path()).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata")).unwrap())
            .unwrap();
    assert_eq!(
        metadata["className"],
        "org.apache.flink.ml.clustering.kmeans.KMeansModel"
    );
    assert_eq!(metadata["paramMap"]["k"], 3);
    assert_eq!(metadata["paramMap"]["distanceMeasure"], "manhattan");
    let loaded = load_stage(dir.path()).unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    let rows = data.rows(&data.test);
    execute(Config::threads(2), move |job| {
        let test = Table::from_rows(job, "test", Dataset::schema(), rows.clone())?;
        loaded
            .transform(job, vec![test])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    let mut again = out.json_rows();
    again.sort_by_key(|r| r["row"].as_i64().unwrap());
    assert_eq!(again, one.rows);

    let params = stage.param_map().to_json();
    let mut back = KMeans::new();
    back.param_map_mut().update_from_json(&params).unwrap();
    assert_eq!(back.param_map().to_json(), params);
}

#[test]
fn bad_params_and_inputs_are_errors_naming_what_was_expected() {
    let mut stage = KMeans::new();
    let error = stage
        .param_map_mut()
        .set_json("k", json!(1))
        .unwrap_err()
        .to_string();
    assert!(error.contains("k"), "{error}");
    let error = stage
        .param_map_mut()
        .set_json("initMode", json!("kmeans++"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("initMode"), "{error}");

    // Vectors of two sizes.
    let error = execute(Config::threads(2), |job| {
        let schema = Schema::new([("features", DataType::DenseVector)]);
        let rows = vec![
            vec![Value::DenseVector(vec![1.0, 2.0])],
            vec![Value::DenseVector(vec![1.0, 2.0, 3.0])],
        ];
        let train = Table::from_rows(job, "train", schema, rows)?;
        let fitted = KMeans::new().fit(job, vec![train])?;
        fitted.model_data[0]
            .clone()
            .collect("out", &TableCollector::new());
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("elements") || error.contains("one size"),
        "{error}"
    );

    // No rows.
    let error = execute(Config::threads(2), |job| {
        let schema = Schema::new([("features", DataType::DenseVector)]);
        let train = Table::from_rows(job, "train", schema, Vec::new())?;
        let fitted = KMeans::new().fit(job, vec![train])?;
        fitted.model_data[0]
            .clone()
            .collect("out", &TableCollector::new());
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("empty"), "{error}");
}
