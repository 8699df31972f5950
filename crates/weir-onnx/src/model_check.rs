//! Checks what a model declares against what the predict operator feeds and reads, when the
//! model loads, so that a model that cannot serve is rejected before it replaces the one
//! serving: it has inputs; every input the operator feeds exists, is a tensor of the
//! configured element type and (batching rows) has a batch axis; every constant input exists
//! and fits; every input the model needs is fed; and every output the operator reads exists
//! with its element type and one item per record.
//!
//! **The batch axis** is the first dimension of every fed input. Dynamic (`-1`, a symbolic
//! name in the file): records are stacked, up to `max_batch` a run. Fixed at 1: one record a
//! run. Fixed at k > 1: runs of exactly k, the last one padded by repeating its last record
//! (the padded rows' outputs are dropped). Inputs that disagree on it, or a scalar input (no
//! batch axis at all), are rejected. Every read output's first dimension must be the batch
//! too: dynamic, or the inputs' fixed size (a fixed 1 on a dynamic batch would be one row for
//! the whole batch, and is rejected unless `max_batch` is 1). Sequence outputs (ZipMap) are
//! checked on every run to hold one item per record.
//!
//! With [`Batching::Whole`](crate::Batching::Whole) a record is one run: no batch axis is
//! needed and outputs are taken whole.

use crate::input_rows::RowShape;
use crate::model_info::{dims, ModelInfo, TensorInfo};
use crate::predict::{Batching, TensorPredictConfig};
use crate::tensor::{ElementType, Tensor};
use crate::tensor_spec::{NanPolicy, TensorSpec};

/// How a model takes its batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchAxis {
    /// Any number of records a run.
    Dynamic,
    /// Exactly this many a run (padded).
    Fixed(usize),
    /// One record a run, with whole tensors.
    Whole,
}

/// How a record's item of one configured input is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InputLayout {
    /// The model's element type.
    pub(crate) ty: ElementType,
    /// The item's dimensions (the model's without the batch axis; whole: all of them),
    /// `-1` where the model leaves one open.
    pub(crate) dims: Vec<i64>,
    /// Whether NaN and infinities are fed.
    pub(crate) nan: NanPolicy,
    /// Values per item and the item's shape, if every dimension is fixed.
    pub(crate) fixed: Option<(usize, RowShape)>,
}

impl InputLayout {
    /// Values per item, if every dimension is fixed.
    pub(crate) fn fixed_width(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        })
    }
}

/// What a loaded model needs: its batch axis and the layout of every configured input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelLayout {
    pub(crate) batch: BatchAxis,
    pub(crate) inputs: Vec<InputLayout>,
}

/// Whether a tensor is fed to the model or read from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Input,
    Output,
}

impl Role {
    fn kind(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
        }
    }
}

/// Checks `info` (what the model declares) against `config`; returns how to feed it, or why
/// the model does not fit.
pub(crate) fn check_model(
    info: &ModelInfo,
    config: &TensorPredictConfig,
) -> Result<ModelLayout, String> {
    check_config(config)?;
    let fed = quoted(config.inputs.iter().map(|s| s.name.as_str()));
    if info.inputs.is_empty() {
        return Err(format!(
            "the model has no inputs, so a record has nothing to feed (the operator feeds {fed})"
        ));
    }
    let whole = config.batching == Batching::Whole;
    let mut inputs = Vec::with_capacity(config.inputs.len());
    let mut batches = Vec::new();
    for spec in &config.inputs {
        let input = find(&info.inputs, &spec.name, Role::Input)?;
        let ty = element_type(input, spec, Role::Input)?;
        let dims = if whole {
            input.shape.clone()
        } else {
            let (first, rest) = input.shape.split_first().ok_or_else(|| {
                format!(
                    "input `{}` is a scalar {ty}: it has no batch axis to stack records on; \
                     give it as a constant (or feed whole runs: Batching::Whole)",
                    input.name
                )
            })?;
            batches.push((input.name.as_str(), *first));
            rest.to_vec()
        };
        let fixed = dims
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<RowShape>>()
            .and_then(|shape| Some((crate::tensor::element_count(&shape)?, shape)));
        inputs.push(InputLayout {
            ty,
            dims,
            nan: spec.nan,
            fixed,
        });
    }
    let batch = if whole {
        BatchAxis::Whole
    } else {
        batch_axis(&batches)?
    };
    for (name, tensor) in &config.constants {
        check_constant(info, config, name, tensor)?;
    }
    check_all_fed(info, config, &fed)?;
    for spec in &config.outputs {
        let output = find(&info.outputs, &spec.name, Role::Output)?;
        check_output(output, spec, batch, config.max_batch)?;
    }
    Ok(ModelLayout { batch, inputs })
}

