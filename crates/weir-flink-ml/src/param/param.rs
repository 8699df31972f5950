//! `Param<T>`: a named, typed, documented parameter with a default and a validator.

use std::marker::PhantomData;

use serde_json::Value as Json;

use super::validator::Validator;

/// The JSON type a param's values have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `true` / `false`.
    Boolean,
    /// An integer.
    Int,
    /// A number.
    Double,
    /// A string.
    String,
    /// An array of strings.
    StringArray,
    /// An array of numbers.
    DoubleArray,
    /// An array of integers.
    IntArray,
    /// An array of arrays of numbers (Bucketizer's `splitsArray`).
    DoubleArrayArray,
    /// An array of arrays of strings (benchmark generators' `colNames`).
    StringArrayArray,
    /// A vector: `{"values": [...]}` (dense) or `{"n": size, "indices": [...], "values": [...]}`
    /// (sparse), Flink's `VectorParam`.
    Vector,
    /// A windowing strategy in Flink's `WindowsParam` form: `{"class": ..., "size"/"gap": ...}`
    /// ([`super::Windows`]).
    Windows,
}

impl ParamType {
    /// Whether `value` (not null) has this type.
    pub fn admits(self, value: &Json) -> bool {
        let all = |f: fn(&Json) -> bool| value.as_array().is_some_and(|a| a.iter().all(f));
        match self {
            ParamType::Boolean => value.is_boolean(),
            ParamType::Int => value.as_i64().is_some(),
            ParamType::Double => value.is_number(),
            ParamType::String => value.is_string(),
            ParamType::StringArray => all(Json::is_string),
            ParamType::DoubleArray => all(Json::is_number),
            ParamType::IntArray => all(|x| x.as_i64().is_some()),
            ParamType::DoubleArrayArray => {
                all(|x| x.as_array().is_some_and(|a| a.iter().all(Json::is_number)))
            }
            ParamType::StringArrayArray => {
                all(|x| x.as_array().is_some_and(|a| a.iter().all(Json::is_string)))
            }
            ParamType::Vector => vector_param(value).is_some(),
            ParamType::Windows => super::Windows::from_json(value).is_ok(),
        }
    }

    /// The type's name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Boolean => "a boolean",
            ParamType::Int => "an integer",
            ParamType::Double => "a number",
            ParamType::String => "a string",
            ParamType::StringArray => "an array of strings",
            ParamType::DoubleArray => "an array of numbers",
            ParamType::IntArray => "an array of integers",
            ParamType::DoubleArrayArray => "an array of arrays of numbers",
            ParamType::StringArrayArray => "an array of arrays of strings",
            ParamType::Vector => {
                "a vector ({\"values\": [...]} or {\"n\": size, \"indices\": [...], \"values\": [...]})"
            }
            ParamType::Windows => {
                "a windowing strategy ({\"class\": \"org.apache.flink.ml.common.window.GlobalWindows\"}, or CountTumblingWindows with a \"size\", ...)"
            }
        }
    }
}

/// A vector param's value as `(size, indices, values)` (indices `None` for a dense vector).
pub fn vector_param(value: &Json) -> Option<(usize, Option<Vec<usize>>, Vec<f64>)> {
    let object = value.as_object()?;
    let values: Vec<f64> = serde_json::from_value(object.get("values")?.clone()).ok()?;
    match object.len() {
        1 => Some((values.len(), None, values)),
        3 => {
            let n = object.get("n")?.as_u64()? as usize;
            let indices: Vec<usize> =
                serde_json::from_value(object.get("indices")?.clone()).ok()?;
            (indices.len() == values.len() && indices.iter().all(|i| *i < n)).then_some((
                n,
                Some(indices),
                values,
            ))
        }
        _ => None,
    }
}

/// A param's description, independent of its Rust type: what stages list and what
/// validation, defaults and JSON use.
#[derive(Debug)]
pub struct ParamSpec {
    /// The name, as in Flink ML's `paramMap`.
    pub name: &'static str,
    /// What the param means.
    pub description: &'static str,
    /// The default value as JSON text (`None`: the param must be set).
    pub default: Option<&'static str>,
    /// The type of its values.
    pub kind: ParamType,
    /// The check its values must pass.
    pub validator: Validator,
}

