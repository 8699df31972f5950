#!/usr/bin/env python3
"""Writes fixtures/flink-ml/<Stage>.json: parity cases for Weir's Flink ML feature stages.

Expected outputs come from scikit-learn / numpy / scipy where they compute the same thing
(with Flink's documented differences applied, e.g. the unbiased standard deviation), and from
Flink ML's own unit tests or a faithful port of Flink's Java logic where they do not. Each
case names its reference. Pinned versions: scripts/requirements-models.txt.

Usage: python scripts/make_flink_ml_fixtures.py   (from the repository root)
"""
import importlib
import json
import pathlib
import sys

import numpy
import sklearn

ROOT = pathlib.Path(__file__).resolve().parent.parent
GROUPS = ["core", "group_a", "group_b", "group_c", "kmeans", "linear", "learning_clustering_eval", "learning_nb_knn"]


def main():
    sys.path.insert(0, str(ROOT / "scripts"))
    out = ROOT / "fixtures" / "flink-ml"
    out.mkdir(parents=True, exist_ok=True)
    generator = (
        f"scripts/make_flink_ml_fixtures.py (scikit-learn {sklearn.__version__}, numpy {numpy.__version__})"
    )
    for group in GROUPS:
        try:
            module = importlib.import_module(f"flink_ml_fixtures.{group}")
        except ModuleNotFoundError as e:
            if e.name == f"flink_ml_fixtures.{group}":
                continue
            raise
        for stage, cases in module.cases().items():
            path = out / f"{stage}.json"
            document = {"generator": generator, "cases": cases}
            path.write_text(json.dumps(document, indent=1) + "\n")
            print(f"{path.relative_to(ROOT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
