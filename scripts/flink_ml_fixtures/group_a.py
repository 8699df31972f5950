"""Group A: MinMaxScaler, MaxAbsScaler, RobustScaler, Imputer, KBinsDiscretizer,
VarianceThresholdSelector, UnivariateFeatureSelector, VectorIndexer, IDF.

Expected values come from scikit-learn / scipy / numpy with Flink ML's documented differences
applied explicitly (named in each case's "reference"), are copied literally from Flink ML's unit
tests (apache/flink-ml @ 583a6199, flink-ml-lib/src/test/java/org/apache/flink/ml/feature/), or,
where no library computes the same thing, come from a short port of Flink's Java logic.
"""
import json

import numpy as np
import scipy.sparse
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler

from .common import case, plain, rows, sparse

FLINK_TEST = "flink test: "


def sp(size, indices, values):
    """A SparseVector in fixture form; NaN values become null (the fixtures' NaN)."""
    s = sparse(size, indices, values)
    s["values"] = plain(s["values"])
    return s


def dense_of(v):
    """The dense numpy array of a fixture vector (list or sparse dict)."""
    if isinstance(v, dict):
        out = np.zeros(v["size"])
        out[v["indices"]] = [np.nan if x is None else x for x in v["values"]]
        return out
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def random_sparse(rng, size, nnz, scale=2.0):
    """A random sparse vector (fixture form) with `nnz` stored, non-zero entries."""
    idx = np.sort(rng.choice(size, nnz, replace=False))
    vals = np.round(rng.normal(0.0, scale, nnz), 3)
    vals[vals == 0.0] = 0.5
    return sparse(size, idx, vals)


def csr_of(vectors):
    """A scipy CSR matrix holding exactly the stored entries of fixture sparse vectors."""
    data, indices, indptr = [], [], [0]
    for v in vectors:
        data += v["values"]
        indices += v["indices"]
        indptr.append(len(indices))
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(vectors), vectors[0]["size"]))


def like_input(v, out_dense):
    """Flink's `input.clone()` + in-place update: a sparse input keeps its stored indices."""
    if isinstance(v, dict):
        return sp(v["size"], v["indices"], out_dense[v["indices"]])
    return plain(np.asarray(out_dense))


def vcol(name, vectors):
    """Rows of one vector column."""
    return [{name: v} for v in vectors]


# ---------------------------------------------------------------------------------------------
# MinMaxScaler
# ---------------------------------------------------------------------------------------------
def min_max_reference(fit, data, lo, hi):
    """sklearn MinMaxScaler(feature_range=(lo, hi)) with Flink's constant-feature rule:
    |max - min| < 1e-5 maps every value to (lo + hi) / 2 (sklearn would give lo + (x - min))."""
    scaler = MinMaxScaler(feature_range=(lo, hi)).fit(fit)
    out = scaler.transform(data)
    constant = np.abs(scaler.data_max_ - scaler.data_min_) < 1e-5
    out[:, constant] = (lo + hi) / 2
    return out


def min_max_scaler():
    out = []
    rng = np.random.default_rng(11)
    fit = np.round(rng.normal(1.0, 3.0, size=(40, 4)), 4)
    fit[:, 2] = 7.25  # constant
    fit[:, 3] = 2.0 + rng.uniform(0.0, 5e-6, size=40)  # |max - min| < 1e-5: also "constant"
    data = np.round(rng.normal(1.0, 4.0, size=(12, 4)), 4)  # some outside the fitted range
    data[:3, 2] = [7.25, 0.0, -3.0]
    ref = "sklearn.preprocessing.MinMaxScaler(feature_range=(min, max)); Flink: features with " \
          "|max - min| < 1e-5 map to (min + max) / 2; no clipping; output DenseVector"
    for params, lo, hi in [({}, 0.0, 1.0), ({"min": -1.0, "max": 1.0}, -1.0, 1.0), ({"min": 2.0, "max": 5.0}, 2.0, 5.0)]:
        p = {"inputCol": "input", "outputCol": "output", **params}
        out.append(case(
            f"dense, min={lo}, max={hi}, with constant features",
            "MinMaxScaler", p, [["input", "DenseVector"]],
            rows(input=data), rows(output=min_max_reference(fit, data, lo, hi)),
            fit=rows(input=fit), reference=ref))
    # min > max is accepted (no check): the scale is negative. sklearn rejects such a range, so
    # this one is Flink's formula in numpy: scale = (max - min) / (dmax - dmin),
    # offset = min - dmin * scale.
    dmin, dmax = fit.min(axis=0), fit.max(axis=0)
    const = np.abs(dmax - dmin) < 1e-5
    scale = np.where(const, 0.0, (-2.0 - 1.0) / np.where(const, 1.0, dmax - dmin))
    offset = np.where(const, (1.0 + -2.0) / 2, 1.0 - dmin * scale)
    # cross-check: mirrored range, y = (min + max) - sklearn(feature_range=(max, min))
    assert np.allclose((data * scale + offset)[:, ~const],
                       -1.0 - min_max_reference(fit, data, -2.0, 1.0)[:, ~const], rtol=0, atol=1e-12)
    out.append(case(
        "min > max (no check): reversed range",
        "MinMaxScaler", {"min": 1.0, "max": -2.0}, [["input", "DenseVector"]],
        rows(input=data), rows(output=data * scale + offset),
        fit=rows(input=fit), reference="Flink's MinMaxScalerModel formula in numpy (sklearn rejects "
        "min > max): scale = (max - min) / (dmax - dmin), offset = min - dmin * scale; constant "
        "features -> (min + max) / 2; cross-checked as (min + max) - sklearn(feature_range=(max, min))"))
    # Sparse input: densified; the output is always a DenseVector.
    fit_sp = [random_sparse(rng, 6, int(k)) for k in rng.integers(1, 5, size=30)]
    in_sp = [random_sparse(rng, 6, int(k)) for k in rng.integers(0, 5, size=10)]
    fd = np.array([dense_of(v) for v in fit_sp])
    idn = np.array([dense_of(v) for v in in_sp])
    out.append(case(
        "sparse input: densified, DenseVector output", "MinMaxScaler", {},
        [["input", "SparseVector"]], vcol("input", in_sp),
        rows(output=min_max_reference(fd, idn, 0.0, 1.0)),
        fit=vcol("input", fit_sp), reference=ref + " (on the densified vectors)"))
    # Flink's MinMaxScalerTest (expected values listed in the test; its checker ignores order,
    # here they are in input order).
    train = [[0.0, 3.0], [2.1, 0.0], [4.1, 5.1], [6.1, 8.1], [200.0, 400.0]]
    predict = [[150.0, 90.0], [50.0, 40.0], [100.0, 50.0]]
    out.append(case(
        "Flink MinMaxScalerTest data", "MinMaxScaler", {}, [["input", "DenseVector"]],
        vcol("input", predict), rows(output=[[0.75, 0.225], [0.25, 0.1], [0.5, 0.125]]),
        fit=vcol("input", train), tolerance=1e-9,
        reference=FLINK_TEST + "MinMaxScalerTest.testFitAndPredict"))
    out.append(case(
        "max value equals min value", "MinMaxScaler", {"max": 10.0, "min": 0.0},
        [["input", "DenseVector"]], vcol("input", [[30.0, 50.0]]), rows(output=[[5.0, 5.0]]),
        fit=vcol("input", [[40.0, 80.0]]),
        reference=FLINK_TEST + "MinMaxScalerTest.testMaxValueEqualsMinValueButPredictValueNotEquals"))
    return out


# ---------------------------------------------------------------------------------------------
# MaxAbsScaler
# ---------------------------------------------------------------------------------------------
def max_abs_scaler():
    out = []
    rng = np.random.default_rng(12)
    fit = np.round(rng.normal(0.0, 5.0, size=(40, 5)), 4)
    fit[:, 4] = 0.0  # all zero: scale 1 (unchanged)
    data = np.round(rng.normal(0.0, 8.0, size=(12, 5)), 4)
    ref = "sklearn.preprocessing.MaxAbsScaler (x / max|x|, a zero max gives scale 1); Flink " \
          "multiplies by 1 / max|x| (same to 1 ulp); output keeps the input vector type"
    expected = MaxAbsScaler().fit(fit).transform(data)
    out.append(case(
        "dense, with an all-zero feature", "MaxAbsScaler", {"inputCol": "input", "outputCol": "output"},
        [["input", "DenseVector"]], rows(input=data), rows(output=expected),
        fit=rows(input=fit), reference=ref))
    # Sparse: fitted on the stored entries (implicit zeros do not change a max |x| starting at 0);
    # the output keeps the input's indices.
    fit_sp = [random_sparse(rng, 6, int(k), 3.0) for k in rng.integers(1, 5, size=30)]
    for v in fit_sp:
        v["size"] = 7  # column 6 is never stored in training ...
    fit_sp[0] = sparse(7, [1, 6], [-9.5, 0.0])  # ... except as an explicit zero: max|x| 0, scale 1
    in_sp = [random_sparse(rng, 7, int(k), 3.0) for k in rng.integers(0, 5, size=10)]
    in_sp[1] = sparse(7, [2, 6], [0.0, 4.0])  # an explicit zero stays stored
    scaler = MaxAbsScaler().fit(csr_of(fit_sp))
    res = scaler.transform(np.array([dense_of(v) for v in in_sp]))
    out.append(case(
        "sparse in, sparse out (indices kept)", "MaxAbsScaler", {"inputCol": "vec", "outputCol": "scaled"},
        [["vec", "SparseVector"]], vcol("vec", in_sp),
        [{"scaled": like_input(v, r)} for v, r in zip(in_sp, res)],
        fit=vcol("vec", fit_sp), reference=ref + " (fitted on a scipy CSR matrix)"))
    # Flink's MaxAbsScalerTest data (its checker ignores order; here in input order).
    train = [[0.0, 3.0, 0.0], [2.1, 0.0, 0.0], [4.1, 5.1, 0.0], [6.1, 8.1, 0.0], [200.0, -400.0, 0.0]]
    predict = [[150.0, 90.0, 1.0], [50.0, 40.0, 1.0], [100.0, 50.0, 0.5]]
    out.append(case(
        "Flink MaxAbsScalerTest dense data", "MaxAbsScaler", {}, [["input", "DenseVector"]],
        vcol("input", predict), rows(output=[[0.75, 0.225, 1.0], [0.25, 0.1, 1.0], [0.5, 0.125, 0.5]]),
        fit=vcol("input", train), reference=FLINK_TEST + "MaxAbsScalerTest.testFitAndPredict"))
    train_sp = [sparse(4, [1, 3], [4.0, 3.0]), sparse(4, [0, 2], [2.0, -6.0]), sparse(4, [1, 2], [1.0, 3.0]),
                sparse(4, [0, 1], [2.0, 8.0]), sparse(4, [1, 3], [1.0, 5.0])]
    predict_sp = [sparse(4, [0, 1], [2.0, 4.0]), sparse(4, [0, 2], [1.0, 3.0]), sparse(4, [], []),
                  sparse(4, [1, 3], [1.0, 2.0])]
    expected_sp = [sparse(4, [0, 1], [1.0, 0.5]), sparse(4, [0, 2], [0.5, 0.5]), sparse(4, [], []),
                   sparse(4, [1, 3], [0.125, 0.4])]
    out.append(case(
        "Flink MaxAbsScalerTest sparse data", "MaxAbsScaler", {}, [["input", "SparseVector"]],
        vcol("input", predict_sp), vcol("output", expected_sp), fit=vcol("input", train_sp),
        reference=FLINK_TEST + "MaxAbsScalerTest.testFitAndPredictSparse"))
    return out


