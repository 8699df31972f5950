#!/usr/bin/env python3
"""Models of the kinds a new user brings, for the generic predict operator (issue 13).

    python3 scripts/make_typed_models.py            # everything (numpy, scikit-learn, skl2onnx, onnx, onnxruntime)
    python3 scripts/make_typed_models.py --hand-built  # only the graphs written with onnx.helper

Examples, trained here (pinned in scripts/requirements-models.txt, CPU-cheap: seconds):
  * digits_cnn.onnx: a small convolutional network over the 8x8 digits images as `image`
    float32 [N,1,8,8] (Conv 3x3x8, ReLU, MaxPool 2, Gemm), trained with plain numpy;
    outputs `label` int64 [N] and `probabilities` float32 [N,10].
  * wine_zipmap.onnx: a scikit-learn pipeline (StandardScaler + LogisticRegression) on the
    wine data with string class labels, exported with skl2onnx's defaults: input `X` float32
    [N,13]; outputs `output_label` string [N] and `output_probability`, a sequence of maps
    (ZipMap) string -> float.
  * text_bow.onnx: a bag-of-words topic classifier over int32 token ids `tokens` [N,L] (L
    open; id 0 pads), a logistic regression written as Gather + ReduceSum; outputs `label`
    int64 [N] and `probabilities` float32 [N,3]. Its vocabulary is fixtures/data/text_vocab.json.
Hand-built fixtures for the operator's tests:
  * all_types.onnx: `x_T` [N,2] -> Identity -> `y_T` for every element type Weir feeds.
  * fixed_batch_6.onnx: `x` float32 [6,3] -> row sums `sum` [6] (a fixed batch of 6).
  * scaled.onnx: `x` float32 [N,3] times the scalar input `scale`; `above` (bool [N,3]) says
    which products exceed the scalar input `threshold` (inputs that are not per record).
Expected outputs of Python onnxruntime are written next to the data, for the Rust tests.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "models"
DATA = ROOT / "fixtures" / "data"


def save(model, path):
    from onnx import checker

    checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    size = path.stat().st_size
    assert size < 1_000_000, f"{path} is {size} bytes"
    print(f"wrote {path.relative_to(ROOT)} ({size} bytes)")


def graph_model(name, nodes, inputs, outputs, initializer=(), opset=21):
    from onnx import helper

    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializer))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    model.doc_string = f"{name}, built by scripts/make_typed_models.py"
    return model


def all_types_model():
    from onnx import TensorProto as T, helper

    types = {
        "f32": T.FLOAT, "f64": T.DOUBLE, "f16": T.FLOAT16, "bf16": T.BFLOAT16,
        "i8": T.INT8, "i16": T.INT16, "i32": T.INT32, "i64": T.INT64,
        "u8": T.UINT8, "u16": T.UINT16, "u32": T.UINT32, "u64": T.UINT64,
        "bool": T.BOOL, "string": T.STRING,
    }
    nodes = [helper.make_node("Identity", [f"x_{n}"], [f"y_{n}"]) for n in types]
    inputs = [helper.make_tensor_value_info(f"x_{n}", t, ["N", 2]) for n, t in types.items()]
    outputs = [helper.make_tensor_value_info(f"y_{n}", t, ["N", 2]) for n, t in types.items()]
    save(graph_model("all_types", nodes, inputs, outputs), MODELS / "all_types.onnx")


def fixed_batch_6_model():
    from onnx import TensorProto as T, helper

    nodes = [helper.make_node("ReduceSum", ["x", "axis1"], ["sum"], keepdims=0)]
    save(
        graph_model(
            "fixed_batch_6",
            nodes,
            [helper.make_tensor_value_info("x", T.FLOAT, [6, 3])],
            [helper.make_tensor_value_info("sum", T.FLOAT, [6])],
            [helper.make_tensor("axis1", T.INT64, [1], [1])],
        ),
        MODELS / "fixed_batch_6.onnx",
    )


def scaled_model():
    from onnx import TensorProto as T, helper

    nodes = [
        helper.make_node("Mul", ["x", "scale"], ["y"]),
        helper.make_node("Greater", ["y", "threshold"], ["above"]),
    ]
    save(
        graph_model(
            "scaled",
            nodes,
            [
                helper.make_tensor_value_info("x", T.FLOAT, ["N", 3]),
                helper.make_tensor_value_info("scale", T.FLOAT, []),
                helper.make_tensor_value_info("threshold", T.FLOAT, []),
            ],
            [
                helper.make_tensor_value_info("y", T.FLOAT, ["N", 3]),
                helper.make_tensor_value_info("above", T.BOOL, ["N", 3]),
            ],
        ),
        MODELS / "scaled.onnx",
    )


def hand_built():
    MODELS.mkdir(parents=True, exist_ok=True)
    all_types_model()
    fixed_batch_6_model()
    scaled_model()


# ---------------------------------------------------------------------------------------------
# The digits CNN, trained with numpy.


def im2col(x):
    """[N,8,8] -> [N,64,9]: each output position's 3x3 neighbourhood (zero padded), (kh,kw)
    row-major, as ONNX's Conv reads it."""
    import numpy as np

    n = x.shape[0]
    padded = np.zeros((n, 10, 10), dtype=x.dtype)
    padded[:, 1:9, 1:9] = x
    cols = np.empty((n, 8, 8, 9), dtype=x.dtype)
    for kh in range(3):
        for kw in range(3):
            cols[:, :, :, kh * 3 + kw] = padded[:, kh:kh + 8, kw:kw + 8]
    return cols.reshape(n, 64, 9)


