//! The control protocol between nodes and the AM: its messages travel as authenticated,
//! size-bounded frames over TCP ([`crate::wire`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::JobSecret;

/// A node: its role and its index within the role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// Role name (`worker`, `ps`, …).
    pub role: String,
    /// Index within the role.
    pub index: usize,
}

impl NodeId {
    /// Node `index` of `role`.
    pub fn new(role: impl Into<String>, index: usize) -> Self {
        NodeId {
            role: role.into(),
            index,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.role, self.index)
    }
}

/// Where the AM listens, and the job secret its nodes must prove they hold; flows from the
/// AM operator to the role operators. The secret is absent when every process has it from
/// elsewhere (`WEIR_JOB_SECRET`, [`crate::ClusterConfig::secret`]). `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmAddress {
    /// `host:port` of the AM's control server.
    pub address: String,
    pub(crate) secret: Option<JobSecret>,
}

impl AmAddress {
    /// The AM at `address`; `secret`, if given, is handed to the nodes with the address.
    pub fn new(address: impl Into<String>, secret: Option<JobSecret>) -> Self {
        AmAddress {
            address: address.into(),
            secret,
        }
    }
}

impl fmt::Debug for AmAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmAddress")
            .field("address", &self.address)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .finish()
    }
}

/// What every node gets once all have registered: role → node index → `host:port`, and
/// the cluster's properties. `version` is the attempt it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// The attempt (cluster version) this spec belongs to.
    pub version: u32,
    /// Role → addresses of its nodes, by index.
    pub nodes: BTreeMap<String, Vec<String>>,
    /// Properties of the cluster.
    pub properties: BTreeMap<String, String>,
}

impl ClusterSpec {
    /// The address of `role`'s node `index`.
    pub fn address(&self, role: &str, index: usize) -> Option<&str> {
        self.nodes.get(role)?.get(index).map(String::as_str)
    }
}

/// From a node to the AM. Every message carries the attempt it belongs to (fencing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NodeMessage {
    Register {
        node: NodeId,
        attempt: u32,
        address: String,
    },
    Heartbeat {
        node: NodeId,
        attempt: u32,
    },
    Finished {
        node: NodeId,
        attempt: u32,
    },
    Failed {
        node: NodeId,
        attempt: u32,
        cause: String,
    },
    StopCluster {
        node: NodeId,
        attempt: u32,
    },
}

impl NodeMessage {
    pub(crate) fn node(&self) -> &NodeId {
        match self {
            NodeMessage::Register { node, .. }
            | NodeMessage::Heartbeat { node, .. }
            | NodeMessage::Finished { node, .. }
            | NodeMessage::Failed { node, .. }
            | NodeMessage::StopCluster { node, .. } => node,
        }
    }

    pub(crate) fn attempt(&self) -> u32 {
        match self {
            NodeMessage::Register { attempt, .. }
            | NodeMessage::Heartbeat { attempt, .. }
            | NodeMessage::Finished { attempt, .. }
            | NodeMessage::Failed { attempt, .. }
            | NodeMessage::StopCluster { attempt, .. } => *attempt,
        }
    }
}

/// From the AM to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AmMessage {
    /// All nodes registered: run.
    Spec(ClusterSpec),
    /// Stop the runner and register again for `attempt` after `backoff_ms`.
    Restart { attempt: u32, backoff_ms: u64 },
    /// The cluster is over: stop the runner (if still running) and end.
    Stop,
    /// A message was refused (e.g. from a stale attempt).
    Rejected { reason: String },
}