# ---------------------------------------------------------------------------------------------
# RobustScaler
# ---------------------------------------------------------------------------------------------
def exact_quantile(values, p):
    """Flink's QuantileSummary answer on small data (n * relativeError < 1/2, so no tuple is ever
    merged, on one partition or several): NaN skipped, p <= relativeError -> min,
    p >= 1 - relativeError -> max (not reached by the params used here), else the element of
    1-based rank ceil(p * n) (p * n in double arithmetic, as Java computes it). Cross-checked
    with numpy.nanquantile(method="inverted_cdf")."""
    v = np.sort(values[~np.isnan(values)])
    rank = int(np.ceil(p * len(v)))
    got = v[max(rank, 1) - 1]
    assert got == np.nanquantile(values, p, method="inverted_cdf"), (p, len(v))
    return got


def robust_reference(fit, data, lower, upper, with_centering, with_scaling):
    """median / (q_upper - q_lower) per feature (exact ranks, see exact_quantile);
    Flink: a zero range scales by 0 (sklearn would keep scale 1); output DenseVector."""
    med = np.array([exact_quantile(fit[:, j], 0.5) for j in range(fit.shape[1])])
    rng_ = np.array([exact_quantile(fit[:, j], upper) - exact_quantile(fit[:, j], lower)
                     for j in range(fit.shape[1])])
    scale = np.where(rng_ == 0, 0.0, 1.0 / np.where(rng_ == 0, 1.0, rng_))
    x = data.copy()
    if with_centering:
        x = x - med
    if with_scaling:
        x = x * scale
    return x


def robust_scaler():
    out = []
    rng = np.random.default_rng(13)
    fit = np.round(rng.normal(2.0, 3.0, size=(45, 4)), 1)  # rounded: ties
    fit[:, 3] = 5.0
    fit[[0, 7], 3] = [1.0, 9.0]  # q25 == q75: zero range -> scale 0
    fit[[3, 10, 20], 1] = np.nan  # skipped in training: column 1 has 42 values
    fit[[5], 2] = np.nan
    data = np.round(rng.normal(2.0, 4.0, size=(12, 4)), 2)
    data[4, 0] = np.nan  # NaN stays NaN
    ref = "numpy: medians and q_lower/q_upper as the exact-rank element ceil(p * n) of the " \
          "non-NaN training values (= numpy.nanquantile(method='inverted_cdf'); Flink's GK summary " \
          "is exact here); Flink: range 0 -> scale 0; out = (x - median if withCentering) * " \
          "(1 / range if withScaling); DenseVector out; sklearn.RobustScaler not used (it " \
          "interpolates quantiles)"
    for wc, ws in [(False, True), (True, True), (True, False), (False, False)]:
        params = {"inputCol": "input", "outputCol": "output", "withCentering": wc, "withScaling": ws}
        out.append(case(
            f"withCentering={wc}, withScaling={ws}", "RobustScaler", params,
            [["input", "DenseVector"]], rows(input=data),
            rows(output=robust_reference(fit, data, 0.25, 0.75, wc, ws)),
            fit=rows(input=fit), reference=ref))
    # Non-default quantiles and relativeError (0.005 * 2 * 45 < 1: still exact); sparse input is
    # densified.
    fit_sp = [random_sparse(rng, 5, int(k), 3.0) for k in rng.integers(1, 6, size=45)]
    in_sp = [random_sparse(rng, 5, int(k), 3.0) for k in rng.integers(0, 5, size=10)]
    fd = np.array([dense_of(v) for v in fit_sp])
    idn = np.array([dense_of(v) for v in in_sp])
    out.append(case(
        "sparse input, lower=0.1, upper=0.9, relativeError=0.005, withCentering",
        "RobustScaler",
        {"lower": 0.1, "upper": 0.9, "relativeError": 0.005, "withCentering": True},
        [["input", "SparseVector"]], vcol("input", in_sp),
        rows(output=robust_reference(fd, idn, 0.1, 0.9, True, True)),
        fit=vcol("input", fit_sp), reference=ref + " (on the densified vectors)"))
    # Flink's RobustScalerTest (its checker ignores row order; here in input order).
    train = [[float(i), -float(i)] for i in range(9)]
    predict = [[3.0, -3.0], [6.0, -6.0], [99.0, -99.0]]
    for name, params, expected in [
        ("testFitAndPredict", {}, [[0.75, -0.75], [1.5, -1.5], [24.75, -24.75]]),
        ("testWithCentering", {"withCentering": True}, [[-0.25, 0.25], [0.5, -0.5], [23.75, -23.75]]),
        ("testWithoutScaling", {"withCentering": True, "withScaling": False},
         [[-1.0, 1.0], [2.0, -2.0], [95.0, -95.0]]),
    ]:
        assert np.allclose(robust_reference(np.array(train), np.array(predict), 0.25, 0.75,
                                            params.get("withCentering", False),
                                            params.get("withScaling", True)), expected)
        out.append(case(
            f"Flink RobustScalerTest.{name}", "RobustScaler", params, [["input", "DenseVector"]],
            vcol("input", predict), vcol("output", expected), fit=vcol("input", train),
            reference=FLINK_TEST + f"RobustScalerTest.{name}"))
    zero_train = [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [4.0, 4.0]]
    out.append(case(
        "Flink RobustScalerTest.testZeroRange", "RobustScaler", {}, [["input", "DenseVector"]],
        vcol("input", predict), vcol("output", [[0.0, -0.0], [0.0, -0.0], [0.0, -0.0]]),
        fit=vcol("input", zero_train), reference=FLINK_TEST + "RobustScalerTest.testZeroRange"))
    nan = None
    nan_train = [[0.0, nan], [nan, 0.0], [1.0, -1.0], [2.0, -2.0], [3.0, -3.0], [4.0, -4.0]]
    out.append(case(
        "Flink RobustScalerTest.testNaNData", "RobustScaler", {}, [["input", "DenseVector"]],
        vcol("input", nan_train),
        vcol("output", [[0.0, nan], [nan, 0.0], [0.5, -0.5], [1.0, -1.0], [1.5, -1.5], [2.0, -2.0]]),
        fit=vcol("input", nan_train), reference=FLINK_TEST + "RobustScalerTest.testNaNData"))
    return out


# ---------------------------------------------------------------------------------------------
# Imputer
# ---------------------------------------------------------------------------------------------
def is_missing(values, missing):
    """Flink's `Double.valueOf(v).equals(missingValue)` (bit pattern: NaN equals NaN, -0.0 is not
    0.0)."""
    v = np.asarray(values, dtype=float)
    if np.isnan(missing):
        return np.isnan(v)
    return (v == missing) & (np.signbit(v) == np.signbit(missing))


def imputer_surrogate(col, strategy, missing):
    """The surrogate of one training column: NaN (= null) and missingValue are skipped.
    mean: numpy mean; median: the exact-rank element ceil(0.5 * n) (Flink's GK summary is exact
    on small data; sklearn's SimpleImputer would average the two middle values); most_frequent:
    highest count, ties -> the smallest value (as sklearn.impute.SimpleImputer does)."""
    col = np.asarray(col, dtype=float)
    valid = col[~np.isnan(col) & ~is_missing(col, missing)]
    if strategy == "mean":
        return valid.mean()
    if strategy == "median":
        return exact_quantile(valid, 0.5)
    if len(valid) == 0:
        return np.nan  # another column had valid data: this column's surrogate is NaN
    values, counts = np.unique(valid, return_counts=True)  # sorted, so argmax takes the smallest
    return values[np.argmax(counts)]


def sklearn_surrogate(col, strategy, missing):
    """Cross-check with sklearn.impute.SimpleImputer where it computes the same thing (NaN
    turned into the missing value first, as both are skipped; no -0.0 vs 0.0 distinction)."""
    from sklearn.impute import SimpleImputer
    col = np.asarray(col, dtype=float).copy()
    if not np.isnan(missing):
        col[np.isnan(col)] = missing
    return SimpleImputer(missing_values=missing, strategy=strategy).fit(col.reshape(-1, 1)).statistics_[0]


def imputer_case(name, fit_cols, in_cols, types, strategy, missing, params, *, sklearn_check=True,
                 reference):
    names = list(fit_cols)
    outs = [f"o_{n}" for n in names]
    surrogates = {}
    for n in names:
        surrogates[n] = imputer_surrogate(fit_cols[n], strategy, missing)
        if sklearn_check and strategy != "median":
            assert np.isclose(surrogates[n], sklearn_surrogate(fit_cols[n], strategy, missing),
                              rtol=1e-12, equal_nan=True), (name, n)
    expected = {}
    for n, o in zip(names, outs):
        v = np.asarray(in_cols[n], dtype=float)
        expected[o] = np.where(is_missing(v, missing), surrogates[n], v)
    p = {"inputCols": names, "outputCols": outs, **params}
    extra = {k: v for k, v in in_cols.items() if k not in fit_cols}  # trailing Long id columns
    schema = [[n, types.get(n, "Double")] for n in names] + [[k, "Long"] for k in extra]
    fit_rows = rows(**fit_cols, **{k: list(range(len(fit_cols[names[0]]))) for k in extra})
    return case(name, "Imputer", p, schema, rows(**in_cols), rows(**expected), fit=fit_rows,
                reference=reference)


