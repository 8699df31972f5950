//! Scoring records with a loaded model: gathering records into runs along the model's batch
//! axis, checking every record's items, running the session, checking that the outputs are
//! one item per record, and handing each record its items. The predict operator and
//! [`ModelRunner`](crate::ModelRunner) both score through here.

use ort::session::SessionInputValue;
use weir_core::OperatorMetrics;

use crate::input_rows::{InputRows, RowShape};
use crate::loaded_model::Loaded;
use crate::model_check::BatchAxis;
use crate::ort_values::{input_value, read_output};
use crate::output_row::{OutputColumn, OutputRow};
use crate::predict::TensorPredictConfig;
use crate::tensor::{element_count, shape_text};
use crate::tensor_spec::NanPolicy;

/// What scoring a batch needs besides the models.
pub(crate) struct Scorer<'a, F, A, R> {
    pub(crate) features: &'a F,
    pub(crate) attach: &'a A,
    /// What a record that cannot be scored becomes: `reject(record, reason, model version)`.
    pub(crate) reject: &'a R,
    pub(crate) config: &'a TensorPredictConfig,
    /// Where to count versions and shadow agreement (the operator's metrics).
    pub(crate) metrics: Option<&'a OperatorMetrics>,
}

/// The records of one run being gathered: their rows, and the item shape they share.
struct RunRows<T> {
    rows: InputRows,
    records: Vec<T>,
    /// Every input's item shape in this run, once `shaped` (set by its first record).
    shapes: Vec<RowShape>,
    shaped: bool,
    /// Whether `shapes` are the model's fixed item shapes (so records that fit them need no
    /// comparison).
    fixed: bool,
    /// Most records a run takes.
    size: usize,
}

/// Buffers kept across the runs of a batch, so that a run allocates nothing of its own: the
/// columns' lengths before a record, and a record's item shapes.
struct Scratch {
    lengths: Vec<usize>,
    shapes: Vec<RowShape>,
}

/// How a record's items fit the model.
enum Fit {
    /// Every item has the model's fixed shape (nothing was built).
    Fixed,
    /// The items' shapes are in the shapes buffer.
    Shaped,
}

