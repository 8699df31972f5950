//! The input side of a batch: one column per configured model input, filled record by record
//! by the operator's features function, then checked and stacked along the batch axis.

use smallvec::SmallVec;

use crate::tensor::{primitive_types, ElementType, Tensor, TensorData};

/// A record's item shape (the model's shape without the batch axis).
pub(crate) type RowShape = SmallVec<[usize; 4]>;

/// The input rows of a batch being filled: one column per model input, in the order of the
/// configured inputs. For each record the features function appends the record's item to
/// every column: the values of the model's shape without the batch axis, row-major (for a
/// `[N, 1, 8, 8]` image input, 64 values). Where the model leaves a dimension besides the
/// batch open (`[N, L]` token ids of any length), the record gives its item's shape with
/// [`InputRows::set_shape`], unless it is the only open one (then it follows from the number
/// of values). Records whose items differ in an open dimension go into different runs.
///
/// Asking for a column with the wrong element type is a programming error and panics (the
/// types were checked against the model when it loaded); [`InputRows::push`] is the checked
/// form for values whose type is only known at run time.
#[derive(Debug)]
pub struct InputRows {
    pub(crate) columns: Vec<TensorData>,
    /// The shapes the features function gave for the record being appended.
    pub(crate) shapes: Vec<Option<RowShape>>,
    /// Why the features function rejected the record being appended.
    pub(crate) rejection: Option<String>,
    /// Whether the record being appended set a shape or was rejected (most records do
    /// neither, and then nothing needs resetting or checking).
    pub(crate) touched: bool,
}

macro_rules! column_accessors {
    ($(($variant:ident, $ty:ty, $name:literal, $acc:ident)),* $(,)?) => {
        impl InputRows {
            $(
                #[doc = concat!("The `", $name, "` column of input `input` (its index in the configured inputs).")]
                pub fn $acc(&mut self, input: usize) -> &mut Vec<$ty> {
                    if !matches!(self.columns.get(input), Some(TensorData::$variant(_))) {
                        self.wrong_type(input, $name);
                    }
                    match &mut self.columns[input] {
                        TensorData::$variant(v) => v,
                        _ => unreachable!("checked above"),
                    }
                }
            )*
        }
    };
}
primitive_types!(column_accessors);

impl InputRows {
    pub(crate) fn new(types: impl IntoIterator<Item = ElementType>, capacity: usize) -> Self {
        let columns: Vec<TensorData> = types
            .into_iter()
            .map(|ty| TensorData::with_capacity(ty, capacity))
            .collect();
        InputRows {
            shapes: vec![None; columns.len()],
            columns,
            rejection: None,
            touched: false,
        }
    }

    fn wrong_type(&self, input: usize, wanted: &str) -> ! {
        match self.columns.get(input) {
            None => panic!(
                "input {input} does not exist (the model has {} configured inputs)",
                self.columns.len()
            ),
            Some(c) => panic!("input {input} is {}, not {wanted}", c.element_type()),
        }
    }

    /// The string column of input `input`.
    pub fn string(&mut self, input: usize) -> &mut Vec<String> {
        if !matches!(self.columns.get(input), Some(TensorData::String(_))) {
            self.wrong_type(input, "string");
        }
        match &mut self.columns[input] {
            TensorData::String(v) => v,
            _ => unreachable!("checked above"),
        }
    }

    /// The shape of this record's item of input `input`, without the batch axis (for a
    /// whole-run operator, the full shape). Needed only where the model leaves more than one
    /// dimension besides the batch open.
    pub fn set_shape(&mut self, input: usize, shape: &[usize]) {
        if let Some(s) = self.shapes.get_mut(input) {
            *s = Some(shape.iter().copied().collect());
            self.touched = true;
        }
    }

    /// Appends `tensor` as this record's item of input `input` (values and shape), checking
    /// its element type: a mismatch rejects the record.
    ///
    /// ```no_run
    /// # fn f(rows: &mut weir_onnx::InputRows, t: &weir_onnx::Tensor) {
    /// rows.push(0, t);
    /// # }
    /// ```
    pub fn push(&mut self, input: usize, tensor: &Tensor) {
        let Some(column) = self.columns.get_mut(input) else {
            self.reject(format!("there is no input {input}"));
            return;
        };
        if !column.extend_from(&tensor.data) {
            let wanted = column.element_type();
            self.reject(format!(
                "input {input}: expected {wanted} values, got {}",
                tensor.element_type()
            ));
            return;
        }
        self.set_shape(input, &tensor.shape);
    }

    /// Rejects the record being appended: it becomes a dead letter with `reason`.
    pub fn reject(&mut self, reason: impl Into<String>) {
        self.rejection.get_or_insert_with(|| reason.into());
        self.touched = true;
    }

    pub(crate) fn lengths(&self, into: &mut Vec<usize>) {
        into.clear();
        into.extend(self.columns.iter().map(TensorData::len));
    }

    /// Takes back what was appended after `lengths`.
    pub(crate) fn truncate(&mut self, lengths: &[usize]) {
        for (column, &len) in self.columns.iter_mut().zip(lengths) {
            column.truncate(len);
        }
    }

    /// Forgets the shapes and rejection of the record appended last.
    pub(crate) fn start_row(&mut self) {
        if self.touched {
            self.shapes.iter_mut().for_each(|s| *s = None);
            self.rejection = None;
            self.touched = false;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.columns.iter_mut().for_each(|c| c.truncate(0));
        self.start_row();
    }

    /// Appends the last `width[i]` values of every column `times` more times: padding a
    /// batch up to a model's fixed batch size.
    pub(crate) fn pad(&mut self, widths: &[usize], times: usize) {
        for (column, &width) in self.columns.iter_mut().zip(widths) {
            let len = column.len();
            if width <= len {
                column.repeat(len - width..len, times);
            }
        }
    }
}
