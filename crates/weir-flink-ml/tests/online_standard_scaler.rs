//! OnlineStandardScaler and OnlineStandardScalerModel: the expectations of Flink's
//! `OnlineStandardScalerTest` (params, output schema, count and global windows, with its
//! tolerance); a plain loop over the same windows, bit for bit at 1 and 2 workers; processing-
//! time windows (no timing assumptions: every row is counted once); event-time windows
//! refused; param validation; save/load; the batch StandardScaler's model data as version 0.

use serde_json::{json, Value as Json};
use weir_core::{execute, op, Config, JobReport};
use weir_flink_ml::api::{find_class, load_stage, ModelCollector, Stage, TableData};
use weir_flink_ml::feature::online_standard_scaler::MAX_ALLOWED_MODEL_DELAY_MS;
use weir_flink_ml::feature::standard_scaler::{WITH_MEAN, WITH_STD};
use weir_flink_ml::feature::{
    OnlineStandardScaler, OnlineStandardScalerModel, OnlineStandardScalerModelData, StandardScaler,
};
use weir_flink_ml::param::{
    HasInputCol, HasModelVersionCol, HasOutputCol, HasWindows, Windows, WithParams,
};
use weir_flink_ml::table::{DataType, RowBatch, Schema, Table, TableCollector, Value};

/// Flink's test tolerance.
const TOLERANCE: f64 = 1e-7;

/// Flink's `inputData`: `(id, input)`, the id being the event time in Flink's test.
const FLINK_ROWS: [(i64, [f64; 3]); 9] = [
    (0, [-2.5, 9.0, 1.0]),
    (1000, [1.4, -5.0, 1.0]),
    (2000, [2.0, -1.0, -2.0]),
    (6000, [0.7, 3.0, 1.0]),
    (7000, [0.0, 1.0, 1.0]),
    (8000, [0.5, 0.0, -2.0]),
    (9000, [0.4, 1.0, 1.0]),
    (10000, [0.3, 2.0, 1.0]),
    (11000, [0.5, 1.0, -2.0]),
];

/// Flink's `expectedModelData` (mean, std; versions 0, 1, 2) for windows of 3 rows.
const FLINK_VERSIONS: [([f64; 3], [f64; 3]); 3] = [
    ([0.3, 1.0, 0.0], [2.4433583, 7.2111026, 1.7320508]),
    ([0.35, 1.1666667, 0.0], [1.5630099, 4.6654760, 1.5491933]),
    ([0.3666667, 1.2222222, 0.0], [1.2369316, 3.7006005, 1.5]),
];

fn id_input_schema(id: &str, input: &str) -> Schema {
    Schema::new([(id, DataType::Long), (input, DataType::DenseVector)])
}

