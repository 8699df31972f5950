//! What the stages of every family share (Flink ML's `org.apache.flink.ml.common`): the
//! macros that give every stage its shape, the operators that turn stages into dataflow
//! (`table_ops`), reading one-row model data, vector columns, and Java's float semantics.

pub(crate) mod distance;
pub(crate) mod java_math;
pub(crate) mod linear_model;
pub(crate) mod model_row;
pub(crate) mod newest_model;
pub(crate) mod prefetch;
pub(crate) mod sgd;
pub(crate) mod shared_values;
pub(crate) mod stage_macros;
pub(crate) mod table_ops;
pub(crate) mod vector_columns;

/// Declares the stage modules of a family and gathers their registry entries (`CLASSES` of
/// each) into the family's `MODULE_CLASSES`.
macro_rules! stage_modules {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// The stages of this family in the class registry.
        pub(crate) const MODULE_CLASSES: &[&[$crate::api::StageClass]] = &[$($module::CLASSES),*];
    };
}

pub(crate) use stage_modules;
