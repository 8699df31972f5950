//! Java's `Math.min` and `Math.max`, whose NaN and signed-zero rules Flink's stages inherit.

/// Java's `Math.min`: NaN if either is NaN, and `-0.0 < 0.0`.
pub(crate) fn java_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Java's `Math.max`: NaN if either is NaN, and `0.0 > -0.0`.
pub(crate) fn java_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}
