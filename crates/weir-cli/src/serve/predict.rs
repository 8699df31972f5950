//! `POST /predict`: reads feature vectors from JSON and asks the served model about them.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use weir_ml::Checkpoint;

use super::answer::Answer;
use super::state::Serving;

/// The number of features the served model expects.
fn width(checkpoint: &Checkpoint) -> usize {
    checkpoint.model.features
}

/// The one place that asks the model: the label and probabilities of one raw feature
/// vector (standardized first when the model was trained with a scaler), or why there are
/// none (`what` names the vector in the message).
fn classify(checkpoint: &Checkpoint, what: &str, x: &[f32]) -> Result<Value, String> {
    let probabilities = checkpoint.probabilities(x);
    if probabilities.iter().any(|p| !p.is_finite()) {
        return Err(format!(
            "the model's probabilities for {what} are not finite (its scores overflow a 32-bit \
             float); are the features scaled as in training?"
        ));
    }
    let label = (0..probabilities.len()).fold(0, |best, c| {
        if probabilities[c] > probabilities[best] {
            c
        } else {
            best
        }
    });
    Ok(json!({"label": label, "probabilities": probabilities}))
}

/// Reads one feature vector of `width` numbers, each finite as an `f32`.
fn features(value: &Value, what: &str, width: usize) -> Result<Vec<f32>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("{what} must be an array of {width} numbers"))?;
    if items.len() != width {
        return Err(format!(
            "{what} has {} values, the model expects {width}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_f64() {
            Some(f) if (f as f32).is_finite() => Ok(f as f32),
            Some(_) => Err(format!(
                "{what}[{i}] is {v}, outside the range of a 32-bit float (±3.4e38)"
            )),
            None => Err(format!("{what}[{i}] is {v}, expected a finite number")),
        })
        .collect()
}

/// Reads and scores one feature vector; a 400 or 422 answer if it cannot.
fn score(checkpoint: &Checkpoint, what: &str, row: &Value) -> Result<Value, Answer> {
    let x = features(row, what, width(checkpoint)).map_err(Answer::bad_request)?;
    classify(checkpoint, what, &x).map_err(|e| Answer::error(422, e))
}

/// Scores `{"x": [...]}` or `{"instances": [[...], ...]}` with the served model.
pub(super) fn predict(serving: &Serving, body: &str) -> Answer {
    let Some(checkpoint) = serving.model() else {
        return Answer::error(503, "no model in the store yet");
    };
    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Answer::bad_request(format!("invalid JSON: {e}")),
    };
    if let Some(x) = request.get("x") {
        return match score(&checkpoint, "x", x) {
            Ok(mut answer) => {
                serving.predictions.fetch_add(1, Ordering::Relaxed);
                answer["model_version"] = json!(checkpoint.version);
                Answer::json(200, answer)
            }
            Err(answer) => answer,
        };
    }
    let Some(batch) = request.get("instances") else {
        return Answer::bad_request(
            "expected {\"x\": [numbers]} or {\"instances\": [[numbers], …]}",
        );
    };
    let Some(rows) = batch.as_array() else {
        return Answer::bad_request("instances must be an array of feature arrays");
    };
    let mut predictions = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        match score(&checkpoint, &format!("instances[{i}]"), row) {
            Ok(prediction) => predictions.push(prediction),
            Err(answer) => return answer,
        }
    }
    serving
        .predictions
        .fetch_add(rows.len() as u64, Ordering::Relaxed);
    Answer::json(
        200,
        json!({"predictions": predictions, "model_version": checkpoint.version}),
    )
}
