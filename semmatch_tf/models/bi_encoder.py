"""Bi-encoders (two towers): queries and products embedded separately, compared by cosine.

Unlike a cross-encoder, a bi-encoder embeds every catalogue product once, offline; a search is then
one query embedding and a matrix product (see :mod:`semmatch_tf.retrieval`). The pieces follow
TF Recommenders' two-tower recipe, kept small and composable:

* a *text preprocessor* (a Keras layer: strings ``[B]`` -> the tower's input, e.g. token ids
  ``int32 [B, L]`` or BERT's ``{"token_ids", "padding_mask"}``) and a *tower* (a Keras model: that
  input -> ``float32 [B, D]`` unit vectors). Any such pair plugs in (dict inputs included, as a
  BERT tower's would be); :func:`build_bilstm_tower` builds the BiLSTM one;
* :class:`~semmatch_tf.models.two_tower.TwoTowerModel`, the training model (its own file);
* :class:`TwoTowerEncoder`, the inference view (preprocessors + towers) that embeds lists of texts
  in batches with a progress bar, as ``np.float32 [N, D]`` unit vectors.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from semmatch_tf.atomic import write_file_atomically
from semmatch_tf.compute import check_compute, compute_scope, per_object_function
from semmatch_tf.data.padding import trim_packed_padding
from semmatch_tf.data.pipeline import TRIMMED_CALL_COST, length_sorted_batches
from semmatch_tf.models.encoders import BiLSTMEncoder
from semmatch_tf.models.registry import BI_ENCODER, family
from semmatch_tf.models.bert import (BertPreprocessor, build_bert_tower, checkpoint_prefixes, checkpoint_tokenizer,
                                     fine_tunable_backbone, prefix_token_count, pretrained_backbone,
                                     resolve_checkpoint_path, side_prefixes)
from semmatch_tf.text import WordPieceTokenizer

#: Special tokens of the WordPiece ([PAD] ...) and SentencePiece (<s> ...) vocabularies we load.
SPECIAL_TOKENS = frozenset({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>"})


# -- towers ---------------------------------------------------------------------------------------
def build_bilstm_tower(vocabulary: list[str], text_config, model_config, *, sequence_length: int | None = None,
                       name: str = "bilstm_tower") -> tuple[keras.layers.Layer, keras.Model]:
    """``(tokenizer, tower)``: WordPiece ids -> BiLSTM -> pooling -> Dense -> L2 normalisation.

    The tokenizer pads/truncates to ``sequence_length`` (default ``text_config.product_length``);
    the tower accepts any length, so one tower can serve queries (short) and titles (long).
    Pooling is ``model_config.pooling`` (max or mean pool every token's state; "last" concatenates
    the final states). The projection to ``bi_encoder.embedding_size`` is linear: the cosine is
    taken on its L2-normalised output, in float32 even under mixed precision.
    """
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=sequence_length or text_config.product_length,
                                   lowercase=text_config.lowercase, strip_accents=text_config.strip_accents)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    encoder = BiLSTMEncoder(len(vocabulary), embedding_dim=model_config.embedding_dim,
                            units=model_config.lstm_units, pooling=model_config.pooling,
                            embedding_dropout=model_config.embedding_dropout, name="encoder")
    hidden = keras.layers.Dropout(model_config.dropout, name="dropout")(encoder(ids))
    projected = keras.layers.Dense(model_config.bi_encoder.embedding_size, name="projection")(hidden)
    vectors = keras.layers.UnitNormalization(dtype="float32", name="l2_normalise")(projected)
    return tokenizer, keras.Model(ids, vectors, name=name)


@dataclasses.dataclass
class Towers:
    """Both sides' preprocessors and towers (the same tower object twice when shared)."""

    query_preprocessor: Any
    query_tower: keras.Model
    product_preprocessor: Any
    product_tower: keras.Model

    @property
    def shared(self) -> bool:
        return self.query_tower is self.product_tower


def build_towers(model_config, text_config, *, vocabulary: list[str] | None) -> Towers:
    """The towers of the bi-encoder family ``model_config.family`` (its registry builder)."""
    entry = family(model_config.family)
    if entry.kind != BI_ENCODER:
        raise ValueError(f"model family {entry.name!r} is not a bi-encoder")
    return entry.build(model_config, text_config, vocabulary=vocabulary)


