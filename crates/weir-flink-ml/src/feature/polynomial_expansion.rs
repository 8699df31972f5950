//! `PolynomialExpansion`: every monomial of a vector's elements up to a degree (Flink ML's
//! `org.apache.flink.ml.feature.polynomialexpansion`, the algorithm of Spark ML's).

use weir_core::Job;

use crate::common::stage_macros::{stage, stage_basics};
use crate::common::table_ops::{map_batches, one_input};
use crate::api::{Stage};
use crate::error::MlError;
use crate::param::shared::{INPUT_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, SparseVector, Table};

/// `degree`: the highest degree of the monomials.
pub const DEGREE: Param<i64> = Param::new(
    "degree",
    "Degree of the polynomial expansion.",
    Some("2"),
    ParamType::Int,
    Validator::GtEq(1.0),
);

stage!(
    /// Expands every vector of `inputCol` into the vector of its monomials of degree 1 to
    /// `degree` in `outputCol` (no constant term; size `C(n + degree, degree) - 1`), in
    /// Flink ML's (and Spark ML's) order: `(x, y)` of degree 2 gives
    /// `[x, x², y, xy, y²]`. Dense vectors give dense vectors; sparse vectors give sparse
    /// vectors storing the monomials of their stored elements.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::PolynomialExpansion;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("input", DataType::DenseVector)]);
    ///     let rows = vec![vec![Value::DenseVector(vec![2.0, 3.0])]];
    ///     let table = Table::from_rows(job, "rows", schema, rows)?;
    ///     PolynomialExpansion::new().transform(job, vec![table])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][1], Value::DenseVector(vec![2.0, 4.0, 3.0, 6.0, 9.0]));
    /// ```
    PolynomialExpansion,
    "org.apache.flink.ml.feature.polynomialexpansion.PolynomialExpansion",
    [&INPUT_COL.spec, &OUTPUT_COL.spec, &DEGREE.spec]
);

impl crate::param::HasInputCol for PolynomialExpansion {}
impl crate::param::HasOutputCol for PolynomialExpansion {}

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(PolynomialExpansion);

const TOO_LARGE: &str = "PolynomialExpansion: The expended polynomial size is too large.";

/// `C(num + degree, degree)`, the size of the expansion with the constant term (Flink's
/// `getResultVectorSize`), or an error above `i32::MAX`.
fn result_size(num: usize, degree: usize) -> Result<usize, String> {
    let (num, degree) = (num.max(degree), num.min(degree));
    let mut res: u128 = 1;
    for j in 1..=degree {
        res = res * (num + j) as u128 / j as u128;
        if res > i32::MAX as u128 {
            return Err(TOO_LARGE.into());
        }
    }
    Ok(res as usize)
}

/// Java's `Double.valueOf(x).equals(0.0)`: only +0.0 (not -0.0).
fn is_positive_zero(x: f64) -> bool {
    x.to_bits() == 0.0f64.to_bits()
}

/// The expansion of one degree, with a table of `result_size(n, d)` for the sizes seen.
struct Expander {
    degree: usize,
    /// `sizes[n * (degree + 1) + d] = C(n + d, d)` for `n <= max_n`.
    sizes: Vec<usize>,
    max_n: usize,
    /// The plan of the last dense size seen.
    plan: Option<Plan>,
}

/// No parent: the monomial is a single element.
const NO_PARENT: usize = usize::MAX;

/// How to compute the dense expansion of vectors of `n` elements without recursion: output
/// `k` is `out[parent] * x[var]` (or `x[var]` alone), where `var` is the lowest element of
/// monomial `k` and `parent` the monomial with one power of it less. Flink ML's recursion
/// multiplies the powers of the highest element first and those of the lowest last, so this
/// is the same product in the same order; a monomial whose running product becomes 0 or NaN
/// is left at 0.0, as the recursion skips it.
struct Plan {
    n: usize,
    steps: Vec<(usize, usize)>,
}

impl Plan {
    fn new(expander: &Expander, n: usize) -> Plan {
        let out_dim = expander.size(n as isize, expander.degree) as usize - 1;
        let mut monomials = vec![Vec::new(); out_dim];
        let mut exponents = vec![0usize; n];
        expander.monomials(
            n as isize - 1,
            expander.degree,
            -1,
            &mut exponents,
            &mut monomials,
        );
        let position: std::collections::HashMap<&[usize], usize> = monomials
            .iter()
            .enumerate()
            .map(|(k, e)| (e.as_slice(), k))
            .collect();
        let steps = monomials
            .iter()
            .map(|e| {
                let var = e.iter().position(|p| *p > 0).expect("no constant term");
                let mut parent = e.clone();
                parent[var] -= 1;
                let parent = if parent.iter().all(|p| *p == 0) {
                    NO_PARENT
                } else {
                    position[parent.as_slice()]
                };
                (parent, var)
            })
            .collect();
        Plan { n, steps }
    }

