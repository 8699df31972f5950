//! The model being served and the counters `GET /metrics` reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use weir_ml::{Checkpoint, ModelStore};

use super::server::HttpStats;

/// The model being served, swapped whole on reload.
pub(super) struct Serving {
    store: Box<dyn ModelStore>,
    current: RwLock<Option<Arc<Checkpoint>>>,
    /// Feature vectors scored.
    pub predictions: AtomicU64,
    /// Models loaded from the store.
    pub reloads: AtomicU64,
    /// Requests, errors and connections, counted by the HTTP server.
    pub http: Arc<HttpStats>,
}

impl Serving {
    /// Serves from `store`; nothing until [`Serving::reload`] finds a model.
    pub fn new(store: Box<dyn ModelStore>) -> Serving {
        Serving {
            store,
            current: RwLock::new(None),
            predictions: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            http: Arc::new(HttpStats::default()),
        }
    }

    /// The store's versions.
    pub fn versions(&self) -> Result<Vec<u64>, weir_ml::StoreError> {
        self.store.versions()
    }

    /// Loads the newest checkpoint if it is newer than the one served.
    pub fn reload(&self) {
        let served = self.version();
        match self.store.latest() {
            Ok(Some(c)) if Some(c.version) > served => {
                stderr_line!(
                    "weir serve: serving model v{} ({} records trained)",
                    c.version,
                    c.records
                );
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(c));
                self.reloads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => stderr_line!("weir serve: cannot read the model store: {e}"),
        }
    }

    /// The served version, if any.
    pub fn version(&self) -> Option<u64> {
        self.model().map(|c| c.version)
    }

    /// The served checkpoint, if any.
    pub fn model(&self) -> Option<Arc<Checkpoint>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
