//! Checks what a model declares against what the predict operator feeds and reads, when the
//! model loads, so that a model that cannot serve is rejected before it replaces the one
//! serving: every input the operator feeds exists with its element type and a per-record
//! shape, every input the model needs is fed, and every output the operator reads exists with
//! its element type and one row per record.
//!
//! The first dimension of every fed input and read output must be the batch: dynamic (`-1`,
//! a symbolic name in the file). A fixed first dimension is rejected, 1 included: the
//! operator hands the model batches of up to `max_batch` records, so an output fixed at 1
//! row either aggregates the batch or belongs to a model that only takes one row, and either
//! way it is not one row per record. The one exception is `max_batch` 1: then every batch is
//! one record, and a model exported with a fixed batch of 1 scores it correctly.

use crate::model_info::{dims, ModelInfo, TensorInfo};
use crate::predict::TensorPredictConfig;
use crate::tensor_batch::TensorSpec;

/// How one row (record) of a checked input or output is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowLayout {
    /// Values per row.
    pub(crate) width: usize,
    /// Whether the model wants `[N, width]` (`false`: `[N]`).
    pub(crate) two_dimensional: bool,
}

/// Whether a tensor is fed to the model or read from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Input,
    Output,
}

/// Checks `info` (what the model declares) against `config`; returns the layout of every
/// configured input, in order, or why the model does not fit.
pub(crate) fn check_model(
    info: &ModelInfo,
    config: &TensorPredictConfig,
) -> Result<Vec<RowLayout>, String> {
    check_config(config)?;
    let fed = quoted(config.inputs.iter().map(|s| s.name.as_str()));
    if info.inputs.is_empty() {
        return Err(format!("the model has no inputs; the operator feeds {fed}"));
    }
    let batch_of_one = config.max_batch.max(1) == 1;
    let layouts = config
        .inputs
        .iter()
        .map(|spec| {
            let input = find(&info.inputs, spec, Role::Input)?;
            check_tensor(input, spec, Role::Input, batch_of_one)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unfed: Vec<&str> = info
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .filter(|name| config.inputs.iter().all(|s| s.name != *name))
        .collect();
    match unfed[..] {
        [] => {}
        [one] => {
            return Err(format!(
                "the model's input `{one}` is not fed by the operator (it feeds {fed})"
            ))
        }
        _ => {
            return Err(format!(
                "the model's inputs {} are not fed by the operator (it feeds {fed})",
                quoted(unfed.into_iter())
            ))
        }
    }
    for spec in &config.outputs {
        let output = find(&info.outputs, spec, Role::Output)?;
        check_tensor(output, spec, Role::Output, batch_of_one)?;
    }
    Ok(layouts)
}

/// The configuration must feed and read something: the batch comes in through the inputs,
/// and every record leaves with its rows of the outputs.
fn check_config(config: &TensorPredictConfig) -> Result<(), String> {
    if config.inputs.is_empty() {
        return Err(
            "the operator feeds no inputs (TensorPredictConfig::inputs is empty); it \
                    needs at least one"
                .into(),
        );
    }
    if config.outputs.is_empty() {
        return Err(
            "the operator reads no outputs (TensorPredictConfig::outputs is empty); \
                    it needs at least one"
                .into(),
        );
    }
    Ok(())
}

/// The model's tensor named like `spec`, or an error listing the ones it has.
fn find<'a>(
    list: &'a [TensorInfo],
    spec: &TensorSpec,
    role: Role,
) -> Result<&'a TensorInfo, String> {
    let kind = match role {
        Role::Input => "input",
        Role::Output => "output",
    };
    list.iter().find(|t| t.name == spec.name).ok_or_else(|| {
        format!(
            "the model has no {kind} `{}` (its {kind}s: {})",
            spec.name,
            quoted(list.iter().map(|t| t.name.as_str()))
        )
    })
}

