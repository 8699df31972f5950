//! The connector's errors.

/// What can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The client could not be configured or created.
    #[error("kafka client for {bootstrap}: {source}")]
    Client {
        /// The bootstrap servers.
        bootstrap: String,
        /// The client's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The broker did not answer in time.
    #[error("kafka broker {bootstrap} not reachable within {seconds} s ({what}): {source}")]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// How long was waited.
        seconds: u64,
        /// What was asked.
        what: String,
        /// The client's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A request for a topic or partition failed.
    #[error("kafka {what} on {bootstrap}: {source}")]
    Request {
        /// The bootstrap servers.
        bootstrap: String,
        /// The request (`create topic events`).
        what: String,
        /// The client's or broker's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A topic the job reads does not exist.
    #[error("kafka topic `{topic}` does not exist on {bootstrap} (create it first: weir kafka create-topic)")]
    NoSuchTopic {
        /// The bootstrap servers.
        bootstrap: String,
        /// The topic.
        topic: String,
    },
    /// The source or sink is configured wrongly.
    #[error("kafka {what}: {message}")]
    Config {
        /// What is configured (`source events`).
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Records could not be delivered.
    #[error(
        "kafka sink {operator}: {failed} record(s) not delivered to {bootstrap}, first: {first}"
    )]
    Delivery {
        /// The sink operator.
        operator: String,
        /// The bootstrap servers.
        bootstrap: String,
        /// How many records failed.
        failed: u64,
        /// The first failure.
        first: String,
    },
}

/// A connector error in a job's build closure (`KafkaSource::builder(..).json()?`).
impl From<KafkaError> for weir_core::WeirError {
    fn from(e: KafkaError) -> Self {
        weir_core::WeirError::Build {
            operator: "kafka".into(),
            message: e.to_string(),
        }
    }
}
