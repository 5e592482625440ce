"""Callbacks: TensorBoard (scalars, learning rate, hparams), checkpoints that survive a kill,
early stopping with best-weights restore."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


HISTORY_CSV = "history.csv"


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

    def __init__(self, path: str | Path, monitor: str = "val_loss", mode: str = "auto") -> None:
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.sign = -1.0 if (mode == "min" or (mode == "auto" and "loss" in monitor or "rmse" in monitor)) else 1.0
        self.best = -np.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value) or self.sign * value <= self.best:
            return
        self.best = self.sign * value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".tmp-{self.path.name}")  # keeps the .weights.h5/.keras ending
        if self.path.suffix == ".keras":
            self.model.save(temporary)
        else:
            self.model.save_weights(temporary)
        os.replace(temporary, self.path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, with each backup file written to a temporary name and renamed into
    place: a SIGKILL during a backup leaves the previous epoch's state loadable (the stock callback
    writes the weights and the metadata JSON in place, and a torn JSON stops the resume)."""

    def _save_model(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = Path(self._weights_path)
        temporary = weights.with_name(f".tmp-{weights.name}")  # Keras wants the .weights.h5 ending
        self.model.save_weights(filepath=str(temporary), overwrite=True)
        os.replace(temporary, weights)
        metadata = Path(self._training_metadata_path)
        temporary = metadata.with_name(f".{metadata.name}.tmp")
        temporary.write_text(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
        os.replace(temporary, metadata)


def read_history_csv(path: str | Path) -> dict[str, list[float]]:
    """Per-epoch metrics from CSVLogger's file, across resumed runs (the last row per epoch wins:
    an epoch logged just before a kill and then re-run appears twice)."""
    import csv

    rows: dict[int, dict] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row.pop("epoch"))] = row
    missing = (None, "", "NA")  # CSVLogger writes "NA" for val_* columns when there is no validation data
    names = sorted({name for row in rows.values() for name, value in row.items() if value not in missing})
    return {name: [float(rows[e][name]) if rows[e].get(name) not in missing else float("nan")
                   for e in sorted(rows)] for name in names}


class HParamsLogger(keras.callbacks.Callback):
    """Writes the run's hyper-parameters and per-epoch metrics for TensorBoard's HParams dashboard
    (one event file per run: the writer is opened once and closed at the end)."""

    def __init__(self, log_dir: str | Path, hparams: dict) -> None:
        super().__init__()
        self.log_dir = str(log_dir)
        self.hparams = {k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str))}
        self.writer = None

    def on_train_begin(self, logs=None) -> None:
        from tensorboard.plugins.hparams import api as hp

        self.writer = tf.summary.create_file_writer(self.log_dir)
        with self.writer.as_default():
            hp.hparams(self.hparams)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with self.writer.as_default():
            for name, value in (logs or {}).items():
                tf.summary.scalar(f"hparams/{name}", float(value), step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None) -> None:
        if self.writer is not None:
            self.writer.close()


def build_callbacks(run_dir: Path, *, monitor: str, patience: int | None, hparams: dict) -> list:
    """The standard callback list; the backup makes ``fit`` resume after a kill.

    Order matters: the learning rate is added to the logs before anything records them, and the
    history row and the best checkpoint are written before the backup, so a kill between them
    re-runs (and re-logs) an epoch rather than losing its row or its checkpoint.
    """
    logs = run_dir / "logs"
    callbacks: list = [
        LearningRateLogger(),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_CSV), append=True),
        AtomicBestCheckpoint(run_dir / "checkpoints" / "best.weights.h5", monitor=monitor),
        AtomicBackupAndRestore(str(run_dir / "backup"), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.TensorBoard(str(logs), update_freq="epoch", profile_batch=0),
        HParamsLogger(logs / "hparams", hparams),
        keras.callbacks.TerminateOnNaN(),
    ]
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                       restore_best_weights=True))
    return callbacks


def write_embedding_projector(log_dir: str | Path, vectors: np.ndarray, labels: list[str],
                              name: str = "embeddings") -> Path:
    """Write vectors + a label per row for TensorBoard's embedding projector."""
    from tensorboard.plugins import projector

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    metadata = log_dir / f"{name}_metadata.tsv"
    metadata.write_text("".join(_tsv_safe(label) + "\n" for label in labels), encoding="utf-8")
    variable = tf.Variable(np.asarray(vectors, dtype=np.float32), name=name)
    checkpoint = tf.train.Checkpoint(embedding=variable)
    checkpoint.save(str(log_dir / f"{name}.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = metadata.name
    projector.visualize_embeddings(str(log_dir), config)
    return log_dir


def _tsv_safe(label: str) -> str:
    return (label or "<empty>").replace("\t", " ").replace("\n", " ")