def build_bilstm_towers(model_config, text_config, *, vocabulary: list[str]) -> Towers:
    """The ``bilstm_bi_encoder`` family: one vocabulary, queries cut to ``text.query_length`` and
    titles to ``text.product_length``; shared or separate towers as ``bi_encoder.shared_towers``."""
    shared = model_config.bi_encoder.shared_towers
    query_pre, query_tower = build_bilstm_tower(vocabulary, text_config, model_config,
                                                sequence_length=text_config.query_length,
                                                name="tower" if shared else "query_tower")
    product_pre, product_tower = build_bilstm_tower(vocabulary, text_config, model_config,
                                                    sequence_length=text_config.product_length,
                                                    name="product_tower")
    return Towers(query_pre, query_tower, product_pre, query_tower if shared else product_tower)


def build_bert_towers(model_config, text_config, *, vocabulary: list[str] | None) -> Towers:
    """The ``bert_bi_encoder`` family (see :func:`_bert_towers`)."""
    return _bert_towers(model_config, text_config, vocabulary, model_config.bi_encoder.shared_towers)


def _bert_towers(model_config, text_config, vocabulary: list[str] | None, shared: bool) -> Towers:
    """BERT towers: mean pooling + L2 over a keras-hub backbone; queries packed to
    ``text.query_length`` tokens, titles to ``model.bert.sequence_length``."""
    bert = model_config.bert
    query_prefix, product_prefix = side_prefixes(bert)

    def tower(name: str):
        tokenizer, backbone = fine_tunable_backbone(bert, text_config, vocabulary)
        return tokenizer, build_bert_tower(backbone, projection=bert.projection, name=name)

    tokenizer, query_tower = tower("tower" if shared else "query_tower")
    product_tower = query_tower if shared else tower("product_tower")[1]
    query_length = text_config.query_length + 2 + prefix_token_count(tokenizer, query_prefix)
    query_pre = BertPreprocessor(tokenizer, sequence_length=min(query_length, bert.sequence_length),
                                 prefix=query_prefix, name="query_preprocessor")
    product_pre = BertPreprocessor(tokenizer, sequence_length=bert.sequence_length, prefix=product_prefix,
                                   name="product_preprocessor")
    return Towers(query_pre, query_tower, product_pre, product_tower)


# -- inference ------------------------------------------------------------------------------------
class TextEmbedder:
    """strings -> unit vectors with one preprocessor and one tower, traced once for any batch size.

    Calling the embedder is the eager, batched entry point: a list (or 1-D array, or eager
    ``tf.string`` tensor) of texts -> ``np.float32 [N, D]``. It batches in Python and returns NumPy,
    so it cannot run inside a ``tf.function``; graph code (a ``tf.function``, ``tf.data``) uses
    :meth:`embed_tensor`, the traced ``tf.string [B] -> float32 [B, D]`` function itself.
    """

    def __init__(self, preprocessor, tower, compute: str = "float32") -> None:
        """``compute="bfloat16"``: run the traced graph through oneDNN's bf16 rewrite
        (:mod:`semmatch_tf.compute`; faster on CPUs with bf16 units, within cosine 0.9999 of float32)."""
        self.preprocessor = preprocessor
        self.tower = tower
        self.compute = check_compute(compute)
        self._embed = per_object_function(self._graph, [tf.TensorSpec([None], tf.string)])

    def _graph(self, texts: tf.Tensor) -> tf.Tensor:
        features = trim_packed_padding(self.preprocessor(texts))  # BERT towers: no all-padding columns
        return tf.cast(self.tower(features, training=False), tf.float32)

    def embed_tensor(self, texts: tf.Tensor) -> tf.Tensor:
        """``tf.string [B]`` -> ``float32 [B, D]`` unit vectors; eager or inside a ``tf.function``."""
        with compute_scope(self.compute):
            return self._embed(texts)

    def known_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """How many in-vocabulary tokens each text has of its own (not counting special tokens,
        ``[UNK]`` or the preprocessor's prefix): 0 means the tower sees nothing but padding and
        unknowns, so its vector says nothing about the text (e.g. a script the vocabulary lacks)."""
        def count(batch: list[str]) -> np.ndarray:
            features = self.preprocessor(tf.constant(batch, tf.string))
            ids = features["token_ids"] if isinstance(features, dict) else features
            ids = ids.to_tensor() if isinstance(ids, tf.RaggedTensor) else ids
            return (~np.isin(ids.numpy(), self._special_ids())).sum(axis=1)

        texts = text_list(texts)
        return count(texts) - count([""])[0] if texts else np.zeros(0, np.int64)

    def _special_ids(self) -> np.ndarray:
        if not hasattr(self, "_specials"):
            vocabulary = self.preprocessor.vocabulary
            self._specials = np.asarray([i for i, token in enumerate(vocabulary) if token in SPECIAL_TOKENS])
        return self._specials

    @property
    def dims(self) -> int:
        return int(self.tower.output_shape[-1])

    def __call__(self, texts: Sequence[str] | np.ndarray | tf.Tensor, *, batch_size: int = 256,
                 progress: bool = False, description: str = "embedding") -> np.ndarray:
        """``np.float32 [len(texts), D]`` in input order; a progress bar over batches when ``progress``.

        Texts are batched longest first (:func:`~semmatch_tf.data.pipeline.length_sorted_batches`)
        so that each BERT batch is trimmed to little padding (``batch_size`` is then a maximum: texts
        of very different lengths go in several batches); the order does not change a vector.
        """
        if not tf.executing_eagerly():
            raise TypeError("TextEmbedder batches in Python and returns NumPy, so it cannot run inside a "
                            "tf.function (there its texts are a symbolic tensor); call embed_tensor() there (for a "
                            "TwoTowerEncoder: query_embedder.embed_tensor / product_embedder.embed_tensor)")

        texts = text_list(texts)
        vectors = np.zeros((len(texts), self.dims), np.float32)
        batches = inference_batches(np.fromiter(map(len, texts), np.int64, len(texts)), batch_size, self.preprocessor)
        strings = np.asarray(texts, dtype=object)
        for rows in progress_over(batches, description, enabled=progress):
            vectors[rows] = self.embed_tensor(tf.constant(strings[rows], tf.string)).numpy()
        return vectors


