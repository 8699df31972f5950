//! The output side of a batch: each configured output of a run, checked to hold one item per
//! record, and the view of one record's items that the attach function gets.

use crate::input_rows::RowShape;
use crate::ort_values::Output;
use crate::tensor::{primitive_types, shape_text, MapValue, Tensor, TensorData, Value};
use crate::tensor_spec::TensorSpec;

macro_rules! output_values {
    ($(($variant:ident, $ty:ty, $name:literal, $acc:ident)),* $(,)?) => {
        /// The values of one tensor output of a run, as ONNX Runtime returned them.
        #[derive(Debug)]
        pub(crate) enum OutputValues<'a> {
            $($variant(&'a [$ty]),)*
            String(Vec<String>),
        }

        impl OutputValues<'_> {
            fn len(&self) -> usize {
                match self {
                    $(OutputValues::$variant(v) => v.len(),)*
                    OutputValues::String(v) => v.len(),
                }
            }

            fn element_type(&self) -> crate::ElementType {
                match self {
                    $(OutputValues::$variant(_) => crate::ElementType::$variant,)*
                    OutputValues::String(_) => crate::ElementType::String,
                }
            }

            /// Values `range` copied.
            fn to_data(&self, range: std::ops::Range<usize>) -> TensorData {
                match self {
                    $(OutputValues::$variant(v) => TensorData::$variant(v[range].to_vec()),)*
                    OutputValues::String(v) => TensorData::String(v[range].to_vec()),
                }
            }

            /// Whether values `a` of `self` equal values `b` of `other`.
            fn same(&self, a: std::ops::Range<usize>, other: &OutputValues<'_>, b: std::ops::Range<usize>) -> bool {
                match (self, other) {
                    $((OutputValues::$variant(x), OutputValues::$variant(y)) => x[a] == y[b],)*
                    (OutputValues::String(x), OutputValues::String(y)) => x[a] == y[b],
                    _ => false,
                }
            }
        }

        impl<'a> OutputRow<'a> {
            $(
                #[doc = concat!("This record's values of `", $name, "` output `output` (its item, row-major).")]
                pub fn $acc(&self, output: usize) -> &'a [$ty] {
                    match self.columns.get(output).map(|c| &c.values) {
                        Some(ColumnValues::Tensor(OutputValues::$variant(v))) => &v[self.range(output)],
                        _ => self.wrong_type(output, $name),
                    }
                }
            )*
        }
    };
}
primitive_types!(output_values);

/// An output's values: a tensor's, or one owned value per record (a sequence's items).
#[derive(Debug)]
enum ColumnValues<'a> {
    Tensor(OutputValues<'a>),
    Items(Vec<Value>),
}

/// One output of a run, checked to hold one item per record.
#[derive(Debug)]
pub(crate) struct OutputColumn<'a> {
    values: ColumnValues<'a>,
    /// A record's item shape (tensors).
    shape: RowShape,
    /// Values per record (tensors).
    width: usize,
}

impl<'a> OutputColumn<'a> {
    /// Output `spec` of a run over `rows` records, if it is one item per record: a tensor
    /// `[rows, ...]` with at least one value per record (and `spec`'s type and width), or a
    /// sequence of `rows` items. Otherwise why not, naming the output and `model`. Constant
    /// time for tensors: the per-record slices are then in bounds by construction.
    pub(crate) fn per_record(
        output: Output<'a>,
        rows: usize,
        spec: &TensorSpec,
        model: &str,
    ) -> Result<Self, String> {
        match output {
            Output::Tensor(shape, values) => Self::tensor_rows(shape, values, rows, spec, model),
            Output::Sequence(items) if items.len() == rows => Ok(OutputColumn {
                values: ColumnValues::Items(items),
                shape: RowShape::new(),
                width: 1,
            }),
            Output::Sequence(items) => Err(format!(
                "output `{}` of model {model} is a sequence of {} items; expected one per record \
                 of the batch of {rows}",
                spec.name,
                items.len()
            )),
            Output::Map(_) => Err(format!(
                "output `{}` of model {model} is a single map, not one item per record",
                spec.name
            )),
        }
    }

