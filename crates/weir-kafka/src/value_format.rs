//! How message values become records and records become values.

use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What a decoder sees of a message.
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    /// The value (`None`: a message without one, a tombstone).
    pub value: Option<&'a [u8]>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: &'a [(String, Vec<u8>)],
}

impl MessageView<'_> {
    /// The first header called `name`, as UTF-8 if it is.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// Decodes a message; the error becomes the dead letter's reason.
pub type DecodeFn<T> = Rc<dyn Fn(&MessageView<'_>) -> Result<T, String>>;

/// Encodes a record into a message value.
pub type EncodeFn<T> = Rc<dyn Fn(&T, &mut Vec<u8>) -> Result<(), String>>;

/// Values as JSON, decoded with serde.
pub fn json_decoder<T: DeserializeOwned + 'static>() -> DecodeFn<T> {
    Rc::new(|m: &MessageView<'_>| match m.value {
        None => Err("the message has no value (a tombstone); expected a JSON value".into()),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}")),
    })
}

/// Values as raw bytes (a message without a value gives an empty vector).
pub fn bytes_decoder() -> DecodeFn<Vec<u8>> {
    Rc::new(|m: &MessageView<'_>| Ok(m.value.unwrap_or_default().to_vec()))
}

/// Records as JSON values.
pub fn json_encoder<T: Serialize + 'static>() -> EncodeFn<T> {
    Rc::new(|record: &T, out: &mut Vec<u8>| {
        serde_json::to_writer(out, record).map_err(|e| e.to_string())
    })
}

/// Byte records as they are.
pub fn bytes_encoder<T: AsRef<[u8]> + 'static>() -> EncodeFn<T> {
    Rc::new(|record: &T, out: &mut Vec<u8>| {
        out.extend_from_slice(record.as_ref());
        Ok(())
    })
}