fn flink_rows() -> Vec<Vec<Value>> {
    FLINK_ROWS
        .iter()
        .map(|(id, x)| vec![Value::Long(*id), Value::DenseVector(x.to_vec())])
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tolerance: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tolerance * w.abs().max(1.0),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

fn numbers(json: &Json) -> Vec<f64> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// What a fit-and-transform job gives.
struct Run {
    model: Box<dyn Stage>,
    versions: Vec<OnlineStandardScalerModelData>,
    output_schema: Schema,
    rows: Vec<Json>,
    report: JobReport,
}

/// Fits `stage` on `rows` (cut into batches of `batch_rows`) and transforms the same rows with
/// the fitted model, on `workers` workers. With `ordered`, the rows come from one source
/// instance, so that they reach the fit's one instance in order (Flink's `fromCollection`).
fn run(
    stage: &OnlineStandardScaler,
    workers: usize,
    schema: Schema,
    rows: Vec<Vec<Value>>,
    batch_rows: usize,
    ordered: bool,
) -> Run {
    let models = ModelCollector::new();
    let out = TableCollector::new();
    let (model_sink, sink) = (models.clone(), out.clone());
    let stage = stage.clone();
    let batches = RowBatch::from_rows(&schema, rows, batch_rows).unwrap();
    let report = execute(Config::threads(workers), move |job| {
        let input = if ordered {
            let stream = job.from_vec(op("rows").parallelism(1), batches.clone());
            Table::new(schema.clone(), stream)
        } else {
            Table::from_batches(job, "rows", schema.clone(), batches.clone())
        };
        let fitted = stage.fit(job, vec![input.clone()])?;
        fitted
            .transform(job, vec![input])?
            .remove(0)
            .collect("out", &sink);
        fitted.collect(job, &model_sink);
        Ok(())
    })
    .unwrap();
    let model = models.model().unwrap();
    let data = &model.model_data().unwrap()[0];
    let versions =
        OnlineStandardScalerModelData::from_batches(&data.schema, &data.batches).unwrap();
    Run {
        model,
        versions,
        output_schema: out.schema().unwrap(),
        rows: out.json_rows(),
        report,
    }
}

fn count_windows(size: i64) -> OnlineStandardScaler {
    OnlineStandardScaler::new()
        .set_windows(Windows::CountTumbling { size })
        .unwrap()
}

/// Flink's `testParam`, and the validators of the params.
#[test]
fn params_have_flinks_names_defaults_and_validators() {
    let scaler = OnlineStandardScaler::new();
    assert_eq!(scaler.input_col().unwrap(), "input");
    assert!(!scaler.get(&WITH_MEAN).unwrap());
    assert!(scaler.get(&WITH_STD).unwrap());
    assert_eq!(scaler.output_col().unwrap(), "output");
    assert_eq!(scaler.model_version_col().unwrap(), "version");
    assert_eq!(scaler.windows().unwrap(), Windows::Global);
    assert_eq!(scaler.get(&MAX_ALLOWED_MODEL_DELAY_MS).unwrap(), 0);
    assert_eq!(
        Json::Object(scaler.param_map().to_json()),
        json!({
            "inputCol": "input",
            "outputCol": "output",
            "withMean": false,
            "withStd": true,
            "modelVersionCol": "version",
            "maxAllowedModelDelayMs": 0,
            "windows": {"class": "org.apache.flink.ml.common.window.GlobalWindows"}
        })
    );

    let scaler = scaler
        .set_input_col("test_input")
        .unwrap()
        .set(&WITH_MEAN, true)
        .unwrap()
        .set(&WITH_STD, false)
        .unwrap()
        .set_output_col("test_output")
        .unwrap()
        .set_model_version_col("test_version")
        .unwrap()
        .set_windows(Windows::EventTimeTumbling { size: 3000 })
        .unwrap()
        .set(&MAX_ALLOWED_MODEL_DELAY_MS, 3000)
        .unwrap();
    assert_eq!(scaler.input_col().unwrap(), "test_input");
    assert!(scaler.get(&WITH_MEAN).unwrap());
    assert!(!scaler.get(&WITH_STD).unwrap());
    assert_eq!(scaler.output_col().unwrap(), "test_output");
    assert_eq!(scaler.model_version_col().unwrap(), "test_version");
    assert_eq!(
        scaler.windows().unwrap(),
        Windows::EventTimeTumbling { size: 3000 }
    );
    assert_eq!(scaler.get(&MAX_ALLOWED_MODEL_DELAY_MS).unwrap(), 3000);

    // Flink's validators: gtEq(0) for the delay, notNull for the windows and columns; the
    // version column may be null.
    let mut scaler = OnlineStandardScaler::new();
    let params = scaler.param_map_mut();
    for (name, value) in [
        ("maxAllowedModelDelayMs", json!(-1)),
        ("maxAllowedModelDelayMs", Json::Null),
        ("windows", Json::Null),
        (
            "windows",
            json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 0}),
        ),
        ("windows", json!({"class": "SlidingWindows", "size": 10})),
        ("inputCol", Json::Null),
        ("outputCol", Json::Null),
        ("withMeans", json!(true)),
    ] {
        let error = params.set_json(name, value.clone());
        assert!(error.is_err(), "{name} = {value} was accepted");
    }
    params.set_json("modelVersionCol", Json::Null).unwrap();
    params
        .set_json("maxAllowedModelDelayMs", json!(i64::MAX))
        .unwrap();
    let error = params
        .set_json("maxAllowedModelDelayMs", json!(-5))
        .unwrap_err()
        .to_string();
    assert!(error.contains("maxAllowedModelDelayMs"), "{error}");

    // The model has the same params but `windows`.
    let mut model = OnlineStandardScalerModel::new();
    let names: Vec<String> = model.param_map().to_json().keys().cloned().collect();
    let mut expected = vec![
        "inputCol",
        "outputCol",
        "withMean",
        "withStd",
        "modelVersionCol",
        "maxAllowedModelDelayMs",
    ];
    expected.sort();
    assert_eq!(names, expected);
    assert!(model
        .param_map_mut()
        .set_json(
            "windows",
            json!({"class": "org.apache.flink.ml.common.window.GlobalWindows"})
        )
        .is_err());
    let fitted_params = OnlineStandardScalerModel::with_params(
        OnlineStandardScaler::new()
            .set_output_col("scaled")
            .unwrap()
            .param_map(),
    );
    assert_eq!(fitted_params.output_col().unwrap(), "scaled");
}

