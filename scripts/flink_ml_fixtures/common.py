"""Helpers shared by the fixture modules."""
import numpy as np


def rows(**columns):
    """Rows (dicts) from equally long column lists; numpy values become plain Python."""
    names = list(columns)
    n = len(columns[names[0]])
    return [{name: plain(columns[name][i]) for name in names} for i in range(n)]


def plain(value):
    """A JSON-friendly value: numpy arrays -> lists, numpy scalars -> Python numbers."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None  # NaN
    return value


def sparse(size, indices, values):
    """A SparseVector in fixture form."""
    return {"size": int(size), "indices": [int(i) for i in indices], "values": [float(v) for v in values]}


def case(name, stage, params, schema, inputs, expected, *, fit=None, tolerance=1e-9, reference):
    """One case; `expected` holds only output columns, one dict per input row."""
    c = {
        "name": name,
        "stage": stage,
        "paramMap": params,
        "schema": schema,
        "input": inputs,
        "expected": expected,
        "tolerance": tolerance,
        "reference": reference,
    }
    if fit is not None:
        c["fit"] = fit
    return c
