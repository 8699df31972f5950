//! Where `weir predict` reads records and models and writes predictions: files, or Kafka
//! topics given as `kafka://HOST:PORT/TOPIC`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use weir_core::{op, DataStream, Job, WeirError};
use weir_onnx::{ModelInfo, ModelUpdate};

use crate::predict_file::PredictArgs;
use crate::scoring::request::{InputTypes, LineRequest, ScoreRequest};
use crate::scoring::scored::ScoredLine;

/// A file or directory, or a Kafka topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A path.
    File(PathBuf),
    /// `kafka://BOOTSTRAP/TOPIC`.
    Kafka {
        /// Bootstrap servers (`host:port[,host:port]`).
        bootstrap: String,
        /// The topic.
        topic: String,
    },
}

impl Endpoint {
    /// `kafka://HOST:PORT/TOPIC` as a topic, anything else as a path.
    pub fn parse(text: &str) -> Result<Self> {
        let Some(rest) = text.strip_prefix("kafka://") else {
            return Ok(Endpoint::File(PathBuf::from(text)));
        };
        match rest.split_once('/') {
            Some((bootstrap, topic))
                if !bootstrap.is_empty() && !topic.is_empty() && !topic.contains('/') =>
            {
                Ok(Endpoint::Kafka {
                    bootstrap: bootstrap.to_string(),
                    topic: topic.to_string(),
                })
            }
            _ => bail!("`{text}`: expected kafka://HOST:PORT/TOPIC"),
        }
    }
}

/// The endpoints of one `weir predict` run.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The records.
    pub input: Endpoint,
    /// The predictions.
    pub output: Endpoint,
    /// The model file, or the model topic.
    pub models: Endpoint,
    follow: bool,
    model_versions: Option<u64>,
    /// The newest version the model topic held when the run started: scoring starts with
    /// it, and the topic's versions after it follow.
    newest: Option<ModelUpdate>,
}

impl Endpoints {
    /// The endpoints `args` name.
    pub fn of(args: &PredictArgs) -> Result<Self> {
        let models = match (&args.model, &args.models) {
            (Some(_), Some(_)) => bail!("give --model FILE or --models kafka://…, not both"),
            (Some(path), None) => Endpoint::File(path.clone()),
            (None, Some(topic)) => match Endpoint::parse(topic)? {
                Endpoint::File(_) => bail!("--models {topic}: expected kafka://HOST:PORT/TOPIC"),
                kafka => kafka,
            },
            (None, None) => bail!("give --model FILE or --models kafka://HOST:PORT/TOPIC"),
        };
        let endpoints = Endpoints {
            input: Endpoint::parse(&args.input.to_string_lossy())?,
            output: Endpoint::parse(&args.output.to_string_lossy())?,
            models,
            follow: args.follow,
            model_versions: args.model_versions,
            newest: None,
        };
        #[cfg(not(feature = "kafka"))]
        if [&endpoints.input, &endpoints.output, &endpoints.models]
            .iter()
            .any(|e| matches!(e, Endpoint::Kafka { .. }))
        {
            bail!("this weir was built without the `kafka` feature: kafka:// endpoints need it");
        }
        Ok(endpoints)
    }

    /// The model's interface: from the file, or from the newest version the model topic
    /// holds (kept in a temporary file while the job runs, and the version scoring starts
    /// with).
    pub fn model_interface(
        &mut self,
        _args: &PredictArgs,
    ) -> Result<(ModelInfo, Option<tempfile::NamedTempFile>)> {
        match &self.models {
            Endpoint::File(path) => Ok((weir_onnx::inspect(path)?, None)),
            Endpoint::Kafka { bootstrap, topic } => {
                let (info, file, newest) = kafka::model_interface(bootstrap, topic)?;
                self.newest = Some(newest);
                Ok((info, file))
            }
        }
    }

    /// The score requests.
    pub fn read_requests<'s>(
        &self,
        job: &mut Job<'s>,
        input: &Endpoint,
        types: &InputTypes,
    ) -> Result<DataStream<'s, ScoreRequest>, WeirError> {
        let types = types.clone();
        let lines = match input {
            Endpoint::File(path) => job.read_jsonl::<LineRequest>("input", path),
            Endpoint::Kafka { bootstrap, topic } => {
                kafka::read_lines(job, bootstrap, topic, self.follow)?
            }
        };
        Ok(lines.map("parse", move |line| ScoreRequest::from_line(&line, &types)))
    }

    /// The model stream.
    pub fn models<'s>(&self, job: &mut Job<'s>) -> Result<DataStream<'s, ModelUpdate>, WeirError> {
        match &self.models {
            Endpoint::File(path) => Ok(job.from_vec(
                op("model").parallelism(1),
                vec![ModelUpdate::from_path("model", 1, path)],
            )),
            Endpoint::Kafka { bootstrap, topic } => {
                let versions =
                    kafka::read_models(job, bootstrap, topic, self.follow, self.model_versions);
                match (&self.newest, self.model_versions) {
                    // `--model-versions N` replays the topic's first N versions.
                    (Some(newest), None) => Ok(from_newest(job, newest.clone(), versions)),
                    _ => Ok(versions),
                }
            }
        }
    }

    /// Writes the predictions.
    pub fn write(&self, scored: DataStream<'_, ScoredLine>) -> Result<(), WeirError> {
        match &self.output {
            Endpoint::File(dir) => scored.write_jsonl("write", dir),
            Endpoint::Kafka { bootstrap, topic } => kafka::write(scored, bootstrap, topic),
        }
        Ok(())
    }
}

