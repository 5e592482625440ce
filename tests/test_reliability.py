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


def _stream_batches(first_epoch: int, epochs: int, **options) -> list[list[bytes]]:
    """Every batch of ``make_epoch_stream`` over a small demo slice, each as its ids' bytes."""
    from semmatch_tf.data.demo import load_demo
    from semmatch_tf.data.pipeline import PipelineOptions, make_epoch_stream
    from semmatch_tf.text import WordPieceTokenizer, learn_vocabulary
    from semmatch_tf.text.preprocessor import PairPreprocessor
    from semmatch_tf.training.trainer import training_texts

    demo = load_demo().head(300)
    tokenizer = WordPieceTokenizer(learn_vocabulary(training_texts(demo), vocab_size=400, min_frequency=1))
    preprocessor = PairPreprocessor(tokenizer, query_length=8, product_length=16)
    data, steps = make_epoch_stream(demo, preprocessor, PipelineOptions(batch_size=32, shuffle=True, seed=4,
                                                                        drop_remainder=True, **options),
                                    epochs=epochs, first_epoch=first_epoch)
    batches = [[f["query"].numpy().tobytes(), f["product"].numpy().tobytes(), y.numpy().tobytes()]
               for f, y in data]
    assert len(batches) == (epochs - first_epoch) * steps and steps == 300 // 32
    return batches


def test_epoch_stream_resumed_at_an_epoch_gives_that_epochs_batches():
    """Epochs 2-3 of a stream started at epoch 2 (a resumed process) are byte for byte epochs 2-3
    of a stream started at 0, with length buckets and token dropout; and epochs differ in order."""
    options = {"length_buckets": (6, 10), "token_dropout": 0.2}
    whole, resumed = _stream_batches(0, 4, **options), _stream_batches(2, 4, **options)
    steps = len(whole) // 4
    assert resumed == whole[2 * steps:]
    assert whole[:steps] != whole[steps:2 * steps], "each epoch has its own shuffle"


#: Train the config at argv[1] into argv[2]; with argv[3] = N, die like a SIGKILL (os._exit: no
#: finally, no cleanup, the lock left behind) right after epoch N is backed up. A finished run
#: prints its fingerprint: report, history, and a hash of every weight of model.keras.
TRAIN_OR_DIE = """
import hashlib, json, os, sys
import keras
from semmatch_tf.training import callbacks as callback_module
from semmatch_tf.training.config import load_config
from semmatch_tf.training.trainer import train

config_path, run_dir = sys.argv[1], sys.argv[2]
die_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
standard = callback_module.build_callbacks

class Die(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):  # after the backup: it comes earlier in the list
        if epoch + 1 == die_after:
            os._exit(3)

callback_module.build_callbacks = lambda *a, **k: standard(*a, **k) + [Die()]
report = train(load_config(config_path), run_dir, verbose=0)
model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
history = json.load(open(os.path.join(run_dir, "history.json")))
print(json.dumps({"report": report, "history": history, "weights": weights}, sort_keys=True, default=str))
"""