/// Flink's `testOutputSchema`: the input columns, `outputCol`, and `modelVersionCol` unless it
/// is null.
#[test]
fn output_schema_has_the_version_column_unless_it_is_null() {
    let scaler = OnlineStandardScaler::new()
        .set_input_col("test_input")
        .unwrap()
        .set_output_col("test_output")
        .unwrap();
    let schema = id_input_schema("test_id", "test_input");
    let result = run(&scaler, 1, schema.clone(), flink_rows(), 4096, true);
    assert_eq!(
        result.output_schema.names(),
        vec!["test_id", "test_input", "test_output", "version"]
    );
    assert_eq!(result.output_schema.data_type(2), DataType::DenseVector);
    assert_eq!(result.output_schema.data_type(3), DataType::Long);
    assert_eq!(result.rows.len(), 9);

    let mut scaler = scaler;
    scaler
        .param_map_mut()
        .set_json("modelVersionCol", Json::Null)
        .unwrap();
    let result = run(&scaler, 1, schema, flink_rows(), 4096, true);
    assert_eq!(
        result.output_schema.names(),
        vec!["test_id", "test_input", "test_output"]
    );
    assert_eq!(result.rows.len(), 9);
    assert!(result.rows.iter().all(|r| r.get("version").is_none()));
}

/// Flink's `testFitAndPredictWithCountWindow` (and `testGetModelData`'s means and
/// deviations): windows of 3 rows give Flink's three versions; every row is scored with one of
/// them. At 1 and 2 workers, from one source instance (Flink's `fromCollection`).
#[test]
fn count_windows_give_flinks_model_data() {
    for workers in [1, 2] {
        let result = run(
            &count_windows(3),
            workers,
            id_input_schema("id", "input"),
            flink_rows(),
            2,
            true,
        );
        assert_eq!(result.versions.len(), 3, "{workers} workers");
        for (i, (got, (mean, std))) in result.versions.iter().zip(FLINK_VERSIONS).enumerate() {
            let what = format!("{workers} workers, version {i}");
            assert_close(&got.mean, &mean, TOLERANCE, &what);
            assert_close(&got.std, &std, TOLERANCE, &what);
            assert_eq!(got.version, i as i64, "{what}");
            // Not an event-time window: Flink's Long.MAX_VALUE.
            assert_eq!(got.timestamp, i64::MAX, "{what}");
        }
        assert_eq!(result.rows.len(), FLINK_ROWS.len(), "{workers} workers");
        for row in &result.rows {
            let id = row["id"].as_i64().unwrap();
            let x = FLINK_ROWS.iter().find(|(i, _)| *i == id).unwrap().1;
            let version = row["version"].as_i64().unwrap();
            let std = FLINK_VERSIONS[version as usize].1;
            let expected: Vec<f64> = x.iter().zip(std).map(|(x, s)| x / s).collect();
            assert_close(&numbers(&row["output"]), &expected, 1e-6, &format!("{row}"));
        }
    }
}

