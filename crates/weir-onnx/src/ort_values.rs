//! Between Weir's tensors and values and ONNX Runtime's: input tensors viewed in place (strings
//! copied, as the C API requires), outputs read in place or copied into owned [`Value`]s.

use ort::session::SessionInputValue;
use ort::value::{DynValue, Tensor as OrtTensor, TensorElementType, TensorRef, ValueType};

use crate::input_rows::RowShape;
use crate::output_row::OutputValues;
use crate::tensor::{primitive_types, ElementType, MapValue, Tensor, TensorData, Value};

/// Weir's name for an ONNX Runtime element type, if Weir feeds and reads it.
pub(crate) fn element_type(ty: TensorElementType) -> Option<ElementType> {
    use TensorElementType as T;
    Some(match ty {
        T::Float32 => ElementType::F32,
        T::Float64 => ElementType::F64,
        T::Float16 => ElementType::F16,
        T::Bfloat16 => ElementType::BF16,
        T::Int8 => ElementType::I8,
        T::Int16 => ElementType::I16,
        T::Int32 => ElementType::I32,
        T::Int64 => ElementType::I64,
        T::Uint8 => ElementType::U8,
        T::Uint16 => ElementType::U16,
        T::Uint32 => ElementType::U32,
        T::Uint64 => ElementType::U64,
        T::Bool => ElementType::Bool,
        T::String => ElementType::String,
        _ => return None,
    })
}

macro_rules! input_value_fn {
    ($(($variant:ident, $ty:ty, $name:literal, $acc:ident)),* $(,)?) => {
        /// `data` as an input of `shape`: a view of the values (strings are copied).
        pub(crate) fn input_value(data: &TensorData, shape: Vec<usize>) -> ort::Result<SessionInputValue<'_>> {
            Ok(match data {
                $(TensorData::$variant(v) => TensorRef::from_array_view((shape, &v[..]))?.into(),)*
                TensorData::String(v) => OrtTensor::from_string_array((shape, &v[..]))?.into(),
            })
        }

        /// A tensor output's shape and values, read in place (strings copied).
        fn tensor_values(value: &DynValue, ty: ElementType) -> ort::Result<(RowShape, OutputValues<'_>)> {
            Ok(match ty {
                $(ElementType::$variant => {
                    let (shape, v) = value.try_extract_tensor::<$ty>()?;
                    (dims(shape), OutputValues::$variant(v))
                })*
                ElementType::String => {
                    let (shape, v) = value.try_extract_strings()?;
                    (dims(shape), OutputValues::String(v))
                }
            })
        }

        /// A tensor output copied into an owned tensor.
        fn owned_tensor(value: &DynValue, ty: ElementType) -> ort::Result<Tensor> {
            Ok(match ty {
                $(ElementType::$variant => {
                    let (shape, v) = value.try_extract_tensor::<$ty>()?;
                    Tensor { shape: dims(shape).to_vec(), data: TensorData::$variant(v.to_vec()) }
                })*
                ElementType::String => {
                    let (shape, v) = value.try_extract_strings()?;
                    Tensor { shape: dims(shape).to_vec(), data: TensorData::String(v) }
                }
            })
        }
    };
}
primitive_types!(input_value_fn);

/// A run's dimensions (never negative) as sizes (inline up to rank 4: no allocation per run).
fn dims(shape: &[i64]) -> RowShape {
    shape.iter().map(|&d| d.max(0) as usize).collect()
}

/// What an output is: a tensor (read in place) or a sequence (copied, item by item).
pub(crate) enum Output<'a> {
    /// A tensor's shape and values.
    Tensor(RowShape, OutputValues<'a>),
    /// A sequence's items.
    Sequence(Vec<Value>),
    /// A map.
    Map(MapValue),
}

/// Reads output `value` of a run.
pub(crate) fn read_output(value: &DynValue) -> Result<Output<'_>, String> {
    let text = |e: ort::Error| e.to_string();
    match value.dtype() {
        ValueType::Tensor { ty, .. } => {
            let ty = supported(*ty)?;
            let (shape, values) = tensor_values(value, ty).map_err(text)?;
            Ok(Output::Tensor(shape, values))
        }
        ValueType::Sequence(_) => sequence_items(value).map(Output::Sequence),
        ValueType::Map { .. } => owned_map(value).map(Output::Map),
        other => Err(format!("outputs of type {other} are not supported")),
    }
}

