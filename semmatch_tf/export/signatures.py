"""The signatures an export serves, each a :class:`Signature`: string-vector inputs, a traced
function, and an in-process Keras reference the export's metadata and
:func:`semmatch_tf.export.check.check_export` compare the SavedModel against.

A cross-encoder serves ``serving_default(query, product)`` -> scores / probabilities / label; a
bi-encoder ``embed_query`` / ``embed_product`` and, with a frozen catalogue, ``search(query)``.
:mod:`semmatch_tf.export.savedmodel` writes them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from semmatch_tf.data.padding import trim_packed_padding

#: String outputs whose reference value lies within this margin of a tie may legitimately differ
#: between Keras and the SavedModel (float32 rounding picks the other class).
TIE_MARGIN = 1e-4

#: Sample texts for warm-up and checks: every script we serve, emoji, invisible characters, the
#: empty string and a text far longer than any sequence length (it must be truncated, not fail).
SAMPLE_QUERIES: tuple[str, ...] = (
    "red running shoes",
    "zapatillas café talla 42",
    "无线蓝牙耳机",
    "ランニングシューズ ガ",
    "حذاء رياضي",
    "👟🔥",
    "",
    "노트북 거치대",
    "usb\u200bcable",
)
SAMPLE_PRODUCTS: tuple[str, ...] = (
    "Nike Air Zoom Pegasus 40 men's running shoe, red",
    "Zapatillas Ñandú con tacón — edición café",
    "华为 FreeBuds 5i 真无线降噪蓝牙耳机",
    "アシックス ゲルカヤノ ３０ ランニングシューズ（メンズ）",
    "حذاء رياضي للرجال باللون الأحمر",
    "Sneakers 👟 with 🔥 flames 🇯🇵",
    "",
    "braided usb-c charging cable 2m " * 300 + "x" * 300,
    "\ufeffUSB cable",
)


# -- signatures ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Signature:
    """One serving signature: named ``tf.string [None]`` inputs -> a dict of output tensors.

    Attributes:
        name: signature key (``serving_default``, ``embed_query``, ...).
        inputs: input names, in the order ``fn`` takes them.
        fn: the graph function (traced by ExportArchive with the string specs).
        reference: the same computation through the in-process Keras objects, used to record the
            expected outputs of the samples: ``inputs -> (outputs, ambiguous)`` where ``ambiguous``
            marks string outputs that sit on a tie (see :data:`TIE_MARGIN`).
        samples: sample requests (warm-up and checks), each ``{input name: [texts]}``.
    """

    name: str
    inputs: tuple[str, ...]
    fn: Callable[..., dict[str, tf.Tensor]]
    reference: Callable[[dict[str, list[str]]], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]
    samples: list[dict[str, list[str]]]


def sample_requests(inputs: Sequence[str], texts: dict[str, Sequence[str]]) -> list[dict[str, list[str]]]:
    """Two requests per signature: a batch of one and the whole sample batch."""
    full = {name: list(texts[name]) for name in inputs}
    return [{name: values[:1] for name, values in full.items()}, full]


def _string_specs(names: Sequence[str]) -> list[tf.TensorSpec]:
    return [tf.TensorSpec([None], tf.string, name=name) for name in names]


def _class_of_grade(grades: tf.Tensor, boundaries: tf.Tensor) -> tf.Tensor:
    """In-graph ``LabelScheme.class_of_grade``: the class between ``boundaries`` (the run's tuned
    cuts or the halfway points between class grades); a grade on a boundary goes to the better class.
    Counted with comparisons rather than ``tf.searchsorted``, whose ``UpperBound`` op is not in the
    TF Serving builds this project checks against."""
    return tf.reduce_sum(tf.cast(grades[:, None] >= boundaries[None, :], tf.int32), axis=1)


def cross_encoder_fn(matcher) -> Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]:
    """``(query, product) -> {scores [B], probabilities [B, C] or [B, 1], label [B]}`` in TF ops.

    ``scores`` is the predicted grade (the ranking score): the expected grade under the softmax, or
    the regression output mapped back onto the grade range. ``label`` is the class name of the
    argmax, or of the class the predicted grade falls in (``LabelScheme.class_of_grade``).
    """
    preprocessor, model, labels, head = matcher.preprocessor, matcher.model, matcher.labels, matcher.head
    low, high = labels.grade_range

    def serve(query: tf.Tensor, product: tf.Tensor) -> dict[str, tf.Tensor]:
        # A loaded signature called with a [B, 1] or [2, 2] tensor is not refused by TensorFlow
        # itself (it falls back to a flat call): the tokenizer would flatten it into B*k rows.
        query, product = tf.ensure_shape(query, [None]), tf.ensure_shape(product, [None])
        names = tf.constant(list(labels.names), tf.string)
        class_grades = tf.constant(labels.grades, tf.float32)
        tf.debugging.assert_equal(tf.shape(query)[0], tf.shape(product)[0],
                                  message="query and product need the same batch size")
        features = trim_packed_padding(preprocessor({"query": query, "product": product}))  # BERT: no dead columns
        outputs = tf.cast(model(features, training=False), tf.float32)
        if head == "classification":
            scores = tf.linalg.matvec(outputs, class_grades)
            classes = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        else:
            scores = outputs[:, 0] * (high - low) + low
            classes = _class_of_grade(scores, tf.constant(labels.boundaries, tf.float32))
        return {"scores": scores, "probabilities": outputs, "label": tf.gather(names, classes)}

    return serve


def cross_encoder_reference(matcher, inputs: dict[str, list[str]]) -> tuple[dict, dict]:
    """The serving outputs computed the Keras way (``TrainedMatcher.predict_outputs`` / ``score``)."""
    labels = matcher.labels
    outputs = np.asarray(matcher.predict_outputs(inputs["query"], inputs["product"]), np.float64)
    from semmatch_tf.models.heads import predicted_grades

    scores = predicted_grades(outputs, matcher.head, labels) if len(outputs) else np.zeros(0)
    if matcher.head == "classification":
        classes = outputs.argmax(axis=-1) if len(outputs) else np.zeros(0, np.int64)
        ordered = np.sort(outputs, axis=-1)
        margin = ordered[:, -1] - ordered[:, -2] if len(outputs) else np.zeros(0)
    else:
        classes = labels.class_of_grade(scores) if len(scores) else np.zeros(0, np.int64)
        margin = np.abs(scores[:, None] - labels.boundaries[None, :]).min(axis=1) if len(scores) else np.zeros(0)
    label = np.asarray([labels.names[c] for c in classes], dtype=object)
    return ({"scores": scores, "probabilities": outputs, "label": label},
            {"label": margin <= TIE_MARGIN})


def cross_encoder_signatures(matcher) -> list[Signature]:
    texts = {"query": SAMPLE_QUERIES, "product": SAMPLE_PRODUCTS}
    return [Signature("serving_default", ("query", "product"), cross_encoder_fn(matcher),
                      lambda inputs: cross_encoder_reference(matcher, inputs),
                      sample_requests(("query", "product"), texts))]


# -- bi-encoders ---------------------------------------------------------------------------------
@dataclasses.dataclass
class BiEncoderParts:
    """The generic two-tower interface the bi-encoder export needs.

    Attributes:
        query_encoder / product_encoder: Keras layers or models, token ids ``[B, L]`` -> ``[B, D]``
            (they may be the same object for a shared tower).
        query_preprocessor: strings ``[B]`` -> token ids ``[B, Lq]`` (e.g. a ``WordPieceTokenizer``
            with ``sequence_length``); any callable made of TF ops works, a Keras layer is tracked.
        product_preprocessor: as above for product texts; defaults to ``query_preprocessor``.
        metadata: extra facts for ``semmatch_metadata.json`` (vocabulary hash, lengths, ...).
    """

    query_encoder: Callable
    product_encoder: Callable
    query_preprocessor: Callable
    product_preprocessor: Callable | None = None
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.product_preprocessor is None:
            self.product_preprocessor = self.query_preprocessor

    def embed(self, side: str, texts: tf.Tensor) -> tf.Tensor:
        """float32 embeddings of one side's texts (graph or eager)."""
        encoder = self.query_encoder if side == "query" else self.product_encoder
        preprocess = self.query_preprocessor if side == "query" else self.product_preprocessor
        texts = tf.ensure_shape(texts, [None])  # a [B, k] tensor would be flattened (see cross_encoder_fn)
        ids = trim_packed_padding(preprocess(texts))  # BERT towers: no all-padding columns
        vectors = encoder(ids, training=False) if isinstance(encoder, keras.layers.Layer) else encoder(ids)
        return tf.cast(vectors, tf.float32)

    def embed_numpy(self, side: str, texts: Sequence[str], batch_size: int = 1024) -> np.ndarray:
        parts = [self.embed(side, tf.constant(list(texts[i:i + batch_size]), tf.string)).numpy()
                 for i in range(0, len(texts), batch_size)]
        if not parts:
            width = int(self.embed(side, tf.constant(["x"])).shape[-1])
            return np.zeros((0, width), np.float32)
        return np.concatenate(parts)


