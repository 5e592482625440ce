#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then train the BiLSTM matcher on the embedded demo
# catalogue, evaluate it, write TensorBoard logs and plots, and export it for TF Serving.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/semmatch-tf demo --output "${1:-runs/demo}"
