//! OnlineKMeans and OnlineKMeansModel: at 1 worker the model versions equal a plain loop over
//! the same mini-batches; at 2 workers the final centroids are the same clusters; the model
//! scores with the newest version; save/load keeps the initial model data; Flink's error
//! without initial model data.

use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, ModelCollector, Stage, TableData};
use weir_flink_ml::clustering::{KMeansModelData, OnlineKMeans};
use weir_flink_ml::param::WithParams;
use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};

/// 900 points around three centres, interleaved, with a deterministic jitter.
fn points() -> Vec<Vec<f64>> {
    let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
    let mut state = 42u64;
    let mut jitter = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    (0..900)
        .map(|i| {
            let c = centres[i % 3];
            vec![c[0] + jitter(), c[1] + jitter()]
        })
        .collect()
}

fn initial() -> KMeansModelData {
    KMeansModelData {
        centroids: vec![vec![1.0, 1.0], vec![8.0, 1.0], vec![1.0, 8.0]],
        weights: vec![1.0, 1.0, 1.0],
    }
}

fn online(batch: i64, decay: f64) -> OnlineKMeans {
    let mut stage = OnlineKMeans::new();
    let params = stage.param_map_mut();
    params.set_json("k", serde_json::json!(3)).unwrap();
    params
        .set_json("globalBatchSize", serde_json::json!(batch))
        .unwrap();
    params
        .set_json("decayFactor", serde_json::json!(decay))
        .unwrap();
    let data = TableData {
        schema: KMeansModelData::schema(),
        batches: vec![initial().to_batch()],
    };
    stage.set_model_data(vec![data]).unwrap();
    stage
}

/// The model versions of the same mini-batches, in a plain loop (Flink's update rule).
fn sequential(points: &[Vec<f64>], batch: usize, decay: f64) -> Vec<KMeansModelData> {
    let mut model = initial();
    let mut versions = vec![model.clone()];
    for chunk in points.chunks(batch) {
        let mut sums = vec![vec![0.0; 2]; 3];
        let mut counts = [0.0; 3];
        for p in chunk {
            let d = |c: &Vec<f64>| (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2);
            let (mut best, mut best_d) = (0, f64::INFINITY);
            for (i, c) in model.centroids.iter().enumerate() {
                if d(c) < best_d {
                    (best, best_d) = (i, d(c));
                }
            }
            counts[best] += 1.0;
            sums[best][0] += p[0];
            sums[best][1] += p[1];
        }
        for i in 0..3 {
            let kept = model.weights[i] * decay;
            model.weights[i] = kept + counts[i];
            if counts[i] > 0.0 {
                let weight = model.weights[i];
                for (c, s) in model.centroids[i].iter_mut().zip(&sums[i]) {
                    *c = (*c * kept + s) / weight;
                }
            }
        }
        versions.push(model.clone());
    }
    versions
}

fn fit(
    stage: &OnlineKMeans,
    workers: usize,
) -> (Box<dyn Stage>, Vec<KMeansModelData>, Vec<serde_json::Value>) {
    let models = ModelCollector::new();
    let out = TableCollector::new();
    let (model_sink, sink) = (models.clone(), out.clone());
    let stage = stage.clone();
    let rows: Vec<Vec<Value>> = points()
        .into_iter()
        .enumerate()
        .map(|(i, p)| vec![Value::Long(i as i64), Value::DenseVector(p)])
        .collect();
    execute(Config::threads(workers), move |job| {
        let schema = Schema::new([("id", DataType::Long), ("features", DataType::DenseVector)]);
        let train = Table::from_rows(job, "points", schema.clone(), rows.clone())?;
        let fitted = stage.fit(job, vec![train])?;
        let probe = Table::from_rows(
            job,
            "probe",
            schema,
            vec![
                vec![Value::Long(0), Value::DenseVector(vec![0.2, -0.1])],
                vec![Value::Long(1), Value::DenseVector(vec![9.7, 0.3])],
                vec![Value::Long(2), Value::DenseVector(vec![0.1, 9.9])],
            ],
        )?;
        fitted
            .transform(job, vec![probe])?
            .remove(0)
            .collect("out", &sink);
        fitted.collect(job, &model_sink);
        Ok(())
    })
    .unwrap();
    let model = models.model().unwrap();
    let data = &model.model_data().unwrap()[0];
    let versions = data
        .batches
        .iter()
        .map(|b| KMeansModelData::from_batches(&data.schema, std::slice::from_ref(b)).unwrap())
        .collect();
    let mut rows = out.json_rows();
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    (model, versions, rows)
}