/// Flink's `testFitAndPredictWithGlobalWindow`: one version of the whole input, with
/// `withMean`, `withStd` and both.
#[test]
fn global_window_gives_flinks_predictions() {
    let rows: Vec<Vec<Value>> = FLINK_ROWS[..3]
        .iter()
        .map(|(_, x)| vec![Value::DenseVector(x.to_vec())])
        .collect();
    let schema = Schema::new([("input", DataType::DenseVector)]);
    let cases: [(bool, bool, [[f64; 3]; 3]); 3] = [
        (
            true,
            false,
            [[-2.8, 8.0, 1.0], [1.1, -6.0, 1.0], [1.7, -2.0, -2.0]],
        ),
        (
            false,
            true,
            [
                [-1.0231819, 1.2480754, 0.5773502],
                [0.5729819, -0.6933752, 0.5773503],
                [0.8185455, -0.1386750, -1.1547005],
            ],
        ),
        (
            true,
            true,
            [
                [-1.1459637, 1.1094004, 0.5773503],
                [0.45020003, -0.8320503, 0.5773503],
                [0.69576368, -0.2773501, -1.1547005],
            ],
        ),
    ];
    for workers in [1, 2] {
        for (with_mean, with_std, expected) in &cases {
            let scaler = OnlineStandardScaler::new()
                .set_windows(Windows::Global)
                .unwrap()
                .set(&WITH_MEAN, *with_mean)
                .unwrap()
                .set(&WITH_STD, *with_std)
                .unwrap();
            let result = run(&scaler, workers, schema.clone(), rows.clone(), 1, false);
            assert_eq!(result.versions.len(), 1);
            let mut outputs: Vec<Vec<f64>> =
                result.rows.iter().map(|r| numbers(&r["output"])).collect();
            // Flink's `TestUtils::compare`: element by element.
            outputs.sort_by(|a, b| a.partial_cmp(b).unwrap());
            assert_eq!(outputs.len(), 3);
            for (got, want) in outputs.iter().zip(expected) {
                let what = format!("{workers} workers, withMean {with_mean}, withStd {with_std}");
                assert_close(got, want, TOLERANCE, &what);
            }
            assert!(result.rows.iter().all(|r| r["version"] == 0));
        }
    }
}

/// `dim`-element rows with a deterministic jitter, on different scales per element.
fn jittered(n: usize, dim: usize) -> Vec<Vec<f64>> {
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    };
    (0..n)
        .map(|i| {
            (0..dim)
                .map(|j| (j as f64 + 1.0) * 10.0 * next() + j as f64 * (i % 7) as f64)
                .collect()
        })
        .collect()
}

/// The versions of count windows of `size` over `rows` in order, in a plain loop: running sums,
/// and after every `size` rows the mean (sum times 1/n) and the unbiased deviation, as Flink's
/// `buildModelData`.
fn sequential(rows: &[Vec<f64>], size: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let dim = rows[0].len();
    let (mut sum, mut squared) = (vec![0.0; dim], vec![0.0; dim]);
    let mut versions = Vec::new();
    for (i, x) in rows.iter().enumerate() {
        for j in 0..dim {
            sum[j] += x[j];
            squared[j] += x[j] * x[j];
        }
        let n = i + 1;
        if n % size == 0 {
            let count = n as f64;
            let mean: Vec<f64> = sum.iter().map(|s| s * (1.0 / count)).collect();
            let std = if n > 1 {
                (0..dim)
                    .map(|j| ((squared[j] - count * mean[j] * mean[j]) / (count - 1.0)).sqrt())
                    .collect()
            } else {
                vec![0.0; dim]
            };
            versions.push((mean, std));
        }
    }
    versions
}

fn indexed(rows: &[Vec<f64>]) -> Vec<Vec<Value>> {
    rows.iter()
        .enumerate()
        .map(|(i, x)| vec![Value::Long(i as i64), Value::DenseVector(x.clone())])
        .collect()
}

/// Count windows against the plain loop: the same versions bit for bit at 1 and 2 workers
/// (rows from one source instance, in batches that straddle the windows), an incomplete last
/// window without a version, and every row scored with one of the versions.
#[test]
fn count_windows_match_a_plain_loop_at_one_and_two_workers() {
    let rows = jittered(1000, 4);
    let expected = sequential(&rows, 64);
    assert_eq!(expected.len(), 15);
    let scaler = count_windows(64).set(&WITH_MEAN, true).unwrap();
    for workers in [1, 2] {
        let result = run(
            &scaler,
            workers,
            id_input_schema("id", "input"),
            indexed(&rows),
            37,
            true,
        );
        assert_eq!(result.versions.len(), expected.len(), "{workers} workers");
        for (v, (got, (mean, std))) in result.versions.iter().zip(&expected).enumerate() {
            assert_eq!(&got.mean, mean, "{workers} workers, version {v}");
            assert_eq!(&got.std, std, "{workers} workers, version {v}");
            assert_eq!(got.version, v as i64);
        }
        assert_eq!(result.rows.len(), rows.len(), "{workers} workers");
        for row in &result.rows {
            let x = &rows[row["id"].as_i64().unwrap() as usize];
            let (mean, std) = &expected[row["version"].as_i64().unwrap() as usize];
            let want: Vec<f64> = (0..4).map(|j| (x[j] - mean[j]) * (1.0 / std[j])).collect();
            assert_close(&numbers(&row["output"]), &want, 1e-12, &format!("{row}"));
        }
        assert_eq!(result.report.dead_letters, 0);
    }
}