def imputer():
    out = []
    rng = np.random.default_rng(14)
    n_fit, n_in = 40, 12

    def column(n, loc, scale, decimals, missing_frac, missing_value=np.nan):
        c = np.round(rng.normal(loc, scale, n), decimals)
        c[rng.random(n) < missing_frac] = missing_value
        return c

    ref_common = "inputCols are the table's first columns, in order (Flink's ImputerModel reads " \
                 "field i positionally); output Double columns"
    # Default missingValue NaN: NaN (null) values are skipped in training and replaced.
    fit = {"a": column(n_fit, 3.0, 2.0, 2, 0.2), "b": column(n_fit, -1.0, 5.0, 0, 0.1),
           "c": np.round(rng.integers(0, 6, n_fit).astype(float))}
    inp = {"a": column(n_in, 3.0, 2.0, 2, 0.3), "b": column(n_in, -1.0, 5.0, 0, 0.3),
           "c": rng.integers(0, 6, n_in).astype(float), "id": np.arange(n_in)}
    types = {"c": "Long"}
    fit["c"] = fit["c"].astype(np.int64)
    inp["c"] = inp["c"].astype(np.int64)
    for strategy, what in [("mean", "sklearn.impute.SimpleImputer(strategy='mean') (numpy mean)"),
                           ("median", "numpy.nanquantile(0.5, method='inverted_cdf') = rank ceil(n/2) "
                                      "(Flink's exact GK median; NOT sklearn's interpolated median)"),
                           ("most_frequent", "sklearn.impute.SimpleImputer(strategy='most_frequent') "
                                             "(ties -> smallest value, as Flink)")]:
        params = {} if strategy == "mean" else {"strategy": strategy}
        out.append(imputer_case(
            f"strategy={strategy}, missingValue=NaN, a Long column", fit, inp, types, strategy,
            np.nan, params, reference=f"{what}; NaN skipped in training; {ref_common}"))
    # missingValue = -1.0: NaN is still skipped in training; at transform only values equal to
    # missingValue are replaced (no NaN in the input rows here: a Double null and NaN are the same
    # value in the fixtures, but Flink replaces null always and NaN only when missingValue is NaN).
    fit2 = {"a": column(n_fit, 1.0, 2.0, 0, 0.25, -1.0), "b": column(n_fit, 0.0, 3.0, 1, 0.1, -1.0)}
    fit2["a"][[2, 9]] = np.nan
    inp2 = {"a": column(n_in, 1.0, 2.0, 0, 0.3, -1.0), "b": column(n_in, 0.0, 3.0, 1, 0.3, -1.0)}
    for strategy in ["mean", "median", "most_frequent"]:
        out.append(imputer_case(
            f"strategy={strategy}, missingValue=-1.0", fit2, inp2, {}, strategy, -1.0,
            {"strategy": strategy, "missingValue": -1.0, "relativeError": 0.005},
            reference="numpy (mean; median as rank ceil(n/2); most_frequent with ties -> smallest), "
                      "cross-checked with sklearn.impute.SimpleImputer(missing_values=-1.0) for "
                      f"mean/most_frequent; NaN and -1.0 skipped in training; {ref_common}"))
    # missingValue = 0.0 and -0.0 values: Double.equals compares bit patterns, so -0.0 is a valid
    # value (kept in training, not replaced), unlike sklearn where -0.0 == 0.0.
    fit3 = {"a": np.array([0.0, -0.0, 2.0, 3.0, 0.0, -0.0, 5.0, 0.0, 1.0, -0.0, 4.0, 2.0]),
            "b": np.array([1.0, 1.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0, -0.0, 7.0, 0.0, 2.0])}
    inp3 = {"a": np.array([0.0, -0.0, 1.5, 0.0]), "b": np.array([-0.0, 0.0, 0.0, 2.5])}
    for strategy in ["mean", "most_frequent"]:
        out.append(imputer_case(
            f"strategy={strategy}, missingValue=0.0: -0.0 is a value, not missing", fit3, inp3, {},
            strategy, 0.0, {"strategy": strategy, "missingValue": 0.0}, sklearn_check=False,
            reference="numpy with Flink's Double.equals rule (-0.0 != 0.0, so -0.0 is kept in "
                      "training and passed through at transform; sklearn would treat -0.0 as "
                      f"missing); most_frequent ties -> smallest (-0.0 < 1.0); {ref_common}"))
    # most_frequent: a column without any valid training value gets a NaN surrogate (no error,
    # since another column has valid data).
    fit4 = {"a": np.array([2.0, 2.0, np.nan, 5.0, 5.0, 7.0]), "b": np.full(6, np.nan)}
    inp4 = {"a": np.array([np.nan, 1.0, np.nan]), "b": np.array([np.nan, 4.0, np.nan])}
    out.append(imputer_case(
        "most_frequent: tie -> smaller value; an all-missing column gets a NaN surrogate",
        fit4, inp4, {}, "most_frequent", np.nan, {"strategy": "most_frequent"}, sklearn_check=False,
        reference="numpy (np.unique counts, ties -> smallest value as sklearn SimpleImputer); "
                  "Flink: only fails when NO column has a valid value, otherwise an all-missing "
                  f"column's surrogate is NaN; {ref_common}"))
    # Flink's ImputerTest: its Integer and Float columns are given here as Double columns
    # (nulls become NaN, which the default missingValue NaN replaces just like null).
    nan = None
    train = [[nan, 9.0, 1.0, 9.0], [1.0, 9.0, nan, 9.0], [1.5, 7.0, 1.0, 7.0],
             [1.5, nan, 2.0, nan], [4.0, 5.0, 4.0, 5.0], [nan, 4.0, nan, 4.0]]
    expected = {
        "mean": [[2.0, 9.0, 1.0, 9.0], [1.0, 9.0, 2.0, 9.0], [1.5, 7.0, 1.0, 7.0],
                 [1.5, 6.8, 2.0, 6.8], [4.0, 5.0, 4.0, 5.0], [2.0, 4.0, 2.0, 4.0]],
        "median": [[1.5, 9.0, 1.0, 9.0], [1.0, 9.0, 1.0, 9.0], [1.5, 7.0, 1.0, 7.0],
                   [1.5, 7.0, 2.0, 7.0], [4.0, 5.0, 4.0, 5.0], [1.5, 4.0, 1.0, 4.0]],
        "most_frequent": [[1.5, 9.0, 1.0, 9.0], [1.0, 9.0, 1.0, 9.0], [1.5, 7.0, 1.0, 7.0],
                          [1.5, 9.0, 2.0, 9.0], [4.0, 5.0, 4.0, 5.0], [1.5, 4.0, 1.0, 4.0]],
    }
    cols = ["f1", "f2", "f3", "f4"]
    train_rows = [dict(zip(cols, r)) for r in train]
    for strategy, exp in expected.items():
        # cross-check the literal values against this module's reference
        tr = np.array([[np.nan if x is None else x for x in r] for r in train])
        for j in range(4):
            sur = imputer_surrogate(tr[:, j], strategy, np.nan)
            assert np.allclose(np.where(np.isnan(tr[:, j]), sur, tr[:, j]), [r[j] for r in exp])
        out.append(case(
            f"Flink ImputerTest.testFitAndPredict, strategy={strategy}", "Imputer",
            {"inputCols": cols, "outputCols": ["o1", "o2", "o3", "o4"], "strategy": strategy},
            [[c, "Double"] for c in cols], train_rows,
            [dict(zip(["o1", "o2", "o3", "o4"], r)) for r in exp], fit=train_rows,
            reference=FLINK_TEST + "ImputerTest.testFitAndPredict (Integer/Float columns as Double)"))
    mm_train = [{"f1": 1.0, "f2": 2.0}, {"f1": 1.0, "f2": 2.0}, {"f1": 2.0, "f2": 1.0}, {"f1": 2.0, "f2": 1.0}]
    out.append(case(
        "Flink ImputerTest.testMultipleModeOnMostFrequentStrategy (surrogates 1.0, 1.0)", "Imputer",
        {"inputCols": ["f1", "f2"], "outputCols": ["o1", "o2"], "strategy": "most_frequent"},
        [["f1", "Double"], ["f2", "Double"]], [{"f1": nan, "f2": nan}, {"f1": 3.0, "f2": nan}],
        [{"o1": 1.0, "o2": 1.0}, {"o1": 3.0, "o2": 1.0}], fit=mm_train,
        reference=FLINK_TEST + "ImputerTest.testMultipleModeOnMostFrequentStrategy (the test asserts "
                  "the surrogates f1 = 1.0, f2 = 1.0; here they fill NaN inputs)"))
    return out


# ---------------------------------------------------------------------------------------------
# KBinsDiscretizer
# ---------------------------------------------------------------------------------------------
INF = float("inf")


def kbins_uniform_edges(col, num_bins):
    """Flink: edges min, min + w, min + 2w, ... by cumulative addition (w = (max - min) / k);
    a constant column gets [-inf, inf]. (sklearn's np.linspace edges agree to rounding.)"""
    lo, hi = float(np.min(col)), float(np.max(col))
    if lo == hi:
        return [-INF, INF]
    width = (hi - lo) / num_bins
    edges = [lo]
    for _ in range(num_bins):
        edges.append(edges[-1] + width)
    return edges


def kbins_quantile_edges(col, num_bins):
    """Port of Flink's findBinEdgesWithQuantileStrategy: sorted values; if n > k the edges are
    v[(int) (b * n / k)] for b < k plus v[n - 1], else all values; duplicates kept at most twice,
    sorted, then a repeated edge becomes the mean of its neighbours (the right one of a pair, or
    the left one for the last pair)."""
    f = sorted(float(x) for x in col)
    n = len(f)
    if f[0] == f[-1]:
        return [-INF, INF]
    if n > num_bins:
        width = 1.0 * n / num_bins
        temp = [f[int(b * width)] for b in range(num_bins)] + [f[n - 1]]
    else:
        temp = list(f)
    counts = {}
    for e in temp:
        counts[e] = counts.get(e, 0) + 1
    edges = sorted([e for e, c in counts.items() for _ in range(2 if c > 1 else 1)])
    i = 1
    while i < len(edges) - 1:
        if edges[i] == edges[i - 1]:
            edges[i] = (edges[i + 1] + edges[i - 1]) / 2
        i += 1
    if edges[i] == edges[i - 1]:
        edges[i - 1] = (edges[i] + edges[i - 2]) / 2
    return edges


