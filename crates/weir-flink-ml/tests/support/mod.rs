//! What the learning algorithms' tests share: scikit-learn's bundled data sets with one fixed
//! train/test split (`fixtures/datasets/`, written by `scripts/make_learning_datasets.py`),
//! and running a stage's fit and transform on a number of timely workers.
#![allow(dead_code)]

use std::path::PathBuf;

use serde::Deserialize;
use weir_core::{execute, Config};
use weir_flink_ml::api::{ModelCollector, Stage};
use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};

/// The row number column added to every row, so that outputs can be put back in input order.
pub const ROW: &str = "row";

/// One of scikit-learn's bundled data sets with its split.
#[derive(Clone, Debug, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub classes: usize,
    pub features: Vec<Vec<f64>>,
    pub label: Vec<f64>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

impl Dataset {
    /// `fixtures/datasets/<name>.json`.
    pub fn load(name: &str) -> Dataset {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/datasets")
            .join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (regenerate with `python scripts/make_learning_datasets.py`)",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The data set with only the rows whose label is in `labels` (for binary classifiers on
    /// a multi-class data set), labels renumbered from 0 in the order given.
    pub fn with_labels(&self, labels: &[f64]) -> Dataset {
        let keep: Vec<usize> = (0..self.label.len())
            .filter(|&i| labels.contains(&self.label[i]))
            .collect();
        let position = |i: usize| keep.iter().position(|&k| k == i);
        let renumber = |l: f64| labels.iter().position(|&x| x == l).unwrap() as f64;
        Dataset {
            name: format!("{}{labels:?}", self.name),
            classes: labels.len(),
            features: keep.iter().map(|&i| self.features[i].clone()).collect(),
            label: keep.iter().map(|&i| renumber(self.label[i])).collect(),
            train: self.train.iter().filter_map(|&i| position(i)).collect(),
            test: self.test.iter().filter_map(|&i| position(i)).collect(),
        }
    }

    /// The schema of [`Dataset::rows`]: `row`, `features`, `label`, `weight`.
    pub fn schema() -> Schema {
        Schema::new([
            (ROW, DataType::Long),
            ("features", DataType::DenseVector),
            ("label", DataType::Double),
            ("weight", DataType::Double),
        ])
    }

    /// The rows at `indices` (weight 1.0).
    pub fn rows(&self, indices: &[usize]) -> Vec<Vec<Value>> {
        indices
            .iter()
            .map(|&i| {
                vec![
                    Value::Long(i as i64),
                    Value::DenseVector(self.features[i].clone()),
                    Value::Double(self.label[i]),
                    Value::Double(1.0),
                ]
            })
            .collect()
    }

    /// The labels at `indices`.
    pub fn labels(&self, indices: &[usize]) -> Vec<f64> {
        indices.iter().map(|&i| self.label[i]).collect()
    }
}

/// What [`fit_transform`] gives back: the transformed test rows (in row order) and the model
/// with its model data in memory.
pub struct FitResult {
    pub rows: Vec<serde_json::Value>,
    pub model: Box<dyn Stage>,
}

/// Fits `stage` on the training rows and transforms the test rows with the fitted model, on
/// `workers` threads.
pub fn fit_transform(
    stage: &dyn Stage,
    data: &Dataset,
    train: &[usize],
    test: &[usize],
    workers: usize,
) -> FitResult {
    let out = TableCollector::new();
    let models = ModelCollector::new();
    let (sink, model_sink) = (out.clone(), models.clone());
    let stage = stage.clone_stage();
    let (train_rows, test_rows) = (data.rows(train), data.rows(test));
    execute(Config::threads(workers), move |job| {
        let train = Table::from_rows(job, "train", Dataset::schema(), train_rows.clone())?;
        let test = Table::from_rows(job, "test", Dataset::schema(), test_rows.clone())?;
        let fitted = stage.fit(job, vec![train])?;
        let output = fitted.transform(job, vec![test])?;
        fitted.collect(job, &model_sink);
        output.into_iter().next().unwrap().collect("out", &sink);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", data.name));
    let mut rows = out.json_rows();
    rows.sort_by_key(|r| r[ROW].as_i64().unwrap());
    FitResult {
        rows,
        model: models.model().unwrap(),
    }
}

/// The share of `rows` whose `column` equals the label of the row.
pub fn accuracy(data: &Dataset, rows: &[serde_json::Value], column: &str) -> f64 {
    let correct = rows
        .iter()
        .filter(|r| {
            let i = r[ROW].as_u64().unwrap() as usize;
            r[column].as_f64() == Some(data.label[i])
        })
        .count();
    correct as f64 / rows.len() as f64
}

impl Dataset {
    /// The data set with every feature standardized by the training rows' mean and
    /// population standard deviation, and a constant 1.0 feature appended (an intercept for
    /// Flink ML's linear models), as `scripts/flink_ml_fixtures/linear.py` does.
    pub fn standardized_with_bias(&self) -> Dataset {
        let dim = self.features[0].len();
        let n = self.train.len() as f64;
        let mut mean = vec![0.0; dim];
        for &i in &self.train {
            for (m, x) in mean.iter_mut().zip(&self.features[i]) {
                *m += x / n;
            }
        }
        let mut std = vec![0.0; dim];
        for &i in &self.train {
            for ((s, x), m) in std.iter_mut().zip(&self.features[i]).zip(&mean) {
                *s += (x - m) * (x - m) / n;
            }
        }
        let std: Vec<f64> = std
            .into_iter()
            .map(|v| if v == 0.0 { 1.0 } else { v.sqrt() })
            .collect();
        let features = self
            .features
            .iter()
            .map(|row| {
                let mut z: Vec<f64> = row
                    .iter()
                    .zip(mean.iter().zip(&std))
                    .map(|(x, (m, s))| (x - m) / s)
                    .collect();
                z.push(1.0);
                z
            })
            .collect();
        Dataset {
            features,
            ..self.clone()
        }
    }
}
