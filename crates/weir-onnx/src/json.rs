//! Tensors and values as JSON, the way `weir predict` and `weir serve` read and write them:
//! nested arrays (a scalar is a bare value), or `{"shape": [...], "data": [...]}` with the
//! values flat (for empty dimensions). Floats that JSON cannot hold are the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"` (as TensorFlow Serving writes them); maps are objects.

use half::{bf16, f16};
use serde_json::{Map, Number, Value as Json};

use crate::tensor::{shape_text, ElementType, Tensor, TensorData, Value};

/// The most dimensions a JSON tensor may have.
const MAX_RANK: usize = 32;

/// Reads a tensor of element type `ty` from JSON: nested arrays (rectangular) or
/// `{"shape": [..], "data": [..]}`. The error says where it went wrong.
///
/// ```
/// use weir_onnx::{tensor_from_json, ElementType, TensorData};
/// let t = tensor_from_json(&serde_json::json!([[1, 2], [3, 4]]), ElementType::I32).unwrap();
/// assert_eq!(t.shape, vec![2, 2]);
/// assert_eq!(t.data, TensorData::I32(vec![1, 2, 3, 4]));
/// let e = tensor_from_json(&serde_json::json!([[1, 2], [3]]), ElementType::I32).unwrap_err();
/// assert_eq!(e, "not rectangular: [1] has 1 values where [0] has 2");
/// ```
pub fn tensor_from_json(json: &Json, ty: ElementType) -> Result<Tensor, String> {
    if let Json::Object(fields) = json {
        return shaped_tensor_from_json(fields, ty);
    }
    let mut shape = Vec::new();
    let mut probe = json;
    while let Json::Array(items) = probe {
        if shape.len() == MAX_RANK {
            return Err(format!("more than {MAX_RANK} dimensions"));
        }
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut data = TensorData::with_capacity(ty, 0);
    let mut at = Vec::with_capacity(shape.len());
    flatten(json, &shape, &mut at, &mut data)?;
    Ok(Tensor { shape, data })
}

/// `{"shape": [..], "data": [flat values]}`.
fn shaped_tensor_from_json(fields: &Map<String, Json>, ty: ElementType) -> Result<Tensor, String> {
    let shape = match fields.get("shape") {
        Some(Json::Array(dims)) if dims.len() <= MAX_RANK => dims
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| "`shape` must be non-negative integers".to_string())?,
        _ => return Err("an object tensor needs `shape`: an array of dimensions".into()),
    };
    let values = match fields.get("data") {
        Some(Json::Array(values)) => values.as_slice(),
        Some(scalar) => std::slice::from_ref(scalar),
        None => return Err("an object tensor needs `data`: its values, flat".into()),
    };
    let mut data = TensorData::with_capacity(ty, values.len());
    for (i, v) in values.iter().enumerate() {
        push_element(v, &mut data).map_err(|e| format!("data[{i}]: {e}"))?;
    }
    Tensor::new(shape, data)
}

/// Appends the elements of nested arrays `json` (shape `shape`, now at index `at`).
fn flatten(
    json: &Json,
    shape: &[usize],
    at: &mut Vec<usize>,
    data: &mut TensorData,
) -> Result<(), String> {
    let depth = at.len();
    if depth == shape.len() {
        return push_element(json, data).map_err(|e| {
            if at.is_empty() {
                e
            } else {
                format!("{}: {e}", shape_text(at))
            }
        });
    }
    let Json::Array(items) = json else {
        return Err(format!(
            "not rectangular: {} is a value where an array of {} was expected",
            shape_text(at),
            shape[depth]
        ));
    };
    if items.len() != shape[depth] {
        let mut first = at.clone();
        first.iter_mut().for_each(|i| *i = 0);
        return Err(format!(
            "not rectangular: {} has {} values where {} has {}",
            shape_text(at),
            items.len(),
            shape_text(&first),
            shape[depth]
        ));
    }
    for (i, item) in items.iter().enumerate() {
        at.push(i);
        flatten(item, shape, at, data)?;
        at.pop();
    }
    Ok(())
}

/// A float from a number or one of the strings for the values JSON lacks.
fn float(json: &Json) -> Result<f64, String> {
    match json {
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Json::String(s) => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(format!("expected a number, got the string {s:?}")),
        },
        other => Err(format!("expected a number, got {other}")),
    }
}