def cnn_forward(params, cols):
    import numpy as np

    w1, b1, w2, b2 = params
    n = cols.shape[0]
    conv = cols @ w1.T + b1                               # [N,64,8]: positions x channels
    relu = np.maximum(conv, 0).reshape(n, 8, 8, 8)        # NHWC
    blocks = relu.reshape(n, 4, 2, 4, 2, 8)
    pooled = blocks.max(axis=(2, 4))                      # [N,4,4,8]
    flat = pooled.reshape(n, 128)
    logits = flat @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return conv, relu, pooled, flat, p


def train_cnn(x, y, epochs=40, batch=64, lr=0.01, seed=0):
    """Adam on cross-entropy; returns (w1 [8,9], b1 [8], w2 [128,10], b2 [10])."""
    import numpy as np

    rng = np.random.default_rng(seed)
    params = [
        rng.normal(0, (2 / 9) ** 0.5, (8, 9)).astype(np.float32),
        np.zeros(8, np.float32),
        rng.normal(0, (2 / 128) ** 0.5, (128, 10)).astype(np.float32),
        np.zeros(10, np.float32),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    cols_all = im2col(x)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            cols, target = cols_all[idx], y[idx]
            n = len(idx)
            conv, relu, pooled, flat, p = cnn_forward(params, cols)
            dlogits = p.copy()
            dlogits[np.arange(n), target] -= 1
            dlogits /= n
            dw2 = flat.T @ dlogits
            db2 = dlogits.sum(axis=0)
            dpooled = (dlogits @ params[2].T).reshape(n, 4, 1, 4, 1, 8)
            blocks = relu.reshape(n, 4, 2, 4, 2, 8)
            is_max = blocks == pooled.reshape(n, 4, 1, 4, 1, 8)
            drelu = (is_max * dpooled).reshape(n, 64, 8)
            dconv = drelu * (conv > 0)
            dw1 = np.einsum("npc,npk->ck", dconv, cols)
            db1 = dconv.sum(axis=(0, 1))
            step += 1
            for i, g in enumerate([dw1, db1, dw2, db2]):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mh = m[i] / (1 - 0.9 ** step)
                vh = v[i] / (1 - 0.999 ** step)
                params[i] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return params


def cnn_onnx(params):
    import numpy as np
    from onnx import TensorProto as T, helper, numpy_helper

    w1, b1, w2, b2 = params
    nodes = [
        helper.make_node("Div", ["image", "sixteen"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w1", "b1"], ["conv"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        # The training code flattens channels last.
        helper.make_node("Transpose", ["pooled"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["nhwc"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    init = [
        numpy_helper.from_array(np.array(16.0, np.float32), "sixteen"),
        numpy_helper.from_array(w1.reshape(8, 1, 3, 3), "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    return graph_model(
        "digits_cnn",
        nodes,
        [helper.make_tensor_value_info("image", T.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_tensor_value_info("label", T.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", T.FLOAT, ["N", 10]),
        ],
        init,
        opset=17,
    )


def digits_cnn():
    import numpy as np
    import onnxruntime as ort
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    y = digits.target.astype(np.int64)
    # Train on all but the last 297 images; report accuracy on those.
    params = train_cnn(x[:1500], y[:1500])
    save(cnn_onnx(params), MODELS / "digits_cnn.onnx")
    session = ort.InferenceSession(str(MODELS / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    images = digits.data.astype(np.float32).reshape(-1, 1, 8, 8)
    labels, probabilities = session.run(["label", "probabilities"], {"image": images})
    print(f"digits_cnn: held-out accuracy {float((labels[1500:] == y[1500:]).mean()):.4f}")
    with open(DATA / "digits_cnn.expected.jsonl", "w") as f:
        for i, (label, p) in enumerate(zip(labels, probabilities)):
            f.write(json.dumps({"id": i, "label": int(label), "probabilities": [float(v) for v in p]}) + "\n")
    print("wrote fixtures/data/digits_cnn.expected.jsonl")


# ---------------------------------------------------------------------------------------------
# scikit-learn with skl2onnx's defaults: ZipMap and string labels.


def wine_zipmap():
    import numpy as np
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    wine = load_wine()
    x = wine.data.astype(np.float32)
    names = np.array(["barolo", "grignolino", "barbera"])
    y = names[wine.target]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=0)).fit(x, y)
    onx = to_onnx(model, x[:1], target_opset=17)
    onx.doc_string = "wine_zipmap, trained by scripts/make_typed_models.py (skl2onnx defaults)"
    save(onx, MODELS / "wine_zipmap.onnx")
    session = ort.InferenceSession(str(MODELS / "wine_zipmap.onnx"), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"X": x})
    with open(DATA / "wine.jsonl", "w") as f:
        for i, (row, label) in enumerate(zip(x, y)):
            f.write(json.dumps({"id": i, "x": [float(v) for v in row], "y": str(label)}) + "\n")
    with open(DATA / "wine_zipmap.expected.jsonl", "w") as f:
        for i, (label, p) in enumerate(zip(labels, probabilities)):
            f.write(json.dumps({"id": i, "label": str(label), "probabilities": {k: float(v) for k, v in p.items()}}) + "\n")
    print("wrote fixtures/data/wine.jsonl, fixtures/data/wine_zipmap.expected.jsonl")


# ---------------------------------------------------------------------------------------------
# A text model over int32 token ids.

TOPICS = {
    "weather": "rain sun cloud storm wind snow forecast cold warm thunder fog humid breeze frost sky".split(),
    "sport": "goal match team score player coach league win referee stadium season ball race cup final".split(),
    "food": "bread cheese soup recipe oven spice dinner salad pasta butter sugar kitchen taste fruit bake".split(),
}
FILLER = "the a of and to in is it was on for with as at this that very some today".split()


def sentences(n, rng):
    names = sorted(TOPICS)
    out = []
    for _ in range(n):
        topic = int(rng.integers(len(names)))
        words = []
        for _ in range(int(rng.integers(3, 13))):
            if rng.random() < 0.45:
                words.append(str(rng.choice(TOPICS[names[topic]])))
            elif rng.random() < 0.1:
                other = names[(topic + 1 + int(rng.integers(2))) % 3]
                words.append(str(rng.choice(TOPICS[other])))
            else:
                words.append(str(rng.choice(FILLER)))
        out.append((" ".join(words), topic))
    return out


def text_bow():
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto as T, helper, numpy_helper
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    vocab = ["<pad>", "<unk>"] + sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    index = {w: i for i, w in enumerate(vocab)}
    train = sentences(3000, rng)
    test = sentences(300, rng)

    def counts(batch):
        m = np.zeros((len(batch), len(vocab)), np.float32)
        for r, (text, _) in enumerate(batch):
            for w in text.split():
                m[r, index.get(w, 1)] += 1
        m[:, :2] = 0
        return m

    model = LogisticRegression(max_iter=3000, random_state=0).fit(counts(train), [t for _, t in train])
    weights = model.coef_.T.astype(np.float32).copy()   # [V, C]
    weights[:2] = 0
    nodes = [
        helper.make_node("Gather", ["weights", "tokens"], ["per_token"], axis=0),
        helper.make_node("ReduceSum", ["per_token", "axis1"], ["summed"], keepdims=0),
        helper.make_node("Add", ["summed", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    onx = graph_model(
        "text_bow",
        nodes,
        [helper.make_tensor_value_info("tokens", T.INT32, ["N", "L"])],
        [
            helper.make_tensor_value_info("label", T.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", T.FLOAT, ["N", 3]),
        ],
        [
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(model.intercept_.astype(np.float32), "bias"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
        opset=17,
    )
    save(onx, MODELS / "text_bow.onnx")
    (DATA / "text_vocab.json").write_text(json.dumps({"topics": sorted(TOPICS), "vocabulary": vocab}) + "\n")
    session = ort.InferenceSession(str(MODELS / "text_bow.onnx"), providers=["CPUExecutionProvider"])
    correct = 0
    with open(DATA / "text.jsonl", "w") as f, open(DATA / "text_bow.expected.jsonl", "w") as e:
        for i, (text, topic) in enumerate(test):
            tokens = np.array([[index.get(w, 1) for w in text.split()]], np.int32)
            label, p = session.run(["label", "probabilities"], {"tokens": tokens})
            correct += int(label[0] == topic)
            f.write(json.dumps({"id": i, "text": text, "topic": sorted(TOPICS)[topic]}) + "\n")
            e.write(json.dumps({"id": i, "label": int(label[0]), "probabilities": [float(v) for v in p[0]]}) + "\n")
    print(f"text_bow: test accuracy {correct / len(test):.4f}; wrote fixtures/data/text.jsonl, text_vocab.json")


def main():
    hand_built()
    if "--hand-built" in sys.argv[1:]:
        return
    DATA.mkdir(parents=True, exist_ok=True)
    digits_cnn()
    wine_zipmap()
    text_bow()


if __name__ == "__main__":
    main()
