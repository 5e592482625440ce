"""Run configuration: dataclasses with validation, loaded from and saved to YAML.

A config file has four sections (``data``, ``text``, ``model``, ``training``); every option has a
default, unknown keys are errors (a typo must not silently fall back to a default), and values are
checked for type and range when the config is built, before any data is read.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range (the message names the key)."""


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _one_of(value: Any, key: str, choices: tuple) -> None:
    _check(value in choices, key, f"must be one of {list(choices)}, got {value!r}")


@dataclasses.dataclass
class DataConfig:
    """Where the judged pairs come from and how they are split (always grouped by query).

    ``subsample`` caps a split's size after splitting, e.g. ``{train: 8000}`` to fine-tune a BERT
    on a CPU while validating and testing on the same held-out queries as a full run.
    """

    format: str = "demo"
    path: str | None = None
    options: dict = dataclasses.field(default_factory=dict)
    limit: int | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 13
    validation_path: str | None = None
    test_path: str | None = None
    subsample: dict = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        _check(self.format == "demo" or self.path is not None, "data.path",
               f"is required for format {self.format!r}")
        _check(len(self.split) == 3 and all(f >= 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6,
               "data.split", f"must be three non-negative fractions summing to 1, got {self.split}")
        _check(self.split[0] > 0, "data.split", "needs a non-empty training fraction")
        _check(self.limit is None or self.limit > 0, "data.limit", "must be positive")
        for split, pairs in self.subsample.items():
            _one_of(split, "data.subsample", ("train", "validation", "test"))
            _check(isinstance(pairs, int) and pairs > 0, f"data.subsample.{split}",
                   "must be a positive number of pairs (whole queries are kept)")


@dataclasses.dataclass
class TextConfig:
    """Vocabulary learning and sequence lengths."""

    vocab_size: int = 8000
    min_frequency: int = 2
    lowercase: bool = True
    strip_accents: bool = True
    query_length: int = 16
    product_length: int = 48
    length_buckets: list[int] | None = None

    def validate(self) -> None:
        _check(self.vocab_size > 5, "text.vocab_size", "must exceed the 5 special tokens")
        _check(self.min_frequency >= 1, "text.min_frequency", "must be at least 1")
        _check(self.query_length > 0, "text.query_length", "must be positive")
        _check(self.product_length > 0, "text.product_length", "must be positive")


FAMILIES = ("bilstm", "bilstm_bi_encoder", "bert", "bert_bi_encoder")
BERT_SIZES = ("tiny", "mini", "small", "medium", "base")


@dataclasses.dataclass
class BertConfig:
    """The BERT families (``bert``, ``bert_bi_encoder``): where weights come from, how to fine-tune.

    ``source``: ``scratch`` (a ``size`` preset over the run's own vocabulary), ``preset`` (a local
    keras-hub preset directory, e.g. from ``semmatch-tf pretrain``) or ``huggingface`` (a local HF
    BERT checkpoint: config.json + model.safetensors + vocab.txt). ``lora_rank`` trains low-rank
    adapters only; ``freeze_embeddings`` / ``freeze_layers`` freeze the bottom of the network.
    ``path`` may also name known offline weights (``multilingual-e5-small``, ``all-minilm-l6-v2``;
    see :mod:`semmatch_tf.weights`); SentencePiece (XLM-R vocabulary) checkpoints work wherever
    WordPiece ones do. ``query_prefix`` / ``product_prefix`` are prepended to each side's text
    (null: the checkpoint's own, e.g. e5's ``"query: "`` / ``"passage: "``; ``""``: none).
    """

    source: str = "scratch"
    path: str | None = None
    size: str = "mini"
    sequence_length: int = 64
    dropout: float = 0.1
    pooling: str = "cls"
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    lora_rank: int | None = None
    projection: int | None = None
    query_prefix: str | None = None
    product_prefix: str | None = None

    def validate(self) -> None:
        _one_of(self.source, "model.bert.source", ("scratch", "preset", "huggingface"))
        _check(self.source == "scratch" or self.path is not None, "model.bert.path",
               f"is required for source {self.source!r} (a local directory; nothing is fetched from a hub)")
        _one_of(self.size, "model.bert.size", BERT_SIZES)
        _check(4 <= self.sequence_length <= 512, "model.bert.sequence_length", "must be in [4, 512]")
        _check(0 <= self.dropout < 1, "model.bert.dropout", "must be in [0, 1)")
        _one_of(self.pooling, "model.bert.pooling", ("cls", "mean"))
        _check(self.freeze_layers >= 0, "model.bert.freeze_layers", "must be >= 0")
        _check(self.lora_rank is None or self.lora_rank > 0, "model.bert.lora_rank", "must be positive or null")
        _check(not (self.lora_rank and (self.freeze_layers or self.freeze_embeddings)), "model.bert.lora_rank",
               "LoRA already freezes every original weight; drop freeze_layers / freeze_embeddings")
        _check(self.projection is None or self.projection > 0, "model.bert.projection", "must be positive or null")


@dataclasses.dataclass
class BiEncoderConfig:
    """Contrastive bi-encoders (``*_bi_encoder`` families): towers, loss and negatives."""

    embedding_size: int = 128
    shared_towers: bool = True
    loss: str = "in_batch_softmax"
    temperature: float = 0.05
    positive_grade: float | None = None
    hard_negatives: int = 0
    hard_negative_source: str = "judged"

    def validate(self) -> None:
        _check(self.embedding_size > 0, "model.bi_encoder.embedding_size", "must be positive")
        _one_of(self.loss, "model.bi_encoder.loss", ("in_batch_softmax", "cosine_regression"))
        _check(self.temperature > 0, "model.bi_encoder.temperature", "must be positive")
        _check(self.hard_negatives >= 0, "model.bi_encoder.hard_negatives", "must be >= 0")
        _one_of(self.hard_negative_source, "model.bi_encoder.hard_negative_source", ("judged", "bm25", "model"))


@dataclasses.dataclass
class ModelConfig:
    """Which model family and its size."""

    family: str = "bilstm"
    head: str = "classification"
    embedding_dim: int = 128
    lstm_units: int = 128
    hidden_units: int = 128
    pooling: str = "last"
    dropout: float = 0.2
    embedding_dropout: float = 0.0
    exact_match: bool = True
    bi_encoder: BiEncoderConfig = dataclasses.field(default_factory=BiEncoderConfig)
    bert: BertConfig = dataclasses.field(default_factory=BertConfig)

    def validate(self) -> None:
        _one_of(self.family, "model.family", FAMILIES)
        self.bi_encoder.validate()
        self.bert.validate()
        _one_of(self.head, "model.head", ("classification", "regression"))
        _one_of(self.pooling, "model.pooling", ("last", "max", "mean"))
        for key in ("embedding_dim", "lstm_units", "hidden_units"):
            _check(getattr(self, key) > 0, f"model.{key}", "must be positive")
        for key in ("dropout", "embedding_dropout"):
            _check(0 <= getattr(self, key) < 1, f"model.{key}", "must be in [0, 1)")


@dataclasses.dataclass
class TrainingConfig:
    """Optimisation, regularisation, checkpoints, precision and distribution."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9
    clipnorm: float | None = 1.0
    early_stopping_patience: int | None = 3
    monitor: str = "val_loss"
    class_weights: str | dict | None = None
    token_dropout: float = 0.0
    # Cross-encoders: per training query, this many unjudged products from its top
    # mined_negative_depth BM25 results, added as irrelevant pairs (semmatch_tf.training.negatives).
    mined_negatives: int = 0
    mined_negative_depth: int = 30
    precision: str = "auto"
    distribution: str = "auto"
    seed: int = 13
    deterministic: bool = False
    steps_per_execution: int = 1
    gradient_accumulation_steps: int | None = None
    jit_compile: bool | str = "auto"

    def validate(self) -> None:
        _check(self.epochs > 0, "training.epochs", "must be positive")
        _check(self.batch_size > 0, "training.batch_size", "must be positive")
        _one_of(self.optimizer, "training.optimizer", ("adam", "adamw", "sgd"))
        _check(self.learning_rate > 0, "training.learning_rate", "must be positive")
        _one_of(self.schedule, "training.schedule", ("constant", "cosine", "linear"))
        _check(0 <= self.warmup_fraction < 1, "training.warmup_fraction", "must be in [0, 1)")
        _check(self.weight_decay >= 0, "training.weight_decay", "must be non-negative")
        _check(self.weight_decay == 0 or self.optimizer in ("adamw", "sgd"), "training.weight_decay",
               "is applied by adamw or sgd (decoupled); with adam use optimizer: adamw")
        _check(0 <= self.momentum < 1, "training.momentum", "must be in [0, 1)")
        _check(self.clipnorm is None or self.clipnorm > 0, "training.clipnorm", "must be positive or null")
        _check(self.early_stopping_patience is None or self.early_stopping_patience >= 0,
               "training.early_stopping_patience", "must be >= 0 or null")
        _check(self.class_weights is None or self.class_weights == "balanced" or isinstance(self.class_weights, dict),
               "training.class_weights", "must be null, 'balanced' or a mapping {class: weight}")
        _check(0 <= self.token_dropout < 1, "training.token_dropout", "must be in [0, 1)")
        _check(self.mined_negatives >= 0, "training.mined_negatives", "must be >= 0")
        _check(self.mined_negative_depth >= max(1, self.mined_negatives), "training.mined_negative_depth",
               "must be at least 1 and at least training.mined_negatives")
        _one_of(self.precision, "training.precision", ("auto", "float32", "mixed_float16", "mixed_bfloat16"))
        _one_of(self.distribution, "training.distribution", ("auto", "default", "mirrored", "multi_worker"))
        _check(self.steps_per_execution >= 1, "training.steps_per_execution", "must be at least 1")
        _check(self.gradient_accumulation_steps is None or self.gradient_accumulation_steps >= 2,
               "training.gradient_accumulation_steps", "must be null or at least 2")
        _check(self.jit_compile in (True, False, "auto"), "training.jit_compile", "must be true, false or auto")


@dataclasses.dataclass
class RunConfig:
    """The whole run: what to read, how to tokenise, what to build, how to train."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    def validate(self) -> "RunConfig":
        for section in (self.data, self.text, self.model, self.training):
            section.validate()
        _check(self.training.class_weights is None or self.model.head == "classification",
               "training.class_weights", "apply to the classification head only")
        _check(not self.training.mined_negatives or not self.model.family.endswith("_bi_encoder"),
               "training.mined_negatives", "are for cross-encoders; bi-encoders mine theirs with "
               "model.bi_encoder.hard_negatives")
        _check(self.training.token_dropout == 0 or self.model.family == "bilstm", "training.token_dropout",
               "is implemented for the bilstm family only")
        _check(not self.text.length_buckets or self.model.family == "bilstm", "text.length_buckets",
               "are implemented for the bilstm family only")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict | None) -> "RunConfig":
        raw = dict(raw or {})
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(sections))
        _check(not unknown, ", ".join(unknown), f"unknown section(s); expected {sorted(sections)}")
        hints = typing.get_type_hints(cls)
        built = {name: _section(hints[name], raw.get(name) or {}, name) for name in sections}
        return cls(**built).validate()


