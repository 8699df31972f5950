//! Model versions through a topic (Kafka Streams' "model as a stream", TensorFlow.js on
//! Flink): each message of a model topic is one version of a named ONNX model, which the
//! predict operator swaps in exactly as it does for a model directory
//! ([`weir_onnx::ModelWatch`]).
//!
//! A message carries the name and version in the headers `weir-model-name` and
//! `weir-model-version`, and the model either as its value (the `.onnx` bytes) or, with the
//! header `weir-model-uri`, as a `file://` URI (or plain path) that the source reads and
//! ships as bytes, so that every worker on every host loads the same model. A message
//! without them becomes a dead letter naming `topic/partition@offset`.

use std::time::Duration;

use weir_core::{op, DataStream, EpochPolicy, Job, Op};
use weir_onnx::{ModelSource, ModelUpdate, MAX_MODEL_BYTES};

use crate::config::KafkaConfig;
use crate::error::KafkaError;
use crate::source::{KafkaSource, ReadKafka};
use crate::topic_io::{OutgoingMessage, TopicWriter};
use crate::value_format::MessageView;
use crate::StartingOffsets;

/// The header naming the model.
pub const NAME_HEADER: &str = "weir-model-name";
/// The header giving the version (an unsigned integer).
pub const VERSION_HEADER: &str = "weir-model-version";
/// The header giving the model's location instead of its bytes.
pub const URI_HEADER: &str = "weir-model-uri";

/// Where model versions come from: a topic, read from its start (the newest version of each
/// name wins), with 100 ms processing-time epochs so that a version applies promptly.
#[derive(Clone, Debug)]
pub struct ModelTopic {
    config: KafkaConfig,
    topic: String,
    epochs: Duration,
    stop_after_versions: Option<u64>,
    bounded: bool,
}

impl ModelTopic {
    /// Versions from `topic`.
    ///
    /// ```
    /// use weir_kafka::{KafkaConfig, ModelTopic};
    /// let models = ModelTopic::new(KafkaConfig::new("127.0.0.1:9092"), "models")
    ///     .stop_after_versions(2);
    /// # let _ = models;
    /// ```
    pub fn new(config: KafkaConfig, topic: impl Into<String>) -> Self {
        ModelTopic {
            config,
            topic: topic.into(),
            epochs: Duration::from_millis(100),
            stop_after_versions: None,
            bounded: false,
        }
    }

    /// The stream's processing-time epoch length (100 ms); give data sources the same
    /// [`EpochPolicy::Interval`] so that a version applies from the moment it arrived.
    pub fn epochs(mut self, every: Duration) -> Self {
        self.epochs = every;
        self
    }

    /// Reads the versions the topic holds when the job starts, and ends (for bounded jobs).
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// Ends the stream after this many messages (for bounded jobs, demos and tests).
    pub fn stop_after_versions(mut self, n: u64) -> Self {
        self.stop_after_versions = Some(n);
        self
    }
}

/// Reading model versions from a topic.
pub trait ReadModels<'s> {
    /// A [`ModelUpdate`] stream (one instance) from a model topic, for
    /// [`weir_onnx::PredictExt::predict`].
    fn read_models(&mut self, op: impl Into<Op>, models: ModelTopic)
        -> DataStream<'s, ModelUpdate>;
}

impl<'s> ReadModels<'s> for Job<'s> {
    fn read_models(
        &mut self,
        op_: impl Into<Op>,
        models: ModelTopic,
    ) -> DataStream<'s, ModelUpdate> {
        let o: Op = op_.into();
        let o = op(o.name().to_string())
            .parallelism(1)
            .epochs(EpochPolicy::Interval(models.epochs));
        let mut builder = KafkaSource::builder(models.config.clone())
            .topics([models.topic.clone()])
            .starting_offsets(StartingOffsets::Earliest)
            .partition_discovery(Duration::from_secs(5));
        if let Some(n) = models.stop_after_versions {
            builder = builder.stop_after(n);
        }
        if models.bounded {
            builder = builder.bounded();
        }
        let source = builder
            .decoder(std::rc::Rc::new(model_update))
            .expect("a model topic names one topic");
        self.read_kafka(o, source).map("model-update", |r| r.value)
    }
}

