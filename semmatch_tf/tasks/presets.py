"""What the two tasks of :mod:`semmatch_tf.tasks` share: the family check of ``fit``, ordering
documents by score, and the preset directory that ``save`` writes and ``from_preset`` reads.

A preset directory is a run directory (:mod:`semmatch_tf.runs`) holding only what inference
needs, written by the project's atomic directory writer: a reader sees no directory or the
complete one, never half of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from semmatch_tf.atomic import write_directory_atomically
from semmatch_tf.models.registry import family
from semmatch_tf.training.config import RunConfig
from semmatch_tf.weights import KNOWN_WEIGHTS


def check_kind(config: RunConfig, *, bi_encoder: bool, task: str) -> None:
    """Refuse a config whose model family is the other kind of task (before anything is written)."""
    entry = family(config.model.family)
    if entry.is_bi_encoder != bi_encoder:
        other = "BiEncoder" if entry.is_bi_encoder else "CrossEncoder"
        raise ValueError(f"model.family {entry.name!r} is a {entry.kind.replace('_', '-')}: use {other}.fit, "
                         f"not {task}.fit")


def ranked(scores: np.ndarray, documents: list[str], top_k: int | None) -> list[dict]:
    """``[{"corpus_id", "score", "text"}]`` best first (ties keep the input order), ``top_k`` of them."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [{"corpus_id": int(i), "score": float(scores[i]), "text": documents[i]} for i in order]


def save_preset(path: str | Path, write: Callable[[Path], None], *, overwrite: bool,
                loaded_from: Path | None) -> Path:
    """Write a preset directory with ``write(temporary)`` and rename it into place at ``path``.

    An existing non-empty ``path`` is refused (:class:`FileExistsError`) unless ``overwrite``; the
    run the model was loaded from is always refused, as replacing it would drop its history,
    logs and checkpoints.
    """
    path = Path(path)
    if loaded_from is not None and path.resolve() == Path(loaded_from).resolve():
        raise ValueError(f"{path} is the run this model was loaded from; save to another directory")
    return write_directory_atomically(path, write, overwrite=overwrite)


def names_checkpoint(preset: str | Path) -> bool:
    """Whether ``preset`` names a pretrained checkpoint rather than a saved model or run: a packaged
    name (``multilingual-e5-small``), a ``$SEMMATCH_E5_DIR``-style reference, or a checkpoint
    directory (keras-hub or Hugging Face: it has a ``config.json``; a run has ``config.yaml``)."""
    path = Path(preset)
    if path.is_dir():
        return (path / "config.json").is_file()
    text = str(preset)
    return text.strip().lower() in KNOWN_WEIGHTS or "$" in text


def unknown_preset(preset: str | Path) -> FileNotFoundError:
    """The error for a ``preset`` that is neither an existing directory nor a packaged checkpoint."""
    return FileNotFoundError(f"{preset}: no such directory, and not a packaged checkpoint "
                             f"(known: {', '.join(sorted(KNOWN_WEIGHTS))})")
