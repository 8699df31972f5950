#!/usr/bin/env python3
"""scikit-learn's single-process baseline for benches/flink_ml_vs_sklearn.rs.

The same stages and data shapes as Flink ML's benchmark files (benches/flink-ml/*-benchmark.json),
at --rows rows: the data is generated before timing, each stage runs once to warm up and then
--runs times, and the median is reported. Prints one JSON object:

    {"rows": N, "runs": R, "numpy": "...", "sklearn": "...",
     "stages": {"standardscaler": {"seconds": [...], "median_s": ..., "rows_per_s": ...,
                                   "best_rows_per_s": ... (of the fastest run),
                                   "peak_rss_bytes": ..., "start_rss_bytes": ...,
                                   "input_bytes": ..., "baseline": "..."}, ...}}

Peak RSS is the process's VmHWM during a timed run (reset through /proc/self/clear_refs before
it), so it includes the input; start_rss_bytes is the RSS when the run started.

Where a stage has several reasonable scikit-learn equivalents (StringIndexer: OrdinalEncoder or
LabelEncoder), all are timed and the fastest is the baseline (`variants` lists them all).

Run with the pinned venv: bash scripts/install-bench-python.sh, then
    ~/.cache/weir/bench-venv/bin/python scripts/sklearn_feature_bench.py --rows 1000000
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import sklearn
from sklearn.feature_extraction import FeatureHasher
from sklearn.preprocessing import LabelEncoder, MinMaxScaler, OrdinalEncoder, StandardScaler

# Shapes of benches/flink-ml/*-benchmark.json.
VECTOR_DIM = 100  # standardscaler, minmaxscaler: DenseVectorGenerator vectorDim
ASSEMBLER_COLUMNS = 15  # vectorassembler: DoubleGenerator f0..f14, inputSizes all 1
HASHING_ARRAY_SIZE = 10  # hashingtf: RandomStringArrayGenerator arraySize
HASHING_DISTINCT = 10  # hashingtf: numDistinctValues (the generator's default)
HASHING_FEATURES = 1 << 18  # HashingTF numFeatures default
INDEXER_DISTINCT = 100  # stringindexer: RandomStringGenerator numDistinctValues

ALL_STAGES = ["standardscaler", "minmaxscaler", "vectorassembler", "hashingtf", "stringindexer"]


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def status_bytes(key):
    """A memory figure of /proc/self/status (VmHWM: peak RSS, VmRSS: RSS now), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def make_data(stage, rows, rng):
    """The stage's input, built before timing, and its size in bytes (approximate for strings)."""
    if stage in ("standardscaler", "minmaxscaler"):
        x = rng.random((rows, VECTOR_DIM))
        return x, x.nbytes
    if stage == "vectorassembler":
        cols = [rng.random((rows, 1)) for _ in range(ASSEMBLER_COLUMNS)]
        return cols, sum(c.nbytes for c in cols)
    if stage == "hashingtf":
        tokens = [str(i) for i in range(HASHING_DISTINCT)]
        codes = rng.integers(0, HASHING_DISTINCT, size=(rows, HASHING_ARRAY_SIZE))
        docs = [[tokens[c] for c in row] for row in codes.tolist()]
        return docs, rows * (HASHING_ARRAY_SIZE * 8 + 56 + 8)
    if stage == "stringindexer":
        codes = rng.integers(0, INDEXER_DISTINCT, size=rows)
        # Distinct str objects per row, as a column read from a file would have.
        column = np.array([str(c) for c in codes.tolist()], dtype=object)
        return column, rows * 8 + rows * 51
    raise ValueError(f"unknown stage {stage}")


def variants(stage):
    """(name, fit_transform function) pairs for a stage."""
    if stage == "standardscaler":
        return [("StandardScaler.fit_transform",
                 lambda x: StandardScaler(with_mean=True, with_std=True).fit_transform(x))]
    if stage == "minmaxscaler":
        return [("MinMaxScaler.fit_transform", lambda x: MinMaxScaler().fit_transform(x))]
    if stage == "vectorassembler":
        return [("numpy.hstack", lambda cols: np.hstack(cols))]
    if stage == "hashingtf":
        return [("FeatureHasher.transform",
                 lambda docs: FeatureHasher(n_features=HASHING_FEATURES, input_type="string",
                                            alternate_sign=False).transform(docs))]
    if stage == "stringindexer":
        return [
            ("OrdinalEncoder.fit_transform",
             lambda col: OrdinalEncoder().fit_transform(col.reshape(-1, 1))),
            ("LabelEncoder.fit_transform", lambda col: LabelEncoder().fit_transform(col)),
        ]
    raise ValueError(f"unknown stage {stage}")


def time_variant(f, data, runs):
    out = f(data)  # warm-up
    del out
    seconds, peaks, starts = [], [], []
    for _ in range(runs):
        reset_peak_rss()
        starts.append(status_bytes("VmRSS:"))
        start = time.perf_counter()
        out = f(data)
        seconds.append(time.perf_counter() - start)
        peaks.append(status_bytes("VmHWM:"))
        del out
    top = lambda xs: max((x for x in xs if x is not None), default=None)
    return seconds, top(peaks), top(starts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stages", default=",".join(ALL_STAGES))
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    results = {}
    for stage in [s for s in args.stages.split(",") if s]:
        data, input_bytes = make_data(stage, args.rows, rng)
        timed = []
        for name, f in variants(stage):
            seconds, peak, start = time_variant(f, data, args.runs)
            median = statistics.median(seconds)
            timed.append({"variant": name, "seconds": seconds, "median_s": median,
                          "rows_per_s": args.rows / median,
                          "best_rows_per_s": args.rows / min(seconds), "peak_rss_bytes": peak,
                          "start_rss_bytes": start})
            print(f"sklearn {stage:16} {name:30} {args.rows / median:>14,.0f} rows/s",
                  file=sys.stderr)
        best = min(timed, key=lambda t: t["median_s"])
        results[stage] = dict(best, baseline=best["variant"], input_bytes=input_bytes,
                              variants=timed)
        del data
    json.dump({"rows": args.rows, "runs": args.runs, "numpy": np.__version__,
               "sklearn": sklearn.__version__, "python": sys.version.split()[0],
               "stages": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
