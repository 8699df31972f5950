//! Sources: the pull-source driver, generators, and the JSON Lines / CSV file sources.

pub(crate) mod csv_line;
pub(crate) mod decoding_source;
pub(crate) mod driver;
pub(crate) mod file_input;
pub(crate) mod file_source;
pub(crate) mod line_reader;
pub(crate) mod raw_json;
pub(crate) mod source;

pub use decoding_source::{Decoded, SplitDealing};
