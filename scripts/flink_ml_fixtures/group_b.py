"""Group B: VectorAssembler, Binarizer, Bucketizer, DCT, ElementwiseProduct, Interaction,
Normalizer, PolynomialExpansion, VectorSlicer, FeatureHasher.

Expected values come from numpy / scipy / scikit-learn with Flink ML's documented rules applied
explicitly (named in each case's "reference"), or are copied literally from Flink ML's unit tests
(apache/flink-ml @ 583a6199, flink-ml-lib/src/test/java/org/apache/flink/ml/feature/).
"""
import numpy as np

from .common import case, plain, rows, sparse


def sp(size, indices, values):
    """A SparseVector in fixture form; NaN values become null (the fixtures' NaN)."""
    s = sparse(size, indices, values)
    s["values"] = plain(s["values"])
    return s


def dense_of(v):
    """The dense array of a fixture vector (list or sparse dict)."""
    if isinstance(v, dict):
        out = np.zeros(v["size"])
        out[v["indices"]] = [np.nan if x is None else x for x in v["values"]]
        return out
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def random_sparse(rng, size, nnz, *, zeros=0):
    """A random sparse vector with `nnz` stored entries, `zeros` of which are explicit 0.0."""
    idx = np.sort(rng.choice(size, nnz, replace=False))
    vals = np.round(rng.normal(0.0, 2.0, nnz), 3)
    vals[vals == 0.0] = 0.5
    if zeros:
        vals[rng.choice(nnz, zeros, replace=False)] = 0.0
    return sparse(size, idx, vals)


# ---------------------------------------------------------------------------------------------
# VectorAssembler
# ---------------------------------------------------------------------------------------------
def assemble_reference(row, cols):
    """numpy concatenation of the inputs, stored as Flink does: nnz counts numbers as 1, dense
    vectors as their size and sparse vectors as their stored entries; `nnz * 1.5 > size` gives a
    DenseVector, otherwise a SparseVector that keeps every stored entry (explicit zeros too)."""
    parts, idx, vals, nnz, offset = [], [], [], 0, 0
    for c in cols:
        v = row[c]
        if isinstance(v, dict):
            parts.append(dense_of(v))
            idx += [offset + i for i in v["indices"]]
            vals += [np.nan if x is None else x for x in v["values"]]
            nnz += len(v["indices"])
            offset += v["size"]
        elif isinstance(v, list):
            parts.append(dense_of(v))
            idx += list(range(offset, offset + len(v)))
            vals += [np.nan if x is None else x for x in v]
            nnz += len(v)
            offset += len(v)
        else:
            x = np.nan if v is None else float(v)
            parts.append(np.array([x]))
            idx.append(offset)
            vals.append(x)
            nnz += 1
            offset += 1
    full = np.concatenate(parts)
    assert np.allclose(dense_of(sp(offset, idx, vals)), full, equal_nan=True)
    return plain(full) if nnz * 1.5 > offset else sp(offset, idx, vals)


