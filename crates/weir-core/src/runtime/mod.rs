//! Running a job: timely workers, the control dataflow (failures, heartbeats).

pub(crate) mod control;
pub(crate) mod execute;
