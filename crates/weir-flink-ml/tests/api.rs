//! The API around the stages: fit and transform in one job at 1 and 2 workers, model data
//! collected and saved in Flink ML's layout, loaded into another job, pipelines, params.

use serde_json::json;
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, read_metadata, ModelCollector, Pipeline, Stage};
use weir_flink_ml::feature::standard_scaler::WITH_MEAN;
use weir_flink_ml::feature::StandardScaler;
use weir_flink_ml::param::shared::{INPUT_COL, OUTPUT_COL};
use weir_flink_ml::param::WithParams;
use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};

fn rows(n: usize) -> Vec<Vec<Value>> {
    (0..n)
        .map(|i| {
            vec![
                Value::Long(i as i64),
                Value::DenseVector(vec![i as f64, (i % 3) as f64, 5.0]),
            ]
        })
        .collect()
}

fn schema() -> Schema {
    Schema::new([("id", DataType::Long), ("input", DataType::DenseVector)])
}

/// The expected output of a mean-centring, unit-variance scaler, computed directly.
fn reference(n: usize) -> Vec<Vec<f64>> {
    let data: Vec<Vec<f64>> = rows(n)
        .into_iter()
        .map(|r| match &r[1] {
            Value::DenseVector(v) => v.clone(),
            _ => unreachable!(),
        })
        .collect();
    let nf = n as f64;
    let mean: Vec<f64> = (0..3)
        .map(|j| data.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let std: Vec<f64> = (0..3)
        .map(|j| (data.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt())
        .collect();
    data.iter()
        .map(|r| {
            (0..3)
                .map(|j| {
                    if std[j] == 0.0 {
                        0.0
                    } else {
                        (r[j] - mean[j]) / std[j]
                    }
                })
                .collect()
        })
        .collect()
}

fn outputs(out: &TableCollector) -> Vec<Vec<f64>> {
    let mut rows: Vec<(i64, Vec<f64>)> = out
        .rows()
        .into_iter()
        .map(|r| match (&r[0], r.last().unwrap()) {
            (Value::Long(id), Value::DenseVector(v)) => (*id, v.clone()),
            other => panic!("unexpected row {other:?}"),
        })
        .collect();
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|r| r.1).collect()
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for (x, y) in x.iter().zip(y) {
            assert!((x - y).abs() < 1e-9, "{x} != {y}");
        }
    }
}

fn scaler() -> StandardScaler {
    StandardScaler::new()
        .set(&WITH_MEAN, true)
        .unwrap()
        .set(&OUTPUT_COL, "scaled".into())
        .unwrap()
}

#[test]
fn fit_and_transform_in_one_job_match_the_reference_at_any_parallelism() {
    for (workers, epoch_rows) in [(1, 10_000), (2, 10_000), (2, 7), (3, 1)] {
        let out = TableCollector::new();
        let models = ModelCollector::new();
        let (sink, model_sink) = (out.clone(), models.clone());
        let config = Config::threads(workers);
        execute(config, move |job| {
            let batches =
                weir_flink_ml::table::RowBatch::from_rows(&schema(), rows(1000), epoch_rows)?;
            let table = Table::from_batches(job, "rows", schema(), batches);
            let fitted = scaler().fit(job, vec![table.clone()])?;
            fitted
                .transform(job, vec![table])?
                .remove(0)
                .collect("out", &sink);
            fitted.collect(job, &model_sink);
            Ok(())
        })
        .unwrap();
        assert_close(&outputs(&out), &reference(1000));
        let model = models.model().unwrap();
        assert_eq!(
            model.model_data().unwrap()[0].rows(),
            1,
            "{workers} workers"
        );
    }
}

#[test]
fn a_saved_model_is_loaded_and_scores_in_another_job() {
    let models = ModelCollector::new();
    let sink = models.clone();
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(100))?;
        scaler().fit(job, vec![table])?.collect(job, &sink);
        Ok(())
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    models.model().unwrap().save(dir.path()).unwrap();
    let meta = read_metadata(dir.path()).unwrap();
    assert_eq!(
        meta["className"],
        json!("org.apache.flink.ml.feature.standardscaler.StandardScalerModel")
    );
    assert_eq!(meta["paramMap"]["withMean"], json!(true));
    assert!(dir.path().join("data/0.jsonl").is_file());

    let loaded = load_stage(dir.path()).unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(100))?;
        loaded
            .transform(job, vec![table])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    assert_close(&outputs(&out), &reference(100));
}

