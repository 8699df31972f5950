//! Topics: create, list partitions, wait for a broker (what `weir kafka` and the tests use).

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::error::KafkaError;

/// Creates `topic` with `partitions` partitions (replication 1). A topic that exists is
/// left as it is (and `Ok(false)` returned); a created one gives `Ok(true)`.
pub fn create_topic(
    config: &KafkaConfig,
    topic: &str,
    partitions: i32,
) -> Result<bool, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = config.create(&config.client_config())?;
    let options = AdminOptions::new().operation_timeout(Some(config.request_timeout()));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let what = format!("create topic {topic}");
    let results = futures_executor::block_on(admin.create_topics(&[new], &options))
        .map_err(|source| unreachable_or(config, &what, source))?;
    match results.into_iter().next() {
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(KafkaError::Request {
            bootstrap: config.bootstrap().to_string(),
            what,
            source: Box::new(rdkafka::error::KafkaError::AdminOp(code)),
        }),
        _ => {
            wait_for_topic(config, topic, partitions)?;
            Ok(true)
        }
    }
}

/// The partitions of `topic` (sorted), or [`KafkaError::NoSuchTopic`].
pub fn partitions(config: &KafkaConfig, topic: &str) -> Result<Vec<i32>, KafkaError> {
    let consumer = metadata_client(config)?;
    partitions_with(&consumer, config, topic)
}

/// Every topic's name (for topic patterns), sorted.
pub fn topics(config: &KafkaConfig) -> Result<Vec<String>, KafkaError> {
    let consumer = metadata_client(config)?;
    let metadata = consumer
        .fetch_metadata(None, config.request_timeout())
        .map_err(|source| unreachable_or(config, "list topics", source))?;
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    Ok(names)
}

pub(crate) fn metadata_client(config: &KafkaConfig) -> Result<BaseConsumer, KafkaError> {
    config.create(&config.client_config())
}

pub(crate) fn partitions_with(
    consumer: &BaseConsumer,
    config: &KafkaConfig,
    topic: &str,
) -> Result<Vec<i32>, KafkaError> {
    let what = format!("metadata of topic {topic}");
    let metadata = consumer
        .fetch_metadata(Some(topic), config.request_timeout())
        .map_err(|source| unreachable_or(config, &what, source))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(no_such_topic(config, topic));
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(no_such_topic(config, topic));
    }
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort_unstable();
    Ok(ps)
}

fn no_such_topic(config: &KafkaConfig, topic: &str) -> KafkaError {
    KafkaError::NoSuchTopic {
        bootstrap: config.bootstrap().to_string(),
        topic: topic.to_string(),
    }
}

/// Waits until the metadata shows `topic` with `partitions` partitions.
fn wait_for_topic(config: &KafkaConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let consumer = metadata_client(config)?;
    let deadline = Instant::now() + config.request_timeout();
    loop {
        match partitions_with(&consumer, config, topic) {
            Ok(ps) if ps.len() as i32 >= partitions => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ if Instant::now() >= deadline => return Err(no_such_topic(config, topic)),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A request error, as [`KafkaError::Unreachable`] when the broker did not answer.
pub(crate) fn unreachable_or(
    config: &KafkaConfig,
    what: &str,
    source: rdkafka::error::KafkaError,
) -> KafkaError {
    let timed_out = matches!(
        source.rdkafka_error_code(),
        Some(RDKafkaErrorCode::OperationTimedOut)
            | Some(RDKafkaErrorCode::RequestTimedOut)
            | Some(RDKafkaErrorCode::BrokerTransportFailure)
            | Some(RDKafkaErrorCode::AllBrokersDown)
    );
    if timed_out {
        KafkaError::Unreachable {
            bootstrap: config.bootstrap().to_string(),
            seconds: config.request_timeout().as_secs().max(1),
            what: what.to_string(),
            source: Box::new(source),
        }
    } else {
        KafkaError::Request {
            bootstrap: config.bootstrap().to_string(),
            what: what.to_string(),
            source: Box::new(source),
        }
    }
}
