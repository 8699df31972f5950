//! `UnivariateFeatureSelector`: keeps the elements of a feature vector that a univariate test
//! against the label finds most significant: chi-squared (categorical features and label),
//! ANOVA F (continuous features, categorical label) or the F-value of the correlation
//! (continuous features and label) (Flink ML's
//! `org.apache.flink.ml.feature.univariatefeatureselector`, with the tests of
//! `org.apache.flink.ml.stats.{chisqtest,anovatest,fvaluetest}` and the distributions of
//! Apache Commons Math 3.6.1).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use weir_core::Job;

use crate::common::model_row::ModelRow;
use crate::common::vector_columns::{dense_rows, first_size};
use crate::common::stage_macros::{model, model_data_methods, stage, stage_basics};
use crate::common::table_ops::{fit_aggregate, map_with_model, one_input, one_input_with_model};
use super::variance_threshold_selector::{indices_of, select_column};
use crate::api::{Fitted, Stage};
use crate::error::MlError;
use crate::param::shared::{FEATURES_COL, LABEL_COL, OUTPUT_COL};
use crate::param::{Param, ParamType, Validator, WithParams};
use crate::table::{Column, DataType, RowBatch, Schema, Table};

/// `featureType`: `categorical` or `continuous` (must be set).
pub const FEATURE_TYPE: Param<String> = Param::new(
    "featureType",
    "The feature type.",
    Some("null"),
    ParamType::String,
    Validator::InArray(&["categorical", "continuous"]),
);
/// `labelType`: `categorical` or `continuous` (must be set).
pub const LABEL_TYPE: Param<String> = Param::new(
    "labelType",
    "The label type.",
    Some("null"),
    ParamType::String,
    Validator::InArray(&["categorical", "continuous"]),
);
/// `selectionMode`: `numTopFeatures`, `percentile`, `fpr`, `fdr` or `fwe`.
pub const SELECTION_MODE: Param<String> = Param::new(
    "selectionMode",
    "The feature selection mode.",
    Some("\"numTopFeatures\""),
    ParamType::String,
    Validator::InArray(&["numTopFeatures", "percentile", "fpr", "fdr", "fwe"]),
);
/// `selectionThreshold`: the mode's bound; null means 50 (`numTopFeatures`), 0.1
/// (`percentile`) or 0.05 (the others).
pub const SELECTION_THRESHOLD: Param<f64> = Param::new(
    "selectionThreshold",
    "The upper bound of the features that selector will select. If not set, it will be \
     replaced with a meaningful value according to different selection modes at runtime. When \
     the mode is numTopFeatures, it will be replaced with 50; when the mode is percentile, it \
     will be replaced with 0.1; otherwise, it will be replaced with 0.05.",
    Some("null"),
    ParamType::Double,
    Validator::Always,
);

stage!(
    /// Fits a [`UnivariateFeatureSelectorModel`]: tests every element of `featuresCol`
    /// (dense or sparse vectors of one size) against `labelCol` (numbers) with the test
    /// `featureType` and `labelType` call for, then selects elements by their p-values:
    /// the `numTopFeatures` lowest, the lowest `percentile`, those below `fpr`, those the
    /// Benjamini–Hochberg procedure keeps at `fdr`, or those below `fwe / n`.
    ///
    /// ```
    /// use weir_core::{execute, Config};
    /// use weir_flink_ml::api::Stage;
    /// use weir_flink_ml::feature::univariate_feature_selector::{
    ///     FEATURE_TYPE, LABEL_TYPE, SELECTION_THRESHOLD,
    /// };
    /// use weir_flink_ml::feature::UnivariateFeatureSelector;
    /// use weir_flink_ml::param::WithParams;
    /// use weir_flink_ml::table::{DataType, Schema, Table, TableCollector, Value};
    /// let out = TableCollector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let schema = Schema::new([("features", DataType::DenseVector), ("label", DataType::Double)]);
    ///     // Element 1 follows the label, elements 0 and 2 do not.
    ///     let rows: Vec<_> = (0..20)
    ///         .map(|i| {
    ///             let label = (i % 2) as f64;
    ///             let noise = ((i * 7) % 5) as f64;
    ///             vec![Value::DenseVector(vec![noise, label * 10.0 + noise * 0.1, 3.0 - noise]),
    ///                  Value::Double(label)]
    ///         })
    ///         .collect();
    ///     let train = Table::from_rows(job, "train", schema.clone(), rows.clone())?;
    ///     let test = Table::from_rows(job, "test", schema, rows[..1].to_vec())?;
    ///     let selector = UnivariateFeatureSelector::new()
    ///         .set(&FEATURE_TYPE, "continuous".to_string())?
    ///         .set(&LABEL_TYPE, "categorical".to_string())?
    ///         .set(&SELECTION_THRESHOLD, 1.0)?;
    ///     let fitted = selector.fit(job, vec![train])?;
    ///     fitted.transform(job, vec![test])?.remove(0).collect("out", &sink);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// assert_eq!(out.rows()[0][2], Value::DenseVector(vec![0.0]));
    /// ```
    UnivariateFeatureSelector,
    "org.apache.flink.ml.feature.univariatefeatureselector.UnivariateFeatureSelector",
    [
        &FEATURES_COL.spec,
        &OUTPUT_COL.spec,
        &LABEL_COL.spec,
        &FEATURE_TYPE.spec,
        &LABEL_TYPE.spec,
        &SELECTION_MODE.spec,
        &SELECTION_THRESHOLD.spec,
    ]
);

model!(
    /// Keeps the selected elements of `featuresCol` in `outputCol`, which has the input's
    /// vector type.
    UnivariateFeatureSelectorModel,
    "org.apache.flink.ml.feature.univariatefeatureselector.UnivariateFeatureSelectorModel",
    [&FEATURES_COL.spec, &OUTPUT_COL.spec]
);

/// The registry entries of this module.
pub(crate) const CLASSES: &[crate::api::StageClass] =
    crate::api::stage_classes!(UnivariateFeatureSelector, UnivariateFeatureSelectorModel);

/// The model data: one row.
#[derive(Clone, Debug, PartialEq)]
pub struct UnivariateFeatureSelectorModelData {
    /// The selected elements, in selection order (Flink's `int[]`, stored as a `Double[]`
    /// column).
    pub indices: Vec<usize>,
}

