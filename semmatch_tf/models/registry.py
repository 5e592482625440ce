"""The model families: one record each, so that code asks the family instead of testing its name.

A family says what kind of model it is (a cross-encoder scores a pair; a bi-encoder embeds each
side), which text model it is built on (the BiLSTM's own WordPiece vocabulary, or a BERT), which
training options it implements, and where its builder lives. ``model.family`` in a config is
validated against this table; the trainer, the config checks and the builders read it.

A new family is one :func:`register_family` call (its builder named by ``"module:function"`` so
that this table stays importable without TensorFlow, e.g. for config validation in the CLI).

Examples:

>>> from semmatch_tf.models.registry import family, family_names
>>> family("bert_bi_encoder").kind
'bi_encoder'
>>> family("bilstm").supports_token_dropout
True
>>> "bert" in family_names()
True
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

CROSS_ENCODER, BI_ENCODER = "cross_encoder", "bi_encoder"


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family.

    Args:
        name: the ``model.family`` value.
        kind: ``"cross_encoder"`` (scores a query-product pair) or ``"bi_encoder"`` (embeds each side).
        backbone: ``"bilstm"`` (learns its WordPiece vocabulary from the training text) or ``"bert"``
            (a keras-hub BERT; learns a vocabulary only when ``model.bert.source`` is ``scratch``).
        builder: ``"module:function"`` of the builder. Cross-encoders:
            ``(model_config, text_config, *, vocabulary, num_classes) -> (preprocessor, model)``;
            bi-encoders: ``(model_config, text_config, *, vocabulary) -> Towers``.
        supports_token_dropout: whether ``training.token_dropout`` is implemented for it.
        supports_length_buckets: whether ``text.length_buckets`` is implemented for it.
    """

    name: str
    kind: str
    backbone: str
    builder: str
    supports_token_dropout: bool = False
    supports_length_buckets: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (CROSS_ENCODER, BI_ENCODER):
            raise ValueError(f"family {self.name!r}: kind must be {CROSS_ENCODER} or {BI_ENCODER}, got {self.kind!r}")
        if self.backbone not in ("bilstm", "bert"):
            raise ValueError(f"family {self.name!r}: backbone must be bilstm or bert, got {self.backbone!r}")

    @property
    def is_bi_encoder(self) -> bool:
        return self.kind == BI_ENCODER

    def learns_vocabulary(self, model_config) -> bool:
        """Whether training learns a WordPiece vocabulary (pretrained BERTs bring their own)."""
        return self.backbone == "bilstm" or model_config.bert.source == "scratch"

    def build(self, *args, **kwargs):
        """Call the family's builder (imported on first use: it needs TensorFlow)."""
        return resolve(self.builder)(*args, **kwargs)


def resolve(path: str) -> Callable:
    """The callable named ``"package.module:function"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_FAMILIES: dict[str, Family] = {}


def register_family(entry: Family) -> Family:
    """Add a family (a name already taken is refused: families are not silently replaced)."""
    if entry.name in _FAMILIES:
        raise ValueError(f"model family {entry.name!r} is already registered")
    _FAMILIES[entry.name] = entry
    return entry


def family(name: str) -> Family:
    """The family called ``name``; a ValueError lists the known ones."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model family {name!r}; known: {list(_FAMILIES)}") from None


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def register_keras_classes() -> None:
    """Import every family's builder module: that registers its Keras classes (layers, models,
    preprocessors), which ``keras.saving.load_model`` must know before it reads a saved run."""
    for entry in _FAMILIES.values():
        resolve(entry.builder)


register_family(Family("bilstm", CROSS_ENCODER, "bilstm", "semmatch_tf.models.cross_encoders:build_bilstm_pair",
                       supports_token_dropout=True, supports_length_buckets=True))
register_family(Family("bert", CROSS_ENCODER, "bert", "semmatch_tf.models.cross_encoders:build_bert_pair"))
register_family(Family("bilstm_bi_encoder", BI_ENCODER, "bilstm", "semmatch_tf.models.bi_encoder:build_bilstm_towers"))
register_family(Family("bert_bi_encoder", BI_ENCODER, "bert", "semmatch_tf.models.bi_encoder:build_bert_towers"))
