#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/doc tests, and a run of the demo.
# Usage: bash scripts/test.sh
# Needs a Rust toolchain and python3 with pip: ONNX Runtime 1.31.1 is installed from PyPI into
# ~/.cache/weir on first use (see crates/weir-onnx/src/runtime.rs); crates come from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs) and retry" >&2
    exit 1
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 not found; install it (apt-get install python3 python3-pip): Weir installs ONNX Runtime with pip" >&2
    exit 1
fi

# weir-ml's model-store tests run a real Redis (started by the tests on a free port).
if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server (Debian package) for the model-store tests"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
    else
        echo "error: redis-server not found; install it (sudo apt-get install -y redis-server)" >&2
        exit 1
    fi
fi

# weir serve's page is tested in headless Chromium (Debian's package) driven by playwright-core.
if [ ! -x /usr/bin/chromium ]; then
    echo "== installing chromium (Debian package) for the browser test"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
    else
        echo "error: /usr/bin/chromium not found; install it (sudo apt-get install -y chromium)" >&2
        exit 1
    fi
fi
if [ ! -d crates/weir-cli/tests/browser/node_modules/playwright-core ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "error: npm not found; install Node.js and npm (apt-get install -y nodejs npm)" >&2
        exit 1
    fi
    echo "== npm ci (playwright-core) for the browser test"
    npm ci --prefix crates/weir-cli/tests/browser --no-audit --no-fund >/dev/null
fi

# The Kafka connector builds librdkafka (cmake) and its tests run a real tansu broker and
# kafka-python: all installed (and cached) by this script.
bash scripts/install-kafka.sh

# A clean CI checkout gains nothing from incremental compilation, and its files were the larger
# half of the target directory.
if [ -n "${CI:-}" ]; then
    export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo build --examples (the recovery tests run examples/exactly_once as a program)"
# `cargo test --all-targets` builds examples only as test harnesses, so the runnable binaries
# come from here (the demo runs below reuse them).
cargo build --workspace --examples
echo "== cargo test (unit, integration, examples, benches build)"
cargo test --workspace --all-targets
echo "== cargo test --doc"
cargo test --workspace --doc
echo "== demo jobs, 2 workers"
# The binaries built above: `cargo run` would select other features than `--workspace` and
# build everything a second time.
examples="${CARGO_TARGET_DIR:-target}/debug/examples"
"$examples/digits_scoring" -w 2 --quiet
"$examples/any_model" -w 2 --quiet
"$examples/wordcount" -w 2 --output target/wordcount-ci
"$examples/clickstream_windows" -w 2 --quiet --output target/clickstream-ci
"$examples/ps_training" -w 3 --fail-once --quiet
echo "== demo job graph"
"$examples/wordcount" -w 2 --explain=json >/dev/null
echo "all tests passed"