/// An integer of type `T` from a JSON integer in range.
fn integer<T: TryFrom<i64> + TryFrom<u64>>(json: &Json, ty: &str) -> Result<T, String> {
    let out_of_range = || format!("{json} is not a {ty}");
    match json {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                T::try_from(i).map_err(|_| out_of_range())
            } else if let Some(u) = n.as_u64() {
                T::try_from(u).map_err(|_| out_of_range())
            } else {
                Err(out_of_range())
            }
        }
        Json::Bool(b) => T::try_from(i64::from(*b)).map_err(|_| out_of_range()),
        other => Err(format!("expected an integer ({ty}), got {other}")),
    }
}

fn push_element(json: &Json, data: &mut TensorData) -> Result<(), String> {
    match data {
        TensorData::F32(v) => v.push(float(json)? as f32),
        TensorData::F64(v) => v.push(float(json)?),
        TensorData::F16(v) => v.push(f16::from_f64(float(json)?)),
        TensorData::BF16(v) => v.push(bf16::from_f64(float(json)?)),
        TensorData::I8(v) => v.push(integer(json, "i8")?),
        TensorData::I16(v) => v.push(integer(json, "i16")?),
        TensorData::I32(v) => v.push(integer(json, "i32")?),
        TensorData::I64(v) => v.push(integer(json, "i64")?),
        TensorData::U8(v) => v.push(integer(json, "u8")?),
        TensorData::U16(v) => v.push(integer(json, "u16")?),
        TensorData::U32(v) => v.push(integer(json, "u32")?),
        TensorData::U64(v) => v.push(integer(json, "u64")?),
        TensorData::Bool(v) => v.push(match json {
            Json::Bool(b) => *b,
            Json::Number(n) if n.as_u64() == Some(0) => false,
            Json::Number(n) if n.as_u64() == Some(1) => true,
            other => return Err(format!("expected a bool, got {other}")),
        }),
        TensorData::String(v) => match json {
            Json::String(s) => v.push(s.clone()),
            other => return Err(format!("expected a string, got {other}")),
        },
    }
    Ok(())
}

