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

/// Folds the rows of `values` (flat rows of `min.len()` elements) into `min` and `max`,
/// element by element, with [`java_min`] and [`java_max`]: bit for bit the result of
/// folding them row by row, but with plain comparisons that the compiler vectorises.
///
/// Plain comparisons give Java's result unless an element's values hold a NaN (which Java
/// propagates) or its extreme is a zero (where Java tells `-0.0` from `0.0`), so the rows
/// are folded into a minimum, a maximum and a NaN check (`x - x` is NaN for NaN and
/// infinities) of their own, and only the elements flagged by those are folded again with
/// Java's rules before the batch's extremes go into `min` and `max`.
// `x - x`: 0 for finite `x`, NaN for NaN and infinities (the check of the fast path).
#[allow(clippy::eq_op)]
pub(crate) fn java_min_max_rows(values: &[f64], min: &mut [f64], max: &mut [f64]) {
    let dim = min.len();
    assert_eq!(max.len(), dim, "min and max of one size");
    if dim == 0 || values.len() < dim {
        return;
    }
    let mut rows = values.chunks_exact(dim);
    let first = rows.next().expect("a row");
    let mut lo = first.to_vec();
    let mut hi = first.to_vec();
    let mut check: Vec<f64> = first.iter().map(|x| x - x).collect();
    for row in rows {
        for (((l, h), c), &x) in lo
            .iter_mut()
            .zip(hi.iter_mut())
            .zip(check.iter_mut())
            .zip(row)
        {
            *l = if x < *l { x } else { *l };
            *h = if x > *h { x } else { *h };
            *c += x - x;
        }
    }
    let flagged: Vec<usize> = (0..dim)
        .filter(|&j| check[j].is_nan() || lo[j] == 0.0 || hi[j] == 0.0)
        .collect();
    if !flagged.is_empty() {
        for &j in &flagged {
            lo[j] = f64::INFINITY;
            hi[j] = f64::NEG_INFINITY;
        }
        for row in values.chunks_exact(dim) {
            for &j in &flagged {
                lo[j] = java_min(lo[j], row[j]);
                hi[j] = java_max(hi[j], row[j]);
            }
        }
    }
    for (m, l) in min.iter_mut().zip(&lo) {
        *m = java_min(*m, *l);
    }
    for (m, h) in max.iter_mut().zip(&hi) {
        *m = java_max(*m, *h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fold of `rows` with `java_min` / `java_max` one row at a time (the reference).
    fn reference(rows: &[Vec<f64>], min: &mut [f64], max: &mut [f64]) {
        for row in rows {
            for j in 0..min.len() {
                min[j] = java_min(min[j], row[j]);
                max[j] = java_max(max[j], row[j]);
            }
        }
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Both folds from `start`, compared bit for bit.
    fn check(rows: &[Vec<f64>], start: (f64, f64)) {
        let dim = rows[0].len();
        let (mut min, mut max) = (vec![start.0; dim], vec![start.1; dim]);
        let (mut rmin, mut rmax) = (min.clone(), max.clone());
        let flat: Vec<f64> = rows.concat();
        java_min_max_rows(&flat, &mut min, &mut max);
        reference(rows, &mut rmin, &mut rmax);
        assert_eq!(bits(&min), bits(&rmin), "min of {rows:?} from {start:?}");
        assert_eq!(bits(&max), bits(&rmax), "max of {rows:?} from {start:?}");
    }

    #[test]
    fn java_semantics() {
        assert!(java_min(1.0, f64::NAN).is_nan() && java_max(f64::NAN, 1.0).is_nan());
        assert_eq!(java_min(0.0, -0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(java_min(-0.0, 0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(java_max(-0.0, 0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(java_max(0.0, -0.0).to_bits(), 0.0f64.to_bits());
    }

    /// Elements with NaN, `-0.0` and `0.0` (in either order), infinities and plain values
    /// fold as Java's `Math.min` / `Math.max` do, from fresh and from earlier accumulators.
    #[test]
    fn min_max_rows_as_java() {
        let nan = f64::NAN;
        let inf = f64::INFINITY;
        let rows = vec![
            vec![0.0, -0.0, 1.0, nan, 2.0, -0.0, 0.0, inf, 3.0, -1.0],
            vec![-0.0, 0.0, nan, 1.0, -inf, -0.0, 0.0, 1.0, 0.0, -0.0],
            vec![0.5, 0.0, 2.0, 0.5, 7.0, -0.0, 0.0, -inf, 4.0, -3.0],
        ];
        for start in [
            (inf, -inf),
            (0.0, -0.0),
            (-0.0, 0.0),
            (nan, nan),
            (0.25, 0.75),
        ] {
            check(&rows, start);
            for r in &rows {
                check(std::slice::from_ref(r), start);
            }
            let mut reversed = rows.clone();
            reversed.reverse();
            check(&reversed, start);
        }
        // Only plain values: no element needs Java's rules.
        let plain: Vec<Vec<f64>> = (0..50)
            .map(|i| (0..7).map(|j| ((i * 7 + j) as f64 * 0.37).sin()).collect())
            .collect();
        check(&plain, (inf, -inf));
        check(&plain, (-2.0, 2.0));
        // A NaN late in one element only.
        let mut late = plain.clone();
        late[49][3] = nan;
        check(&late, (inf, -inf));
    }
}
