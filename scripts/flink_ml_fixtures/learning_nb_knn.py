"""NaiveBayes and Knn: scikit-learn's predictions on the bundled data sets' fixed split
(fixtures/datasets/), written to fixtures/flink-ml/{NaiveBayes,Knn}.json.

NaiveBayes. Flink ML's NaiveBayes is *categorical*: every feature value is a category. Its
model is scikit-learn's CategoricalNB(alpha=smoothing) when (1) the categories of feature j
in the training rows are exactly 0..K_j-1 (Flink counts the distinct values K_j; scikit-learn
takes max + 1), and (2) the class prior is Flink's, exp(piArray[c]) =
(n_c * D + s) / (N * D + C * s), passed as class_prior (scikit-learn's own is n_c / N). Both
hold here: the features are remapped to the rank of their value among the training rows'
values of that feature (which changes nothing in Flink's model: it only compares values for
equality), and test rows with a value the training rows do not have are left out (Flink
fails on them with a NullPointerException). Continuous data sets are first cut into
quartiles (KBinsDiscretizer(n_bins=4, encode='ordinal', strategy='quantile') fitted on the
training rows); digits' pixel values (0..16) are categories as they are. The fixture holds
the quartile edges from which the Rust test computes the bins it feeds to Weir (none for
digits: the raw data set), scikit-learn's predictions, log priors and feature_log_prob_ (theta), and the test
rows whose two best joint log-likelihoods are within 1e-9 (none on these data sets).

Knn. scikit-learn's KNeighborsClassifier(n_neighbors=k, algorithm='brute') on the raw
features. Exact ties (points at the same distance across the k-th place, or equal votes) are
broken differently: scikit-learn takes the smallest label of equal votes, Flink its Java
PriorityQueue/HashMap orders. For every test row the fixture lists the labels that some
choice among equally distant points and some rule for equal votes can give ("candidates",
computed exactly from the squared distances, equal within 1e-9 relative); where there is
one, Weir's prediction must be it (and it is scikit-learn's); where there are several, the row
is a tie and Weir's prediction must be one of them.
"""
import itertools
import json
import pathlib

import numpy as np
from sklearn.naive_bayes import CategoricalNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import KBinsDiscretizer

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def load(name):
    data = json.loads((ROOT / "fixtures" / "datasets" / f"{name}.json").read_text())
    return (
        np.array(data["features"], dtype=float),
        np.array(data["label"], dtype=float),
        np.array(data["train"]),
        np.array(data["test"]),
    )


def naive_bayes_case(name, binned, smoothings):
    x, y, train, test = load(name)
    if binned:
        kb = KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="quantile", quantile_method="averaged_inverted_cdf")
        kb.fit(x[train])
        edges = [e[1:-1] for e in kb.bin_edges_]
        # The bin of a value: the number of inner edges at most the value (what the Rust
        # test computes from "binEdges"), checked to be KBinsDiscretizer's.
        binned_x = np.array([[np.sum(e <= v) for e, v in zip(edges, row)] for row in x], dtype=float)
        assert (binned_x == kb.transform(x)).all()
        x = binned_x
    # Rank of every value among the training rows' values of its feature.
    ranks = np.full(x.shape, -1, dtype=int)
    for j in range(x.shape[1]):
        values = np.unique(x[train, j])
        index = {v: r for r, v in enumerate(values)}
        ranks[:, j] = [index.get(v, -1) for v in x[:, j]]
    seen = test[(ranks[test] >= 0).all(axis=1)]
    classes = np.unique(y[train])
    d = x.shape[1]
    runs = []
    for s in smoothings:
        n_c = np.array([(y[train] == c).sum() for c in classes], dtype=float)
        prior = (n_c * d + s) / (len(train) * d + len(classes) * s)
        model = CategoricalNB(alpha=s, class_prior=prior, force_alpha=True)
        model.fit(ranks[train], y[train])
        jll = model.predict_joint_log_proba(ranks[seen])
        top = np.sort(jll, axis=1)
        near = [int(seen[i]) for i in range(len(seen)) if top[i, -1] - top[i, -2] <= 1e-9 * abs(top[i, -1])]
        predictions = model.predict(ranks[seen])
        run = {
            "smoothing": s,
            "accuracy": float((predictions == y[seen]).mean()),
            "predictions": [float(p) for p in predictions],
            "nearTies": near,
            "labels": [float(c) for c in classes],
            "piArray": [float(v) for v in model.class_log_prior_],
        }
        if binned:
            # theta[c][j][r]: the log probability of the r-th value (ascending) of feature j.
            run["theta"] = [[[float(v) for v in model.feature_log_prob_[j][c]] for j in range(d)] for c in range(len(classes))]
        runs.append(run)
    return {
        "name": f"NaiveBayes on {name}" + (" (quartile bins)" if binned else " (pixel values)"),
        "stage": "NaiveBayes",
        "dataset": name,
        "binEdges": [[float(v) for v in e] for e in edges] if binned else None,
        "test": [int(i) for i in seen],
        "runs": runs,
        "tolerance": 1e-9,
        "reference": "sklearn CategoricalNB(alpha=smoothing, class_prior=Flink's (n_c*D+s)/(N*D+C*s)) on training-rank-coded features",
    }


