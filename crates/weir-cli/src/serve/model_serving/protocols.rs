//! The two serving protocols over one batcher: TensorFlow Serving's REST API
//! (`/v1/models/NAME[:predict|/metadata]`) and KServe's Open Inference Protocol v2
//! (`/v2/health/*`, `/v2/models/NAME[/ready|/infer]`).

use serde_json::{json, Map, Value as Json};
use weir_onnx::{tensor_from_json, value_to_json, ElementType, Tensor, TensorData, Value};

use super::super::answer::Answer;
use super::ServedModel;
use crate::scoring::request::{split_rows, tf_serving_requests, ScoreRequest};

/// Answers a request for the served model.
pub fn route(model: &ServedModel, method: &str, path: &str, body: &str) -> Answer {
    match (method, path) {
        ("GET", "/v2/health/live") => Answer::json(200, json!({"live": true})),
        ("GET", "/v2/health/ready") => Answer::json(200, json!({"ready": true})),
        ("GET", "/v2") => Answer::json(
            200,
            json!({"name": "weir", "version": env!("CARGO_PKG_VERSION"), "extensions": []}),
        ),
        ("GET", "/metrics") => super::metrics(model),
        _ => {
            if let Some(rest) = path.strip_prefix("/v1/models/") {
                tf_serving(model, method, rest, body)
            } else if let Some(rest) = path.strip_prefix("/v2/models/") {
                kserve(model, method, rest, body)
            } else {
                Answer::error(
                    404,
                    format!(
                        "no route {method} {path}; try POST /v1/models/{0}:predict, GET \
                         /v1/models/{0}, POST /v2/models/{0}/infer, GET /v2/models/{0}, GET \
                         /v2/health/ready",
                        model.name
                    ),
                )
            }
        }
    }
}

/// `NAME[/versions/V][:verb | /what]` → the verb or path after the name, if `NAME` (and `V`)
/// are the served ones.
fn after_name<'a>(
    model: &ServedModel,
    rest: &'a str,
    verb_separator: char,
) -> Result<&'a str, Answer> {
    let end = rest.find([verb_separator, '/']).unwrap_or(rest.len());
    let (name, mut tail) = rest.split_at(end);
    if name != model.name {
        return Err(Answer::error(
            404,
            format!("no model `{name}`; this server serves `{}`", model.name),
        ));
    }
    if let Some(versioned) = tail.strip_prefix("/versions/") {
        let end = versioned
            .find([verb_separator, '/'])
            .unwrap_or(versioned.len());
        let (version, after) = versioned.split_at(end);
        if version != model.version.to_string() {
            return Err(Answer::error(
                404,
                format!(
                    "no version {version} of `{}`; serving version {}",
                    model.name, model.version
                ),
            ));
        }
        tail = after;
    }
    Ok(tail)
}

fn tf_serving(model: &ServedModel, method: &str, rest: &str, body: &str) -> Answer {
    let tail = match after_name(model, rest, ':') {
        Ok(tail) => tail,
        Err(answer) => return answer,
    };
    match (method, tail) {
        ("GET", "") => Answer::json(
            200,
            json!({"model_version_status": [{
                "version": model.version.to_string(),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }]}),
        ),
        ("GET", "/metadata") => Answer::json(
            200,
            json!({
                "model_spec": {"name": model.name, "version": model.version.to_string()},
                "metadata": {"signature_def": {"signature_def": {"serving_default": {
                    "inputs": signature(&model.info.inputs),
                    "outputs": signature(&model.info.outputs),
                    "method_name": "tensorflow/serving/predict",
                }}}},
            }),
        ),
        ("POST", ":predict") => tf_predict(model, body),
        (_, ":predict") => Answer::error(405, "use POST for :predict"),
        _ => Answer::error(404, format!("no route {method} /v1/models/{rest}")),
    }
}

fn signature(tensors: &[weir_onnx::TensorInfo]) -> Json {
    let mut map = Map::new();
    for t in tensors {
        map.insert(
            t.name.clone(),
            json!({"name": t.name, "dtype": t.dtype, "tensor_shape": t.shape}),
        );
    }
    Json::Object(map)
}

