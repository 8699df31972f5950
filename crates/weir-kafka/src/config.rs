//! Connection settings shared by sources, sinks and the admin helpers.

use std::time::Duration;

use rdkafka::config::{ClientConfig, FromClientConfig};

use crate::error::KafkaError;

/// Where the brokers are and how to talk to them: `bootstrap.servers` plus any librdkafka
/// property (`KafkaConfig::new("127.0.0.1:9092").set("client.id", "scorer")`).
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    bootstrap: String,
    properties: Vec<(String, String)>,
    timeout: Duration,
}

impl KafkaConfig {
    /// Brokers at `bootstrap` (`host:port[,host:port…]`), with a 10 s request timeout.
    ///
    /// ```
    /// let c = weir_kafka::KafkaConfig::new("127.0.0.1:9092").set("client.id", "docs");
    /// assert_eq!(c.bootstrap(), "127.0.0.1:9092");
    /// ```
    pub fn new(bootstrap: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap: bootstrap.into(),
            properties: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets a librdkafka property (see librdkafka's CONFIGURATION.md).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// How long metadata, offset and admin requests may take before they fail (10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }

    /// The librdkafka configuration: bootstrap servers, connection timeouts bounded by the
    /// request timeout, then the user's properties (which win).
    pub(crate) fn client_config(&self) -> ClientConfig {
        self.client_config_with(&[])
    }

    /// [`KafkaConfig::client_config`] with `defaults` that the user's properties override.
    pub(crate) fn client_config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        let ms = self.timeout.as_millis().max(1).to_string();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("socket.connection.setup.timeout.ms", &ms)
            .set("log_level", "3");
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// A client of kind `C` (consumer, producer, admin) from `config`, with errors naming
    /// the bootstrap servers.
    pub(crate) fn create<C: FromClientConfig>(
        &self,
        config: &ClientConfig,
    ) -> Result<C, KafkaError> {
        config.create().map_err(|source| KafkaError::Client {
            bootstrap: self.bootstrap.clone(),
            source: Box::new(source),
        })
    }
}
