#!/usr/bin/env bash
# Everything the Kafka connector and its tests need, from the registries this machine reaches:
# - cmake and libcurl headers (Debian) to build librdkafka from source (the rdkafka crate's
#   cmake-build feature);
# - the tansu broker (crates.io), a Kafka-protocol broker in Rust, built once with
#   `cargo install --root` into the cache (a debug build: minutes once, then reused);
# - kafka-python (PyPI, pinned in scripts/requirements-kafka.txt) in a venv: the independent
#   client the tests produce and read with.
# Usage: bash scripts/install-kafka.sh      (idempotent; WEIR_CACHE_DIR overrides ~/.cache/weir)
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${WEIR_CACHE_DIR:-$HOME/.cache/weir}"

apt_install() {
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
    else
        echo "error: missing $*; install with: sudo apt-get install -y $*" >&2
        exit 1
    fi
}

if ! command -v cmake >/dev/null 2>&1; then
    echo "== installing cmake (Debian package) to build librdkafka"
    apt_install cmake
fi
if [ ! -f /usr/include/x86_64-linux-gnu/curl/curl.h ] && [ ! -f /usr/include/curl/curl.h ]; then
    echo "== installing libcurl4-openssl-dev (Debian package): librdkafka's sources include curl.h"
    apt_install libcurl4-openssl-dev
fi

# Features: dynostore (memory storage) and libsql (SQLite storage, which survives the broker
# restarts of the fault tests).
tansu_version="0.6.0"
if [ ! -x "$cache/tansu-$tansu_version/bin/tansu" ]; then
    echo "== building the tansu $tansu_version broker (crates.io) into $cache/tansu-$tansu_version (once; several minutes)"
    CARGO_TARGET_DIR="$cache/tansu-target" cargo install tansu --version "$tansu_version" --locked \
        --no-default-features --features dynostore,libsql --debug --root "$cache/tansu-$tansu_version" --quiet
    rm -rf "$cache/tansu-target"
fi

if [ ! -x "$cache/kafka-venv/bin/python" ] || ! "$cache/kafka-venv/bin/python" -c "import kafka" 2>/dev/null; then
    echo "== installing kafka-python (PyPI) into $cache/kafka-venv"
    python3 -m venv "$cache/kafka-venv"
    "$cache/kafka-venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-kafka.txt
fi
echo "kafka tools ready: $cache/tansu-$tansu_version/bin/tansu, $cache/kafka-venv/bin/python"
