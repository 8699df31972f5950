#!/usr/bin/env python3
"""Regenerates the ONNX model and data fixtures in fixtures/.

    python3 -m pip install -r scripts/requirements-models.txt
    python3 scripts/make_models.py

Trains small scikit-learn classifiers on the bundled digits and wine data sets (no download),
exports them with skl2onnx (zipmap=False: input `input` float32 [N,F]; outputs `label` int64 [N]
and `probabilities` float32 [N,C]), writes the digits data as JSON Lines, and records what
Python onnxruntime predicts, so Rust tests can compare against it without Python.
"""
import json
import pathlib

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
DATA = ROOT / "fixtures" / "data"


def export(model, x, path, name, version):
    onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    # The input is called `input`, as Weir's examples expect.
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if i == "X" else i for i in node.input]
    onx.graph.doc_string = f"{name} trained by scripts/make_models.py"
    meta = onx.metadata_props.add()
    meta.key, meta.value = "weir.model", name
    meta = onx.metadata_props.add()
    meta.key, meta.value = "weir.version", str(version)
    path.write_bytes(onx.SerializeToString())
    size = path.stat().st_size
    assert size < 1_000_000, f"{path} is {size} bytes"
    print(f"wrote {path.relative_to(ROOT)} ({size} bytes)")


def mixed_types_model(path):
    """A hand-built graph with two inputs and three outputs of different element types, for
    the general tensor API: `a` float64 [N,3] and `b` int64 [N,2] give `total` float64 [N]
    (sum of a and b), `scaled` float64 [N,3] (2a) and `count` int64 [N,1] (sum of b)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["b"], ["b_f64"], to=TensorProto.DOUBLE),
        helper.make_node("Concat", ["a", "b_f64"], ["ab"], axis=1),
        helper.make_node("ReduceSum", ["ab", "axis1"], ["total"], keepdims=0),
        helper.make_node("Mul", ["a", "two"], ["scaled"]),
        helper.make_node("ReduceSum", ["b", "axis1"], ["count"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mixed_types",
        [
            helper.make_tensor_value_info("a", TensorProto.DOUBLE, ["N", 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 2]),
        ],
        [
            helper.make_tensor_value_info("total", TensorProto.DOUBLE, ["N"]),
            helper.make_tensor_value_info("scaled", TensorProto.DOUBLE, ["N", 3]),
            helper.make_tensor_value_info("count", TensorProto.INT64, ["N", 1]),
        ],
        initializer=[
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("two", TensorProto.DOUBLE, [], [2.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main():
    mixed_types_model(MODELS / "mixed_types.onnx")
    MODELS.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)

    logreg = LogisticRegression(max_iter=3000, random_state=0).fit(x, y)
    export(logreg, x, MODELS / "digits_logreg.onnx", "digits_logreg", 1)
    # A second version of the same task, for live model swaps: fewer iterations, different weights.
    logreg_v2 = LogisticRegression(max_iter=3000, C=0.01, random_state=0).fit(x, y)
    export(logreg_v2, x, MODELS / "digits_logreg_v2.onnx", "digits_logreg", 2)
    # A heavier model for benchmarks, where inference rather than parsing dominates.
    mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=200, random_state=0).fit(x, y)
    export(mlp, x, MODELS / "digits_mlp256.onnx", "digits_mlp256", 1)

    wine = load_wine()
    wx = wine.data.astype(np.float32)
    wy = wine.target.astype(np.int64)
    wine_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=0)).fit(wx, wy)
    export(wine_model, wx, MODELS / "wine_logreg.onnx", "wine_logreg", 1)

    with open(DATA / "digits.jsonl", "w") as f:
        for i, (row, label) in enumerate(zip(x, y)):
            f.write(json.dumps({"id": i, "x": [int(v) for v in row], "y": int(label)}) + "\n")
    print(f"wrote fixtures/data/digits.jsonl ({len(y)} records)")

    # What Python onnxruntime predicts, to compare the Rust operator against.
    for name in ["digits_logreg", "digits_logreg_v2", "digits_mlp256"]:
        session = ort.InferenceSession(str(MODELS / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        labels, probabilities = session.run(["label", "probabilities"], {"input": x})
        with open(DATA / f"{name}.expected.jsonl", "w") as f:
            for i, (label, p) in enumerate(zip(labels, probabilities)):
                f.write(json.dumps({"id": i, "label": int(label), "probabilities": [float(v) for v in p]}) + "\n")
        accuracy = float((labels == y).mean())
        print(f"wrote fixtures/data/{name}.expected.jsonl (accuracy {accuracy:.4f})")


if __name__ == "__main__":
    main()
