//! Scoring any model from JSON: requests (`weir predict` lines, TensorFlow Serving and KServe
//! bodies) typed by the model's inputs, and scored records written back as JSON.

pub mod request;
pub mod scored;
