"""The two tasks a search team trains and uses: :class:`CrossEncoder` and :class:`BiEncoder`.

As keras-hub's Task and sentence-transformers' ``CrossEncoder`` / ``SentenceTransformer``, each
object owns the whole life of its model: ``fit`` (train a config into a run directory, resuming a
killed run), ``load`` (a finished run), ``predict`` / ``rank`` or ``encode``, ``evaluate`` and
``export`` (a versioned SavedModel for TF Serving). Texts go in as plain strings: tokenisation is
inside the model's graph. The functions underneath (``training.trainer.train``,
``runs.load_run``, ``export.export_model``...) stay available for finer control.

Examples:

>>> from semmatch_tf import CrossEncoder, load_config
>>> config = load_config("configs/lcqmc_bilstm.yaml")            # doctest: +SKIP
>>> model = CrossEncoder.fit(config, "runs/lcqmc")                 # doctest: +SKIP
>>> model.rank("红色 连衣裙", ["红色长裙", "蓝色牛仔裤"])          # doctest: +SKIP
[{'corpus_id': 0, 'score': 2.71, 'text': '红色长裙'}, {'corpus_id': 1, 'score': 1.12, 'text': '蓝色牛仔裤'}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from semmatch_tf import runs
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.export.savedmodel import export_bi_encoder, export_model
from semmatch_tf.models.bi_encoder import TwoTowerEncoder, pretrained_encoder, text_list
from semmatch_tf.models.registry import family
from semmatch_tf.training.bi_encoder_evaluation import evaluate_bi_encoder
from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.trainer import train


def _check_kind(config: RunConfig, *, bi_encoder: bool, task: str) -> None:
    entry = family(config.model.family)
    if entry.is_bi_encoder != bi_encoder:
        other = "BiEncoder" if entry.is_bi_encoder else "CrossEncoder"
        raise ValueError(f"model.family {entry.name!r} is a {entry.kind.replace('_', '-')}: use {other}.fit, "
                         f"not {task}.fit")


def _ranked(scores: np.ndarray, documents: list[str], top_k: int | None) -> list[dict]:
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [{"corpus_id": int(i), "score": float(scores[i]), "text": documents[i]} for i in order]


class CrossEncoder:
    """A trained cross-encoder: reads a query and a product together and scores the pair.

    Args:
        matcher: a loaded run (:class:`semmatch_tf.runs.TrainedMatcher`); usually made by
            :meth:`load` or :meth:`fit`.

    Examples:

    >>> from semmatch_tf import CrossEncoder
    >>> model = CrossEncoder.load("runs/demo")                       # doctest: +SKIP
    >>> model.predict([("red dress", "Red summer dress"), ("red dress", "USB cable")])  # doctest: +SKIP
    array([2.8, 1.1], dtype=float32)
    """

    def __init__(self, matcher: runs.TrainedMatcher) -> None:
        self.matcher = matcher

    @classmethod
    def load(cls, run_dir: str | Path, *, compute: str = "float32") -> "CrossEncoder":
        """A finished cross-encoder run directory (``semmatch-tf train`` output).

        Args:
            compute: "bfloat16" predicts through oneDNN's bf16 graph rewrite (faster on CPUs with
                AVX-512 BF16 or AMX; outputs within cosine 0.999 of float32; :mod:`semmatch_tf.compute`).
        """
        return cls(runs.load_run(run_dir, compute))

    @classmethod
    def fit(cls, config: RunConfig, run_dir: str | Path, *, verbose: int = 1) -> "CrossEncoder":
        """Train ``config`` into ``run_dir`` (a killed run there resumes), then load the result.

        Args:
            config: a validated run config (:func:`semmatch_tf.load_config`) of a cross-encoder family.
            run_dir: the run directory; one training process at a time may hold it.
            verbose: Keras' fit verbosity.
        """
        _check_kind(config, bi_encoder=False, task="CrossEncoder")
        train(config, run_dir, verbose=verbose)
        return cls.load(run_dir)

    @property
    def head(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.matcher.head

    @property
    def labels(self):
        """The run's :class:`~semmatch_tf.data.schema.LabelScheme` (class names and grades)."""
        return self.matcher.labels

    @property
    def run_dir(self) -> Path | None:
        return self.matcher.run_dir

    def predict(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 256) -> np.ndarray:
        """The predicted grade of each ``(query, product)`` pair, on the data's grade scale."""
        pairs = list(pairs)
        return self.matcher.score([q for q, _ in pairs], [p for _, p in pairs], batch_size)

    def predict_proba(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``[N, C]`` (classification head; a regression head gives ``[N, 1]``
        unit grades)."""
        pairs = list(pairs)
        return self.matcher.predict_outputs([q for q, _ in pairs], [p for _, p in pairs], batch_size)

    def rank(self, query: str, documents: Sequence[str], *, top_k: int | None = None,
             batch_size: int = 256) -> list[dict]:
        """``documents`` ordered by score for ``query``: ``[{"corpus_id", "score", "text"}]``, best first."""
        documents = text_list(documents)
        scores = self.matcher.score([query] * len(documents), documents, batch_size)
        return _ranked(np.asarray(scores), documents, top_k)

    def evaluate(self, dataset: PairDataset, *, batch_size: int = 256) -> dict:
        """The report ``semmatch-tf evaluate`` writes: classification / regression / ranking metrics,
        overall and per language."""
        return self.matcher.evaluate(dataset, batch_size)

    def export(self, base_dir: str | Path, *, name: str = "semmatch", version: int | None = None,
               force: bool = False) -> Path:
        """A SavedModel for TF Serving at ``base_dir/name/version`` (raw-string signature)."""
        return export_model(self.matcher, base_dir, name=name, version=version, force=force)


class BiEncoder:
    """A two-tower encoder: embeds queries and products apart, so a catalogue is embedded once.

    Args:
        encoder: a :class:`~semmatch_tf.models.bi_encoder.TwoTowerEncoder`; usually made by
            :meth:`load`, :meth:`pretrained` or :meth:`fit`.

    Examples:

    >>> from semmatch_tf import BiEncoder
    >>> model = BiEncoder.pretrained("multilingual-e5-small")       # doctest: +SKIP
    >>> model.encode(["红色连衣裙"], side="query").shape              # doctest: +SKIP
    (1, 384)
    >>> model.rank("红色连衣裙", ["vestido rojo", "cable USB"])[0]["text"]  # doctest: +SKIP
    'vestido rojo'
    """

    def __init__(self, encoder: TwoTowerEncoder) -> None:
        self.encoder = encoder

    @classmethod
    def load(cls, run_dir: str | Path, *, compute: str = "float32") -> "BiEncoder":
        """A finished bi-encoder run directory (``compute``: as in :meth:`CrossEncoder.load`)."""
        return cls(runs.load_bi_encoder(run_dir, compute))

    @classmethod
    def pretrained(cls, checkpoint: str = "multilingual-e5-small", **options) -> "BiEncoder":
        """A pretrained sentence encoder used zero-shot (see
        :func:`~semmatch_tf.models.bi_encoder.pretrained_encoder` for ``options``)."""
        return cls(pretrained_encoder(checkpoint, **options))

    @classmethod
    def fit(cls, config: RunConfig, run_dir: str | Path, *, verbose: int = 1) -> "BiEncoder":
        """Train a ``*_bi_encoder`` config into ``run_dir`` (resuming a killed run), then load it."""
        _check_kind(config, bi_encoder=True, task="BiEncoder")
        train(config, run_dir, verbose=verbose)
        return cls.load(run_dir)

    @property
    def dims(self) -> int:
        return self.encoder.dims

    def encode(self, texts: Sequence[str], *, side: str = "query", batch_size: int = 256,
               progress: bool = False) -> np.ndarray:
        """Unit-length embeddings ``[N, dims]`` of ``texts`` through the ``"query"`` or ``"product"`` tower."""
        if side == "query":
            return self.encoder.embed_queries(texts, batch_size=batch_size, progress=progress)
        if side == "product":
            return self.encoder.embed_products(texts, batch_size=batch_size, progress=progress)
        raise ValueError(f"side must be 'query' or 'product', got {side!r}")

    def similarity(self, queries: Sequence[str], products: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Cosine of each aligned ``(query, product)`` pair."""
        queries, products = text_list(queries), text_list(products)
        if len(queries) != len(products):
            raise ValueError(f"{len(queries)} queries but {len(products)} products")
        return np.sum(self.encode(queries, batch_size=batch_size)
                      * self.encode(products, side="product", batch_size=batch_size), axis=1)

    def rank(self, query: str, documents: Sequence[str], *, top_k: int | None = None) -> list[dict]:
        """``documents`` ordered by cosine to ``query``: ``[{"corpus_id", "score", "text"}]``, best first."""
        documents = text_list(documents)
        scores = self.encode(documents, side="product") @ self.encode([query])[0]
        return _ranked(scores, documents, top_k)

    def evaluate(self, dataset: PairDataset) -> dict:
        """Ranking metrics of each query's judged products ordered by cosine (as a bi-encoder run's report)."""
        return evaluate_bi_encoder(self.encoder, dataset)

    def export(self, base_dir: str | Path, *, name: str = "semmatch_bi", version: int | None = None,
               force: bool = False, catalogue: tuple[Sequence[str], Sequence[str]] | None = None,
               top_k: int = 10) -> Path:
        """A SavedModel with ``embed_query`` / ``embed_product`` (and ``search`` over a frozen
        ``catalogue=(ids, titles)``) at ``base_dir/name/version``."""
        return export_bi_encoder(self.encoder, base_dir, name=name, version=version, force=force,
                                 catalogue=catalogue, top_k=top_k)