def kbins_kmeans_edges(col, num_bins):
    """Port of Flink's findBinEdgesWithKMeansStrategy: <= k distinct values -> uniform edges;
    else 1-D Lloyd iterations from centroids v[(int) (c * n / k)] (nearest centroid, ties to the
    lower id; stop when |loss - oldLoss| <= 1e-4 or 300 iterations; loss = mean |x - c|), sorted
    centroids, edges = [min, midpoints..., max]. Python loops keep Java's summation order."""
    f = sorted(float(x) for x in col)
    n = len(f)
    if f[0] == f[-1]:
        return [-INF, INF]
    if len(set(f)) <= num_bins:
        return kbins_uniform_edges(f, num_bins)
    width = 1.0 * n / num_bins
    cent = [f[int(c * width)] for c in range(num_bins)]
    old_loss, rel, it = 1.7976931348623157e308, 1.7976931348623157e308, 0
    while it < 300 and rel > 1e-4:
        sums, cnts, loss = [0.0] * num_bins, [0] * num_bins, 0.0
        for x in f:
            best, cid = abs(cent[0] - x), 0
            for i in range(1, num_bins):
                d = abs(cent[i] - x)
                if d < best:
                    best, cid = d, i
            cnts[cid] += 1
            sums[cid] += x
            loss += best
        assert all(cnts), "an empty k-means cluster (NaN centroid): pick other data"
        cent = [sums[i] / cnts[i] for i in range(num_bins)]
        loss /= n
        rel = abs(loss - old_loss)
        old_loss = loss
        it += 1
    cent.sort()
    return [f[0]] + [(cent[i - 1] + cent[i]) / 2 for i in range(1, num_bins)] + [f[-1]]


def kbins_transform(edges, x):
    """Flink's FindBinFunction: Arrays.binarySearch; an exact edge j -> bin j, otherwise the bin
    to the left of the insertion point; clipped to [0, len(edges) - 2] (= sklearn's
    np.searchsorted(edges[1:-1], x, side='right') on distinct edges)."""
    out = []
    for j, v in enumerate(x):
        e = edges[j]
        i = int(np.searchsorted(e, v, side="left"))
        idx = i if (i < len(e) and e[i] == v) else i - 1
        idx = max(min(idx, len(e) - 2), 0)
        assert idx == max(min(int(np.searchsorted(e[1:-1], v, side="right")), len(e) - 2), 0)
        out.append(float(idx))
    return out


def kbins_expected(fit, data, strategy, num_bins):
    edge_fn = {"uniform": kbins_uniform_edges, "quantile": kbins_quantile_edges,
               "kmeans": kbins_kmeans_edges}[strategy]
    edges = [edge_fn(fit[:, j], num_bins) for j in range(fit.shape[1])]
    return [kbins_transform(edges, x) for x in data], edges


def kbins_discretizer():
    import warnings

    from sklearn.preprocessing import KBinsDiscretizer
    warnings.filterwarnings("ignore", message="Feature .* is constant")
    out = []
    rng = np.random.default_rng(15)
    fit = np.column_stack([
        np.round(rng.normal(0.0, 3.0, 40), 2),
        rng.integers(0, 8, 40).astype(float),  # many ties
        np.round(rng.exponential(2.0, 40), 2),
        np.full(40, 4.5),  # constant: edges [-inf, inf], bin 0
    ])
    data = np.column_stack([
        np.round(rng.normal(0.0, 4.0, 14), 2),
        rng.integers(-2, 10, 14).astype(float),
        np.round(rng.exponential(2.5, 14), 2),
        np.round(rng.normal(4.5, 2.0, 14), 2),
    ])
    data[0] = fit.min(axis=0)  # exactly the first edge
    data[1] = fit.max(axis=0)  # the last edge -> last bin
    # uniform: cross-checked with sklearn's bins (same edges up to rounding; no input sits on an
    # inner edge).
    for num_bins, params in [(5, {"strategy": "uniform"}), (3, {"strategy": "uniform", "numBins": 3})]:
        exp, _ = kbins_expected(fit, data, "uniform", num_bins)
        sk = KBinsDiscretizer(n_bins=num_bins, encode="ordinal", strategy="uniform").fit(fit)
        assert np.array_equal(sk.transform(data), np.array(exp))
        out.append(case(
            f"uniform, numBins={num_bins}", "KBinsDiscretizer",
            {"inputCol": "input", "outputCol": "output", **params}, [["input", "DenseVector"]],
            rows(input=data), vcol("output", exp), fit=rows(input=fit),
            reference="sklearn.preprocessing.KBinsDiscretizer(strategy='uniform', encode='ordinal') "
                      "(identical bins; Flink builds the edges by cumulative addition); constant "
                      "feature -> bin 0; out-of-range values clipped to the first/last bin"))
    qref = "port of Flink's quantile edges (v[(int) (b * n / k)], duplicate edges kept twice and " \
           "then replaced by neighbour means) and FindBinFunction (Arrays.binarySearch, clipped); " \
           "sklearn's quantile strategy interpolates and drops narrow bins, so it is not used"
    exp, _ = kbins_expected(fit, data, "quantile", 5)
    out.append(case(
        "quantile (default), numBins=5 (default), ties in a column", "KBinsDiscretizer", {},
        [["input", "DenseVector"]], rows(input=data), vcol("output", exp), fit=rows(input=fit),
        reference=qref))
    exp, _ = kbins_expected(fit, data, "quantile", 7)
    out.append(case(
        "quantile, numBins=7, subSamples=1000 (>= rows: no sampling)", "KBinsDiscretizer",
        {"strategy": "quantile", "numBins": 7, "subSamples": 1000},
        [["input", "DenseVector"]], rows(input=data), vcol("output", exp), fit=rows(input=fit),
        reference=qref))
    # n <= numBins: every sorted training value is an edge (repeated ones de-duplicated).
    small = np.array([[3.0, 1.0], [1.0, 1.0], [2.0, 1.0], [2.0, 5.0], [8.0, 1.0], [3.0, 2.0]])
    small_in = np.array([[0.5, 0.0], [1.0, 1.0], [2.0, 1.5], [2.6, 2.0], [3.0, 3.9], [7.9, 5.0],
                         [9.0, 7.0], [2.4, 1.4]])
    exp, edges = kbins_expected(small, small_in, "quantile", 8)
    out.append(case(
        "quantile, numBins=8 > rows: all values are edges", "KBinsDiscretizer",
        {"strategy": "quantile", "numBins": 8}, [["input", "DenseVector"]],
        rows(input=small_in), vcol("output", exp), fit=rows(input=small),
        reference=qref + f" (edges {edges})"))
    kref = "port of Flink's 1-D k-means edges (init v[(int) (c * n / k)], ties to the lower " \
           "centroid, |loss change| <= 1e-4 or 300 iterations, edges = [min, centroid midpoints, " \
           "max]; <= k distinct values -> uniform edges) and FindBinFunction; sklearn's kmeans " \
           "strategy initialises differently, so it is not used"
    for num_bins in [4, 8]:
        exp, _ = kbins_expected(fit, data, "kmeans", num_bins)
        out.append(case(
            f"kmeans, numBins={num_bins}", "KBinsDiscretizer",
            {"strategy": "kmeans", "numBins": num_bins}, [["input", "DenseVector"]],
            rows(input=data), vcol("output", exp), fit=rows(input=fit),
            reference=kref + (" (column 1 has 8 distinct values: uniform fallback)"
                              if num_bins == 8 else "")))
    # Sparse input: densified; output DenseVector.
    fit_sp = [random_sparse(rng, 5, int(k), 3.0) for k in rng.integers(1, 6, size=40)]
    in_sp = [random_sparse(rng, 5, int(k), 3.0) for k in rng.integers(0, 5, size=10)]
    fd = np.array([dense_of(v) for v in fit_sp])
    idn = np.array([dense_of(v) for v in in_sp])
    exp, _ = kbins_expected(fd, idn, "quantile", 4)
    out.append(case(
        "sparse input, quantile, numBins=4", "KBinsDiscretizer", {"numBins": 4},
        [["input", "SparseVector"]], vcol("input", in_sp), vcol("output", exp),
        fit=vcol("input", fit_sp), reference=qref + " (on the densified vectors)"))
    # Flink's KBinsDiscretizerTest.testFitAndPredict (numBins 3).
    train = [[1.0, 10.0, 0.0]] * 3 + [[4.0, 10.0, 0.0], [5.0, 10.0, 0.0], [6.0, 10.0, 0.0],
                                      [7.0, 10.0, 0.0], [10.0, 10.0, 0.0], [13.0, 10.0, 3.0]]
    test = [[-1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.5, 1.0, 2.0], [5.0, 2.0, 3.0], [7.25, 3.0, 4.0],
            [13.0, 4.0, 5.0], [15.0, 4.0, 6.0]]
    flink_out = {
        "uniform": [[0, 0, 0], [0, 0, 1], [0, 0, 2], [1, 0, 2], [1, 0, 2], [2, 0, 2], [2, 0, 2]],
        "quantile": [[0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 1], [2, 0, 1], [2, 0, 1], [2, 0, 1]],
        "kmeans": [[0, 0, 0], [0, 0, 1], [0, 0, 2], [1, 0, 2], [1, 0, 2], [2, 0, 2], [2, 0, 2]],
    }
    for strategy, expected in flink_out.items():
        expected = [[float(v) for v in r] for r in expected]
        mine, _ = kbins_expected(np.array(train), np.array(test), strategy, 3)
        assert mine == expected, (strategy, mine)
        out.append(case(
            f"Flink KBinsDiscretizerTest.testFitAndPredict, strategy={strategy}",
            "KBinsDiscretizer", {"strategy": strategy, "numBins": 3}, [["input", "DenseVector"]],
            vcol("input", test), vcol("output", expected), fit=vcol("input", train),
            reference=FLINK_TEST + "KBinsDiscretizerTest.testFitAndPredict"))
    # testBinsWithWidthAsZero: numBins 10 > 9 rows (Flink's checker sorts the rows before
    # comparing; the port puts the same multiset in input order).
    listed = [[0, 0, 0], [0, 0, 0], [0, 0, 1], [3, 0, 1], [5, 0, 1], [6, 0, 1], [6, 0, 1]]
    mine, _ = kbins_expected(np.array(train), np.array(test), "quantile", 10)
    assert sorted(mine) == sorted([[float(v) for v in r] for r in listed]), mine
    out.append(case(
        "Flink KBinsDiscretizerTest.testBinsWithWidthAsZero", "KBinsDiscretizer",
        {"strategy": "quantile", "numBins": 10}, [["input", "DenseVector"]],
        vcol("input", test), vcol("output", mine), fit=vcol("input", train),
        reference=FLINK_TEST + "KBinsDiscretizerTest.testBinsWithWidthAsZero (the test's rows "
                  "compared as a sorted multiset; row order from the port of Flink's logic)"))
    return out


# ---------------------------------------------------------------------------------------------
# VarianceThresholdSelector
# ---------------------------------------------------------------------------------------------
def select_like_input(v, keep):
    """Flink's selectByIndices (sorted indices): dense -> dense; sparse -> sparse of size
    len(keep) holding the stored entries (explicit zeros too) at kept positions. Nothing kept:
    Flink returns an empty DenseVector whatever the input type; Weir's column types are fixed
    when a job is built, so a sparse input gives an empty SparseVector (documented in
    docs/flink-ml.md)."""
    keep = list(keep)
    if not keep:
        return sparse(0, [], []) if isinstance(v, dict) else []
    if isinstance(v, dict):
        pos = {k: j for j, k in enumerate(keep)}
        pairs = [(pos[i], x) for i, x in zip(v["indices"], v["values"]) if i in pos]
        return sparse(len(keep), [p for p, _ in pairs], [x for _, x in pairs])
    return [v[k] for k in keep]


