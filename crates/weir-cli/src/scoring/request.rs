//! What a scoring request is, read from JSON: an id and named input tensors, typed by the
//! model's declared inputs. Reading never fails the caller: a request that does not fit
//! carries why, and becomes a dead letter (or a 400) where it is scored.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use weir_onnx::{tensor_from_json, ElementType, Tensor};

/// The inputs a model takes: names and element types, in the operator's input order.
#[derive(Clone, Debug)]
pub struct InputTypes(pub Vec<(String, ElementType)>);

impl InputTypes {
    /// The inputs of `info` (tensor inputs only; others are named in the model's rejection).
    pub fn of(info: &weir_onnx::ModelInfo) -> Self {
        InputTypes(
            info.inputs
                .iter()
                .map(|t| {
                    let ty = ElementType::from_name(&t.dtype).unwrap_or(ElementType::F32);
                    (t.name.clone(), ty)
                })
                .collect(),
        )
    }

    fn names(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|(n, _)| format!("`{n}`")).collect();
        names.join(", ")
    }
}

/// One record to score: its id (as JSON text) and one tensor per model input, in order; or
/// why it cannot be scored. As JSON (in a dead letter) it reads like the line it came from:
/// `{"id": ..., "inputs": {"name": nested array}}`; between processes it is compact.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRequest {
    /// The id as JSON text (`null` if the line had none).
    pub id: String,
    /// One tensor per model input, in the order of [`InputTypes`], with its name.
    pub inputs: Vec<(String, Tensor)>,
    /// Why the request cannot be scored.
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct CompactRequest(String, Vec<(String, Tensor)>, Option<String>);

impl Serialize for ScoreRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if !serializer.is_human_readable() {
            let compact = CompactRequest(self.id.clone(), self.inputs.clone(), self.error.clone());
            return compact.serialize(serializer);
        }
        let id: Json = serde_json::from_str(&self.id).unwrap_or(Json::Null);
        let inputs: serde_json::Map<String, Json> = self
            .inputs
            .iter()
            .map(|(name, t)| (name.clone(), weir_onnx::tensor_to_json(t)))
            .collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &id)?;
        map.serialize_entry("inputs", &inputs)?;
        if let Some(error) = &self.error {
            map.serialize_entry("error", error)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ScoreRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let CompactRequest(id, inputs, error) = CompactRequest::deserialize(deserializer)?;
        Ok(ScoreRequest { id, inputs, error })
    }
}

impl ScoreRequest {
    fn failed(id: String, error: String) -> Self {
        ScoreRequest {
            id,
            inputs: Vec::new(),
            error: Some(error),
        }
    }

    /// A request from one instance: an object of input name → value, or (for a model with
    /// one input) the value itself.
    pub fn from_instance(id: String, instance: &Json, types: &InputTypes) -> Self {
        match instance {
            Json::Object(fields) if types.0.len() > 1 || is_named(fields, types) => {
                let mut inputs = Vec::with_capacity(types.0.len());
                for (name, ty) in &types.0 {
                    let Some(value) = fields.get(name) else {
                        return Self::failed(
                            id,
                            format!("no input `{name}` (the model's inputs: {})", types.names()),
                        );
                    };
                    match tensor_from_json(value, *ty) {
                        Ok(t) => inputs.push((name.clone(), t)),
                        Err(e) => return Self::failed(id, format!("input `{name}`: {e}")),
                    }
                }
                if let Some(extra) = fields.keys().find(|k| types.0.iter().all(|(n, _)| n != *k)) {
                    return Self::failed(
                        id,
                        format!(
                            "unknown input `{extra}` (the model's inputs: {})",
                            types.names()
                        ),
                    );
                }
                ScoreRequest {
                    id,
                    inputs,
                    error: None,
                }
            }
            value => match &types.0[..] {
                [(name, ty)] => match tensor_from_json(value, *ty) {
                    Ok(t) => ScoreRequest {
                        id,
                        inputs: vec![(name.clone(), t)],
                        error: None,
                    },
                    Err(e) => Self::failed(id, format!("input `{name}`: {e}")),
                },
                _ => Self::failed(
                    id,
                    format!(
                        "expected an object of the model's inputs ({})",
                        types.names()
                    ),
                ),
            },
        }
    }

    /// A request from a `weir predict` line: `{"id": ..., "inputs": {"name": value, ...}}`.
    pub fn from_line(line: &LineRequest, types: &InputTypes) -> Self {
        let id = line.id.to_string();
        match &line.inputs {
            Some(inputs) => Self::from_instance(id, inputs, types),
            None => Self::failed(
                id,
                "no `inputs`: expected {\"id\": ..., \"inputs\": {\"name\": value, ...}}".into(),
            ),
        }
    }
}

/// Whether `fields` names the single input (rather than being a tensor in object form).
fn is_named(fields: &serde_json::Map<String, Json>, types: &InputTypes) -> bool {
    !(fields.contains_key("shape") && fields.contains_key("data"))
        || types.0.iter().any(|(n, _)| fields.contains_key(n))
}

