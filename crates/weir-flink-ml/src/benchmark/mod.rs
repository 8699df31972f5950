//! Flink ML's benchmark module on Weir: its data generators and its runner, so that Flink
//! ML's benchmark files run unchanged in `weir bench`.

mod generator;
mod java_random;
mod runner;

pub use generator::{DataGenerator, GeneratorKind};
pub use java_random::{java_string_hash, subtask_seed, JavaRandom};
pub use runner::{BenchmarkRun, FlinkBenchmark};