def variance_keep(fit_dense, threshold):
    """sklearn.feature_selection.VarianceThreshold(threshold).get_support(): population variance
    > threshold (Flink computes E[x^2] - E[x]^2; the data keep every variance well away from the
    threshold and constant features exact, so both rules agree)."""
    from sklearn.feature_selection import VarianceThreshold
    var = fit_dense.var(axis=0)
    n = len(fit_dense)
    flink_var = (fit_dense ** 2).sum(axis=0) / n - (fit_dense.sum(axis=0) / n) ** 2
    assert np.all(np.abs(flink_var - threshold) > 1e-6) or threshold == 0.0
    assert np.all((flink_var > threshold) == (var > threshold))
    try:
        support = VarianceThreshold(threshold).fit(fit_dense).get_support()
    except ValueError:  # sklearn refuses when nothing passes
        support = var > threshold
        assert not support.any()
    assert np.array_equal(support, var > threshold)
    return np.flatnonzero(support)


def variance_threshold_selector():
    out = []
    rng = np.random.default_rng(16)
    fit = np.round(rng.normal(0.0, 1.0, size=(40, 6)) * np.array([0.5, 1.0, 2.0, 3.0, 0.0, 1.5]), 3)
    fit[:, 4] = 2.5  # constant (exact in binary: Flink's E[x^2] - E[x]^2 is exactly 0)
    data = np.round(rng.normal(0.0, 2.0, size=(10, 6)), 3)
    ref = "sklearn.feature_selection.VarianceThreshold (population variance > threshold, strict); " \
          "output keeps the input vector type (sparse keeps stored entries); none kept -> empty " \
          "DenseVector"
    for threshold, params in [(0.0, {}), (1.0, {"varianceThreshold": 1.0}),
                              (3.0, {"varianceThreshold": 3.0}), (100.0, {"varianceThreshold": 100.0})]:
        keep = variance_keep(fit, threshold)
        inputs = [plain(r) for r in data]
        out.append(case(
            f"dense, varianceThreshold={threshold} (keeps {[int(k) for k in keep]})", "VarianceThresholdSelector",
            {"inputCol": "input", "outputCol": "output", **params}, [["input", "DenseVector"]],
            vcol("input", inputs), [{"output": select_like_input(v, keep)} for v in inputs],
            fit=rows(input=fit), reference=ref))
    fit_sp = [random_sparse(rng, 7, int(k), 2.0) for k in rng.integers(0, 6, size=40)]
    for v in fit_sp:  # column 6 never stored: variance 0
        keep_idx = [j for j, i in enumerate(v["indices"]) if i != 6]
        v["indices"] = [v["indices"][j] for j in keep_idx]
        v["values"] = [v["values"][j] for j in keep_idx]
    in_sp = [random_sparse(rng, 7, int(k), 2.0) for k in rng.integers(0, 6, size=10)]
    in_sp[0] = sparse(7, [1, 3, 6], [0.0, 2.0, 5.0])  # explicit zero kept
    fd = np.array([dense_of(v) for v in fit_sp])
    for threshold, params in [(0.5, {"varianceThreshold": 0.5}), (50.0, {"varianceThreshold": 50.0})]:
        keep = variance_keep(fd, threshold)
        out.append(case(
            f"sparse, varianceThreshold={threshold} (keeps {[int(k) for k in keep]})", "VarianceThresholdSelector",
            {"varianceThreshold": threshold}, [["input", "SparseVector"]], vcol("input", in_sp),
            [{"output": select_like_input(v, keep)} for v in in_sp], fit=vcol("input", fit_sp),
            reference=ref + " (fitted on the densified vectors)"))
    # Flink's VarianceThresholdSelectorTest (threshold 8.0 keeps 0, 3, 5). Its training column
    # mixes dense and sparse rows; a fixture column has one type, so the dense rows are used
    # with a DenseVector column and the sparse one with the training rows as sparse vectors.
    train = [[5.0, 7.0, 0.0, 7.0, 6.0, 0.0], [0.0, 9.0, 6.0, 0.0, 5.0, 9.0],
             [0.0, 9.0, 3.0, 0.0, 5.0, 5.0], [1.0, 9.0, 8.0, 5.0, 7.0, 4.0],
             [9.0, 8.0, 6.0, 5.0, 4.0, 4.0], [6.0, 9.0, 7.0, 0.0, 2.0, 0.0]]
    assert list(variance_keep(np.array(train), 8.0)) == [0, 3, 5]
    out.append(case(
        "Flink VarianceThresholdSelectorTest dense rows", "VarianceThresholdSelector",
        {"varianceThreshold": 8.0}, [["input", "DenseVector"]],
        vcol("input", [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]),
        vcol("output", [[1.0, 4.0, 6.0], [0.1, 0.4, 0.6]]), fit=vcol("input", train),
        reference=FLINK_TEST + "VarianceThresholdSelectorTest.testFitAndPredict (training rows "
                  "all dense)"))
    train_sp = [sparse(6, [i for i, x in enumerate(r) if x != 0.0], [x for x in r if x != 0.0])
                for r in train]
    out.append(case(
        "Flink VarianceThresholdSelectorTest sparse row", "VarianceThresholdSelector",
        {"varianceThreshold": 8.0}, [["input", "SparseVector"]],
        vcol("input", [sparse(6, [0, 3, 4], [0.1, 0.3, 0.5])]),
        vcol("output", [sparse(3, [0, 1], [0.1, 0.3])]), fit=vcol("input", train_sp),
        reference=FLINK_TEST + "VarianceThresholdSelectorTest.testFitAndPredict (training rows "
                  "all as sparse vectors, i.e. toSparse())"))
    return out


# Flink's UnivariateFeatureSelectorTest data, copied from the Java file (label, features).
INPUT_CHISQ_DATA = [
    (0.0, [6.0, 7.0, 0.0, 7.0, 6.0, 0.0]),
    (1.0, [0.0, 9.0, 6.0, 0.0, 5.0, 9.0]),
    (1.0, [0.0, 9.0, 3.0, 0.0, 5.0, 5.0]),
    (1.0, [0.0, 9.0, 8.0, 5.0, 6.0, 4.0]),
    (2.0, [8.0, 9.0, 6.0, 5.0, 4.0, 4.0]),
    (2.0, [8.0, 9.0, 6.0, 4.0, 0.0, 0.0]),
]
INPUT_ANOVA_DATA = [
    (1, [4.65415496e-03, 1.03550567e-01, -1.17358140e+00, 1.61408773e-01, 3.92492111e-01, 7.31240882e-01]),
    (1, [-9.01651741e-01, -5.28905302e-01, 1.27636785e+00, 7.02154563e-01, 6.21348351e-01, 1.88397353e-01]),
    (1, [3.85692159e-01, -9.04639637e-01, 5.09782604e-02, 8.40043971e-01, 7.45977857e-01, 8.78402288e-01]),
    (1, [1.36264353e+00, 2.62454094e-01, 7.96306202e-01, 6.14948000e-01, 7.44948187e-01, 9.74034830e-01]),
    (1, [9.65874070e-01, 2.52773665e+00, -2.19380094e+00, 2.33408080e-01, 1.86340919e-01, 8.23390433e-01]),
    (2, [1.12324305e+01, -2.77121515e-01, 1.12740513e-01, 2.35184013e-01, 3.46668895e-01, 9.38500782e-02]),
    (2, [1.06195839e+01, -1.82891238e+00, 2.25085601e-01, 9.09979851e-01, 6.80257535e-02, 8.24017480e-01]),
    (2, [1.12806837e+01, 1.30686889e+00, 9.32839108e-02, 3.49784755e-01, 1.71322408e-02, 7.48465194e-02]),
    (2, [9.98689462e+00, 9.50808938e-01, -2.90786359e-01, 2.31253009e-01, 7.46270968e-01, 1.60308169e-01]),
    (2, [1.08428551e+01, -1.02749936e+00, 1.73951508e-01, 8.92482744e-02, 1.42651730e-01, 7.66751625e-01]),
    (3, [-1.98641448e+00, 1.12811990e+01, -2.35246756e-01, 8.22809049e-01, 3.26739456e-01, 7.88268404e-01]),
    (3, [-6.09864090e-01, 1.07346276e+01, -2.18805509e-01, 7.33931213e-01, 1.42554396e-01, 7.11225605e-01]),
    (3, [-1.58481268e+00, 9.19364039e+00, -5.87490459e-02, 2.51532056e-01, 2.82729807e-01, 7.16245686e-01]),
    (3, [-2.50949277e-01, 1.12815254e+01, -6.94806734e-01, 5.93898886e-01, 5.68425656e-01, 8.49762330e-01]),
    (3, [7.63485129e-01, 1.02605138e+01, 1.32617719e+00, 5.49682879e-01, 8.59931442e-01, 4.88677978e-02]),
    (4, [9.34900015e-01, 4.11379043e-01, 8.65010205e+00, 9.23509168e-01, 1.16995043e-01, 5.91894106e-03]),
    (4, [4.73734933e-01, -1.48321181e+00, 9.73349621e+00, 4.09421563e-01, 5.09375719e-01, 5.93157850e-01]),
    (4, [3.41470679e-01, -6.88972582e-01, 9.60347938e+00, 3.62654055e-01, 2.43437468e-01, 7.13052838e-01]),
    (4, [-5.29614251e-01, -1.39262856e+00, 1.01354144e+01, 8.24123861e-01, 5.84074506e-01, 6.54461558e-01]),
    (4, [-2.99454508e-01, 2.20457263e+00, 1.14586015e+01, 5.16336729e-01, 9.99776159e-01, 3.15769738e-01]),
]
INPUT_FVALUE_DATA = [
    (0.52516321, [0.19151945, 0.62210877, 0.43772774, 0.78535858, 0.77997581, 0.27259261]),
    (0.88275782, [0.27646426, 0.80187218, 0.95813935, 0.87593263, 0.35781727, 0.50099513]),
    (0.67524507, [0.68346294, 0.71270203, 0.37025075, 0.56119619, 0.50308317, 0.01376845]),
    (0.76734745, [0.77282662, 0.88264119, 0.36488598, 0.61539618, 0.07538124, 0.36882401]),
    (0.73909458, [0.9331401, 0.65137814, 0.39720258, 0.78873014, 0.31683612, 0.56809865]),
    (0.83628141, [0.86912739, 0.43617342, 0.80214764, 0.14376682, 0.70426097, 0.70458131]),
    (0.65665506, [0.21879211, 0.92486763, 0.44214076, 0.90931596, 0.05980922, 0.18428708]),
    (0.58147135, [0.04735528, 0.67488094, 0.59462478, 0.53331016, 0.04332406, 0.56143308]),
    (0.35603443, [0.32966845, 0.50296683, 0.11189432, 0.60719371, 0.56594464, 0.00676406]),
    (0.94534373, [0.61744171, 0.91212289, 0.79052413, 0.99208147, 0.95880176, 0.79196414]),
    (0.57458887, [0.28525096, 0.62491671, 0.4780938, 0.19567518, 0.38231745, 0.05387369]),
    (0.59026777, [0.45164841, 0.98200474, 0.1239427, 0.1193809, 0.73852306, 0.58730363]),
    (0.29894977, [0.47163253, 0.10712682, 0.22921857, 0.89996519, 0.41675354, 0.53585166]),
    (0.34056582, [0.00620852, 0.30064171, 0.43689317, 0.612149, 0.91819808, 0.62573667]),
    (0.64476446, [0.70599757, 0.14983372, 0.74606341, 0.83100699, 0.63372577, 0.43830988]),
    (0.53724782, [0.15257277, 0.56840962, 0.52822428, 0.95142876, 0.48035918, 0.50255956]),
    (0.5173021, [0.53687819, 0.81920207, 0.05711564, 0.66942174, 0.76711663, 0.70811536]),
    (0.94508275, [0.79686718, 0.55776083, 0.96583653, 0.1471569, 0.029647, 0.59389349]),
    (0.57739736, [0.1140657, 0.95080985, 0.96583653, 0.19361869, 0.45781165, 0.92040257]),
    (0.53877145, [0.87906916, 0.25261576, 0.34800879, 0.18258873, 0.90179605, 0.70652816]),
]


