//! Batches of typed tensors: what the predict operator feeds a model (one column per named
//! input, filled row by row from the records) and reads back (one row of every output per
//! record).

use std::fmt;

/// Element type of a model input or output that Weir feeds or reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    /// `float` (f32).
    F32,
    /// `double` (f64).
    F64,
    /// `int64` (i64).
    I64,
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names ONNX Runtime's `ValueType` prints, as `weir inspect` shows them.
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
            ElementType::I64 => "i64",
        })
    }
}

/// A named input or output of a model, `[N]` or `[N, width]` with `N` the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name in the model.
    pub name: String,
    /// The element type the model declares for it.
    pub ty: ElementType,
    /// The values per row (record) it must have, if the operator needs a particular number:
    /// `Some(1)` accepts `[N]` and `[N, 1]`. Checked against the model's declared shape when
    /// it loads and, for outputs, against what every run returns. `None`: any width (at
    /// least 1).
    pub width: Option<usize>,
}

impl TensorSpec {
    /// A float32 tensor.
    pub fn f32(name: impl Into<String>) -> Self {
        TensorSpec::new(name, ElementType::F32)
    }

    /// A float64 tensor.
    pub fn f64(name: impl Into<String>) -> Self {
        TensorSpec::new(name, ElementType::F64)
    }

    /// An int64 tensor.
    pub fn i64(name: impl Into<String>) -> Self {
        TensorSpec::new(name, ElementType::I64)
    }

    fn new(name: impl Into<String>, ty: ElementType) -> Self {
        TensorSpec {
            name: name.into(),
            ty,
            width: None,
        }
    }

    /// The same tensor, required to have exactly `width` values per row.
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

    /// The shapes this tensor may have, with `batch` for the first dimension: `[N] or [N, C]`.
    pub(crate) fn shapes(&self, batch: &str, width: &str) -> String {
        match self.width {
            Some(1) => format!("[{batch}] or [{batch}, 1]"),
            Some(w) => format!("[{batch}, {w}]"),
            None => format!("[{batch}] or [{batch}, {width}]"),
        }
    }
}

/// The values of one input for a batch, row-major.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl Column {
    fn with_capacity(ty: ElementType, capacity: usize) -> Self {
        match ty {
            ElementType::F32 => Column::F32(Vec::with_capacity(capacity)),
            ElementType::F64 => Column::F64(Vec::with_capacity(capacity)),
            ElementType::I64 => Column::I64(Vec::with_capacity(capacity)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Column::F32(v) => v.truncate(len),
            Column::F64(v) => v.truncate(len),
            Column::I64(v) => v.truncate(len),
        }
    }

    /// The first non-finite value from position `from` on: its offset from `from` and value.
    fn first_non_finite(&self, from: usize) -> Option<(usize, String)> {
        fn find<V: Copy + fmt::Display>(
            v: &[V],
            finite: impl Fn(V) -> bool,
        ) -> Option<(usize, String)> {
            // A branch-free pass first (it vectorizes); the position only for a bad row.
            if v.iter().fold(true, |all, x| all & finite(*x)) {
                return None;
            }
            v.iter()
                .position(|x| !finite(*x))
                .map(|i| (i, v[i].to_string()))
        }
        match self {
            Column::F32(v) => find(&v[from..], f32::is_finite),
            Column::F64(v) => find(&v[from..], f64::is_finite),
            Column::I64(_) => None,
        }
    }
}

/// The input rows of a batch being filled: one column per model input, in the order of the
/// configured inputs. For each record the features function appends one row to every
/// column: `width` values, the model's declared second dimension (1 for an `[N]` input).
///
/// Asking for a column with the wrong element type is a programming error and panics
/// (the types were checked against the model when it loaded).
#[derive(Debug)]
pub struct InputRows {
    pub(crate) columns: Vec<Column>,
}

impl InputRows {
    pub(crate) fn new(inputs: &[TensorSpec], capacity: usize) -> Self {
        InputRows {
            columns: inputs
                .iter()
                .map(|s| Column::with_capacity(s.ty, capacity))
                .collect(),
        }
    }

    fn wrong_type(&self, input: usize, wanted: &str) -> ! {
        let ty = match self.columns.get(input) {
            Some(Column::F32(_)) => "f32",
            Some(Column::F64(_)) => "f64",
            Some(Column::I64(_)) => "i64",
            None => panic!(
                "input {input} does not exist (the model has {} configured inputs)",
                self.columns.len()
            ),
        };
        panic!("input {input} is {ty}, not {wanted}")
    }

