#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then train the BiLSTM matcher on the embedded demo
# catalogue, evaluate it, write TensorBoard logs and plots, and export it for TF Serving.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SEMMATCH_CACHE_DIR=${SEMMATCH_CACHE_DIR:-$PWD/.cache}  # where setup.sh built the offline weights
.venv/bin/semmatch-tf demo --output "${1:-runs/demo}"