impl UnivariateFeatureSelectorModelData {
    /// The model data table's schema (Flink's `indices`).
    pub fn schema() -> Schema {
        Schema::new([("indices", DataType::DoubleArray)])
    }

    /// The model data as a one-row batch.
    pub fn to_batch(&self) -> RowBatch {
        RowBatch::new(
            1,
            vec![Column::DoubleArray(vec![self
                .indices
                .iter()
                .map(|&i| i as f64)
                .collect()])],
        )
    }

    /// The model data from its table.
    pub fn from_batches(schema: &Schema, batches: &[RowBatch]) -> Result<Self, String> {
        const STAGE: &str = "UnivariateFeatureSelectorModel";
        let row = ModelRow::single(STAGE, schema, batches)?;
        Ok(UnivariateFeatureSelectorModelData {
            indices: indices_of(STAGE, &row.doubles("indices")?)?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Commons Math 3.6.1: the F and chi-squared distributions' CDFs
// ---------------------------------------------------------------------------------------

/// Ports of `org.apache.commons.math3.special.{Gamma, Beta}` and `util.ContinuedFraction`
/// (the same algorithms and constants; `FastMath`'s `exp`/`log`/`log1p` are the platform's
/// here, which may differ in the last bit).
mod special {
    const BETA_EPSILON: f64 = 1e-14;
    const GAMMA_EPSILON: f64 = 10e-15;
    const MAX_ITERATIONS: u64 = 100_000_000;
    const HALF_LOG_TWO_PI: f64 = 0.9189385332046727;
    const LANCZOS_G: f64 = 607.0 / 128.0;
    const SQRT_TWO_PI: f64 = 2.5066282746310007;
    const LANCZOS: [f64; 15] = [
        0.9999999999999971,
        57.15623566586292,
        -59.59796035547549,
        14.136097974741746,
        -0.4919138160976202,
        3.399464998481189e-05,
        4.652362892704858e-05,
        -9.837447530487956e-05,
        0.0001580887032249125,
        -0.00021026444172410488,
        0.00021743961811521265,
        -0.0001643181065367639,
        8.441822398385275e-05,
        -2.6190838401581408e-05,
        3.6899182659531625e-06,
    ];
    const DELTA: [f64; 15] = [
        0.08333333333333333,
        -2.777777777777778e-05,
        7.936507936507937e-08,
        -5.952380952380953e-10,
        8.417508417508329e-12,
        -1.917526917518546e-13,
        6.410256405103255e-15,
        -2.955065141253382e-16,
        1.7964371635940225e-17,
        -1.3922896466162779e-18,
        1.338028550140209e-19,
        -1.542460098679661e-20,
        1.9770199298095743e-21,
        -2.3406566479399704e-22,
        1.713480149663986e-23,
    ];
    /// `INV_GAMMA1P_M1_A0`, `A1`.
    const A0: f64 = 6.116095104481416e-09;
    const A1: f64 = 6.247308301164655e-09;
    /// `INV_GAMMA1P_M1_B1` .. `B8`.
    const B: [f64; 8] = [
        0.203610414066807,
        0.026620534842894922,
        0.0004939449793824468,
        -8.514194324403149e-06,
        -6.4304548177935305e-06,
        9.926418406727737e-07,
        -6.077618957228252e-08,
        1.9575583661463974e-10,
    ];
    /// `INV_GAMMA1P_M1_P0` .. `P6`.
    const P: [f64; 7] = [
        6.116095104481416e-09,
        6.8716741130671986e-09,
        6.820161668496171e-10,
        4.686843322948848e-11,
        1.5728330277104463e-12,
        -1.2494415722763663e-13,
        4.343529937408594e-15,
    ];
    /// `INV_GAMMA1P_M1_Q1` .. `Q4`.
    const Q: [f64; 4] = [
        0.3056961078365221,
        0.054642130860422966,
        0.004956830093825887,
        0.00026923694661863613,
    ];
    const C: f64 = -0.42278433509846713;
    const C0: f64 = 0.5772156649015329;
    /// `INV_GAMMA1P_M1_C1` .. `C13`.
    const CS: [f64; 13] = [
        -0.6558780715202539,
        -0.04200263503409524,
        0.16653861138229148,
        -0.04219773455554433,
        -0.009621971527876973,
        0.0072189432466631,
        -0.0011651675918590652,
        -0.00021524167411495098,
        0.0001280502823881162,
        -2.013485478078824e-05,
        -1.2504934821426706e-06,
        1.133027231981696e-06,
        -2.056338416977607e-07,
    ];

    /// `ContinuedFraction.evaluate`.
    fn continued_fraction(
        get_a: impl Fn(f64, f64) -> f64,
        get_b: impl Fn(f64, f64) -> f64,
        x: f64,
        epsilon: f64,
    ) -> Result<f64, String> {
        const SMALL: f64 = 1e-50;
        let mut h_prev = get_a(0.0, x);
        if h_prev.abs() <= SMALL {
            h_prev = SMALL;
        }
        let mut n: u64 = 1;
        let mut d_prev = 0.0;
        let mut c_prev = h_prev;
        let mut h_n;
        loop {
            let a = get_a(n as f64, x);
            let b = get_b(n as f64, x);
            let mut d_n = a + b * d_prev;
            if d_n.abs() <= SMALL {
                d_n = SMALL;
            }
            let mut c_n = a + b / c_prev;
            if c_n.abs() <= SMALL {
                c_n = SMALL;
            }
            d_n = 1.0 / d_n;
            let delta_n = c_n * d_n;
            h_n = h_prev * delta_n;
            if h_n.is_infinite() {
                return Err(format!(
                    "continued fraction diverged to infinity for value {x}"
                ));
            }
            if h_n.is_nan() {
                return Err(format!("continued fraction diverged to NaN for value {x}"));
            }
            if (delta_n - 1.0).abs() < epsilon {
                return Ok(h_n);
            }
            d_prev = d_n;
            c_prev = c_n;
            h_prev = h_n;
            n += 1;
            if n >= MAX_ITERATIONS {
                return Err(format!("continued fraction did not converge for value {x}"));
            }
        }
    }

    fn lanczos(x: f64) -> f64 {
        let mut sum = 0.0;
        for i in (1..LANCZOS.len()).rev() {
            sum += LANCZOS[i] / (x + i as f64);
        }
        sum + LANCZOS[0]
    }

    fn inv_gamma1pm1(x: f64) -> f64 {
        let t = if x <= 0.5 { x } else { (x - 0.5) - 0.5 };
        let poly = |init: f64, t: f64| CS.iter().rev().skip(1).fold(init, |c, k| k + t * c);
        if t < 0.0 {
            let a = A0 + t * A1;
            let mut b = B[7];
            for k in B[..7].iter().rev() {
                b = k + t * b;
            }
            b = 1.0 + t * b;
            let c = poly(CS[12] + t * (a / b), t);
            let c = C + t * c;
            if x > 0.5 {
                t * c / x
            } else {
                x * ((c + 0.5) + 0.5)
            }
        } else {
            let mut p = P[6];
            for k in P[..6].iter().rev() {
                p = k + t * p;
            }
            let mut q = Q[3];
            for k in Q[..3].iter().rev() {
                q = k + t * q;
            }
            q = 1.0 + t * q;
            let c = poly(CS[12] + (p / q) * t, t);
            let c = C0 + t * c;
            if x > 0.5 {
                (t / x) * ((c - 0.5) - 0.5)
            } else {
                x * c
            }
        }
    }

    fn log_gamma1p(x: f64) -> f64 {
        -inv_gamma1pm1(x).ln_1p()
    }

    pub(super) fn log_gamma(x: f64) -> f64 {
        if x.is_nan() || x <= 0.0 {
            f64::NAN
        } else if x < 0.5 {
            log_gamma1p(x) - x.ln()
        } else if x <= 2.5 {
            log_gamma1p((x - 0.5) - 0.5)
        } else if x <= 8.0 {
            let n = (x - 1.5).floor() as i32;
            let mut prod = 1.0;
            for i in 1..=n {
                prod *= x - f64::from(i);
            }
            log_gamma1p(x - f64::from(n + 1)) + prod.ln()
        } else {
            let sum = lanczos(x);
            let tmp = x + LANCZOS_G + 0.5;
            ((x + 0.5) * tmp.ln()) - tmp + HALF_LOG_TWO_PI + (sum / x).ln()
        }
    }

    /// `Gamma.gamma` for `x > 0`.
    fn gamma(x: f64) -> f64 {
        if x <= 20.0 {
            if x >= 1.0 {
                let mut prod = 1.0;
                let mut t = x;
                while t > 2.5 {
                    t -= 1.0;
                    prod *= t;
                }
                prod / (1.0 + inv_gamma1pm1(t - 1.0))
            } else {
                1.0 / (x * (1.0 + inv_gamma1pm1(x)))
            }
        } else {
            let y = x + LANCZOS_G + 0.5;
            SQRT_TWO_PI / x * y.powf(x + 0.5) * (-y).exp() * lanczos(x)
        }
    }

    fn regularized_gamma_p(a: f64, x: f64) -> Result<f64, String> {
        if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 {
            Ok(f64::NAN)
        } else if x == 0.0 {
            Ok(0.0)
        } else if x >= a + 1.0 {
            Ok(1.0 - regularized_gamma_q(a, x)?)
        } else {
            let mut n = 0.0;
            let mut an = 1.0 / a;
            let mut sum = an;
            while (an / sum).abs() > GAMMA_EPSILON
                && n < MAX_ITERATIONS as f64
                && sum < f64::INFINITY
            {
                n += 1.0;
                an *= x / (a + n);
                sum += an;
            }
            if n >= MAX_ITERATIONS as f64 {
                Err("the regularized gamma series did not converge".into())
            } else if sum.is_infinite() {
                Ok(1.0)
            } else {
                Ok((-x + (a * x.ln()) - log_gamma(a)).exp() * sum)
            }
        }
    }

    fn regularized_gamma_q(a: f64, x: f64) -> Result<f64, String> {
        if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 {
            Ok(f64::NAN)
        } else if x == 0.0 {
            Ok(1.0)
        } else if x < a + 1.0 {
            Ok(1.0 - regularized_gamma_p(a, x)?)
        } else {
            let cf = continued_fraction(
                |n, x| ((2.0 * n) + 1.0) - a + x,
                |n, _| n * (a - n),
                x,
                GAMMA_EPSILON,
            )?;
            let ret = 1.0 / cf;
            Ok((-x + (a * x.ln()) - log_gamma(a)).exp() * ret)
        }
    }

    fn log_gamma_sum(a: f64, b: f64) -> f64 {
        let x = (a - 1.0) + (b - 1.0);
        if x <= 0.5 {
            log_gamma1p(1.0 + x)
        } else if x <= 1.5 {
            log_gamma1p(x) + x.ln_1p()
        } else {
            log_gamma1p(x - 1.0) + (x * (1.0 + x)).ln()
        }
    }

    fn log_gamma_minus_log_gamma_sum(a: f64, b: f64) -> f64 {
        let (d, w) = if a <= b {
            (b + (a - 0.5), delta_minus_delta_sum(a, b))
        } else {
            (a + (b - 0.5), delta_minus_delta_sum(b, a))
        };
        let u = d * (a / b).ln_1p();
        let v = a * (b.ln() - 1.0);
        if u <= v {
            (w - u) - v
        } else {
            (w - v) - u
        }
    }

    fn delta_minus_delta_sum(a: f64, b: f64) -> f64 {
        let h = a / b;
        let p = h / (1.0 + h);
        let q = 1.0 / (1.0 + h);
        let q2 = q * q;
        let mut s = [0.0; DELTA.len()];
        s[0] = 1.0;
        for i in 1..s.len() {
            s[i] = 1.0 + (q + q2 * s[i - 1]);
        }
        let sqrt_t = 10.0 / b;
        let t = sqrt_t * sqrt_t;
        let mut w = DELTA[DELTA.len() - 1] * s[s.len() - 1];
        for i in (0..DELTA.len() - 1).rev() {
            w = t * w + DELTA[i] * s[i];
        }
        w * p / b
    }

    fn sum_delta_minus_delta_sum(p: f64, q: f64) -> f64 {
        let a = p.min(q);
        let b = p.max(q);
        let sqrt_t = 10.0 / a;
        let t = sqrt_t * sqrt_t;
        let mut z = DELTA[DELTA.len() - 1];
        for i in (0..DELTA.len() - 1).rev() {
            z = t * z + DELTA[i];
        }
        z / a + delta_minus_delta_sum(a, b)
    }

    pub(super) fn log_beta(p: f64, q: f64) -> f64 {
        if p.is_nan() || q.is_nan() || p <= 0.0 || q <= 0.0 {
            return f64::NAN;
        }
        let a = p.min(q);
        let b = p.max(q);
        if a >= 10.0 {
            let w = sum_delta_minus_delta_sum(a, b);
            let h = a / b;
            let c = h / (1.0 + h);
            let u = -(a - 0.5) * c.ln();
            let v = b * h.ln_1p();
            if u <= v {
                (((-0.5 * b.ln() + HALF_LOG_TWO_PI) + w) - u) - v
            } else {
                (((-0.5 * b.ln() + HALF_LOG_TWO_PI) + w) - v) - u
            }
        } else if a > 2.0 {
            if b > 1000.0 {
                let n = (a - 1.0).floor() as i32;
                let mut prod = 1.0;
                let mut ared = a;
                for _ in 0..n {
                    ared -= 1.0;
                    prod *= ared / (1.0 + ared / b);
                }
                (prod.ln() - f64::from(n) * b.ln())
                    + (log_gamma(ared) + log_gamma_minus_log_gamma_sum(ared, b))
            } else {
                let mut prod1 = 1.0;
                let mut ared = a;
                while ared > 2.0 {
                    ared -= 1.0;
                    let h = ared / b;
                    prod1 *= h / (1.0 + h);
                }
                if b < 10.0 {
                    let mut prod2 = 1.0;
                    let mut bred = b;
                    while bred > 2.0 {
                        bred -= 1.0;
                        prod2 *= bred / (ared + bred);
                    }
                    prod1.ln()
                        + prod2.ln()
                        + (log_gamma(ared) + (log_gamma(bred) - log_gamma_sum(ared, bred)))
                } else {
                    prod1.ln() + log_gamma(ared) + log_gamma_minus_log_gamma_sum(ared, b)
                }
            }
        } else if a >= 1.0 {
            if b > 2.0 {
                if b < 10.0 {
                    let mut prod = 1.0;
                    let mut bred = b;
                    while bred > 2.0 {
                        bred -= 1.0;
                        prod *= bred / (a + bred);
                    }
                    prod.ln() + (log_gamma(a) + (log_gamma(bred) - log_gamma_sum(a, bred)))
                } else {
                    log_gamma(a) + log_gamma_minus_log_gamma_sum(a, b)
                }
            } else {
                log_gamma(a) + log_gamma(b) - log_gamma_sum(a, b)
            }
        } else if b >= 10.0 {
            log_gamma(a) + log_gamma_minus_log_gamma_sum(a, b)
        } else {
            (gamma(a) * gamma(b) / gamma(a + b)).ln()
        }
    }

    fn regularized_beta(x: f64, a: f64, b: f64) -> Result<f64, String> {
        if x.is_nan()
            || a.is_nan()
            || b.is_nan()
            || !(0.0..=1.0).contains(&x)
            || a <= 0.0
            || b <= 0.0
        {
            Ok(f64::NAN)
        } else if x > (a + 1.0) / (2.0 + b + a) && 1.0 - x <= (b + 1.0) / (2.0 + b + a) {
            Ok(1.0 - regularized_beta(1.0 - x, b, a)?)
        } else {
            let fraction = continued_fraction(
                |_, _| 1.0,
                |n, x| {
                    if n % 2.0 == 0.0 {
                        let m = n / 2.0;
                        (m * (b - m) * x) / ((a + (2.0 * m) - 1.0) * (a + (2.0 * m)))
                    } else {
                        let m = (n - 1.0) / 2.0;
                        -((a + m) * (a + b + m) * x) / ((a + (2.0 * m)) * (a + (2.0 * m) + 1.0))
                    }
                },
                x,
                BETA_EPSILON,
            )?;
            Ok(
                ((a * x.ln()) + (b * (-x).ln_1p()) - a.ln() - log_beta(a, b)).exp() * 1.0
                    / fraction,
            )
        }
    }

    /// `FDistribution(n, m).cumulativeProbability(x)`.
    pub(super) fn f_cdf(x: f64, n: f64, m: f64) -> Result<f64, String> {
        if n <= 0.0 || m <= 0.0 {
            return Err(format!(
                "degrees of freedom ({}) must be positive",
                n.min(m)
            ));
        }
        if x <= 0.0 {
            Ok(0.0)
        } else {
            regularized_beta((n * x) / (m + n * x), 0.5 * n, 0.5 * m)
        }
    }

    /// `ChiSquaredDistribution(k).cumulativeProbability(x)`.
    pub(super) fn chi_squared_cdf(x: f64, k: f64) -> Result<f64, String> {
        if x <= 0.0 {
            Ok(0.0)
        } else {
            regularized_gamma_p(k / 2.0, x / 2.0)
        }
    }
}

/// `new BigDecimal(x).setScale(11, RoundingMode.HALF_UP).doubleValue()`: `x` rounded to 11
/// decimals from its exact binary value, halves away from zero.
fn round_half_up_11(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Every finite double's exact decimal expansion ends within 1074 decimals.
    let exact = format!("{:.1080}", x.abs());
    let point = exact.find('.').expect("a decimal point");
    let digits = &exact.as_bytes()[..point + 12];
    let mut kept: Vec<u8> = digits.to_vec();
    if exact.as_bytes()[point + 12] >= b'5' {
        let mut i = kept.len() - 1;
        loop {
            if kept[i] == b'.' {
                i -= 1;
                continue;
            }
            if kept[i] == b'9' {
                kept[i] = b'0';
                if i == 0 {
                    kept.insert(0, b'1');
                    break;
                }
                i -= 1;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let rounded: f64 = std::str::from_utf8(&kept)
        .expect("ASCII digits")
        .parse()
        .expect("a decimal number");
    rounded.copysign(x)
}

// ---------------------------------------------------------------------------------------
// The tests' statistics
// ---------------------------------------------------------------------------------------

/// Java's `Double.hashCode` spread as `HashMap` does, for the iteration order of a
/// `HashMap<Double, _>`.
fn java_double_bucket(x: f64, capacity: usize) -> usize {
    let bits = if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    };
    let h = (bits ^ (bits >> 32)) as u32;
    ((h ^ (h >> 16)) as usize) & (capacity - 1)
}

/// The iteration order of `HashMap<Double, _>` keys put in the order of `keys`.
fn java_double_map_order(keys: &[f64]) -> Vec<usize> {
    let mut capacity = 16usize;
    while keys.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| (java_double_bucket(keys[i], capacity), i));
    order
}

/// The label values seen (by Java `Double` equality), in order of first appearance.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Labels {
    values: Vec<f64>,
    counts: Vec<i64>,
    ids: FxHashMap<u64, usize>,
}

fn label_key(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

impl Labels {
    /// The id of `label`, counting one more row of it; `new` is called for a new label.
    fn add(&mut self, label: f64, rows: i64, mut new: impl FnMut()) -> usize {
        let next = self.values.len();
        let id = *self.ids.entry(label_key(label)).or_insert(next);
        if id == next {
            self.values.push(label);
            self.counts.push(0);
            new();
        }
        self.counts[id] += rows;
        id
    }

    fn total(&self) -> i64 {
        self.counts.iter().sum()
    }
}

/// ANOVA F-test sums: per element the sum and sum of squares, per label and element the
/// sum.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Anova {
    labels: Labels,
    sums: Vec<f64>,
    squares: Vec<f64>,
    class_sums: Vec<Vec<f64>>,
}

/// F-value test moments: label sums, element sums, and the co-moments of every element
/// with the label (Welford's updates, merged with Chan's formula).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FValue {
    rows: i64,
    label_sum: f64,
    label_squares: f64,
    sums: Vec<f64>,
    squares: Vec<f64>,
    label_mean: f64,
    means: Vec<f64>,
    comoments: Vec<f64>,
}

/// Chi-squared contingency counts: per element, (value, label id) -> rows; for sparse
/// input, per element and label the stored entries (the others are zeros).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ChiSq {
    labels: Labels,
    cells: Vec<FxHashMap<(u64, u32), i64>>,
    stored: Vec<Vec<i64>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Test {
    Anova(Anova),
    FValue(FValue),
    ChiSq(ChiSq),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Accumulator {
    dim: Option<usize>,
    test: Test,
    error: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Anova,
    FValue,
    ChiSq,
}

/// The fit's settings.
#[derive(Clone)]
struct Fit {
    features: usize,
    label: usize,
    kind: Kind,
    mode: String,
    threshold: f64,
}

const STAGE: &str = "UnivariateFeatureSelector";

fn size_error(size: usize, expected: usize) -> String {
    format!("{STAGE}: the input vectors have {size} elements, expected {expected}")
}

impl Fit {
    fn init(&self) -> Accumulator {
        Accumulator {
            dim: None,
            test: match self.kind {
                Kind::Anova => Test::Anova(Anova::default()),
                Kind::FValue => Test::FValue(FValue::default()),
                Kind::ChiSq => Test::ChiSq(ChiSq::default()),
            },
            error: None,
        }
    }

    fn fold(&self, acc: &mut Accumulator, batch: &RowBatch) {
        if acc.error.is_some() {
            return;
        }
        let Some(size) = first_size(batch, self.features) else {
            return;
        };
        let dim = *acc.dim.get_or_insert(size);
        if let Err(e) = self.fold_batch(&mut acc.test, dim, batch) {
            acc.error = Some(e);
        }
    }

    fn fold_batch(&self, test: &mut Test, dim: usize, batch: &RowBatch) -> Result<(), String> {
        let labels = batch.column(self.label);
        let label = |row: usize| {
            labels
                .number(row)
                .ok_or_else(|| format!("{STAGE}: the label column must be numeric"))
        };
        let features = batch.column(self.features);
        match test {
            Test::FValue(s) => {
                if s.rows == 0 {
                    s.sums = vec![0.0; dim];
                    s.squares = vec![0.0; dim];
                    s.means = vec![0.0; dim];
                    s.comoments = vec![0.0; dim];
                }
                dense_rows(STAGE, batch, self.features, dim, |row, x| {
                    let y = label(row)?;
                    s.rows += 1;
                    s.label_sum += y;
                    s.label_squares += y * y;
                    let n = s.rows as f64;
                    let dy = y - s.label_mean;
                    s.label_mean += dy / n;
                    let dy_after = y - s.label_mean;
                    for (j, &xj) in x.iter().enumerate() {
                        s.sums[j] += xj;
                        s.squares[j] += xj * xj;
                        let dx = xj - s.means[j];
                        s.means[j] += dx / n;
                        s.comoments[j] += dx * dy_after;
                    }
                    Ok(())
                })
            }
            Test::Anova(s) => {
                if s.sums.is_empty() && s.labels.values.is_empty() {
                    s.sums = vec![0.0; dim];
                    s.squares = vec![0.0; dim];
                }
                let class_of = |row: usize, s: &mut Anova| {
                    let class_sums = &mut s.class_sums;
                    let y = label(row)?;
                    Ok::<usize, String>(s.labels.add(y, 1, || class_sums.push(vec![0.0; dim])))
                };
                match features {
                    Column::SparseVector(c) => {
                        for (row, v) in c.iter().enumerate() {
                            if v.size != dim {
                                return Err(size_error(v.size, dim));
                            }
                            let class = class_of(row, s)?;
                            let class = &mut s.class_sums[class];
                            for (&j, &x) in v.indices.iter().zip(&v.values) {
                                s.sums[j] += x;
                                s.squares[j] += x * x;
                                class[j] += x;
                            }
                        }
                        Ok(())
                    }
                    _ => dense_rows(STAGE, batch, self.features, dim, |row, x| {
                        let class = class_of(row, s)?;
                        let class = &mut s.class_sums[class];
                        for (j, &xj) in x.iter().enumerate() {
                            s.sums[j] += xj;
                            s.squares[j] += xj * xj;
                            class[j] += xj;
                        }
                        Ok(())
                    }),
                }
            }
            Test::ChiSq(s) => {
                if s.cells.is_empty() {
                    s.cells = vec![FxHashMap::default(); dim];
                }
                match features {
                    Column::SparseVector(c) => {
                        if s.stored.is_empty() {
                            s.stored = vec![Vec::new(); dim];
                        }
                        for (row, v) in c.iter().enumerate() {
                            if v.size != dim {
                                return Err(size_error(v.size, dim));
                            }
                            let l = s.labels.add(label(row)?, 1, || {}) as u32;
                            for (&j, &x) in v.indices.iter().zip(&v.values) {
                                *s.cells[j].entry((label_key(x), l)).or_insert(0) += 1;
                                let stored = &mut s.stored[j];
                                if stored.len() <= l as usize {
                                    stored.resize(l as usize + 1, 0);
                                }
                                stored[l as usize] += 1;
                            }
                        }
                        Ok(())
                    }
                    _ => dense_rows(STAGE, batch, self.features, dim, |row, x| {
                        let l = s.labels.add(label(row)?, 1, || {}) as u32;
                        for (cells, &v) in s.cells.iter_mut().zip(x) {
                            *cells.entry((label_key(v), l)).or_insert(0) += 1;
                        }
                        Ok(())
                    }),
                }
            }
        }
    }

    fn merge(acc: &mut Accumulator, other: Accumulator) {
        if acc.error.is_some() {
            return;
        }
        if other.error.is_some() || acc.dim.is_none() {
            *acc = other;
            return;
        }
        let Some(other_dim) = other.dim else {
            return;
        };
        let dim = acc.dim.unwrap_or(other_dim);
        if dim != other_dim {
            acc.error = Some(size_error(other_dim, dim));
            return;
        }
        match (&mut acc.test, other.test) {
            (Test::FValue(a), Test::FValue(b)) => {
                if b.rows == 0 {
                    return;
                }
                if a.rows == 0 {
                    *a = b;
                    return;
                }
                let (na, nb) = (a.rows as f64, b.rows as f64);
                let n = na + nb;
                let dy = b.label_mean - a.label_mean;
                a.label_sum += b.label_sum;
                a.label_squares += b.label_squares;
                for j in 0..dim {
                    let dx = b.means[j] - a.means[j];
                    a.sums[j] += b.sums[j];
                    a.squares[j] += b.squares[j];
                    a.comoments[j] += b.comoments[j] + dx * dy * na * nb / n;
                    a.means[j] += dx * nb / n;
                }
                a.label_mean += dy * nb / n;
                a.rows += b.rows;
            }
            (Test::Anova(a), Test::Anova(b)) => {
                for j in 0..dim {
                    a.sums[j] += b.sums[j];
                    a.squares[j] += b.squares[j];
                }
                for (k, (&value, &count)) in
                    b.labels.values.iter().zip(&b.labels.counts).enumerate()
                {
                    let class_sums = &mut a.class_sums;
                    let c = a
                        .labels
                        .add(value, count, || class_sums.push(vec![0.0; dim]));
                    for (x, y) in a.class_sums[c].iter_mut().zip(&b.class_sums[k]) {
                        *x += y;
                    }
                }
            }
            (Test::ChiSq(a), Test::ChiSq(b)) => {
                // Label ids of `b` in `a`.
                let ids: Vec<u32> = b
                    .labels
                    .values
                    .iter()
                    .zip(&b.labels.counts)
                    .map(|(&value, &count)| a.labels.add(value, count, || {}) as u32)
                    .collect();
                for (cells, other) in a.cells.iter_mut().zip(b.cells) {
                    for ((value, l), count) in other {
                        *cells.entry((value, ids[l as usize])).or_insert(0) += count;
                    }
                }
                if !b.stored.is_empty() {
                    if a.stored.is_empty() {
                        a.stored = vec![Vec::new(); dim];
                    }
                    for (stored, other) in a.stored.iter_mut().zip(b.stored) {
                        for (l, count) in other.into_iter().enumerate() {
                            let id = ids[l] as usize;
                            if stored.len() <= id {
                                stored.resize(id + 1, 0);
                            }
                            stored[id] += count;
                        }
                    }
                }
            }
            _ => unreachable!("one test per fit"),
        }
    }

    /// The p-value of every element, in element order.
    fn p_values(&self, test: Test, dim: usize) -> Result<Vec<f64>, String> {
        match test {
            Test::Anova(s) => anova_p_values(&s, dim),
            Test::FValue(s) => f_value_p_values(&s, dim),
            Test::ChiSq(s) => chi_sq_p_values(s, dim),
        }
    }

    fn finish(&self, acc: Accumulator) -> Result<RowBatch, String> {
        if let Some(e) = acc.error {
            return Err(e);
        }
        let dim = acc
            .dim
            .ok_or_else(|| format!("{STAGE}: the training set is empty"))?;
        let p_values = self.p_values(acc.test, dim)?;
        let indices = select(&self.mode, self.threshold, &p_values);
        Ok(UnivariateFeatureSelectorModelData { indices }.to_batch())
    }
}

fn anova_p_values(s: &Anova, dim: usize) -> Result<Vec<f64>, String> {
    let classes = s.labels.values.len() as i64;
    let samples = s.labels.total();
    let df_between = classes - 1;
    if df_between <= 0 {
        return Err(format!("{STAGE}: num of classes should be positive"));
    }
    let df_within = samples - classes;
    if df_within <= 0 {
        return Err(format!(
            "{STAGE}: num of samples should be greater than num of classes"
        ));
    }
    // Flink sums the classes in its HashMap's order.
    let order = java_double_map_order(&s.labels.values);
    let n = samples as f64;
    (0..dim)
        .map(|j| {
            let sq_sum = s.sums[j] * s.sums[j];
            let ss_tot = s.squares[j] - sq_sum / n;
            let mut total_sq_sum = 0.0;
            for &c in &order {
                let sum = s.class_sums[c][j];
                total_sq_sum += sum * sum / s.labels.counts[c] as f64;
            }
            let ss_between = total_sq_sum - (sq_sum / n);
            let ss_within = ss_tot - ss_between;
            let ms_between = ss_between / df_between as f64;
            let ms_within = ss_within / df_within as f64;
            let f = ms_between / ms_within;
            Ok(1.0 - special::f_cdf(f, df_between as f64, df_within as f64)?)
        })
        .collect::<Result<_, String>>()
        .map_err(|e: String| format!("{STAGE}: {e}"))
}

fn f_value_p_values(s: &FValue, dim: usize) -> Result<Vec<f64>, String> {
    let rows = s.rows;
    let n = rows as f64;
    let label_mean = s.label_sum / n;
    let label_std = ((s.label_squares / n - label_mean * label_mean) * n / (n - 1.0)).sqrt();
    let dof = rows - 2;
    if dof <= 0 {
        return Err(format!(
            "{STAGE}: degrees of freedom ({dof}) must be positive (fewer than 3 rows)"
        ));
    }
    let scale = 1.0 / (rows - 1) as f64;
    (0..dim)
        .map(|j| {
            let mean = s.sums[j] / n;
            let std = ((s.squares[j] / n - mean * mean) * n / (n - 1.0)).sqrt();
            let covariance = s.comoments[j] * scale;
            let corr = covariance / (label_std * std);
            let f = corr * corr / (1.0 - corr * corr) * dof as f64;
            special::f_cdf(f, 1.0, dof as f64)
                .map(|c| 1.0 - c)
                .map_err(|e| format!("{STAGE}: {e}"))
        })
        .collect()
}

fn chi_sq_p_values(s: ChiSq, dim: usize) -> Result<Vec<f64>, String> {
    let num_labels = s.labels.values.len() as i64;
    let sample_size = s.labels.total() as f64;
    let zero = label_key(0.0);
    let mut p_values = Vec::with_capacity(dim);
    for (j, mut cells) in s.cells.into_iter().enumerate() {
        if let Some(stored) = s.stored.get(j) {
            for (l, &rows) in s.labels.counts.iter().enumerate() {
                let zeros = rows - stored.get(l).copied().unwrap_or(0);
                if zeros > 0 {
                    *cells.entry((zero, l as u32)).or_insert(0) += zeros;
                }
            }
        }
        // The categories (in value order) and their margins.
        let mut categories: Vec<(u64, i64)> = Vec::new();
        let mut margins: FxHashMap<u64, i64> = FxHashMap::default();
        for (&(value, _), &count) in &cells {
            *margins.entry(value).or_insert(0) += count;
        }
        categories.extend(margins);
        categories.sort_by(|a, b| f64::from_bits(a.0).total_cmp(&f64::from_bits(b.0)));
        let mut statistic = 0.0;
        for &(value, category_margin) in &categories {
            for (l, &label_margin) in s.labels.counts.iter().enumerate() {
                let observed = cells.get(&(value, l as u32)).copied().unwrap_or(0) as f64;
                let expected = (label_margin * category_margin) as f64 / sample_size;
                let dev = observed - expected;
                statistic += dev * dev / expected;
            }
        }
        let dof = (categories.len() as i64 - 1) * (num_labels - 1);
        let p = if dof == 0 {
            1.0
        } else {
            1.0 - special::chi_squared_cdf(statistic, dof as f64)
                .map_err(|e| format!("{STAGE}: {e}"))?
        };
        p_values.push(round_half_up_11(p));
    }
    Ok(p_values)
}

/// Flink's `SelectIndicesFromPValuesOperator` over the p-values of elements `0..n`.
fn select(mode: &str, threshold: f64, p_values: &[f64]) -> Vec<usize> {
    let n = p_values.len();
    let mut sorted: Vec<(f64, usize)> = p_values.iter().copied().zip(0..).collect();
    // `Comparator.comparingDouble` (Double.compare: -0.0 < 0.0, NaN last), then the index.
    sorted.sort_by(|a, b| super::robust_scaler::java_compare(a.0, b.0).then(a.1.cmp(&b.1)));
    match mode {
        "numTopFeatures" => sorted
            .iter()
            .take(n.min(threshold as i32 as usize))
            .map(|p| p.1)
            .collect(),
        "percentile" => sorted
            .iter()
            .take(n.min((n as f64 * threshold) as i32 as usize))
            .map(|p| p.1)
            .collect(),
        "fpr" => (0..n).filter(|&i| p_values[i] < threshold).collect(),
        "fdr" => {
            let mut max_index = None;
            for (i, p) in sorted.iter().enumerate() {
                if p.0 < (threshold / n as f64) * (i + 1) as f64 {
                    max_index = Some(i);
                }
            }
            match max_index {
                Some(m) => sorted[..=m].iter().map(|p| p.1).collect(),
                None => Vec::new(),
            }
        }
        _ => (0..n)
            .filter(|&i| p_values[i] < threshold / n as f64)
            .collect(),
    }
}

impl UnivariateFeatureSelector {
    /// The selection threshold: the param, or the mode's default; checked as Flink does.
    fn actual_threshold(&self, mode: &str) -> Result<f64, MlError> {
        let invalid = |message: String| MlError::InvalidParam {
            stage: STAGE.into(),
            param: SELECTION_THRESHOLD.name().into(),
            message,
        };
        match self.params.get_opt(&SELECTION_THRESHOLD)? {
            None => Ok(match mode {
                "numTopFeatures" => 50.0,
                "percentile" => 0.1,
                _ => 0.05,
            }),
            Some(t) if mode == "numTopFeatures" => {
                if t >= 1.0 && (t as i32) as f64 == t {
                    Ok(t)
                } else {
                    Err(invalid(format!(
                        "needs to be a positive Integer for selection mode numTopFeatures, but got {t}"
                    )))
                }
            }
            Some(t) => {
                if (0.0..=1.0).contains(&t) {
                    Ok(t)
                } else {
                    Err(invalid(format!(
                        "needs to be in the range [0, 1] for selection mode {mode}, but got {t}"
                    )))
                }
            }
        }
    }
}

impl Stage for UnivariateFeatureSelector {
    stage_basics!(Estimator);

    fn fit<'s>(&self, job: &mut Job<'s>, inputs: Vec<Table<'s>>) -> Result<Fitted<'s>, MlError> {
        let input = one_input(self, inputs)?;
        let feature_type = self.params.get_opt(&FEATURE_TYPE)?;
        let label_type = self.params.get_opt(&LABEL_TYPE)?;
        let kind = match (feature_type.as_deref(), label_type.as_deref()) {
            (Some("categorical"), Some("categorical")) => Kind::ChiSq,
            (Some("continuous"), Some("categorical")) => Kind::Anova,
            (Some("continuous"), Some("continuous")) => Kind::FValue,
            (f, l) => {
                return Err(MlError::Stage {
                    stage: STAGE.into(),
                    message: format!(
                        "unsupported combination: featureType={}, labelType={}",
                        f.unwrap_or("null"),
                        l.unwrap_or("null")
                    ),
                })
            }
        };
        let features = input.schema.typed_index(
            STAGE,
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let label = input.schema.typed_index(
            STAGE,
            &self.get(&LABEL_COL)?,
            &[DataType::Double, DataType::Long],
        )?;
        let mode = self.get(&SELECTION_MODE)?;
        let threshold = self.actual_threshold(&mode)?;
        let settings = Fit {
            features,
            label,
            kind,
            mode,
            threshold,
        };
        let mut model = UnivariateFeatureSelectorModel::new();
        model.params.copy_existing_from(&self.params)?;
        let (init, fold, finish) = (settings.clone(), settings.clone(), settings);
        let data = fit_aggregate(
            job,
            self,
            input,
            UnivariateFeatureSelectorModelData::schema(),
            move || init.init(),
            move |acc, batch| fold.fold(acc, &batch),
            Fit::merge,
            move |acc| finish.finish(acc),
        );
        Ok(Fitted {
            model: Box::new(model),
            model_data: vec![data],
        })
    }
}

impl Stage for UnivariateFeatureSelectorModel {
    stage_basics!(Model);

    model_data_methods!();

    fn transform_with<'s>(
        &self,
        job: &mut Job<'s>,
        inputs: Vec<Table<'s>>,
        model_data: Vec<Table<'s>>,
    ) -> Result<Vec<Table<'s>>, MlError> {
        let (input, model_data) = one_input_with_model(self, inputs, model_data)?;
        let column = input.schema.typed_index(
            "UnivariateFeatureSelectorModel",
            &self.get(&FEATURES_COL)?,
            &[DataType::DenseVector, DataType::SparseVector],
        )?;
        let output_type = input.schema.data_type(column);
        let schema = input
            .schema
            .with_column(&self.get(&OUTPUT_COL)?, output_type)?;
        let out = map_with_model(
            job,
            self,
            input,
            model_data,
            schema,
            |schema, batches| {
                let mut indices =
                    UnivariateFeatureSelectorModelData::from_batches(schema, &batches)?.indices;
                indices.sort_unstable();
                Ok(indices)
            },
            move |indices: &Vec<usize>, batch| {
                let needed = indices.last().map_or(0, |i| i + 1);
                let selected = select_column(&batch, column, indices, |size| {
                    if size >= needed {
                        Ok(())
                    } else {
                        Err(format!(
                            "UnivariateFeatureSelectorModel: input {size} features, but \
                             UnivariateFeatureSelector is expecting at least {needed} features as input"
                        ))
                    }
                })?;
                Ok(batch.with_column(selected))
            },
        );
        Ok(vec![out])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_on_the_exact_value() {
        // Java's `new BigDecimal(x).setScale(11, HALF_UP).doubleValue()` (OpenJDK 17).
        let cases = [
            (0.123456789015, 0.12345678901),
            (0.999999999996, 1.0),
            (1e-12, 0.0),
            (5e-12, 0.0),
            (-2.5e-11, -3e-11),
            (12345.678, 12345.678),
            (0.123456789025, 0.12345678902),
            (0.500000000005, 0.50000000001),
        ];
        for (x, want) in cases {
            assert_eq!(round_half_up_11(x), want, "{x}");
        }
    }

    /// Against Commons Math 3.6.1 run in Java (OpenJDK 17): `FDistribution(n, m)` and
    /// `ChiSquaredDistribution(k)` CDFs, within a few ulps (`FastMath` vs the platform's
    /// `exp`/`log`).
    #[test]
    fn distributions_match_commons_math() {
        let f = [
            (0.5, 1.0, 3.0, 0.469522229067043),
            (2.5, 1.0, 10.0, 0.85507239459592),
            (7.3, 2.0, 17.0, 0.9948539307109023),
            (0.01, 3.0, 5.0, 0.0015555134525659558),
            (30.0, 4.0, 100.0, 0.9999999999999998),
            (1.7, 1.0, 998.0, 0.8074113645131379),
            (3.2, 5.0, 2000.0, 0.9930067017262785),
            (0.9, 12.0, 40.0, 0.4452874548932649),
            (4.4, 25.0, 25.0, 0.9997833904518685),
            (100.0, 1.0, 7.0, 0.9999786057971092),
            (0.001, 1.0, 1.0, 0.020124978303644125),
            (2.0, 1.0, 3.0, 0.7477845036444959),
            (1.2, 21.0, 3000.0, 0.7602979752438032),
        ];
        for (x, n, m, want) in f {
            let got = special::f_cdf(x, n, m).unwrap();
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "F({n}, {m}) at {x}: {got} vs {want}"
            );
        }
        let c = [
            (0.5, 1.0, 0.5204998778130466),
            (3.84, 1.0, 0.9499564787512956),
            (10.2, 4.0, 0.9628098459503546),
            (0.1, 6.0, 2.0067493624397925e-5),
            (25.0, 12.0, 0.9851771254025584),
            (150.0, 100.0, 0.999096067957646),
            (7.0, 3.0, 0.9281022275035343),
            (1e-4, 2.0, 4.999875002083312e-5),
            (40.0, 20.0, 0.9950045876916924),
        ];
        for (x, k, want) in c {
            let got = special::chi_squared_cdf(x, k).unwrap();
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "chi2({k}) at {x}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn selection_modes() {
        let p = [0.5, 0.01, 0.2, 0.01, 0.04];
        assert_eq!(select("numTopFeatures", 2.0, &p), vec![1, 3]);
        assert_eq!(select("percentile", 0.5, &p), vec![1, 3]);
        assert_eq!(select("fpr", 0.05, &p), vec![1, 3, 4]);
        assert_eq!(select("fwe", 0.1, &p), vec![1, 3]);
        // Benjamini–Hochberg at 0.05: 0.01 < 0.01, 0.01 < 0.02, 0.04 < 0.03? no.
        assert_eq!(select("fdr", 0.05, &p), vec![1, 3]);
    }
}