impl ParamSpec {
    /// The default value, parsed.
    pub fn default_value(&self) -> Option<Json> {
        self.default
            .map(|text| serde_json::from_str(text).expect("param defaults are valid JSON"))
    }

    /// Checks a value: its JSON type, then the validator. The error says what is expected.
    pub fn check(&self, value: &Json) -> Result<(), String> {
        if !value.is_null() && self.kind == ParamType::Windows {
            if let Err(e) = super::Windows::from_json(value) {
                return Err(format!("must be {}: {e}", self.kind.name()));
            }
        }
        if !value.is_null() && !self.kind.admits(value) {
            return Err(format!("must be {}, got {value}", self.kind.name()));
        }
        if !self.validator.accepts(value) {
            if value.is_null() {
                return Err(format!(
                    "must be {} (its value should not be null)",
                    self.validator.expects()
                ));
            }
            return Err(format!("must be {}, got {value}", self.validator.expects()));
        }
        Ok(())
    }
}

/// Rust types that param values have, and their JSON forms.
pub trait ParamValue: Sized {
    /// The value from its (checked) JSON form.
    fn from_json(json: &Json) -> Option<Self>;
    /// The value's JSON form.
    fn to_json(&self) -> Json;
}

macro_rules! param_value {
    ($t:ty, $from:expr) => {
        impl ParamValue for $t {
            fn from_json(json: &Json) -> Option<Self> {
                $from(json)
            }
            fn to_json(&self) -> Json {
                serde_json::json!(self)
            }
        }
    };
}

param_value!(bool, |j: &Json| j.as_bool());
param_value!(i64, |j: &Json| j.as_i64());
param_value!(i32, |j: &Json| j
    .as_i64()
    .and_then(|v| i32::try_from(v).ok()));
param_value!(usize, |j: &Json| j.as_u64().map(|v| v as usize));
param_value!(f64, |j: &Json| j.as_f64());
param_value!(String, |j: &Json| j.as_str().map(String::from));
param_value!(Vec<String>, |j: &Json| serde_json::from_value(j.clone())
    .ok());
param_value!(Vec<f64>, |j: &Json| serde_json::from_value(j.clone()).ok());
param_value!(Vec<i64>, |j: &Json| serde_json::from_value(j.clone()).ok());
param_value!(Vec<usize>, |j: &Json| serde_json::from_value(j.clone())
    .ok());
param_value!(Vec<Vec<f64>>, |j: &Json| serde_json::from_value(j.clone())
    .ok());
param_value!(Vec<Vec<String>>, |j: &Json| serde_json::from_value(
    j.clone()
)
.ok());

/// A typed param: a [`ParamSpec`] whose values are `T`s.
///
/// ```
/// use weir_flink_ml::param::{Param, ParamType, Validator};
/// const MAX_ITER: Param<i64> = Param::new("maxIter", "Maximum number of iterations.",
///     Some("20"), ParamType::Int, Validator::Gt(0.0));
/// assert!(MAX_ITER.spec.check(&serde_json::json!(0)).is_err());
/// assert!(MAX_ITER.spec.check(&serde_json::json!(5)).is_ok());
/// ```
#[derive(Debug)]
pub struct Param<T> {
    /// The untyped description.
    pub spec: ParamSpec,
    _type: PhantomData<fn() -> T>,
}

impl<T> Param<T> {
    /// A param named `name` (Flink ML's name) with a default given as JSON text.
    pub const fn new(
        name: &'static str,
        description: &'static str,
        default: Option<&'static str>,
        kind: ParamType,
        validator: Validator,
    ) -> Param<T> {
        Param {
            spec: ParamSpec {
                name,
                description,
                default,
                kind,
                validator,
            },
            _type: PhantomData,
        }
    }

    /// The param's name.
    pub const fn name(&self) -> &'static str {
        self.spec.name
    }
}
