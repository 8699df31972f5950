"""AgglomerativeClustering, BinaryClassificationEvaluator and Weir's
MulticlassClassificationEvaluator: expected values from scikit-learn (and scipy) on the bundled
data sets (fixtures/datasets/), read by crates/weir-flink-ml/tests/agglomerative_clustering.rs
and tests/evaluation.rs.

- AgglomerativeClustering: sklearn.cluster.AgglomerativeClustering labels (compared as
  partitions: sklearn numbers clusters otherwise than Flink), and its full tree (children_,
  distances_, compute_distances=True) with the sizes of the merged clusters (scipy's linkage
  matrix). Flink cuts at distance <= threshold, sklearn at < threshold: the thresholds here are
  no merge distance.
- BinaryClassificationEvaluator: roc_auc_score; the trapezoidal area under the
  precision_recall_curve points, auc(recall, precision) (what Flink's areaUnderPR is, not
  average_precision_score); KS = max |tpr - fpr| over roc_curve(drop_intermediate=False);
  areaUnderLorenz = auc of (share of the weight predicted positive, tpr) from (0, 0), over the
  distinct scores. Scores are rounded so that many tie, with both labels.
- MulticlassClassificationEvaluator: accuracy_score, precision_score / recall_score /
  f1_score (average='weighted') and f1_score(average='macro'), zero_division=0, with and
  without sample weights.
"""
import json
import pathlib

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    auc,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.naive_bayes import GaussianNB

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def dataset(name):
    return json.loads((ROOT / "fixtures" / "datasets" / f"{name}.json").read_text())


def sizes_of(children, n):
    size = [1] * n + [0] * (n - 1)
    out = []
    for k, (a, b) in enumerate(children):
        size[n + k] = size[a] + size[b]
        out.append(size[n + k])
    return out


CLUSTERING = [
    # (linkage, metric, numClusters, distanceThreshold per data set)
    ("ward", "euclidean", 3, None),
    ("complete", "euclidean", 3, None),
    ("average", "manhattan", 3, None),
    ("average", "cosine", 4, None),
    ("single", "euclidean", 2, None),
    ("ward", "euclidean", None, {"iris": 6.0, "wine": 1000.0}),
    ("complete", "manhattan", None, {"iris": 3.05, "wine": 700.5}),
]


def clustering_cases():
    cases = []
    for name in ["iris", "wine"]:
        x = np.array(dataset(name)["features"])
        n = len(x)
        for linkage, metric, k, thresholds in CLUSTERING:
            threshold = None if thresholds is None else thresholds[name]
            model = AgglomerativeClustering(
                n_clusters=k,
                distance_threshold=threshold,
                linkage=linkage,
                metric=metric,
                compute_full_tree=True,
                compute_distances=True,
            ).fit(x)
            children = [sorted(int(c) for c in pair) for pair in model.children_]
            distances = [float(d) for d in model.distances_]
            if threshold is not None:
                assert all(abs(d - threshold) > 1e-6 for d in distances), (name, linkage)
            params = {"linkage": linkage, "distanceMeasure": metric, "computeFullTree": True}
            if k is None:
                params.update({"numClusters": None, "distanceThreshold": threshold})
            else:
                params["numClusters"] = k
            cases.append({
                "name": f"{name}, {linkage}, {metric}, " + (f"numClusters={k}" if k else f"distanceThreshold={threshold}"),
                "dataset": name,
                "paramMap": params,
                "labels": [int(v) for v in model.labels_],
                "clusters": int(model.n_clusters_),
                "children": children,
                "distances": distances,
                "sizes": sizes_of(children, n),
                # Iris' measurements have one decimal: thousands of its pairwise distances tie,
                # and ties broken otherwise (Flink's distances go through the norms, so its
                # ties are broken by rounding) give other, equally valid trees below the top
                # merges. Wine's trees are compared whole.
                "wholeTree": name == "wine",
                "reference": (
                    f"sklearn.cluster.AgglomerativeClustering(linkage={linkage!r}, metric={metric!r}, "
                    f"n_clusters={k}, distance_threshold={threshold}, compute_full_tree=True, "
                    "compute_distances=True) on all rows"
                ),
            })
    return cases