fn supported(ty: TensorElementType) -> Result<ElementType, String> {
    element_type(ty).ok_or_else(|| format!("tensors of element type {ty} are not supported"))
}

/// Any value copied into an owned [`Value`].
pub(crate) fn owned_value(value: &DynValue) -> Result<Value, String> {
    match value.dtype() {
        ValueType::Tensor { ty, .. } => {
            let ty = supported(*ty)?;
            owned_tensor(value, ty)
                .map(Value::Tensor)
                .map_err(|e| e.to_string())
        }
        ValueType::Sequence(_) => sequence_items(value).map(Value::Sequence),
        ValueType::Map { .. } => owned_map(value).map(Value::Map),
        other => Err(format!("values of type {other} are not supported")),
    }
}

fn sequence_items(value: &DynValue) -> Result<Vec<Value>, String> {
    let items = value
        .try_extract_sequence::<ort::value::DynValueTypeMarker>()
        .map_err(|e| e.to_string())?;
    items.iter().map(owned_value).collect()
}

/// A map, for the key and value types ONNX models return (ZipMap: `i64` or string keys,
/// `f32` values).
fn owned_map(value: &DynValue) -> Result<MapValue, String> {
    let ValueType::Map { key, value: v } = value.dtype() else {
        return Err("not a map".into());
    };
    let (key, v) = (supported(*key)?, supported(*v)?);
    macro_rules! read {
        ($k:ty, $kv:ident, $v:ty, $vv:ident) => {{
            let pairs = value
                .try_extract_key_values::<$k, $v>()
                .map_err(|e| e.to_string())?;
            let (keys, values): (Vec<$k>, Vec<$v>) = pairs.into_iter().unzip();
            MapValue {
                keys: TensorData::$kv(keys),
                values: TensorData::$vv(values),
            }
        }};
    }
    let mut map = match (key, v) {
        (ElementType::String, ElementType::F32) => read!(String, String, f32, F32),
        (ElementType::String, ElementType::F64) => read!(String, String, f64, F64),
        (ElementType::String, ElementType::I64) => read!(String, String, i64, I64),
        (ElementType::I64, ElementType::F32) => read!(i64, I64, f32, F32),
        (ElementType::I64, ElementType::F64) => read!(i64, I64, f64, F64),
        (ElementType::I64, ElementType::I64) => read!(i64, I64, i64, I64),
        (k, v) => return Err(format!("maps of {k} to {v} are not supported")),
    };
    sort_map(&mut map);
    Ok(map)
}

/// Orders a map's entries by key, so that the same map always reads (and prints) the same.
fn sort_map(map: &mut MapValue) {
    fn by<K: Clone, V: Clone>(
        keys: &mut [K],
        values: &mut [V],
        cmp: impl Fn(&K, &K) -> std::cmp::Ordering,
    ) {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|&a, &b| cmp(&keys[a], &keys[b]));
        let (k, v): (Vec<K>, Vec<V>) = order
            .iter()
            .map(|&i| (keys[i].clone(), values[i].clone()))
            .unzip();
        keys.clone_from_slice(&k);
        values.clone_from_slice(&v);
    }
    match (&mut map.keys, &mut map.values) {
        (TensorData::String(k), TensorData::F32(v)) => by(k, v, |a, b| a.cmp(b)),
        (TensorData::String(k), TensorData::F64(v)) => by(k, v, |a, b| a.cmp(b)),
        (TensorData::String(k), TensorData::I64(v)) => by(k, v, |a, b| a.cmp(b)),
        (TensorData::I64(k), TensorData::F32(v)) => by(k, v, |a, b| a.cmp(b)),
        (TensorData::I64(k), TensorData::F64(v)) => by(k, v, |a, b| a.cmp(b)),
        (TensorData::I64(k), TensorData::I64(v)) => by(k, v, |a, b| a.cmp(b)),
        _ => {}
    }
}
