//! A scored record as `weir predict` writes it: `{"id": ..., "outputs": {"name": value}}`.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weir_onnx::{value_to_json, Value};

/// A scored record: the request's id and every output, named. As JSON (a human-readable
/// format) it is `{"id": ..., "outputs": {"name": value, ...}}` with ZipMap maps as objects;
/// between processes it is a compact tuple.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredLine {
    /// The request's id, as JSON text.
    pub id: String,
    /// Output name and value, in the model's order.
    pub outputs: Vec<(String, Value)>,
}

#[derive(Serialize, Deserialize)]
struct Compact(String, Vec<(String, Value)>);

impl Serialize for ScoredLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return Compact(self.id.clone(), self.outputs.clone()).serialize(serializer);
        }
        let id: serde_json::Value =
            serde_json::from_str(&self.id).unwrap_or(serde_json::Value::Null);
        let mut outputs = serde_json::Map::new();
        for (name, value) in &self.outputs {
            outputs.insert(name.clone(), value_to_json(value));
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("id", &id)?;
        map.serialize_entry("outputs", &outputs)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ScoredLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Compact(id, outputs) = Compact::deserialize(deserializer)?;
        Ok(ScoredLine { id, outputs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_onnx::{Tensor, TensorData};

    #[test]
    fn json_names_outputs_and_bincode_round_trips() {
        let line = ScoredLine {
            id: "\"a\"".into(),
            outputs: vec![(
                "y".into(),
                Value::Tensor(Tensor::new(vec![2], TensorData::I64(vec![1, 2])).unwrap()),
            )],
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"id":"a","outputs":{"y":[1,2]}}"#
        );
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&line, cfg).unwrap();
        let (back, _): (ScoredLine, usize) =
            bincode::serde::decode_from_slice(&bytes, cfg.with_limit::<{ 1 << 20 }>()).unwrap();
        assert_eq!(back, line);
    }
}