    /// The float32 column of input `input` (its index in the configured inputs).
    pub fn f32(&mut self, input: usize) -> &mut Vec<f32> {
        if !matches!(self.columns.get(input), Some(Column::F32(_))) {
            self.wrong_type(input, "f32");
        }
        match &mut self.columns[input] {
            Column::F32(v) => v,
            _ => unreachable!("checked above"),
        }
    }

    /// The float64 column of input `input`.
    pub fn f64(&mut self, input: usize) -> &mut Vec<f64> {
        if !matches!(self.columns.get(input), Some(Column::F64(_))) {
            self.wrong_type(input, "f64");
        }
        match &mut self.columns[input] {
            Column::F64(v) => v,
            _ => unreachable!("checked above"),
        }
    }

    /// The int64 column of input `input`.
    pub fn i64(&mut self, input: usize) -> &mut Vec<i64> {
        if !matches!(self.columns.get(input), Some(Column::I64(_))) {
            self.wrong_type(input, "i64");
        }
        match &mut self.columns[input] {
            Column::I64(v) => v,
            _ => unreachable!("checked above"),
        }
    }

    pub(crate) fn lengths(&self, into: &mut Vec<usize>) {
        into.clear();
        into.extend(self.columns.iter().map(Column::len));
    }

    pub(crate) fn truncate(&mut self, lengths: &[usize]) {
        for (column, &len) in self.columns.iter_mut().zip(lengths) {
            column.truncate(len);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.columns.iter_mut().for_each(|c| c.truncate(0));
    }

    /// Checks the row appended after `lengths`: every column grew by its width and holds
    /// finite values. Returns the reason a row is rejected.
    pub(crate) fn check_row(
        &self,
        lengths: &[usize],
        widths: &[usize],
        inputs: &[TensorSpec],
    ) -> Option<String> {
        for (i, column) in self.columns.iter().enumerate() {
            let got = column.len() - lengths[i];
            if got != widths[i] {
                let name = &inputs[i].name;
                return Some(format!(
                    "input `{name}`: expected {} values, got {got}",
                    widths[i]
                ));
            }
            if let Some((at, value)) = column.first_non_finite(lengths[i]) {
                let name = &inputs[i].name;
                return Some(format!("input `{name}`: value {at} is {value}"));
            }
        }
        None
    }
}

/// The values of one output of a batch as the model returned it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OutputValues<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I64(&'a [i64]),
}

impl OutputValues<'_> {
    fn len(&self) -> usize {
        match self {
            OutputValues::F32(v) => v.len(),
            OutputValues::F64(v) => v.len(),
            OutputValues::I64(v) => v.len(),
        }
    }
}

/// One output of a batch, checked to hold one row of `width` values per record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutputColumn<'a> {
    values: OutputValues<'a>,
    width: usize,
}

impl<'a> OutputColumn<'a> {
    /// The output `spec` of a batch of `rows` records, as a run returned it (`values` of
    /// `shape`), if it is one row per record: `[rows]`, or `[rows, width]` with `width` at
    /// least 1 (and `spec.width`, if set). Otherwise why not, naming the output and `model`.
    /// Constant time: the per-record slices are then in bounds by construction.
    pub(crate) fn checked(
        values: OutputValues<'a>,
        shape: &[i64],
        rows: usize,
        spec: &TensorSpec,
        model: &str,
    ) -> Result<Self, String> {
        let width = match *shape {
            [r] if r == rows as i64 => Some(1),
            [r, w] if r == rows as i64 && w >= 1 => usize::try_from(w).ok(),
            _ => None,
        };
        match width {
            Some(width)
                if spec.width.is_none_or(|w| w == width)
                    && rows.checked_mul(width) == Some(values.len()) =>
            {
                Ok(OutputColumn { values, width })
            }
            _ => {
                let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
                let c = if spec.width.is_none() {
                    " with C >= 1"
                } else {
                    ""
                };
                Err(format!(
                    "output `{}` of model {model} has shape [{}]; expected {}{c} (one row per \
                     record of the batch of {rows})",
                    spec.name,
                    dims.join(", "),
                    spec.shapes(&rows.to_string(), "C"),
                ))
            }
        }
    }
}

