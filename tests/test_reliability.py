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


def test_epoch_stream_works_under_a_global_seed_of_zero():
    """``tf.random.set_seed(0)`` (``training.seed: 0``) once broke the epoch stream: a tensor
    shuffle seed beside a global seed of 0 made TF compare a tensor as a Python bool."""
    import tensorflow as tf

    tf.random.set_seed(0)
    try:
        whole, resumed = _stream_batches(0, 3), _stream_batches(1, 3)
    finally:
        tf.random.set_seed(None)
    assert resumed == whole[len(whole) // 3:]


#: Train the config at argv[1] into argv[2]; with argv[3] = N, die like a SIGKILL (os._exit: no
#: finally, no cleanup, the lock left behind) right after epoch N is backed up; with "model", when
#: the fit is over and model.keras is about to be written. A finished run prints its fingerprint:
#: report, history, and a hash of every weight of model.keras.
TRAIN_OR_DIE = """
import hashlib, json, os, sys
import keras
from semmatch_tf import runs
from semmatch_tf.training import fit as fit_module
from semmatch_tf.training.config_files import load_config
from semmatch_tf.training.trainer import train

config_path, run_dir = sys.argv[1], sys.argv[2]
die_at = sys.argv[3] if len(sys.argv) > 3 else None
standard, save_model = fit_module.build_callbacks, runs.atomic_save_model

class Die(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):  # after the backup: it comes earlier in the list
        if str(epoch + 1) == die_at:
            os._exit(3)

def save_or_die(model, path):
    if die_at == "model" and os.path.basename(path) == runs.MODEL:
        os._exit(3)
    save_model(model, path)

fit_module.build_callbacks = lambda *a, **k: standard(*a, **k) + [Die()]
runs.atomic_save_model = save_or_die
report = train(load_config(config_path), run_dir, verbose=0)
model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
history = json.load(open(os.path.join(run_dir, "history.json")))
print(json.dumps({"report": report, "history": history, "weights": weights}, sort_keys=True, default=str))
"""


def tiny_model(dropout: float = 0.5):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(dropout),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def write_history(path, values):
    path.write_text("epoch,loss,val_loss\n" + "".join(f"{e},1.0,{v}\n" for e, v in enumerate(values)))


def test_backup_survives_train_end_and_restores_the_dropout_seed_state(tmp_path):
    """The stock callback deletes backup/ in on_train_end (before the trainer writes model.keras),
    and its weights file lacks the dropout layers' seed-generator state."""
    import numpy as np

    from semmatch_tf.training.callbacks import AtomicBackupAndRestore

    model = tiny_model()
    model.fit(np.ones((16, 4)), np.ones(16), epochs=2, verbose=0,
              callbacks=[AtomicBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=True)])
    assert {p.name for p in (tmp_path / "backup").iterdir()} == {
        "training_metadata.json", "epoch-2-batch-0.weights.h5", "epoch-2-batch-0.rng_state.npz"}
    states = [v.numpy().copy() for v in model.non_trainable_variables]
    fresh = tiny_model()
    restorer = AtomicBackupAndRestore(str(tmp_path / "backup"))
    restorer.set_model(fresh)
    restorer.on_train_begin()
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(states, fresh.non_trainable_variables))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(states, tiny_model().non_trainable_variables))


def test_backup_files_of_an_uncommitted_epoch_are_ignored(tmp_path):
    """Killed after writing epoch 3's weights but before its metadata (the commit): the resume
    loads epoch 2's weights and restarts at epoch 2 (the stock callback paired the new weights
    with the old epoch number)."""
    import json

    import numpy as np

    from semmatch_tf.training.callbacks import AtomicBackupAndRestore

    model = tiny_model()
    model.fit(np.ones((16, 4)), np.ones(16), epochs=2, verbose=0,
              callbacks=[AtomicBackupAndRestore(str(tmp_path / "backup"))])
    committed = model.get_weights()
    model.fit(np.ones((16, 4)), np.ones(16), epochs=1, verbose=0)
    model.save_weights(tmp_path / "backup" / "epoch-3-batch-0.weights.h5")  # written, never committed
    fresh = tiny_model()
    restorer = AtomicBackupAndRestore(str(tmp_path / "backup"))
    restorer.set_model(fresh)
    restorer.on_train_begin()
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert all(np.array_equal(a, b) for a, b in zip(committed, fresh.get_weights()))


def test_resumed_early_stopping_and_best_checkpoint_decide_as_an_unkilled_fit(tmp_path):
    """Resumed at epoch 3 after val_loss 1.0, 0.8, 0.9: the best is still 0.8 (epoch 1), so a worse
    epoch 3 writes no checkpoint, and with patience 2 early stopping stops there."""
    from semmatch_tf.training.callbacks import AtomicBestCheckpoint, ResumableEarlyStopping

    history, best = tmp_path / "history.csv", tmp_path / "best.weights.h5"
    write_history(history, [1.0, 0.8, 0.9, 0.95])  # CSVLogger has already logged epoch 3
    model = tiny_model()
    checkpoint = AtomicBestCheckpoint(best, monitor="val_loss", history_csv=history)
    stopping = ResumableEarlyStopping(monitor="val_loss", patience=2, history_csv=history)
    for callback in (checkpoint, stopping):
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_epoch_end(3, {"loss": 1.0, "val_loss": 0.95})
    assert checkpoint.best == -0.8 and not best.exists()
    assert stopping.best == 0.8 and stopping.best_epoch == 1 and model.stop_training
    checkpoint.on_epoch_end(4, {"val_loss": 0.7})
    assert best.is_file(), "a real improvement is still saved"