def as_bi_encoder(encoder) -> BiEncoderParts:
    """A :class:`BiEncoderParts` from any object with ``query_encoder``, ``product_encoder``,
    ``query_preprocessor`` and ``product_preprocessor`` attributes (such as
    ``semmatch_tf.models.bi_encoder.TwoTowerEncoder``), adding what the preprocessors tell about
    the vocabulary and sequence lengths to the metadata."""
    if isinstance(encoder, BiEncoderParts):
        return encoder
    metadata = dict(getattr(encoder, "metadata", None) or getattr(encoder, "meta", None) or {})
    query_pre, product_pre = encoder.query_preprocessor, encoder.product_preprocessor
    if hasattr(query_pre, "vocabulary_sha256"):
        metadata.setdefault("vocabulary_sha256", query_pre.vocabulary_sha256)
        metadata.setdefault("vocabulary_size", query_pre.vocabulary_size)
    lengths = {side: getattr(pre, "sequence_length", None) for side, pre in (("query", query_pre),
                                                                             ("product", product_pre))}
    if any(lengths.values()):
        metadata.setdefault("sequence_lengths", lengths)
    return BiEncoderParts(encoder.query_encoder, encoder.product_encoder, query_pre, product_pre, metadata)


class CatalogueIndex(keras.layers.Layer):
    """Product embeddings frozen into the export. Stored as a (non-trainable) weight rather than a
    graph constant, because graph protos are capped at 2 GiB and catalogues are not."""

    def __init__(self, embeddings: np.ndarray, **kwargs) -> None:
        super().__init__(trainable=False, **kwargs)
        self.embeddings = self.add_weight(shape=embeddings.shape, initializer="zeros", trainable=False,
                                          dtype="float32", name="catalogue_embeddings")
        self.embeddings.assign(embeddings.astype(np.float32))
        self.built = True

    def call(self, queries):
        return tf.matmul(queries, self.embeddings, transpose_b=True)


