#!/usr/bin/env python3
"""The reference for weir-ml's online-learning test: scikit-learn's SGDClassifier
(loss="log_loss") trained with partial_fit, one record at a time, on the same stream Weir's
test uses, scored prequentially (predict first, then learn; the very first record, which no
model can predict, counts as wrong).

The stream: 20,000 records, record i = line (i mod 1797) of fixtures/data/digits.jsonl,
features divided by 16.

    python3 -m pip install -r scripts/requirements-models.txt
    python3 scripts/online_reference.py
"""
import json
import pathlib

import numpy as np
from sklearn.linear_model import SGDClassifier

ROOT = pathlib.Path(__file__).resolve().parent.parent
rows = [json.loads(l) for l in (ROOT / "fixtures/data/digits.jsonl").read_text().splitlines()]
X = np.array([r["x"] for r in rows], dtype=np.float64) / 16.0
Y = np.array([r["y"] for r in rows])
N = 20_000

model = SGDClassifier(loss="log_loss", random_state=0)
classes = np.arange(10)
correct = 0
for i in range(N):
    x, y = X[i % len(rows)][None, :], Y[i % len(rows)]
    if i > 0 and model.predict(x)[0] == y:
        correct += 1
    model.partial_fit(x, [y], classes=classes)
print(json.dumps({"records": N, "prequential_accuracy": correct / N}))
