"""Parity cases of Weir's Flink ML stages, one module per group of stages (see
scripts/make_flink_ml_fixtures.py). Each module has `cases() -> {stage: [case, ...]}`."""
