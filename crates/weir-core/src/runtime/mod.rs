//! Running a job: timely workers, the control dataflow (failures, heartbeats).

pub(crate) mod cancellation;
pub(crate) mod checkpointing;
pub(crate) mod control;
pub(crate) mod execute;
pub(crate) mod restore;
pub(crate) mod stdin_lifeline;
pub(crate) mod worker_loop;
