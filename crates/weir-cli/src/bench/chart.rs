//! The throughput-versus-parallelism chart of a results document, as SVG.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use serde_json::Value;

/// One line per benchmark: input records/s at each parallelism that ran.
pub fn throughput_chart(results: &Value, path: &Path) -> Result<()> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (name, entry) in results.as_object().into_iter().flatten() {
        let points: Vec<(f64, f64)> = entry
            .get("results")
            .and_then(|r| r.get("sweep"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r.get("parallelism")?.as_f64()?,
                    r.get("inputThroughput")?.as_f64()?,
                ))
            })
            .collect();
        if !points.is_empty() {
            series.push((name.clone(), points));
        }
    }
    let max_p = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0, f64::max);
    let max_t = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "weir bench: input throughput by parallelism",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0.5..max_p + 0.5, 0.0..max_t * 1.15)
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .x_desc("parallelism")
        .y_desc("records/s")
        .x_labels(max_p as usize + 1)
        .y_label_formatter(&|v| format!("{:.2e}", v))
        .draw()
        .map_err(|e| draw(&e))?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| draw(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| draw(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}