/// The model stream of a model topic read from its start, as Kafka Streams bootstraps a
/// global table before it processes records: `newest` (the newest version when the run
/// started) first, so that it scores every record from the first, then only the topic's
/// versions after it (the older ones it replays are dropped).
fn from_newest<'s>(
    job: &mut Job<'s>,
    newest: ModelUpdate,
    versions: DataStream<'s, ModelUpdate>,
) -> DataStream<'s, ModelUpdate> {
    let (name, version) = (newest.name.clone(), newest.version);
    let first = job.from_vec(op("newest-model").parallelism(1), vec![newest]);
    let later = versions.filter(op("after-newest").parallelism(1), move |u: &ModelUpdate| {
        u.candidate || u.name != name || u.version > version
    });
    first.union(op("models-from-newest").parallelism(1), later)
}

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use weir_kafka::{
        latest_model, KafkaConfig, KafkaSink, KafkaSource, ModelTopic, ReadKafka, ReadModels,
        WriteKafka,
    };
    use weir_onnx::ModelSource;

    pub(super) fn model_interface(
        bootstrap: &str,
        topic: &str,
    ) -> Result<(ModelInfo, Option<tempfile::NamedTempFile>, ModelUpdate)> {
        let latest = latest_model(&KafkaConfig::new(bootstrap), topic)?.with_context(|| {
            format!(
                "the model topic {topic} on {bootstrap} holds no model version yet (publish \
                 one: weir kafka publish-model {topic} --model M.onnx --name NAME --version 1)"
            )
        })?;
        let file = tempfile::Builder::new().suffix(".onnx").tempfile()?;
        match &latest.source {
            ModelSource::Bytes(b) => std::fs::write(file.path(), b)?,
            ModelSource::Path(p) => {
                std::fs::copy(p, file.path()).with_context(|| p.clone())?;
            }
        }
        let info = weir_onnx::inspect(file.path())
            .with_context(|| format!("model {} v{} from {topic}", latest.name, latest.version))?;
        Ok((info, Some(file), latest))
    }

    pub(super) fn read_lines<'s>(
        job: &mut Job<'s>,
        bootstrap: &str,
        topic: &str,
        follow: bool,
    ) -> Result<DataStream<'s, LineRequest>, WeirError> {
        let mut builder = KafkaSource::builder(KafkaConfig::new(bootstrap)).topics([topic]);
        if !follow {
            builder = builder.bounded();
        }
        let source = builder.json::<LineRequest>()?;
        let workers = job.workers();
        Ok(job
            .read_kafka(op("input").parallelism(workers), source)
            .map("value", |r| r.value))
    }

    pub(super) fn read_models<'s>(
        job: &mut Job<'s>,
        bootstrap: &str,
        topic: &str,
        follow: bool,
        versions: Option<u64>,
    ) -> DataStream<'s, ModelUpdate> {
        let mut models = ModelTopic::new(KafkaConfig::new(bootstrap), topic);
        if let Some(n) = versions {
            models = models.stop_after_versions(n);
        } else if !follow {
            models = models.bounded();
        }
        job.read_models("models", models)
    }

    pub(super) fn write(scored: DataStream<'_, ScoredLine>, bootstrap: &str, topic: &str) {
        let sink = KafkaSink::builder(KafkaConfig::new(bootstrap), topic)
            .json::<ScoredLine>()
            .key(|s: &ScoredLine| Some(s.id.clone().into_bytes()));
        scored.write_kafka("write", sink);
    }
}

#[cfg(not(feature = "kafka"))]
mod kafka {
    //! Without the `kafka` feature, [`Endpoints::of`] refuses kafka:// endpoints first.
    use super::*;

    fn unsupported() -> ! {
        unreachable!("kafka:// endpoints are refused when parsed without the kafka feature")
    }
    pub(super) fn model_interface(
        _: &str,
        _: &str,
    ) -> Result<(ModelInfo, Option<tempfile::NamedTempFile>, ModelUpdate)> {
        unsupported()
    }
    pub(super) fn read_lines<'s>(
        _: &mut Job<'s>,
        _: &str,
        _: &str,
        _: bool,
    ) -> Result<DataStream<'s, LineRequest>, WeirError> {
        unsupported()
    }
    pub(super) fn read_models<'s>(
        _: &mut Job<'s>,
        _: &str,
        _: &str,
        _: bool,
        _: Option<u64>,
    ) -> DataStream<'s, ModelUpdate> {
        unsupported()
    }
    pub(super) fn write(_: DataStream<'_, ScoredLine>, _: &str, _: &str) {
        unsupported()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_urls_parse_and_bad_ones_are_named() {
        assert_eq!(
            Endpoint::parse("kafka://127.0.0.1:9092/digits").unwrap(),
            Endpoint::Kafka {
                bootstrap: "127.0.0.1:9092".into(),
                topic: "digits".into()
            }
        );
        assert_eq!(
            Endpoint::parse("in.jsonl").unwrap(),
            Endpoint::File("in.jsonl".into())
        );
        for bad in [
            "kafka://",
            "kafka://host:1",
            "kafka:///t",
            "kafka://h:1/a/b",
        ] {
            let e = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected kafka://HOST:PORT/TOPIC"), "{e}");
        }
    }
}
