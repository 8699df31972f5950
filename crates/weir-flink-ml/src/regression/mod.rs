//! Flink ML's regressors (`org.apache.flink.ml.regression.*`), one module per algorithm.

crate::common::stage_modules! {
    // regression modules (keep one per line)
    linear_regression,
}

pub use linear_regression::{LinearRegression, LinearRegressionModel, LinearRegressionModelData};
