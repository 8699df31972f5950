//! The ML cluster inside a Weir dataflow, after Deep-Learning-on-Flink: an Application
//! Master (AM) and groups of nodes (roles such as `worker` and `ps`) run as dataflow
//! operators. The AM's address reaches the nodes through the dataflow; nodes bind their own
//! port, register over TCP, receive the cluster spec, run their runner, heartbeat, and are
//! restarted by the AM's failover policy.
#![warn(missing_docs)]

mod app_master;
mod cluster_config;
mod connection_slots;
pub mod metrics_server;
mod model_store;
mod node_runner;
mod online;
mod onnx_export;
pub mod output_forwarding;
mod process_runner;
mod protocol;
mod ps_training;
mod roles;
mod shm_ring;
mod state_machine;
pub mod wire;

pub use app_master::AppMaster;
pub use cluster_config::{ClusterConfig, FailoverPolicy, FailoverStrategy, Liveness};
pub use metrics_server::MetricsServer;
pub use model_store::{
    open_store, Checkpoint, DirStore, ModelStore, RedisStore, ScalerState, StoreError,
    CHECKPOINT_LIMIT, MAX_VERSION,
};
pub use node_runner::{NodeContext, NodeRunner, StopSignal};
pub use online::{
    learn_online_parallel, FtrlClassifier, OnlineClassifier, OnlineLearnExt, OnlineMetrics,
    OnlineOptions, OnlinePrediction, OnlineStandardScaler, OnlineStreams, SgdClassifier,
};
pub use process_runner::{tf_config, ProcessRunner};
pub use protocol::{AmAddress, ClusterSpec, NodeId};
pub use ps_training::{
    assemble_model, ps_runner, worker_runner, ClassRow, LabeledPoint, LogisticModel,
    PsTrainingConfig, TrainingReport,
};
pub use roles::{add_am_role, add_role};
pub use state_machine::{
    AmEvent, AmState, BatchTransitions, ClusterView, StreamTransitions, TransitionTable,
};
pub use wire::{JobSecret, SecureChannel, WireError};
