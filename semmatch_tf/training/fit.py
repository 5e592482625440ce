"""The one fit shell every family trains through: callbacks, resume, early stopping, history.

A run directory (or a phase's sub-directory, e.g. a bi-encoder's ``warmup/``) is fitted by
:func:`fit_resumably`: a fresh start clears what an earlier run left for the callbacks to read
(:func:`~semmatch_tf.training.callbacks.start_fresh`); the standard callbacks
(:func:`~semmatch_tf.training.callbacks.build_callbacks`: TensorBoard scalars, history CSV,
best checkpoint, crash-safe backup, early stopping) watch ``training.monitor``; a fit a killed
process already finished is not run again (:func:`~semmatch_tf.training.callbacks.fit_once`); the
history returned is the CSV's, which spans every process of a resumed run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from semmatch_tf.training.callbacks import HISTORY_CSV, build_callbacks, fit_once, read_history_csv, start_fresh

log = logging.getLogger(__name__)


def watched_metric(monitor: str, has_validation: bool) -> str:
    """``training.monitor``, or its training-set twin when there are no validation batches
    (``val_loss`` -> ``loss``, ``val_accuracy`` -> ``accuracy``)."""
    return monitor if has_validation else monitor.removeprefix("val_")


def fit_resumably(model, directory: str | Path, *, data, validation, epochs: int, steps_per_epoch: int,
                  training, verbose: int = 1, **fit_options) -> dict[str, list[float]]:
    """Fit ``model`` on ``data`` with the standard callbacks in ``directory``; returns the history.

    Args:
        model: a compiled Keras model.
        directory: where the callbacks write (history.csv, checkpoints/, backup/, logs/).
        data: the training stream from the first unfinished epoch (already shuffled per epoch).
        validation: validation batches, or None (then the training-set twin of the monitor is watched).
        epochs: the total epoch count (a resumed fit starts at the backup's epoch).
        steps_per_epoch: batches per epoch.
        training: the config's ``training`` section (monitor, early-stopping patience).
        verbose: Keras' fit verbosity.
        **fit_options: passed to ``model.fit`` (e.g. ``class_weight``).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    start_fresh(directory)  # not a resume: an earlier run's history and best checkpoint must not be read
    callbacks = build_callbacks(directory, monitor=watched_metric(training.monitor, validation is not None),
                                patience=training.early_stopping_patience)
    fitted: dict = {}
    fit_once(model, directory, lambda: fitted.update(model.fit(
        data, validation_data=validation, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
        verbose=verbose, shuffle=False, **fit_options).history))  # the streams shuffle (or pack) themselves
    history_csv = directory / HISTORY_CSV
    try:  # the CSV spans resumed processes; this process's History does not
        return read_history_csv(history_csv)
    except (OSError, ValueError) as error:
        log.warning("could not read %s (%s): keeping this process's history only", history_csv, error)
        return fitted
