//! Provisioning ONNX Runtime: one environment per process, loaded at run time from the
//! `onnxruntime` Python wheel (ort's `load-dynamic`; nothing is downloaded from elsewhere).
//!
//! Lookup order for `libonnxruntime.so.1.31.1`:
//! 1. `ORT_DYLIB_PATH`, if set (it must point at the library);
//! 2. Weir's cache, `$WEIR_CACHE_DIR/onnxruntime-1.31.1` (default `~/.cache/weir/…`);
//! 3. the `onnxruntime` package of the current `python3`;
//! 4. otherwise Weir installs the wheel into its cache with
//!    `python3 -m pip install --target CACHE --no-deps onnxruntime==1.31.1`, saying so on
//!    stderr (set `WEIR_NO_INSTALL=1` to forbid this).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::OnnxError;

/// The ONNX Runtime version Weir is built against (ort's `api-31`).
pub const ORT_VERSION: &str = "1.31.1";

/// The library file inside the wheel (the wheel has no unversioned `libonnxruntime.so`).
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// The process-wide ONNX Runtime environment.
#[derive(Debug)]
pub struct Runtime {
    environment: Environment,
    library: PathBuf,
}

impl Runtime {
    /// The environment sessions are built from.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }
    /// The library that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process's ONNX Runtime, provisioned on first use (see the module docs). A failure is
/// remembered: later calls return the same error.
pub fn runtime() -> Result<&'static Runtime, OnnxError> {
    let result = RUNTIME.get_or_init(|| provision().map_err(|e| e.to_string()));
    match result {
        Ok(runtime) => Ok(runtime),
        Err(message) => Err(OnnxError::RuntimeNotFound {
            reason: message.clone(),
        }),
    }
}

fn provision() -> Result<Runtime, OnnxError> {
    let library = locate_library()?;
    let load_error = |reason: String| OnnxError::RuntimeLoad {
        path: library.display().to_string(),
        reason,
    };
    let builder = ort::init_from(&library).map_err(|e| load_error(e.to_string()))?;
    let environment = builder
        .with_name("weir")
        .build()
        .map_err(|e| load_error(e.to_string()))?;
    Ok(Runtime {
        environment,
        library,
    })
}

/// Finds `libonnxruntime.so.1.31.1`, installing the wheel into Weir's cache if needed.
pub fn locate_library() -> Result<PathBuf, OnnxError> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(OnnxError::RuntimeNotFound {
                reason: format!("ORT_DYLIB_PATH={} is not a file", path.display()),
            })
        };
    }
    let cache = cache_dir();
    let cached = wheel_library(&cache);
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some(dir) = python_package_dir() {
        let library = dir.join("capi").join(LIBRARY_FILE);
        if library.is_file() {
            return Ok(library);
        }
    }
    if std::env::var_os("WEIR_NO_INSTALL").is_some() {
        return Err(OnnxError::RuntimeNotFound {
            reason: format!(
                "not in ORT_DYLIB_PATH, {}, or python3's packages, and WEIR_NO_INSTALL is set",
                cache.display()
            ),
        });
    }
    install_wheel(&cache)?;
    if cached.is_file() {
        Ok(cached)
    } else {
        Err(OnnxError::RuntimeNotFound {
            reason: format!(
                "pip installed onnxruntime=={ORT_VERSION} but {} is missing",
                cached.display()
            ),
        })
    }
}

/// Weir's cache for the runtime wheel.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("WEIR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            home.join(".cache").join("weir")
        });
    base.join(format!("onnxruntime-{ORT_VERSION}"))
}

fn wheel_library(target: &Path) -> PathBuf {
    target.join("onnxruntime").join("capi").join(LIBRARY_FILE)
}

/// The `onnxruntime` package directory of `python3`, if it has one.
fn python_package_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn install_wheel(target: &Path) -> Result<(), OnnxError> {
    tracing::info!(
        "ONNX Runtime {ORT_VERSION} not found; installing it from PyPI: \
         python3 -m pip install --target {} --no-deps onnxruntime=={ORT_VERSION}",
        target.display()
    );
    let started = std::time::Instant::now();
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-deps",
        "--target",
    ])
    .arg(target)
    .arg(format!("onnxruntime=={ORT_VERSION}"));
    // On a terminal, pip's own progress bar shows the download; elsewhere it stays quiet.
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        pip.arg("--quiet");
    }
    let status = pip.status().map_err(|e| OnnxError::RuntimeNotFound {
        reason: format!("cannot run python3 -m pip: {e}"),
    })?;
    if status.success() {
        tracing::info!(
            "installed ONNX Runtime {ORT_VERSION} into {} in {:.1} s (once: later runs load it from there)",
            target.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        Err(OnnxError::RuntimeNotFound {
            reason: format!("pip install into {} failed ({status})", target.display()),
        })
    }
}