def _top_k_reference(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[dict, dict]:
    """Top-k ids and scores, best first; an id is ambiguous when its score ties (within
    :data:`TIE_MARGIN`) with its neighbour in the ranking, including the first one left out."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order[:, :k + 1], axis=1)
    gaps = np.full((len(scores), k), np.inf)
    if ranked.shape[1] > 1:
        neighbour = np.abs(np.diff(ranked, axis=1))  # [B, min(k, N-1)]
        gaps[:, :neighbour.shape[1]] = neighbour[:, :k]
        gaps[:, 1:] = np.minimum(gaps[:, 1:], neighbour[:, :k - 1])
    return ({"product_ids": ids[order[:, :k]], "scores": ranked[:, :k]}, {"product_ids": gaps <= TIE_MARGIN})


def bi_encoder_signatures(encoder: BiEncoderParts, catalogue: tuple[Sequence[str], Sequence[str]] | None,
                          top_k: int) -> tuple[list[Signature], list]:
    """``embed_query(text)``, ``embed_product(text)`` -> ``{"embedding"}``, and with a catalogue
    ``search(query)`` -> ``{"product_ids" [B, k], "scores" [B, k]}`` (dot product, best first)."""
    texts = {"text": SAMPLE_QUERIES + SAMPLE_PRODUCTS, "query": SAMPLE_QUERIES}

    def embedder(side: str) -> Signature:
        def fn(text: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"embedding": encoder.embed(side, text)}

        def reference(inputs: dict[str, list[str]]) -> tuple[dict, dict]:
            return {"embedding": encoder.embed_numpy(side, inputs["text"])}, {}

        return Signature(f"embed_{side}", ("text",), fn, reference, sample_requests(("text",), texts))

    signatures, extra_tracked = [embedder("query"), embedder("product")], []
    if catalogue is not None:
        product_ids, product_texts = list(catalogue[0]), list(catalogue[1])
        if not product_ids or len(product_ids) != len(product_texts):
            raise ValueError(f"catalogue needs aligned, non-empty ids and texts "
                             f"(got {len(product_ids)} ids, {len(product_texts)} texts)")
        index = CatalogueIndex(encoder.embed_numpy("product", product_texts), name="catalogue")
        k = min(top_k, len(product_ids))
        id_array = np.asarray(product_ids, dtype=object)

        def search(query: tf.Tensor) -> dict[str, tf.Tensor]:
            top = tf.math.top_k(index(encoder.embed("query", query)), k=k)
            return {"product_ids": tf.gather(tf.constant(product_ids, tf.string), top.indices),
                    "scores": top.values}

        def search_reference(inputs: dict[str, list[str]]) -> tuple[dict, dict]:
            scores = encoder.embed_numpy("query", inputs["query"]).astype(np.float64) \
                @ index.embeddings.numpy().astype(np.float64).T
            return _top_k_reference(scores, id_array, k)

        signatures.append(Signature("search", ("query",), search, search_reference,
                                    sample_requests(("query",), texts)))
        extra_tracked.append(index)
    return signatures, extra_tracked


def _jsonable(value: np.ndarray) -> list:
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        return [_jsonable(v) if isinstance(v, np.ndarray) else (v.decode() if isinstance(v, bytes) else str(v))
                for v in array]
    return array.astype(np.float64).tolist()


def reference_records(reference: Callable, requests: list[dict[str, list[str]]]) -> list[dict]:
    """``{"inputs", "expected", "ambiguous"}`` per request, from ONE reference call over all rows
    (references are row-wise; one Keras predict instead of one per request)."""
    names = list(requests[0])
    merged = {name: [text for request in requests for text in request[name]] for name in names}
    outputs, ambiguous = reference(merged)
    records, start = [], 0
    for request in requests:
        rows = slice(start, start + len(request[names[0]]))
        start = rows.stop
        records.append({"inputs": request,
                        "expected": {k: _jsonable(np.asarray(v)[rows]) for k, v in outputs.items()},
                        "ambiguous": {k: np.asarray(v)[rows].tolist() for k, v in ambiguous.items()}})
    return records
