//! Input data generators of `weir bench` (generated before timing starts), named as in Flink
//! ML's benchmark (`DenseVectorGenerator`, `LabeledPointWithWeightGenerator` …): the last
//! segment of `className` picks the generator, so `weir.DenseVectorGenerator` and Flink's
//! fully qualified names both work.

use std::sync::Arc;

use anyhow::{bail, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use weir_ml::LabeledPoint;

use super::spec::ClassSpec;

/// Generated input records.
#[derive(Clone)]
pub enum Dataset {
    /// Dense float vectors.
    Dense(Arc<Vec<Vec<f32>>>),
    /// Labelled points, classes from a hidden linear model.
    Labeled(Arc<Vec<LabeledPoint>>),
    /// Strings of space-separated words `w<k>`.
    Strings(Arc<Vec<String>>),
    /// `(key, value)` pairs: keys uniform in `0..numKeys`.
    KeyValues(Arc<Vec<(u64, f64)>>),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self {
            Dataset::Dense(d) => d.len(),
            Dataset::Labeled(d) => d.len(),
            Dataset::Strings(d) => d.len(),
            Dataset::KeyValues(d) => d.len(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Dataset::Dense(_) => "dense vectors (DenseVectorGenerator)",
            Dataset::Labeled(_) => "labelled points (LabeledPointGenerator)",
            Dataset::Strings(_) => "strings (RandomStringGenerator)",
            Dataset::KeyValues(_) => "key-value pairs (KeyValueGenerator)",
        }
    }
}

/// The last segment of a class name.
pub fn short_name(class_name: &str) -> &str {
    class_name.rsplit('.').next().unwrap_or(class_name)
}

/// Generates the input described by `spec`.
pub fn generate(spec: &ClassSpec) -> Result<Dataset> {
    let n = spec.uint("numValues", 10_000)? as usize;
    let mut rng = SmallRng::seed_from_u64(spec.uint("seed", 2)?);
    Ok(match short_name(&spec.class_name) {
        "DenseVectorGenerator" => {
            let dim = spec.uint("vectorDim", 10)? as usize;
            let high = spec.float("maxValue", 1.0)? as f32;
            Dataset::Dense(Arc::new(
                (0..n)
                    .map(|_| (0..dim).map(|_| rng.random::<f32>() * high).collect())
                    .collect(),
            ))
        }
        "LabeledPointGenerator" | "LabeledPointWithWeightGenerator" => {
            let dim = spec.uint("vectorDim", 10)? as usize;
            let classes = spec.uint("numClasses", 2)?.max(2) as usize;
            let hidden: Vec<f32> = (0..classes * dim).map(|_| rng.random::<f32>() - 0.5).collect();
            Dataset::Labeled(Arc::new(
                (0..n)
                    .map(|_| {
                        let x: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
                        let score = |c: usize| -> f32 {
                            hidden[c * dim..(c + 1) * dim].iter().zip(&x).map(|(w, v)| w * v).sum()
                        };
                        let y = (0..classes).fold(0, |best, c| if score(c) > score(best) { c } else { best });
                        LabeledPoint { x, y }
                    })
                    .collect(),
            ))
        }
        "RandomStringGenerator" => {
            let distinct = spec.uint("numDistinctValues", 1000)?.max(1);
            let words = spec.uint("wordsPerValue", 1)?.max(1);
            Dataset::Strings(Arc::new(
                (0..n)
                    .map(|_| {
                        (0..words)
                            .map(|_| format!("w{}", rng.random_range(0..distinct)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect(),
            ))
        }
        "KeyValueGenerator" => {
            let keys = spec.uint("numKeys", 1000)?.max(1);
            Dataset::KeyValues(Arc::new(
                (0..n)
                    .map(|_| (rng.random_range(0..keys), rng.random::<f64>()))
                    .collect(),
            ))
        }
        other => bail!(
            "unknown input generator `{other}` (known: DenseVectorGenerator, LabeledPointGenerator, RandomStringGenerator, KeyValueGenerator)"
        ),
    })
}
