//! Flink ML's distance measures (`org.apache.flink.ml.common.distance`): Euclidean, Manhattan
//! and cosine, over vectors with their L2 norms computed once, and `findClosest` with Flink's
//! rules (the first of equally close centroids; Euclidean skips centroids whose norm alone
//! rules them out).

/// A distance measure by Flink's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum DistanceMeasure {
    /// `euclidean`.
    Euclidean,
    /// `manhattan`.
    Manhattan,
    /// `cosine`: `1 - cos`.
    Cosine,
}

impl DistanceMeasure {
    /// The measure of a `distanceMeasure` param value.
    pub(crate) fn from_name(name: &str) -> Result<DistanceMeasure, String> {
        match name {
            "euclidean" => Ok(DistanceMeasure::Euclidean),
            "manhattan" => Ok(DistanceMeasure::Manhattan),
            "cosine" => Ok(DistanceMeasure::Cosine),
            other => Err(format!(
                "distanceMeasure {other} is not recognized. Supported options: 'euclidean, manhattan, cosine'."
            )),
        }
    }

    /// The distance between `a` and `b` (with their L2 norms).
    pub(crate) fn distance(self, a: &[f64], a_norm: f64, b: &[f64], b_norm: f64) -> f64 {
        match self {
            DistanceMeasure::Euclidean => squared_euclidean(a, a_norm, b, b_norm).sqrt(),
            DistanceMeasure::Manhattan => a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum(),
            DistanceMeasure::Cosine => 1.0 - dot(a, b) / a_norm / b_norm,
        }
    }

    /// The index of the centroid closest to `point` (`centroids` flat, `dim` per centroid,
    /// `norms` theirs), and the distance to it (squared for Euclidean).
    pub(crate) fn closest(
        self,
        centroids: &[f64],
        norms: &[f64],
        point: &[f64],
        point_norm: f64,
    ) -> (usize, f64) {
        let dim = point.len();
        let mut best = (0, f64::INFINITY);
        if self == DistanceMeasure::Euclidean {
            for (i, c) in centroids.chunks_exact(dim.max(1)).enumerate() {
                let bound = point_norm - norms[i];
                if bound * bound >= best.1 {
                    continue;
                }
                let d = squared_euclidean(point, point_norm, c, norms[i]);
                if d < best.1 {
                    best = (i, d);
                }
            }
            return best;
        }
        let mut best = (usize::MAX, f64::MAX);
        for (i, c) in centroids.chunks_exact(dim.max(1)).enumerate() {
            let d = self.distance(c, norms[i], point, point_norm);
            if d < best.1 {
                best = (i, d);
            }
        }
        best
    }
}

/// `||a - b||²` from the norms, never below 0 (Flink's `Math.max(0, ...)` against rounding).
pub(crate) fn squared_euclidean(a: &[f64], a_norm: f64, b: &[f64], b_norm: f64) -> f64 {
    (a_norm * a_norm + b_norm * b_norm - 2.0 * dot(a, b)).max(0.0)
}

/// The dot product.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The L2 norm.
pub(crate) fn l2_norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_follows_flinks_rules() {
        let centroids = [0.0, 0.0, 10.0, 0.0, 0.0, 0.0];
        let norms: Vec<f64> = centroids.chunks(2).map(l2_norm).collect();
        let p = [4.0, 0.0];
        let e = DistanceMeasure::Euclidean.closest(&centroids, &norms, &p, 4.0);
        assert_eq!(e, (0, 16.0), "the first of two equal centroids");
        let m = DistanceMeasure::Manhattan.closest(&centroids, &norms, &[6.0, 1.0], 37f64.sqrt());
        assert_eq!(m, (1, 5.0));
        assert!(DistanceMeasure::from_name("chebyshev")
            .unwrap_err()
            .contains("not recognized"));
    }
}
