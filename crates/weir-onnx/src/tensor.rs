//! Owned tensors and values of every element type ONNX Runtime runs: what records carry into
//! the predict operator's generic forms (`weir predict`, `weir serve`) and what outputs become
//! when a sink needs them owned (serde-friendly).

use std::fmt;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// Calls `$m!` with the list of primitive element types: `(Variant, rust type, name, accessor)`.
/// Strings are not primitive (ONNX Runtime copies them) and are handled beside.
macro_rules! primitive_types {
    ($m:ident) => {
        $m! {
            (F32, f32, "f32", f32),
            (F64, f64, "f64", f64),
            (F16, half::f16, "f16", f16),
            (BF16, half::bf16, "bf16", bf16),
            (I8, i8, "i8", i8),
            (I16, i16, "i16", i16),
            (I32, i32, "i32", i32),
            (I64, i64, "i64", i64),
            (U8, u8, "u8", u8),
            (U16, u16, "u16", u16),
            (U32, u32, "u32", u32),
            (U64, u64, "u64", u64),
            (Bool, bool, "bool", bool),
        }
    };
}
pub(crate) use primitive_types;

macro_rules! define_element_type {
    ($(($variant:ident, $ty:ty, $name:literal, $acc:ident)),* $(,)?) => {
        /// Element type of a tensor: every type ONNX Runtime's CPU kernels take, except
        /// complex numbers and sub-byte types.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ElementType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
            /// UTF-8 strings.
            String,
        }

        impl ElementType {
            /// Every element type, in declaration order.
            pub const ALL: &'static [ElementType] = &[$(ElementType::$variant,)* ElementType::String];

            /// The short name (`f32`, `i64`, `bool`, `string`), as `weir inspect` prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $(ElementType::$variant => $name,)*
                    ElementType::String => "string",
                }
            }

            /// The type named `name` (`f32`, …; ONNX Runtime's `String` too).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(ElementType::$variant),)*
                    "string" | "String" => Some(ElementType::String),
                    _ => None,
                }
            }

            /// Whether values can be NaN or infinite (the float types).
            pub fn is_float(self) -> bool {
                matches!(self, ElementType::F32 | ElementType::F64 | ElementType::F16 | ElementType::BF16)
            }
        }

        /// The values of a tensor, row-major, of one element type.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub enum TensorData {
            $(
                #[doc = concat!("`", $name, "` values.")]
                $variant(Vec<$ty>),
            )*
            /// Strings.
            String(Vec<String>),
        }

        impl TensorData {
            /// Empty values of type `ty`, with room for `capacity`.
            pub fn with_capacity(ty: ElementType, capacity: usize) -> Self {
                match ty {
                    $(ElementType::$variant => TensorData::$variant(Vec::with_capacity(capacity)),)*
                    ElementType::String => TensorData::String(Vec::with_capacity(capacity)),
                }
            }

            /// The element type.
            pub fn element_type(&self) -> ElementType {
                match self {
                    $(TensorData::$variant(_) => ElementType::$variant,)*
                    TensorData::String(_) => ElementType::String,
                }
            }

            /// Number of values.
            pub fn len(&self) -> usize {
                match self {
                    $(TensorData::$variant(v) => v.len(),)*
                    TensorData::String(v) => v.len(),
                }
            }

            /// Whether there are no values.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Keeps the first `len` values.
            pub fn truncate(&mut self, len: usize) {
                match self {
                    $(TensorData::$variant(v) => v.truncate(len),)*
                    TensorData::String(v) => v.truncate(len),
                }
            }

            /// Appends `other`'s values; false (and nothing appended) if the types differ.
            pub fn extend_from(&mut self, other: &TensorData) -> bool {
                match (self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => a.extend_from_slice(b),)*
                    (TensorData::String(a), TensorData::String(b)) => a.extend_from_slice(b),
                    _ => return false,
                }
                true
            }

            /// Appends values `range` of `other` (of the same type; false otherwise).
            pub fn extend_from_range(&mut self, other: &TensorData, range: std::ops::Range<usize>) -> bool {
                match (self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => a.extend_from_slice(&b[range]),)*
                    (TensorData::String(a), TensorData::String(b)) => a.extend_from_slice(&b[range]),
                    _ => return false,
                }
                true
            }

            /// Values `range` as a new tensor's values.
            pub fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
                match self {
                    $(TensorData::$variant(v) => TensorData::$variant(v[range].to_vec()),)*
                    TensorData::String(v) => TensorData::String(v[range].to_vec()),
                }
            }

            /// Appends the value at `index` again, `times` times (padding a batch).
            pub(crate) fn repeat(&mut self, range: std::ops::Range<usize>, times: usize) {
                match self {
                    $(TensorData::$variant(v) => for _ in 0..times { v.extend_from_within(range.clone()) },)*
                    TensorData::String(v) => for _ in 0..times { v.extend_from_within(range.clone()) },
                }
            }

            /// The first NaN or infinite value from position `from` on: its offset from
            /// `from` and how it prints. Always `None` for non-float types.
            pub(crate) fn first_non_finite(&self, from: usize) -> Option<(usize, String)> {
                fn find<V: Copy + fmt::Display>(v: &[V], finite: impl Fn(V) -> bool) -> Option<(usize, String)> {
                    // A branch-free pass first (it vectorizes); the position only for a bad row.
                    if v.iter().fold(true, |all, x| all & finite(*x)) {
                        return None;
                    }
                    v.iter().position(|x| !finite(*x)).map(|i| (i, v[i].to_string()))
                }
                match self {
                    TensorData::F32(v) => find(&v[from..], f32::is_finite),
                    TensorData::F64(v) => find(&v[from..], f64::is_finite),
                    TensorData::F16(v) => find(&v[from..], f16::is_finite),
                    TensorData::BF16(v) => find(&v[from..], bf16::is_finite),
                    _ => None,
                }
            }
        }
    };
}
primitive_types!(define_element_type);

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor: a shape and its values, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    /// Dimensions (empty for a scalar).
    pub shape: Vec<usize>,
    /// `shape`'s product of values.
    pub data: TensorData,
}