# ---------------------------------------------------------------------------------------------
# UnivariateFeatureSelector
# ---------------------------------------------------------------------------------------------
def round_half_up_11(x):
    """Flink's ChiSqTest `new BigDecimal(p).setScale(11, HALF_UP).doubleValue()`."""
    from decimal import ROUND_HALF_UP, Decimal
    return float(Decimal(float(x)).quantize(Decimal("1e-11"), rounding=ROUND_HALF_UP))


def chisq_pvalues(X, y):
    """scipy.stats.chi2_contingency(correction=False) per feature on the (feature value x label)
    table over all labels; one category -> dof 0, p = 1; p rounded to 11 decimals (Flink)."""
    import scipy.stats
    labels = np.unique(y)
    out = []
    for j in range(X.shape[1]):
        cats = np.unique(X[:, j])
        if len(cats) == 1 or len(labels) == 1:
            out.append(1.0)
            continue
        table = np.array([[np.sum((X[:, j] == c) & (y == lab)) for lab in labels] for c in cats])
        out.append(round_half_up_11(scipy.stats.chi2_contingency(table, correction=False).pvalue))
    return np.array(out)


def anova_pvalues(X, y):
    """sklearn.feature_selection.f_classif (one-way ANOVA F test, = scipy.stats.f_oneway)."""
    from sklearn.feature_selection import f_classif
    return f_classif(X, y)[1]


def fvalue_pvalues(X, y):
    """sklearn.feature_selection.f_regression (F test of the Pearson correlation)."""
    from sklearn.feature_selection import f_regression
    return f_regression(X, y)[1]


def univariate_select(pvalues, mode, threshold, *, margin=True):
    """Flink's SelectIndicesFromPValuesOperator on (pValue, featureIndex), sorted by p then
    index: numTopFeatures first min(n, (int) t); percentile first min(n, (int) (n * t));
    fpr p < t; fwe p < t / n; fdr (Benjamini-Hochberg) the first maxIndex + 1 with maxIndex the
    largest i where p_(i) < t / n * (i + 1). Returns the indices sorted (as the model applies
    them). With `margin`, checks that no p-value is within 1e-6 (relative) of a cut or of
    another p-value it would be ordered against (so p-value rounding cannot change the result)."""
    n = len(pvalues)
    order = sorted(range(n), key=lambda i: (pvalues[i], i))
    ps = [pvalues[i] for i in order]

    def far(a, b):
        return abs(a - b) > 1e-6 * max(abs(a), abs(b), 1e-300)

    if mode == "numTopFeatures":
        k = min(n, int(threshold))
        chosen = order[:k]
        if margin and 0 < k < n:
            assert far(ps[k - 1], ps[k]) or ps[k - 1] == ps[k] and order[k - 1] < order[k]
    elif mode == "percentile":
        k = min(n, int(n * threshold))
        chosen = order[:k]
        if margin and 0 < k < n:
            assert far(ps[k - 1], ps[k])
    elif mode == "fpr":
        chosen = [i for i in range(n) if pvalues[i] < threshold]
        if margin:
            assert all(far(p, threshold) for p in pvalues)
    elif mode == "fwe":
        chosen = [i for i in range(n) if pvalues[i] < threshold / n]
        if margin:
            assert all(far(p, threshold / n) for p in pvalues)
    elif mode == "fdr":
        max_index = -1
        for i, p in enumerate(ps):
            if margin:
                assert far(p, threshold / n * (i + 1))
            if p < threshold / n * (i + 1):
                max_index = i
        chosen = order[:max_index + 1]
    else:
        raise ValueError(mode)
    return sorted(chosen)


UFS_DEFAULT_THRESHOLD = {"numTopFeatures": 50.0, "percentile": 0.1, "fpr": 0.05, "fdr": 0.05, "fwe": 0.05}


def ufs_case(name, X, y, label_type_name, feature_type, label_type, mode, threshold, *,
             inputs=None, sparse_input=False, features_col="features", label_col="label",
             output_col="output", reference):
    pvals = {("categorical", "categorical"): chisq_pvalues,
             ("continuous", "categorical"): anova_pvalues,
             ("continuous", "continuous"): fvalue_pvalues}[(feature_type, label_type)](X, y)
    t = UFS_DEFAULT_THRESHOLD[mode] if threshold is None else threshold
    keep = univariate_select(list(pvals), mode, t)
    params = {"featureType": feature_type, "labelType": label_type}
    if mode != "numTopFeatures":
        params["selectionMode"] = mode
    if threshold is not None:
        params["selectionThreshold"] = float(threshold)
    if features_col != "features":
        params["featuresCol"] = features_col
    if label_col != "label":
        params["labelCol"] = label_col
    if output_col != "output":
        params["outputCol"] = output_col

    def vec(x):
        if sparse_input:
            nz = np.flatnonzero(x)
            return sparse(len(x), nz, x[nz])
        return plain(np.asarray(x))

    def lab(v):
        return int(v) if label_type_name == "Long" else float(v)

    fit_rows = [{label_col: lab(yy), features_col: vec(x)} for x, yy in zip(X, y)]
    in_rows = fit_rows if inputs is None else [{label_col: lab(0), features_col: vec(x)} for x in inputs]
    expected = [{output_col: select_like_input(r[features_col], keep)} for r in in_rows]
    schema = [[label_col, label_type_name], [features_col, "SparseVector" if sparse_input else "DenseVector"]]
    return case(f"{name}: {mode}, threshold={t} -> {keep}", "UnivariateFeatureSelector", params, schema,
                in_rows, expected, fit=fit_rows, reference=reference)