def text_list(texts: Sequence[str] | np.ndarray | tf.Tensor) -> list[str]:
    """``texts`` as a list of Python strings, checked: what :class:`TextEmbedder` embeds.

    Accepts a sequence or 1-D array of ``str`` or UTF-8 ``bytes`` (NumPy string arrays, the
    ``.numpy()`` of a ``tf.string`` tensor) or an eager ``tf.string`` tensor; other scalars (numbers)
    become ``str(value)``. Refused, rather than embedded as something else: a single string (it
    would be embedded character by character) and a missing value (None, NaN, ``pd.NA``, which
    ``str()`` would turn into the text "nan").
    """
    if tf.is_tensor(texts):
        texts = texts.numpy()
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"expected a sequence of texts, got a single {type(texts).__name__}: wrap it in a list")
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"expected a 1-D array of texts, got shape {texts.shape}")
        texts = texts.tolist()
    return [_one_text(value, position) for position, value in enumerate(texts)]


def _one_text(value: Any, position: int) -> str:
    """One text as ``str``: bytes decoded as UTF-8, missing values refused (see :func:`text_list`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        raise ValueError(f"text {position} is missing ({value!r}); fill or drop missing texts before embedding")
    return str(value)


def inference_batches(lengths: np.ndarray, batch_size: int, preprocessor) -> list[np.ndarray]:
    """:func:`~semmatch_tf.data.pipeline.length_sorted_batches` for a model fed by ``preprocessor``:
    BERT inputs are trimmed per batch, so their batches are also cut where a call repays the padding
    it saves (:data:`~semmatch_tf.data.pipeline.TRIMMED_CALL_COST`); others are cut every ``batch_size``."""
    call_cost = TRIMMED_CALL_COST if isinstance(preprocessor, BertPreprocessor) else None
    return length_sorted_batches(lengths, batch_size, call_cost)


def progress_over(steps: Sequence, description: str, *, enabled: bool):
    """``steps`` with a progress bar when ``enabled``: tqdm (it comes with keras-hub's
    dependencies; on stderr), else keras' Progbar."""
    if not enabled:
        return steps
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _progbar(steps)
    return tqdm(steps, desc=description, unit="batch")


def _progbar(steps: Sequence):
    bar = keras.utils.Progbar(len(steps), unit_name="batch")
    for done, step in enumerate(steps, start=1):
        yield step
        bar.update(done)


