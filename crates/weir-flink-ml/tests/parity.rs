//! Parity of every feature stage with scikit-learn (or Flink ML's own test cases), from the
//! fixtures that `scripts/flink_ml_fixtures.py` writes to `fixtures/flink-ml/`: each case is
//! fitted (estimators) and transformed at 1 and 2 workers, then saved, loaded and run again;
//! its params go through a JSON round trip.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value as Json};
use weir_core::{execute, Config};
use weir_flink_ml::api::{load_stage, new_stage, ModelCollector, Stage, StageKind, TableData};
use weir_flink_ml::table::{DataType, RowBatch, Schema, Table, TableCollector};

const ROW: &str = "__row";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/flink-ml")
}

struct Case {
    name: String,
    stage: String,
    params: serde_json::Map<String, Json>,
    schema: Schema,
    fit: Option<Vec<Json>>,
    input: Vec<Json>,
    expected: Vec<Json>,
    tolerance: f64,
    /// Model data given directly (a model tested without its estimator).
    model_data: Option<(Schema, Vec<Json>)>,
}

fn parse_schema(json: &Json) -> Schema {
    Schema::new(json.as_array().unwrap().iter().map(|f| {
        let t = f[1].as_str().unwrap();
        (
            f[0].as_str().unwrap().to_string(),
            DataType::parse(t).unwrap_or_else(|| panic!("unknown type {t}")),
        )
    }))
}

fn cases(stage: &str) -> Vec<Case> {
    let path = fixtures().join(format!("{stage}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate the fixtures with \
             `python scripts/flink_ml_fixtures.py` (see fixtures/flink-ml/README.md)",
            path.display()
        )
    });
    let file: Json = serde_json::from_str(&text).unwrap();
    file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            stage: c["stage"].as_str().unwrap().to_string(),
            params: c["paramMap"].as_object().cloned().unwrap_or_default(),
            schema: parse_schema(&c["schema"]),
            fit: c.get("fit").and_then(Json::as_array).cloned(),
            input: c["input"].as_array().unwrap().clone(),
            expected: c["expected"].as_array().unwrap().clone(),
            tolerance: c.get("tolerance").and_then(Json::as_f64).unwrap_or(1e-9),
            model_data: c.get("modelData").map(|m| {
                (
                    parse_schema(&m["schema"]),
                    m["rows"].as_array().unwrap().clone(),
                )
            }),
        })
        .collect()
}

/// The stage of a case, with its params (checked to survive a JSON round trip).
fn stage_of(case: &Case) -> Box<dyn Stage> {
    let mut stage = new_stage(&case.stage).unwrap();
    stage
        .param_map_mut()
        .update_from_json(&case.params)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    if let Some((schema, rows)) = &case.model_data {
        let batches = RowBatch::from_json_rows(schema, rows, 1024).unwrap();
        stage
            .set_model_data(vec![TableData {
                schema: schema.clone(),
                batches,
            }])
            .unwrap_or_else(|e| panic!("{}: model data: {e}", case.name));
    }
    let saved = stage.param_map().to_json();
    let mut again = new_stage(stage.class_name()).unwrap();
    again.param_map_mut().update_from_json(&saved).unwrap();
    assert_eq!(
        again.param_map().to_json(),
        saved,
        "{}: params JSON round trip",
        case.name
    );
    stage
}

/// Input rows with their position in an extra column, to put outputs back in order.
fn numbered(case: &Case) -> (Schema, Vec<Json>) {
    let schema = case.schema.with_column(ROW, DataType::Long).unwrap();
    let rows = case
        .input
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut row = row.as_object().unwrap().clone();
            row.insert(ROW.into(), json!(i));
            Json::Object(row)
        })
        .collect();
    (schema, rows)
}

/// Runs the case on `workers` threads: fit (if it has fit rows) and transform. Returns the
/// output rows in input order, and the fitted model (or the transformer itself).
fn run(case: &Arc<Case>, stage: Box<dyn Stage>, workers: usize) -> (Vec<Json>, Box<dyn Stage>) {
    let out = TableCollector::new();
    let models = ModelCollector::new();
    let (sink, model_sink, c) = (out.clone(), models.clone(), Arc::clone(case));
    let fits = case.fit.is_some() && stage.kind() == StageKind::Estimator;
    let stage2 = stage.clone();
    execute(Config::threads(workers), move |job| {
        let (schema, rows) = numbered(&c);
        let input = Table::from_json_rows(job, "input", schema, &rows)?;
        let output = if fits {
            let fit_rows = c.fit.as_ref().unwrap();
            let fit = Table::from_json_rows(job, "fit", c.schema.clone(), fit_rows)?;
            let fitted = stage2.fit(job, vec![fit])?;
            let output = fitted.transform(job, vec![input])?;
            fitted.collect(job, &model_sink);
            output
        } else {
            stage2.transform(job, vec![input])?
        };
        output.into_iter().next().unwrap().collect("out", &sink);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut rows = out.json_rows();
    rows.sort_by_key(|r| r[ROW].as_i64().unwrap());
    let model = if fits { models.model().unwrap() } else { stage };
    (rows, model)
}

fn close(a: &Json, b: &Json, tolerance: f64) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= tolerance * (1.0 + y.abs())
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y, tolerance))
        }
        // A vector compares by value whether it is dense or sparse: Flink chooses the kind per
        // row (VectorAssembler), Weir per column (docs/flink-ml.md).
        (Json::Object(_), Json::Array(_)) | (Json::Array(_), Json::Object(_))
            if densified(a).is_some() && densified(b).is_some() =>
        {
            close(&densified(a).unwrap(), &densified(b).unwrap(), tolerance)
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| close(v, w, tolerance)))
        }
        (x, y) => x == y,
    }
}

