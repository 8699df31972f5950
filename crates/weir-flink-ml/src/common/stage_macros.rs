//! The shape every stage shares: a struct with a `ParamMap`, Flink's class name, `new()` /
//! `Default`, and `WithParams`.

/// Declares a stage struct with its params: `stage!(Name, "fully.qualified.Class", [&P1.spec, ...]);`
macro_rules! stage {
    ($(#[$doc:meta])* $name:ident, $class:expr, [$($param:expr),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            params: $crate::param::ParamMap,
        }

        impl $name {
            /// Flink ML's class name.
            pub const CLASS: &'static str = $class;
            /// The stage's params.
            pub const PARAMS: &'static [&'static $crate::param::ParamSpec] = &[$($param),*];

            /// The stage with default params.
            pub fn new() -> Self {
                $name {
                    params: $crate::param::ParamMap::new(stringify!($name), Self::PARAMS),
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::param::WithParams for $name {
            fn param_map(&self) -> &$crate::param::ParamMap {
                &self.params
            }
            fn param_map_mut(&mut self) -> &mut $crate::param::ParamMap {
                &mut self.params
            }
        }
    };
}

/// Declares a model struct: params plus model data in memory.
macro_rules! model {
    ($(#[$doc:meta])* $name:ident, $class:expr, [$($param:expr),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            params: $crate::param::ParamMap,
            data: Option<Vec<$crate::api::TableData>>,
        }

        impl $name {
            /// Flink ML's class name.
            pub const CLASS: &'static str = $class;
            /// The model's params.
            pub const PARAMS: &'static [&'static $crate::param::ParamSpec] = &[$($param),*];

            /// The model with default params and no model data.
            pub fn new() -> Self {
                $name {
                    params: $crate::param::ParamMap::new(stringify!($name), Self::PARAMS),
                    data: None,
                }
            }

            /// The model with the params of `params` (an estimator's) and no model data.
            pub fn with_params(params: &$crate::param::ParamMap) -> Self {
                let mut model = Self::new();
                model
                    .params
                    .copy_existing_from(params)
                    .expect("the estimator's values are valid for the model's params of the same name");
                model
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::param::WithParams for $name {
            fn param_map(&self) -> &$crate::param::ParamMap {
                &self.params
            }
            fn param_map_mut(&mut self) -> &mut $crate::param::ParamMap {
                &mut self.params
            }
        }
    };
}

/// The model-data methods of `Stage` for a model declared with `model!` (one table).
macro_rules! model_data_methods {
    () => {
        fn model_data_tables(&self) -> usize {
            1
        }
        fn model_data(&self) -> Option<&[$crate::api::TableData]> {
            self.data.as_deref()
        }
        fn set_model_data(
            &mut self,
            data: Vec<$crate::api::TableData>,
        ) -> Result<(), $crate::MlError> {
            if data.len() != 1 {
                return Err($crate::MlError::Stage {
                    stage: self.short_name().to_string(),
                    message: format!("takes 1 model data table, got {}", data.len()),
                });
            }
            self.data = Some(data);
            Ok(())
        }
        fn transform<'s>(
            &self,
            job: &mut weir_core::Job<'s>,
            inputs: Vec<$crate::table::Table<'s>>,
        ) -> Result<Vec<$crate::table::Table<'s>>, $crate::MlError> {
            $crate::api::transform_with_stored(self, job, inputs)
        }
    };
}

/// The identity methods of `Stage` every stage shares: `stage_basics!(Model);` inside an
/// `impl Stage for ...` gives `class_name` (the type's `CLASS`), `kind` and `clone_stage`.
macro_rules! stage_basics {
    ($kind:ident) => {
        fn class_name(&self) -> &'static str {
            Self::CLASS
        }
        fn kind(&self) -> $crate::api::StageKind {
            $crate::api::StageKind::$kind
        }
        fn clone_stage(&self) -> Box<dyn $crate::api::Stage> {
            Box::new(self.clone())
        }
    };
}

pub(crate) use {model, model_data_methods, stage, stage_basics};