#[test]
fn a_pipeline_fits_saves_and_loads_as_flink_lays_it_out() {
    let pipeline = Pipeline::new(vec![
        Box::new(scaler()),
        Box::new(
            StandardScaler::new()
                .set(&INPUT_COL, "scaled".into())
                .unwrap()
                .set(&OUTPUT_COL, "twice".into())
                .unwrap(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    pipeline.save(&dir.path().join("pipeline")).unwrap();
    let loaded_pipeline = load_stage(&dir.path().join("pipeline")).unwrap();
    assert_eq!(loaded_pipeline.short_name(), "Pipeline");
    let models = ModelCollector::new();
    let sink = models.clone();
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(50))?;
        loaded_pipeline.fit(job, vec![table])?.collect(job, &sink);
        Ok(())
    })
    .unwrap();
    let model = models.model().unwrap();
    let path = dir.path().join("model");
    model.save(&path).unwrap();
    assert_eq!(read_metadata(&path).unwrap()["numStages"], json!(2));
    assert!(path.join("stages/1/data/0.jsonl").is_file());
    let loaded = load_stage(&path).unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(50))?;
        loaded
            .transform(job, vec![table])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    // Scaling already scaled data again changes nothing (mean 0, std 1).
    assert_close(&outputs(&out), &reference(50));
}

#[test]
fn unknown_and_invalid_params_name_the_stage_and_the_param() {
    let mut scaler = StandardScaler::new();
    let error = scaler
        .param_map_mut()
        .set_json("withMeans", json!(true))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("StandardScaler: unknown parameter `withMeans`"),
        "{error}"
    );
    let error = scaler
        .param_map_mut()
        .set_json("withMean", json!(3))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("parameter `withMean`") && error.contains("a boolean"),
        "{error}"
    );
}

#[test]
fn a_graph_with_two_outputs_fits_saves_loads_and_transforms() {
    use weir_flink_ml::api::GraphBuilder;
    let mut builder = GraphBuilder::new();
    let input = builder.create_table_id();
    let centred = builder.add_estimator(Box::new(scaler()), &[input]);
    let plain = builder.add_estimator(
        Box::new(
            StandardScaler::new()
                .set(&OUTPUT_COL, "plain".into())
                .unwrap(),
        ),
        &[input],
    );
    let graph = builder.build_estimator(&[input], &[centred[0], plain[0]]);
    let dir = tempfile::tempdir().unwrap();
    graph.save(&dir.path().join("graph")).unwrap();
    let graph = load_stage(&dir.path().join("graph")).unwrap();
    assert_eq!(graph.short_name(), "Graph");
    let models = ModelCollector::new();
    let sink = models.clone();
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(60))?;
        graph.fit(job, vec![table])?.collect(job, &sink);
        Ok(())
    })
    .unwrap();
    let path = dir.path().join("model");
    models.model().unwrap().save(&path).unwrap();
    assert!(read_metadata(&path).unwrap()["graphData"]["nodes"].is_array());
    let model = load_stage(&path).unwrap();
    let (a, b) = (TableCollector::new(), TableCollector::new());
    let (sa, sb) = (a.clone(), b.clone());
    execute(Config::threads(2), move |job| {
        let table = Table::from_rows(job, "rows", schema(), rows(60))?;
        let mut outputs = model.transform(job, vec![table])?;
        outputs.remove(1).collect("b", &sb);
        outputs.remove(0).collect("a", &sa);
        Ok(())
    })
    .unwrap();
    assert_close(&outputs(&a), &reference(60));
    let b = outputs(&b);
    assert_eq!(b.len(), 60);
    // Without centring, the constant feature (5.0, std 0) scales to 0 and the others keep
    // their sign.
    assert!(b.iter().all(|r| r[2] == 0.0 && r[0] >= 0.0));
}
