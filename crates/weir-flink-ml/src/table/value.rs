//! One cell of a table, and its JSON form (the form of fixtures, JSON jobs and model data
//! files): numbers, strings, booleans, arrays for dense vectors and `String[]`/`Double[]`, and
//! `{"size": n, "indices": [...], "values": [...]}` for sparse vectors.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::data_type::DataType;
use super::vector::SparseVector;

/// A single value of a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Long(i64),
    /// A float (missing numbers are NaN).
    Double(f64),
    /// A string.
    String(String),
    /// A dense vector.
    DenseVector(Vec<f64>),
    /// A sparse vector.
    SparseVector(SparseVector),
    /// An array of strings.
    StringArray(Vec<String>),
    /// An array of doubles.
    DoubleArray(Vec<f64>),
    /// An array of dense vectors.
    DenseVectorArray(Vec<Vec<f64>>),
}

impl Value {
    /// The value's type.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Boolean(_) => DataType::Boolean,
            Value::Long(_) => DataType::Long,
            Value::Double(_) => DataType::Double,
            Value::String(_) => DataType::String,
            Value::DenseVector(_) => DataType::DenseVector,
            Value::SparseVector(_) => DataType::SparseVector,
            Value::StringArray(_) => DataType::StringArray,
            Value::DoubleArray(_) => DataType::DoubleArray,
            Value::DenseVectorArray(_) => DataType::DenseVectorArray,
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Long(v) => Some(*v as f64),
            Value::Double(v) => Some(*v),
            _ => None,
        }
    }

    /// Reads a JSON value as a value of type `t`; the error says what was expected.
    ///
    /// ```
    /// use weir_flink_ml::table::{DataType, Value};
    /// let v = Value::from_json(DataType::SparseVector,
    ///     &serde_json::json!({"size": 3, "indices": [2], "values": [1.5]})).unwrap();
    /// assert_eq!(v.to_json(), serde_json::json!({"size": 3, "indices": [2], "values": [1.5]}));
    /// assert!(Value::from_json(DataType::Double, &serde_json::json!("x")).is_err());
    /// ```
    pub fn from_json(t: DataType, json: &Json) -> Result<Value, String> {
        let expected = || format!("expected a {t}, got {}", short(json));
        Ok(match t {
            DataType::Boolean => Value::Boolean(json.as_bool().ok_or_else(expected)?),
            DataType::Long => Value::Long(match json {
                Json::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or_else(expected)?,
                _ => return Err(expected()),
            }),
            DataType::Double => Value::Double(number(json).ok_or_else(expected)?),
            DataType::String => Value::String(json.as_str().ok_or_else(expected)?.to_string()),
            DataType::DenseVector => Value::DenseVector(numbers(json).ok_or_else(expected)?),
            DataType::DoubleArray => Value::DoubleArray(numbers(json).ok_or_else(expected)?),
            DataType::StringArray => Value::StringArray(
                json.as_array()
                    .and_then(|a| a.iter().map(|s| s.as_str().map(String::from)).collect())
                    .ok_or_else(expected)?,
            ),
            DataType::SparseVector => Value::SparseVector(sparse(json).ok_or_else(expected)??),
            DataType::DenseVectorArray => Value::DenseVectorArray(
                json.as_array()
                    .and_then(|a| a.iter().map(numbers).collect())
                    .ok_or_else(expected)?,
            ),
        })
    }

    /// The value's JSON form.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Boolean(b) => json!(b),
            Value::Long(v) => json!(v),
            Value::Double(v) => double_json(*v),
            Value::String(s) => json!(s),
            Value::DenseVector(v) | Value::DoubleArray(v) => doubles_json(v),
            Value::SparseVector(v) => {
                json!({"size": v.size, "indices": v.indices, "values": doubles_json(&v.values)})
            }
            Value::StringArray(v) => json!(v),
            Value::DenseVectorArray(v) => Json::Array(v.iter().map(|x| doubles_json(x)).collect()),
        }
    }
}

fn numbers(json: &Json) -> Option<Vec<f64>> {
    json.as_array()?.iter().map(number).collect()
}

/// A JSON number, or null (NaN), or one of the strings Jackson writes for non-finite doubles
/// (`"NaN"`, `"Infinity"`, `"-Infinity"`).
fn number(json: &Json) -> Option<f64> {
    match json {
        Json::Null => Some(f64::NAN),
        Json::String(s) => match s.as_str() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        x => x.as_f64(),
    }
}

/// A double's JSON form: NaN as null, infinities as Jackson's strings.
fn double_json(v: f64) -> Json {
    if v.is_nan() {
        Json::Null
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

fn doubles_json(v: &[f64]) -> Json {
    Json::Array(v.iter().map(|x| double_json(*x)).collect())
}

fn sparse(json: &Json) -> Option<Result<SparseVector, String>> {
    let size = usize::try_from(json.get("size")?.as_u64()?).unwrap_or(usize::MAX);
    let indices = json
        .get("indices")?
        .as_array()?
        .iter()
        .map(|i| i.as_u64().map(|i| i as usize))
        .collect::<Option<Vec<_>>>()?;
    let values = numbers(json.get("values")?)?;
    Some(SparseVector::new(size, indices, values))
}

/// A JSON value shortened for error messages.
pub(crate) fn short(json: &Json) -> String {
    let text = json.to_string();
    if text.len() > 60 {
        let end = (0..=60)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &text[..end])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_doubles_survive_json_as_jacksons_strings() {
        let v = Value::DenseVector(vec![f64::NEG_INFINITY, 1.5, f64::INFINITY]);
        let json = v.to_json();
        assert_eq!(json, json!(["-Infinity", 1.5, "Infinity"]));
        assert_eq!(Value::from_json(DataType::DenseVector, &json).unwrap(), v);
        let nan = Value::from_json(DataType::Double, &Value::Double(f64::NAN).to_json()).unwrap();
        assert!(matches!(nan, Value::Double(x) if x.is_nan()));
    }

    /// A sparse vector's size comes from the data: a row cannot make a stage allocate a dense
    /// copy beyond Flink's bound (`{"size": 1e17}` aborted the job in `MaxAbsScaler`).
    #[test]
    fn a_sparse_vector_has_a_bounded_size() {
        let row = |size: u64| json!({"size": size, "indices": [0], "values": [1.0]});
        let read = |size| Value::from_json(DataType::SparseVector, &row(size));
        assert!(read(SparseVector::MAX_SIZE as u64).is_ok());
        let e = read(100_000_000_000_000_000).unwrap_err();
        assert!(e.contains("size is at most 2147483647"), "{e}");
        assert!(read(u64::MAX).is_err());
    }

    /// Model data and tables go through JSON text (saved models, JSON Lines): every double
    /// must come back bit for bit (serde_json's `float_roundtrip`; without it, parsing may
    /// be one unit in the last place off, and a loaded model scores differently).
    #[test]
    fn doubles_survive_json_text_bit_for_bit() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state >> 2) * if state & 1 == 0 { 1.0 } else { -1.0 };
            if !x.is_finite() {
                continue;
            }
            let text = serde_json::to_string(&Value::Double(x).to_json()).unwrap();
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            match Value::from_json(DataType::Double, &back).unwrap() {
                Value::Double(y) => assert_eq!(y.to_bits(), x.to_bits(), "{text}"),
                other => panic!("{other:?}"),
            }
        }
        let x = 0.8646604942710828f64;
        let back: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
        assert_eq!(back.to_bits(), x.to_bits());
    }
}
