#!/usr/bin/env python3
"""scikit-learn's single-process baseline for benches/flink_ml_estimators_vs_sklearn.rs.

Fits the same rows as the Weir side (the bench writes them as raw little-endian f64 to
--data-dir: <key>_x.f64, rows x dim, and logreg_y.f64) with comparable settings:

- logreg: LogisticRegression(solver='lbfgs', max_iter=20, tol=0, fit_intercept=False, C=inf):
  20 L-BFGS iterations (each at least one full pass for the loss and its gradient), no
  regularisation, as Weir's full-batch gradient descent for 20 rounds without regularisation.
- kmeans: KMeans(n_clusters=2, max_iter=20, n_init=1, init='random', algorithm='lloyd', tol=0).

Each estimator is fitted with scikit-learn's default threads (OpenMP and BLAS use every core)
and with one thread (threadpoolctl), once to warm up and then --runs times; the median is
reported, with the iterations run (n_iter_) and the model's quality on the training rows
(accuracy, inertia). Only `fit` is timed; the data is loaded first. Prints one JSON object:

    {"rows": N, "runs": R, "numpy": "...", "sklearn": "...",
     "estimators": {"logreg": {"default_threads": {"seconds": [...], "median_s": ...,
                                                   "n_iter": ..., "quality": ...,
                                                   "peak_rss_bytes": ..., "start_rss_bytes": ...},
                               "one_thread": {...}, "input_bytes": ..., "baseline": "..."},
                    ...},
     "ru_maxrss_bytes": ...}

Peak RSS is the process's VmHWM during a timed run (reset through /proc/self/clear_refs before
it), so it includes the input; start_rss_bytes is the RSS when the run started.

Run by the bench, or by hand on data it wrote:
    ~/.cache/weir/bench-venv/bin/python scripts/sklearn_estimator_bench.py --data-dir DIR
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

DIMS = {"logreg": 100, "kmeans": 10}
ALL_ESTIMATORS = ["logreg", "kmeans"]


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


def load(data_dir, key, rows):
    x = np.fromfile(os.path.join(data_dir, f"{key}_x.f64"), dtype="<f8").reshape(rows, DIMS[key])
    y = None
    if key == "logreg":
        y = np.fromfile(os.path.join(data_dir, f"{key}_y.f64"), dtype="<f8")
    return x, y


def estimator(key, iterations):
    if key == "logreg":
        return LogisticRegression(solver="lbfgs", max_iter=iterations, tol=0.0,
                                  fit_intercept=False, C=np.inf)
    if key == "kmeans":
        return KMeans(n_clusters=2, max_iter=iterations, n_init=1, init="random",
                      algorithm="lloyd", tol=0.0, random_state=0)
    raise ValueError(f"unknown estimator {key}")


def describe(key, iterations):
    return repr(estimator(key, iterations))


def n_iter(model):
    n = model.n_iter_
    return int(np.max(n))


def quality(key, model, x, y):
    if key == "logreg":
        return float(np.mean(model.predict(x) == y))
    return float(model.inertia_)


def time_fit(key, x, y, runs, iterations, threads):
    with threadpool_limits(threads):
        estimator(key, iterations).fit(x, y)  # warm-up
        seconds, peaks, starts, model = [], [], [], None
        for _ in range(runs):
            model = estimator(key, iterations)
            reset_peak_rss()
            starts.append(status_bytes("VmRSS:"))
            start = time.perf_counter()
            model.fit(x, y)
            seconds.append(time.perf_counter() - start)
            peaks.append(status_bytes("VmHWM:"))
    top = lambda xs: max((v for v in xs if v is not None), default=None)
    median = statistics.median(seconds)
    return {"seconds": seconds, "median_s": median, "n_iter": n_iter(model),
            "quality": quality(key, model, x, y), "peak_rss_bytes": top(peaks),
            "start_rss_bytes": top(starts)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--estimators", default=",".join(ALL_ESTIMATORS))
    args = parser.parse_args()
    # max_iter reached without convergence is the point here.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    results = {}
    for key in [k for k in args.estimators.split(",") if k]:
        x, y = load(args.data_dir, key, args.rows)
        entry = {"input_bytes": int(x.nbytes + (y.nbytes if y is not None else 0)),
                 "baseline": describe(key, args.iterations)}
        for name, threads in [("default_threads", None), ("one_thread", 1)]:
            entry[name] = time_fit(key, x, y, args.runs, args.iterations, threads)
            t = entry[name]
            print(f"sklearn {key:8} {name:16} {t['median_s']:8.3f} s  {t['n_iter']} iterations"
                  f"  quality {t['quality']:.4f}", file=sys.stderr)
        results[key] = entry
        del x, y
    json.dump({"rows": args.rows, "runs": args.runs, "numpy": np.__version__,
               "sklearn": sklearn.__version__, "python": sys.version.split()[0],
               "threadpools": [{"api": i["internal_api"], "threads": i["num_threads"]}
                               for i in threadpool_info()],
               "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
               "estimators": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
