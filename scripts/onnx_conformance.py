#!/usr/bin/env python3
"""ONNX backend node tests through `weir predict`, against what ONNX Runtime passes in Python.

    python3 -m pip install -r scripts/requirements-models.txt
    cargo build --release -p weir-cli
    python3 scripts/onnx_conformance.py [--weir target/release/weir] [--only REGEX] [--jobs 2]
    python3 scripts/onnx_conformance.py --write-subset   # refresh fixtures/onnx-conformance/

For every node test case the `onnx` wheel ships (its case code, as `onnx.backend.test.cmd_tools
generate-data` runs it), data set 0:
  1. ONNX Runtime 1.31.1 in Python runs the model; it passes if every output matches the
     expected one (rtol 1e-3, atol 1e-4; exact for integers, bools and strings);
  2. `weir predict --whole --nan allow` scores one JSON line holding the inputs (tensors as
     {"shape", "data"}), and its output line is compared the same way.
Prints the pass rate of Weir over the cases ONNX Runtime passes, and writes
target/onnx-conformance/results.json and the table of failures for docs/onnx-conformance.md.
`--write-subset` stores the cases named in SUBSET (model, input line, expected outputs) in
fixtures/onnx-conformance/, which crates/weir-cli/tests/onnx_conformance.rs runs in CI.
"""
import argparse
import concurrent.futures
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "onnx-conformance"
SUBSET_DIR = ROOT / "fixtures" / "onnx-conformance"
RTOL, ATOL = 1e-3, 1e-4

# A fixed subset for CI: one or two cases per kind of thing the operator must get right
# (element types, ranks, scalars, empty tensors, NaN, strings, bools, several inputs and
# outputs, sequences, attributes).
SUBSET = [
    "test_abs", "test_add_bcast", "test_argmax_default_axis_example", "test_concat_3d_axis_0",
    "test_conv_with_strides_padding", "test_equal", "test_equal_string", "test_gather_0",
    "test_gemm_default_scalar_bias", "test_isnan", "test_isinf", "test_matmul_2d",
    "test_maxpool_2d_default", "test_reduce_sum_empty_axes_input_noop", "test_relu",
    "test_reshape_reordered_all_dims", "test_shape", "test_size", "test_softmax_axis_1",
    "test_split_equal_parts_1d_opset18", "test_strnormalizer_nostopwords_nochangecase", "test_top_k",
    "test_transpose_default", "test_where_example", "test_xor2d", "test_bitwise_xor_ui64_bcast_3v1d",
    "test_and2d", "test_not_2d", "test_nonzero_example", "test_split_to_sequence_1",
    "test_slice_start_out_of_bounds", "test_constantofshape_int_zeros", "test_round",
    "test_layer_normalization_2d_axis0", "test_regex_full_match_basic", "test_string_concat",
    "test_ai_onnx_ml_label_encoder_string_int", "test_bitcast_float32_to_int32",
    "test_pow_bcast_scalar", "test_less_bcast",
]


def as_value(value):
    """A test value as numpy (some cases give TensorProtos), sequences as lists."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [as_value(v) for v in value]
    return value


def to_json_value(value):
    """A test value as Weir's JSON: tensors as {"shape", "data"}, sequences as arrays,
    optionals as the value or null."""
    import numpy as np

    value = as_value(value)

    if value is None:
        return None
    if isinstance(value, list):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    a = np.asarray(value)
    if a.dtype.kind in "OSU":
        data = [v.decode() if isinstance(v, bytes) else str(v) for v in a.reshape(-1)]
    elif a.dtype.kind == "b":
        data = [bool(v) for v in a.reshape(-1)]
    elif a.dtype.kind in "iu":
        data = [int(v) for v in a.reshape(-1)]
    else:
        data = [float_json(float(v)) for v in a.astype(np.float64).reshape(-1)]
    return {"shape": list(a.shape), "data": data}


def float_json(x):
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def expected_json(value):
    """An expected output as JSON: tensors with shape, dtype kind and flat data."""
    import numpy as np

    value = as_value(value)

    if value is None:
        return None
    if isinstance(value, list):
        return [expected_json(v) for v in value]
    a = np.asarray(value)
    t = to_json_value(a)
    t["kind"] = "string" if a.dtype.kind in "OSU" else ("bool" if a.dtype.kind == "b" else ("int" if a.dtype.kind in "iu" else "float"))
    return t


def flatten_nested(value):
    """Weir's nested-array JSON as (flat values, shape as far as nesting shows)."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)

    walk(value)
    return flat, shape


