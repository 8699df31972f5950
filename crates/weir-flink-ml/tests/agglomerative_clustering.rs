//! AgglomerativeClustering: Flink ML's AgglomerativeClusteringTest cases exactly (clusters,
//! merge distances, count windows, the output schema, params, save and load), scikit-learn's
//! clusters and full trees on iris and wine (fixtures/flink-ml/AgglomerativeClustering.json,
//! from scripts/flink_ml_fixtures/learning_clustering_eval.py) at 1 and 2 workers, and errors.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value as Json};
use support::{Dataset, ROW};
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, new_stage, Stage, StageKind};
use weir_flink_ml::clustering::agglomerative_clustering::{
    AgglomerativeClustering, COMPUTE_FULL_TREE, DISTANCE_THRESHOLD, LINKAGE, NUM_CLUSTERS,
};
use weir_flink_ml::param::shared::{DISTANCE_MEASURE, PREDICTION_COL};
use weir_flink_ml::param::{HasWindows, Windows, WithParams};
use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};

const FLINK_DATA: [[f64; 2]; 6] = [
    [1.0, 1.0],
    [1.0, 4.0],
    [1.0, 0.0],
    [4.0, 4.0],
    [4.0, 1.5],
    [4.0, 0.0],
];

fn agglo(params: Json) -> AgglomerativeClustering {
    let mut stage = AgglomerativeClustering::new();
    stage
        .param_map_mut()
        .update_from_json(params.as_object().unwrap())
        .unwrap();
    stage
}

/// Runs `stage` on rows of `(row, features)` on `workers` threads: the output rows (sorted
/// by `row`) and the merge info rows.
fn run(
    stage: &dyn Stage,
    points: &[Vec<f64>],
    workers: usize,
) -> Result<(Vec<Json>, Vec<Json>), String> {
    let (rows, merges) = (TableCollector::new(), TableCollector::new());
    let (rows_sink, merges_sink) = (rows.clone(), merges.clone());
    let stage = stage.clone_stage();
    let input: Vec<Vec<Value>> = points
        .iter()
        .enumerate()
        .map(|(i, p)| vec![Value::Long(i as i64), Value::DenseVector(p.clone())])
        .collect();
    execute(Config::threads(workers), move |job| {
        let schema = Schema::new([(ROW, DataType::Long), ("features", DataType::DenseVector)]);
        // Batches of 16 rows, so that two workers share the input.
        let batches = weir_flink_ml::table::RowBatch::from_rows(&schema, input.clone(), 16)?;
        let table = Table::from_batches(job, "points", schema, batches);
        let mut outputs = stage.transform(job, vec![table])?;
        assert_eq!(outputs.len(), 2);
        outputs.remove(1).collect("merges", &merges_sink);
        outputs.remove(0).collect("rows", &rows_sink);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let mut rows = rows.json_rows();
    rows.sort_by_key(|r| r[ROW].as_i64().unwrap());
    Ok((rows, merges.json_rows()))
}

fn flink_points() -> Vec<Vec<f64>> {
    FLINK_DATA.iter().map(|p| p.to_vec()).collect()
}

/// The clusters as sets of points (Flink's `groupFeaturesByPrediction`).
fn groups(rows: &[Json], prediction: &str) -> BTreeSet<BTreeSet<String>> {
    let mut by_cluster = std::collections::BTreeMap::<i64, BTreeSet<String>>::new();
    for r in rows {
        by_cluster
            .entry(r[prediction].as_i64().unwrap())
            .or_default()
            .insert(r["features"].to_string());
    }
    by_cluster.into_values().collect()
}

fn expected_groups(groups: &[&[[f64; 2]]]) -> BTreeSet<BTreeSet<String>> {
    groups
        .iter()
        .map(|g| g.iter().map(|p| json!(p).to_string()).collect())
        .collect()
}

/// The cluster of every row renumbered by first row, so that two numberings compare.
fn canonical(labels: &[i64]) -> Vec<usize> {
    let mut seen = std::collections::HashMap::new();
    labels
        .iter()
        .map(|l| {
            let next = seen.len();
            *seen.entry(*l).or_insert(next)
        })
        .collect()
}

fn distances(merges: &[Json]) -> Vec<f64> {
    merges
        .iter()
        .map(|m| m["distance"].as_f64().unwrap())
        .collect()
}

fn assert_distances(got: &[f64], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: {got:?}");
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 1e-7, "{what}: {got:?} vs {expected:?}");
    }
}