/// A float as JSON: a number, or `"NaN"` / `"Infinity"` / `"-Infinity"`.
fn float_json(x: f64) -> Json {
    match Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// The JSON of value `i` of `data`. An f32 prints as its shortest f32 form (0.1, not
/// 0.10000000149011612).
fn element_json(data: &TensorData, i: usize) -> Json {
    fn f32_json(x: f32) -> Json {
        if x.is_finite() {
            // The shortest decimal that reads back as the same f32.
            x.to_string()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or(Json::Null, Json::Number)
        } else {
            float_json(f64::from(x))
        }
    }
    match data {
        TensorData::F32(v) => f32_json(v[i]),
        TensorData::F64(v) => float_json(v[i]),
        TensorData::F16(v) => f32_json(v[i].to_f32()),
        TensorData::BF16(v) => f32_json(v[i].to_f32()),
        TensorData::I8(v) => Json::from(v[i]),
        TensorData::I16(v) => Json::from(v[i]),
        TensorData::I32(v) => Json::from(v[i]),
        TensorData::I64(v) => Json::from(v[i]),
        TensorData::U8(v) => Json::from(v[i]),
        TensorData::U16(v) => Json::from(v[i]),
        TensorData::U32(v) => Json::from(v[i]),
        TensorData::U64(v) => Json::from(v[i]),
        TensorData::Bool(v) => Json::from(v[i]),
        TensorData::String(v) => Json::from(v[i].as_str()),
    }
}

/// A tensor as nested arrays (a scalar as a bare value). An empty dimension cannot show the
/// dimensions after it: use [`tensor_to_shaped_json`] where they matter.
pub fn tensor_to_json(tensor: &Tensor) -> Json {
    fn nest(data: &TensorData, shape: &[usize], offset: usize) -> Json {
        match shape.split_first() {
            None => element_json(data, offset),
            Some((&n, rest)) => {
                let stride: usize = rest.iter().product();
                Json::Array(
                    (0..n)
                        .map(|i| nest(data, rest, offset + i * stride))
                        .collect(),
                )
            }
        }
    }
    nest(&tensor.data, &tensor.shape, 0)
}

/// A tensor as `{"shape": [..], "datatype": "f32", "data": [flat]}`.
pub fn tensor_to_shaped_json(tensor: &Tensor) -> Json {
    let data: Vec<Json> = (0..tensor.data.len())
        .map(|i| element_json(&tensor.data, i))
        .collect();
    serde_json::json!({
        "shape": tensor.shape,
        "datatype": tensor.element_type().name(),
        "data": data,
    })
}

/// Any value as JSON: tensors as nested arrays, sequences as arrays, maps as objects (keys
/// as strings), an absent optional as `null`.
///
/// ```
/// use weir_onnx::{value_to_json, MapValue, TensorData, Value};
/// let zipmap = Value::Map(MapValue {
///     keys: TensorData::String(vec!["a".into(), "b".into()]),
///     values: TensorData::F32(vec![0.25, 0.75]),
/// });
/// assert_eq!(value_to_json(&zipmap), serde_json::json!({"a": 0.25, "b": 0.75}));
/// ```
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Tensor(t) => tensor_to_json(t),
        Value::Sequence(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(map) => {
            let mut object = Map::new();
            for i in 0..map.keys.len().min(map.values.len()) {
                let key = match element_json(&map.keys, i) {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                object.insert(key, element_json(&map.values, i));
            }
            Json::Object(object)
        }
        Value::Absent => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(json: Json, ty: ElementType) -> Result<Tensor, String> {
        tensor_from_json(&json, ty)
    }

    #[test]
    fn nested_arrays_give_the_shape() {
        let t = read(json!([[[1.5], [2]], [[3], [4]]]), ElementType::F32).unwrap();
        assert_eq!(t.shape, vec![2, 2, 1]);
        assert_eq!(t.data, TensorData::F32(vec![1.5, 2.0, 3.0, 4.0]));
        let scalar = read(json!(true), ElementType::Bool).unwrap();
        assert_eq!((scalar.shape.len(), scalar.data.len()), (0, 1));
        let empty = read(json!([]), ElementType::I64).unwrap();
        assert_eq!(empty.shape, vec![0]);
    }

    #[test]
    fn bad_json_tensors_say_where() {
        assert_eq!(
            read(json!([[1, 2], 3]), ElementType::I64).unwrap_err(),
            "not rectangular: [1] is a value where an array of 2 was expected"
        );
        assert_eq!(
            read(json!([[1, 2], [3, "x"]]), ElementType::I64).unwrap_err(),
            "[1, 1]: expected an integer (i64), got \"x\""
        );
        assert_eq!(
            read(json!([300]), ElementType::U8).unwrap_err(),
            "[0]: 300 is not a u8"
        );
        assert_eq!(
            read(json!([1.5]), ElementType::I32).unwrap_err(),
            "[0]: 1.5 is not a i32"
        );
        let deep = (0..40).fold(json!(1), |j, _| json!([j]));
        assert!(read(deep, ElementType::I8)
            .unwrap_err()
            .contains("dimensions"));
    }

    #[test]
    fn shaped_objects_carry_empty_dimensions() {
        let t = read(json!({"shape": [0, 3], "data": []}), ElementType::F32).unwrap();
        assert_eq!(t.shape, vec![0, 3]);
        assert!(read(json!({"shape": [2], "data": [1]}), ElementType::F32)
            .unwrap_err()
            .contains("needs 2 values, got 1"));
        let shaped = tensor_to_shaped_json(&t);
        assert_eq!(read(shaped, ElementType::F32).unwrap(), t);
        // No values for a trillion rows: refused here, before a dead letter writes them all
        // as nested arrays or a server splits them into rows.
        let huge = json!({"shape": [1_000_000_000_000u64, 0], "data": []});
        assert!(read(huge, ElementType::F32)
            .unwrap_err()
            .contains("spans more than 65536 positions before its first 0"));
    }

    #[test]
    fn floats_json_cannot_hold_are_strings_both_ways() {
        let t = read(
            json!(["NaN", "Infinity", "-Infinity", 0.1]),
            ElementType::F32,
        )
        .unwrap();
        let back = tensor_to_json(&t);
        assert_eq!(back, json!(["NaN", "Infinity", "-Infinity", 0.1]));
        let half = read(json!([0.5, "NaN"]), ElementType::F16).unwrap();
        assert_eq!(tensor_to_json(&half), json!([0.5, "NaN"]));
    }

    #[test]
    fn every_type_round_trips() {
        let cases = [
            (ElementType::U64, json!([[u64::MAX, 0]])),
            (ElementType::I8, json!([-128, 127])),
            (ElementType::Bool, json!([[true], [false]])),
            (ElementType::String, json!(["a", "ü"])),
            (ElementType::BF16, json!([1.0, -2.0])),
            (ElementType::F64, json!([0.1, 1e300])),
        ];
        for (ty, j) in cases {
            let t = read(j.clone(), ty).unwrap();
            assert_eq!(tensor_to_json(&t), j, "{ty}");
        }
    }
}
