#!/usr/bin/env python3
"""Regenerates the ONNX model and data fixtures in fixtures/.

    python3 -m pip install -r scripts/requirements-models.txt
    python3 scripts/make_models.py               # everything
    python3 scripts/make_models.py --hand-built  # only the hand-built graphs (needs only `onnx`)

Trains small scikit-learn classifiers on the bundled digits and wine data sets (no download),
exports them with skl2onnx (zipmap=False: input `input` float32 [N,F]; outputs `label` int64 [N]
and `probabilities` float32 [N,C]), writes the digits data as JSON Lines, and records what
Python onnxruntime predicts, so Rust tests can compare against it without Python. Also builds
small graphs by hand with `onnx.helper`: a model with typed inputs and outputs, and models that
are wrong in exactly one way, for the predict operator's load and run-time checks.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
DATA = ROOT / "fixtures" / "data"


def export(model, x, path, name, version):
    from skl2onnx import to_onnx

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


def write_graph(path, nodes, inputs, outputs, initializer=()):
    """Writes a hand-built opset-17 graph."""
    from onnx import checker, helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializer))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def first10_model(path, label_nodes, label_shape, input_shape=("N", 64), extra_init=()):
    """A stand-in digits classifier that is easy to check by hand: input `input` float32
    [N,64]; `probabilities` float32 [N,10] is the softmax of the first 10 features and `am`
    (int64 [N,1]) their argmax (first index of the maximum). `label_nodes` turn `am` into the
    `label` output, declared as `label_shape`: right or wrong in exactly one way."""
    from onnx import TensorProto, helper

    batch = input_shape[0]
    nodes = [
        helper.make_node("Slice", ["input", "zero_i", "ten", "axis1"], ["first10"]),
        helper.make_node("Softmax", ["first10"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["first10"], ["am"], axis=1, keepdims=1),
    ] + label_nodes
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))]
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, list(label_shape)),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 10]),
    ]
    initializer = [
        helper.make_tensor("zero_i", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ten", TensorProto.INT64, [1], [10]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    write_graph(path, nodes, inputs, outputs, initializer + list(extra_init))


def one_from_data():
    """Nodes computing `one` (int64 [1] = [1]) from the input's values, so that ONNX Runtime's
    shape inference cannot know it, and a shape built from it stays unknown until run time."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMin", ["input"], ["lowest"], keepdims=0),
        helper.make_node("Mul", ["lowest", "zero_f"], ["nothing"]),
        helper.make_node("Add", ["nothing", "one_f"], ["one_f_data"]),
        helper.make_node("Cast", ["one_f_data"], ["one_scalar"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["one_scalar", "shape_1"], ["one"]),
    ]
    initializer = [
        helper.make_tensor("zero_f", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one_f", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("shape_1", TensorProto.INT64, [1], [1]),
    ]
    return nodes, initializer


def faulty_models():
    """Models that are wrong in one way each, for the predict operator's checks, named after
    their fault (`fixed_batch_1.onnx` is right when every batch is one record)."""
    from onnx import TensorProto, helper

    def make(name, label_nodes, label_shape, **kwargs):
        first10_model(MODELS / f"{name}.onnx", label_nodes, label_shape, **kwargs)

    to_rows = helper.make_node("Reshape", ["am", "shape_n"], ["label"])
    shape_n = helper.make_tensor("shape_n", TensorProto.INT64, [1], [-1])
    # Right only for batches of one row: every dimension fixed, the batch too.
    make("fixed_batch_1", [to_rows], [1], input_shape=(1, 64), extra_init=[shape_n])
    # One label for the whole batch, declared as such: label [1, 1].
    make("label_fixed_1x1", [helper.make_node("ReduceMax", ["am"], ["label"], axes=[0], keepdims=1)], [1, 1])
    # Declared [N], but returns the first row's label only: [1] whatever the batch.
    one_nodes, one_init = one_from_data()
    first_row = [
        helper.make_node("Reshape", ["am", "shape_n"], ["am_rows"]),
        helper.make_node("Slice", ["am_rows", "zero_i", "one"], ["label"]),
    ]
    make("label_one_row", one_nodes + first_row, ["N"], extra_init=one_init + [shape_n])
    # Two label columns, declared: [N, 2].
    make("label_two_columns", [helper.make_node("Concat", ["am", "am"], ["label"], axis=1)], ["N", 2])
    # Two label columns, declared [N, C]: only the run tells.
    tile = [
        helper.make_node("Add", ["one", "one"], ["two"]),
        helper.make_node("Concat", ["one", "two"], ["repeats"], axis=0),
        helper.make_node("Tile", ["am", "repeats"], ["label"]),
    ]
    make("label_columns_unknown", one_nodes + tile, ["N", "C"], extra_init=one_init)
    # A second required input, `mask` float32 [N,10], multiplied into the first 10 features.
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 10])
    masked = [
        helper.make_node("Slice", ["input", "zero_i", "ten", "axis1"], ["first10"]),
        helper.make_node("Mul", ["first10", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["masked"], ["label"], axis=1, keepdims=0),
    ]
    write_graph(
        MODELS / "extra_input.onnx",
        masked,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64]), mask],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
        ],
        [
            helper.make_tensor("zero_i", TensorProto.INT64, [1], [0]),
            helper.make_tensor("ten", TensorProto.INT64, [1], [10]),
            helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
        ],
    )
    # No inputs at all: constant outputs, declared per row.
    write_graph(
        MODELS / "zero_inputs.onnx",
        [
            helper.make_node("Constant", [], ["label"], value=helper.make_tensor("l", TensorProto.INT64, [1], [0])),
            helper.make_node(
                "Constant", [], ["probabilities"], value=helper.make_tensor("p", TensorProto.FLOAT, [1, 10], [0.1] * 10)
            ),
        ],
        [],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
        ],
    )


def hand_built_models():
    """The graphs written with `onnx.helper` alone (no training, no onnxruntime)."""
    MODELS.mkdir(parents=True, exist_ok=True)
    mixed_types_model(MODELS / "mixed_types.onnx")
    faulty_models()


def main():
    hand_built_models()
    if "--hand-built" in sys.argv[1:]:
        return
    import numpy as np
    import onnxruntime as ort
    from sklearn.datasets import load_digits, load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

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
