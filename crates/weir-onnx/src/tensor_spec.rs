//! What the predict operator expects of one named model input or output.

use crate::tensor::{primitive_types, ElementType};

/// What a record's float values may be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NanPolicy {
    /// A NaN or infinite value makes the record a dead letter (the default): most models
    /// silently return garbage for them.
    #[default]
    Reject,
    /// NaN and infinite values go to the model, for models that treat NaN as missing (tree
    /// ensembles) or mean it.
    Allow,
}

/// A named input or output of a model, as the operator feeds or reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name in the model.
    pub name: String,
    /// The element type the model must declare for it; `None` takes the model's (inputs are
    /// then fed with [`InputRows::push`](crate::InputRows::push), outputs may also be
    /// sequences and maps, read with [`OutputRow::value`](crate::OutputRow::value)).
    pub ty: Option<ElementType>,
    /// The values per record it must have, if the operator needs a particular number:
    /// `Some(1)` accepts `[N]` and `[N, 1]`. Checked against the model's declared shape when
    /// it loads and, for outputs, against what every run returns. `None`: any number (at
    /// least 1).
    pub width: Option<usize>,
    /// For float inputs: whether NaN and infinite values are fed or make dead letters.
    pub nan: NanPolicy,
}

macro_rules! spec_constructors {
    ($(($variant:ident, $ty:ty, $name:literal, $acc:ident)),* $(,)?) => {
        impl TensorSpec {
            $(
                #[doc = concat!("A `", $name, "` tensor.")]
                pub fn $acc(name: impl Into<String>) -> Self {
                    TensorSpec::new(name, Some(ElementType::$variant))
                }
            )*
        }
    };
}
primitive_types!(spec_constructors);

impl TensorSpec {
    /// A string tensor.
    pub fn string(name: impl Into<String>) -> Self {
        TensorSpec::new(name, Some(ElementType::String))
    }

    /// A tensor of type `ty`.
    pub fn of_type(name: impl Into<String>, ty: ElementType) -> Self {
        TensorSpec::new(name, Some(ty))
    }

    /// Whatever the model declares: a tensor of any element type, or (for outputs) a
    /// sequence or a map.
    ///
    /// ```
    /// use weir_onnx::TensorSpec;
    /// // skl2onnx's ZipMap output: a sequence of maps, one per record.
    /// let probabilities = TensorSpec::any("output_probability");
    /// assert!(probabilities.ty.is_none());
    /// ```
    pub fn any(name: impl Into<String>) -> Self {
        TensorSpec::new(name, None)
    }

    fn new(name: impl Into<String>, ty: Option<ElementType>) -> Self {
        TensorSpec {
            name: name.into(),
            ty,
            width: None,
            nan: NanPolicy::Reject,
        }
    }

    /// The same tensor, required to have exactly `width` values per record.
    ///
    /// ```
    /// use weir_onnx::TensorSpec;
    /// // A class label: one int64 per record, `[N]` or `[N, 1]`.
    /// let label = TensorSpec::i64("label").with_width(1);
    /// assert_eq!(label.width, Some(1));
    /// ```
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = Some(width);
        self
    }

    /// The same input, with NaN and infinite values fed to the model rather than rejected.
    ///
    /// ```
    /// use weir_onnx::{NanPolicy, TensorSpec};
    /// let x = TensorSpec::f32("x").allow_nan();
    /// assert_eq!(x.nan, NanPolicy::Allow);
    /// ```
    pub fn allow_nan(mut self) -> Self {
        self.nan = NanPolicy::Allow;
        self
    }
}