    fn tensor_rows(
        shape: RowShape,
        values: OutputValues<'a>,
        rows: usize,
        spec: &TensorSpec,
        model: &str,
    ) -> Result<Self, String> {
        if let Some(ty) = spec.ty.filter(|ty| *ty != values.element_type()) {
            return Err(format!(
                "output `{}` of model {model} is {}, expected {ty}",
                spec.name,
                values.element_type()
            ));
        }
        let width = match shape.split_first() {
            Some((&first, rest)) if first == rows => rest
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .filter(|&w| w >= 1 && spec.width.is_none_or(|want| want == w)),
            _ => None,
        };
        match width {
            Some(width) if rows.checked_mul(width) == Some(values.len()) => Ok(OutputColumn {
                values: ColumnValues::Tensor(values),
                shape: shape[1..].iter().copied().collect(),
                width,
            }),
            _ => {
                let item = match spec.width {
                    Some(1) => format!("[{rows}] or [{rows}, 1]"),
                    Some(w) => format!("[{rows}, ...] with {w} values per record"),
                    None => format!("[{rows}, ...] with at least one value per record"),
                };
                Err(format!(
                    "output `{}` of model {model} has shape {}; expected {item} (one item per \
                     record of the batch of {rows})",
                    spec.name,
                    shape_text(&shape),
                ))
            }
        }
    }

    /// An output of a whole run, as it is: the single record gets all of it.
    pub(crate) fn whole(output: Output<'a>) -> Self {
        match output {
            Output::Tensor(shape, values) => OutputColumn {
                width: values.len(),
                values: ColumnValues::Tensor(values),
                shape,
            },
            Output::Sequence(items) => OutputColumn {
                values: ColumnValues::Items(vec![Value::Sequence(items)]),
                shape: RowShape::new(),
                width: 1,
            },
            Output::Map(map) => OutputColumn {
                values: ColumnValues::Items(vec![Value::Map(map)]),
                shape: RowShape::new(),
                width: 1,
            },
        }
    }
}

