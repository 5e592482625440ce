"""The :class:`CrossEncoder` task (imported from :mod:`semmatch_tf.tasks` or ``semmatch_tf``).

The examples load ``tests/fixtures/runs/bilstm_v0_1``, a tiny BiLSTM run of the repository (run
them from its root); any run directory or :meth:`CrossEncoder.save` output works the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from semmatch_tf import runs
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.export.savedmodel import export_model
from semmatch_tf.models.bi_encoder import text_list
from semmatch_tf.tasks.presets import check_kind, names_checkpoint, ranked, save_preset
from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.trainer import train


class CrossEncoder:
    """A trained cross-encoder: reads a query and a product together and scores the pair.

    Args:
        matcher: a loaded run (:class:`semmatch_tf.runs.TrainedMatcher`); usually made by
            :meth:`from_preset`, :meth:`load` or :meth:`fit`.

    Examples:
        >>> from semmatch_tf import CrossEncoder
        >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
        >>> model.predict([("red dress", "Red summer dress, cotton")]).round(2)
        array([0.32])
    """

    def __init__(self, matcher: runs.TrainedMatcher) -> None:
        self.matcher = matcher

    @classmethod
    def load(cls, run_dir: str | Path, *, compute: str = "float32") -> "CrossEncoder":
        """A finished cross-encoder run directory (``semmatch-tf train`` output) or :meth:`save` output.

        Args:
            run_dir: the directory.
            compute: "bfloat16" predicts through oneDNN's bf16 graph rewrite (faster on CPUs with
                AVX-512 BF16 or AMX; outputs within cosine 0.999 of float32; :mod:`semmatch_tf.compute`).

        Returns:
            The loaded model. A bi-encoder directory is a ValueError naming :class:`BiEncoder`; an
            incomplete one a FileNotFoundError naming the missing file.

        Examples:
            >>> CrossEncoder.load("tests/fixtures/runs/bilstm_v0_1").labels.names
            ('irrelevant', 'partial', 'exact')
        """
        return cls(runs.load_run(run_dir, compute))

    @classmethod
    def from_preset(cls, preset: str | Path, *, compute: str = "float32") -> "CrossEncoder":
        """A cross-encoder from a directory :meth:`save` wrote, or a finished run directory.

        As keras-hub's ``Task.from_preset``; unlike :meth:`BiEncoder.from_preset` there is no
        pretrained cross-encoder to name (they come from :meth:`fit`), so a checkpoint is refused.

        Args:
            preset: the directory.
            compute: as in :meth:`load`.

        Returns:
            The loaded model. A bi-encoder directory or a pretrained checkpoint is a ValueError
            naming :class:`BiEncoder`.

        Examples:
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> model.head
            'classification'
            >>> CrossEncoder.from_preset("tests/fixtures/runs/bilstm_bi_encoder_v0_1")
            Traceback (most recent call last):
            ValueError: ...: a bi-encoder run (...): load it with semmatch_tf.BiEncoder (from_preset or load), ...
        """
        if names_checkpoint(preset):
            raise ValueError(f"{preset}: a pretrained encoder, not a trained cross-encoder: use it zero-shot with "
                             "semmatch_tf.BiEncoder.from_preset, or fine-tune a cross-encoder from it with "
                             "CrossEncoder.fit (model.bert.path)")
        return cls.load(preset, compute=compute)

    @classmethod
    def fit(cls, config: RunConfig, run_dir: str | Path, *, verbose: int = 1) -> "CrossEncoder":
        """Train ``config`` into ``run_dir`` (a killed run there resumes), then load the result.

        Args:
            config: a validated run config (:func:`semmatch_tf.load_config`) of a cross-encoder family.
            run_dir: the run directory; one training process at a time may hold it.
            verbose: Keras' fit verbosity.

        Returns:
            The trained model, loaded from ``run_dir`` (which also holds its report, plots and logs).

        Examples:
            >>> from semmatch_tf import load_config
            >>> config = load_config("configs/demo_bilstm.yaml")                      # doctest: +SKIP
            >>> model = CrossEncoder.fit(config, "runs/demo", verbose=0)              # doctest: +SKIP
        """
        check_kind(config, bi_encoder=False, task="CrossEncoder")
        train(config, run_dir, verbose=verbose)
        return cls.load(run_dir)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write a self-contained directory that :meth:`from_preset` reads back and that scores
        exactly as this model (as keras-hub's ``save_to_preset``, sentence-transformers' ``save``).

        It is a run directory with only what scoring needs: ``model.keras``, ``preprocessor.keras``
        (tokenizer and vocabulary inside), ``labels.json``, ``vocabulary.txt``, and the
        ``config.yaml`` and ``report.json`` of the run the model came from. It is written to a
        hidden sibling and renamed into place, so a failed save leaves no half-written directory.

        Args:
            path: the directory to write.
            overwrite: replace an existing non-empty ``path``; without it that is a FileExistsError
                and ``path`` is left as it was. The run the model was loaded from is never replaced.

        Returns:
            ``path``.

        Examples:
            >>> import tempfile
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> saved = model.save(tempfile.mkdtemp() + "/bilstm-demo")
            >>> sorted(file.name for file in saved.iterdir())
            ['config.yaml', 'labels.json', 'model.keras', 'preprocessor.keras', 'vocabulary.txt']
            >>> pairs = [("red dress", "Red summer dress, cotton"), ("red dress", "USB-C cable")]
            >>> bool((CrossEncoder.from_preset(saved).predict(pairs) == model.predict(pairs)).all())
            True
        """
        return save_preset(path, lambda directory: runs.save_matcher(self.matcher, directory),
                           overwrite=overwrite, loaded_from=self.run_dir)

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
        """The directory the model was loaded from (None for a model built in memory)."""
        return self.matcher.run_dir

    def predict(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 256) -> np.ndarray:
        """The predicted grade of each ``(query, product)`` pair, on the data's grade scale.

        Args:
            pairs: ``(query, product)`` texts.
            batch_size: pairs per batch.

        Returns:
            ``float64 [N]``: the expected grade under the class probabilities (classification) or
            the regression output on the grade scale (``labels.grade_range``).

        Examples:
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> model.predict([("red dress", "Red summer dress, cotton"), ("fresh apples", "USB-C cable")]).shape
            (2,)
        """
        pairs = list(pairs)
        return self.matcher.score([q for q, _ in pairs], [p for _, p in pairs], batch_size)

    def predict_proba(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities of each ``(query, product)`` pair.

        Args:
            pairs: ``(query, product)`` texts.
            batch_size: pairs per batch.

        Returns:
            ``float32 [N, C]`` in the order of ``labels.names`` (a regression head gives ``[N, 1]``
            unit grades).

        Examples:
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> probabilities = model.predict_proba([("red dress", "Red summer dress, cotton")])
            >>> probabilities.shape, round(float(probabilities.sum()), 4)
            ((1, 3), 1.0)
        """
        pairs = list(pairs)
        return self.matcher.predict_outputs([q for q, _ in pairs], [p for _, p in pairs], batch_size)

    def rank(self, query: str, documents: Sequence[str], *, top_k: int | None = None,
             batch_size: int = 256) -> list[dict]:
        """``documents`` ordered by their predicted grade for ``query``, best first.

        Args:
            query: the search query.
            documents: product texts to order.
            top_k: keep this many (None: all).
            batch_size: pairs per batch.

        Returns:
            ``[{"corpus_id": index in documents, "score": grade, "text": document}]``, best first.

        Examples:
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> hits = model.rank("red dress", ["USB-C cable", "Red summer dress"])
            >>> sorted(hits[0]), hits[0]["score"] >= hits[1]["score"]
            (['corpus_id', 'score', 'text'], True)
        """
        documents = text_list(documents)
        scores = self.matcher.score([query] * len(documents), documents, batch_size)
        return ranked(np.asarray(scores), documents, top_k)

    def evaluate(self, dataset: PairDataset, *, batch_size: int = 256) -> dict:
        """Score judged pairs and measure the model on them.

        Args:
            dataset: judged pairs (:func:`semmatch_tf.load_dataset`, :func:`semmatch_tf.load_demo`).
            batch_size: pairs per batch.

        Returns:
            The report ``semmatch-tf evaluate`` writes: classification or regression and ranking
            metrics, overall and per language, with the pair and query counts.

        Examples:
            >>> from semmatch_tf import load_demo
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> model.evaluate(load_demo().head(60))["counts"]["pairs"]
            60
        """
        return self.matcher.evaluate(dataset, batch_size)

    def export(self, base_dir: str | Path, *, name: str = "semmatch", version: int | None = None,
               force: bool = False) -> Path:
        """A SavedModel for TF Serving (raw strings in: the graph holds the tokenizer).

        Args:
            base_dir: the model base path TF Serving watches.
            name: the model name (a folder under ``base_dir``).
            version: the version number (default: the highest existing one plus one).
            force: replace an existing ``version``.

        Returns:
            The version directory ``base_dir/name/version`` (see :func:`semmatch_tf.export_model`).

        Examples:
            >>> import tempfile
            >>> model = CrossEncoder.from_preset("tests/fixtures/runs/bilstm_v0_1")
            >>> model.export(tempfile.mkdtemp(), name="matcher").name
            '1'
        """
        return export_model(self.matcher, base_dir, name=name, version=version, force=force)
