//! OnlineLogisticRegression and OnlineLogisticRegressionModel against Flink ML's own test
//! (`OnlineLogisticRegressionTest`: its rows, initial models and expected raw predictions
//! after each mini-batch, to 1e-5), against a plain sequential FTRL loop, at 1, 2 and 3
//! workers; the model scores with the version it has and says which; save/load; errors.

use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, ModelCollector, Stage, TableData};
use weir_flink_ml::classification::{
    LogisticRegressionModelData, OnlineLogisticRegression, OnlineLogisticRegressionModel,
};
use weir_flink_ml::param::WithParams;
use weir_flink_ml::table::{
    DataType, RowBatch, Schema, SparseVector, Table, TableCollector, Value,
};

type Row = (Value, f64, f64);

fn dense(x: &[f64], label: f64) -> Row {
    (Value::DenseVector(x.to_vec()), label, 1.0)
}

fn sparse(indices: [usize; 3], label: f64, weight: f64) -> Row {
    let v = SparseVector::new(10, indices.to_vec(), vec![1.0; 3]).unwrap();
    (Value::SparseVector(v), label, weight)
}

/// Flink's `TRAIN_DENSE_ROWS_1` and `_2`.
fn train_dense() -> Vec<Row> {
    [
        ([0.1, 2.], 0.),
        ([0.2, 2.], 0.),
        ([0.3, 2.], 0.),
        ([0.4, 2.], 0.),
        ([0.5, 2.], 0.),
        ([11., 12.], 1.),
        ([12., 11.], 1.),
        ([13., 12.], 1.),
        ([14., 12.], 1.),
        ([15., 12.], 1.),
        ([0.2, 3.], 0.),
        ([0.8, 1.], 0.),
        ([0.7, 1.], 0.),
        ([0.6, 2.], 0.),
        ([0.2, 2.], 0.),
        ([14., 17.], 1.),
        ([15., 10.], 1.),
        ([16., 16.], 1.),
        ([17., 10.], 1.),
        ([18., 13.], 1.),
    ]
    .iter()
    .map(|(x, y)| dense(x, *y))
    .collect()
}

/// Flink's `TRAIN_SPARSE_ROWS_1` and `_2` (with their weights).
fn train_sparse() -> Vec<Row> {
    vec![
        sparse([1, 3, 4], 0., 1.0),
        sparse([0, 2, 3], 0., 1.4),
        sparse([0, 3, 4], 0., 1.3),
        sparse([2, 3, 4], 0., 1.4),
        sparse([1, 3, 4], 0., 1.6),
        sparse([6, 7, 8], 1., 1.8),
        sparse([6, 8, 9], 1., 1.9),
        sparse([5, 8, 9], 1., 1.0),
        sparse([5, 6, 7], 1., 1.1),
        sparse([1, 2, 4], 0., 1.0),
        sparse([2, 3, 4], 0., 1.3),
        sparse([0, 2, 4], 0., 1.4),
        sparse([1, 3, 4], 0., 1.0),
        sparse([6, 7, 9], 1., 1.6),
        sparse([7, 8, 9], 1., 1.8),
        sparse([5, 7, 9], 1., 1.0),
        sparse([5, 6, 7], 1., 1.5),
        sparse([5, 8, 9], 1., 1.0),
    ]
}

fn init_dense() -> LogisticRegressionModelData {
    LogisticRegressionModelData {
        coefficient: vec![0.41233679404769874, -0.18088118293232122],
        model_version: Some(0),
    }
}

fn init_sparse() -> LogisticRegressionModelData {
    LogisticRegressionModelData {
        coefficient: vec![0.01; 10],
        model_version: Some(0),
    }
}

fn online(
    init: &LogisticRegressionModelData,
    batch: i64,
    weighted: bool,
) -> OnlineLogisticRegression {
    let mut stage = OnlineLogisticRegression::new();
    let params = stage.param_map_mut();
    params.set_json("reg", serde_json::json!(0.2)).unwrap();
    params
        .set_json("elasticNet", serde_json::json!(0.5))
        .unwrap();
    params
        .set_json("globalBatchSize", serde_json::json!(batch))
        .unwrap();
    if weighted {
        params
            .set_json("weightCol", serde_json::json!("weight"))
            .unwrap();
    }
    let data = TableData {
        schema: LogisticRegressionModelData::schema(true),
        batches: vec![init.to_batch()],
    };
    stage.set_model_data(vec![data]).unwrap();
    stage
}