    fn apply(&self, x: &[f64], out: &mut [f64]) {
        for (k, (parent, var)) in self.steps.iter().enumerate() {
            let base = if *parent == NO_PARENT {
                1.0
            } else {
                out[*parent]
            };
            let v = base * x[*var];
            out[k] = if v != 0.0 && !v.is_nan() { v } else { 0.0 };
        }
    }
}

impl Expander {
    fn new(degree: usize) -> Expander {
        Expander {
            degree,
            sizes: vec![1; degree + 1],
            max_n: 0,
            plan: None,
        }
    }

    /// Makes the size table cover vectors of `n` elements; errors if the expansion is too
    /// large.
    fn prepare(&mut self, n: usize) -> Result<(), String> {
        if n <= self.max_n {
            return Ok(());
        }
        result_size(n, self.degree)?;
        let w = self.degree + 1;
        for m in self.max_n + 1..=n {
            self.sizes.push(1);
            for d in 1..w {
                let v = self.sizes[m * w + d - 1] + self.sizes[(m - 1) * w + d];
                self.sizes.push(v);
            }
        }
        self.max_n = n;
        Ok(())
    }

    /// `getResultVectorSize(n, d)` for `n <= max_n` (0 for `n < 0`, never asked).
    fn size(&self, n: isize, d: usize) -> isize {
        self.sizes[n as usize * (self.degree + 1) + d] as isize
    }

    /// The exponents of every output of Flink's `expandDenseVector` (for vectors of
    /// nonzero elements), by output position.
    fn monomials(
        &self,
        last: isize,
        degree: usize,
        cur: isize,
        exponents: &mut [usize],
        out: &mut [Vec<usize>],
    ) -> isize {
        if degree == 0 || last < 0 {
            if cur >= 0 {
                out[cur as usize] = exponents.to_vec();
            }
        } else {
            let mut start = cur;
            for i in 0..=degree {
                exponents[last as usize] = i;
                start = self.monomials(last - 1, degree - i, start, exponents, out);
            }
            exponents[last as usize] = 0;
        }
        cur + self.size(last + 1, degree)
    }

    /// Flink's `expandDenseVector`.
    #[cfg(test)]
    fn dense(
        &self,
        values: &[f64],
        last: isize,
        degree: usize,
        factor: f64,
        out: &mut [f64],
        cur: isize,
    ) -> isize {
        if !is_positive_zero(factor) {
            if degree == 0 || last < 0 {
                if cur >= 0 {
                    out[cur as usize] = factor;
                }
            } else {
                let v = values[last as usize];
                let mut alpha = factor;
                let mut start = cur;
                let mut i = 0;
                while i <= degree && alpha.abs() > 0.0 {
                    start = self.dense(values, last - 1, degree - i, alpha, out, start);
                    i += 1;
                    alpha *= v;
                }
            }
        }
        cur + self.size(last + 1, degree)
    }

    /// Flink's `expandSparseVector`.
    #[allow(clippy::too_many_arguments)]
    fn sparse(
        &self,
        v: &SparseVector,
        last: isize,
        last_feature: isize,
        degree: usize,
        factor: f64,
        out: &mut (Vec<usize>, Vec<f64>),
        cur: isize,
    ) -> isize {
        if !is_positive_zero(factor) {
            if degree == 0 || last < 0 {
                if cur >= 0 {
                    out.0.push(cur as usize);
                    out.1.push(factor);
                }
            } else {
                let x = v.values[last as usize];
                let feature = v.indices[last as usize] as isize - 1;
                let mut alpha = factor;
                let mut start = cur;
                let mut i = 0;
                while i <= degree && alpha.abs() > 0.0 {
                    start = self.sparse(v, last - 1, feature, degree - i, alpha, out, start);
                    i += 1;
                    alpha *= x;
                }
            }
        }
        cur + self.size(last_feature + 1, degree)
    }

