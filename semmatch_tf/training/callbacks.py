"""Callbacks: TensorBoard scalars with the learning rate, checkpoints that survive a kill,
early stopping with best-weights restore. (The HParams session and the projector are written once
a run is evaluated: :mod:`semmatch_tf.training.tensorboard_logs`.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import numpy as np
from keras.src.saving import saving_lib  # the H5 store behind save_weights: see weights_h5_bytes

from semmatch_tf.atomic import atomic_write_bytes, atomic_write_text
from semmatch_tf.training.hparams import lower_is_better


HISTORY_CSV = "history.csv"
BEST_CHECKPOINT = "checkpoints/best.weights.h5"


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate to the epoch logs, so TensorBoard and history show it.
    Must come before the TensorBoard callback in the list (callbacks share one logs dict)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        optimizer = self.model.optimizer
        rate = optimizer.learning_rate
        if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            rate = optimizer._learning_rate(optimizer.iterations)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever the monitored value improves, atomically: written to a temporary
    file in the same directory, then renamed over the old one. A kill during the write leaves the
    previous best checkpoint intact (Keras' ModelCheckpoint writes in place)."""

    def __init__(self, path: str | Path, monitor: str = "val_loss", mode: str = "auto",
                 history_csv: str | Path | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.sign = -1.0 if mode == "min" or (mode == "auto" and lower_is_better(monitor)) else 1.0
        self.best = -np.inf
        self.history_csv = Path(history_csv) if history_csv else None
        self._resumed = False

    def on_train_begin(self, logs=None) -> None:
        self.best, self._resumed = -np.inf, False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self._resumed:  # a resumed fit: the best so far is in the rows of the finished epochs
            self._resumed = True
            for row in past_epochs(self.history_csv, epoch):
                self._improved(row.get(self.monitor))
        if not self._improved((logs or {}).get(self.monitor)):
            return
        save_weights_atomically(self.model, self.path)

    def _improved(self, value) -> bool:
        """Record ``value`` if it beats the best so far (strictly, and finite)."""
        if value is None or not np.isfinite(value) or self.sign * value <= self.best:
            return False
        self.best = self.sign * value
        return True


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience survives a kill: in a resumed fit it first replays the monitored
    values of the finished epochs (``history.csv``), so it stops at the epoch an unkilled run stops.

    It never holds best weights itself (they would be lost with the process): with
    ``restore_best_weights`` wanted, :class:`RestoreBestCheckpoint` loads the best checkpoint.
    """

    def __init__(self, *, history_csv: str | Path, **kwargs) -> None:
        super().__init__(restore_best_weights=False, **kwargs)
        self.history_csv = Path(history_csv)
        self._resumed = False

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        self._resumed = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self._resumed:
            self._resumed = True
            for past, row in enumerate(past_epochs(self.history_csv, epoch)):
                super().on_epoch_end(past, row)
        super().on_epoch_end(epoch, logs)


class RestoreBestCheckpoint(keras.callbacks.Callback):
    """At the end of a fit, load the best checkpoint's weights (what EarlyStopping's
    ``restore_best_weights`` does from memory, but from the file, so a resumed fit restores an
    epoch of the process before the kill too)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_train_end(self, logs=None) -> None:
        if self.path.is_file():
            self.model.load_weights(self.path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, made crash-safe and complete for an exact resume.

    *One commit point.* Each backup writes its files under names of their own
    (``epoch-3-batch-0.weights.h5``, ``...rng_state.npz``), then renames the metadata JSON, which
    names them, into place: that
    rename commits the backup, and only then are older files deleted. A SIGKILL at any moment leaves
    one consistent backup (the stock callback overwrites the weights and then the JSON in place, so
    a kill between them paired new weights with the old epoch, or tore the JSON).

    *Complete state.* It also backs up what ``save_weights`` leaves out: the non-trainable
    variables, among them the state of every dropout layer's seed generator, so a resumed fit draws
    the dropout masks an unkilled one would.

    *Kept at the end.* It never deletes the backup when a fit ends (whatever ``delete_checkpoint``
    says): the trainer removes it with :func:`remove_backup` once the final model is written, so a
    kill in between resumes instead of training every epoch again.
    """

    def on_train_begin(self, logs=None) -> None:
        metadata = self._committed()
        if metadata.get("weights"):
            self._weights_path = str(Path(self.backup_dir) / metadata["weights"])  # the committed epoch's file
        super().on_train_begin(logs)
        state = Path(self.backup_dir) / metadata.get("rng_state", "-")
        if state.is_file():
            with np.load(state) as saved:
                restore_variables(self.model.non_trainable_variables, saved)

    def on_train_end(self, logs=None) -> None:
        """Keep the backup: see the class docstring."""

    def _committed(self) -> dict:
        try:
            metadata = json.loads(Path(self._training_metadata_path).read_text())
        except (OSError, ValueError):
            return {}
        return metadata if isinstance(metadata, dict) else {}

    def _save_model(self) -> None:
        backup = Path(self.backup_dir)
        backup.mkdir(parents=True, exist_ok=True)
        tag = f"epoch-{self._current_epoch}-batch-{self._last_batch_seen}"
        weights, state = backup / f"{tag}.weights.h5", backup / f"{tag}.rng_state.npz"
        save_weights_atomically(self.model, weights)
        arrays = io.BytesIO()
        np.savez(arrays, **variable_arrays(self.model.non_trainable_variables))
        atomic_write_bytes(state, arrays.getvalue())
        atomic_write_text(Path(self._training_metadata_path), json.dumps({  # the commit
            "epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": weights.name,
            "rng_state": state.name}))
        for old in backup.glob("epoch-*"):
            if old.name not in (weights.name, state.name):
                old.unlink(missing_ok=True)


def variable_arrays(variables) -> dict[str, np.ndarray]:
    """``{"0": value, "0.path": path, ...}`` of variables in order (paths check the restore)."""
    arrays = {}
    for index, variable in enumerate(variables):
        arrays[str(index)] = keras.ops.convert_to_numpy(variable)
        arrays[f"{index}.path"] = np.asarray(variable.path)
    return arrays


def restore_variables(variables, saved) -> None:
    """Assign the values :func:`variable_arrays` saved, refusing a backup of another model.

    Paths are compared without Keras' per-process name counters (a second model built in one
    process has ``seed_generator_1/...`` where a fresh process has ``seed_generator/...``).
    """
    variables = list(variables)
    count = sum(1 for key in saved.files if key.endswith(".path"))
    found = [(_uncounted(str(saved[f"{i}.path"])), saved[str(i)].shape) for i in range(count)]
    wanted = [(_uncounted(v.path), tuple(v.shape)) for v in variables]
    if found != wanted:
        raise ValueError(f"the backup's {count} non-trainable variables are not this model's {len(variables)}: "
                         f"delete the run's backup/ to start afresh")
    for index, variable in enumerate(variables):
        variable.assign(saved[str(index)])


def _uncounted(path: str) -> str:
    import re

    return re.sub(r"_\d+(?=/|$)", "", path)


def completed_epochs(directory: str | Path) -> int:
    """Epochs a killed fit in ``directory`` finished and backed up (0 when there is no backup)."""
    metadata = Path(directory) / "backup" / "training_metadata.json"
    try:
        return int(json.loads(metadata.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


FIT_END = "fit_end.weights.h5"


def fit_once(model, directory: str | Path, fit) -> bool:
    """Call ``fit()`` unless a killed process in ``directory`` already finished it; True if it ran.

    Either way the model ends with the weights the fit ended with (after early stopping's restore):
    they are kept in ``backup/fit_end.weights.h5`` until :func:`remove_backup`, so a kill while the
    final files are written does not fit again (a restarted ``fit`` would train past an early stop).
    """
    marker = Path(directory) / "backup" / FIT_END
    if marker.is_file():
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # the file holds the optimizer's state too
        model.load_weights(marker)
        return False
    fit()
    save_weights_atomically(model, marker)
    return True


def weights_h5_bytes(model) -> bytes:
    """The bytes of the ``.weights.h5`` file ``model.save_weights`` would write, built in memory.

    Why not ``save_weights(path)``: on a full disk h5py fails inside its close and its object
    deallocators ("Exception ignored ... errno = 28" tracebacks, then a segfault at exit, leaving a
    partial file). Built in memory, only one plain file write can fail, with one clear OSError.
    Uses Keras' own H5 store and state walk (``keras.src.saving.saving_lib``, the code behind
    ``save_weights``), so ``model.load_weights`` reads the result like any weights file.
    """
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    store.close()
    return buffer.getvalue()


def save_weights_atomically(model, path: str | Path) -> None:
    """Write the model's weights file at ``path`` atomically; nothing partial on a failure."""
    atomic_write_bytes(Path(path), weights_h5_bytes(model))