/// A `weir predict` input line as JSON. It holds JSON values, so it must not cross
/// processes: it is typed into a [`ScoreRequest`] where it is read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LineRequest {
    /// Any JSON value, copied to the output.
    #[serde(default)]
    pub id: Json,
    /// Input name → value.
    pub inputs: Option<Json>,
}

/// The requests of a TensorFlow Serving body: `{"instances": [...]}` (rows: one request per
/// instance, ids their indices) or `{"inputs": ...}` (columnar: named batch tensors, split
/// along their first dimension, or with `whole` one request). `None` if `body` is neither.
pub fn tf_serving_requests(
    body: &Json,
    types: &InputTypes,
    whole: bool,
) -> Option<Vec<ScoreRequest>> {
    let fields = body.as_object()?;
    if let Some(instances) = fields.get("instances") {
        let Json::Array(instances) = instances else {
            return Some(vec![ScoreRequest::failed(
                "null".into(),
                "`instances` must be an array".into(),
            )]);
        };
        return Some(
            instances
                .iter()
                .enumerate()
                .map(|(i, instance)| ScoreRequest::from_instance(i.to_string(), instance, types))
                .collect(),
        );
    }
    let columns = fields.get("inputs")?;
    let request = ScoreRequest::from_instance("0".into(), columns, types);
    if whole || request.error.is_some() {
        return Some(vec![request]);
    }
    Some(split_rows(request))
}

/// A columnar request's tensors split along their first dimension into one request per row.
pub fn split_rows(request: ScoreRequest) -> Vec<ScoreRequest> {
    let rows = request
        .inputs
        .first()
        .and_then(|(_, t)| t.shape.first().copied());
    let Some(rows) = rows else {
        return vec![ScoreRequest::failed(
            request.id,
            "columnar inputs need a batch dimension".into(),
        )];
    };
    if let Some((_, t)) = request
        .inputs
        .iter()
        .find(|(_, t)| t.shape.first() != Some(&rows))
    {
        return vec![ScoreRequest::failed(
            request.id,
            format!(
                "columnar inputs disagree on the batch size: {rows} and {:?}",
                t.shape.first()
            ),
        )];
    }
    (0..rows)
        .map(|row| ScoreRequest {
            id: row.to_string(),
            inputs: request
                .inputs
                .iter()
                .map(|(name, t)| (name.clone(), row_of(t, row, rows)))
                .collect(),
            error: None,
        })
        .collect()
}

/// Row `row` of `tensor` (of `rows` rows).
fn row_of(tensor: &Tensor, row: usize, rows: usize) -> Tensor {
    let width = tensor.data.len() / rows.max(1);
    Tensor {
        shape: tensor.shape[1..].to_vec(),
        data: tensor.data.slice(row * width..(row + 1) * width),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use weir_onnx::TensorData;

    fn types() -> InputTypes {
        InputTypes(vec![
            ("x".into(), ElementType::F32),
            ("k".into(), ElementType::I32),
        ])
    }

    #[test]
    fn a_line_names_every_input() {
        let line: LineRequest =
            serde_json::from_value(json!({"id": "a", "inputs": {"x": [1.0, 2.0], "k": 3}}))
                .unwrap();
        let r = ScoreRequest::from_line(&line, &types());
        assert_eq!(r.error, None);
        assert_eq!(r.id, "\"a\"");
        assert_eq!(r.inputs[1].1.data, TensorData::I32(vec![3]));
        let line: LineRequest =
            serde_json::from_value(json!({"id": 1, "inputs": {"x": [1.0]}})).unwrap();
        assert_eq!(
            ScoreRequest::from_line(&line, &types()).error.unwrap(),
            "no input `k` (the model's inputs: `x`, `k`)"
        );
        let line: LineRequest =
            serde_json::from_value(json!({"id": 1, "inputs": {"x": [1.0], "k": "no"}})).unwrap();
        assert_eq!(
            ScoreRequest::from_line(&line, &types()).error.unwrap(),
            "input `k`: expected an integer (i32), got \"no\""
        );
    }

    #[test]
    fn tf_serving_rows_and_columns() {
        let one = InputTypes(vec![("x".into(), ElementType::F32)]);
        let rows =
            tf_serving_requests(&json!({"instances": [[1.0, 2.0], [3.0, 4.0]]}), &one, false)
                .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].inputs[0].1.shape, vec![2]);
        let columns = tf_serving_requests(
            &json!({"inputs": {"x": [[1.0], [2.0], [3.0]]}}),
            &one,
            false,
        )
        .unwrap();
        assert_eq!(columns.len(), 3);
        assert_eq!(columns[2].inputs[0].1.data, TensorData::F32(vec![3.0]));
        let whole = tf_serving_requests(&json!({"inputs": [[1.0], [2.0]]}), &one, true).unwrap();
        assert_eq!(whole[0].inputs[0].1.shape, vec![2, 1]);
        assert!(tf_serving_requests(&json!({"other": 1}), &one, false).is_none());
    }
}
