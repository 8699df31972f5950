#!/usr/bin/env bash
# The pinned Python the benchmarks compare against (benches/flink_ml_vs_sklearn.rs runs
# scripts/sklearn_feature_bench.py with it): a venv with numpy and scikit-learn at the versions
# of scripts/requirements-models.txt, from PyPI.
# Usage: bash scripts/install-bench-python.sh   (idempotent; WEIR_CACHE_DIR overrides ~/.cache/weir)
# The bench finds the venv at $WEIR_BENCH_PYTHON, else ~/.cache/weir/bench-venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${WEIR_CACHE_DIR:-$HOME/.cache/weir}"
venv="$cache/bench-venv"
stamp="$venv/.requirements-models.txt"

# Up to date when the venv's python imports sklearn and was built from these requirements.
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import numpy, sklearn" 2>/dev/null \
    && cmp -s scripts/requirements-models.txt "$stamp"; then
    echo "bench python ready: $venv/bin/python"
    exit 0
fi

echo "== installing scripts/requirements-models.txt (PyPI) into $venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-models.txt
cp scripts/requirements-models.txt "$stamp"
"$venv/bin/python" -c "import numpy, sklearn; print('numpy', numpy.__version__, 'scikit-learn', sklearn.__version__)"
echo "bench python ready: $venv/bin/python"