/// One record's share of a batch's outputs, handed to the function that attaches the
/// outputs to the record. Outputs are addressed by their index in the configured outputs.
/// Every output has been checked to hold one row per record, so each slice has the
/// output's width (at least one value).
#[derive(Clone, Copy, Debug)]
pub struct OutputRow<'a> {
    pub(crate) columns: &'a [OutputColumn<'a>],
    pub(crate) row: usize,
    pub(crate) version: u64,
}

impl<'a> OutputRow<'a> {
    fn range(&self, output: usize) -> std::ops::Range<usize> {
        let width = self.columns[output].width;
        self.row * width..(self.row + 1) * width
    }

    fn wrong_type(&self, output: usize, wanted: &str) -> ! {
        match self.columns.get(output) {
            None => panic!(
                "output {output} does not exist ({} configured outputs)",
                self.columns.len()
            ),
            Some(c) => panic!("output {output} is {:?}, not {wanted}", c.values),
        }
    }

    /// This record's values of float32 output `output` (`width` values).
    pub fn f32(&self, output: usize) -> &'a [f32] {
        match self.columns.get(output) {
            Some(OutputColumn {
                values: OutputValues::F32(v),
                ..
            }) => &v[self.range(output)],
            _ => self.wrong_type(output, "f32"),
        }
    }

    /// This record's values of float64 output `output`.
    pub fn f64(&self, output: usize) -> &'a [f64] {
        match self.columns.get(output) {
            Some(OutputColumn {
                values: OutputValues::F64(v),
                ..
            }) => &v[self.range(output)],
            _ => self.wrong_type(output, "f64"),
        }
    }

    /// This record's values of int64 output `output`.
    pub fn i64(&self, output: usize) -> &'a [i64] {
        match self.columns.get(output) {
            Some(OutputColumn {
                values: OutputValues::I64(v),
                ..
            }) => &v[self.range(output)],
            _ => self.wrong_type(output, "i64"),
        }
    }

    /// Version of the model that produced these outputs.
    pub fn model_version(&self) -> u64 {
        self.version
    }

    /// Whether this row's first output equals `other`'s (shadow agreement).
    pub(crate) fn same_first_output(&self, other: &OutputRow<'_>) -> bool {
        let (a, b) = (self.range(0), other.range(0));
        match (self.columns[0].values, other.columns[0].values) {
            (OutputValues::F32(x), OutputValues::F32(y)) => x[a] == y[b],
            (OutputValues::F64(x), OutputValues::F64(y)) => x[a] == y[b],
            (OutputValues::I64(x), OutputValues::I64(y)) => x[a] == y[b],
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        shape: &[i64],
        values: &[i64],
        rows: usize,
        spec: &TensorSpec,
    ) -> Result<usize, String> {
        OutputColumn::checked(OutputValues::I64(values), shape, rows, spec, "m v1").map(|c| c.width)
    }

    #[test]
    fn an_output_column_is_one_row_per_record_or_an_error() {
        let any = TensorSpec::i64("y");
        let one = TensorSpec::i64("y").with_width(1);
        assert_eq!(check(&[3], &[1, 2, 3], 3, &any), Ok(1));
        assert_eq!(check(&[3, 2], &[0; 6], 3, &any), Ok(2));
        assert_eq!(check(&[3, 1], &[0; 3], 3, &one), Ok(1));
        assert_eq!(
            check(&[1, 1], &[0], 3, &any).unwrap_err(),
            "output `y` of model m v1 has shape [1, 1]; expected [3] or [3, C] with C >= 1 \
             (one row per record of the batch of 3)"
        );
        assert_eq!(
            check(&[3, 0], &[], 3, &any).unwrap_err(),
            "output `y` of model m v1 has shape [3, 0]; expected [3] or [3, C] with C >= 1 \
             (one row per record of the batch of 3)"
        );
        assert_eq!(
            check(&[3, 2], &[0; 6], 3, &one).unwrap_err(),
            "output `y` of model m v1 has shape [3, 2]; expected [3] or [3, 1] \
             (one row per record of the batch of 3)"
        );
        // Not [N] or [N, C], even if the row-major slices would work out.
        assert!(check(&[3, 2, 1], &[0; 6], 3, &any).is_err());
        assert!(check(&[], &[0], 1, &any).is_err());
        // The values must be as many as the shape says.
        assert!(check(&[3, 2], &[0; 5], 3, &any).is_err());
        assert_eq!(
            check(&[3], &[0; 3], 3, &TensorSpec::i64("y").with_width(4)).unwrap_err(),
            "output `y` of model m v1 has shape [3]; expected [3, 4] \
             (one row per record of the batch of 3)"
        );
    }
}