impl Tensor {
    /// A tensor of `shape` holding `data`, if the counts agree.
    ///
    /// ```
    /// use weir_onnx::{Tensor, TensorData};
    /// let t = Tensor::new(vec![2, 2], TensorData::I32(vec![1, 2, 3, 4])).unwrap();
    /// assert_eq!(t.element_type().name(), "i32");
    /// assert!(Tensor::new(vec![3], TensorData::F32(vec![1.0])).is_err());
    /// ```
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Self, String> {
        let count = element_count(&shape);
        if count != Some(data.len()) {
            return Err(format!(
                "a tensor of shape {} needs {} values, got {}",
                shape_text(&shape),
                count.map_or("too many".to_string(), |c| c.to_string()),
                data.len()
            ));
        }
        if count == Some(0) && !empty_extent_ok(&shape) {
            return Err(format!(
                "an empty tensor of shape {} spans more than {MAX_EMPTY_EXTENT} positions \
                 before its first 0",
                shape_text(&shape)
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// A float32 tensor.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Result<Self, String> {
        Tensor::new(shape, TensorData::F32(values))
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }
}

/// The most positions the dimensions before the first 0 of a tensor with no values may
/// span: such a shape costs nothing to send (`[1000000000000, 0]` with no data), but code
/// that walks those dimensions (splitting it into rows, writing it as nested arrays) would
/// do so that often. The dimensions after the 0 are never walked (`[0, 3, 224, 224]`, an
/// empty batch of images, spans nothing).
pub const MAX_EMPTY_EXTENT: usize = 1 << 16;

/// Whether the product of `shape`'s dimensions before its first 0 is at most
/// [`MAX_EMPTY_EXTENT`].
fn empty_extent_ok(shape: &[usize]) -> bool {
    shape
        .iter()
        .take_while(|&&d| d != 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_some_and(|extent| extent <= MAX_EMPTY_EXTENT)
}

/// `shape`'s number of values, unless it overflows.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// `[2, 3]`.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// A map output (scikit-learn's ZipMap: class → probability): keys and values as two
/// columns of the same length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapValue {
    /// The keys (`i64` or strings in practice; any integer type ONNX allows).
    pub keys: TensorData,
    /// The values, one per key.
    pub values: TensorData,
}

impl MapValue {
    /// The value of string key `key` as f64 (for numeric values).
    ///
    /// ```
    /// use weir_onnx::{MapValue, TensorData};
    /// let m = MapValue {
    ///     keys: TensorData::String(vec!["cat".into(), "dog".into()]),
    ///     values: TensorData::F32(vec![0.25, 0.75]),
    /// };
    /// assert_eq!(m.get_str("dog"), Some(0.75));
    /// ```
    pub fn get_str(&self, key: &str) -> Option<f64> {
        let TensorData::String(keys) = &self.keys else {
            return None;
        };
        keys.iter()
            .position(|k| k == key)
            .and_then(|i| numeric_at(&self.values, i))
    }

    /// The value of integer key `key` as f64 (for numeric values).
    pub fn get_i64(&self, key: i64) -> Option<f64> {
        let TensorData::I64(keys) = &self.keys else {
            return None;
        };
        keys.iter()
            .position(|k| *k == key)
            .and_then(|i| numeric_at(&self.values, i))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Value `i` of a numeric column as f64.
fn numeric_at(values: &TensorData, i: usize) -> Option<f64> {
    Some(match values {
        TensorData::F32(v) => f64::from(*v.get(i)?),
        TensorData::F64(v) => *v.get(i)?,
        TensorData::F16(v) => f64::from(*v.get(i)?),
        TensorData::BF16(v) => f64::from(*v.get(i)?),
        TensorData::I64(v) => *v.get(i)? as f64,
        TensorData::I32(v) => f64::from(*v.get(i)?),
        _ => return None,
    })
}

/// Any value a model takes or returns: a tensor, a sequence, a map, or an absent optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A tensor.
    Tensor(Tensor),
    /// A sequence of tensors or maps.
    Sequence(Vec<Value>),
    /// A map.
    Map(MapValue),
    /// An optional value that is not there.
    Absent,
}

impl Value {
    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&MapValue> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_types_round_trip_their_names() {
        for ty in ElementType::ALL {
            assert_eq!(ElementType::from_name(ty.name()), Some(*ty));
            assert_eq!(TensorData::with_capacity(*ty, 0).element_type(), *ty);
        }
        assert_eq!(ElementType::from_name("String"), Some(ElementType::String));
        assert_eq!(ElementType::from_name("c64"), None);
    }

    #[test]
    fn tensor_data_appends_only_the_same_type() {
        let mut a = TensorData::I32(vec![1]);
        assert!(a.extend_from(&TensorData::I32(vec![2, 3])));
        assert!(!a.extend_from(&TensorData::I64(vec![4])));
        assert_eq!(a, TensorData::I32(vec![1, 2, 3]));
        a.repeat(2..3, 2);
        assert_eq!(a, TensorData::I32(vec![1, 2, 3, 3, 3]));
        assert_eq!(a.slice(1..3), TensorData::I32(vec![2, 3]));
    }

    #[test]
    fn non_finite_values_are_found_in_every_float_type() {
        let nan16 = TensorData::F16(vec![f16::from_f32(1.0), f16::NAN]);
        assert_eq!(nan16.first_non_finite(0).map(|(i, _)| i), Some(1));
        let inf = TensorData::BF16(vec![bf16::INFINITY]);
        assert!(inf.first_non_finite(0).is_some());
        assert!(TensorData::F64(vec![f64::NAN, 1.0])
            .first_non_finite(1)
            .is_none());
        assert!(TensorData::I64(vec![1]).first_non_finite(0).is_none());
    }

    #[test]
    fn a_tensor_needs_as_many_values_as_its_shape() {
        assert!(Tensor::new(vec![], TensorData::Bool(vec![true])).is_ok());
        assert!(Tensor::new(vec![0, 3], TensorData::Bool(vec![])).is_ok());
        let e = Tensor::new(vec![2, 3], TensorData::U8(vec![0; 5])).unwrap_err();
        assert_eq!(e, "a tensor of shape [2, 3] needs 6 values, got 5");
        assert!(Tensor::new(vec![usize::MAX, 2], TensorData::U8(vec![])).is_err());
    }

    #[test]
    fn an_empty_tensor_spans_a_bounded_number_of_positions() {
        let most = MAX_EMPTY_EXTENT;
        assert!(Tensor::new(vec![most, 0], TensorData::F32(vec![])).is_ok());
        assert!(Tensor::new(vec![256, 256, 0, 9], TensorData::F32(vec![])).is_ok());
        // An empty batch: nothing before the 0.
        assert!(Tensor::new(vec![0, 3, 224, 224], TensorData::F32(vec![])).is_ok());
        assert!(Tensor::new(vec![0, usize::MAX], TensorData::F32(vec![])).is_ok());
        let e = Tensor::new(vec![1_000_000_000_000, 0], TensorData::F32(vec![])).unwrap_err();
        assert_eq!(
            e,
            "an empty tensor of shape [1000000000000, 0] spans more than 65536 positions before \
             its first 0"
        );
        assert!(Tensor::new(vec![most + 1, 0], TensorData::F32(vec![])).is_err());
        assert!(Tensor::new(vec![256, 257, 0], TensorData::F32(vec![])).is_err());
        assert!(Tensor::new(vec![usize::MAX, 0, usize::MAX], TensorData::I64(vec![])).is_err());
    }
}