/// `POST /v1/models/NAME:predict` with `instances` (rows) or `inputs` (columns).
fn tf_predict(model: &ServedModel, body: &str) -> Answer {
    let body: Json = match serde_json::from_str(body) {
        Ok(body) => body,
        Err(e) => return Answer::bad_request(format!("the body is not JSON: {e}")),
    };
    let columnar = body.get("instances").is_none();
    // Rows are checked against the limit before they are built, too (each is a request).
    let instances = body.get("instances").and_then(Json::as_array).map(Vec::len);
    if let Some(answer) = instances.and_then(|n| too_many_rows(model, n)) {
        return answer;
    }
    let Some(rows) = tf_serving_requests(&body, &model.types, false) else {
        return Answer::bad_request("expected {\"instances\": [...]} or {\"inputs\": ...}");
    };
    let values = match score_all(model, rows) {
        Ok(values) => values,
        Err(answer) => return answer,
    };
    let single = model.outputs.len() == 1;
    if columnar {
        let columns: Vec<Json> = (0..model.outputs.len())
            .map(|o| Json::Array(values.iter().map(|row| value_to_json(&row[o])).collect()))
            .collect();
        let outputs = if single {
            columns.into_iter().next().unwrap_or(Json::Null)
        } else {
            Json::Object(model.outputs.iter().cloned().zip(columns).collect())
        };
        return Answer::json(200, json!({ "outputs": outputs }));
    }
    let predictions: Vec<Json> = values
        .iter()
        .map(|row| {
            if single {
                value_to_json(&row[0])
            } else {
                Json::Object(
                    model
                        .outputs
                        .iter()
                        .cloned()
                        .zip(row.iter().map(value_to_json))
                        .collect(),
                )
            }
        })
        .collect();
    Answer::json(200, json!({ "predictions": predictions }))
}

/// Scores `rows` through the batcher; every row's values, or a 400 naming the first row
/// that failed.
fn score_all(model: &ServedModel, rows: Vec<ScoreRequest>) -> Result<Vec<Vec<Value>>, Answer> {
    if rows.is_empty() {
        return Err(Answer::bad_request("the request holds no rows"));
    }
    if let Some(answer) = too_many_rows(model, rows.len()) {
        return Err(answer);
    }
    let results = model
        .batcher
        .score(rows)
        .map_err(|e| Answer::error(503, e))?;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|why| Answer::bad_request(format!("row {i}: {why}"))))
        .collect()
}

/// A 413 when `rows` rows are more than the model takes in one request.
fn too_many_rows(model: &ServedModel, rows: usize) -> Option<Answer> {
    (rows > model.max_rows).then(|| {
        Answer::error(
            413,
            format!("{rows} rows in one request; at most {}", model.max_rows),
        )
    })
}

fn kserve(model: &ServedModel, method: &str, rest: &str, body: &str) -> Answer {
    let tail = match after_name(model, rest, '/') {
        Ok(tail) => tail,
        Err(answer) => return answer,
    };
    match (method, tail) {
        ("GET", "") => Answer::json(
            200,
            json!({
                "name": model.name,
                "versions": [model.version.to_string()],
                "platform": "onnxruntime_onnx",
                "inputs": v2_metadata(&model.info.inputs),
                "outputs": v2_metadata(&model.info.outputs),
            }),
        ),
        ("GET", "/ready") => Answer::json(200, json!({"name": model.name, "ready": true})),
        ("POST", "/infer") => kserve_infer(model, body),
        (_, "/infer") => Answer::error(405, "use POST for /infer"),
        _ => Answer::error(404, format!("no route {method} /v2/models/{rest}")),
    }
}

fn v2_metadata(tensors: &[weir_onnx::TensorInfo]) -> Json {
    Json::Array(
        tensors
            .iter()
            .map(|t| {
                let datatype = ElementType::from_name(&t.dtype).map_or("BYTES", v2_datatype);
                json!({"name": t.name, "datatype": datatype, "shape": t.shape})
            })
            .collect(),
    )
}

/// The protocol's name for an element type.
fn v2_datatype(ty: ElementType) -> &'static str {
    match ty {
        ElementType::Bool => "BOOL",
        ElementType::U8 => "UINT8",
        ElementType::U16 => "UINT16",
        ElementType::U32 => "UINT32",
        ElementType::U64 => "UINT64",
        ElementType::I8 => "INT8",
        ElementType::I16 => "INT16",
        ElementType::I32 => "INT32",
        ElementType::I64 => "INT64",
        ElementType::F16 => "FP16",
        ElementType::BF16 => "BF16",
        ElementType::F32 => "FP32",
        ElementType::F64 => "FP64",
        ElementType::String => "BYTES",
    }
}

/// Flat values of a v2 `data` field (nested arrays are flattened, as the protocol allows).
fn flat(data: &Json, into: &mut Vec<Json>) {
    match data {
        Json::Array(items) => items.iter().for_each(|i| flat(i, into)),
        other => into.push(other.clone()),
    }
}

