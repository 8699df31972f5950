//! Flink ML's feature-engineering stages (`org.apache.flink.ml.feature.*`), one module per
//! stage, each with Flink's class name, params and model data.

mod stage_macros;
mod table_ops;
mod vector_columns;

use crate::api::StageClass;

/// Declares the stage modules and gathers their registry entries (`CLASSES` of each).
macro_rules! stage_modules {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// The feature stages in the class registry.
        pub(crate) const MODULE_CLASSES: &[&[StageClass]] = &[$($module::CLASSES),*];
    };
}

stage_modules! {
    standard_scaler,
    // stages of group A
    // stages of group B
    // stages of group C
}

pub use standard_scaler::{StandardScaler, StandardScalerModel, StandardScalerModelData};
// re-exports of group A
// re-exports of group B
// re-exports of group C