@dataclasses.dataclass
class TwoTowerEncoder:
    """A trained bi-encoder for inference: ``embed_queries`` / ``embed_products`` -> unit vectors.

    Attribute names match what ``semmatch_tf.export.BiEncoderParts`` needs (towers as
    ``query_encoder`` / ``product_encoder`` via the properties below).
    """

    query_preprocessor: Any
    query_tower: keras.Model
    product_preprocessor: Any
    product_tower: keras.Model
    meta: dict = dataclasses.field(default_factory=dict)
    run_dir: Path | None = None
    compute: str = "float32"  # or "bfloat16" (semmatch_tf.compute), for both towers

    def __post_init__(self) -> None:
        self._query = TextEmbedder(self.query_preprocessor, self.query_tower, self.compute)
        self._product = TextEmbedder(self.product_preprocessor, self.product_tower, self.compute)

    @classmethod
    def from_towers(cls, towers: Towers, meta: dict | None = None, run_dir: Path | None = None) -> "TwoTowerEncoder":
        return cls(towers.query_preprocessor, towers.query_tower, towers.product_preprocessor,
                   towers.product_tower, dict(meta or {}), run_dir)

    @property
    def dims(self) -> int:
        return self._product.dims

    @property
    def query_embedder(self) -> TextEmbedder:
        """The query side as a :class:`TextEmbedder` (``embed_tensor`` for use in a ``tf.function``)."""
        return self._query

    @property
    def product_embedder(self) -> TextEmbedder:
        """The product side as a :class:`TextEmbedder`."""
        return self._product

    @property
    def query_encoder(self) -> keras.Model:
        return self.query_tower

    @property
    def product_encoder(self) -> keras.Model:
        return self.product_tower

    def embed_queries(self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        return self._query(texts, batch_size=batch_size, progress=progress, description="queries")

    def embed_products(self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        return self._product(texts, batch_size=batch_size, progress=progress, description="products")

    def query_known_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """In-vocabulary tokens per query (see :meth:`TextEmbedder.known_tokens`)."""
        return self._query.known_tokens(texts)


def save_layer(layer, path: Path) -> None:
    """Save a preprocessor layer on its own as ``.keras`` (atomically); it has no weights to build."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has not yet been built.*")
        write_file_atomically(Path(path), lambda temporary: keras.saving.save_model(layer, temporary))


def pretrained_encoder(checkpoint: str = "multilingual-e5-small", *, query_length: int = 64,
                       product_length: int = 128, query_prefix: str | None = None,
                       product_prefix: str | None = None, symmetric: bool = False,
                       compute: str = "float32") -> TwoTowerEncoder:
    """A pretrained sentence encoder used as it is (zero-shot): one shared BERT tower, mean pooling.

    Args:
        checkpoint: a known name (``multilingual-e5-small``, ``all-minilm-l6-v2``) or a local
            checkpoint directory (see :mod:`semmatch_tf.weights`).
        query_length, product_length: packed lengths (tokens, specials and prefix included).
        query_prefix, product_prefix: text prefixes; None: the checkpoint's own (e5: ``"query: "``
            / ``"passage: "``), none for checkpoints that name none.
        symmetric: give products the query prefix too, as e5 advises for symmetric tasks (sentence
            similarity, translation retrieval) as opposed to query -> passage search.
        compute: "bfloat16" embeds through oneDNN's bf16 graph rewrite (:mod:`semmatch_tf.compute`).

    Returns:
        A :class:`TwoTowerEncoder` whose ``embed_queries`` / ``embed_products`` give unit vectors.

    Example:
        >>> encoder = pretrained_encoder("multilingual-e5-small")            # doctest: +SKIP
        >>> queries = encoder.embed_queries(["苹果手机", "manzana"])          # doctest: +SKIP
        >>> products = encoder.embed_products(["Apple iPhone 15", "Fresh apples 1 kg"])  # doctest: +SKIP
        >>> (queries @ products.T).argmax(axis=1).tolist()                  # doctest: +SKIP
        [0, 1]
    """
    path = resolve_checkpoint_path(checkpoint)
    known = checkpoint_prefixes(path)
    query_prefix = known.get("query", "") if query_prefix is None else query_prefix
    product_prefix = query_prefix if symmetric else (known.get("passage", "") if product_prefix is None else product_prefix)
    tokenizer = checkpoint_tokenizer(path, strip_accents=True)
    tower = build_bert_tower(pretrained_backbone(path), name="tower")
    return TwoTowerEncoder(BertPreprocessor(tokenizer, sequence_length=query_length, prefix=query_prefix,
                                            name="query_preprocessor"), tower,
                           BertPreprocessor(tokenizer, sequence_length=product_length, prefix=product_prefix,
                                            name="product_preprocessor"), tower,
                           {"family": "pretrained", "checkpoint": str(checkpoint), "path": str(path),
                            "prefixes": {"query": query_prefix, "product": product_prefix}}, compute=compute)