def start_fresh(directory: str | Path) -> bool:
    """Unless a fit in ``directory`` is being resumed, delete what an earlier run left there for
    the callbacks to read back (history rows, best checkpoint); True when the fit starts afresh."""
    directory = Path(directory)
    if (directory / "backup").exists():
        return False
    (directory / HISTORY_CSV).unlink(missing_ok=True)
    (directory / BEST_CHECKPOINT).unlink(missing_ok=True)
    return True


def remove_backup(directory: str | Path) -> None:
    """Delete ``directory/backup``: only once everything the fit was for has been written."""
    import shutil

    backup = Path(directory) / "backup"
    if backup.exists():
        shutil.rmtree(backup)


def history_rows(path: str | Path) -> dict[int, dict[str, str]]:
    """CSVLogger's rows by epoch, across resumed runs (the last row per epoch wins: an epoch logged
    just before a kill and then re-run appears twice)."""
    import csv

    rows: dict[int, dict] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row.pop("epoch"))] = row
    return rows


def past_epochs(path: Path | None, epoch: int) -> list[dict[str, float]]:
    """The logs of epochs ``0 .. epoch-1`` from CSVLogger's file, as numbers (empty when there is no
    file, or when it lacks one of them: then nothing is replayed rather than a part)."""
    if path is None or epoch == 0 or not path.is_file():
        return []
    rows = history_rows(path)
    if any(e not in rows for e in range(epoch)):
        return []
    return [{k: float(v) for k, v in rows[e].items() if v not in (None, "", "NA")} for e in range(epoch)]


