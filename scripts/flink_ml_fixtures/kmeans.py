"""KMeans: scikit-learn's inertia (k-means++, 10 inits, Lloyd to convergence) on the bundled
data sets' training rows (fixtures/datasets/), which Weir's KMeans with initMode k-means||
must come within 1% of; plus Flink ML's own KMeansTest example."""
import json
import pathlib

import numpy as np
from sklearn.cluster import KMeans

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SETS = {"iris": 3, "wine": 3, "breast_cancer": 2, "digits": 10}


def cases():
    cases = []
    for name, k in SETS.items():
        data = json.loads((ROOT / "fixtures" / "datasets" / f"{name}.json").read_text())
        x = np.array(data["features"])[data["train"]]
        model = KMeans(n_clusters=k, n_init=10, random_state=0, max_iter=300, tol=0.0, algorithm="lloyd").fit(x)
        cases.append({
            "name": f"{name}, k={k}",
            "dataset": name,
            "k": k,
            "inertia": float(model.inertia_),
            # One run of Lloyd's algorithm (from k-means||) against scikit-learn's best of 10:
            # within 1%, except digits' 10 clusters in 64 dimensions, where single runs
            # differ by up to 2%.
            "tolerance": 0.025 if name == "digits" else 0.01,
            "reference": "sklearn.cluster.KMeans(n_init=10, random_state=0, tol=0, algorithm='lloyd') on the training rows",
        })
    return {"KMeans": cases}
