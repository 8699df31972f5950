#!/usr/bin/env python3
"""Writes fixtures/datasets/<name>.json: scikit-learn's bundled data sets (iris, wine,
breast_cancer, digits; diabetes for regression, classes 0) with one fixed stratified train/test split, for the parity tests of
Weir's Flink ML estimators (classification, regression, clustering).

Each file: {"name", "generator", "classes", "features": [[...]], "label": [...],
"train": [row indices], "test": [row indices]}. The data sets ship with scikit-learn (no
download). Pinned versions: scripts/requirements-models.txt.

Usage: python scripts/make_learning_datasets.py   (from the repository root)
"""
import json
import pathlib

import numpy
import sklearn
from sklearn import datasets
from sklearn.model_selection import train_test_split

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "diabetes": datasets.load_diabetes,
}


def main():
    out = ROOT / "fixtures" / "datasets"
    out.mkdir(parents=True, exist_ok=True)
    generator = (
        f"scripts/make_learning_datasets.py (scikit-learn {sklearn.__version__}, numpy {numpy.__version__})"
    )
    for name, load in LOADERS.items():
        data = load()
        x, y = data.data, data.target
        index = numpy.arange(len(y))
        regression = name == "diabetes"
        stratify = None if regression else y
        train, test = train_test_split(index, test_size=0.25, random_state=0, stratify=stratify)
        document = {
            "name": name,
            "generator": generator,
            "classes": 0 if regression else int(len(numpy.unique(y))),
            "features": [[float(v) for v in row] for row in x],
            "label": [float(v) for v in y],
            "train": sorted(int(i) for i in train),
            "test": sorted(int(i) for i in test),
        }
        path = out / f"{name}.json"
        path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(y)} rows, {x.shape[1]} features")


if __name__ == "__main__":
    main()