    fn apply(&mut self, column: &Column) -> Result<Column, String> {
        Ok(match column {
            Column::DenseVector { dim, values } => {
                let dim = *dim;
                self.prepare(dim)?;
                let out_dim = self.size(dim as isize, self.degree) as usize - 1;
                let rows = values.len().checked_div(dim).unwrap_or(0);
                let mut out = vec![0.0; rows * out_dim];
                if dim > 0 && out_dim > 0 {
                    if self.plan.as_ref().is_none_or(|p| p.n != dim) {
                        self.plan = Some(Plan::new(self, dim));
                    }
                    let plan = self.plan.as_ref().expect("set above");
                    for (row, o) in values.chunks_exact(dim).zip(out.chunks_exact_mut(out_dim)) {
                        plan.apply(row, o);
                    }
                }
                Column::DenseVector {
                    dim: out_dim,
                    values: out,
                }
            }
            Column::SparseVector(c) => {
                let mut out = Vec::with_capacity(c.len());
                for v in c {
                    self.prepare(v.size)?;
                    let nnz = v.values.len();
                    let capacity = result_size(nnz, self.degree)? - 1;
                    let mut poly = (Vec::with_capacity(capacity), Vec::with_capacity(capacity));
                    self.sparse(
                        v,
                        nnz as isize - 1,
                        v.size as isize - 1,
                        self.degree,
                        1.0,
                        &mut poly,
                        -1,
                    );
                    let (indices, values) = poly;
                    let size = self.size(v.size as isize, self.degree) as usize - 1;
                    out.push(if indices.windows(2).all(|w| w[0] < w[1]) {
                        SparseVector {
                            size,
                            indices,
                            values,
                        }
                    } else {
                        SparseVector::from_pairs(size, indices.into_iter().zip(values))
                    });
                }
                Column::SparseVector(out)
            }
            other => {
                return Err(format!(
                    "PolynomialExpansion: the input column is a {} column, not vectors",
                    other.data_type()
                ))
            }
        })
    }
}

impl Stage for PolynomialExpansion {
    stage_basics!(Transformer);

    fn transform<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let input = one_input(self, inputs)?;
        let column = input.schema.typed_index(
            "PolynomialExpansion",
            &self.get(&INPUT_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, input.schema.data_type(column))?;
        let degree = usize::try_from(self.get(&DEGREE)?).unwrap_or(usize::MAX);
        // The expansion of a single element has `degree` entries: a degree whose expansion is
        // too large for any vector is refused before the tables are sized by it.
        if result_size(1, degree).is_err() {
            return Err(MlError::InvalidParam {
                stage: "PolynomialExpansion".into(),
                param: DEGREE.spec.name.into(),
                message: format!("is {degree}: {TOO_LARGE}"),
            });
        }
        let mut expander = Expander::new(degree);
        Ok(vec![map_batches(
            job,
            self,
            input,
            schema,
            move |batch: RowBatch| {
                let out = expander.apply(batch.column(column))?;
                Ok(batch.with_column(out))
            },
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A degree no vector could be expanded to is a param error, not an allocation of a
    /// table that size (a `degree` of 10^15 aborted the process, i64::MAX panicked).
    #[test]
    fn a_degree_too_large_for_any_expansion_is_refused() {
        use crate::api::Stage;
        use crate::table::{Schema, Value};
        use weir_core::{execute, Config};
        for degree in [i32::MAX as i64, 1_000_000_000_000_000, i64::MAX] {
            let result = execute(Config::threads(1).with_verbose(false), move |job| {
                let schema = Schema::new([("input", DataType::DenseVector)]);
                let rows = vec![vec![Value::DenseVector(vec![2.0])]];
                let table = Table::from_rows(job, "rows", schema, rows)?;
                let stage = PolynomialExpansion::new().set(&DEGREE, degree)?;
                stage.transform(job, vec![table])?;
                Ok(())
            });
            let e = result.unwrap_err().to_string();
            assert!(
                e.contains("parameter `degree` is given an invalid value")
                    && e.contains("too large"),
                "{e}"
            );
        }
    }

    #[test]
    fn result_size_is_a_binomial_and_refuses_overflow() {
        assert_eq!(result_size(0, 3).unwrap(), 1);
        assert_eq!(result_size(3, 2).unwrap(), 10);
        assert_eq!(result_size(2, 3).unwrap(), 10);
        assert_eq!(result_size(5, 1).unwrap(), 6);
        assert_eq!(result_size(1, 5).unwrap(), 6);
        assert!(result_size(1000, 10).is_err());
        let mut e = Expander::new(3);
        e.prepare(6).unwrap();
        for n in 0..=6 {
            for d in 0..=3 {
                assert_eq!(e.size(n as isize, d), result_size(n, d).unwrap() as isize);
            }
        }
    }

    /// The plan gives what Flink's recursion gives, zeros, NaN and infinities included.
    #[test]
    fn plan_matches_recursion() {
        let special = [
            0.0,
            -0.0,
            1.5,
            -2.0,
            f64::NAN,
            f64::INFINITY,
            0.5,
            -1.0,
            3.0,
        ];
        for degree in 1..=4 {
            for n in 1..=5 {
                let mut e = Expander::new(degree);
                e.prepare(n).unwrap();
                let plan = Plan::new(&e, n);
                let out_dim = e.size(n as isize, degree) as usize - 1;
                for start in 0..special.len() {
                    let x: Vec<f64> = (0..n)
                        .map(|i| special[(start + i * 7) % special.len()])
                        .collect();
                    let (mut a, mut b) = (vec![0.0; out_dim], vec![0.0; out_dim]);
                    plan.apply(&x, &mut a);
                    e.dense(&x, n as isize - 1, degree, 1.0, &mut b, -1);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "x = {x:?}, degree {degree}");
                }
            }
        }
    }
}