#[test]
fn one_worker_gives_the_versions_of_a_plain_loop() {
    let expected = sequential(&points(), 32, 0.5);
    let (_, versions, _) = fit(&online(32, 0.5), 1);
    assert_eq!(
        versions.len(),
        expected.len(),
        "one version per batch of 32, and the initial one"
    );
    for (v, (got, want)) in versions.iter().zip(&expected).enumerate() {
        assert_eq!(got.weights, want.weights, "version {v}");
        for (a, b) in got
            .centroids
            .iter()
            .flatten()
            .zip(want.centroids.iter().flatten())
        {
            assert!((a - b).abs() < 1e-12, "version {v}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn two_workers_find_the_same_clusters_and_the_model_scores_points() {
    let expected = sequential(&points(), 32, 0.5).pop().unwrap();
    for workers in [1, 2, 3] {
        let (_, versions, scored) = fit(&online(32, 0.5), workers);
        let last = versions.last().unwrap();
        for (a, b) in last
            .centroids
            .iter()
            .flatten()
            .zip(expected.centroids.iter().flatten())
        {
            assert!(
                (a - b).abs() < 0.2,
                "{workers} workers: {last:?} vs {expected:?}"
            );
        }
        // The probes sit on the three clusters: each gets its own centroid.
        let clusters: Vec<i64> = scored
            .iter()
            .map(|r| r["prediction"].as_i64().unwrap())
            .collect();
        assert_eq!(clusters, vec![0, 1, 2], "{workers} workers");
    }
}

#[test]
fn the_initial_model_data_is_saved_and_loaded_and_required() {
    let stage = online(16, 0.9);
    let dir = tempfile::tempdir().unwrap();
    stage.save(dir.path()).unwrap();
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.param_map().to_json(), stage.param_map().to_json());
    let data = &loaded.model_data().unwrap()[0];
    assert_eq!(
        KMeansModelData::from_batches(&data.schema, &data.batches).unwrap(),
        initial()
    );

    let error = execute(Config::threads(1), |job| {
        let schema = Schema::new([("features", DataType::DenseVector)]);
        let train = Table::from_rows(job, "points", schema, Vec::new())?;
        OnlineKMeans::new().fit(job, vec![train])?;
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("Initial Model Data Table should have been set"),
        "{error}"
    );
}

/// A model holding several versions (collected, or loaded) scores with the newest.
#[test]
fn a_model_with_several_versions_scores_with_the_newest() {
    let mut model = weir_flink_ml::clustering::OnlineKMeansModel::new();
    let first = initial();
    let mut second = initial();
    second.centroids.reverse();
    let data = TableData {
        schema: KMeansModelData::schema(),
        batches: vec![first.to_batch(), second.to_batch()],
    };
    model.set_model_data(vec![data]).unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        let schema = Schema::new([("features", DataType::DenseVector)]);
        let rows = vec![vec![Value::DenseVector(vec![1.0, 1.0])]];
        let probe = Table::from_rows(job, "probe", schema, rows)?;
        model
            .transform(job, vec![probe])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    // [1, 1] is centroid 0 of the first version and centroid 2 of the second.
    assert_eq!(out.json_rows()[0]["prediction"], 2);
}