/// Checks one declared tensor against its spec: element type, `[N]` or `[N, width]` with the
/// batch first, a fixed width for inputs, and the spec's width if it has one.
fn check_tensor(
    tensor: &TensorInfo,
    spec: &TensorSpec,
    role: Role,
    batch_of_one: bool,
) -> Result<RowLayout, String> {
    let problem = |why: String| {
        let (kind, width, fixed) = match role {
            Role::Input => ("input", "F", " and a fixed F"),
            Role::Output => ("output", "C", ""),
        };
        let fixed = if spec.width.is_none() { fixed } else { "" };
        format!(
            "{kind} `{}` is {} {}, expected {} {} with N the batch{fixed}: {why}",
            tensor.name,
            tensor.dtype,
            dims(&tensor.shape),
            spec.ty,
            spec.shapes("N", width),
        )
    };
    if tensor.dtype != spec.ty.to_string() {
        return Err(problem(format!("the element type is not {}", spec.ty)));
    }
    let (first, width) = match tensor.shape[..] {
        [first] => (first, 1),
        [first, width] => (first, width),
        _ => {
            let rank = tensor.shape.len();
            return Err(problem(format!("it has {rank} dimensions")));
        }
    };
    if !(first < 0 || (first == 1 && batch_of_one)) {
        return Err(problem(
            "the first dimension must be dynamic (or 1 with max_batch 1)".into(),
        ));
    }
    match (width, role) {
        (w, Role::Input) if w < 0 => Err(problem("the second dimension must be fixed".into())),
        // Only the run shows it; checked on every batch.
        (w, Role::Output) if w < 0 => Ok(RowLayout {
            width: 0,
            two_dimensional: true,
        }),
        (0, _) => Err(problem("it has no values per row".into())),
        (w, _) if spec.width.is_some_and(|want| want as i64 != w) => Err(problem(format!(
            "it has {w} values per row, expected {}",
            spec.width.unwrap_or_default()
        ))),
        (w, _) => Ok(RowLayout {
            width: w as usize,
            two_dimensional: tensor.shape.len() == 2,
        }),
    }
}

/// `a`, `b`, `c` (backquoted, comma-separated).
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: &str, shape: &[i64]) -> TensorInfo {
        TensorInfo {
            name: "t".into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
        }
    }

    fn input(shape: &[i64], batch_of_one: bool) -> Result<RowLayout, String> {
        check_tensor(
            &tensor("f32", shape),
            &TensorSpec::f32("t"),
            Role::Input,
            batch_of_one,
        )
    }

    fn output(shape: &[i64], spec: TensorSpec) -> Result<RowLayout, String> {
        check_tensor(&tensor("i64", shape), &spec, Role::Output, false)
    }

    #[test]
    fn inputs_are_the_batch_first_with_a_fixed_width() {
        let layout = |width, two_dimensional| RowLayout {
            width,
            two_dimensional,
        };
        assert_eq!(input(&[-1, 64], false), Ok(layout(64, true)));
        assert_eq!(input(&[-1], false), Ok(layout(1, false)));
        assert_eq!(input(&[1, 64], true), Ok(layout(64, true)));
        assert_eq!(
            input(&[1, 64], false).unwrap_err(),
            "input `t` is f32 [1, 64], expected f32 [N] or [N, F] with N the batch and a fixed \
             F: the first dimension must be dynamic (or 1 with max_batch 1)"
        );
        assert!(input(&[2, 64], true).is_err(), "only 1 is a batch of one");
        assert!(input(&[-1, -1], false)
            .unwrap_err()
            .ends_with("the second dimension must be fixed"));
        assert!(input(&[-1, 0], false)
            .unwrap_err()
            .ends_with("it has no values per row"));
        assert!(input(&[-1, 8, 8], false)
            .unwrap_err()
            .ends_with("it has 3 dimensions"));
        assert!(input(&[], false)
            .unwrap_err()
            .ends_with("it has 0 dimensions"));
        assert!(check_tensor(
            &tensor("f64", &[-1]),
            &TensorSpec::f32("t"),
            Role::Input,
            false
        )
        .unwrap_err()
        .ends_with("the element type is not f32"));
    }

    #[test]
    fn outputs_are_the_batch_first_and_of_the_width_asked_for() {
        let any = || TensorSpec::i64("t");
        let one = || TensorSpec::i64("t").with_width(1);
        assert!(output(&[-1, -1], any()).is_ok(), "the run tells the width");
        assert!(output(&[-1, 3], any()).is_ok());
        assert!(output(&[-1, 1], one()).is_ok());
        assert!(output(&[-1], one()).is_ok());
        assert_eq!(
            output(&[-1, 2], one()).unwrap_err(),
            "output `t` is i64 [N, 2], expected i64 [N] or [N, 1] with N the batch: it has 2 \
             values per row, expected 1"
        );
        assert!(output(&[-1, 0], any())
            .unwrap_err()
            .ends_with("it has no values per row"));
        assert!(output(&[1], any())
            .unwrap_err()
            .ends_with("the first dimension must be dynamic (or 1 with max_batch 1)"));
    }
}