#[test]
fn flinks_test_param() {
    let stage = AgglomerativeClustering::new();
    assert_eq!(stage.get(&NUM_CLUSTERS).unwrap(), 2);
    assert_eq!(
        stage.param_map().get_opt(&DISTANCE_THRESHOLD).unwrap(),
        None
    );
    assert_eq!(stage.get(&LINKAGE).unwrap(), "ward");
    assert_eq!(stage.get(&DISTANCE_MEASURE).unwrap(), "euclidean");
    assert!(!stage.get(&COMPUTE_FULL_TREE).unwrap());
    assert_eq!(stage.get(&PREDICTION_COL).unwrap(), "prediction");
    assert_eq!(stage.windows().unwrap(), Windows::Global);
    assert_eq!(stage.kind(), StageKind::AlgoOperator);

    let stage = agglo(json!({
        "featuresCol": "test_features",
        "numClusters": null,
        "distanceThreshold": 0.01,
        "linkage": "average",
        "distanceMeasure": "cosine",
        "computeFullTree": true,
        "predictionCol": "cluster_id",
        "windows": {"class": "org.apache.flink.ml.common.window.ProcessingTimeTumblingWindows", "size": 100}
    }));
    assert_eq!(stage.param_map().get_opt(&NUM_CLUSTERS).unwrap(), None);
    assert_eq!(stage.get(&DISTANCE_THRESHOLD).unwrap(), 0.01);
    assert_eq!(
        stage.windows().unwrap(),
        Windows::ProcessingTimeTumbling { size: 100 }
    );
    let stage = stage
        .set_windows(Windows::CountTumbling { size: 5 })
        .unwrap();
    assert_eq!(
        stage.param_map().to_json()["windows"],
        json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 5})
    );
    // The params go through JSON and the registry unchanged.
    let saved = stage.param_map().to_json();
    let mut again = new_stage("AgglomerativeClustering").unwrap();
    again.param_map_mut().update_from_json(&saved).unwrap();
    assert_eq!(again.param_map().to_json(), saved);
}