fn schema(features: DataType) -> Schema {
    Schema::new([
        ("features", features),
        ("label", DataType::Double),
        ("weight", DataType::Double),
    ])
}

/// Fits `stage` on `rows` at `workers` workers: the model versions, and the fitted model.
fn fit(
    stage: &OnlineLogisticRegression,
    rows: Vec<Row>,
    features: DataType,
    workers: usize,
) -> (Box<dyn Stage>, Vec<LogisticRegressionModelData>) {
    let models = ModelCollector::new();
    let sink = models.clone();
    let stage = stage.clone();
    let rows: Vec<Vec<Value>> = rows
        .into_iter()
        .map(|(x, y, w)| vec![x, Value::Double(y), Value::Double(w)])
        .collect();
    execute(Config::threads(workers), move |job| {
        // One row per batch: the rows go round robin over the instances, as Flink's test
        // source rebalances them.
        let batches = RowBatch::from_rows(&schema(features), rows.clone(), 1)?;
        let train = Table::from_batches(job, "train", schema(features), batches);
        stage.fit(job, vec![train])?.collect(job, &sink);
        Ok(())
    })
    .unwrap();
    let model = models.model().unwrap();
    let data = &model.model_data().unwrap()[0];
    let versions = data
        .batches
        .iter()
        .map(|b| {
            LogisticRegressionModelData::from_batches("test", &data.schema, std::slice::from_ref(b))
                .unwrap()
        })
        .collect();
    (model, versions)
}

/// `[1 - p, p]` of `x` under `coefficient` (dense `x`).
fn raw(coefficient: &[f64], x: &[f64]) -> [f64; 2] {
    let d: f64 = coefficient.iter().zip(x).map(|(w, x)| w * x).sum();
    let p = 1.0 / (1.0 + (-d).exp());
    [1.0 - p, p]
}

fn spread(indices: [usize; 3]) -> Vec<f64> {
    let mut x = vec![0.0; 10];
    indices.iter().for_each(|&i| x[i] = 1.0);
    x
}

fn assert_raw(got: [f64; 2], want: [f64; 2], what: &str) {
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{what}: {got:?} vs Flink's {want:?}");
    }
}