def vector_assembler():
    out = []
    # Flink's VectorAssemblerTest data (rows 0, 1, 2); the sparse input's indices {4, 2, 3, 1}
    # are sorted by Flink's SparseVector constructor.
    schema = [["id", "Long"], ["vec", "DenseVector"], ["num", "Double"], ["sparseVec", "SparseVector"]]
    sv1 = sparse(5, [3], [1.0])
    sv2 = sparse(5, [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])
    input_data = [
        {"id": 0, "vec": [2.1, 3.1], "num": 1.0, "sparseVec": sv1},
        {"id": 1, "vec": [2.1, 3.1], "num": 1.0, "sparseVec": sv2},
        {"id": 2, "vec": [2.0, 2.1], "num": 1.0, "sparseVec": sv2},
    ]
    input_nan = [dict(r) for r in input_data]
    input_nan[2]["num"] = None  # Double.NaN
    expected_1 = sp(8, [0, 1, 2, 6], [2.1, 3.1, 1.0, 1.0])
    expected_2 = [2.1, 3.1, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    expected_3 = [2.0, 2.1, 1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    expected_5 = [2.0, 2.1, None, 0.0, 1.0, 2.0, 3.0, 4.0]  # NaN
    cols = ["vec", "num", "sparseVec"]
    out.append(
        case(
            "flink test: keep with a NaN number",
            "VectorAssembler",
            {"inputCols": cols, "outputCol": "assembledVec", "inputSizes": [2, 1, 5], "handleInvalid": "keep"},
            schema,
            input_nan,
            [{"assembledVec": v} for v in [expected_1, expected_2, expected_5]],
            reference="flink test: VectorAssemblerTest.testKeepInvalidWithNaN",
        )
    )
    out.append(
        case(
            "flink test: keep ignores wrong inputSizes",
            "VectorAssembler",
            {"inputCols": cols, "outputCol": "assembledVec", "inputSizes": [2, 1, 4], "handleInvalid": "keep"},
            schema,
            input_data,
            [{"assembledVec": v} for v in [expected_1, expected_2, expected_3]],
            reference="flink test: VectorAssemblerTest.testKeepInvalidWithErrorSizes",
        )
    )
    out.append(
        case(
            "flink test: skip with only valid rows keeps them all",
            "VectorAssembler",
            {"inputCols": cols, "outputCol": "assembledVec", "inputSizes": [2, 1, 5], "handleInvalid": "skip"},
            schema,
            input_data,
            [{"assembledVec": v} for v in [expected_1, expected_2, expected_3]],
            reference="flink test: VectorAssemblerTest.testSaveLoadAndTransform",
        )
    )

    # Random rows around the dense/sparse threshold: sizes 3 + 1 + 10 + 1 = 15, so the output
    # is dense iff 5 + nnz(s) > 10, i.e. the sparse input stores more than 5 entries.
    rng = np.random.default_rng(11)
    schema = [["d", "DenseVector"], ["n", "Long"], ["s", "SparseVector"], ["x", "Double"]]
    data = []
    for i, k in enumerate([0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 10, 3, 5, 6, 0]):
        d = np.round(rng.normal(0.0, 3.0, 3), 3)
        if i % 4 == 1:
            d[1] = 0.0  # a dense zero: stored in a sparse output
        data.append(
            {
                "d": plain(d),
                "n": int(rng.integers(-5, 6)) if i != 2 else 0,
                "s": random_sparse(rng, 10, k, zeros=1 if (k >= 2 and i % 3 == 0) else 0),
                "x": float(np.round(rng.normal(), 3)),
            }
        )
    cols = ["d", "n", "s", "x"]
    out.append(
        case(
            "dense, Long, sparse and Double inputs around the 1.5 * nnz > size threshold",
            "VectorAssembler",
            {"inputCols": cols, "inputSizes": [3, 1, 10, 1]},
            schema,
            data,
            [{"output": assemble_reference(r, cols)} for r in data],
            reference="numpy.concatenate; Flink: DenseVector iff 1.5 * nnz > size (nnz: number 1, dense "
            "size, sparse stored entries), else SparseVector keeping all stored entries",
        )
    )
    cols = ["x", "s", "n"]
    out.append(
        case(
            "inputCols in a different order than the table, handleInvalid error",
            "VectorAssembler",
            {"inputCols": cols, "outputCol": "assembled", "inputSizes": [1, 10, 1], "handleInvalid": "error"},
            schema,
            data,
            [{"assembled": assemble_reference(r, cols)} for r in data],
            reference="numpy.concatenate; Flink: DenseVector iff 1.5 * nnz > size, else SparseVector",
        )
    )
    keep_data = [dict(r) for r in data[:10]]
    for r in keep_data[::3]:
        r["x"] = None  # NaN: kept as NaN with handleInvalid = keep
    cols = ["d", "n", "s", "x"]
    out.append(
        case(
            "keep: NaN numbers are assembled as NaN",
            "VectorAssembler",
            {"inputCols": cols, "inputSizes": [3, 1, 10, 1], "handleInvalid": "keep"},
            schema,
            keep_data,
            [{"output": assemble_reference(r, cols)} for r in keep_data],
            reference="numpy.concatenate; Flink: keep lets NaN numbers through; DenseVector iff "
            "1.5 * nnz > size, else SparseVector",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# Binarizer
# ---------------------------------------------------------------------------------------------
def binarizer():
    import scipy.sparse
    from sklearn.preprocessing import Binarizer

    out = []
    # Flink's BinarizerTest data: f0 is an Integer column, f1 dense, f2 sparse.
    out.append(
        case(
            "flink test: a number, a dense and a sparse column",
            "Binarizer",
            {"inputCols": ["f0", "f1", "f2"], "outputCols": ["of0", "of1", "of2"], "thresholds": [1.0, 1.5, 2.5]},
            [["f0", "Long"], ["f1", "DenseVector"], ["f2", "SparseVector"]],
            [
                {"f0": 1, "f1": [1.0, 2.0], "f2": sparse(17, [0, 3, 9], [1.0, 2.0, 7.0])},
                {"f0": 2, "f1": [2.0, 1.0], "f2": sparse(17, [0, 2, 14], [5.0, 4.0, 1.0])},
                {"f0": 3, "f1": [5.0, 18.0], "f2": sparse(17, [0, 11, 12], [2.0, 4.0, 4.0])},
            ],
            [
                {"of0": 0.0, "of1": [0.0, 1.0], "of2": sp(17, [9], [1.0])},
                {"of0": 1.0, "of1": [1.0, 0.0], "of2": sp(17, [0, 2], [1.0, 1.0])},
                {"of0": 1.0, "of1": [1.0, 1.0], "of2": sp(17, [11, 12], [1.0, 1.0])},
            ],
            reference="flink test: BinarizerTest.testSaveLoadAndTransform",
        )
    )

    rng = np.random.default_rng(23)
    n = 20
    x = np.round(rng.normal(0.0, 1.0, n), 2)
    x[3] = 0.25  # equal to the threshold: not greater, so 0.0
    dense = np.round(rng.normal(0.0, 1.0, (n, 4)), 2)
    dense[5, 2] = 0.5
    sparse_rows = [random_sparse(rng, 8, int(k), zeros=int(k > 2)) for k in rng.integers(0, 6, n)]
    sparse_rows[4]["values"][0] = 0.5  # equal to the 0.5 threshold: not stored in the output
    schema = [["x", "Double"], ["v", "DenseVector"], ["s", "SparseVector"]]
    data = rows(x=x, v=dense, s=sparse_rows)

    def sparse_ref(threshold):
        # scikit-learn binarizes the stored entries of a CSR matrix and drops the zeros; the
        # matrix keeps the explicit zeros of the input (no eliminate_zeros before binarizing).
        outs = []
        for s in sparse_rows:
            m = scipy.sparse.csr_matrix((s["values"], s["indices"], [0, len(s["indices"])]), shape=(1, s["size"]))
            b = Binarizer(threshold=threshold).transform(m)
            b.sort_indices()
            outs.append(sp(s["size"], b.indices, b.data))
        return outs

    for tx, tv, ts in [(0.25, 0.5, 0.5), (0.0, 0.0, 0.0)]:
        ox = Binarizer(threshold=tx).transform(x.reshape(-1, 1))[:, 0]
        ov = Binarizer(threshold=tv).transform(dense)
        out.append(
            case(
                f"thresholds {tx}, {tv}, {ts}",
                "Binarizer",
                {"inputCols": ["x", "v", "s"], "outputCols": ["ox", "ov", "os"], "thresholds": [tx, tv, ts]},
                schema,
                data,
                rows(ox=ox, ov=ov, os=sparse_ref(ts)),
                reference="sklearn.preprocessing.Binarizer (x > threshold; CSR input: stored entries > "
                "threshold become 1.0, the rest are dropped) == Flink for thresholds >= 0",
            )
        )

    # Negative thresholds. Dense: scikit-learn. Sparse: scikit-learn refuses (implicit zeros would
    # become 1); Flink tests only the stored entries, so implicit zeros stay 0 and stored entries
    # (explicit zeros too) above the threshold become 1.0. NaN > t is false: 0.0 (numpy comparison).
    xs = x.copy()
    xs[[2, 9]] = np.nan
    dn = dense.copy()
    dn[[1, 7], [0, 3]] = np.nan
    t = -0.5
    ox = (xs > t).astype(float)
    ov = (dn > t).astype(float)
    finite = ~np.isnan(dn)
    assert np.array_equal(ov[finite], Binarizer(threshold=t).transform(np.nan_to_num(dn))[finite])
    os_ = []
    for s in sparse_rows:
        keep = [i for i, v in zip(s["indices"], s["values"]) if v > t]
        os_.append(sp(s["size"], keep, [1.0] * len(keep)))
    out.append(
        case(
            "negative thresholds, NaN inputs",
            "Binarizer",
            {"inputCols": ["s", "x", "v"], "outputCols": ["os", "ox", "ov"], "thresholds": [t, t, t]},
            schema,
            rows(x=xs, v=dn, s=sparse_rows),
            rows(ox=ox, ov=ov, os=os_),
            reference="numpy x > threshold (sklearn.preprocessing.Binarizer on the non-NaN dense "
            "entries); Flink: sparse inputs test only stored entries, NaN gives 0.0",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# Bucketizer
# ---------------------------------------------------------------------------------------------
def bucketize(x, splits, handle_invalid):
    """numpy.digitize (buckets [s0, s1), ..., [s_{k-1}, s_k], the last one closed) with Flink's
    invalid rule: NaN or values outside [s0, s_k] are invalid; keep gives len(splits) - 1."""
    x = np.asarray(x, dtype=float)
    splits = np.asarray(splits, dtype=float)
    b = np.digitize(x, splits, right=False) - 1.0
    b[x == splits[-1]] = len(splits) - 2
    invalid = np.isnan(x) | (x < splits[0]) | (x > splits[-1])
    if invalid.any():
        assert handle_invalid == "keep"
        b[invalid] = len(splits) - 1
    return b


def bucketizer():
    out = []
    rng = np.random.default_rng(5)
    splits = [[-0.5, 0.0, 0.5], [-3.0, -1.0, 0.0, 2.5, 10.0], [0.0, 1.0, 2.0, 3.0]]
    n = 30
    f1 = np.round(rng.uniform(-0.5, 0.5, n), 2)
    f2 = np.round(rng.uniform(-3.0, 10.0, n), 1)
    f3 = rng.integers(0, 4, n)  # Long column: values equal to splits, the last one included
    f1[:5] = [-0.5, 0.0, 0.5, 0.49, -0.49]
    f2[:5] = [-3.0, -1.0, 0.0, 2.5, 10.0]
    f3[:4] = [0, 1, 2, 3]
    schema = [["f1", "Double"], ["f2", "Double"], ["f3", "Long"]]
    params = {"inputCols": ["f1", "f2", "f3"], "outputCols": ["o1", "o2", "o3"], "splitsArray": splits}
    out.append(
        case(
            "valid values, default handleInvalid (error)",
            "Bucketizer",
            params,
            schema,
            rows(f1=f1, f2=f2, f3=f3),
            rows(
                o1=bucketize(f1, splits[0], "error"),
                o2=bucketize(f2, splits[1], "error"),
                o3=bucketize(f3, splits[2], "error"),
            ),
            reference="numpy.digitize (last bucket closed); Flink Bucketizer",
        )
    )
    g1 = f1.copy()
    g2 = f2.copy()
    g3 = f3.copy()
    g1[[5, 9, 14]] = [np.nan, -0.51, 0.51]
    g2[[6, 9, 20, 21]] = [-3.5, np.nan, 10.5, 100.0]
    g3[[7, 8, 14]] = [-1, 4, 7]
    out.append(
        case(
            "keep: NaN and out-of-range values go to bucket len(splits) - 1",
            "Bucketizer",
            dict(params, outputCols=["b1", "b2", "b3"], handleInvalid="keep"),
            schema,
            rows(f1=g1, f2=g2, f3=g3),
            rows(
                b1=bucketize(g1, splits[0], "keep"),
                b2=bucketize(g2, splits[1], "keep"),
                b3=bucketize(g3, splits[2], "keep"),
            ),
            reference="numpy.digitize; Flink: invalid (NaN, < s0, > s_k) -> len(splits) - 1 with keep",
        )
    )
    # skip with only valid rows drops nothing.
    out.append(
        case(
            "skip with only valid values keeps every row",
            "Bucketizer",
            dict(params, inputCols=["f2", "f1"], outputCols=["o2", "o1"], splitsArray=splits[1::-1], handleInvalid="skip"),
            schema,
            rows(f1=f1, f2=f2, f3=f3),
            rows(o2=bucketize(f2, splits[1], "skip"), o1=bucketize(f1, splits[0], "skip")),
            reference="numpy.digitize; Flink Bucketizer (splitsArray[i] belongs to inputCols[i])",
        )
    )
    # Flink searches the boxed Double[] splits with Double.compareTo, where -0.0 < 0.0: -0.0 falls
    # in the bucket below a 0.0 split (numpy would put it in the bucket above).
    out.append(
        case(
            "-0.0 sorts below a 0.0 split (Double.compareTo)",
            "Bucketizer",
            {"inputCols": ["f1"], "outputCols": ["o1"], "splitsArray": [[-1.0, 0.0, 1.0]]},
            [["f1", "Double"]],
            [{"f1": -0.0}, {"f1": 0.0}, {"f1": -1e-300}],
            [{"o1": 0.0}, {"o1": 1.0}, {"o1": 0.0}],
            reference="port of Flink: Arrays.binarySearch(Double[] splits, (Double) x) orders by "
            "Double.compareTo (-0.0 < 0.0)",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# DCT
# ---------------------------------------------------------------------------------------------
def dct():
    from scipy.fft import dct as scipy_dct, idct as scipy_idct

    out = []
    flink_input = [{"input": [1.0, 1.0, 1.0, 1.0]}, {"input": [1.0, 0.0, -1.0, 0.0]}]
    out.append(
        case(
            "flink test: forward (expected values rounded to 3 decimals)",
            "DCT",
            {},
            [["input", "DenseVector"]],
            flink_input,
            [{"output": [2.0, 0.0, 0.0, 0.0]}, {"output": [0.0, 0.924, 1.0, -0.383]}],
            tolerance=1e-3,
            reference="flink test: DCTTest.testTransformForward (compared with delta 1e-3 there)",
        )
    )
    out.append(
        case(
            "flink test: inverse (expected values rounded to 3 decimals)",
            "DCT",
            {"inverse": True},
            [["input", "DenseVector"]],
            flink_input,
            [{"output": [1.924, -0.383, 0.383, 0.076]}, {"output": [0.0, 1.0, 1.0, 0.0]}],
            tolerance=1e-3,
            reference="flink test: DCTTest.testTransformInverse (compared with delta 1e-3 there)",
        )
    )
    rng = np.random.default_rng(31)
    # Vectors of several lengths in one column (Flink re-plans the transform when the size changes).
    lengths = [1, 2, 3, 4, 5, 7, 8, 8, 12, 16, 17, 31, 32, 64, 3, 100]
    vecs = [np.round(rng.normal(0.0, 5.0, k), 4) for k in lengths]
    for inverse in [False, True]:
        f = scipy_idct if inverse else scipy_dct
        out.append(
            case(
                f"inverse={inverse}, lengths 1 to 100",
                "DCT",
                {"inputCol": "vec", "outputCol": "dct", "inverse": inverse},
                [["vec", "DenseVector"]],
                [{"vec": plain(v)} for v in vecs],
                [{"dct": plain(f(v, type=2, norm="ortho"))} for v in vecs],
                reference=f"scipy.fft.{'idct' if inverse else 'dct'}(type=2, norm='ortho') == JTransforms "
                f"DoubleDCT_1D.{'inverse' if inverse else 'forward'}(x, scale=true)",
            )
        )
    # Sparse input: densified, output dense.
    svecs = [random_sparse(rng, k, nnz, zeros=int(nnz > 2)) for k, nnz in [(6, 2), (6, 0), (9, 4), (16, 5), (5, 5)]]
    for inverse in [False, True]:
        f = scipy_idct if inverse else scipy_dct
        out.append(
            case(
                f"sparse input, inverse={inverse}: densified, dense output",
                "DCT",
                {"inverse": inverse},
                [["input", "SparseVector"]],
                [{"input": v} for v in svecs],
                [{"output": plain(f(dense_of(v), type=2, norm="ortho"))} for v in svecs],
                reference=f"scipy.fft.{'idct' if inverse else 'dct'}(type=2, norm='ortho') of the dense "
                "vector; Flink: Vector.toArray(), DenseVector output",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# ElementwiseProduct
# ---------------------------------------------------------------------------------------------
def elementwise_product():
    out = []
    # Flink's ElementwiseProductTest rows 0 and 1 (row 2 holds null vectors, which fixtures
    # cannot express).
    schema = [["id", "Long"], ["vec", "DenseVector"], ["sparseVec", "SparseVector"]]
    data = [
        {"id": 0, "vec": [2.1, 3.1], "sparseVec": sparse(5, [3], [1.0])},
        {"id": 1, "vec": [1.1, 3.3], "sparseVec": sparse(5, [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0])},
    ]
    out.append(
        case(
            "flink test: dense scaling, dense input",
            "ElementwiseProduct",
            {"inputCol": "vec", "outputCol": "outputVec", "scalingVec": {"values": [1.1, 1.1]}},
            schema,
            data,
            [{"outputVec": [2.31, 3.41]}, {"outputVec": [1.21, 3.63]}],
            reference="flink test: ElementwiseProductTest.testSaveLoadAndTransformDense",
        )
    )
    out.append(
        case(
            "flink test: sparse scaling, sparse input: unscaled stored entries become explicit 0.0",
            "ElementwiseProduct",
            {
                "inputCol": "sparseVec",
                "outputCol": "outputVec",
                "scalingVec": {"n": 5, "indices": [0, 1], "values": [1.1, 1.1]},
            },
            schema,
            data,
            [{"outputVec": sp(5, [3], [0.0])}, {"outputVec": sp(5, [1, 2, 3, 4], [1.1, 0.0, 0.0, 0.0])}],
            reference="flink test: ElementwiseProductTest.testSaveLoadAndTransformSparse",
        )
    )

    rng = np.random.default_rng(41)
    n, size = 12, 6
    dense = np.round(rng.normal(0.0, 3.0, (n, size)), 3)
    dense[2, 2] = np.nan  # not stored in the sparse scaling vector below: Flink writes 0.0
    dense[3, 4] = np.nan  # stored: NaN * s = NaN
    sparse_in = [random_sparse(rng, size, int(k), zeros=int(k > 3)) for k in rng.integers(0, 7, n)]
    schema = [["d", "DenseVector"], ["s", "SparseVector"]]
    inputs = rows(d=dense, s=sparse_in)

    scale_dense = np.array([1.5, -2.0, 0.0, 0.25, 3.0, -1.0])
    scale_idx, scale_val = [1, 4], [-2.0, 0.5]  # sparse scaling (given unsorted in one case)
    scale_sparse_dense = np.zeros(size)
    scale_sparse_dense[scale_idx] = scale_val
    stored = np.zeros(size, dtype=bool)
    stored[scale_idx] = True

    out.append(
        case(
            "dense scaling, dense input",
            "ElementwiseProduct",
            {"inputCol": "d", "scalingVec": {"values": plain(scale_dense)}},
            schema,
            inputs,
            rows(output=dense * scale_dense),
            reference="numpy x * scalingVec",
        )
    )
    out.append(
        case(
            "dense scaling, sparse input: stored entries scaled, structure kept",
            "ElementwiseProduct",
            {"inputCol": "s", "outputCol": "p", "scalingVec": {"values": plain(scale_dense)}},
            schema,
            inputs,
            [
                {"p": sp(size, v["indices"], np.array(v["values"]) * scale_dense[v["indices"]])}
                for v in sparse_in
            ],
            reference="numpy x * scalingVec on the stored entries; Flink BLAS.hDot(dense, sparse) keeps "
            "the input's indices (zero products stay stored)",
        )
    )
    out.append(
        case(
            "sparse scaling (unsorted indices in the param), dense input",
            "ElementwiseProduct",
            {"inputCol": "d", "scalingVec": {"n": size, "indices": scale_idx[::-1], "values": scale_val[::-1]}},
            schema,
            inputs,
            rows(output=np.where(stored, dense * scale_sparse_dense, 0.0)),
            reference="numpy x * scalingVec; Flink BLAS.hDot(sparse, dense) writes 0.0 where the scaling "
            "vector stores nothing (so NaN there becomes 0.0); SparseVector sorts its indices",
        )
    )
    expected = []
    for v in sparse_in:
        idx = np.array(v["indices"], dtype=int)
        vals = np.array(v["values"]) * scale_sparse_dense[idx]
        vals[~stored[idx]] = 0.0
        expected.append({"output": sp(size, idx, vals)})
    out.append(
        case(
            "sparse scaling, sparse input: the input's indices, 0.0 where scaling stores nothing",
            "ElementwiseProduct",
            {"inputCol": "s", "scalingVec": {"n": size, "indices": scale_idx, "values": scale_val}},
            schema,
            inputs,
            expected,
            reference="numpy x * scalingVec on the input's stored entries; Flink BLAS.hDot(sparse, sparse) "
            "keeps the input's indices",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# Interaction
# ---------------------------------------------------------------------------------------------
def interact(row, cols):
    """numpy.kron of the inputs (the first column varies slowest). If any input is sparse, Flink
    builds a SparseVector from the kron of the STORED entries (dense inputs: all entries, numbers:
    one entry; explicit zeros kept), indices in mixed radix; otherwise a DenseVector."""
    values, indices, size, any_sparse = np.array([1.0]), np.array([0]), 1, False
    for c in cols:
        v = row[c]
        if isinstance(v, dict):
            any_sparse = True
            idx, val, n = np.array(v["indices"], dtype=int), np.array(v["values"], dtype=float), v["size"]
        elif isinstance(v, list):
            val = np.array(v, dtype=float)
            idx, n = np.arange(len(v)), len(v)
        else:
            val, idx, n = np.array([float(v)]), np.array([0]), 1
        values = np.kron(values, val)
        indices = (indices[:, None] * n + idx[None, :]).ravel()
        size *= n
    full = np.ones(1)
    for c in cols:
        v = row[c]
        full = np.kron(full, dense_of(v) if isinstance(v, (dict, list)) else np.array([float(v)]))
    assert np.allclose(dense_of(sp(size, indices, values)), full)
    return sp(size, indices, values) if any_sparse else plain(full)


def interaction():
    out = []
    # Flink's InteractionTest rows 1 and 2 (row 3 holds nulls, which fixtures cannot express).
    schema = [["f0", "Long"], ["f1", "DenseVector"], ["f2", "DenseVector"], ["f3", "SparseVector"]]
    data = [
        {"f0": 1, "f1": [1.0, 2.0], "f2": [3.0, 4.0], "f3": sparse(17, [0, 3, 9], [1.0, 2.0, 7.0])},
        {"f0": 2, "f1": [2.0, 8.0], "f2": [3.0, 4.0, 5.0], "f3": sparse(17, [0, 2, 14], [5.0, 4.0, 1.0])},
    ]
    out.append(
        case(
            "flink test: a number and two dense vectors",
            "Interaction",
            {"inputCols": ["f0", "f1", "f2"], "outputCol": "interactionVecVec"},
            schema,
            data,
            [
                {"interactionVecVec": [3.0, 4.0, 6.0, 8.0]},
                {"interactionVecVec": [12.0, 16.0, 20.0, 48.0, 64.0, 80.0]},
            ],
            reference="flink test: InteractionTest.testSaveLoadAndTransformDense",
        )
    )
    out.append(
        case(
            "flink test: with a sparse vector",
            "Interaction",
            {"inputCols": ["f0", "f1", "f2", "f3"], "outputCol": "interactionVecVec"},
            schema,
            data,
            [
                {
                    "interactionVecVec": sp(
                        68,
                        [0, 3, 9, 17, 20, 26, 34, 37, 43, 51, 54, 60],
                        [3.0, 6.0, 21.0, 4.0, 8.0, 28.0, 6.0, 12.0, 42.0, 8.0, 16.0, 56.0],
                    )
                },
                {
                    "interactionVecVec": sp(
                        102,
                        [0, 2, 14, 17, 19, 31, 34, 36, 48, 51, 53, 65, 68, 70, 82, 85, 87, 99],
                        [
                            60.0, 48.0, 12.0, 80.0, 64.0, 16.0, 100.0, 80.0, 20.0, 240.0, 192.0,
                            48.0, 320.0, 256.0, 64.0, 400.0, 320.0, 80.0,
                        ],
                    )
                },
            ],
            reference="flink test: InteractionTest.testSaveLoadAndTransformSparse",
        )
    )

    rng = np.random.default_rng(53)
    n = 14
    schema = [["x", "Double"], ["a", "DenseVector"], ["s", "SparseVector"], ["b", "DenseVector"], ["t", "SparseVector"]]
    a = np.round(rng.normal(0.0, 2.0, (n, 3)), 3)
    a[4, 1] = 0.0  # a dense zero: stored in a sparse output
    b = np.round(rng.normal(0.0, 2.0, (n, 2)), 3)
    # No empty sparse vectors here: Flink's loop divides by the running product of the stored
    # counts, so an empty sparse vector in any but the first input column throws "/ by zero".
    s_rows = [random_sparse(rng, 5, int(k), zeros=int(k > 2)) for k in rng.integers(1, 5, n)]
    t_rows = [random_sparse(rng, 4, int(k)) for k in rng.integers(1, 4, n)]
    x = np.round(rng.normal(0.0, 2.0, n), 3)
    data = rows(x=x, a=a, s=s_rows, b=b, t=t_rows)
    for cols, name in [
        (["a", "b"], "two dense vectors: dense output"),
        (["b", "x", "a"], "dense, number, dense: dense output"),
        (["x"], "a single number: a dense vector of size 1"),
        (["a", "s"], "dense then sparse: sparse output"),
        (["s", "x", "b"], "sparse, number, dense: sparse output"),
        (["t", "s"], "two sparse vectors"),
        (["x", "t", "a", "s"], "number, sparse, dense, sparse"),
    ]:
        out.append(
            case(
                name,
                "Interaction",
                {"inputCols": cols, "outputCol": "out"},
                schema,
                data,
                [{"out": interact(r, cols)} for r in data],
                reference="numpy.kron (first column slowest); Flink: SparseVector of the stored entries "
                "when any input is sparse",
            )
        )
    empty_first = [dict(r) for r in data[:6]]
    for r in empty_first[::2]:
        r["s"] = sparse(5, [], [])
    cols = ["s", "x", "b"]
    out.append(
        case(
            "an empty sparse vector in the first column: an empty sparse output",
            "Interaction",
            {"inputCols": cols},
            schema,
            empty_first,
            [{"output": interact(r, cols)} for r in empty_first],
            reference="numpy.kron; Flink: SparseVector of the stored entries (none)",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# Normalizer
# ---------------------------------------------------------------------------------------------
def normalizer():
    import scipy.sparse
    from sklearn.preprocessing import normalize

    out = []
    # Flink's NormalizerTest data.
    schema = [["denseVec", "DenseVector"], ["sparseVec", "SparseVector"]]
    data = [
        {"denseVec": [2.1, 3.1, 2.3, 3.4, 5.3, 5.1], "sparseVec": sparse(5, [1, 3, 4], [0.1, 0.2, 0.3])},
        {"denseVec": [2.3, 4.1, 1.3, 2.4, 5.1, 4.1], "sparseVec": sparse(5, [1, 2, 4], [0.1, 0.2, 0.3])},
    ]
    out.append(
        case(
            "flink test: dense, p = 1.5",
            "Normalizer",
            {"inputCol": "denseVec", "outputCol": "outputVec", "p": 1.5},
            schema,
            data,
            [
                {"outputVec": [0.17386300895299714, 0.25665491797823387, 0.19042139075804446,
                               0.28149249068580484, 0.43879711783375464, 0.42223873602870726]},
                {"outputVec": [0.20785190042726007, 0.3705186051094636, 0.11748150893714701,
                               0.2168889395762714, 0.4608889965995767, 0.3705186051094636]},
            ],
            reference="flink test: NormalizerTest.testDenseTransform",
        )
    )
    out.append(
        case(
            "flink test: sparse, p = 1.5",
            "Normalizer",
            {"inputCol": "sparseVec", "outputCol": "outputVec", "p": 1.5},
            schema,
            data,
            [
                {"outputVec": sp(5, [1, 3, 4], [0.23070057753660791, 0.46140115507321583, 0.6921017326098237])},
                {"outputVec": sp(5, [1, 2, 4], [0.23070057753660791, 0.46140115507321583, 0.6921017326098237])},
            ],
            reference="flink test: NormalizerTest.testSparseTransform",
        )
    )

    rng = np.random.default_rng(61)
    n, size = 16, 5
    dense = np.round(rng.normal(0.0, 3.0, (n, size)), 3)
    dense[3] = 0.0  # a zero vector: Flink multiplies by 1 / 0 = Infinity, giving NaN
    dense[7, :4] = 0.0
    sparse_in = [random_sparse(rng, 7, int(k), zeros=int(k > 3)) for k in rng.integers(1, 6, n)]
    sparse_in[5] = sparse(7, [], [])  # nothing stored: nothing to scale
    sparse_in[9] = sparse(7, [2, 6], [0.0, 0.0])  # only explicit zeros: NaN values
    schema = [["d", "DenseVector"], ["s", "SparseVector"]]
    inputs = rows(d=dense, s=sparse_in)

    def csr(v):
        return scipy.sparse.csr_matrix(
            (np.array(v["values"], dtype=float), v["indices"], [0, len(v["indices"])]), shape=(1, v["size"])
        )

    def sparse_out(v, norm):
        # Flink scales the stored values by 1 / norm (norm over the stored values); a zero norm
        # gives NaN where scikit-learn leaves the vector unchanged.
        vals = np.array(v["values"], dtype=float)
        if vals.size and not np.any(vals):
            return sp(v["size"], v["indices"], np.full(vals.size, np.nan))  # 0 * (1 / 0)
        m = normalize(csr(v), norm=norm) if norm in ("l1", "l2") else None
        if m is not None:
            assert list(m.indices) == list(v["indices"])
            return sp(v["size"], m.indices, m.data)
        return sp(v["size"], v["indices"], vals / np.linalg.norm(vals, ord=norm) if vals.size else vals)

    def dense_out(x, norm):
        zero = ~np.any(x, axis=1)
        if norm in ("l1", "l2"):
            y = normalize(x, norm=norm)
        else:
            with np.errstate(invalid="ignore"):
                y = x / np.linalg.norm(x, ord=norm, axis=1, keepdims=True)
        y[zero] = np.nan
        return y

    for p, norm, ref in [
        (None, "l2", "sklearn.preprocessing.normalize(norm='l2')"),
        (1.0, "l1", "sklearn.preprocessing.normalize(norm='l1')"),
        (3.0, 3.0, "numpy.linalg.norm(ord=3)"),
        (1.5, 1.5, "numpy.linalg.norm(ord=1.5)"),
    ]:
        params = {"inputCol": "d", "outputCol": "nd"}
        sparams = {"inputCol": "s", "outputCol": "ns"}
        if p is not None:
            params["p"] = p
            sparams["p"] = p
        label = "default p (2.0)" if p is None else f"p = {p}"
        out.append(
            case(
                f"dense, {label}",
                "Normalizer",
                params,
                schema,
                inputs,
                rows(nd=dense_out(dense, norm)),
                reference=f"{ref}; Flink: a zero vector gives NaN (x * (1 / 0))",
            )
        )
        out.append(
            case(
                f"sparse, {label}",
                "Normalizer",
                sparams,
                schema,
                inputs,
                [{"ns": sparse_out(v, norm)} for v in sparse_in],
                reference=f"{ref} over the stored values, structure kept; Flink: only explicit zeros "
                "stored gives NaN values",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# PolynomialExpansion
# ---------------------------------------------------------------------------------------------
def flink_poly(x, degree, stored=None):
    """sklearn.preprocessing.PolynomialFeatures(include_bias=False) with the columns reordered to
    Flink's (Spark's) order: monomials sorted by their exponent tuple read from the LAST feature
    to the first, e.g. (x, y) -> [x, x^2, y, xy, y^2]. With `stored` (the stored indices of a
    sparse input) returns (indices, values) of the monomials over stored features only."""
    from sklearn.preprocessing import PolynomialFeatures

    x = np.asarray(x, dtype=float).reshape(1, -1)
    pf = PolynomialFeatures(degree=degree, include_bias=False).fit(x)
    powers = pf.powers_
    order = sorted(range(len(powers)), key=lambda i: tuple(powers[i][::-1]))
    values = pf.transform(x)[0][order]
    powers = powers[order]
    if stored is None:
        return values
    unstored = np.setdiff1d(np.arange(x.shape[1]), stored)
    keep = np.flatnonzero(~np.any(powers[:, unstored] > 0, axis=1))
    return keep, values[keep]


def polynomial_expansion():
    out = []
    # Flink's PolynomialExpansionTest data.
    schema = [["denseVec", "DenseVector"], ["sparseVec", "SparseVector"]]
    data = [
        {"denseVec": [1.0, 2.0, 3.0], "sparseVec": sparse(5, [1, 4], [2.0, 3.0])},
        {"denseVec": [2.0, 3.0], "sparseVec": sparse(5, [1, 4], [2.0, 1.0])},
    ]
    expected_2 = [[1.0, 1.0, 2.0, 2.0, 4.0, 3.0, 3.0, 6.0, 9.0], [2.0, 4.0, 3.0, 6.0, 9.0]]
    expected_3 = [
        [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 4.0, 4.0, 8.0, 3.0, 3.0, 3.0, 6.0, 6.0, 12.0, 9.0, 9.0, 18.0, 27.0],
        [2.0, 4.0, 8.0, 3.0, 6.0, 12.0, 9.0, 18.0, 27.0],
    ]
    for r, e2, e3 in zip(data, expected_2, expected_3):  # the reordering reproduces Flink's test
        assert np.allclose(flink_poly(r["denseVec"], 2), e2) and np.allclose(flink_poly(r["denseVec"], 3), e3)
    out.append(
        case(
            "flink test: dense, degree 2",
            "PolynomialExpansion",
            {"inputCol": "denseVec", "outputCol": "outputVec", "degree": 2},
            schema,
            data,
            [{"outputVec": e} for e in expected_2],
            reference="flink test: PolynomialExpansionTest.testSaveLoadAndTransform",
        )
    )
    out.append(
        case(
            "flink test: dense, degree 3",
            "PolynomialExpansion",
            {"inputCol": "denseVec", "outputCol": "outputVec", "degree": 3},
            schema,
            data,
            [{"outputVec": e} for e in expected_3],
            reference="flink test: PolynomialExpansionTest.testDenseTransform",
        )
    )
    out.append(
        case(
            "flink test: sparse, degree 3",
            "PolynomialExpansion",
            {"inputCol": "sparseVec", "outputCol": "outputVec", "degree": 3},
            schema,
            data,
            [
                {"outputVec": sp(55, [3, 6, 8, 34, 37, 39, 49, 51, 54], [2.0, 4.0, 8.0, 3.0, 6.0, 12.0, 9.0, 18.0, 27.0])},
                {"outputVec": sp(55, [3, 6, 8, 34, 37, 39, 49, 51, 54], [2.0, 4.0, 8.0, 1.0, 2.0, 4.0, 1.0, 2.0, 1.0])},
            ],
            reference="flink test: PolynomialExpansionTest.testSparseTransform",
        )
    )

    rng = np.random.default_rng(71)
    sizes = [1, 2, 3, 4, 2, 3, 5, 1, 4, 3]
    dense = [np.round(rng.normal(0.0, 1.5, k), 3) for k in sizes]
    dense[2][1] = 0.0  # zero entries: Flink skips the monomials containing them (value 0.0)
    dense[8][0] = 0.0
    # Sparse inputs without explicit zeros: Flink skips monomials with a zero factor but sizes
    # its index array by the stored count, so explicit zeros leave unfilled (index 0) entries
    # behind and the SparseVector constructor fails or keeps a bogus entry.
    sparse_in = [random_sparse(rng, k, int(m)) for k, m in [(6, 2), (6, 0), (8, 3), (4, 4), (10, 1), (7, 3), (5, 2), (3, 1)]]
    for degree in [None, 1, 3, 4]:
        d = 2 if degree is None else degree
        params = {} if degree is None else {"degree": degree}
        label = "default degree (2)" if degree is None else f"degree {degree}"
        out.append(
            case(
                f"dense vectors of sizes 1 to 5, {label}",
                "PolynomialExpansion",
                dict(params, inputCol="d"),
                [["d", "DenseVector"]],
                [{"d": plain(v)} for v in dense],
                [{"output": plain(flink_poly(v, d))} for v in dense],
                reference="sklearn.preprocessing.PolynomialFeatures(include_bias=False), columns "
                "reordered to Flink's order (exponents compared from the last feature)",
            )
        )
        expected = []
        for v in sparse_in:
            idx, vals = flink_poly(dense_of(v), d, stored=v["indices"])
            size = len(flink_poly(np.ones(v["size"]), d))
            expected.append({"poly": sp(size, idx, vals)})
        out.append(
            case(
                f"sparse vectors, {label}",
                "PolynomialExpansion",
                dict(params, inputCol="s", outputCol="poly"),
                [["s", "SparseVector"]],
                [{"s": v} for v in sparse_in],
                expected,
                reference="sklearn.preprocessing.PolynomialFeatures(include_bias=False) of the dense "
                "vector, reordered to Flink's order; Flink stores the monomials over stored features, "
                "size C(n + degree, degree) - 1",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# VectorSlicer
# ---------------------------------------------------------------------------------------------
def vector_slicer():
    out = []
    # Flink's VectorSlicerTest data.
    schema = [["id", "Long"], ["vec", "DenseVector"], ["sparseVec", "SparseVector"]]
    data = [
        {"id": 0, "vec": [2.1, 3.1, 2.3, 3.4, 5.3, 5.1], "sparseVec": sparse(5, [1, 3, 4], [0.1, 0.2, 0.3])},
        {"id": 1, "vec": [2.3, 4.1, 1.3, 2.4, 5.1, 4.1], "sparseVec": sparse(5, [1, 2, 4], [0.1, 0.2, 0.3])},
    ]
    out.append(
        case(
            "flink test: dense",
            "VectorSlicer",
            {"inputCol": "vec", "outputCol": "sliceVec", "indices": [0, 1, 2]},
            schema,
            data,
            [{"sliceVec": [2.1, 3.1, 2.3]}, {"sliceVec": [2.3, 4.1, 1.3]}],
            reference="flink test: VectorSlicerTest.testDenseTransform",
        )
    )
    out.append(
        case(
            "flink test: dense, unordered indices",
            "VectorSlicer",
            {"inputCol": "vec", "outputCol": "sliceVec", "indices": [0, 2, 1]},
            schema,
            data,
            [{"sliceVec": [2.1, 2.3, 3.1]}, {"sliceVec": [2.3, 1.3, 4.1]}],
            reference="flink test: VectorSlicerTest.testDenseTransformWithUnorderedIndices",
        )
    )
    out.append(
        case(
            "flink test: sparse",
            "VectorSlicer",
            {"inputCol": "sparseVec", "outputCol": "sliceVec", "indices": [0, 1, 2]},
            schema,
            data,
            [{"sliceVec": sp(3, [1], [0.1])}, {"sliceVec": sp(3, [1, 2], [0.1, 0.2])}],
            reference="flink test: VectorSlicerTest.testSparseTransform",
        )
    )

    rng = np.random.default_rng(83)
    n, size = 12, 8
    dense = np.round(rng.normal(0.0, 2.0, (n, size)), 3)
    dense[2, 5] = 0.0
    dense[4, 0] = np.nan
    sparse_in = [random_sparse(rng, size, int(k), zeros=int(k > 2)) for k in rng.integers(0, 8, n)]
    sparse_in[6]["values"][-1] = np.nan  # NaN != 0: kept
    schema = [["d", "DenseVector"], ["s", "SparseVector"]]
    inputs = rows(d=dense, s=sparse_in)
    for indices in [[5, 0, 7, 2], [3], [7, 6, 5, 4, 3, 2, 1, 0]]:
        out.append(
            case(
                f"dense, indices {indices}",
                "VectorSlicer",
                {"inputCol": "d", "indices": indices},
                schema,
                inputs,
                rows(output=dense[:, indices]),
                reference="numpy fancy indexing x[indices] (order kept)",
            )
        )
        expected = []
        for v in sparse_in:
            picked = dense_of(v)[indices]
            keep = np.flatnonzero(picked != 0)  # Flink: `val != 0`, so NaN is kept
            expected.append({"sliced": sp(len(indices), keep, picked[keep])})
        out.append(
            case(
                f"sparse, indices {indices}",
                "VectorSlicer",
                {"inputCol": "s", "outputCol": "sliced", "indices": indices},
                schema,
                inputs,
                expected,
                reference="numpy x.toarray()[indices]; Flink: SparseVector(len(indices)) of the picked "
                "values != 0 (explicit zeros dropped), index = position in `indices`",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# FeatureHasher
# ---------------------------------------------------------------------------------------------
def guava_hash_unencoded_chars(text):
    """Guava murmur3_32(0).hashUnencodedChars(text).asInt(): MurmurHash3_x86_32 with seed 0 over
    the UTF-16 code units of `text` as little-endian bytes (scikit-learn's murmurhash3_32 of those
    bytes). Checked: "hello" -> -675079799, and the indices of Flink's FeatureHasherTest."""
    from sklearn.utils import murmurhash3_32

    return int(murmurhash3_32(text.encode("utf-16-le"), seed=0, positive=False))


def java_string(value):
    """Java's String.valueOf for the values used here (Boolean, Long, Double, String)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        # Python's repr equals Java's Double.toString for plain decimals in [1e-3, 1e7).
        assert "e" not in text and "n" not in text and (value == 0 or 1e-3 <= abs(value) < 1e7), value
        return text
    return str(value)


def feature_hash(row, input_cols, categorical, num_features):
    """Port of Flink's FeatureHasher.HashFunction: numeric columns first (index from the column
    name, value = the number), then categorical ones (index from "col=value", value 1.0), in
    inputCols order; index = floorMod(Math.abs(hash), numFeatures); collisions accumulate."""
    feature = {}

    def update(text, value):
        h = guava_hash_unencoded_chars(text)
        h = h if h == -(2**31) else abs(h)  # Java Math.abs(Integer.MIN_VALUE) stays negative
        index = h % num_features  # Python % is Java's Math.floorMod for a positive divisor
        feature[index] = feature.get(index, 0.0) + value

    for c in input_cols:
        if c not in categorical:
            update(c, float(row[c]))
    for c in input_cols:
        if c in categorical:
            update(f"{c}={java_string(row[c])}", 1.0)
    keys = sorted(feature)
    return sp(num_features, keys, [feature[k] for k in keys])


def feature_hasher():
    out = []
    # Flink's FeatureHasherTest data.
    schema = [["id", "Long"], ["f0", "String"], ["f1", "Double"], ["f2", "Boolean"]]
    data = [{"id": 0, "f0": "a", "f1": 1.0, "f2": True}, {"id": 1, "f0": "c", "f1": 1.0, "f2": False}]
    expected = [{"vec": sp(1000, [607, 635, 913], [1.0, 1.0, 1.0])}, {"vec": sp(1000, [242, 869, 913], [1.0, 1.0, 1.0])}]
    for r, e in zip(data, expected):
        assert feature_hash(r, ["f0", "f1", "f2"], {"f0", "f2"}, 1000) == e["vec"]
    out.append(
        case(
            "flink test: categoricalCols set",
            "FeatureHasher",
            {"inputCols": ["f0", "f1", "f2"], "outputCol": "vec", "categoricalCols": ["f0", "f2"], "numFeatures": 1000},
            schema,
            data,
            expected,
            reference="flink test: FeatureHasherTest.testSaveLoadAndTransform",
        )
    )
    out.append(
        case(
            "flink test: String and Boolean columns are categorical without categoricalCols",
            "FeatureHasher",
            {"inputCols": ["f0", "f1", "f2"], "outputCol": "vec", "numFeatures": 1000},
            schema,
            data,
            expected,
            reference="flink test: FeatureHasherTest.testCategoricalColsNotSet",
        )
    )

    rng = np.random.default_rng(97)
    n = 16
    schema = [["x", "Double"], ["k", "Long"], ["c", "Double"], ["word", "String"], ["flag", "Boolean"], ["m", "Long"]]
    words = ["a", "b", "hello", "naïve", "日本", "😀", "", "a b", "A"]
    data = rows(
        x=np.round(rng.normal(0.0, 2.0, n), 3),
        k=rng.integers(-3, 4, n),
        c=rng.choice([0.5, 1.0, -2.25, 3.0, 0.125, 10.0], n),
        word=[words[i % len(words)] for i in range(n)],
        flag=[bool(b) for b in rng.integers(0, 2, n)],
        m=rng.integers(0, 4, n),
    )
    data[0]["x"] = 0.0  # a zero numeric value is stored as an explicit 0.0
    all_cols = ["x", "k", "c", "word", "flag", "m"]
    for name, params, cats in [
        ("default numFeatures: numeric Double/Long, String and Boolean columns", {"inputCols": all_cols}, {"word", "flag"}),
        (
            "Double and Long columns listed in categoricalCols hash \"col=\" + Java toString",
            {"inputCols": all_cols, "categoricalCols": ["c", "m"], "numFeatures": 1 << 20},
            {"word", "flag", "c", "m"},
        ),
        (
            "numFeatures 7: collisions accumulate",
            {"inputCols": ["word", "x", "c", "flag", "k"], "outputCol": "hashed", "categoricalCols": ["c"], "numFeatures": 7},
            {"word", "flag", "c"},
        ),
        ("numFeatures 1: everything collides", {"inputCols": ["k", "x", "word"], "numFeatures": 1}, {"word"}),
    ]:
        out_col = params.get("outputCol", "output")
        num = params.get("numFeatures", 262144)
        out.append(
            case(
                name,
                "FeatureHasher",
                params,
                schema,
                data,
                [{out_col: feature_hash(r, params["inputCols"], cats, num)} for r in data],
                reference="port of Flink FeatureHasher (index floorMod(abs(h), numFeatures), numeric then "
                "categorical, collisions summed); h = sklearn.utils.murmurhash3_32 of the UTF-16LE "
                "bytes (= Guava murmur3_32(0).hashUnencodedChars)",
            )
        )
    return out


def no_nan(value):
    """Replaces every float NaN (numpy scalars included) by None, the fixtures' NaN."""
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [no_nan(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def cases():
    return {stage: [no_nan(c) for c in stage_cases] for stage, stage_cases in all_cases().items()}


def all_cases():
    return {
        "VectorAssembler": vector_assembler(),
        "Binarizer": binarizer(),
        "Bucketizer": bucketizer(),
        "DCT": dct(),
        "ElementwiseProduct": elementwise_product(),
        "Interaction": interaction(),
        "Normalizer": normalizer(),
        "PolynomialExpansion": polynomial_expansion(),
        "VectorSlicer": vector_slicer(),
        "FeatureHasher": feature_hasher(),
    }
