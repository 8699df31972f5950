//! Flink ML's classifiers (`org.apache.flink.ml.classification.*`), one module per algorithm.

crate::common::stage_modules! {
    // classification modules (keep one per line)
}