#[test]
fn dense_batches_give_flinks_predictions_and_model_data() {
    for workers in [1, 2] {
        let (_, versions) = fit(
            &online(&init_dense(), 10, false),
            train_dense(),
            DataType::DenseVector,
            workers,
        );
        assert_eq!(
            versions.len(),
            3,
            "the initial model and one per batch of 10"
        );
        assert_eq!(
            versions.iter().map(|v| v.model_version).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        // testGetModelData.
        let v1 = &versions[1].coefficient;
        assert!((v1[0] - 0.2994527071464283).abs() < 1e-5, "{v1:?}");
        assert!((v1[1] - -0.1412541067743284).abs() < 1e-5, "{v1:?}");
        // testDenseFitAndPredict: PREDICT_DENSE_ROWS after each batch.
        let expected = [
            [
                [0.04481034155642882, 0.9551896584435712],
                [0.5353966697318491, 0.4646033302681509],
            ],
            [
                [0.013104324065967066, 0.9868956759340329],
                [0.5095144380001769, 0.49048556199982307],
            ],
        ];
        for (version, want) in versions[1..].iter().zip(expected) {
            // PREDICT_DENSE_ROWS, sorted as Flink's test sorts them.
            let mut got = [
                raw(&version.coefficient, &[0.8, 2.7]),
                raw(&version.coefficient, &[15.5, 11.2]),
            ];
            got.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let what = format!("dense, {workers} workers");
            assert_raw(got[0], want[0], &what);
            assert_raw(got[1], want[1], &what);
        }
    }
}

#[test]
fn sparse_batches_with_and_without_weights_give_flinks_predictions() {
    let cases = [
        // testSparseFitAndPredict.
        (
            false,
            [
                [
                    [0.4452309884735286, 0.5547690115264714],
                    [0.5105551725414953, 0.4894448274585047],
                ],
                [
                    [0.40310431554310666, 0.5968956844568933],
                    [0.5249618837373886, 0.4750381162626114],
                ],
            ],
        ),
        // testFitAndPredictWithWeightCol.
        (
            true,
            [
                [
                    [0.452491993753382, 0.547508006246618],
                    [0.5069192929506545, 0.4930807070493455],
                ],
                [
                    [0.41108882806164193, 0.5889111719383581],
                    [0.5247727600974581, 0.4752272399025419],
                ],
            ],
        ),
    ];
    for (weighted, expected) in cases {
        for workers in [1, 3] {
            let (_, versions) = fit(
                &online(&init_sparse(), 9, weighted),
                train_sparse(),
                DataType::SparseVector,
                workers,
            );
            assert_eq!(versions.len(), 3);
            for (version, want) in versions[1..].iter().zip(expected) {
                // PREDICT_SPARSE_ROWS, sorted as Flink's test sorts them.
                let mut got = [
                    raw(&version.coefficient, &spread([1, 3, 5])),
                    raw(&version.coefficient, &spread([5, 8, 9])),
                ];
                got.sort_by(|a, b| a[0].total_cmp(&b[0]));
                let what = format!("sparse, weighted {weighted}, {workers} workers");
                assert_raw(got[0], want[0], &what);
                assert_raw(got[1], want[1], &what);
            }
        }
    }
}

/// A plain FTRL loop over the same mini-batches (Flink's formulas, dense rows).
fn sequential(rows: &[Row], batch: usize, init: &[f64]) -> Vec<Vec<f64>> {
    let (alpha, beta, l1, l2) = (0.1, 0.1, 0.1, 0.1);
    let dim = init.len();
    let mut w = init.to_vec();
    let (mut z, mut n) = (vec![0.0; dim], vec![0.0; dim]);
    let mut versions = vec![w.clone()];
    for chunk in rows.chunks(batch) {
        let mut g = vec![0.0; dim];
        for (x, y, _) in chunk {
            let Value::DenseVector(x) = x else { panic!() };
            let p = raw(&w, x)[1];
            for i in 0..dim {
                g[i] += (p - y) * x[i];
            }
        }
        for i in 0..dim {
            let g = g[i] / chunk.len() as f64;
            let sigma = ((n[i] + g * g).sqrt() - f64::sqrt(n[i])) / alpha;
            z[i] += g - sigma * w[i];
            n[i] += g * g;
            w[i] = if f64::abs(z[i]) <= l1 {
                0.0
            } else {
                (if z[i] < 0.0 { -l1 } else { l1 } - z[i]) / ((beta + n[i].sqrt()) / alpha + l2)
            };
        }
        versions.push(w.clone());
    }
    versions
}

/// 2,000 rows of 5 features, labelled by a fixed hyperplane.
fn stream() -> Vec<Row> {
    let mut state = 9u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    (0..2000)
        .map(|_| {
            let x: Vec<f64> = (0..5).map(|_| next()).collect();
            let y = f64::from(x[0] - 2.0 * x[1] + 0.5 * x[3] > 0.1);
            dense(&x, y)
        })
        .collect()
}

#[test]
fn versions_equal_a_plain_loop_at_one_worker_and_agree_at_more() {
    let init = LogisticRegressionModelData {
        coefficient: vec![0.0; 5],
        model_version: Some(0),
    };
    let rows = stream();
    let expected = sequential(&rows, 100, &init.coefficient);
    for workers in [1, 2, 3] {
        let (_, versions) = fit(
            &online(&init, 100, false),
            rows.clone(),
            DataType::DenseVector,
            workers,
        );
        let last = &versions.last().unwrap().coefficient;
        if workers < 3 {
            // Every batch holds the same rows as the loop's (the instances' halves of a
            // global batch of round-robin rows), summed in another order at 2 workers.
            assert_eq!(versions.len(), expected.len(), "{workers} workers");
            for (got, want) in versions.iter().zip(&expected) {
                for (a, b) in got.coefficient.iter().zip(want) {
                    assert!(
                        (a - b).abs() < 1e-12,
                        "{workers} workers: {got:?} vs {want:?}"
                    );
                }
            }
        }
        // At 3 workers the shares of a batch (34, 33, 33 rows) drift from the round-robin
        // split of the rows, so the batches hold other rows: the same hyperplane is learnt.
        let correct = rows
            .iter()
            .filter(|(x, y, _)| {
                let Value::DenseVector(x) = x else { panic!() };
                (raw(last, x)[1] >= 0.5) == (*y == 1.0)
            })
            .count();
        assert!(correct > 1700, "{correct} of 2000 right: {last:?}");
    }
}

#[test]
fn the_model_scores_with_its_version_and_names_it() {
    let out = TableCollector::new();
    let sink = out.clone();
    let mut model = OnlineLogisticRegressionModel::new();
    let versions = [
        LogisticRegressionModelData {
            coefficient: vec![0.085, -0.22],
            model_version: Some(1),
        },
        LogisticRegressionModelData {
            coefficient: vec![0.075, -0.28],
            model_version: Some(2),
        },
    ];
    model
        .set_model_data(vec![TableData {
            schema: LogisticRegressionModelData::schema(true),
            batches: versions.iter().map(|v| v.to_batch()).collect(),
        }])
        .unwrap();
    execute(Config::threads(1), move |job| {
        let schema = Schema::new([("features", DataType::DenseVector)]);
        let rows = vec![
            vec![Value::DenseVector(vec![0.8, 2.7])],
            vec![Value::DenseVector(vec![15.5, 11.2])],
        ];
        let input = Table::from_rows(job, "predict", schema, rows)?;
        model
            .transform(job, vec![input])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    let rows = out.json_rows();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        // The newest version that had arrived when the rows were scored: the model data is
        // bounded here, so both versions are in before the rows.
        assert_eq!(row["modelVersion"], 2, "{row}");
        let raw: Vec<f64> = serde_json::from_value(row["rawPrediction"].clone()).unwrap();
        let x: Vec<f64> = serde_json::from_value(row["features"].clone()).unwrap();
        let p = 1.0 / (1.0 + (-(0.075 * x[0] - 0.28 * x[1])).exp());
        assert!((raw[1] - p).abs() < 1e-12 && (raw[0] - (1.0 - p)).abs() < 1e-12);
        assert_eq!(row["prediction"], if p >= 0.5 { 1.0 } else { 0.0 });
    }
}

#[test]
fn saves_loads_and_refuses_bad_input() {
    let stage = online(&init_dense(), 10, false);
    let dir = tempfile::tempdir().unwrap();
    stage.save(dir.path()).unwrap();
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.param_map().to_json(), stage.param_map().to_json());
    let data = &loaded.model_data().unwrap()[0];
    assert_eq!(
        LogisticRegressionModelData::from_batches("test", &data.schema, &data.batches).unwrap(),
        init_dense()
    );

    let error = execute(Config::threads(1), |job| {
        let train = Table::from_rows(job, "train", schema(DataType::DenseVector), Vec::new())?;
        OnlineLogisticRegression::new().fit(job, vec![train])?;
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("Initial Model Data Table should have been set"),
        "{error}"
    );

    let mut bad = OnlineLogisticRegression::new();
    let error = bad
        .param_map_mut()
        .set_json("alpha", serde_json::json!(0.0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("alpha"), "{error}");

    // A label that is not 0 or 1 fails the job, naming it.
    let mut rows = train_dense();
    rows[3].1 = 2.0;
    let stage = online(&init_dense(), 10, false);
    let error = execute(Config::threads(1), move |job| {
        let rows = rows
            .iter()
            .map(|(x, y, w)| vec![x.clone(), Value::Double(*y), Value::Double(*w)])
            .collect();
        let train = Table::from_rows(job, "train", schema(DataType::DenseVector), rows)?;
        let fitted = stage.fit(job, vec![train])?;
        fitted.collect(job, &ModelCollector::new());
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("label 2") && error.contains("0 or 1"),
        "{error}"
    );
}
