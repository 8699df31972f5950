//! Sinks: collectors, callbacks and part files, and the output directory's past runs.

pub(crate) mod output_dir;
pub(crate) mod sink;
pub(crate) mod sink_frontier;
pub(crate) mod sink_writer;
pub(crate) mod two_phase;