#[test]
fn flinks_test_output_schema() {
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = out.clone();
    execute(Config::threads(1), move |job| {
        let schema = Schema::new([
            ("test_features", DataType::DenseVector),
            ("dummy_input", DataType::String),
        ]);
        let table = Table::from_rows(job, "input", schema, Vec::new())?;
        let stage =
            agglo(json!({"featuresCol": "test_features", "predictionCol": "test_prediction"}));
        let outputs = stage.transform(job, vec![table])?;
        for (i, o) in outputs.into_iter().enumerate() {
            sink.lock().unwrap().push(
                o.schema
                    .names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
            o.stream.for_each(format!("drop{i}"), |_| {});
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        *out.lock().unwrap(),
        vec![
            vec!["test_features", "dummy_input", "test_prediction"],
            vec![
                "clusterId1",
                "clusterId2",
                "distance",
                "sizeOfMergedCluster"
            ]
        ]
    );
}

#[test]
fn flinks_test_transform_and_average_linkage_and_large_threshold() {
    let two = expected_groups(&[
        &[[1.0, 1.0], [1.0, 0.0], [4.0, 1.5], [4.0, 0.0]],
        &[[1.0, 4.0], [4.0, 4.0]],
    ]);
    let threshold_two = expected_groups(&[
        &[[1.0, 1.0], [1.0, 0.0]],
        &[[1.0, 4.0]],
        &[[4.0, 4.0]],
        &[[4.0, 1.5], [4.0, 0.0]],
    ]);
    for workers in [1, 2] {
        let base =
            json!({"linkage": "ward", "distanceMeasure": "euclidean", "predictionCol": "pred"});
        let (rows, _) = run(&agglo(base.clone()), &flink_points(), workers).unwrap();
        assert_eq!(groups(&rows, "pred"), two);
        let mut full = base.clone();
        full["computeFullTree"] = json!(true);
        let (rows, _) = run(&agglo(full.clone()), &flink_points(), workers).unwrap();
        assert_eq!(groups(&rows, "pred"), two);
        full["numClusters"] = Json::Null;
        full["distanceThreshold"] = json!(2.0);
        let (rows, _) = run(&agglo(full), &flink_points(), workers).unwrap();
        assert_eq!(groups(&rows, "pred"), threshold_two);

        let average = json!({"linkage": "average", "numClusters": 2, "predictionCol": "pred"});
        let (rows, _) = run(&agglo(average), &flink_points(), workers).unwrap();
        assert_eq!(groups(&rows, "pred"), two);

        let large = json!({"numClusters": null, "distanceThreshold": f64::MAX});
        let (rows, _) = run(&agglo(large), &flink_points(), workers).unwrap();
        let clusters: BTreeSet<i64> = rows
            .iter()
            .map(|r| r["prediction"].as_i64().unwrap())
            .collect();
        assert_eq!(clusters, BTreeSet::from([0]));
    }
    // At parallelism 1 the clusters are numbered by their first row, as Flink numbers them.
    let (rows, _) = run(&AgglomerativeClustering::new(), &flink_points(), 1).unwrap();
    let labels: Vec<i64> = rows
        .iter()
        .map(|r| r["prediction"].as_i64().unwrap())
        .collect();
    assert_eq!(labels, vec![0, 1, 0, 1, 0, 0]);
}

#[test]
fn flinks_test_count_tumbling_windows() {
    let stage = agglo(json!({"linkage": "ward", "predictionCol": "pred"}))
        .set_windows(Windows::CountTumbling { size: 5 })
        .unwrap();
    let (rows, merges) = run(&stage, &flink_points(), 1).unwrap();
    // The sixth row is in an incomplete window, which Flink never fires.
    assert_eq!(rows.len(), 5);
    assert_eq!(
        groups(&rows, "pred"),
        expected_groups(&[
            &[[1.0, 1.0], [1.0, 0.0]],
            &[[1.0, 4.0], [4.0, 4.0], [4.0, 1.5]]
        ])
    );
    assert_eq!(merges.len(), 3);
    // Windows of 2 rows: three windows clustered on their own, each numbered from 0.
    let stage = stage
        .set_windows(Windows::CountTumbling { size: 2 })
        .unwrap();
    let (rows, merges) = run(&stage, &flink_points(), 1).unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["pred"] == 0 || r["pred"] == 1));
    assert_eq!(merges.len(), 0, "2 rows cut at 2 clusters merge nothing");
}

#[test]
fn flinks_test_merge_info() {
    let cases: [(&str, &str, &[f64]); 6] = [
        (
            "average",
            "euclidean",
            &[1.0, 1.5, 3.0, 3.1394402, 3.9559706],
        ),
        (
            "average",
            "cosine",
            &[0.0, 1.1102230E-16, 0.0636708, 0.1425070, 0.3664484],
        ),
        ("average", "manhattan", &[1.0, 1.5, 3.0, 3.75, 4.875]),
        ("complete", "euclidean", &[1.0, 1.5, 3.0, 3.3541019, 5.0]),
        ("single", "euclidean", &[1.0, 1.5, 2.5, 3.0, 3.0]),
        ("ward", "euclidean", &[1.0, 1.5, 3.0, 4.2573465, 5.5113519]),
    ];
    for workers in [1, 2] {
        for (linkage, measure, expected) in cases {
            let stage = agglo(json!({
                "linkage": linkage, "distanceMeasure": measure, "predictionCol": "pred",
                "computeFullTree": true
            }));
            let (_, merges) = run(&stage, &flink_points(), workers).unwrap();
            assert_distances(
                &distances(&merges),
                expected,
                &format!("{linkage} {measure}"),
            );
            let last = merges.last().unwrap();
            assert_eq!(last["sizeOfMergedCluster"], 6);
            assert_eq!(last["clusterId2"], 9);
        }
        let stage = agglo(json!({"linkage": "ward", "computeFullTree": false}));
        let (_, merges) = run(&stage, &flink_points(), workers).unwrap();
        assert_distances(
            &distances(&merges),
            &[1.0, 1.5, 3.0, 4.2573465],
            "ward, not the full tree",
        );
    }
    // Ward's merges at parallelism 1, as scipy's linkage matrix has them.
    let stage = agglo(json!({"computeFullTree": true}));
    let (_, merges) = run(&stage, &flink_points(), 1).unwrap();
    let ids: Vec<(i64, i64, i64)> = merges
        .iter()
        .map(|m| {
            (
                m["clusterId1"].as_i64().unwrap(),
                m["clusterId2"].as_i64().unwrap(),
                m["sizeOfMergedCluster"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![(0, 2, 2), (4, 5, 2), (1, 3, 2), (6, 7, 4), (8, 9, 6)]
    );
}

#[test]
fn flinks_test_save_load_transform() {
    let stage = agglo(json!({"linkage": "ward", "predictionCol": "pred"}));
    let dir = tempfile::tempdir().unwrap();
    stage.save(dir.path()).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata")).unwrap())
            .unwrap();
    assert_eq!(
        metadata["className"],
        "org.apache.flink.ml.clustering.agglomerativeclustering.AgglomerativeClustering"
    );
    assert_eq!(
        metadata["paramMap"]["windows"],
        json!({"class": "org.apache.flink.ml.common.window.GlobalWindows"})
    );
    assert_eq!(metadata["paramMap"]["distanceThreshold"], Json::Null);
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.param_map().to_json(), stage.param_map().to_json());
    let (rows, _) = run(&*loaded, &flink_points(), 2).unwrap();
    assert_eq!(
        groups(&rows, "pred"),
        expected_groups(&[
            &[[1.0, 1.0], [1.0, 0.0], [4.0, 1.5], [4.0, 0.0]],
            &[[1.0, 4.0], [4.0, 4.0]],
        ])
    );
}

fn fixture_cases() -> Vec<Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/flink-ml/AgglomerativeClustering.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Json = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn scikit_learns_clusters_and_trees_on_iris_and_wine() {
    for case in fixture_cases() {
        let name = case["name"].as_str().unwrap();
        let data = Dataset::load(case["dataset"].as_str().unwrap());
        let mut stage = AgglomerativeClustering::new();
        stage
            .param_map_mut()
            .update_from_json(case["paramMap"].as_object().unwrap())
            .unwrap();
        let expected_labels: Vec<i64> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let expected_distances: Vec<f64> = case["distances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for workers in [1, 2] {
            let (rows, merges) = run(&stage, &data.features, workers).unwrap();
            let labels: Vec<i64> = rows
                .iter()
                .map(|r| r["prediction"].as_i64().unwrap())
                .collect();
            assert_eq!(
                canonical(&labels),
                canonical(&expected_labels),
                "{name}, {workers} workers: the clusters differ from scikit-learn's"
            );
            let clusters = labels.iter().collect::<BTreeSet<_>>().len();
            assert_eq!(
                clusters as u64,
                case["clusters"].as_u64().unwrap(),
                "{name}"
            );
            let got = distances(&merges);
            assert_eq!(got.len(), expected_distances.len(), "{name}");
            let whole = case["wholeTree"].as_bool().unwrap();
            // Without ties the whole tree is scikit-learn's; with ties (iris) the top merges.
            let from = if whole { 0 } else { got.len() - 10 };
            for (k, (g, e)) in got.iter().zip(&expected_distances).enumerate().skip(from) {
                assert!(
                    (g - e).abs() <= 1e-6 * (1.0 + e.abs()),
                    "{name}, {workers} workers, merge {k}: distance {g}, scikit-learn {e}"
                );
            }
            if workers == 1 && whole {
                // Leaves are numbered by input position at parallelism 1: the whole tree is
                // scikit-learn's (scipy's linkage matrix), sizes included.
                let children: Vec<(i64, i64)> = merges
                    .iter()
                    .map(|m| {
                        (
                            m["clusterId1"].as_i64().unwrap(),
                            m["clusterId2"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                let expected: Vec<(i64, i64)> = case["children"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| (c[0].as_i64().unwrap(), c[1].as_i64().unwrap()))
                    .collect();
                let sizes: Vec<i64> = merges
                    .iter()
                    .map(|m| m["sizeOfMergedCluster"].as_i64().unwrap())
                    .collect();
                let expected_sizes: Vec<i64> = case["sizes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                let differing = children
                    .iter()
                    .zip(&expected)
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(differing, 0, "{name}: {differing} merges differ");
                assert_eq!(sizes, expected_sizes, "{name}");
            }
        }
    }
}

#[test]
fn bad_params_and_inputs_are_errors_naming_what_is_wrong() {
    let error = |stage: AgglomerativeClustering, points: Vec<Vec<f64>>| {
        run(&stage, &points, 2).unwrap_err()
    };
    let e = error(agglo(json!({"numClusters": null})), flink_points());
    assert!(
        e.contains("exactly one of numClusters and distanceThreshold"),
        "{e}"
    );
    let e = error(agglo(json!({"distanceThreshold": 1.0})), flink_points());
    assert!(
        e.contains("exactly one of numClusters and distanceThreshold"),
        "{e}"
    );
    let e = error(agglo(json!({"distanceMeasure": "cosine"})), flink_points());
    assert!(e.contains("Ward only works with euclidean"), "{e}");
    let e = error(agglo(json!({"numClusters": 7})), flink_points());
    assert!(
        e.contains("numClusters is 7") && e.contains("only 6 rows"),
        "{e}"
    );
    let e = error(agglo(json!({"numClusters": 0})), flink_points());
    assert!(e.contains("numClusters"), "{e}");
    let windows = json!({"class": "org.apache.flink.ml.common.window.EventTimeTumblingWindows", "size": 1000});
    let e = error(agglo(json!({"windows": windows})), flink_points());
    assert!(
        e.contains("EventTimeTumblingWindows are not supported"),
        "{e}"
    );
    let mut nan = flink_points();
    nan[3][1] = f64::NAN;
    let e = error(AgglomerativeClustering::new(), nan);
    assert!(e.contains("row 3") && e.contains("NaN"), "{e}");
    let mut zero = flink_points();
    zero[4] = vec![0.0, 0.0];
    let e = error(
        agglo(json!({"linkage": "average", "distanceMeasure": "cosine"})),
        zero,
    );
    assert!(e.contains("row 4") && e.contains("zero vector"), "{e}");
    let mut ragged = flink_points();
    ragged[5] = vec![1.0, 2.0, 3.0];
    let e = error(AgglomerativeClustering::new(), ragged);
    assert!(e.contains("3 elements, expected 2"), "{e}");

    let mut bad = AgglomerativeClustering::new();
    let e = bad
        .param_map_mut()
        .set_json("linkage", json!("centroid"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("linkage") && e.contains("ward"), "{e}");
    let e = bad
        .param_map_mut()
        .set_json("windows", json!({"class": "SlidingWindows"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("windows") && e.contains("unsupported windows class"),
        "{e}"
    );
    let e = bad
        .param_map_mut()
        .set_json(
            "windows",
            json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 0}),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be positive"), "{e}");

    // No rows: two empty tables.
    let (rows, merges) = run(&AgglomerativeClustering::new(), &[], 2).unwrap();
    assert!(rows.is_empty() && merges.is_empty());
}

/// The benchmark's shape (3,000 rows of 100 features, ward, 10 clusters) in reasonable time,
/// with the clusters of a plain O(n³) reference on a smaller input.
#[test]
fn a_larger_input_matches_a_naive_reference() {
    let mut seed = 42u64;
    let mut random = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let points: Vec<Vec<f64>> = (0..300)
        .map(|i| {
            let centre = (i % 5) as f64 * 3.0;
            (0..4).map(|_| centre + random()).collect()
        })
        .collect();
    for linkage in ["ward", "complete", "average", "single"] {
        let stage = agglo(json!({"linkage": linkage, "numClusters": 5, "computeFullTree": true}));
        let (rows, merges) = run(&stage, &points, 1).unwrap();
        let labels: Vec<i64> = rows
            .iter()
            .map(|r| r["prediction"].as_i64().unwrap())
            .collect();
        let (reference, heights) = naive(&points, linkage, 5);
        assert_eq!(canonical(&labels), canonical(&reference), "{linkage}");
        for (g, e) in distances(&merges).iter().zip(&heights) {
            assert!((g - e).abs() < 1e-9 * (1.0 + e), "{linkage}: {g} vs {e}");
        }
    }
}

/// Agglomerative clustering by its definition: merge the closest pair of clusters, with the
/// linkage computed from the points (Ward: the increase of the sum of squares, as a distance).
fn naive(points: &[Vec<f64>], linkage: &str, k: usize) -> (Vec<i64>, Vec<f64>) {
    let d = |a: &[f64], b: &[f64]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    let mut clusters: Vec<Vec<usize>> = (0..points.len()).map(|i| vec![i]).collect();
    let mut labels = vec![0i64; points.len()];
    let mut heights = Vec::new();
    let centroid = |c: &[usize]| -> Vec<f64> {
        let mut m = vec![0.0; points[0].len()];
        for &i in c {
            m.iter_mut().zip(&points[i]).for_each(|(m, x)| *m += x);
        }
        m.iter_mut().for_each(|m| *m /= c.len() as f64);
        m
    };
    while clusters.len() > 1 {
        let mut best = (f64::INFINITY, 0, 0);
        for i in 0..clusters.len() {
            for j in i + 1..clusters.len() {
                let (a, b) = (&clusters[i], &clusters[j]);
                let pairs = a.iter().flat_map(|&x| b.iter().map(move |&y| (x, y)));
                let v = match linkage {
                    "single" => pairs
                        .map(|(x, y)| d(&points[x], &points[y]))
                        .fold(f64::INFINITY, f64::min),
                    "complete" => pairs
                        .map(|(x, y)| d(&points[x], &points[y]))
                        .fold(0.0, f64::max),
                    "average" => {
                        pairs.map(|(x, y)| d(&points[x], &points[y])).sum::<f64>()
                            / (a.len() * b.len()) as f64
                    }
                    _ => {
                        let (na, nb) = (a.len() as f64, b.len() as f64);
                        (2.0 * na * nb / (na + nb)).sqrt() * d(&centroid(a), &centroid(b))
                    }
                };
                if v < best.0 {
                    best = (v, i, j);
                }
            }
        }
        let (h, i, j) = best;
        heights.push(h);
        let b = clusters.remove(j);
        clusters[i].extend(b);
        if clusters.len() == k {
            for (c, members) in clusters.iter().enumerate() {
                for &m in members {
                    labels[m] = c as i64;
                }
            }
        }
    }
    heights.sort_by(f64::total_cmp);
    (labels, heights)
}
