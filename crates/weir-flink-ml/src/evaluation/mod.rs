//! Flink ML's evaluators (`org.apache.flink.ml.evaluation.*`), one module per evaluator.

mod weighted_tally;

crate::common::stage_modules! {
    // evaluation modules (keep one per line)
    binary_classification_evaluator,
    multiclass_classification_evaluator,
}

pub use binary_classification_evaluator::BinaryClassificationEvaluator;
pub use multiclass_classification_evaluator::MulticlassClassificationEvaluator;