def _section(section_type: type, raw: dict, prefix: str):
    _check(isinstance(raw, dict), prefix, f"must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    unknown = sorted(set(raw) - set(fields))
    _check(not unknown, f"{prefix}.{unknown[0]}" if unknown else prefix,
           f"unknown key; known keys are {sorted(fields)}")
    hints = typing.get_type_hints(section_type)
    values = {key: _coerce(value, hints[key], f"{prefix}.{key}") for key, value in raw.items()}
    return section_type(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a YAML value against a field's type hint (ints are accepted where floats are)."""
    if dataclasses.is_dataclass(hint):
        return _section(hint, value if value is not None else {}, key)
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) else (hint,)
    if value is None:
        _check(type(None) in options, key, "must not be null")
        return None
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if origin in (list, tuple) and isinstance(value, (list, tuple)):
            return origin(value)
        if origin is dict and isinstance(value, dict):
            return value
    names = [getattr(o, "__name__", str(o)) for o in options]
    raise ConfigError(f"{key}: expected {' or '.join(names)}, got {value!r}")


def load_config(path: str | Path, overrides: dict | None = None) -> RunConfig:
    """Read a YAML config (and optional dotted overrides such as {"training.epochs": 2} or
    {"model.bert.lora_rank": 8})."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        node = raw
        for name in parents:  # nested sections, e.g. model.bert.path
            node = node.setdefault(name, {}) if isinstance(node.get(name), dict) or name not in node else node[name]
        node[key] = value
    try:
        return RunConfig.from_dict(raw)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(_plain(config.to_dict()), sort_keys=False, allow_unicode=True),
                          encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
