//! `weir run job.json [-w N] [--explain]`: runs a JSON ML job (weir-flink-ml's `JsonJob`) and
//! saves the fitted model where the job says.

use anyhow::{Context, Result};
use weir_core::{execute, Config};
use weir_flink_ml::api::ModelCollector;
use weir_flink_ml::json_job::JsonJob;

/// Runs the JSON job in `path` with Weir's flags `args`.
pub fn run(path: &str, args: Vec<String>) -> Result<()> {
    let job = JsonJob::from_file(path.as_ref())?;
    let config = Config::from_args(std::iter::once(format!("weir run {path}")).chain(args))?;
    if let Some(extra) = config.program_args.first() {
        anyhow::bail!("unknown argument `{extra}` (a JSON job takes only Weir's flags)");
    }
    let explaining = config.explain.is_some();
    let process = config.process_index();
    let models = ModelCollector::new();
    let sink = models.clone();
    let build_job = job.clone();
    let report = execute(config, move |j| Ok(build_job.build(j, &sink)?))?;
    if explaining {
        return Ok(());
    }
    // The model data was gathered by worker 0, which runs in process 0.
    if process != 0 {
        return Ok(());
    }
    let fitted = match job.fits() {
        true => Some(models.model().context("the fitted model")?),
        false => None,
    };
    let model = fitted.as_deref().unwrap_or(job.stage());
    if let Some(dir) = job.save_model_path() {
        model
            .save(dir)
            .with_context(|| format!("cannot save the model to {}", dir.display()))?;
        println!("model saved to {}", dir.display());
    }
    if let Some(path) = job.export_onnx_path() {
        let onnx = weir_flink_ml::onnx::to_onnx(model, &job.scored_schema()?)
            .context("cannot export the model to ONNX")?;
        std::fs::write(path, onnx).with_context(|| format!("cannot write {}", path.display()))?;
        println!("ONNX model written to {}", path.display());
    }
    drop(report);
    Ok(())
}