def univariate_feature_selector():
    out = []
    rng = np.random.default_rng(17)
    # Categorical features / categorical label (chi-squared): features more or less tied to y.
    n = 48
    y = rng.integers(0, 3, n).astype(float)
    noise = rng.integers(0, 3, (n, 7))
    X = np.column_stack([
        np.where(rng.random(n) < 0.6, y, noise[:, 0]),        # strongly related
        np.where(rng.random(n) < 0.35, y, noise[:, 1]),       # weakly related
        noise[:, 2],                                          # unrelated
        np.where(rng.random(n) < 0.5, y % 2, noise[:, 3] % 2),  # related, 2 categories
        noise[:, 4] * 2.0 + 1.0,                              # unrelated, other values
        np.full(n, 3.0),                                      # one category: dof 0, p = 1
        np.where(rng.random(n) < 0.2, y, noise[:, 6]),        # barely related
    ]).astype(float)
    chi_ref = "scipy.stats.chi2_contingency(correction=False) per feature, p rounded to 11 " \
              "decimals HALF_UP (Flink); selection = port of Flink's rules (sorted by p, then index)"
    for mode, t in [("numTopFeatures", None), ("numTopFeatures", 3.0), ("percentile", 0.5),
                    ("fpr", None), ("fpr", 0.2), ("fdr", 0.1), ("fwe", 0.3)]:
        out.append(ufs_case("chi-squared", X, y, "Double", "categorical", "categorical", mode, t,
                            reference=chi_ref))
    # sparse input (zeros dropped from storage), different column names, new rows to transform
    inputs = rng.integers(0, 4, (8, 7)).astype(float)
    out.append(ufs_case("chi-squared, sparse input", X, y, "Double", "categorical", "categorical",
                        "numTopFeatures", 4.0, inputs=inputs, sparse_input=True,
                        features_col="vec", label_col="y", output_col="selected",
                        reference=chi_ref + "; sparse in -> sparse out"))
    # Continuous features / categorical label (ANOVA F test); a duplicated column gives an
    # exactly equal p-value, ordered by index.
    n = 45
    y = rng.integers(0, 3, n)
    base = rng.normal(0.0, 1.0, (n, 6))
    X = np.column_stack([
        base[:, 0] + 0.9 * y, base[:, 1] + 0.3 * y, base[:, 2], base[:, 3] - 0.5 * y,
        base[:, 4] * 3.0, base[:, 0] + 0.9 * y, base[:, 5] + 0.15 * y,
    ]).round(4)
    inputs = np.round(rng.normal(0.0, 1.5, (10, 7)), 4)
    anova_ref = "sklearn.feature_selection.f_classif per feature; selection = port of Flink's " \
                "rules (sorted by p, then index: columns 0 and 5 are equal)"
    for mode, t in [("numTopFeatures", 1.0), ("numTopFeatures", 2.0), ("percentile", 0.3),
                    ("fpr", 0.01), ("fdr", 0.05), ("fwe", 0.05)]:
        out.append(ufs_case("ANOVA (Long label)", X, y, "Long", "continuous", "categorical", mode,
                            t, inputs=inputs, reference=anova_ref))
    # Continuous features / continuous label (F test of the correlation).
    n = 50
    base = rng.normal(0.0, 1.0, (n, 6))
    y = np.round(rng.normal(0.0, 1.0, n), 4)
    X = np.column_stack([
        base[:, 0] + 0.5 * y, base[:, 1] - 0.25 * y, base[:, 2], base[:, 3] + 0.8 * y,
        base[:, 4] * 2.0 + 0.1 * y, base[:, 5],
    ]).round(4)
    inputs = np.round(rng.normal(0.0, 1.0, (10, 6)), 4)
    fval_ref = "sklearn.feature_selection.f_regression per feature; selection = port of " \
               "Flink's rules (sorted by p, then index)"
    for mode, t in [("numTopFeatures", 2.0), ("percentile", None), ("percentile", 0.67),
                    ("fpr", 0.3), ("fdr", 0.2), ("fwe", 0.0)]:
        out.append(ufs_case("F value", X, y, "Double", "continuous", "continuous", mode, t,
                            inputs=inputs, reference=fval_ref +
                            ("; nothing selected -> empty DenseVector" if t == 0.0 else "")))
    # Flink's UnivariateFeatureSelectorTest: its training rows mix dense and sparse vectors (same
    # values); here all are DenseVector. The expected indices are the test's; outputs are the
    # selected entries of each row, as the test's verifyOutputResult checks.
    flink_cases = [
        ("testFitTransformWithNumTopFeatures", "numTopFeatures", 2.0, [0, 1], [0, 2], [0, 2]),
        ("testFitTransformWithPercentile", "percentile", 0.17, [0], [0], [2]),
        ("testFitTransformWithFPR", "fpr", (0.02, 1.0e-12, 0.01), [0], [0], [2]),
        ("testFitTransformWithFDR", "fdr", (0.12, 6.0e-12, 0.03), [0], [0], [2]),
        ("testFitTransformWithFWE", "fwe", (0.12, 6.0e-12, 0.03), [0], [0], [2]),
    ]
    tests = [("categorical", "categorical", INPUT_CHISQ_DATA, "Double", chisq_pvalues),
             ("continuous", "categorical", INPUT_ANOVA_DATA, "Long", anova_pvalues),
             ("continuous", "continuous", INPUT_FVALUE_DATA, "Double", fvalue_pvalues)]
    for test, mode, thresholds, *expected_sets in flink_cases:
        if not isinstance(thresholds, tuple):
            thresholds = (thresholds,) * 3
        for (ft, lt, data, ltype, pfn), t, keep in zip(tests, thresholds, expected_sets):
            X = np.array([r[1] for r in data], dtype=float)
            y = np.array([r[0] for r in data], dtype=float)
            assert univariate_select(list(pfn(X, y)), mode, t, margin=False) == keep, (test, ft, lt)
            rows_ = [{"label": int(lab) if ltype == "Long" else float(lab), "features": list(map(float, v))}
                     for lab, v in data]
            params = {"featureType": ft, "labelType": lt, "selectionThreshold": t}
            if mode != "numTopFeatures":
                params["selectionMode"] = mode
            out.append(case(
                f"Flink {test} ({ft}/{lt}) -> {keep}", "UnivariateFeatureSelector", params,
                [["label", ltype], ["features", "DenseVector"]], rows_,
                [{"output": [r["features"][k] for k in keep]} for r in rows_], fit=rows_,
                reference=FLINK_TEST + f"UnivariateFeatureSelectorTest.{test} (rows all dense)"))
    eq_data = [(0.0, [6.0, 7.0, 0.0, 6.0, 6.0, 6.0]), (1.0, [0.0, 9.0, 6.0, 0.0, 5.0, 0.0]),
               (1.0, [0.0, 9.0, 3.0, 0.0, 5.0, 0.0]), (1.0, [0.0, 9.0, 8.0, 0.0, 6.0, 0.0]),
               (2.0, [8.0, 9.0, 6.0, 8.0, 4.0, 8.0]), (2.0, [8.0, 9.0, 6.0, 8.0, 0.0, 8.0])]
    keep = sorted([0, 3, 5, 1])  # the test's model indices {0, 3, 5, 1}; transform sorts them
    X = np.array([r[1] for r in eq_data])
    assert univariate_select(list(chisq_pvalues(X, np.array([r[0] for r in eq_data]))),
                             "numTopFeatures", 4, margin=False) == keep
    rows_ = [{"label": lab, "features": v} for lab, v in eq_data]
    out.append(case(
        "Flink testEquivalentPValues (chi-squared, numTopFeatures 4 -> [0, 1, 3, 5])",
        "UnivariateFeatureSelector",
        {"featureType": "categorical", "labelType": "categorical", "selectionThreshold": 4.0},
        [["label", "Double"], ["features", "DenseVector"]], rows_,
        [{"output": [r["features"][k] for k in keep]} for r in rows_], fit=rows_,
        reference=FLINK_TEST + "UnivariateFeatureSelectorTest.testEquivalentPValues (model indices "
                  "{0, 3, 5, 1}; equal p-values ordered by index)"))
    return out


# ---------------------------------------------------------------------------------------------
# VectorIndexer
# ---------------------------------------------------------------------------------------------
def vector_indexer_maps(fit_dense, max_categories):
    """Port of Flink's VectorIndexer fit (no library implements it): per dimension the distinct
    values of the densified training vectors; a dimension with more than maxCategories of them
    is continuous (left out). A categorical one maps its sorted values to 0, 1, ..., except that
    0.0, when present, takes id 0 and the values below it shift up by one."""
    maps = {}
    for j in range(fit_dense.shape[1]):
        values = sorted(set(float(v) for v in fit_dense[:, j]))
        if len(values) > max_categories:
            continue
        if 0.0 in values:
            values.remove(0.0)
            values.insert(0, 0.0)
        maps[j] = {v: k for k, v in enumerate(values)}
    return maps


def vector_indexer_transform(v, maps, handle_invalid):
    """Port of VectorIndexerModel's FindIndex: each categorical dimension replaced by its id, an
    unseen value by len(map) under "keep" ("error" cases contain no unseen value). Dense stays
    dense; sparse: a stored entry is overwritten (an id 0 stays stored as an explicit 0.0), an
    implicit zero becomes a stored entry only when its id is non-zero (SparseVector.set)."""
    def mapped(j, x):
        m = maps[j]
        if x in m:
            return float(m[x])
        assert handle_invalid == "keep", f"unseen {x} in dimension {j}"
        return float(len(m))

    if isinstance(v, dict):
        entries = dict(zip(v["indices"], v["values"]))
        for j in sorted(maps):
            if j in entries:
                entries[j] = mapped(j, entries[j])
            else:
                x = mapped(j, 0.0)
                if x != 0.0:
                    entries[j] = x
        idx = sorted(entries)
        return sparse(v["size"], idx, [entries[i] for i in idx])
    out = list(map(float, v))
    for j in sorted(maps):
        out[j] = mapped(j, out[j])
    return out


def vector_indexer_case(name, fit_vecs, in_vecs, max_categories, handle_invalid, params, *,
                        sparse_col=False, reference):
    fit_dense = np.array([dense_of(v) for v in fit_vecs])
    maps = vector_indexer_maps(fit_dense, max_categories)
    expected = [{"output": vector_indexer_transform(v, maps, handle_invalid)} for v in in_vecs]
    cats = {j: {str(k): i for k, i in m.items()} for j, m in maps.items()}
    return case(f"{name} (categorical maps {cats})", "VectorIndexer", params,
                [["input", "SparseVector" if sparse_col else "DenseVector"]],
                vcol("input", in_vecs), expected, fit=vcol("input", fit_vecs), reference=reference)


def vector_indexer():
    out = []
    rng = np.random.default_rng(18)
    ref = "port of Flink's VectorIndexer/VectorIndexerModel (no library equivalent; Spark's " \
          "VectorIndexer has the same 0-first rule)"
    n = 40
    fit = np.column_stack([
        rng.choice([-2.0, -0.5, 0.0, 1.0, 3.0], n),      # 5 categories with 0 and negatives
        rng.choice([2.0, 4.0, 8.0], n),                  # 3 categories, no 0
        np.round(rng.normal(0.0, 1.0, n), 3),            # continuous (> 20 distinct)
        rng.choice([0.0, 1.0], n),                       # binary
        rng.integers(0, 25, n).astype(float),            # ~20 distinct: categorical or not
        rng.choice([-3.0, -1.0, 7.5], n),                # negatives only
    ])
    # inputs: seen values only in categorical dimensions (handleInvalid error)
    seen = [sorted(set(fit[:, j])) for j in range(fit.shape[1])]
    inp = np.column_stack([
        rng.choice(seen[0], 12), rng.choice(seen[1], 12), np.round(rng.normal(0, 2, 12), 3),
        rng.choice(seen[3], 12), rng.choice(seen[4], 12), rng.choice(seen[5], 12)])
    n4 = len(seen[4])
    out.append(vector_indexer_case(
        f"dense, maxCategories=20 (default), handleInvalid=error; dimension 4 has {n4} values",
        [plain(r) for r in fit], [plain(r) for r in inp], 20, "error",
        {"inputCol": "input", "outputCol": "output"}, reference=ref))
    # keep: unseen values -> number of categories
    inp_keep = inp.copy()
    inp_keep[0, 0] = 2.0      # unseen
    inp_keep[1, 1] = 0.0      # unseen (0 never seen in dimension 1)
    inp_keep[2, 3] = 0.5
    inp_keep[3, 5] = 100.0
    out.append(vector_indexer_case(
        "dense, maxCategories=5, handleInvalid=keep, unseen values", [plain(r) for r in fit],
        [plain(r) for r in inp_keep], 5, "keep",
        {"maxCategories": 5, "handleInvalid": "keep"}, reference=ref))
    out.append(vector_indexer_case(
        "dense, maxCategories=2, handleInvalid=keep", [plain(r) for r in fit],
        [plain(r) for r in inp_keep], 2, "keep", {"maxCategories": 2, "handleInvalid": "keep"},
        reference=ref))
    # Sparse: training vectors densified (implicit zeros are values); dimension 2 is stored in
    # every training row with a non-zero value, so an implicit zero there is unseen.
    fit_sp = []
    for _ in range(30):
        idx = sorted(set(rng.choice([0, 1, 3, 4], int(rng.integers(0, 4)), replace=False).tolist()) | {2})
        vals = []
        for i in idx:
            vals.append({0: rng.choice([1.0, -1.0]), 1: rng.choice([5.0, 6.0, 7.0]),
                         2: rng.choice([0.5, 1.5]), 3: float(np.round(rng.normal(), 3)),
                         4: 2.0}[i])
        fit_sp.append(sparse(5, idx, vals))
    in_sp = [sparse(5, [0, 2], [1.0, 1.5]), sparse(5, [1, 3], [6.0, 0.25]), sparse(5, [], []),
             sparse(5, [0, 1, 2, 4], [0.0, 5.0, 0.5, 2.0]), sparse(5, [2, 4], [9.0, 3.0]),
             sparse(5, [0, 2, 3], [-1.0, 0.5, 1.0])]
    out.append(vector_indexer_case(
        "sparse, maxCategories=4, handleInvalid=keep", fit_sp, in_sp, 4, "keep",
        {"maxCategories": 4, "handleInvalid": "keep"}, sparse_col=True,
        reference=ref + "; sparse stays sparse (SparseVector.set: id 0 on an implicit zero is not "
                        "stored, a stored entry mapped to 0 stays as an explicit 0.0)"))
    in_sp_err = [v for v in in_sp if 2 in v["indices"] and all(
        not (i == 2 and x == 9.0) and not (i == 4 and x == 3.0) for i, x in zip(v["indices"], v["values"]))]
    out.append(vector_indexer_case(
        "sparse, maxCategories=3, handleInvalid=error", fit_sp, in_sp_err, 3, "error",
        {"maxCategories": 3}, sparse_col=True, reference=ref))
    # Flink's VectorIndexerTest (its checker compares rows in hashCode order; the expected rows
    # are listed in input order).
    train = [[1.0, 1.0], [2.0, -1.0], [3.0, 1.0], [4.0, 0.0], [5.0, 0.0]]
    test = [[0.0, 2.0], [0.0, 0.0], [0.0, -1.0]]
    for tname, mc, params, expected in [
        ("testFitAndPredictWithHandleInvalid (keep)", 3, {"maxCategories": 3, "handleInvalid": "keep"},
         [[0.0, 3.0], [0.0, 0.0], [0.0, 1.0]]),
        ("testFitAndPredictWithLargeMaxCategories", 2147483647,
         {"maxCategories": 2147483647, "handleInvalid": "keep"}, [[5.0, 3.0], [5.0, 0.0], [5.0, 1.0]]),
    ]:
        maps = vector_indexer_maps(np.array(train), mc)
        assert [vector_indexer_transform(v, maps, "keep") for v in test] == expected
        out.append(case(
            f"Flink VectorIndexerTest.{tname}", "VectorIndexer", params, [["input", "DenseVector"]],
            vcol("input", test), vcol("output", expected), fit=vcol("input", train),
            reference=FLINK_TEST + f"VectorIndexerTest.{tname.split(' ')[0]}"))
    sp_train = [sparse(2, [0], [1.0]), sparse(2, [0, 1], [2.0, -1.0]), sparse(2, [0, 1], [3.0, 1.0]),
                sparse(2, [0], [4.0]), sparse(2, [0], [5.0])]
    sp_test = [sparse(2, [0, 1], [0.0, 2.0])]
    sp_expected = [sparse(2, [0, 1], [0.0, 3.0])]
    maps = vector_indexer_maps(np.array([dense_of(v) for v in sp_train]), 3)
    assert [vector_indexer_transform(v, maps, "keep") for v in sp_test] == sp_expected
    out.append(case(
        "Flink VectorIndexerTest.testFitAndPredictOnSparseInput", "VectorIndexer",
        {"maxCategories": 3, "handleInvalid": "keep"}, [["input", "SparseVector"]],
        vcol("input", sp_test), vcol("output", sp_expected), fit=vcol("input", sp_train),
        reference=FLINK_TEST + "VectorIndexerTest.testFitAndPredictOnSparseInput"))
    return out