/// One record's share of a run's outputs, handed to the function that attaches the outputs
/// to the record. Outputs are addressed by their index in the configured outputs. Every
/// output has been checked to hold one item per record: a tensor's item is the record's
/// values (the output's shape without the batch axis, [`OutputRow::shape`]), a sequence's
/// the record's element ([`OutputRow::item`], [`OutputRow::map`]). [`OutputRow::value`]
/// copies any of them into an owned [`Value`].
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
        match self.columns.get(output).map(|c| &c.values) {
            None => panic!(
                "output {output} does not exist ({} configured outputs)",
                self.columns.len()
            ),
            Some(ColumnValues::Tensor(v)) => {
                panic!("output {output} is {}, not {wanted}", v.element_type())
            }
            Some(ColumnValues::Items(_)) => panic!("output {output} is a sequence, not {wanted}"),
        }
    }

    /// This record's values of string output `output`.
    pub fn string(&self, output: usize) -> &'a [String] {
        match self.columns.get(output).map(|c| &c.values) {
            Some(ColumnValues::Tensor(OutputValues::String(v))) => &v[self.range(output)],
            _ => self.wrong_type(output, "string"),
        }
    }

    /// The shape of this record's item of tensor output `output` (the output's shape without
    /// the batch axis; for a whole run, the full shape). Empty for sequences.
    pub fn shape(&self, output: usize) -> &'a [usize] {
        &self.columns[output].shape
    }

    /// This record's element of sequence output `output`, if it is a sequence.
    pub fn item(&self, output: usize) -> Option<&'a Value> {
        match &self.columns.get(output)?.values {
            ColumnValues::Items(items) => items.get(self.row),
            ColumnValues::Tensor(_) => None,
        }
    }

    /// This record's map of output `output`: scikit-learn's ZipMap probabilities (a sequence
    /// of maps, one per record), class → probability.
    pub fn map(&self, output: usize) -> Option<&'a MapValue> {
        self.item(output).and_then(Value::as_map)
    }

    /// This record's item of output `output`, copied: a tensor of the item's shape, or the
    /// sequence's element.
    pub fn value(&self, output: usize) -> Value {
        let column = &self.columns[output];
        match &column.values {
            ColumnValues::Tensor(values) => Value::Tensor(Tensor {
                shape: column.shape.to_vec(),
                data: values.to_data(self.range(output)),
            }),
            ColumnValues::Items(items) => items[self.row].clone(),
        }
    }

    /// Every configured output's item, copied, in order.
    pub fn values(&self) -> Vec<Value> {
        (0..self.columns.len()).map(|o| self.value(o)).collect()
    }

    /// Version of the model that produced these outputs.
    pub fn model_version(&self) -> u64 {
        self.version
    }

    /// Whether this row's first output equals `other`'s (shadow agreement).
    pub(crate) fn same_first_output(&self, other: &OutputRow<'_>) -> bool {
        match (&self.columns[0].values, &other.columns[0].values) {
            (ColumnValues::Tensor(x), ColumnValues::Tensor(y)) => {
                x.same(self.range(0), y, other.range(0))
            }
            (ColumnValues::Items(x), ColumnValues::Items(y)) => x[self.row] == y[other.row],
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        shape: &[usize],
        values: &[i64],
        rows: usize,
        spec: &TensorSpec,
    ) -> Result<usize, String> {
        let output = Output::Tensor(shape.iter().copied().collect(), OutputValues::I64(values));
        OutputColumn::per_record(output, rows, spec, "m v1").map(|c| c.width)
    }

    #[test]
    fn an_output_is_one_item_per_record_or_an_error() {
        let any = TensorSpec::i64("y");
        let one = TensorSpec::i64("y").with_width(1);
        assert_eq!(check(&[3], &[1, 2, 3], 3, &any), Ok(1));
        assert_eq!(check(&[3, 2], &[0; 6], 3, &any), Ok(2));
        assert_eq!(check(&[3, 2, 2], &[0; 12], 3, &any), Ok(4));
        assert_eq!(check(&[3, 1], &[0; 3], 3, &one), Ok(1));
        assert_eq!(
            check(&[1, 1], &[0], 3, &any).unwrap_err(),
            "output `y` of model m v1 has shape [1, 1]; expected [3, ...] with at least one \
             value per record (one item per record of the batch of 3)"
        );
        assert!(
            check(&[3, 0], &[], 3, &any).is_err(),
            "no values per record"
        );
        assert_eq!(
            check(&[3, 2], &[0; 6], 3, &one).unwrap_err(),
            "output `y` of model m v1 has shape [3, 2]; expected [3] or [3, 1] \
             (one item per record of the batch of 3)"
        );
        assert!(
            check(&[], &[0], 1, &any).is_err(),
            "a scalar has no batch axis"
        );
        assert!(
            check(&[3, 2], &[0; 5], 3, &any).is_err(),
            "values must match the shape"
        );
        assert_eq!(
            check(&[3], &[0; 3], 3, &TensorSpec::f32("y")).unwrap_err(),
            "output `y` of model m v1 is i64, expected f32"
        );
    }

    #[test]
    fn a_sequence_is_one_item_per_record() {
        let items = |n| Output::Sequence(vec![Value::Absent; n]);
        let spec = TensorSpec::any("p");
        assert!(OutputColumn::per_record(items(2), 2, &spec, "m").is_ok());
        assert!(OutputColumn::per_record(items(1), 2, &spec, "m")
            .unwrap_err()
            .contains("a sequence of 1 items; expected one per record of the batch of 2"));
    }

    #[test]
    fn a_row_sees_its_item() {
        let values = [1i64, 2, 3, 4, 5, 6];
        let columns = [OutputColumn::per_record(
            Output::Tensor([3, 2].into_iter().collect(), OutputValues::I64(&values)),
            3,
            &TensorSpec::i64("y"),
            "m",
        )
        .unwrap()];
        let row = OutputRow {
            columns: &columns,
            row: 1,
            version: 7,
        };
        assert_eq!(row.i64(0), &[3, 4]);
        assert_eq!(row.shape(0), &[2]);
        assert_eq!(
            row.value(0),
            Value::Tensor(Tensor {
                shape: vec![2],
                data: TensorData::I64(vec![3, 4])
            })
        );
        assert!(row.item(0).is_none());
    }
}
