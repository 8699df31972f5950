"""StandardScaler: the template other modules follow."""
import numpy as np
from sklearn.preprocessing import StandardScaler

from .common import case, rows


def cases():
    rng = np.random.default_rng(7)
    fit = rng.normal(3.0, 2.0, size=(40, 4))
    fit[:, 3] = 1.5  # a constant feature: std 0 scales to 0
    data = rng.normal(3.0, 2.0, size=(12, 4))
    n = len(fit)
    scaler = StandardScaler().fit(fit)
    # Flink ML uses the unbiased (n - 1) standard deviation; sklearn the biased one.
    std = np.sqrt(scaler.var_ * n / (n - 1))
    scale = np.where(std == 0, 0.0, 1.0 / np.where(std == 0, 1.0, std))
    out = []
    for with_mean, with_std in [(False, True), (True, True), (True, False)]:
        x = data - scaler.mean_ if with_mean else data.copy()
        if with_std:
            x = x * scale
        out.append(
            case(
                f"withMean={with_mean}, withStd={with_std}",
                "StandardScaler",
                {"inputCol": "input", "outputCol": "output", "withMean": with_mean, "withStd": with_std},
                [["input", "DenseVector"]],
                rows(input=data),
                rows(output=x),
                fit=rows(input=fit),
                reference="sklearn.preprocessing.StandardScaler mean_/var_, std corrected to ddof=1 (Flink)",
            )
        )
    # Sparse-looking data with a single training row: std is 0 (n = 1), so outputs are 0.
    one = np.array([[1.0, 0.0, 3.0]])
    out.append(
        case(
            "a single training row: std 0 gives 0",
            "StandardScaler",
            {},
            [["input", "DenseVector"]],
            rows(input=np.array([[2.0, 5.0, -1.0]])),
            rows(output=np.array([[0.0, 0.0, 0.0]])),
            fit=rows(input=one),
            reference="Flink: std = 0 when n == 1, and a zero std scales to 0",
        )
    )
    return {"StandardScaler": out}