def candidates(d2, labels, k, tol=1e-9):
    """Every label some choice among equally distant points and some vote tie rule can give."""
    order = np.argsort(d2, kind="stable")
    kth = d2[order[k - 1]]
    eps = tol * kth + 1e-12
    inside = labels[d2 < kth - eps]
    boundary = labels[np.abs(d2 - kth) <= eps]
    m = k - len(inside)
    classes = sorted(set(labels.tolist()))
    base = {c: int((inside == c).sum()) for c in classes}
    avail = {c: int((boundary == c).sum()) for c in classes}
    out = set()
    ranges = [range(0, min(avail[c], m) + 1) for c in classes]
    for choice in itertools.product(*ranges):
        if sum(choice) != m:
            continue
        votes = {c: base[c] + n for c, n in zip(classes, choice)}
        best = max(votes.values())
        out.update(c for c, v in votes.items() if v == best)
    return sorted(out)


def knn_case(name, ks):
    x, y, train, test = load(name)
    runs = []
    for k in ks:
        model = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x[train], y[train])
        predictions = model.predict(x[test])
        cands, ties = [], []
        for i, row in enumerate(test):
            d2 = ((x[train] - x[row]) ** 2).sum(axis=1)
            c = candidates(d2, y[train], k)
            assert predictions[i] in c, (name, k, row, c, predictions[i])
            cands.append([float(v) for v in c])
            if len(c) > 1:
                ties.append(int(row))
        runs.append({
            "k": k,
            "accuracy": float((predictions == y[test]).mean()),
            "predictions": [float(p) for p in predictions],
            "candidates": cands,
            "ties": ties,
        })
    return {
        "name": f"Knn on {name}",
        "stage": "Knn",
        "dataset": name,
        "runs": runs,
        "reference": "sklearn KNeighborsClassifier(n_neighbors=k, algorithm='brute'); candidates from exact squared distances",
    }


def cases():
    return {
        "NaiveBayes": [
            naive_bayes_case("iris", True, [1.0, 0.5]),
            naive_bayes_case("wine", True, [1.0, 0.5]),
            naive_bayes_case("breast_cancer", True, [1.0, 0.5]),
            naive_bayes_case("digits", False, [1.0, 0.5]),
        ],
        "Knn": [knn_case("iris", [1, 3, 5, 10]), knn_case("wine", [1, 3, 5, 10])],
    }


if __name__ == "__main__":
    # Writes only this module's fixtures (scripts/make_flink_ml_fixtures.py writes them all).
    import sklearn

    out = ROOT / "fixtures" / "flink-ml"
    generator = f"scripts/make_flink_ml_fixtures.py (scikit-learn {sklearn.__version__}, numpy {np.__version__})"
    for stage, stage_cases in cases().items():
        path = out / f"{stage}.json"
        path.write_text(json.dumps({"generator": generator, "cases": stage_cases}, indent=1) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(stage_cases)} cases")