def number(v):
    if isinstance(v, str):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.get(v, v)
    return v


def compare(expected, got, rtol=RTOL, atol=ATOL):
    """None if `got` (Weir's JSON) matches `expected` (expected_json), else why not."""
    if expected is None:
        return None if got is None else f"expected no value, got {str(got)[:80]}"
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return f"expected a sequence of {len(expected)}, got {str(got)[:80]}"
        for i, (e, g) in enumerate(zip(expected, got)):
            why = compare(e, g, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    flat, shape = flatten_nested(got)
    size = 1
    for d in expected["shape"]:
        size *= d
    if len(flat) != size:
        return f"expected shape {expected['shape']}, got {shape} ({len(flat)} values)"
    if size and shape != expected["shape"][: len(shape)]:
        return f"expected shape {expected['shape']}, got {shape}"
    for i, (e, g) in enumerate(zip(expected["data"], flat)):
        kind = expected["kind"]
        if kind == "float":
            e, g = number(e), number(g)
            if not isinstance(g, (int, float)):
                return f"value {i}: expected {e}, got {g!r}"
            if math.isnan(e) and math.isnan(g):
                continue
            if math.isinf(e) or math.isinf(g):
                if e != g:
                    return f"value {i}: expected {e}, got {g}"
                continue
            if abs(e - g) > atol + rtol * abs(e):
                return f"value {i}: expected {e}, got {g}"
        elif e != g:
            return f"value {i}: expected {e!r}, got {g!r}"
    return None


def cases(only):
    from onnx.backend.test.case import node

    pattern = re.compile(only) if only else None
    for case in node.collect_testcases():
        if pattern and not pattern.search(case.name):
            continue
        if case.model is None or not case.data_sets:
            continue
        yield case


def ort_outcome(case):
    """Whether ONNX Runtime passes the case (None) or why not."""
    import numpy as np
    import onnxruntime as ort

    inputs, outputs = case.data_sets[0]
    inputs = [as_value(v) for v in inputs]
    try:
        session = ort.InferenceSession(case.model.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [i.name for i in case.model.graph.input]
        # ONNX Runtime takes arrays (a numpy scalar is a 0-d array), lists for sequences.
        feed = {n: (v if isinstance(v, list) or v is None else np.asarray(v)) for n, v in zip(names, inputs)}
        got = session.run(None, feed)
    except Exception as e:  # noqa: BLE001 - any failure is a failure
        return f"onnxruntime: {str(e).splitlines()[0][:160]}"
    for i, (e, g) in enumerate(zip(outputs, got)):
        why = compare(expected_json(e), to_nested(g), case.rtol or RTOL, case.atol or ATOL)
        if why:
            return f"onnxruntime output {i}: {why}"
    return None


def to_nested(value):
    import numpy as np

    if value is None:
        return None
    if isinstance(value, list):
        return [to_nested(v) for v in value]
    a = np.asarray(value)
    if a.dtype.kind in "OSU":
        return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(a).tolist() if a.size else a.tolist()
    if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
        return np.vectorize(float_json, otypes=[object])(a.astype(np.float64)).tolist() if a.size else a.tolist()
    return a.tolist()


def case_files(case, directory):
    """Writes model.onnx, input.jsonl and expected.json of `case` into `directory`."""
    inputs, outputs = case.data_sets[0]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(case.model.SerializeToString())
    names = [i.name for i in case.model.graph.input]
    line = {"id": 0, "inputs": {n: to_json_value(v) for n, v in zip(names, inputs)}}
    (directory / "input.jsonl").write_text(json.dumps(line) + "\n")
    out_names = [o.name for o in case.model.graph.output]
    expected = {
        "rtol": case.rtol or RTOL,
        "atol": case.atol or ATOL,
        "outputs": {n: expected_json(v) for n, v in zip(out_names, outputs)},
    }
    (directory / "expected.json").write_text(json.dumps(expected) + "\n")


def weir_outcome(weir, directory):
    """Runs `weir predict` on a case directory; None if it passes, else why not."""
    out = directory / "out"
    env = dict(os.environ, RUST_BACKTRACE="0")
    proc = subprocess.run(
        [weir, "predict", "--whole", "--nan", "allow", "--model", str(directory / "model.onnx"),
         "--input", str(directory / "input.jsonl"), "--output", str(out), "--overwrite"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if l.startswith("Error:")]
        return "weir: " + (errors[0][:240] if errors else f"exit {proc.returncode}")
    dead = out / "dead_letters.jsonl"
    if dead.exists() and dead.stat().st_size:
        letter = json.loads(dead.read_text().splitlines()[0])
        return "dead letter: " + letter["reason"][:240]
    lines = [l for p in sorted(out.glob("part-*.jsonl")) for l in p.read_text().splitlines() if l]
    if len(lines) != 1:
        return f"weir wrote {len(lines)} lines"
    got = json.loads(lines[0])["outputs"]
    expected = json.loads((directory / "expected.json").read_text())
    for name, e in expected["outputs"].items():
        if name not in got:
            return f"no output `{name}`"
        why = compare(e, got[name], expected["rtol"], expected["atol"])
        if why:
            return f"output `{name}`: {why}"
    return None


def run_case(weir, case, work):
    directory = work / case.name
    case_files(case, directory)
    ort_why = ort_outcome(case)
    weir_why = weir_outcome(weir, directory)
    shutil.rmtree(directory, ignore_errors=True)
    return {"name": case.name, "ort": ort_why, "weir": weir_why}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weir", default=str(ROOT / "target" / "release" / "weir"))
    parser.add_argument("--only", help="run the cases whose name matches this regex")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write-subset", action="store_true")
    args = parser.parse_args()

    if args.write_subset:
        shutil.rmtree(SUBSET_DIR, ignore_errors=True)
        by_name = {c.name: c for c in cases(None)}
        for name in SUBSET:
            if name not in by_name:
                sys.exit(f"no node test case {name}")
            if ort_outcome(by_name[name]) is not None:
                sys.exit(f"{name}: onnxruntime does not pass it; not a conformance fixture")
            case_files(by_name[name], SUBSET_DIR / name)
        print(f"wrote {len(SUBSET)} cases to {SUBSET_DIR.relative_to(ROOT)}")
        return

    if not os.access(args.weir, os.X_OK):
        sys.exit(f"{args.weir} is not an executable; build it with `cargo build --release -p weir-cli`")
    OUT.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="weir-conformance-"))
    all_cases = list(cases(args.only))
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for i, result in enumerate(pool.map(lambda c: run_case(args.weir, c, work), all_cases)):
            results.append(result)
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{len(all_cases)}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    ort_passed = [r for r in results if r["ort"] is None]
    weir_passed = [r for r in ort_passed if r["weir"] is None]
    rate = len(weir_passed) / max(1, len(ort_passed))
    summary = {
        "cases": len(results),
        "onnxruntime_passed": len(ort_passed),
        "weir_passed_of_those": len(weir_passed),
        "rate": rate,
        "weir_passed_where_onnxruntime_failed": sum(1 for r in results if r["ort"] and r["weir"] is None),
    }
    (OUT / "results.json").write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    with open(OUT / "failures.md", "w") as f:
        f.write("| case | why Weir fails it |\n|---|---|\n")
        for r in ort_passed:
            if r["weir"]:
                f.write(f"| `{r['name']}` | {r['weir'].replace('|', '/')} |\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
