//! Flink ML's classifiers (`org.apache.flink.ml.classification.*`), one module per algorithm.

crate::common::stage_modules! {
    // classification modules (keep one per line)
    logistic_regression,
    online_logistic_regression,
    linear_svc,
    naive_bayes,
    knn,
}

pub use crate::common::linear_model::LinearModelData;
pub use knn::{Knn, KnnModel, KnnModelData};
pub use linear_svc::{LinearSVC, LinearSVCModel, LinearSVCModelData};
pub use logistic_regression::{
    LogisticRegression, LogisticRegressionModel, LogisticRegressionModelData,
};
pub use naive_bayes::{NaiveBayes, NaiveBayesModel, NaiveBayesModelData};
pub use online_logistic_regression::{OnlineLogisticRegression, OnlineLogisticRegressionModel};
