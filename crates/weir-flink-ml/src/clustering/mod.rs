//! Flink ML's clustering algorithms (`org.apache.flink.ml.clustering.*`), one module per
//! algorithm.

mod kmeans_init;

crate::common::stage_modules! {
    // clustering modules (keep one per line)
    kmeans,
    online_kmeans,
    agglomerative_clustering,
}

pub use kmeans::{KMeans, KMeansModel, KMeansModelData};
pub use online_kmeans::{OnlineKMeans, OnlineKMeansModel};