impl<F, A, R> Scorer<'_, F, A, R> {
    /// Records a run of `model` takes: `max_batch` on a dynamic batch axis, the model's
    /// fixed batch, or one.
    fn run_size(&self, model: &Loaded) -> usize {
        match model.layout.batch {
            BatchAxis::Dynamic => self.config.max_batch.max(1),
            BatchAxis::Fixed(k) => k,
            BatchAxis::Whole => 1,
        }
    }

    /// Scores records in runs of `model` (see [`Scorer::run_size`]); with a `shadow` model,
    /// scores the same rows with it too and counts agreement on the first output.
    pub(crate) fn score<T, U, E>(
        &self,
        model: &mut Loaded,
        batch: Vec<T>,
        mut shadow: Option<&mut Loaded>,
    ) -> Vec<Result<U, E>>
    where
        F: Fn(&T, &mut InputRows),
        A: Fn(T, &OutputRow<'_>) -> U,
        R: Fn(T, String, u64) -> E,
    {
        let run_size = self.run_size(model);
        let mut out = Vec::with_capacity(batch.len());
        // Room for a full run of the widest input, within reason.
        let widest = model
            .layout
            .inputs
            .iter()
            .map(|l| l.fixed_width().unwrap_or(1))
            .max()
            .unwrap_or(1);
        let capacity = run_size.saturating_mul(widest).min(1 << 20);
        let mut run = RunRows {
            rows: InputRows::new(model.layout.inputs.iter().map(|l| l.ty), capacity),
            records: Vec::with_capacity(run_size.min(batch.len())),
            shapes: Vec::with_capacity(model.layout.inputs.len()),
            shaped: false,
            fixed: false,
            size: run_size,
        };
        let mut scratch = Scratch {
            lengths: Vec::with_capacity(model.layout.inputs.len()),
            shapes: Vec::with_capacity(model.layout.inputs.len()),
        };
        let mut records = batch.into_iter();
        let mut carry = None;
        loop {
            run.rows.clear();
            run.shaped = false;
            run.fixed = false;
            let next = carry.take();
            carry = self.fill(model, next, &mut records, &mut run, &mut scratch, &mut out);
            if run.records.is_empty() {
                break;
            }
            self.score_run(model, shadow.as_deref_mut(), &mut run, &mut out);
        }
        out
    }

    /// Appends records' items to `run` until it holds `run_size` records, `records` ends, or
    /// a record's item shape differs from the run's (that record is returned, for the next
    /// run); a record with a bad item becomes a dead letter instead.
    fn fill<T, U, E>(
        &self,
        model: &Loaded,
        first: Option<T>,
        records: &mut impl Iterator<Item = T>,
        run: &mut RunRows<T>,
        scratch: &mut Scratch,
        out: &mut Vec<Result<U, E>>,
    ) -> Option<T>
    where
        F: Fn(&T, &mut InputRows),
        R: Fn(T, String, u64) -> E,
    {
        let Scratch { lengths, shapes } = scratch;
        let mut next = first;
        while let Some(record) = next.take().or_else(|| records.next()) {
            // Append the item straight into the run; take it back if it is bad.
            run.rows.lengths(lengths);
            run.rows.start_row();
            (self.features)(&record, &mut run.rows);
            match self.item_shapes(model, &run.rows, lengths, shapes) {
                Err(reason) => {
                    run.rows.truncate(lengths);
                    out.push(Err((self.reject)(record, reason, model.version)));
                }
                Ok(fit) => {
                    if !Self::joins_run(model, run, fit, shapes) {
                        run.rows.truncate(lengths);
                        return Some(record);
                    }
                    run.records.push(record);
                    if run.records.len() == run.size {
                        break;
                    }
                }
            }
        }
        None
    }

    /// Whether a record whose items fit as `fit` (their shapes in `shapes` if `Shaped`) can
    /// join `run`: its items have the run's shapes. The run's first record sets them.
    fn joins_run<T>(
        model: &Loaded,
        run: &mut RunRows<T>,
        fit: Fit,
        shapes: &mut Vec<RowShape>,
    ) -> bool {
        let fixed = matches!(fit, Fit::Fixed);
        if fixed {
            if run.fixed {
                return true;
            }
            shapes.clear();
            shapes.extend(
                model
                    .layout
                    .inputs
                    .iter()
                    .filter_map(|l| l.fixed.as_ref().map(|(_, s)| s.clone())),
            );
        }
        if run.shaped {
            return run.shapes == *shapes;
        }
        run.shapes.clear();
        run.shapes.extend(shapes.iter().cloned());
        run.shaped = true;
        run.fixed = fixed;
        true
    }

    /// The item shape of every input of the record appended after `lengths`, or why the
    /// record cannot be fed: the features function rejected it, an item does not have the
    /// model's shape, or a value is NaN or infinite where that is rejected.
    fn item_shapes(
        &self,
        model: &Loaded,
        rows: &InputRows,
        lengths: &[usize],
        shapes: &mut Vec<RowShape>,
    ) -> Result<Fit, String> {
        if let Some(reason) = &rows.rejection {
            return Err(reason.clone());
        }
        let inputs = &model.layout.inputs;
        let fixed = !rows.touched
            && inputs.iter().enumerate().all(|(i, layout)| {
                let got = rows.columns[i].len() - lengths[i];
                layout
                    .fixed
                    .as_ref()
                    .is_some_and(|(width, _)| *width == got)
            });
        if fixed {
            self.check_finite(model, rows, lengths)?;
            return Ok(Fit::Fixed);
        }
        shapes.clear();
        for (i, layout) in model.layout.inputs.iter().enumerate() {
            let got = rows.columns[i].len() - lengths[i];
            let given = rows.shapes[i].as_deref();
            let shape = match (&layout.fixed, given) {
                // The common case, without building anything: every dimension is fixed.
                (Some((width, shape)), None) if *width == got => shape.clone(),
                _ => item_shape(&layout.dims, given, got)
                    .map_err(|why| format!("input `{}`: {why}", self.config.inputs[i].name))?,
            };
            shapes.push(shape);
        }
        self.check_finite(model, rows, lengths)?;
        Ok(Fit::Shaped)
    }

    /// Whether the record appended after `lengths` has a NaN or infinity where its input
    /// rejects them.
    fn check_finite(
        &self,
        model: &Loaded,
        rows: &InputRows,
        lengths: &[usize],
    ) -> Result<(), String> {
        for (i, layout) in model.layout.inputs.iter().enumerate() {
            if layout.nan == NanPolicy::Reject {
                if let Some((at, value)) = rows.columns[i].first_non_finite(lengths[i]) {
                    let name = &self.config.inputs[i].name;
                    return Err(format!("input `{name}`: value {at} is {value}"));
                }
            }
        }
        Ok(())
    }

    /// Runs `model` (and `shadow`) on the records gathered in `run` and attaches the outputs
    /// to them; if the run fails or its outputs are not one item per record, every record
    /// of the run becomes a dead letter with the reason. A run short of a fixed batch size
    /// is padded with copies of its last record.
    fn score_run<T, U, E>(
        &self,
        model: &mut Loaded,
        shadow: Option<&mut Loaded>,
        run: &mut RunRows<T>,
        out: &mut Vec<Result<U, E>>,
    ) where
        A: Fn(T, &OutputRow<'_>) -> U,
        R: Fn(T, String, u64) -> E,
    {
        let (n, version) = (run.records.len(), model.version);
        let mut size = n;
        if let BatchAxis::Fixed(k) = model.layout.batch {
            let widths: Vec<usize> = run.shapes.iter().map(|s| s.iter().product()).collect();
            run.rows.pad(&widths, k - n);
            size = k;
        }
        let shaped = RunInput {
            rows: &run.rows,
            shapes: &run.shapes,
            size,
        };
        let scored = execute_run(model, &shaped, self.config, |outputs| {
            if let Some(shadow) = shadow {
                self.compare_with_shadow(shadow, &shaped, n, outputs);
            }
            out.extend(run.records.drain(..).enumerate().map(|(row, record)| {
                let row = OutputRow {
                    columns: outputs,
                    row,
                    version,
                };
                Ok((self.attach)(record, &row))
            }));
        });
        match scored {
            Ok(()) => self.count(&format!("v{version}"), n as u64),
            Err(reason) => out.extend(
                run.records
                    .drain(..)
                    .map(|record| Err((self.reject)(record, reason.clone(), version))),
            ),
        }
    }

    /// Scores the same rows with `shadow` and counts on how many of the first `n` its first
    /// output agrees with the primary's `outputs` (`shadow_agree`, `shadow_disagree`); a
    /// shadow run that fails or returns outputs that are not one item per record counts its
    /// rows as `shadow_failed`.
    fn compare_with_shadow(
        &self,
        shadow: &mut Loaded,
        input: &RunInput<'_>,
        n: usize,
        outputs: &[OutputColumn<'_>],
    ) {
        if shadow.layout.batch != BatchAxis::Dynamic
            && shadow.layout.batch != BatchAxis::Whole
            && input.size != self.run_size(shadow)
        {
            self.count("shadow_failed", n as u64);
            return;
        }
        let agree = execute_run(shadow, input, self.config, |shadow_outputs| {
            (0..n)
                .filter(|&row| {
                    let primary = OutputRow {
                        columns: outputs,
                        row,
                        version: 0,
                    };
                    let other = OutputRow {
                        columns: shadow_outputs,
                        row,
                        version: 0,
                    };
                    primary.same_first_output(&other)
                })
                .count() as u64
        });
        match agree {
            Ok(agree) => {
                self.count("shadow_agree", agree);
                self.count("shadow_disagree", n as u64 - agree);
            }
            Err(_) => self.count("shadow_failed", n as u64),
        }
    }

    /// Adds `n` to counter `name`, if there are metrics.
    fn count(&self, name: &str, n: u64) {
        if let Some(metrics) = self.metrics {
            metrics.count(name, n);
        }
    }
}

/// The shape of a record's item of an input whose item dimensions the model declares as
/// `dims` (`-1` open), given the shape the record set (if any) and the number of values it
/// appended; or why they do not fit.
fn item_shape(dims: &[i64], given: Option<&[usize]>, values: usize) -> Result<RowShape, String> {
    let declared = crate::model_info::dims(dims);
    if let Some(given) = given {
        let fits = given.len() == dims.len()
            && dims
                .iter()
                .zip(given)
                .all(|(&d, &g)| d < 0 || d as usize == g);
        if !fits {
            return Err(format!(
                "expected an item of shape {declared}, got {}",
                shape_text(given)
            ));
        }
        if element_count(given) != Some(values) {
            return Err(format!(
                "an item of shape {} has {} values, got {values}",
                shape_text(given),
                element_count(given).map_or("too many".into(), |c| c.to_string())
            ));
        }
        return Ok(given.iter().copied().collect());
    }
    // Checked: a model's fixed dimensions may multiply past usize.
    let Some(fixed) = dims
        .iter()
        .filter(|&&d| d >= 0)
        .try_fold(1usize, |all, &d| all.checked_mul(d as usize))
    else {
        return Err(format!(
            "the model's item shape {declared} has more values than memory can hold"
        ));
    };
    let open = dims.iter().filter(|&&d| d < 0).count();
    match open {
        0 if fixed == values => Ok(dims.iter().map(|&d| d as usize).collect()),
        0 => Err(format!(
            "expected an item of shape {declared} ({fixed} values), got {values} values"
        )),
        1 if fixed > 0 && values % fixed == 0 && values > 0 => Ok(dims
            .iter()
            .map(|&d| if d < 0 { values / fixed } else { d as usize })
            .collect()),
        1 => Err(format!(
            "expected an item of shape {declared} (a multiple of {fixed} values, at least \
             one), got {values} values"
        )),
        _ => Err(format!(
            "the model's item shape {declared} has {open} open dimensions: the record must \
             give its shape (InputRows::set_shape)"
        )),
    }
}

/// A run's inputs: the records' rows, their item shapes, and the number of rows.
struct RunInput<'a> {
    rows: &'a InputRows,
    shapes: &'a [RowShape],
    size: usize,
}

/// One `Session::run` on `input` (plus the configured constants); hands the outputs (in
/// configured order, each checked to be one item per record, or whole) to `with_outputs`
/// while they are alive, and returns what it returns, or why the run failed or its outputs
/// do not fit.
fn execute_run<R>(
    model: &mut Loaded,
    input: &RunInput<'_>,
    config: &TensorPredictConfig,
    with_outputs: impl FnOnce(&[OutputColumn<'_>]) -> R,
) -> Result<R, String> {
    let text = |e: ort::Error| e.to_string();
    let whole = model.layout.batch == BatchAxis::Whole;
    let mut inputs: Vec<(&str, SessionInputValue<'_>)> =
        Vec::with_capacity(input.rows.columns.len() + config.constants.len());
    for (i, column) in input.rows.columns.iter().enumerate() {
        let item = input.shapes.get(i).map(|s| &s[..]).unwrap_or_default();
        let shape: Vec<usize> = if whole {
            item.to_vec()
        } else {
            std::iter::once(input.size)
                .chain(item.iter().copied())
                .collect()
        };
        let value = input_value(column, shape).map_err(text)?;
        inputs.push((config.inputs[i].name.as_str(), value));
    }
    for (name, tensor) in &config.constants {
        let value = input_value(&tensor.data, tensor.shape.clone()).map_err(text)?;
        inputs.push((name.as_str(), value));
    }
    let outputs = model.session.run(inputs).map_err(text)?;
    let mut columns = Vec::with_capacity(config.outputs.len());
    for spec in &config.outputs {
        let value = outputs
            .get(spec.name.as_str())
            .ok_or_else(|| format!("model {} returned no output `{}`", model.model, spec.name))?;
        let output = read_output(value)
            .map_err(|e| format!("output `{}` of model {}: {e}", spec.name, model.model))?;
        columns.push(if whole {
            OutputColumn::whole(output)
        } else {
            OutputColumn::per_record(output, input.size, spec, &model.model)?
        });
    }
    Ok(with_outputs(&columns))
}

#[cfg(test)]
mod tests {
    use super::item_shape;

    /// A model's fixed dimensions that multiply past `usize` make records dead letters with
    /// a reason; the product overflowed (a panic in debug builds, a wrong width in release).
    #[test]
    fn fixed_dimensions_that_overflow_are_a_reason_not_a_panic() {
        let dims = [1i64 << 40, 1 << 40, -1];
        let reason = item_shape(&dims, None, 6).unwrap_err();
        assert!(reason.contains("more values than memory"), "{reason}");
        assert_eq!(item_shape(&[2, -1], None, 6).unwrap().len(), 2);
    }
}