/// From a parallel source the rows reach the fit in any order, so only the versions' number
/// and the last one (a whole number of windows: every row) are the loop's.
#[test]
fn count_windows_over_a_parallel_source_end_with_the_loops_last_version() {
    let rows = jittered(1024, 3);
    let last = sequential(&rows, 64).pop().unwrap();
    for workers in [1, 2] {
        let result = run(
            &count_windows(64),
            workers,
            id_input_schema("id", "input"),
            indexed(&rows),
            50,
            false,
        );
        let versions: Vec<i64> = result.versions.iter().map(|v| v.version).collect();
        assert_eq!(versions, (0..16).collect::<Vec<_>>(), "{workers} workers");
        let got = result.versions.last().unwrap();
        assert_close(&got.mean, &last.0, 1e-9, "mean");
        assert_close(&got.std, &last.1, 1e-9, "std");
        assert_eq!(result.rows.len(), rows.len());
    }
}

/// The global window against the plain loop: one version of all rows, at 1 and 2 workers
/// (every instance sums its rows: the same to rounding).
#[test]
fn the_global_window_matches_a_plain_loop_at_one_and_two_workers() {
    let rows = jittered(500, 5);
    let all = sequential(&rows, rows.len()).pop().unwrap();
    for workers in [1, 2] {
        let result = run(
            &OnlineStandardScaler::new(),
            workers,
            id_input_schema("id", "input"),
            indexed(&rows),
            64,
            false,
        );
        assert_eq!(result.versions.len(), 1);
        let got = &result.versions[0];
        assert_eq!((got.version, got.timestamp), (0, i64::MAX));
        assert_close(&got.mean, &all.0, 1e-12, "mean");
        assert_close(&got.std, &all.1, 1e-12, "std");
        for row in &result.rows {
            let x = &rows[row["id"].as_i64().unwrap() as usize];
            let want: Vec<f64> = (0..5).map(|j| x[j] / all.1[j]).collect();
            assert_close(&numbers(&row["output"]), &want, 1e-9, &format!("{row}"));
        }
        assert_eq!(result.rows.len(), rows.len());
    }
}

/// Flink's `testFitAndPredictWithProcessingTimeWindow`, without timing assumptions: at least
/// one version, numbered from 0, and since every window closes by the end of the input, the
/// last version counts every row; every row is scored.
#[test]
fn processing_time_windows_count_every_row_once() {
    let rows = jittered(300, 3);
    let all = sequential(&rows, rows.len()).pop().unwrap();
    for windows in [
        Windows::ProcessingTimeTumbling { size: 1000 },
        Windows::ProcessingTimeSession { gap: 50 },
    ] {
        for workers in [1, 2] {
            let scaler = OnlineStandardScaler::new().set_windows(windows).unwrap();
            let result = run(
                &scaler,
                workers,
                id_input_schema("id", "input"),
                indexed(&rows),
                16,
                false,
            );
            let what = format!("{windows:?} at {workers} workers");
            assert!(!result.versions.is_empty(), "{what}");
            for (i, v) in result.versions.iter().enumerate() {
                assert_eq!((v.version, v.timestamp), (i as i64, i64::MAX), "{what}");
            }
            let last = result.versions.last().unwrap();
            assert_close(&last.mean, &all.0, 1e-9, &what);
            assert_close(&last.std, &all.1, 1e-9, &what);
            assert_eq!(result.rows.len(), rows.len(), "{what}");
        }
    }
}