def lorenz(y, s, w):
    order = np.argsort(-s, kind="mergesort")
    y, s, w = y[order], s[order], w[order]
    last = np.r_[np.where(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(w * (y == 1))[last]
    fps = np.cumsum(w * (y != 1))[last]
    x = np.r_[0.0, (tps + fps) / w.sum()]
    t = np.r_[0.0, tps / tps[-1]]
    return float(auc(x, t))


def binary_metrics(y, s, w):
    precision, recall, _ = precision_recall_curve(y, s, sample_weight=w)
    fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    return {
        "areaUnderROC": float(roc_auc_score(y, s, sample_weight=w)),
        "areaUnderPR": float(auc(recall, precision)),
        "ks": float(np.max(np.abs(tpr - fpr))),
        "areaUnderLorenz": lorenz(y, s, w),
    }


def binary_cases():
    data = dataset("breast_cancer")
    x, y = np.array(data["features"]), np.array(data["label"])
    train, test = data["train"], data["test"]
    model = LogisticRegression(max_iter=5000).fit(x[train], y[train])
    p = model.predict_proba(x)[:, 1]
    rng = np.random.default_rng(11)
    cases = []
    for decimals in [1, 2, None]:
        s = p if decimals is None else np.round(p, decimals)
        for weighted in [False, True]:
            w = rng.uniform(0.2, 3.0, len(y)).round(3) if weighted else np.ones(len(y))
            ties = len(s) - len(np.unique(s))
            cases.append({
                "name": f"breast cancer, scores rounded to {decimals} decimals ({ties} ties), "
                        + ("weighted" if weighted else "unweighted"),
                "label": [float(v) for v in y],
                "score": [float(v) for v in s],
                "weight": [float(v) for v in w] if weighted else None,
                "expected": binary_metrics(y, s, w),
                "reference": "sklearn roc_auc_score, auc(precision_recall_curve), roc_curve; Lorenz by numpy",
            })
    return cases


def multiclass_metrics(y, p, w):
    kw = {"sample_weight": w, "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(y, p, sample_weight=w)),
        "weightedPrecision": float(precision_score(y, p, average="weighted", **kw)),
        "weightedRecall": float(recall_score(y, p, average="weighted", **kw)),
        "f1": float(f1_score(y, p, average="weighted", **kw)),
        "macroF1": float(f1_score(y, p, average="macro", **kw)),
    }


def multiclass_cases():
    cases = []
    rng = np.random.default_rng(5)
    for name, model in [("iris", GaussianNB()), ("wine", GaussianNB()), ("digits", GaussianNB())]:
        data = dataset(name)
        x, y = np.array(data["features"]), np.array(data["label"])
        train, test = data["train"], data["test"]
        p = model.fit(x[train], y[train]).predict(x[test])
        yt = y[test]
        if name == "wine":
            # A predicted class that is no true class (zero division), as a wrong model gives.
            p = p.copy()
            p[:5] = 7.0
        for weighted in [False, True]:
            w = rng.uniform(0.5, 2.0, len(yt)).round(3) if weighted else None
            cases.append({
                "name": f"{name}, GaussianNB on the test rows, " + ("weighted" if weighted else "unweighted"),
                "label": [float(v) for v in yt],
                "prediction": [float(v) for v in p],
                "weight": None if w is None else [float(v) for v in w],
                "expected": multiclass_metrics(yt, p, w),
                "reference": "sklearn accuracy_score, precision/recall/f1_score(average='weighted'), f1_score(average='macro'), zero_division=0",
            })
    return cases


def cases():
    return {
        "AgglomerativeClustering": clustering_cases(),
        "BinaryClassificationEvaluator": binary_cases(),
        "MulticlassClassificationEvaluator": multiclass_cases(),
    }
