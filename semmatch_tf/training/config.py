"""Run configuration: dataclasses with validation (read from and written to YAML by
:mod:`semmatch_tf.training.config_files`).

A config file has four sections (``data``, ``text``, ``model``, ``training``); every option has a
default, unknown keys are errors (a typo must not silently fall back to a default), and values are
checked for type and range when the config is built, before any data is read.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from semmatch_tf.models.registry import family, family_names
from semmatch_tf.training.config_data import DataConfig, check_seed, resolve_data_path  # noqa: F401 (re-exported)
from semmatch_tf.training.config_schema import (ConfigError, build_section, check,  # noqa: F401 (ConfigError: the config's error)
                                                kind, one_of, short)


#: Longest sequence a family accepts (BERT: its 512 position embeddings; BiLSTM: a sanity cap far
#: beyond any title, so that a typo does not allocate gigabytes of padding).
MAX_LENGTH = {"bert": 512, "bilstm": 4096}
#: Sanity caps in the same spirit: a width or vocabulary beyond these is a typo, not a model.
MAX_WIDTH = 16384
MAX_VOCABULARY = 2**21
#: Every other count must fit TensorFlow's int32 (steps, epochs, batch sizes); seeds NumPy's uint32.
#: Metric names each model compiles with, as Keras logs them (``val_`` + name on validation):
#: cross-encoders ``semmatch_tf.models.heads.metrics_for(head)``, bi-encoders
#: ``semmatch_tf.losses.in_batch_metrics()`` for the in-batch softmax, none otherwise.
#: Kept here so a config is checked without importing Keras; tests/test_bad_input.py checks both.
HEAD_METRICS = {"classification": ("accuracy",), "regression": ("rmse",)}
BI_ENCODER_METRICS = {"in_batch_softmax": ("in_batch_accuracy",), "cosine_regression": (), "cosent": ()}


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
    # Write units and numbers one way (12" / 12 in. / 12-inch -> 12 in) on both sides, in the
    # exported graph too (semmatch_tf.text.units); the bilstm cross-encoder applies it.
    normalize_units: bool = False

    def validate(self) -> None:
        check(5 < self.vocab_size <= MAX_VOCABULARY, "text.vocab_size",
               f"must exceed the 5 special tokens and be at most {MAX_VOCABULARY}, got {self.vocab_size}")
        check(self.min_frequency >= 1, "text.min_frequency", "must be at least 1")
        for key in ("query_length", "product_length"):
            check(0 < getattr(self, key) <= MAX_LENGTH["bilstm"], f"text.{key}",
                   f"must be in [1, {MAX_LENGTH['bilstm']}], got {getattr(self, key)}")
        buckets = self.length_buckets or []
        check(all(b > 0 for b in buckets) and all(a < b for a, b in zip(buckets, buckets[1:])),
               "text.length_buckets", f"must be positive, strictly increasing token counts, got {buckets}")


FAMILIES = family_names()  # the registry's (semmatch_tf.models.registry)
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
    ``keep_layers`` keeps that many of a pretrained checkpoint's transformer layers, evenly spaced
    from first to last (DistilBERT's student initialisation): a shallower model, faster to train
    and to serve, that still starts from pretrained weights.
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
    keep_layers: int | None = None

    def validate(self) -> None:
        one_of(self.source, "model.bert.source", ("scratch", "preset", "huggingface"))
        check(self.keep_layers is None or self.keep_layers > 0, "model.bert.keep_layers", "must be positive or null")
        check(self.keep_layers is None or self.source != "scratch", "model.bert.keep_layers",
               "keeps layers of pretrained weights; a scratch model sets its depth with model.bert.size")
        check(self.source == "scratch" or self.path is not None, "model.bert.path",
               f"is required for source {short(self.source)} (a local directory; nothing is fetched from a hub)")
        one_of(self.size, "model.bert.size", BERT_SIZES)
        check(4 <= self.sequence_length <= 512, "model.bert.sequence_length", "must be in [4, 512]")
        check(0 <= self.dropout < 1, "model.bert.dropout", "must be in [0, 1)")
        one_of(self.pooling, "model.bert.pooling", ("cls", "mean"))
        check(self.freeze_layers >= 0, "model.bert.freeze_layers", "must be >= 0")
        check(self.lora_rank is None or self.lora_rank > 0, "model.bert.lora_rank", "must be positive or null")
        check(not (self.lora_rank and (self.freeze_layers or self.freeze_embeddings)), "model.bert.lora_rank",
               "LoRA already freezes every original weight; drop freeze_layers / freeze_embeddings")
        check(self.projection is None or 0 < self.projection <= MAX_WIDTH, "model.bert.projection",
               f"must be in [1, {MAX_WIDTH}] or null")
        check(self.lora_rank is None or self.lora_rank <= MAX_WIDTH, "model.bert.lora_rank", f"must be at most {MAX_WIDTH}")


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
        check(0 < self.embedding_size <= MAX_WIDTH, "model.bi_encoder.embedding_size",
               f"must be in [1, {MAX_WIDTH}], got {self.embedding_size}")
        one_of(self.loss, "model.bi_encoder.loss", ("in_batch_softmax", "cosine_regression", "cosent"))
        check(self.temperature > 0, "model.bi_encoder.temperature", "must be positive")
        check(self.hard_negatives >= 0, "model.bi_encoder.hard_negatives", "must be >= 0")
        one_of(self.hard_negative_source, "model.bi_encoder.hard_negative_source", ("judged", "bm25", "model"))


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
    match_features: bool = False  # bilstm: the head also reads MatchFeatures of the raw pair
    bi_encoder: BiEncoderConfig = dataclasses.field(default_factory=BiEncoderConfig)
    bert: BertConfig = dataclasses.field(default_factory=BertConfig)

    def validate(self) -> None:
        one_of(self.family, "model.family", FAMILIES)
        self.bi_encoder.validate()
        self.bert.validate()
        one_of(self.head, "model.head", ("classification", "regression"))
        one_of(self.pooling, "model.pooling", ("last", "max", "mean"))
        check(not self.match_features or self.family == "bilstm", "model.match_features", "only bilstm reads it")
        for key in ("embedding_dim", "lstm_units", "hidden_units"):
            check(0 < getattr(self, key) <= MAX_WIDTH, f"model.{key}",
                   f"must be in [1, {MAX_WIDTH}], got {getattr(self, key)}")
        for key in ("dropout", "embedding_dropout"):
            check(0 <= getattr(self, key) < 1, f"model.{key}", "must be in [0, 1)")


@dataclasses.dataclass
class AdversarialConfig:
    """Adversarial training of cross-encoders on the token embeddings
    (:mod:`semmatch_tf.training.adversarial`): ``method`` ``none``, ``fgm`` (one step of size
    ``epsilon``) or ``pgd`` (``steps`` projected steps of ``step_size``, default ``epsilon / steps``,
    inside the ``epsilon`` ball)."""

    method: str = "none"
    epsilon: float = 1.0
    steps: int = 3
    step_size: float | None = None

    @property
    def enabled(self) -> bool:
        return self.method != "none"

    def validate(self) -> "AdversarialConfig":
        one_of(self.method, "training.adversarial.method", ("none", "fgm", "pgd"))
        check(self.epsilon >= 0, "training.adversarial.epsilon", f"must be >= 0, got {self.epsilon}")
        check(1 <= self.steps <= 100, "training.adversarial.steps", f"must be in [1, 100], got {self.steps}")
        check(self.step_size is None or self.step_size > 0, "training.adversarial.step_size",
               "must be positive or null (epsilon / steps)")
        return self


@dataclasses.dataclass
class AugmentationConfig:
    """Label-preserving augmentation of the training pairs (:mod:`semmatch_tf.augment`): ``copies``
    augmented copies of each training pair (0: off); per copy, each query word is swapped with its
    neighbour with probability ``swap``, dropped with ``drop`` (never the last word), given a
    keyboard typo with ``typo``, or replaced by a catalogue co-occurrence neighbour with
    ``neighbour``; the product title keeps its words, its fields may be reordered (``reorder``)."""

    copies: int = 0
    swap: float = 0.1
    drop: float = 0.1
    typo: float = 0.05
    neighbour: float = 0.0
    reorder: float = 0.0

    def validate(self) -> "AugmentationConfig":
        check(0 <= self.copies <= 20, "training.augmentation.copies", f"must be in [0, 20], got {self.copies}")
        for key in ("swap", "drop", "typo", "neighbour", "reorder"):
            check(0 <= getattr(self, key) <= 1, f"training.augmentation.{key}", "must be a probability in [0, 1]")
        return self


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
    compare_baseline: bool = True  # cross-encoders: the run vs TF-IDF + ridge/logreg (training.baseline_check)
    # Regression head: how a predicted grade becomes a class. nearest: the nearest class grade;
    # validation: cuts tuned for macro-F1 on the validation split, stored in the run's labels.json.
    class_cuts: str = "nearest"
    adversarial: AdversarialConfig = dataclasses.field(default_factory=AdversarialConfig)
    augmentation: AugmentationConfig = dataclasses.field(default_factory=AugmentationConfig)

    def validate(self) -> None:
        check_seed(self.seed, "training.seed")
        self.adversarial.validate()
        self.augmentation.validate()
        check(self.epochs > 0, "training.epochs", "must be positive")
        check(self.batch_size > 0, "training.batch_size", "must be positive")
        one_of(self.optimizer, "training.optimizer", ("adam", "adamw", "sgd"))
        check(self.learning_rate > 0, "training.learning_rate", "must be positive")
        one_of(self.schedule, "training.schedule", ("constant", "cosine", "linear"))
        check(0 <= self.warmup_fraction < 1, "training.warmup_fraction", "must be in [0, 1)")
        check(self.weight_decay >= 0, "training.weight_decay", "must be non-negative")
        check(self.weight_decay == 0 or self.optimizer in ("adamw", "sgd"), "training.weight_decay",
               "is applied by adamw or sgd (decoupled); with adam use optimizer: adamw")
        check(0 <= self.momentum < 1, "training.momentum", "must be in [0, 1)")
        check(self.clipnorm is None or self.clipnorm > 0, "training.clipnorm", "must be positive or null")
        check(self.early_stopping_patience is None or self.early_stopping_patience >= 0,
               "training.early_stopping_patience", "must be >= 0 or null")
        check(self.class_weights is None or self.class_weights == "balanced" or isinstance(self.class_weights, dict),
               "training.class_weights", "must be null, 'balanced' or a mapping {class: weight}")
        if isinstance(self.class_weights, dict):
            _check_class_weights(self.class_weights)
        check(0 <= self.token_dropout < 1, "training.token_dropout", "must be in [0, 1)")
        check(self.mined_negatives >= 0, "training.mined_negatives", "must be >= 0")
        check(self.mined_negative_depth >= max(1, self.mined_negatives), "training.mined_negative_depth",
               "must be at least 1 and at least training.mined_negatives")
        one_of(self.precision, "training.precision", ("auto", "float32", "mixed_float16", "mixed_bfloat16"))
        one_of(self.distribution, "training.distribution", ("auto", "default", "mirrored", "multi_worker"))
        check(self.steps_per_execution >= 1, "training.steps_per_execution", "must be at least 1")
        check(self.gradient_accumulation_steps is None or self.gradient_accumulation_steps >= 2,
               "training.gradient_accumulation_steps", "must be null or at least 2")
        check(self.jit_compile in (True, False, "auto"), "training.jit_compile", "must be true, false or auto")
        one_of(self.class_cuts, "training.class_cuts", ("nearest", "validation"))


def _check_class_weights(weights: dict) -> None:
    """An explicit mapping: class ids (>= 0) to finite, non-negative weights, not all zero."""
    for cls, weight in weights.items():
        key = f"training.class_weights.{cls}"
        whole = isinstance(cls, int) and not isinstance(cls, bool) and cls >= 0
        check(whole or (isinstance(cls, str) and cls.isdigit()), key,
               f"class ids must be integers >= 0, got {short(cls)}")
        check(isinstance(weight, (int, float)) and not isinstance(weight, bool), key,
               f"weight must be a number, got {short(weight)}")
        check(math.isfinite(weight) and weight >= 0, key, f"weight must be finite and >= 0, got {weight!r}")
    check(any(w > 0 for w in weights.values()), "training.class_weights", "needs at least one positive weight")


def monitor_choices(model: ModelConfig) -> tuple[str, ...]:
    """The values ``training.monitor`` may name for this model: its losses and validation metrics."""
    if family(model.family).is_bi_encoder:
        metrics = BI_ENCODER_METRICS.get(model.bi_encoder.loss, ())
    else:
        metrics = HEAD_METRICS.get(model.head, ())
    return ("loss", "val_loss", *(f"val_{name}" for name in metrics))


@dataclasses.dataclass
class RunConfig:
    """The whole run: what to read, how to tokenise, what to build, how to train.

    Args:
        data, text, model, training: the four sections of a config file (:class:`DataConfig`,
            :class:`TextConfig`, :class:`ModelConfig`, :class:`TrainingConfig`).

    Examples:
        >>> RunConfig.from_dict({"model": {"family": "bilstm"}, "training": {"epochs": 2}}).training.epochs
        2
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    def validate(self) -> "RunConfig":
        for section in (self.data, self.text, self.model, self.training):
            section.validate()
        check(self.training.class_weights is None or self.model.head == "classification",
               "training.class_weights", "apply to the classification head only")
        entry = family(self.model.family)
        check(self.training.class_cuts == "nearest" or (self.model.head == "regression" and not entry.is_bi_encoder),
               "training.class_cuts", "are tuned for a cross-encoder's regression head only")
        check(not self.training.mined_negatives or not entry.is_bi_encoder,
               "training.mined_negatives", "are for cross-encoders; bi-encoders mine theirs with "
               "model.bi_encoder.hard_negatives")
        check(not self.training.adversarial.enabled or not entry.is_bi_encoder, "training.adversarial",
               "is implemented for cross-encoders only")
        check(not self.training.augmentation.copies or not entry.is_bi_encoder, "training.augmentation",
               "is implemented for cross-encoders only")
        check(self.training.token_dropout == 0 or entry.supports_token_dropout, "training.token_dropout",
               f"is not implemented for the {entry.name} family")
        check(not self.text.length_buckets or entry.supports_length_buckets, "text.length_buckets",
               f"are not implemented for the {entry.name} family")
        check(not self.text.normalize_units or self.model.family == "bilstm", "text.normalize_units",
               f"is implemented for the bilstm family only, not {entry.name}")
        one_of(self.training.monitor, "training.monitor", monitor_choices(self.model))
        self._check_lengths()
        return self

    def _check_lengths(self) -> None:
        """BERT families read at most 512 positions; the text section's 4096 cap is for the BiLSTM."""
        if family(self.model.family).backbone != "bert":
            return
        cap = MAX_LENGTH["bert"]
        for key in ("query_length", "product_length"):
            value = getattr(self.text, key)
            check(value <= cap, f"text.{key}",
                   f"must be at most {cap} for the {self.model.family} family, got {value}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict | None) -> "RunConfig":
        sections = [f.name for f in dataclasses.fields(cls)]
        check(raw is None or isinstance(raw, dict), "config",
               f"must be a mapping with the sections {sections}, got {kind(raw)}")
        raw = dict(raw or {})
        unknown = sorted(map(str, set(raw) - set(sections)))
        check(not unknown, ", ".join(unknown), f"unknown section(s); expected {sorted(sections)}")
        hints = typing.get_type_hints(cls)
        built = {name: build_section(hints[name], {} if raw.get(name) is None else raw[name], name) for name in sections}
        return cls(**built).validate()
