//! (being written)

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] = &[];
