"""LogisticRegression, LinearSVC and LinearRegression: scikit-learn's test-set accuracy (or mean
squared error) with the same objective as Weir's (Flink ML's) SGD, on the bundled data sets'
fixed split (fixtures/datasets/).

Features are standardized with the training rows' mean and (population) standard deviation
and get a constant 1.0 appended (Flink ML's linear models have no intercept), exactly as the
Rust test does. Flink's objective is the mean loss plus reg/2 * ||w||^2; scikit-learn's
LogisticRegression and LinearSVC minimize 0.5 * ||w||^2 + C * sum(loss), the same optimum
for reg = 1 / (C * n). LinearRegression with reg 0 is ordinary least squares."""
import json
import pathlib

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.svm import LinearSVC

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def load(name, labels=None):
    data = json.loads((ROOT / "fixtures" / "datasets" / f"{name}.json").read_text())
    x, y = np.array(data["features"]), np.array(data["label"])
    train, test = np.array(data["train"]), np.array(data["test"])
    if labels is not None:
        keep = np.isin(y, labels)
        position = -np.ones(len(y), dtype=int)
        position[keep] = np.arange(keep.sum())
        x, y = x[keep], np.array([labels.index(v) for v in y[keep]], dtype=float)
        train, test = position[train[keep[train]]], position[test[keep[test]]]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    return z[train], y[train], z[test], y[test]


def classifier_case(stage, name, labels, c, params):
    xt, yt, xs, ys = load(name, labels)
    n = len(yt)
    if stage == "LogisticRegression":
        model = LogisticRegression(C=c, fit_intercept=False, max_iter=100000, tol=1e-12)
    else:
        model = LinearSVC(C=c, loss="hinge", fit_intercept=False, max_iter=1000000, tol=1e-12, dual=True, random_state=0)
    model.fit(xt, yt)
    return {
        "name": f"{stage} on {name}{'' if labels is None else labels}",
        "stage": stage,
        "dataset": name,
        "labels": labels,
        "paramMap": {**params, "reg": 1.0 / (c * n), "globalBatchSize": n},
        "metric": "accuracy",
        "expected": float(accuracy_score(ys, model.predict(xs))),
        "coefficient": [float(v) for v in np.ravel(model.coef_)],
        "tolerance": 0.01,
        "reference": f"sklearn {type(model).__name__}(C={c}, fit_intercept=False) on standardized features + a 1.0 column",
    }


def regression_case():
    xt, yt, xs, ys = load("diabetes")
    model = LinearRegression(fit_intercept=False).fit(xt, yt)
    return {
        "name": "LinearRegression on diabetes",
        "stage": "LinearRegression",
        "dataset": "diabetes",
        "labels": None,
        "paramMap": {"maxIter": 20000, "learningRate": 0.1, "reg": 0.0, "tol": 0.0, "globalBatchSize": len(yt)},
        "metric": "mse",
        "expected": float(mean_squared_error(ys, model.predict(xs))),
        "coefficient": [float(v) for v in model.coef_],
        "tolerance": 0.01,
        "reference": "sklearn LinearRegression(fit_intercept=False) on standardized features + a 1.0 column",
    }


def cases():
    params = {"maxIter": 5000, "learningRate": 0.5, "tol": 0.0}
    out = {"LogisticRegression": [], "LinearSVC": []}
    for stage in out:
        out[stage].append(classifier_case(stage, "breast_cancer", None, 1.0, params))
        out[stage].append(classifier_case(stage, "iris", [1.0, 2.0], 1.0, params))
    out["LinearRegression"] = [regression_case()]
    return out
