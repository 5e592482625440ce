#!/usr/bin/env bash
# The test suite on a fresh machine: set up .venv, then run the fast tests (slow ones: pass -m slow).
# Real public data is read from $SEMMATCH_DATA_DIR (default ../shared/data); tests needing it skip
# cleanly when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SEMMATCH_CACHE_DIR=${SEMMATCH_CACHE_DIR:-$PWD/.cache}  # where setup.sh built the offline weights
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
# Two worker processes, each test file on one of them (its module fixtures are built once).
.venv/bin/python -m pytest -q -n 2 --dist loadfile --durations=15 "$@"
