//! The AM's state machine: states, events, and the pluggable transition table.

use std::collections::BTreeSet;

use crate::protocol::NodeId;

/// Where the cluster is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmState {
    /// Waiting for nodes to register.
    Init,
    /// The spec is out; nodes run.
    Running,
    /// A node failed; nodes are being restarted.
    Failover,
    /// The cluster is done; the job ends cleanly.
    Finished,
    /// Out of attempts (or registration timed out); the job fails.
    Failed,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmEvent {
    /// A node registered for the current attempt.
    RegisterNode(NodeId),
    /// Every node has registered; the spec was published.
    CompleteCluster,
    /// A node's runner returned successfully.
    NodeFinished(NodeId),
    /// A node failed (runner error, panic, process exit, heartbeat timeout).
    NodeFailed {
        /// The node.
        node: NodeId,
        /// Why.
        cause: String,
    },
    /// The failover pause is over; nodes restart.
    RestartCluster,
    /// A runner asked to stop the whole cluster (`stop_node`).
    StopJob,
}

/// What a transition table sees besides the state and the event.
#[derive(Debug)]
pub struct ClusterView<'a> {
    /// Nodes finished in this attempt (including the event's node for `NodeFinished`).
    pub finished: &'a BTreeSet<NodeId>,
    /// Role name → node count.
    pub roles: &'a [(String, usize)],
}

impl ClusterView<'_> {
    /// Whether every node of `role` has finished.
    pub fn role_finished(&self, role: &str) -> bool {
        let count = self
            .roles
            .iter()
            .find(|(r, _)| r == role)
            .map_or(0, |(_, n)| *n);
        (0..count).all(|index| self.finished.contains(&NodeId::new(role, index)))
    }

    /// Whether every node of every role has finished.
    pub fn all_finished(&self) -> bool {
        self.roles.iter().all(|(role, _)| self.role_finished(role))
    }
}

/// Decides the next state. The AM applies failover limits itself (a `Failover` with no
/// attempts left becomes `Failed`).
pub trait TransitionTable: Send + Sync + 'static {
    /// The state after `event` in `state`.
    fn next(&self, state: AmState, event: &AmEvent, view: &ClusterView<'_>) -> AmState;
}

/// Shared part of the built-in tables; `done` says when finishing nodes end the cluster.
fn common(state: AmState, event: &AmEvent, done: impl FnOnce() -> bool) -> AmState {
    use AmEvent::*;
    use AmState::*;
    match (state, event) {
        (Finished | Failed, _) => state,
        (_, StopJob) => Finished,
        (_, NodeFailed { .. }) => Failover,
        (Init, CompleteCluster) => Running,
        (Failover, RestartCluster) => Init,
        (Running, NodeFinished(_)) if done() => Finished,
        _ => state,
    }
}

/// Stream jobs: the cluster is finished when every node of every role has finished.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamTransitions;

impl TransitionTable for StreamTransitions {
    fn next(&self, state: AmState, event: &AmEvent, view: &ClusterView<'_>) -> AmState {
        common(state, event, || view.all_finished())
    }
}

/// Batch training: when every `worker` node has finished, the cluster is finished and the
/// other roles (e.g. `ps`, which serve until stopped) are stopped.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchTransitions;

impl TransitionTable for BatchTransitions {
    fn next(&self, state: AmState, event: &AmEvent, view: &ClusterView<'_>) -> AmState {
        common(state, event, || view.role_finished("worker"))
    }
}
