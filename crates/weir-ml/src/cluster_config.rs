//! What a cluster is made of: roles and node counts, properties, failover and timeouts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::state_machine::{StreamTransitions, TransitionTable};
use crate::wire::{JobSecret, WireError};

/// What the AM does when a node fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverStrategy {
    /// Every node stops and restarts with the next attempt; all re-register.
    RestartAll,
    /// Only the failed node restarts; the others keep running.
    RestartNode,
}

/// Where a node's heartbeats come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Liveness {
    /// The node host's thread sends them while the runner runs: catches dead or cut-off
    /// processes and hosts.
    #[default]
    Host,
    /// They follow the runner's own sign of life ([`crate::NodeContext::alive`]; a process
    /// node's `weir_node` helper gives it while reading and writing records): a runner
    /// stuck for longer than the heartbeat timeout is failed too.
    Runner,
}

/// Failover: strategy, how many attempts in total, and the pause before each restart.
#[derive(Clone, Copy, Debug)]
pub struct FailoverPolicy {
    /// Restart everything or only the failed node.
    pub strategy: FailoverStrategy,
    /// Attempts in total (the first run counts); after the last one the job fails.
    pub max_attempts: u32,
    /// Pause before a restart.
    pub backoff: Duration,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            strategy: FailoverStrategy::RestartAll,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// A cluster: roles with node counts, properties every node sees, failover, heartbeats and
/// the registration timeout. The transition table decides when the cluster is finished.
#[derive(Clone)]
pub struct ClusterConfig {
    /// Role name → number of nodes, in the order roles were added.
    pub roles: Vec<(String, usize)>,
    /// Properties handed to every node.
    pub properties: BTreeMap<String, String>,
    /// What happens when a node fails.
    pub failover: FailoverPolicy,
    /// How often nodes send a heartbeat.
    pub heartbeat_interval: Duration,
    /// A node silent for this long is failed.
    pub heartbeat_timeout: Duration,
    /// How long the AM waits for all nodes to register (and a node for the spec).
    pub registration_timeout: Duration,
    /// Where heartbeats come from.
    pub liveness: Liveness,
    /// The AM's transition table.
    pub transitions: Arc<dyn TransitionTable>,
    /// The job secret every connection must prove (see [`crate::wire`]). When neither this
    /// nor `WEIR_JOB_SECRET` is set, the AM generates one and hands it to the nodes with its
    /// address, through the dataflow.
    pub secret: Option<JobSecret>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            roles: Vec::new(),
            properties: BTreeMap::new(),
            failover: FailoverPolicy::default(),
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(5),
            registration_timeout: Duration::from_secs(30),
            liveness: Liveness::Host,
            transitions: Arc::new(StreamTransitions),
            secret: None,
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("roles", &self.roles)
            .field("properties", &self.properties)
            .field("failover", &self.failover)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("registration_timeout", &self.registration_timeout)
            .field("liveness", &self.liveness)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl ClusterConfig {
    /// An empty cluster with default timeouts and failover.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a role with `nodes` nodes.
    pub fn role(mut self, name: impl Into<String>, nodes: usize) -> Self {
        self.roles.push((name.into(), nodes));
        self
    }

    /// Adds a property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Sets the failover policy.
    pub fn failover(
        mut self,
        strategy: FailoverStrategy,
        max_attempts: u32,
        backoff: Duration,
    ) -> Self {
        self.failover = FailoverPolicy {
            strategy,
            max_attempts: max_attempts.max(1),
            backoff,
        };
        self
    }

    /// Sets the heartbeat interval and timeout.
    pub fn heartbeats(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets the registration timeout.
    pub fn registration_timeout(mut self, timeout: Duration) -> Self {
        self.registration_timeout = timeout;
        self
    }

    /// Sets where heartbeats come from.
    pub fn liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = liveness;
        self
    }

    /// Sets the transition table.
    pub fn transitions(mut self, table: impl TransitionTable) -> Self {
        self.transitions = Arc::new(table);
        self
    }

    /// Sets the job secret (shared by every process of the job, e.g. from a secret store).
    pub fn secret(mut self, secret: JobSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The secret this process knows without the AM's help: the configured one, else
    /// `WEIR_JOB_SECRET`.
    pub(crate) fn known_secret(&self) -> Result<Option<JobSecret>, WireError> {
        match &self.secret {
            Some(s) => Ok(Some(s.clone())),
            None => JobSecret::from_env().map_err(|e| WireError::Secret(e.to_string())),
        }
    }

    /// Number of nodes of `role` (0 if there is no such role).
    pub fn nodes(&self, role: &str) -> usize {
        self.roles
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    /// Number of nodes in all roles.
    pub fn total_nodes(&self) -> usize {
        self.roles.iter().map(|(_, n)| n).sum()
    }
}
