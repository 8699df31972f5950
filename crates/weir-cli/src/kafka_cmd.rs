//! `weir kafka …`: try the Kafka examples without other tools: start a local broker, create
//! topics, produce a JSON Lines file, dump a topic, publish a model version.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use weir_kafka::{
    create_topic, dump_topic, publish_model, KafkaConfig, OutgoingMessage, PublishedModel,
    TopicWriter,
};

/// `weir kafka`'s subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum KafkaCommand {
    /// Run a local Kafka-protocol broker (tansu, in memory) in the foreground.
    ///
    /// Install it first with `bash scripts/install-kafka.sh` (it builds tansu from crates.io
    /// into ~/.cache/weir).
    Broker {
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = 9092)]
        port: u16,
    },
    /// Create a topic (an existing one is left as it is).
    CreateTopic {
        /// The topic.
        topic: String,
        /// Partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Produce every line of a JSON Lines file (or `-` for stdin) as a message.
    Produce {
        /// The topic.
        topic: String,
        /// The file.
        file: PathBuf,
        /// A field of each line whose value becomes the message key.
        #[arg(long)]
        key_field: Option<String>,
        /// A field of each line naming the message's partition.
        #[arg(long)]
        partition_field: Option<String>,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Write the messages a topic holds now as JSON lines (partition, offset, timestamp,
    /// key, value, headers), or only their values.
    Dump {
        /// The topic.
        topic: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// At most this many messages.
        #[arg(long)]
        limit: Option<u64>,
        /// Only the values, one per line (a JSON Lines file when they are JSON).
        #[arg(long)]
        values: bool,
        #[command(flatten)]
        broker: BrokerArgs,
    },
    /// Publish a model version to a model topic (for `ModelTopic` and
    /// `weir predict --models kafka://…`).
    PublishModel {
        /// The model topic.
        topic: String,
        /// The model (`.onnx`), sent as the message value.
        #[arg(long, required_unless_present = "uri")]
        model: Option<PathBuf>,
        /// Send this `file://` URI instead of the bytes (readers load the file).
        #[arg(long, conflicts_with = "model")]
        uri: Option<String>,
        /// The model's name.
        #[arg(long)]
        name: String,
        /// The version.
        #[arg(long)]
        version: u64,
        #[command(flatten)]
        broker: BrokerArgs,
    },
}

/// Where the broker is.
#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
}

impl BrokerArgs {
    fn config(&self) -> KafkaConfig {
        KafkaConfig::new(&self.bootstrap)
    }
}

/// Runs a `weir kafka` subcommand.
pub fn run(command: KafkaCommand) -> Result<()> {
    match command {
        KafkaCommand::Broker { port } => broker(port),
        KafkaCommand::CreateTopic {
            topic,
            partitions,
            broker,
        } => {
            let created = create_topic(&broker.config(), &topic, partitions)?;
            let what = if created { "created" } else { "exists" };
            println!("{topic}: {what}");
            Ok(())
        }
        KafkaCommand::Produce {
            topic,
            file,
            key_field,
            partition_field,
            broker,
        } => {
            let fields = LineFields {
                key: key_field,
                partition: partition_field,
            };
            let sent = produce(&broker.config(), &topic, &file, &fields)?;
            println!("{sent} messages to {topic}");
            Ok(())
        }
        KafkaCommand::Dump {
            topic,
            output,
            limit,
            values,
            broker,
        } => {
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| path.display().to_string())?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let n = dump_topic(&broker.config(), &topic, limit, values, &mut out)?;
            out.flush()?;
            if output.is_some() {
                println!("{n} messages from {topic}");
            }
            Ok(())
        }
        KafkaCommand::PublishModel {
            topic,
            model,
            uri,
            name,
            version,
            broker,
        } => {
            let bytes;
            let published = match (&model, &uri) {
                (Some(path), _) => {
                    bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
                    PublishedModel::Bytes(&bytes)
                }
                (None, Some(uri)) => PublishedModel::Uri(uri),
                (None, None) => bail!("give --model FILE or --uri URI"),
            };
            publish_model(&broker.config(), &topic, &name, version, published)?;
            println!("{name} v{version} published to {topic}");
            Ok(())
        }
    }
}

/// The fields of a line that give a message's key and partition.
struct LineFields {
    key: Option<String>,
    partition: Option<String>,
}

impl LineFields {
    /// The key and partition of `line` (`line_no` names it in errors).
    fn of(&self, line: &str, line_no: usize) -> Result<(Option<Vec<u8>>, Option<i32>)> {
        if self.key.is_none() && self.partition.is_none() {
            return Ok((None, None));
        }
        let value: serde_json::Value = serde_json::from_str(line).with_context(|| {
            format!("line {line_no}: not JSON (--key-field/--partition-field need JSON lines)")
        })?;
        let key = self
            .key
            .as_ref()
            .and_then(|f| value.get(f))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            });
        let partition = match self.partition.as_ref().map(|f| (f, value.get(f))) {
            None => None,
            Some((f, v)) => Some(
                v.and_then(serde_json::Value::as_i64)
                    .and_then(|p| i32::try_from(p).ok())
                    .with_context(|| {
                        format!("line {line_no}: field `{f}` is not a partition number")
                    })?,
            ),
        };
        Ok((key, partition))
    }
}

fn produce(config: &KafkaConfig, topic: &str, file: &PathBuf, fields: &LineFields) -> Result<u64> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| file.display().to_string())?,
        ))
    };
    let mut writer = TopicWriter::new(config, topic)?;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", file.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let (key, partition) = fields.of(&line, i + 1)?;
        writer.send(&OutgoingMessage {
            value: line.as_bytes(),
            key: key.as_deref(),
            partition,
            headers: &[],
            timestamp: None,
        })?;
    }
    Ok(writer.finish()?)
}

/// Runs the cached tansu broker in the foreground.
fn broker(port: u16) -> Result<()> {
    let cache = std::env::var_os("WEIR_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weir")))
        .context("HOME is not set")?;
    let tansu = cache.join("tansu-0.6.0/bin/tansu");
    if !tansu.exists() {
        bail!(
            "no broker at {}: install it with `bash scripts/install-kafka.sh` (builds tansu \
             from crates.io, a few minutes once)",
            tansu.display()
        );
    }
    let url = format!("tcp://127.0.0.1:{port}");
    println!("broker on 127.0.0.1:{port} (tansu, in memory); Ctrl-C stops it");
    let status = std::process::Command::new(&tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .status()
        .with_context(|| tansu.display().to_string())?;
    if !status.success() {
        bail!("the broker exited with {status}");
    }
    Ok(())
}