# ---------------------------------------------------------------------------------------------
# IDF
# ---------------------------------------------------------------------------------------------
def idf_vector(fit_vecs, min_doc_freq, *, sklearn_check):
    """Flink: df = number of training vectors whose (stored) value is > 0 (negative values and
    explicit zeros do not count); idf = ln((n + 1) / (df + 1)), and 0 where df < minDocFreq.
    With `sklearn_check` (non-negative data without explicit zeros, where the document
    frequencies agree) cross-checked as sklearn TfidfTransformer(smooth_idf=True).idf_ - 1."""
    from sklearn.feature_extraction.text import TfidfTransformer
    dense = np.array([dense_of(v) for v in fit_vecs])
    n = len(dense)
    df = (dense > 0).sum(axis=0)
    idf = np.log((n + 1) / (df + 1.0))
    if sklearn_check:
        if isinstance(fit_vecs[0], dict):
            sk = TfidfTransformer(smooth_idf=True, norm=None).fit(csr_of(fit_vecs)).idf_ - 1.0
        else:
            sk = TfidfTransformer(smooth_idf=True, norm=None).fit(dense).idf_ - 1.0
        assert np.allclose(sk, idf, rtol=0, atol=1e-12)
    return np.where(df >= min_doc_freq, idf, 0.0)


def idf_case(name, fit_vecs, in_vecs, min_doc_freq, params, *, sklearn_check=True, sparse_col=False,
             reference):
    idf = idf_vector(fit_vecs, min_doc_freq, sklearn_check=sklearn_check)
    expected = [{"output": like_input(v, dense_of(v) * idf)} for v in in_vecs]
    return case(name, "IDF", params, [["input", "SparseVector" if sparse_col else "DenseVector"]],
                vcol("input", in_vecs), expected, fit=vcol("input", fit_vecs), reference=reference)


def idf():
    out = []
    rng = np.random.default_rng(19)
    ref = "sklearn.feature_extraction.text.TfidfTransformer(smooth_idf=True, norm=None).idf_ - 1 " \
          "(Flink's idf is ln((n + 1) / (df + 1)) without sklearn's + 1); idf 0 where df < " \
          "minDocFreq; output = input * idf, keeping the input type"
    n, d = 30, 8
    fit = rng.poisson(rng.uniform(0.1, 2.0, d), size=(n, d)).astype(float)
    fit[:, 6] = 0.0                       # never present: idf ln(n + 1)
    fit[:, 7] = rng.integers(1, 4, n)     # in every document: idf 0
    data = rng.poisson(1.0, size=(10, d)).astype(float)
    fit_rows, in_rows = [plain(r) for r in fit], [plain(r) for r in data]
    df = (fit > 0).sum(axis=0)
    out.append(idf_case(f"dense counts, minDocFreq=0 (default); df={df.tolist()}", fit_rows, in_rows, 0,
                        {"inputCol": "input", "outputCol": "output"}, reference=ref))
    out.append(idf_case("dense counts, minDocFreq=12", fit_rows, in_rows, 12, {"minDocFreq": 12},
                        reference=ref))
    # Sparse term counts: sparse out with the input's indices.
    fit_sp, in_sp = [], []
    for k in rng.integers(1, 6, 40):
        idx = np.sort(rng.choice(12, int(k), replace=False, p=np.linspace(2, 0.2, 12) / np.linspace(2, 0.2, 12).sum()))
        fit_sp.append(sparse(12, idx, rng.integers(1, 5, len(idx)).astype(float)))
    for k in rng.integers(0, 6, 10):
        idx = np.sort(rng.choice(12, int(k), replace=False))
        in_sp.append(sparse(12, idx, rng.integers(1, 5, len(idx)).astype(float)))
    for mdf in [0, 3]:
        params = {"minDocFreq": mdf} if mdf else {}
        out.append(idf_case(f"sparse counts, minDocFreq={mdf}", fit_sp, in_sp, mdf, params,
                            sparse_col=True, reference=ref + " (fitted on a scipy CSR matrix)"))
    # Negative values and explicit zeros: only values > 0 count as occurrences.
    fit_neg = np.round(rng.normal(0.0, 1.0, size=(25, 5)), 2)
    in_neg = np.round(rng.normal(0.0, 2.0, size=(8, 5)), 2)
    out.append(idf_case("dense with negative values: df counts values > 0 only",
                        [plain(r) for r in fit_neg], [plain(r) for r in in_neg], 0, {},
                        sklearn_check=False,
                        reference="numpy: df = count of values > 0 per dimension (Flink binarises "
                                  "with > 0; sklearn would count every non-zero), idf = "
                                  "ln((n + 1) / (df + 1)); output = input * idf"))
    fit_sp0 = [sparse(4, [0, 1, 3], [0.0, 2.0, -1.0]), sparse(4, [1, 2], [1.0, 0.0]),
               sparse(4, [0, 2, 3], [3.0, 0.0, 5.0]), sparse(4, [1], [-2.0])]
    in_sp0 = [sparse(4, [0, 1, 2, 3], [1.0, 1.0, 1.0, 1.0]), sparse(4, [2, 3], [0.0, -2.0]),
              sparse(4, [], [])]
    out.append(idf_case("sparse with explicit zeros and negatives", fit_sp0, in_sp0, 0, {},
                        sklearn_check=False, sparse_col=True,
                        reference="numpy: df = count of stored values > 0 (explicit zeros and "
                                  "negatives do not count), idf = ln((n + 1) / (df + 1)); sparse "
                                  "output keeps the input's stored indices"))
    # Flink's IDFTest (fits and transforms the same rows; expected values have 7 decimals).
    rows_in = [[0.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.0, 0.0]]
    for mdf, expected in [
        (0, [[0.0, 0.0, 0.0, 0.5753641], [0.0, 0.0, 1.3862943, 0.8630462], [0.0, 0.0, 0.0, 0.0]]),
        (2, [[0.0, 0.0, 0.0, 0.5753641], [0.0, 0.0, 0.0, 0.8630462], [0.0, 0.0, 0.0, 0.0]]),
    ]:
        mine = np.array(rows_in) * idf_vector(rows_in, mdf, sklearn_check=True)
        assert np.allclose(mine, expected, rtol=0, atol=1e-7)
        out.append(case(
            f"Flink IDFTest.testFitAndPredict, minDocFreq={mdf}", "IDF",
            {"minDocFreq": mdf} if mdf else {}, [["input", "DenseVector"]], vcol("input", rows_in),
            vcol("output", expected), fit=vcol("input", rows_in), tolerance=1e-7,
            reference=FLINK_TEST + "IDFTest.testFitAndPredict (the test's tolerance 1e-7)"))
    return out


def clean(obj):
    """NaN -> null everywhere (common.plain misses numpy float scalars); checks strict JSON."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    obj = plain(obj)
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def cases():
    out = {stage: clean(cs) for stage, cs in _stages().items()}
    json.dumps(out, allow_nan=False)  # no NaN / Infinity tokens
    return out


def _stages():
    return {
        "MinMaxScaler": min_max_scaler(),
        "MaxAbsScaler": max_abs_scaler(),
        "RobustScaler": robust_scaler(),
        "Imputer": imputer(),
        "KBinsDiscretizer": kbins_discretizer(),
        "VarianceThresholdSelector": variance_threshold_selector(),
        "UnivariateFeatureSelector": univariate_feature_selector(),
        "VectorIndexer": vector_indexer(),
        "IDF": idf(),
    }
