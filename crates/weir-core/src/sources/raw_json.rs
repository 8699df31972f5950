//! [`RawJsonObject`]: a JSON object kept as its text, for jobs that route or hash records
//! by what they are without decoding their fields.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One JSON object, kept as the exact text it was read from (without the whitespace around
/// it). Read with [`Job::read_jsonl`](crate::Job::read_jsonl), every line that is a JSON
/// object becomes one of these and every other line a dead letter; written with
/// `write_jsonl`, it is written as it was read.
///
/// Between workers and in checkpoints it travels as a string (formats that are not human
/// readable, such as bincode, see a plain string).
///
/// ```
/// use weir_core::RawJsonObject;
/// let line: RawJsonObject = serde_json::from_str(r#"{"a": [1, 2]}"#).unwrap();
/// assert_eq!(line.text(), r#"{"a": [1, 2]}"#);
/// assert!(serde_json::from_str::<RawJsonObject>("[1, 2]").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawJsonObject(String);

impl RawJsonObject {
    /// The object's text.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The object's text, owned.
    pub fn into_text(self) -> String {
        self.0
    }
}

impl fmt::Debug for RawJsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RawJsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawJsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return String::deserialize(deserializer).map(RawJsonObject);
        }
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if !text.starts_with('{') {
            let kind = match text.as_bytes().first() {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            return Err(D::Error::custom(format!(
                "expected a JSON object, found {kind}"
            )));
        }
        Ok(RawJsonObject(text.to_string()))
    }
}

impl Serialize for RawJsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_str(&self.0);
        }
        let raw = serde_json::value::RawValue::from_string(self.0.clone())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_their_text_and_other_values_are_refused() {
        let line: RawJsonObject = serde_json::from_str("  {\"b\":1,  \"a\":2} ").unwrap();
        assert_eq!(line.text(), "{\"b\":1,  \"a\":2}");
        assert_eq!(serde_json::to_string(&line).unwrap(), line.text());
        for (bad, kind) in [
            ("[1]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a number"),
            ("null", "null"),
            ("{\"a\":", "EOF"),
        ] {
            let e = serde_json::from_str::<RawJsonObject>(bad).unwrap_err();
            assert!(e.to_string().contains(kind), "{bad}: {e}");
        }
    }

    #[test]
    fn bincode_carries_it_as_a_string() {
        let line = RawJsonObject("{\"a\":1}".into());
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&line, config).unwrap();
        let (back, _): (RawJsonObject, usize) =
            bincode::serde::decode_from_slice(&bytes, config.with_limit::<1024>()).unwrap();
        assert_eq!(back, line);
    }
}