/// Weir's tables carry no event time: event-time windows are refused by `fit`, naming the
/// param (Flink's `testFitAndPredictWithEventTimeWindow`, `testGetModelData` timestamps and
/// `maxAllowedModelDelayMs` checks need it).
#[test]
fn event_time_windows_are_refused() {
    for windows in [
        Windows::EventTimeTumbling { size: 3000 },
        Windows::EventTimeSession { gap: 1000 },
    ] {
        let scaler = OnlineStandardScaler::new().set_windows(windows).unwrap();
        let error = execute(Config::threads(1), move |job| {
            let input =
                Table::from_rows(job, "rows", id_input_schema("id", "input"), flink_rows())?;
            scaler.fit(job, vec![input])?;
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("`windows`"), "{error}");
        assert!(error.contains(windows.class_name()), "{error}");
        assert!(error.contains("event time"), "{error}");
    }
}

/// Rows are held until a version arrives: with no version at all (a count window larger than
/// the input, an empty input) nothing is scored and the rows become dead letters, not errors.
#[test]
fn without_a_version_rows_are_held_and_end_as_dead_letters() {
    for (scaler, rows) in [
        (count_windows(100), flink_rows()),
        (OnlineStandardScaler::new(), Vec::new()),
    ] {
        let result = run(
            &scaler,
            2,
            id_input_schema("id", "input"),
            rows.clone(),
            4,
            false,
        );
        assert!(result.versions.is_empty());
        assert!(result.rows.is_empty());
        let held: u64 = (rows.len() as u64).div_ceil(4);
        assert_eq!(result.report.dead_letters, held);
    }
}

/// Wrong columns are errors when the job is built; vectors of another size than the model's
/// become dead letters.
#[test]
fn wrong_columns_and_sizes_are_reported() {
    let error = execute(Config::threads(1), |job| {
        let schema = Schema::new([("input", DataType::Double)]);
        let input = Table::from_rows(job, "rows", schema, vec![vec![Value::Double(1.0)]])?;
        OnlineStandardScaler::new().fit(job, vec![input])?;
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("input"), "{error}");

    let error = execute(Config::threads(1), |job| {
        let input = Table::from_rows(job, "rows", id_input_schema("id", "input"), flink_rows())?;
        let scaler = OnlineStandardScaler::new().set_output_col("id").unwrap();
        scaler
            .fit(job, vec![input.clone()])?
            .transform(job, vec![input])?;
        Ok(())
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("id"), "{error}");

    // Vectors of different sizes fail the fit, as Flink's `axpy` does.
    for windows in [Windows::Global, Windows::CountTumbling { size: 2 }] {
        let error = execute(Config::threads(2), move |job| {
            let schema = id_input_schema("id", "input");
            let rows = vec![
                vec![Value::Long(0), Value::DenseVector(vec![1.0, 2.0])],
                vec![Value::Long(1), Value::DenseVector(vec![1.0, 2.0, 3.0])],
            ];
            let batches = RowBatch::from_rows(&schema, rows, 1)?;
            let input = Table::new(schema, job.from_vec(op("rows").parallelism(1), batches));
            let scaler = OnlineStandardScaler::new().set_windows(windows).unwrap();
            scaler.fit(job, vec![input])?.model_data[0]
                .stream
                .clone()
                .for_each("drop", |_| {});
            Ok(())
        })
        .unwrap_err()
        .to_string();
        assert!(error.contains("elements"), "{windows:?}: {error}");
    }

    let mut model = OnlineStandardScalerModel::new();
    let version = OnlineStandardScalerModelData {
        mean: vec![0.0; 2],
        std: vec![1.0; 2],
        version: 0,
        timestamp: i64::MAX,
    };
    model
        .set_model_data(vec![TableData {
            schema: OnlineStandardScalerModelData::schema(),
            batches: vec![version.to_batch()],
        }])
        .unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    let report = execute(Config::threads(1), move |job| {
        let input = Table::from_rows(job, "rows", id_input_schema("id", "input"), flink_rows())?;
        model
            .transform(job, vec![input])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    assert!(out.rows().is_empty());
    assert_eq!(report.dead_letters, 1);
}

/// Save/load keeps the estimator's params (Flink's JSON) and the model's versions; the loaded
/// model scores with the newest version; both classes are in the registry.
#[test]
fn save_and_load_keep_params_and_model_data() {
    let scaler = count_windows(3)
        .set(&WITH_MEAN, true)
        .unwrap()
        .set_model_version_col("v")
        .unwrap()
        .set(&MAX_ALLOWED_MODEL_DELAY_MS, 3000)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    scaler.save(dir.path()).unwrap();
    let metadata: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata")).unwrap())
            .unwrap();
    assert_eq!(
        metadata["className"],
        "org.apache.flink.ml.feature.standardscaler.OnlineStandardScaler"
    );
    assert_eq!(
        metadata["paramMap"]["windows"],
        json!({"class": "org.apache.flink.ml.common.window.CountTumblingWindows", "size": 3})
    );
    let loaded = load_stage(dir.path()).unwrap();
    assert_eq!(loaded.class_name(), OnlineStandardScaler::CLASS);
    assert_eq!(loaded.param_map().to_json(), scaler.param_map().to_json());

    let fitted = run(
        &scaler,
        1,
        id_input_schema("id", "input"),
        flink_rows(),
        4096,
        true,
    );
    let model_dir = tempfile::tempdir().unwrap();
    fitted.model.save(model_dir.path()).unwrap();
    let model = load_stage(model_dir.path()).unwrap();
    assert_eq!(model.class_name(), OnlineStandardScalerModel::CLASS);
    assert_eq!(
        model.param_map().to_json(),
        fitted.model.param_map().to_json()
    );
    assert_eq!(
        model.param_map().get(&MAX_ALLOWED_MODEL_DELAY_MS).unwrap(),
        3000
    );
    let data = &model.model_data().unwrap()[0];
    let versions =
        OnlineStandardScalerModelData::from_batches(&data.schema, &data.batches).unwrap();
    assert_eq!(versions, fitted.versions);
    assert_eq!(versions[2].timestamp, i64::MAX);

    // The stored versions enter the job before the rows: every row gets the newest.
    let out = TableCollector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        let input = Table::from_rows(job, "rows", id_input_schema("id", "input"), flink_rows())?;
        model
            .transform(job, vec![input])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    let rows = out.json_rows();
    assert_eq!(rows.len(), 9);
    let (mean, std) = FLINK_VERSIONS[2];
    for row in &rows {
        assert_eq!(row["v"], 2);
        let id = row["id"].as_i64().unwrap();
        let x = FLINK_ROWS.iter().find(|(i, _)| *i == id).unwrap().1;
        let want: Vec<f64> = (0..3).map(|j| (x[j] - mean[j]) / std[j]).collect();
        assert_close(&numbers(&row["output"]), &want, 1e-6, &format!("{row}"));
    }

    // A model without model data cannot be saved (Weir keeps model data with the model).
    assert!(OnlineStandardScalerModel::new()
        .save(tempfile::tempdir().unwrap().path())
        .is_err());
    for name in [
        "OnlineStandardScaler",
        "org.apache.flink.ml.feature.standardscaler.OnlineStandardScalerModel",
    ] {
        let class = find_class(name).unwrap();
        assert!(class.class_name.ends_with(name), "{name}");
        assert_eq!((class.build)().class_name(), class.class_name);
    }
}

/// The model takes the batch `StandardScaler`'s model data (`mean`, `std`) as version 0.
#[test]
fn the_batch_scalers_model_data_is_version_0() {
    let models = ModelCollector::new();
    let model_sink = models.clone();
    let rows: Vec<Vec<Value>> = FLINK_ROWS[..3]
        .iter()
        .map(|(_, x)| vec![Value::DenseVector(x.to_vec())])
        .collect();
    let train = rows.clone();
    execute(Config::threads(1), move |job| {
        let schema = Schema::new([("input", DataType::DenseVector)]);
        let input = Table::from_rows(job, "rows", schema, train.clone())?;
        StandardScaler::new()
            .fit(job, vec![input])?
            .collect(job, &model_sink);
        Ok(())
    })
    .unwrap();
    let data = models.model().unwrap().model_data().unwrap().to_vec();
    let mut model = OnlineStandardScalerModel::new();
    model.set_model_data(data).unwrap();
    let out = TableCollector::new();
    let sink = out.clone();
    execute(Config::threads(1), move |job| {
        let schema = Schema::new([("input", DataType::DenseVector)]);
        let input = Table::from_rows(job, "rows", schema, rows.clone())?;
        model
            .transform(job, vec![input])?
            .remove(0)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    let rows = out.json_rows();
    assert_eq!(rows.len(), 3);
    // Flink's expectations for withStd over the same three rows.
    let expected = [
        [-1.0231819, 1.2480754, 0.5773502],
        [0.5729819, -0.6933752, 0.5773503],
        [0.8185455, -0.1386750, -1.1547005],
    ];
    for (row, want) in rows.iter().zip(expected) {
        assert_eq!(row["version"], 0);
        assert_close(
            &numbers(&row["output"]),
            &want,
            TOLERANCE,
            &format!("{row}"),
        );
    }
}
