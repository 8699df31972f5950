//! The control protocol between nodes and the AM: bincode frames with a 4-byte
//! little-endian length prefix, over TCP.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

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

/// Where the AM listens; flows from the AM operator to the role operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmAddress(pub String);

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

/// Writes one frame.
pub(crate) fn write_frame<T: Serialize>(mut w: impl Write, message: &T) -> std::io::Result<()> {
    let bytes = bincode::serde::encode_to_vec(message, bincode::config::standard())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    frame.extend_from_slice(&bytes);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame.
pub(crate) fn read_frame<T: for<'de> Deserialize<'de>>(mut r: impl Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is larger than 64 MiB"),
        ));
    }
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes)?;
    bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
        .map(|(m, _)| m)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
