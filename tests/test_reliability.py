"""Reliability: the same inputs give the same vocabulary and the same model in any process."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

LEARN_HASHES = """
from semmatch_tf.data.demo import load_demo
from semmatch_tf.text.vocabulary import learn_vocabulary, vocabulary_hash
from semmatch_tf.training.trainer import training_texts

texts = training_texts(load_demo())
for size in (600, 1200, 4000):  # 600 and 1200 stop mid-merges (ties at the cut), 4000 runs out of merges
    print(size, vocabulary_hash(learn_vocabulary(texts, vocab_size=size, min_frequency=1)))
"""


def run_python(code: str, hash_seed: str, timeout: int = 120) -> str:
    """Run ``code`` in a fresh interpreter with the given PYTHONHASHSEED; its stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": hash_seed}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                            env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_vocabulary_is_identical_in_fresh_processes():
    """The multilingual demo (en/zh/ja/es) learned in two processes with different hash seeds:
    byte-identical vocabularies at every size (the Rust learner's own hash order used to give each
    process other ``##x`` ids, and so other merges)."""
    first, second = run_python(LEARN_HASHES, "1"), run_python(LEARN_HASHES, "2")
    assert len(first.splitlines()) == 3
    assert first == second