/// One v2 input tensor, typed by the model's input of its name.
fn v2_input(model: &ServedModel, input: &Json) -> Result<(String, Tensor), String> {
    let name = input
        .get("name")
        .and_then(Json::as_str)
        .ok_or("an input without a `name`")?;
    let (_, ty) = model
        .types
        .0
        .iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| format!("the model has no input `{name}`"))?;
    let datatype = input
        .get("datatype")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if datatype != v2_datatype(*ty) {
        return Err(format!(
            "input `{name}` is {}, not {datatype:?}",
            v2_datatype(*ty)
        ));
    }
    let mut values = Vec::new();
    flat(input.get("data").unwrap_or(&Json::Null), &mut values);
    let shaped =
        json!({"shape": input.get("shape").cloned().unwrap_or(Json::Null), "data": values});
    let tensor = tensor_from_json(&shaped, *ty).map_err(|e| format!("input `{name}`: {e}"))?;
    Ok((name.to_string(), tensor))
}

/// `POST /v2/models/NAME/infer`: the inputs are a batch along their first dimension.
fn kserve_infer(model: &ServedModel, body: &str) -> Answer {
    let body: Json = match serde_json::from_str(body) {
        Ok(body) => body,
        Err(e) => return Answer::bad_request(format!("the body is not JSON: {e}")),
    };
    let Some(inputs) = body.get("inputs").and_then(Json::as_array) else {
        return Answer::bad_request(
            "expected {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}, ...]}",
        );
    };
    let mut named = Vec::with_capacity(inputs.len());
    for input in inputs {
        match v2_input(model, input) {
            Ok(t) => named.push(t),
            Err(e) => return Answer::bad_request(e),
        }
    }
    let mut ordered = Vec::with_capacity(model.types.0.len());
    for (name, _) in &model.types.0 {
        match named.iter().position(|(n, _)| n == name) {
            Some(i) => ordered.push(named.swap_remove(i)),
            None => return Answer::bad_request(format!("no input `{name}`")),
        }
    }
    let request = ScoreRequest {
        id: "0".into(),
        inputs: ordered,
        error: None,
    };
    let batch = request.inputs.first().and_then(|(_, t)| t.shape.first());
    if let Some(answer) = batch.and_then(|&n| too_many_rows(model, n)) {
        return answer;
    }
    let rows = split_rows(request);
    if let Some(error) = rows.first().and_then(|r| r.error.clone()) {
        return Answer::bad_request(error);
    }
    let n = rows.len();
    let values = match score_all(model, rows) {
        Ok(values) => values,
        Err(answer) => return answer,
    };
    let wanted: Option<Vec<&str>> = body.get("outputs").and_then(Json::as_array).map(|o| {
        o.iter()
            .filter_map(|x| x.get("name").and_then(Json::as_str))
            .collect()
    });
    let mut outputs = Vec::new();
    for (o, name) in model.outputs.iter().enumerate() {
        if wanted.as_ref().is_some_and(|w| !w.contains(&name.as_str())) {
            continue;
        }
        let column: Vec<&Value> = values.iter().map(|row| &row[o]).collect();
        outputs.push(v2_output(name, n, &column));
    }
    let mut answer = json!({
        "model_name": model.name,
        "model_version": model.version.to_string(),
        "outputs": outputs,
    });
    if let Some(id) = body.get("id") {
        answer["id"] = id.clone();
    }
    Answer::json(200, answer)
}

/// Output `name` of `n` rows as a v2 tensor: the rows' tensors stacked (`[n, ...]`), or,
/// for sequences and maps (ZipMap), `BYTES` holding each row's value as JSON text.
fn v2_output(name: &str, n: usize, column: &[&Value]) -> Json {
    let tensors: Option<Vec<&Tensor>> = column.iter().map(|v| v.as_tensor()).collect();
    if let Some(tensors) = tensors.filter(|t| !t.is_empty()) {
        let item = &tensors[0].shape;
        if tensors.iter().all(|t| &t.shape == item) {
            let mut data = TensorData::with_capacity(tensors[0].element_type(), 0);
            for t in &tensors {
                data.extend_from(&t.data);
            }
            let stacked = Tensor {
                shape: std::iter::once(n).chain(item.iter().copied()).collect(),
                data,
            };
            let flat = weir_onnx::tensor_to_shaped_json(&stacked);
            return json!({
                "name": name,
                "datatype": v2_datatype(stacked.element_type()),
                "shape": stacked.shape,
                "data": flat["data"],
            });
        }
    }
    let data: Vec<String> = column
        .iter()
        .map(|v| value_to_json(v).to_string())
        .collect();
    json!({"name": name, "datatype": "BYTES", "shape": [n], "data": data})
}