/// A sparse vector's JSON as the dense array it stands for (dense arrays as they are).
fn densified(v: &Json) -> Option<Json> {
    match v {
        Json::Array(_) => Some(v.clone()),
        Json::Object(o) => {
            let size = o.get("size")?.as_u64()? as usize;
            let mut dense = vec![json!(0.0); size];
            let indices = o.get("indices")?.as_array()?;
            let values = o.get("values")?.as_array()?;
            for (i, x) in indices.iter().zip(values) {
                *dense.get_mut(i.as_u64()? as usize)? = x.clone();
            }
            Some(Json::Array(dense))
        }
        _ => None,
    }
}

fn check(case: &Case, rows: &[Json], what: &str) {
    assert_eq!(
        rows.len(),
        case.expected.len(),
        "{} ({what}): {} output rows, expected {}",
        case.name,
        rows.len(),
        case.expected.len()
    );
    for (i, (row, expected)) in rows.iter().zip(&case.expected).enumerate() {
        for (column, want) in expected.as_object().unwrap() {
            let got = row.get(column).unwrap_or(&Json::Null);
            assert!(
                close(got, want, case.tolerance),
                "{} ({what}), row {i}, column `{column}`: got {got}, expected {want}",
                case.name
            );
        }
    }
}

fn parity(stage_name: &str) {
    let all = cases(stage_name);
    assert!(!all.is_empty(), "no cases for {stage_name}");
    for case in all {
        let case = Arc::new(case);
        let stage = stage_of(&case);
        let (rows, model) = run(&case, stage.clone(), 1);
        check(&case, &rows, "1 worker");
        let (rows, _) = run(&case, stage, 2);
        check(&case, &rows, "2 workers");
        // Save and load the fitted model (or the transformer), then transform again.
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = load_stage(dir.path()).unwrap_or_else(|e| panic!("{}: load: {e}", case.name));
        assert_eq!(loaded.class_name(), model.class_name());
        assert_eq!(loaded.param_map().to_json(), model.param_map().to_json());
        let mut transform_only = Case {
            fit: None,
            ..clone_case(&case)
        };
        transform_only.name = format!("{} (loaded)", case.name);
        let (rows, _) = run(&Arc::new(transform_only), loaded, 2);
        check(&case, &rows, "saved and loaded, 2 workers");
    }
}

fn clone_case(c: &Case) -> Case {
    Case {
        name: c.name.clone(),
        stage: c.stage.clone(),
        params: c.params.clone(),
        schema: c.schema.clone(),
        fit: c.fit.clone(),
        input: c.input.clone(),
        expected: c.expected.clone(),
        tolerance: c.tolerance,
        model_data: c.model_data.clone(),
    }
}

macro_rules! parity_tests {
    ($($test:ident => $stage:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                parity($stage);
            }
        )*
    };
}

parity_tests! {
    standard_scaler => "StandardScaler",
    min_max_scaler => "MinMaxScaler",
    max_abs_scaler => "MaxAbsScaler",
    robust_scaler => "RobustScaler",
    imputer => "Imputer",
    k_bins_discretizer => "KBinsDiscretizer",
    variance_threshold_selector => "VarianceThresholdSelector",
    univariate_feature_selector => "UnivariateFeatureSelector",
    vector_indexer => "VectorIndexer",
    idf => "IDF",
    vector_assembler => "VectorAssembler",
    binarizer => "Binarizer",
    bucketizer => "Bucketizer",
    dct => "DCT",
    elementwise_product => "ElementwiseProduct",
    interaction => "Interaction",
    normalizer => "Normalizer",
    polynomial_expansion => "PolynomialExpansion",
    vector_slicer => "VectorSlicer",
    feature_hasher => "FeatureHasher",
    tokenizer => "Tokenizer",
    regex_tokenizer => "RegexTokenizer",
    ngram => "NGram",
    stop_words_remover => "StopWordsRemover",
    hashing_tf => "HashingTF",
    count_vectorizer => "CountVectorizer",
    string_indexer => "StringIndexer",
    one_hot_encoder => "OneHotEncoder",
}