def read_history_csv(path: str | Path) -> dict[str, list[float]]:
    """Per-epoch metrics from CSVLogger's file, across resumed runs (see :func:`history_rows`)."""
    rows = history_rows(path)
    missing = (None, "", "NA")  # CSVLogger writes "NA" for val_* columns when there is no validation data
    names = sorted({name for row in rows.values() for name, value in row.items() if value not in missing})
    return {name: [float(rows[e][name]) if rows[e].get(name) not in missing else float("nan")
                   for e in sorted(rows)] for name in names}


def build_callbacks(run_dir: Path, *, monitor: str, patience: int | None) -> list:
    """The standard callback list; the backup makes ``fit`` resume after a kill.

    Order matters: the learning rate is added to the logs before anything records them, and the
    history row and the best checkpoint are written before the backup, so a kill between them
    re-runs (and re-logs) an epoch rather than losing its row or its checkpoint. The best
    checkpoint and early stopping read the finished epochs back from the history when a fit
    resumes, so they decide as in an unkilled fit. The backup is never deleted here: the caller
    removes it (:func:`remove_backup`) after writing the final model.
    """
    logs, history_csv = run_dir / "logs", run_dir / HISTORY_CSV
    best = run_dir / BEST_CHECKPOINT
    callbacks: list = [
        LearningRateLogger(),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        AtomicBestCheckpoint(best, monitor=monitor, history_csv=history_csv),
        AtomicBackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=False),
        keras.callbacks.TensorBoard(str(logs), update_freq="epoch", profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    if patience is not None:
        callbacks += [ResumableEarlyStopping(monitor=monitor, patience=patience, history_csv=history_csv),
                      RestoreBestCheckpoint(best)]
    return callbacks
