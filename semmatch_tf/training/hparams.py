"""What a run records about itself for TensorBoard and history.json, shared by every family."""

from __future__ import annotations

import dataclasses
import math

from semmatch_tf.evaluation.report import headline_metrics
from semmatch_tf.models.registry import family


def flat_hparams(config) -> dict:
    """``{"section.key": value}`` for the text, model and training sections, nested sections
    (``model.bert.*``, ``model.bi_encoder.*``) flattened too, so that every hyper-parameter of a
    cross-encoder BERT run reaches TensorBoard's HParams as a bi-encoder's do. A nested model
    section the family does not read is left out (a BiLSTM cross-encoder has no ``model.bert.*``
    or ``model.bi_encoder.*`` worth a column).

    Example:
        >>> from semmatch_tf.training.config import RunConfig
        >>> flat = flat_hparams(RunConfig.from_dict({"model": {"family": "bert", "bert": {"lora_rank": 8}}}))
        >>> flat["model.bert.lora_rank"], flat["model.family"], any(k.startswith("model.bi_encoder") for k in flat)
        (8, 'bert', False)
    """
    chosen = family(config.model.family)
    unused = {"model.bert": chosen.backbone != "bert", "model.bi_encoder": not chosen.is_bi_encoder}
    flat: dict = {}

    def walk(prefix: str, value) -> None:
        if unused.get(prefix):
            return
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


def lower_is_better(monitor: str) -> bool:
    """Whether a smaller ``monitor`` value is better (losses, RMSE), as Keras' ``mode="auto"`` decides."""
    return "loss" in monitor or "rmse" in monitor


def best_epoch(history: dict, monitor: str) -> int | None:
    """Index of the epoch whose ``monitor`` value is best (the first of equals), None without one.

    The same rule as the best checkpoint, so the epoch named here is the one whose weights were kept.
    """
    values = [v if v is not None and math.isfinite(v) else math.nan for v in history.get(monitor, [])]
    finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
    if not finite:
        return None
    sign = 1.0 if lower_is_better(monitor) else -1.0
    return min(finite, key=lambda pair: (sign * pair[0], pair[1]))[1]


def session_metrics(history: dict, monitor: str, report: dict) -> dict[str, float]:
    """What TensorBoard's HParams table shows for a run: every history metric at the best epoch
    (``best/<name>``, plus ``best/epoch`` counted from 1) and the report's headline metrics
    (``test/<name>``, and ``test/retrieval_<name>`` for a bi-encoder's catalogue search).

    Example:
        >>> session_metrics({"loss": [0.9, 0.5, 0.6], "val_loss": [0.8, 0.4, 0.7]}, "val_loss",
        ...                 {"regression": {"rmse": 0.51}})
        {'best/epoch': 2.0, 'best/loss': 0.5, 'best/val_loss': 0.4, 'test/rmse': 0.51}
    """
    metrics: dict[str, float] = {}
    best = best_epoch(history, monitor)
    if best is not None:
        metrics["best/epoch"] = float(best + 1)
        for name, values in sorted(history.items()):
            if best < len(values) and values[best] is not None and math.isfinite(values[best]):
                metrics[f"best/{name}"] = float(values[best])
    for name, value in headline_metrics(report).items():
        if name != "pairs" and isinstance(value, (int, float)) and math.isfinite(value):
            metrics[f"test/{name}"] = float(value)
    for name, value in sorted(report.get("retrieval", {}).items()):
        if isinstance(value, float) and math.isfinite(value):
            metrics[f"test/retrieval_{name}"] = value
    return metrics
