//! How the predict operator builds its ONNX Runtime sessions: threads, graph optimisation, a
//! cache of optimised models, and execution providers.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use crate::runtime::runtime;

/// ONNX Runtime's graph optimisation levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GraphOptimization {
    /// None.
    Disable,
    /// Constant folding and redundant-node elimination.
    Basic,
    /// Basic plus node fusions.
    Extended,
    /// Extended plus memory layout optimisations (NCHWc for some targets).
    Layout,
    /// Everything (ONNX Runtime's default).
    #[default]
    All,
}

impl GraphOptimization {
    fn level(self) -> GraphOptimizationLevel {
        match self {
            GraphOptimization::Disable => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::Layout => GraphOptimizationLevel::Level3,
            GraphOptimization::All => GraphOptimizationLevel::All,
        }
    }
}

/// Where a session runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU kernels (always available).
    #[default]
    Cpu,
    /// NVIDIA CUDA on device `device_id`. Needs weir-onnx's `cuda` feature and the
    /// `onnxruntime-gpu` wheel's library (`WEIR_ORT_LIB`); where CUDA is not there at run
    /// time, ONNX Runtime logs a warning and the session runs on the CPU.
    Cuda {
        /// The GPU.
        device_id: i32,
    },
}

/// Session settings, the same for every instance of an operator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionOptions {
    /// Threads one operator (a single node) may use. Parallelism comes from workers: the
    /// default is 1, which on a busy machine beats ONNX Runtime's own default.
    pub intra_threads: usize,
    /// Threads running independent nodes at once (`None`: sequential execution).
    pub inter_threads: Option<usize>,
    /// Graph optimisation level.
    pub optimization: GraphOptimization,
    /// A directory of optimised models: the first load of a model writes its optimised form
    /// there, later loads (of the same bytes with the same options) read it and skip the
    /// optimisation.
    pub optimized_model_cache: Option<PathBuf>,
    /// Providers in order of preference; the CPU is always the last resort.
    pub execution_providers: Vec<ExecutionProvider>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_threads: 1,
            inter_threads: None,
            optimization: GraphOptimization::All,
            optimized_model_cache: None,
            execution_providers: vec![ExecutionProvider::Cpu],
        }
    }
}

impl SessionOptions {
    /// A session of the model `bytes` built with these options. Errors are ONNX Runtime's
    /// messages.
    pub(crate) fn session(&self, bytes: &[u8]) -> Result<Session, String> {
        let text = |e: ort::Error| e.to_string();
        let Some(cache) = &self.optimized_model_cache else {
            return self
                .builder(self.optimization)?
                .commit_from_memory(bytes)
                .map_err(text);
        };
        let cached = cache.join(format!("{:016x}.onnx", self.cache_key(bytes)));
        if cached.is_file() {
            match self
                .builder(GraphOptimization::Disable)?
                .commit_from_file(&cached)
            {
                Ok(session) => return Ok(session),
                Err(e) => tracing::warn!(
                    "optimised model cache {}: {e}; optimising again",
                    cached.display()
                ),
            }
        }
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        // Several instances may optimise the same model at once: each writes its own file and
        // the last rename wins (the files are the same).
        static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let writer = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = cached.with_extension(format!("onnx.{}-{writer}.part", std::process::id()));
        let session = self
            .builder(self.optimization)?
            .with_optimized_model_path(&partial)
            .map_err(|e| e.to_string())?
            .commit_from_memory(bytes)
            .map_err(text);
        let session = match session {
            Ok(session) => session,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&partial, &cached) {
            tracing::warn!("optimised model cache {}: {e}", cached.display());
        }
        Ok(session)
    }

    fn builder(&self, optimization: GraphOptimization) -> Result<SessionBuilder, String> {
        let text = |e: ort::Error| e.to_string();
        let env = runtime().map_err(|e| e.to_string())?.environment();
        let mut builder = Session::builder(env)
            .map_err(text)?
            .with_intra_threads(self.intra_threads.max(1))
            .map_err(|e| e.to_string())?
            .with_optimization_level(optimization.level())
            .map_err(|e| e.to_string())?;
        if let Some(threads) = self.inter_threads {
            builder = builder
                .with_parallel_execution(true)
                .map_err(|e| e.to_string())?
                .with_inter_threads(threads.max(1))
                .map_err(|e| e.to_string())?;
        }
        #[allow(unused_mut)] // Only CUDA adds providers.
        let mut providers = Vec::new();
        for provider in &self.execution_providers {
            match provider {
                ExecutionProvider::Cpu => {}
                #[cfg(feature = "cuda")]
                ExecutionProvider::Cuda { device_id } => {
                    providers.push(ort::ep::CUDA::default().with_device_id(*device_id).build())
                }
                #[cfg(not(feature = "cuda"))]
                ExecutionProvider::Cuda { .. } => {
                    return Err(
                        "the CUDA execution provider needs weir-onnx built with its \
                                `cuda` feature (and the onnxruntime-gpu library)"
                            .into(),
                    )
                }
            }
        }
        if !providers.is_empty() {
            builder = builder
                .with_execution_providers(providers)
                .map_err(|e| e.to_string())?;
        }
        Ok(builder)
    }

    /// The model's and the options' hash: a cached optimised model is only valid for both.
    fn cache_key(&self, bytes: &[u8]) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        self.optimization.hash(&mut hasher);
        self.execution_providers.hash(&mut hasher);
        hasher.finish()
    }
}
