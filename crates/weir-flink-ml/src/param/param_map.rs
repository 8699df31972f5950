//! `ParamMap` (a stage's param values, defaults filled in) and `WithParams`.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::param::{Param, ParamSpec, ParamValue};
use crate::error::MlError;

/// The values of a stage's params, in Flink ML's `paramMap` JSON shape (`{"name": value}`).
#[derive(Clone, Debug)]
pub struct ParamMap {
    stage: &'static str,
    specs: &'static [&'static ParamSpec],
    values: BTreeMap<&'static str, Json>,
}

impl ParamMap {
    /// The params `specs` of stage class `stage`, each at its default (null if none).
    pub fn new(stage: &'static str, specs: &'static [&'static ParamSpec]) -> ParamMap {
        let values = specs
            .iter()
            .map(|s| (s.name, s.default_value().unwrap_or(Json::Null)))
            .collect();
        ParamMap {
            stage,
            specs,
            values,
        }
    }

    /// The stage's class name (short), used in errors.
    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The params' descriptions.
    pub fn specs(&self) -> &'static [&'static ParamSpec] {
        self.specs
    }

    fn spec(&self, name: &str) -> Result<&'static ParamSpec, MlError> {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .copied()
            .ok_or_else(|| MlError::UnknownParam {
                stage: self.stage.to_string(),
                param: name.to_string(),
                known: self
                    .specs
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Sets param `name` from JSON; unknown names and invalid values are errors.
    pub fn set_json(&mut self, name: &str, value: Json) -> Result<(), MlError> {
        let spec = self.spec(name)?;
        if value.is_null() && spec.default.is_none() {
            // Null means "not set" for a param without default (as saved metadata has it);
            // `get` reports it as missing when a stage needs it.
            self.values.insert(spec.name, value);
            return Ok(());
        }
        spec.check(&value)
            .map_err(|message| MlError::InvalidParam {
                stage: self.stage.to_string(),
                param: name.to_string(),
                message,
            })?;
        self.values.insert(spec.name, value);
        Ok(())
    }

    /// Sets a typed param.
    pub fn set<T: ParamValue>(&mut self, param: &Param<T>, value: T) -> Result<(), MlError> {
        self.set_json(param.name(), value.to_json())
    }

    /// The JSON value of param `name` (null when unset without default).
    pub fn get_json(&self, name: &str) -> Result<&Json, MlError> {
        let spec = self.spec(name)?;
        Ok(self.values.get(spec.name).unwrap_or(&Json::Null))
    }

    /// A typed param's value; an unset param without default is an error.
    pub fn get<T: ParamValue>(&self, param: &Param<T>) -> Result<T, MlError> {
        self.get_opt(param)?.ok_or_else(|| MlError::MissingParam {
            stage: self.stage.to_string(),
            param: param.name().to_string(),
        })
    }

    /// A typed param's value, `None` when it is null.
    pub fn get_opt<T: ParamValue>(&self, param: &Param<T>) -> Result<Option<T>, MlError> {
        let json = self.get_json(param.name())?;
        if json.is_null() {
            return Ok(None);
        }
        T::from_json(json)
            .map(Some)
            .ok_or_else(|| MlError::InvalidParam {
                stage: self.stage.to_string(),
                param: param.name().to_string(),
                message: format!("cannot be read from {json}"),
            })
    }

    /// Every param and its value (defaults included), as Flink ML saves them.
    pub fn to_json(&self) -> Map<String, Json> {
        self.specs
            .iter()
            .map(|s| (s.name.to_string(), self.values[s.name].clone()))
            .collect()
    }

    /// Takes the values of the params this map has from `other` and ignores the rest (Flink's
    /// `ParamUtils.updateExistingParams`: a model takes its estimator's values of the params
    /// it declares).
    pub fn copy_existing_from(&mut self, other: &ParamMap) -> Result<(), MlError> {
        let values = other.to_json();
        for spec in self.specs {
            if let Some(value) = values.get(spec.name) {
                self.set_json(spec.name, value.clone())?;
            }
        }
        Ok(())
    }

    /// `inputCols` and `outputCols`, checked to have one output per input (the pairing of
    /// multi-column stages such as StringIndexer or StopWordsRemover).
    pub fn paired_columns(&self) -> Result<(Vec<String>, Vec<String>), MlError> {
        use super::shared::{INPUT_COLS, OUTPUT_COLS};
        let cols = self.get(&INPUT_COLS)?;
        let out_cols = self.get(&OUTPUT_COLS)?;
        if cols.len() != out_cols.len() {
            return Err(MlError::InvalidParam {
                stage: self.stage.to_string(),
                param: OUTPUT_COLS.name().to_string(),
                message: format!(
                    "must have one entry per input column ({}), got {}",
                    cols.len(),
                    out_cols.len()
                ),
            });
        }
        Ok((cols, out_cols))
    }

    /// Sets every param of a JSON `paramMap`; the first unknown or invalid one is an error.
    ///
    /// ```
    /// use weir_flink_ml::feature::StandardScaler;
    /// use weir_flink_ml::param::WithParams;
    /// let mut scaler = StandardScaler::new();
    /// let map = serde_json::json!({"withMean": true, "inputCol": "x"});
    /// scaler.param_map_mut().update_from_json(map.as_object().unwrap()).unwrap();
    /// let bad = serde_json::json!({"withMeans": true});
    /// let error = scaler.param_map_mut().update_from_json(bad.as_object().unwrap()).unwrap_err();
    /// assert!(error.to_string().contains("unknown parameter `withMeans`"));
    /// ```
    pub fn update_from_json(&mut self, map: &Map<String, Json>) -> Result<(), MlError> {
        for (name, value) in map {
            self.set_json(name, value.clone())?;
        }
        Ok(())
    }
}

/// Stages with params (Flink ML's `WithParams`).
pub trait WithParams {
    /// The param values.
    fn param_map(&self) -> &ParamMap;
    /// The param values, to change.
    fn param_map_mut(&mut self) -> &mut ParamMap;

    /// Sets a param, builder style.
    ///
    /// ```
    /// use weir_flink_ml::feature::{standard_scaler::WITH_MEAN, StandardScaler};
    /// use weir_flink_ml::param::WithParams;
    /// let scaler = StandardScaler::new().set(&WITH_MEAN, true).unwrap();
    /// assert!(scaler.get(&WITH_MEAN).unwrap());
    /// ```
    fn set<T: ParamValue>(mut self, param: &Param<T>, value: T) -> Result<Self, MlError>
    where
        Self: Sized,
    {
        self.param_map_mut().set(param, value)?;
        Ok(self)
    }

    /// A param's value.
    fn get<T: ParamValue>(&self, param: &Param<T>) -> Result<T, MlError>
    where
        Self: Sized,
    {
        self.param_map().get(param)
    }
}
