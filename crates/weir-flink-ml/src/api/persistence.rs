//! Save and load in Flink ML's layout: `DIR/metadata` (JSON: `className`, `timestamp`,
//! `paramMap`, plus stage-specific fields such as `numStages`), model data under `DIR/data/`
//! (one JSON Lines file per model-data table, its schema in the metadata), and pipelines'
//! stages under `DIR/stages/<i>`.

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value as Json};

use super::model_data::TableData;
use super::registry;
use super::stage::Stage;
use crate::error::MlError;
use crate::table::{json_row, DataType, RowBatch, Schema, DEFAULT_BATCH_ROWS};

/// The format version Weir writes into metadata files.
pub const FORMAT_VERSION: u64 = 1;

/// Longest metadata file read (model data goes to its own files).
const MAX_METADATA_BYTES: u64 = 64 << 20;

/// The metadata JSON of a stage (without stage-specific extras).
pub fn metadata(stage: &(impl Stage + ?Sized)) -> Map<String, Json> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut map = Map::new();
    map.insert("className".into(), json!(stage.class_name()));
    map.insert("timestamp".into(), json!(timestamp));
    map.insert("paramMap".into(), Json::Object(stage.param_map().to_json()));
    map.insert("formatVersion".into(), json!(FORMAT_VERSION));
    map
}

/// Writes `DIR/metadata` with `extra` fields added.
pub fn write_metadata(
    stage: &(impl Stage + ?Sized),
    dir: &Path,
    extra: Map<String, Json>,
) -> Result<(), MlError> {
    fs::create_dir_all(dir).map_err(MlError::io(dir))?;
    let mut map = metadata(stage);
    map.extend(extra);
    let path = dir.join("metadata");
    let text = serde_json::to_string_pretty(&Json::Object(map)).expect("JSON");
    fs::write(&path, text + "\n").map_err(MlError::io(path))
}

/// Saves a stage: metadata, and its in-memory model data if it has any.
pub fn save_stage(stage: &(impl Stage + ?Sized), dir: &Path) -> Result<(), MlError> {
    let mut extra = Map::new();
    if let Some(data) = stage.model_data() {
        let data_dir = dir.join("data");
        fs::create_dir_all(&data_dir).map_err(MlError::io(&data_dir))?;
        let mut tables = Vec::new();
        for (i, table) in data.iter().enumerate() {
            let file = format!("data/{i}.jsonl");
            write_table(table, &dir.join(&file))?;
            tables.push(json!({"file": file, "schema": schema_json(&table.schema)}));
        }
        extra.insert("modelData".into(), Json::Array(tables));
    } else if stage.model_data_tables() > 0 {
        return Err(MlError::NoModelData(stage.short_name().to_string()));
    }
    write_metadata(stage, dir, extra)
}

fn write_table(table: &TableData, path: &Path) -> Result<(), MlError> {
    let file = fs::File::create(path).map_err(MlError::io(path))?;
    let mut out = BufWriter::new(file);
    for batch in &table.batches {
        for i in 0..batch.rows() {
            let line = batch.json_row(&table.schema, i).to_string();
            writeln!(out, "{line}").map_err(MlError::io(path))?;
        }
    }
    out.flush().map_err(MlError::io(path))
}

/// A schema as JSON: `[["name", "Type"], ...]`.
pub fn schema_json(schema: &Schema) -> Json {
    Json::Array(
        schema
            .fields()
            .iter()
            .map(|f| json!([f.name, f.data_type.name()]))
            .collect(),
    )
}

/// A schema from its JSON form `[["name", "Type"], ...]`.
pub fn schema_from_json(json: &Json) -> Result<Schema, String> {
    let fields = json
        .as_array()
        .ok_or("a schema must be an array of [name, type] pairs")?;
    let mut pairs = Vec::new();
    for field in fields {
        let (Some(name), Some(t)) = (
            field.get(0).and_then(Json::as_str),
            field.get(1).and_then(Json::as_str),
        ) else {
            return Err(format!("a schema field must be [name, type], got {field}"));
        };
        let data_type =
            DataType::parse(t).ok_or_else(|| format!("unknown column type `{t}` of `{name}`"))?;
        pairs.push((name.to_string(), data_type));
    }
    Ok(Schema::new(pairs))
}