/// The batch axis the inputs' first dimensions agree on.
fn batch_axis(firsts: &[(&str, i64)]) -> Result<BatchAxis, String> {
    let fixed: Vec<&(&str, i64)> = firsts.iter().filter(|(_, d)| *d >= 0).collect();
    match fixed[..] {
        [] => Ok(BatchAxis::Dynamic),
        [(name, 0), ..] => Err(format!(
            "input `{name}` has a batch axis of 0: no record fits"
        )),
        [(name, k), ..] => {
            if let Some((other, d)) = firsts.iter().find(|(_, d)| *d != *k) {
                let d = if *d < 0 {
                    "N".to_string()
                } else {
                    d.to_string()
                };
                return Err(format!(
                    "the inputs disagree on the batch axis: `{name}` has a first dimension of \
                     {k}, `{other}` of {d}"
                ));
            }
            if *k as u64 > MAX_FIXED_BATCH {
                return Err(format!(
                    "`{name}` has a fixed batch of {k} rows, more than the {MAX_FIXED_BATCH} \
                     the operator pads a run to"
                ));
            }
            Ok(BatchAxis::Fixed(*k as usize))
        }
    }
}

/// The largest fixed batch a model may declare: every run is padded to it, so a model that
/// declared 2^40 rows would exhaust memory at its first record instead of being rejected.
const MAX_FIXED_BATCH: u64 = 1 << 16;

/// The configuration must feed and read something: records come in through the inputs, and
/// every record leaves with its items of the outputs.
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

/// Every input the model declares is fed, by the records or as a constant.
fn check_all_fed(info: &ModelInfo, config: &TensorPredictConfig, fed: &str) -> Result<(), String> {
    let unfed: Vec<&str> = info
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .filter(|name| {
            config.inputs.iter().all(|s| s.name != *name)
                && config.constants.iter().all(|(c, _)| c != name)
        })
        .collect();
    match unfed[..] {
        [] => Ok(()),
        [one] => Err(format!(
            "the model's input `{one}` is not fed by the operator (it feeds {fed}); give it \
             as a constant if it is not per record"
        )),
        _ => Err(format!(
            "the model's inputs {} are not fed by the operator (it feeds {fed})",
            quoted(unfed.into_iter())
        )),
    }
}

/// A constant input exists, is not also fed per record, and has the model's type and shape.
fn check_constant(
    info: &ModelInfo,
    config: &TensorPredictConfig,
    name: &str,
    tensor: &Tensor,
) -> Result<(), String> {
    let input = find(&info.inputs, name, Role::Input)?;
    if config.inputs.iter().any(|s| s.name == name) {
        return Err(format!(
            "input `{name}` is both fed per record and given as a constant"
        ));
    }
    let declared = ElementType::from_name(&input.dtype);
    let fits_shape = input.shape.len() == tensor.shape.len()
        && input
            .shape
            .iter()
            .zip(&tensor.shape)
            .all(|(&d, &t)| d < 0 || d as usize == t);
    if declared != Some(tensor.element_type()) || !fits_shape {
        return Err(format!(
            "constant `{name}` is {} {}, but the model's input is {} {}",
            tensor.element_type(),
            crate::tensor::shape_text(&tensor.shape),
            input.dtype,
            dims(&input.shape)
        ));
    }
    Ok(())
}

/// The model's tensor named `name`, or an error listing the ones it has.
fn find<'a>(list: &'a [TensorInfo], name: &str, role: Role) -> Result<&'a TensorInfo, String> {
    let kind = role.kind();
    list.iter().find(|t| t.name == name).ok_or_else(|| {
        format!(
            "the model has no {kind} `{name}` (its {kind}s: {})",
            quoted(list.iter().map(|t| t.name.as_str()))
        )
    })
}