/// The newest version (the highest) of any model the topic holds now, if it holds one.
pub fn latest_model(config: &KafkaConfig, topic: &str) -> Result<Option<ModelUpdate>, KafkaError> {
    let found = weir_core::Collector::new();
    let sink = found.clone();
    let (config, topic_name) = (config.clone(), topic.to_string());
    let mut job_config = weir_core::Config::threads(1);
    job_config.verbose = false;
    weir_core::execute(job_config, move |job| {
        job.read_models(
            "models",
            ModelTopic::new(config.clone(), topic_name.clone()).bounded(),
        )
        .collect("latest", &sink);
        Ok(())
    })
    .map_err(|e| KafkaError::Config {
        what: format!("model topic {topic}"),
        message: e.to_string(),
    })?;
    Ok(found.take().into_iter().max_by_key(|u| u.version))
}

/// The update a model message carries.
fn model_update(m: &MessageView<'_>) -> Result<ModelUpdate, String> {
    let name = m
        .header(NAME_HEADER)
        .ok_or_else(|| format!("no `{NAME_HEADER}` header (expected the model's name)"))?;
    let version = m
        .header(VERSION_HEADER)
        .ok_or_else(|| format!("no `{VERSION_HEADER}` header (expected the model's version)"))?;
    let version: u64 = version
        .trim()
        .parse()
        .map_err(|_| format!("`{VERSION_HEADER}` is `{version}`, expected an unsigned integer"))?;
    let bytes = match m.header(URI_HEADER) {
        Some(uri) => read_uri(uri)?,
        None => match m.value {
            Some(v) if !v.is_empty() => v.to_vec(),
            _ => {
                return Err(format!(
                    "no model: an empty value and no `{URI_HEADER}` header"
                ))
            }
        },
    };
    Ok(ModelUpdate {
        name: name.to_string(),
        version,
        source: ModelSource::Bytes(bytes),
        candidate: false,
    })
}

/// The file a `file://` URI or a path names, read whole (a regular file of at most 2 GiB).
fn read_uri(uri: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if uri.contains("://") && !uri.starts_with("file://") {
        return Err(format!(
            "model URI `{uri}`: only file:// URIs and paths are supported"
        ));
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    // Checked before opening: opening a FIFO without a writer would block the source.
    if !std::fs::metadata(path)
        .map_err(|e| format!("model URI `{uri}`: {e}"))?
        .is_file()
    {
        return Err(format!("model URI `{uri}`: not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("model URI `{uri}`: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("model URI `{uri}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("model URI `{uri}`: not a regular file"));
    }
    // The length is checked while reading too: a file may grow.
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_MODEL_BYTES) as usize);
    file.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("model URI `{uri}`: {e}"))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(format!("model URI `{uri}`: more than 2 GiB"));
    }
    Ok(bytes)
}

/// What a published model version carries.
#[derive(Clone, Debug)]
pub enum PublishedModel<'a> {
    /// The `.onnx` bytes in the message.
    Bytes(&'a [u8]),
    /// A `file://` URI (or path) the readers load it from.
    Uri(&'a str),
}

/// Publishes version `version` of model `name` to `topic` and waits until the broker has it.
///
/// ```no_run
/// use weir_kafka::{publish_model, KafkaConfig, PublishedModel};
/// let bytes = std::fs::read("model.onnx").unwrap();
/// publish_model(&KafkaConfig::new("127.0.0.1:9092"), "models", "digits", 2,
///     PublishedModel::Bytes(&bytes)).unwrap();
/// ```
pub fn publish_model(
    config: &KafkaConfig,
    topic: &str,
    name: &str,
    version: u64,
    model: PublishedModel<'_>,
) -> Result<(), KafkaError> {
    let version_text = version.to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![
        (NAME_HEADER, name.as_bytes()),
        (VERSION_HEADER, version_text.as_bytes()),
    ];
    let value: &[u8] = match model {
        PublishedModel::Bytes(b) => b,
        PublishedModel::Uri(uri) => {
            headers.push((URI_HEADER, uri.as_bytes()));
            &[]
        }
    };
    let mut writer = TopicWriter::new(config, topic)?;
    writer.send(&OutgoingMessage {
        value,
        key: Some(name.as_bytes()),
        partition: None,
        headers: &headers,
        timestamp: None,
    })?;
    writer.finish().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URI naming a FIFO is refused without opening it: opening one that has no writer
    /// blocks, and the source with it.
    #[test]
    fn a_uri_naming_a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("model.onnx");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) runs");
        assert!(made.success());
        let uri = format!("file://{}", fifo.display());
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read_uri(&uri)).unwrap());
        // A guard against a hung test, not a timing assertion.
        let read = answer
            .recv_timeout(Duration::from_secs(60))
            .expect("reading the URI returns");
        assert!(read.unwrap_err().contains("not a regular file"));
        let file = dir.path().join("real.onnx");
        std::fs::write(&file, b"model").unwrap();
        assert_eq!(read_uri(file.to_str().unwrap()).unwrap(), b"model");
    }
}