/// Reads `DIR/metadata`.
pub fn read_metadata(dir: &Path) -> Result<Map<String, Json>, MlError> {
    let path = dir.join("metadata");
    let file = fs::File::open(&path).map_err(MlError::io(&path))?;
    let len = file.metadata().map_err(MlError::io(&path))?.len();
    if len > MAX_METADATA_BYTES {
        return Err(saved(
            &path,
            format!("{len} bytes is too large for a metadata file"),
        ));
    }
    let json: Json = serde_json::from_reader(BufReader::new(file))
        .map_err(|e| saved(&path, format!("not valid JSON: {e}")))?;
    match json {
        Json::Object(map) => Ok(map),
        _ => Err(saved(&path, "must be a JSON object".into())),
    }
}

fn saved(path: &Path, message: String) -> MlError {
    MlError::Saved {
        path: path.to_path_buf(),
        message,
    }
}

/// Loads a stage saved by [`Stage::save`] (or by Flink ML, for stages without model data):
/// the class comes from the registry, the params from `paramMap` (unknown params are
/// errors), model data from `data/`.
///
/// ```
/// use weir_flink_ml::api::{load_stage, Stage};
/// use weir_flink_ml::feature::Binarizer;
/// use weir_flink_ml::param::WithParams;
/// let dir = tempfile::tempdir().unwrap();
/// let binarizer = Binarizer::new().set(&weir_flink_ml::param::shared::INPUT_COLS, vec!["x".into()]).unwrap();
/// binarizer.save(dir.path()).unwrap();
/// let loaded = load_stage(dir.path()).unwrap();
/// assert_eq!(loaded.class_name(), "org.apache.flink.ml.feature.binarizer.Binarizer");
/// assert_eq!(loaded.param_map().to_json(), binarizer.param_map().to_json());
/// ```
pub fn load_stage(dir: &Path) -> Result<Box<dyn Stage>, MlError> {
    let meta = read_metadata(dir)?;
    let path = dir.join("metadata");
    let class = meta
        .get("className")
        .and_then(Json::as_str)
        .ok_or_else(|| saved(&path, "`className` must be a string".into()))?;
    if let Some(stage) = registry::load_composite(class, dir, &meta)? {
        return Ok(stage);
    }
    let mut stage = registry::new_stage(class)?;
    if let Some(params) = meta.get("paramMap") {
        let params = params
            .as_object()
            .ok_or_else(|| saved(&path, "`paramMap` must be an object".into()))?;
        stage.param_map_mut().update_from_json(params)?;
    }
    if let Some(tables) = meta.get("modelData") {
        stage.set_model_data(read_model_data(dir, tables)?)?;
    }
    Ok(stage)
}

fn read_model_data(dir: &Path, tables: &Json) -> Result<Vec<TableData>, MlError> {
    let path = dir.join("metadata");
    let tables = tables
        .as_array()
        .ok_or_else(|| saved(&path, "`modelData` must be an array".into()))?;
    tables
        .iter()
        .map(|t| {
            let file = t
                .get("file")
                .and_then(Json::as_str)
                .filter(|f| !f.contains("..") && !f.starts_with('/'))
                .ok_or_else(|| saved(&path, "`modelData[].file` must be a relative path".into()))?;
            let schema = schema_from_json(t.get("schema").unwrap_or(&Json::Null))
                .map_err(|e| saved(&path, e))?;
            read_table(schema, dir.join(file))
        })
        .collect()
}

fn read_table(schema: Schema, path: PathBuf) -> Result<TableData, MlError> {
    let file = fs::File::open(&path).map_err(MlError::io(&path))?;
    let mut rows = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(MlError::io(&path))?;
        if line.trim().is_empty() {
            continue;
        }
        let json: Json = serde_json::from_str(&line)
            .map_err(|e| saved(&path, format!("line {}: not valid JSON: {e}", n + 1)))?;
        rows.push(
            json_row(&schema, &json).map_err(|e| saved(&path, format!("line {}: {e}", n + 1)))?,
        );
    }
    let batches = RowBatch::from_rows(&schema, rows, DEFAULT_BATCH_ROWS)?;
    Ok(TableData { schema, batches })
}