def test_fit_once_does_not_fit_again_after_a_kill_before_the_final_files(tmp_path):
    import numpy as np

    from semmatch_tf.training.callbacks import FIT_END, fit_once

    model = tiny_model()
    assert fit_once(model, tmp_path, lambda: model.fit(np.ones((8, 4)), np.ones(8), verbose=0))
    assert (tmp_path / "backup" / FIT_END).is_file()
    weights = model.get_weights()
    again = tiny_model()

    def must_not_run():
        raise AssertionError("fitted again")

    assert not fit_once(again, tmp_path, must_not_run)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again.get_weights()))


def test_vocabulary_is_written_once_and_a_resume_refuses_another(tmp_path):
    import pytest

    from semmatch_tf.training.trainer import settle_vocabulary

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"]
    settle_vocabulary(tmp_path, vocabulary)
    written = (tmp_path / "vocabulary.txt").read_bytes()
    (tmp_path / "backup").mkdir()  # from now on the run is resuming
    assert settle_vocabulary(tmp_path, list(vocabulary)) == vocabulary
    with pytest.raises(ValueError, match="differs from the vocabulary built again") as error:
        settle_vocabulary(tmp_path, vocabulary[:-1] + ["##c"])
    assert "\n" not in str(error.value)
    assert (tmp_path / "vocabulary.txt").read_bytes() == written, "the saved vocabulary is never overwritten"


TINY_RUN = {
    "data": {"format": "demo", "split": [0.7, 0.15, 0.15], "seed": 3, "limit": 800},
    "text": {"vocab_size": 500, "min_frequency": 1, "query_length": 8, "product_length": 16},
    "model": {"family": "bilstm", "embedding_dim": 16, "lstm_units": 16, "hidden_units": 16, "dropout": 0.2},
    "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                 "epochs": 3, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.005, "schedule": "cosine",
                 "warmup_fraction": 0.1, "weight_decay": 0.0001, "class_weights": "balanced",
                 "early_stopping_patience": None, "token_dropout": 0.1, "seed": 5, "deterministic": True},
}


def run_training(config, run_dir, *die_at: str) -> tuple[int, dict | None]:
    """``(exit status, fingerprint of a finished run)`` of TRAIN_OR_DIE in a fresh process."""
    import json

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", TRAIN_OR_DIE, str(config), str(run_dir), *die_at],
                            capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    if result.returncode not in (0, 3):
        raise AssertionError(result.stderr[-3000:])
    return result.returncode, (json.loads(result.stdout.splitlines()[-1]) if result.returncode == 0 else None)


def test_killed_and_resumed_run_ends_exactly_like_an_unkilled_one(tmp_path):
    """Same seed, deterministic: an unkilled run, and a run SIGKILL-like killed after epoch 1,
    resumed in a new process that is killed again after its fit but before model.keras, and
    finished by a third, end with identical weights (sha256 of every array), history and test
    report. The resumes take over the dead processes' lock, keep the vocabulary written before the
    first epoch, and backup/ and the lock are removed at the end."""
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN), encoding="utf-8")
    status, unkilled = run_training(config, tmp_path / "unkilled")

    run_dir = tmp_path / "killed"
    status, _ = run_training(config, run_dir, "1")
    assert status == 3 and not (run_dir / "model.keras").exists()
    assert (run_dir / "backup" / "epoch-1-batch-0.rng_state.npz").is_file() and (run_dir / "run.lock").is_file()
    vocabulary = (run_dir / "vocabulary.txt").stat()
    status, _ = run_training(config, run_dir, "model")  # resumes epochs 2-3, then dies before model.keras
    assert status == 3 and not (run_dir / "model.keras").exists()
    assert (run_dir / "backup" / "fit_end.weights.h5").is_file(), "the backup outlives the fit until model.keras"
    status, resumed = run_training(config, run_dir)  # no epoch left to train: writes the run
    assert status == 0
    assert resumed["weights"] == unkilled["weights"]
    assert resumed["history"] == unkilled["history"] and len(resumed["history"]["loss"]) == 3
    assert resumed["report"] == unkilled["report"]
    assert (run_dir / "vocabulary.txt").stat().st_mtime_ns == vocabulary.st_mtime_ns, "written once"
    assert (run_dir / "vocabulary.txt").read_bytes() == (tmp_path / "unkilled" / "vocabulary.txt").read_bytes()
    assert not (run_dir / "backup").exists() and not (run_dir / "run.lock").exists()


def test_weights_built_in_memory_load_like_save_weights(tmp_path):
    """Checkpoints are built in memory and written with one plain write (a full disk fails there
    cleanly instead of inside h5py); the file must be an ordinary weights file."""
    import numpy as np

    from semmatch_tf.training.callbacks import save_weights_atomically

    model = tiny_model()
    model.fit(np.ones((16, 4)), np.ones(16), epochs=1, verbose=0)
    save_weights_atomically(model, tmp_path / "a.weights.h5")
    fresh = tiny_model()
    fresh.load_weights(tmp_path / "a.weights.h5")
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.weights, fresh.weights))
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model.weights, tiny_model().weights))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.weights.h5"]


def test_a_run_refused_before_its_first_epoch_leaves_nothing(tmp_path):
    """What the refused run wrote goes; what was there before stays; a resumable run is untouched."""
    import pytest

    from semmatch_tf.training.run_lock import discard_unstarted_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="too few"):
        with discard_unstarted_run(run):
            (run / "config.yaml").write_text("x")
            (run / "logs").mkdir()
            raise ValueError("too few positives")
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    (run / "backup").mkdir()
    with pytest.raises(OSError):
        with discard_unstarted_run(run):
            (run / "history.csv").write_text("epoch\n0\n")
            raise OSError(28, "No space left on device")
    assert sorted(p.name for p in run.iterdir()) == ["backup", "history.csv", "notes.txt"]
