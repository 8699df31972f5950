//! Flink ML's evaluators (`org.apache.flink.ml.evaluation.*`), one module per evaluator.

crate::common::stage_modules! {
    // evaluation modules (keep one per line)
    binary_classification_evaluator,
}
