//! The processes of a job: their connections, the job secret, local launches.

pub(crate) mod heartbeats;
pub mod io_deadline;
pub mod job_secret;
pub(crate) mod local_cluster;
pub(crate) mod peer_network;
