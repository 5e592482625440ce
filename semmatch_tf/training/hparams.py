"""What a run records about itself for TensorBoard and history.json, shared by every family."""

from __future__ import annotations

import dataclasses
import math


def flat_hparams(config) -> dict:
    """``{"section.key": value}`` for the text, model and training sections, nested sections
    (``model.bert.*``, ``model.bi_encoder.*``) flattened too, so that every hyper-parameter of a
    cross-encoder BERT run reaches TensorBoard's HParams as a bi-encoder's do.

    Example:
        >>> from semmatch_tf.training.config import RunConfig
        >>> flat = flat_hparams(RunConfig.from_dict({"model": {"family": "bert", "bert": {"lora_rank": 8}}}))
        >>> flat["model.bert.lora_rank"], flat["model.family"]
        (8, 'bert')
    """
    flat: dict = {}

    def walk(prefix: str, value) -> None:
        if dataclasses.is_dataclass(value):
            for key, inner in value.__dict__.items():
                walk(f"{prefix}.{key}", inner)
        else:
            flat[prefix] = value

    for section in ("text", "model", "training"):
        walk(section, getattr(config, section))
    return flat


def plain_history(history: dict) -> dict:
    """History lists as JSON-ready floats, None for missing or non-finite values."""
    return {key: [float(v) if v is not None and math.isfinite(float(v)) else None for v in values]
            for key, values in history.items()}