/// The element type of a declared tensor, if it is a tensor Weir handles and of the spec's
/// type.
fn element_type(tensor: &TensorInfo, spec: &TensorSpec, role: Role) -> Result<ElementType, String> {
    let kind = role.kind();
    let Some(ty) = ElementType::from_name(&tensor.dtype) else {
        return Err(format!(
            "{kind} `{}` is {}: only tensors of {} are fed",
            tensor.name,
            tensor.dtype,
            ElementType::ALL
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    match spec.ty {
        Some(want) if want != ty => Err(format!(
            "{kind} `{}` is {ty} {}, expected {want}: the element type is not {want}",
            tensor.name,
            dims(&tensor.shape)
        )),
        _ => Ok(ty),
    }
}

/// Checks one declared output: a tensor of the spec's type whose first dimension is the
/// batch and whose item has the spec's width, or (for a spec of any type) a sequence.
fn check_output(
    output: &TensorInfo,
    spec: &TensorSpec,
    batch: BatchAxis,
    max_batch: usize,
) -> Result<(), String> {
    let is_tensor = ElementType::from_name(&output.dtype).is_some();
    if !is_tensor {
        let kind = output.dtype.split('<').next().unwrap_or_default();
        return match (spec.ty, kind, batch) {
            (Some(want), _, _) => Err(format!(
                "output `{}` is {}, expected a tensor of {want}",
                output.name, output.dtype
            )),
            (None, "Sequence", _) | (None, _, BatchAxis::Whole) => Ok(()),
            (None, _, _) => Err(format!(
                "output `{}` is {}: not one item per record (only tensors and sequences are \
                 read per record)",
                output.name, output.dtype
            )),
        };
    }
    element_type(output, spec, Role::Output)?;
    if batch == BatchAxis::Whole {
        return Ok(());
    }
    let problem = |why: String| {
        format!(
            "output `{}` is {} {}, expected {} with N the batch: {why}",
            output.name,
            output.dtype,
            dims(&output.shape),
            match spec.width {
                Some(1) => "[N] or [N, 1]".to_string(),
                Some(w) => format!("[N, ...] with {w} values per record"),
                None => "[N, ...]".to_string(),
            }
        )
    };
    let Some((&first, rest)) = output.shape.split_first() else {
        return Err(problem("it is a scalar, not one item per record".into()));
    };
    let first_fits = match batch {
        BatchAxis::Dynamic => first < 0 || (first == 1 && max_batch.max(1) == 1),
        BatchAxis::Fixed(k) => first < 0 || first as usize == k,
        BatchAxis::Whole => true,
    };
    if !first_fits {
        let want = match batch {
            BatchAxis::Fixed(k) => format!("the inputs' batch of {k}"),
            _ => "dynamic (or 1 with max_batch 1)".into(),
        };
        return Err(problem(format!("the first dimension must be {want}")));
    }
    if rest.contains(&0) {
        return Err(problem("it has no values per record".into()));
    }
    let width = rest
        .iter()
        .try_fold(1i64, |n, &d| if d < 0 { None } else { n.checked_mul(d) });
    match (width, spec.width) {
        (Some(w), Some(want)) if w != want as i64 => Err(problem(format!(
            "it has {w} values per record, expected {want}"
        ))),
        _ => Ok(()),
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
    use crate::predict::TensorPredictConfig;

    fn tensor(name: &str, dtype: &str, shape: &[i64]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
        }
    }

    fn model(inputs: Vec<TensorInfo>, outputs: Vec<TensorInfo>) -> ModelInfo {
        ModelInfo {
            inputs,
            outputs,
            opsets: Default::default(),
            producer: None,
            graph_name: None,
            description: None,
            version: None,
            metadata: Default::default(),
        }
    }

    fn config(inputs: Vec<TensorSpec>, outputs: Vec<TensorSpec>) -> TensorPredictConfig {
        TensorPredictConfig {
            inputs,
            outputs,
            max_batch: 64,
            ..TensorPredictConfig::default()
        }
    }

    fn check_input(shape: &[i64]) -> Result<ModelLayout, String> {
        let info = model(
            vec![tensor("x", "f32", shape)],
            vec![tensor("y", "i64", &[-1])],
        );
        check_model(
            &info,
            &config(vec![TensorSpec::f32("x")], vec![TensorSpec::i64("y")]),
        )
    }

    #[test]
    fn the_first_input_dimension_is_the_batch_axis() {
        let layout = check_input(&[-1, 1, 8, 8]).unwrap();
        assert_eq!(layout.batch, BatchAxis::Dynamic);
        assert_eq!(layout.inputs[0].dims, vec![1, 8, 8]);
        assert_eq!(layout.inputs[0].fixed_width(), Some(64));
        assert_eq!(check_input(&[1, 64]).unwrap().batch, BatchAxis::Fixed(1));
        assert_eq!(
            check_input(&[-1, -1]).unwrap().inputs[0].fixed_width(),
            None
        );
        assert_eq!(
            check_input(&[]).unwrap_err(),
            "input `x` is a scalar f32: it has no batch axis to stack records on; give it as a \
             constant (or feed whole runs: Batching::Whole)"
        );
        assert!(check_input(&[0, 3])
            .unwrap_err()
            .contains("batch axis of 0"));
        // Every run is padded to a fixed batch: 2^40 rows is rejected at load, not met at
        // the first record (out of memory).
        assert!(check_input(&[1 << 40, 3])
            .unwrap_err()
            .contains("fixed batch of 1099511627776 rows"));
    }

    #[test]
    fn inputs_must_agree_on_a_fixed_batch() {
        let info = model(
            vec![tensor("a", "f32", &[6, 2]), tensor("b", "i32", &[-1])],
            vec![tensor("y", "i64", &[6])],
        );
        let c = config(
            vec![TensorSpec::f32("a"), TensorSpec::i32("b")],
            vec![TensorSpec::i64("y")],
        );
        assert_eq!(
            check_model(&info, &c).unwrap_err(),
            "the inputs disagree on the batch axis: `a` has a first dimension of 6, `b` of N"
        );
    }

    #[test]
    fn outputs_are_the_batch_first_and_of_the_width_asked_for() {
        let out = |shape: &[i64], spec: TensorSpec| {
            check_output(&tensor("t", "i64", shape), &spec, BatchAxis::Dynamic, 64)
        };
        let any = || TensorSpec::i64("t");
        let one = || TensorSpec::i64("t").with_width(1);
        assert!(out(&[-1, -1], any()).is_ok(), "the run tells the width");
        assert!(out(&[-1, 3, 2], any()).is_ok());
        assert!(out(&[-1], one()).is_ok());
        assert_eq!(
            out(&[-1, 2], one()).unwrap_err(),
            "output `t` is i64 [N, 2], expected [N] or [N, 1] with N the batch: it has 2 \
             values per record, expected 1"
        );
        assert!(out(&[-1, 0], any())
            .unwrap_err()
            .ends_with("it has no values per record"));
        assert!(out(&[1], any())
            .unwrap_err()
            .ends_with("the first dimension must be dynamic (or 1 with max_batch 1)"));
        assert!(out(&[], any()).unwrap_err().contains("scalar"));
        let fixed = check_output(
            &tensor("t", "i64", &[6, 2]),
            &any(),
            BatchAxis::Fixed(6),
            64,
        );
        assert!(fixed.is_ok());
        let seq = tensor("p", "Sequence<Map<String, f32>>", &[]);
        assert!(check_output(&seq, &TensorSpec::any("p"), BatchAxis::Dynamic, 64).is_ok());
        assert!(check_output(&seq, &TensorSpec::f32("p"), BatchAxis::Dynamic, 64).is_err());
    }

    #[test]
    fn models_without_inputs_or_with_unfed_inputs_are_rejected() {
        let none = model(vec![], vec![tensor("y", "i64", &[-1])]);
        let c = config(vec![TensorSpec::f32("x")], vec![TensorSpec::i64("y")]);
        assert!(check_model(&none, &c)
            .unwrap_err()
            .starts_with("the model has no inputs"));
        let two = model(
            vec![tensor("x", "f32", &[-1, 2]), tensor("scale", "f32", &[])],
            vec![tensor("y", "i64", &[-1])],
        );
        assert!(check_model(&two, &c)
            .unwrap_err()
            .contains("input `scale` is not fed"));
        let mut with_constant = c.clone();
        with_constant
            .constants
            .push(("scale".into(), Tensor::f32(vec![], vec![2.0]).unwrap()));
        assert!(check_model(&two, &with_constant).is_ok());
        with_constant.constants[0].1 = Tensor::f32(vec![1], vec![2.0]).unwrap();
        assert_eq!(
            check_model(&two, &with_constant).unwrap_err(),
            "constant `scale` is f32 [1], but the model's input is f32 []"
        );
    }
}
