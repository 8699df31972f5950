# Shortcuts for the commands in README.md. Run `just --list` to see them.

# Score the shipped digits data with the ONNX model, 2 worker threads.
demo:
    cargo run --release --example digits_scoring -- -w 2

# Format check, clippy, all tests and doc tests.
test:
    bash scripts/test.sh

# Weir pipeline vs. hand-written timely.
bench:
    cargo bench --bench pipeline_vs_timely

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings

# Print the job graph of the wordcount job.
explain:
    cargo run -p weir-cli -- explain wordcount
