"""The run directory: what a training run writes, and loading it back for prediction and export.

Layout of ``RUN_DIR``::

    config.yaml          the validated config the run used
    labels.json          label scheme + head (how to read the model's output)
    vocabulary.txt       the learned WordPiece vocabulary (one token per line)
    preprocessor.keras   raw strings -> token ids (the tokenizer, with the vocabulary as an asset)
    model.keras          token ids -> probabilities or grade
    history.json         per-epoch metrics
    report.json          test-split evaluation (classification, regression, ranking, per language)
    MODEL_CARD.md        what the model is, its data, held-out metrics and limits (semmatch_tf.cards)
    plots/               training curves, confusion matrix
    logs/                TensorBoard: train/ and validation/ scalars, the HParams session (best
                         epoch and test metrics), projector/ (scored test pairs, labelled)
    checkpoints/         best weights so far (atomic); backup/ holds the resume state while training

Run directory of a bi-encoder (beside the common ``config.yaml``, ``history.json``, ``logs/``)::

    labels.json                 label scheme + ``"family": "bi_encoder"``
    bi_encoder.json             model family, shared towers, dims, temperature, loss, threshold
    vocabulary.txt              WordPiece vocabulary (BiLSTM, BERT from scratch)
    query_tower.keras           query token ids -> unit vector
    product_tower.keras         product token ids -> unit vector (absent when towers are shared)
    query_preprocessor.keras    query strings -> token ids
    product_preprocessor.keras  product strings -> token ids
    report.json                 re-ranking of each test query's judged candidates by cosine, and
                                retrieval over all products of the dataset
    logs/projector/             TensorBoard projector: test products and queries, labelled by text

``CrossEncoder.save`` / ``BiEncoder.save`` (:func:`save_matcher`, :func:`save_encoder`) write a run
directory with only the files above that loading needs, plus ``vocabulary.txt`` and the run's
:data:`RUN_FACTS` (and a bi-encoder's ``labels.json``) when the model came from a run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from semmatch_tf.atomic import atomic_write_text, read_json_object, write_file_atomically  # noqa: F401 (re-exported)
from semmatch_tf.compute import check_compute, compute_scope, per_object_function
from semmatch_tf.data.padding import trim_packed_padding
from semmatch_tf.data.schema import LabelScheme, PairDataset
from semmatch_tf.evaluation.report import evaluate_predictions
# models.bi_encoder and semmatch_tf.text (via text.preprocessor) register the Keras classes of the
# towers and preprocessors, so load_bi_encoder can deserialise them.
from semmatch_tf.models.bi_encoder import (Towers, TwoTowerEncoder, inference_batches, progress_over, save_layer,
                                          text_list)
from semmatch_tf.models.bert import BertPreprocessor, fuse_loaded_backbones
from semmatch_tf.models.heads import HEADS, predicted_grades, representation_model
from semmatch_tf.models.registry import register_keras_classes
from semmatch_tf.text.preprocessor import PairPreprocessor
from semmatch_tf.text.vocabulary import save_vocabulary

CONFIG, LABELS, VOCABULARY = "config.yaml", "labels.json", "vocabulary.txt"
PREPROCESSOR, MODEL, HISTORY, REPORT = "preprocessor.keras", "model.keras", "history.json", "report.json"
BI_ENCODER_META, BI_ENCODER_FAMILY = "bi_encoder.json", "bi_encoder"
QUERY_TOWER, PRODUCT_TOWER = "query_tower.keras", "product_tower.keras"
QUERY_PREPROCESSOR, PRODUCT_PREPROCESSOR = "query_preprocessor.keras", "product_preprocessor.keras"
#: Files that describe a run without being needed to load it; a saved copy (``CrossEncoder.save``,
#: ``BiEncoder.save``) carries them over when the model came from a run.
RUN_FACTS = (CONFIG, REPORT)


def atomic_save_model(model: keras.Model, path: Path) -> None:
    """``model.save`` to ``path`` (``.keras``) atomically."""
    write_file_atomically(path, model.save)


def preprocessor_model(preprocessor: PairPreprocessor) -> keras.Model:
    """Wrap the preprocessor layer in a model so it saves to and loads from a .keras file."""
    inputs = {"query": keras.Input(shape=(), dtype="string", name="query"),
              "product": keras.Input(shape=(), dtype="string", name="product")}
    return keras.Model(inputs, preprocessor(inputs), name="pair_preprocessor")


@dataclasses.dataclass
class TrainedMatcher:
    """A loaded run: preprocessor + model + how to read its outputs. The keras-hub "Task"."""

    preprocessor: PairPreprocessor
    model: keras.Model
    labels: LabelScheme
    head: str
    run_dir: Path | None = None
    compute: str = "float32"  # or "bfloat16": oneDNN's bf16 rewrite of the traced graph (semmatch_tf.compute)

    def __post_init__(self) -> None:
        check_compute(self.compute)
        self._outputs = None  # the traced strings -> outputs function, made on first use

    def predict_outputs(self, queries, products, batch_size: int = 256, *, progress: bool = False) -> np.ndarray:
        """Raw model outputs (probabilities or unit grade) for aligned query/product lists.

        Pairs are batched longest first (:func:`~semmatch_tf.data.pipeline.length_sorted_batches`)
        through one traced function (preprocessor, padding trim, model): no Keras ``predict`` loop,
        and BERT batches carry little padding (``batch_size`` is then a maximum: pairs of very
        different lengths, as in one re-ranking request, go in several batches of similar
        lengths). Outputs come back in input order; ``progress`` shows a bar over the batches.
        """
        queries, products = text_list(queries), text_list(products)
        n = len(queries)
        if n != len(products):
            raise ValueError(f"{n} queries but {len(products)} products")
        width = self.labels.num_classes if self.head == "classification" else 1
        outputs = np.zeros((n, width), np.float32)
        lengths = np.fromiter((len(q) + len(p) for q, p in zip(queries, products)), np.int64, n)
        queries, products = np.asarray(queries, dtype=object), np.asarray(products, dtype=object)
        batches = inference_batches(lengths, batch_size, self.preprocessor)
        for rows in progress_over(batches, "scoring", enabled=progress):
            outputs[rows] = np.reshape(self.outputs_tensor(tf.constant(queries[rows], tf.string),
                                                           tf.constant(products[rows], tf.string)), (-1, width))
        return outputs

    def outputs_tensor(self, queries: tf.Tensor, products: tf.Tensor) -> tf.Tensor:
        """``tf.string [B]`` x 2 -> ``float32`` outputs, traced once for any batch size."""
        if self._outputs is None:
            self._outputs = per_object_function(self._graph, [tf.TensorSpec([None], tf.string)] * 2)
        with compute_scope(self.compute):
            return self._outputs(queries, products)

    def _graph(self, queries: tf.Tensor, products: tf.Tensor) -> tf.Tensor:
        features = trim_packed_padding(self.preprocessor({"query": queries, "product": products}))
        return tf.cast(self.model(features, training=False), tf.float32)

    def pair_representations(self, queries, products, batch_size: int = 256) -> np.ndarray:
        """The pooled vector the head reads for each aligned pair (``[N, D]`` float32, input order):
        how the model sees a pair, for TensorBoard's projector and error analysis."""
        queries, products = text_list(queries), text_list(products)
        body = representation_model(self.model, self.head)

        def represent_batch(query_batch, product_batch):
            features = trim_packed_padding(self.preprocessor({"query": query_batch, "product": product_batch}))
            return tf.cast(body(features, training=False), tf.float32)

        represent = per_object_function(represent_batch, [tf.TensorSpec([None], tf.string)] * 2)

        rows = [represent(tf.constant(queries[i:i + batch_size], tf.string),
                          tf.constant(products[i:i + batch_size], tf.string)).numpy()
                for i in range(0, len(queries), batch_size)]
        return np.concatenate(rows) if rows else np.zeros((0, body.output.shape[-1]), np.float32)

    def score(self, queries, products, batch_size: int = 256) -> np.ndarray:
        """Predicted grade per pair: the relevance score used for ranking."""
        return self.grades_of(self.predict_outputs(queries, products, batch_size))

    def grades_of(self, outputs: np.ndarray) -> np.ndarray:
        """The predicted grade of each row of :meth:`predict_outputs` (expected grade under the class
        probabilities, or the regression output on the grade scale)."""
        return predicted_grades(outputs, self.head, self.labels)

    def predict_dataset(self, dataset: PairDataset, batch_size: int = 256) -> np.ndarray:
        return self.predict_outputs(dataset.frame["query"].tolist(), dataset.frame["product"].tolist(),
                                    batch_size)

    def evaluate(self, dataset: PairDataset, batch_size: int = 256) -> dict:
        """The report of :func:`~semmatch_tf.evaluation.report.evaluate_predictions` on ``dataset``:
        class probabilities for a classification head, predicted grades for a regression head."""
        return self.report_of(dataset, self.predict_dataset(dataset, batch_size))

    def report_of(self, dataset: PairDataset, outputs: np.ndarray) -> dict:
        """The report of :meth:`evaluate` from outputs already computed (:meth:`predict_dataset`)."""
        if self.head == "classification":
            return evaluate_predictions(dataset, probabilities=outputs)
        return evaluate_predictions(dataset, scores=self.grades_of(outputs), cuts=self.labels.cuts)


def preprocessor_types() -> tuple[type, ...]:
    """The pair preprocessors a run may hold (BiLSTM ids, BERT packed segments)."""
    return (PairPreprocessor, BertPreprocessor)


def save_labels(run_dir: Path, labels: LabelScheme, head: str) -> None:
    atomic_write_text(run_dir / LABELS, json.dumps({"head": head, **labels.to_dict()}, indent=2,
                                                   ensure_ascii=False))


def save_cross_encoder(run_dir: Path, preprocessor, model: keras.Model, labels: LabelScheme, head: str) -> None:
    """Write the files :func:`load_run` reads (model, preprocessor, labels), atomically file by file."""
    atomic_save_model(model, run_dir / MODEL)
    atomic_save_model(preprocessor_model(preprocessor), run_dir / PREPROCESSOR)
    save_labels(run_dir, labels, head)


def save_matcher(matcher: TrainedMatcher, directory: Path) -> None:
    """A loaded cross-encoder into ``directory`` as a run directory :func:`load_run` reads back: its
    inference files, ``vocabulary.txt``, and the :data:`RUN_FACTS` of the run it came from."""
    save_cross_encoder(directory, matcher.preprocessor, matcher.model, matcher.labels, matcher.head)
    save_vocabulary(matcher.preprocessor.vocabulary, directory / VOCABULARY)
    copy_run_files(matcher.run_dir, directory, RUN_FACTS)


def copy_run_files(run_dir: Path | None, directory: Path, names: tuple[str, ...]) -> None:
    """Copy those of ``names`` that ``run_dir`` has (none when ``run_dir`` is None) into ``directory``."""
    for name in names if run_dir is not None else ():
        if (Path(run_dir) / name).is_file():
            shutil.copyfile(Path(run_dir) / name, directory / name)


def load_run(run_dir: str | Path, compute: str = "float32") -> TrainedMatcher:
    """Load a finished cross-encoder run (or a ``CrossEncoder.save`` directory) for prediction.

    Args:
        run_dir: the directory.
        compute: "bfloat16" predicts through oneDNN's bf16 graph rewrite (see :mod:`semmatch_tf.compute`).

    Returns:
        A :class:`TrainedMatcher`. A bi-encoder run is a ValueError; an incomplete run a
        FileNotFoundError naming the missing file.

    Examples:
        >>> matcher = load_run("tests/fixtures/runs/bilstm_v0_1")
        >>> matcher.head, matcher.score(["red dress"], ["Red summer dress, cotton"]).round(2)
        ('classification', array([0.32]))
    """
    run_dir = Path(run_dir)
    if (run_dir / BI_ENCODER_META).is_file():
        raise ValueError(f"{run_dir}: a bi-encoder run (embeds queries and products apart): load it with "
                         "semmatch_tf.BiEncoder (from_preset or load), or index a catalogue with `semmatch-tf index`")
    for name in (LABELS, PREPROCESSOR, MODEL):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: not a finished run directory ({name} is missing)")
    meta, labels = read_labels(run_dir)
    register_keras_classes()
    types = preprocessor_types()
    wrapper = keras.saving.load_model(run_dir / PREPROCESSOR)
    preprocessor = next(layer for layer in wrapper.layers if isinstance(layer, types))
    model = load_model(run_dir / MODEL)
    return TrainedMatcher(preprocessor, model, labels, meta["head"], run_dir, compute)


def load_model(path: Path) -> keras.Model:
    """A saved model for inference, its BERT backbones' dense layers made fusable again
    (:func:`~semmatch_tf.models.bert.fuse_loaded_backbones`: keras-hub rebuilds them plain)."""
    return fuse_loaded_backbones(keras.saving.load_model(path, compile=False))


def read_labels(run_dir: Path) -> tuple[dict, LabelScheme]:
    """``labels.json``: its record and label scheme; a damaged file is a ValueError naming the field."""
    path = run_dir / LABELS
    meta = read_json_object(path, remedy="the run is damaged: retrain it")
    try:
        if meta.get("head") not in HEADS:
            raise ValueError(f"head: expected one of {list(HEADS)}, got {meta.get('head')!r}")
        return meta, LabelScheme.from_dict(meta)
    except KeyError as error:
        raise ValueError(f"{path}: the field {error.args[0]!r} is missing; the run is damaged: retrain it") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}; the run is damaged: retrain it") from None


# -- bi-encoder runs (written by semmatch_tf.training.contrastive) -------------------------------
def save_bi_encoder(run_dir: Path, towers, meta: dict, labels: LabelScheme | None) -> None:
    """Write towers, preprocessors and metadata (atomically, file by file); ``labels.json`` only
    when there are ``labels`` (a pretrained encoder has none). ``meta["shared_towers"]`` records
    whether one tower was written for both sides, as :func:`load_bi_encoder` reads it."""
    atomic_save_model(towers.query_tower, run_dir / QUERY_TOWER)
    if not towers.shared:
        atomic_save_model(towers.product_tower, run_dir / PRODUCT_TOWER)
    save_layer(towers.query_preprocessor, run_dir / QUERY_PREPROCESSOR)
    save_layer(towers.product_preprocessor, run_dir / PRODUCT_PREPROCESSOR)
    atomic_write_text(run_dir / BI_ENCODER_META, json.dumps({**meta, "shared_towers": towers.shared}, indent=2))
    if labels is not None:
        atomic_write_text(run_dir / LABELS, json.dumps({"family": BI_ENCODER_FAMILY, "head": "similarity",
                                                         **labels.to_dict()}, indent=2, ensure_ascii=False))


def save_encoder(encoder: TwoTowerEncoder, directory: Path) -> None:
    """A loaded or pretrained bi-encoder into ``directory`` as a run directory
    :func:`load_bi_encoder` reads back: towers, preprocessors, ``bi_encoder.json``,
    ``vocabulary.txt``, and the labels and :data:`RUN_FACTS` of the run it came from."""
    towers = Towers(encoder.query_preprocessor, encoder.query_tower, encoder.product_preprocessor,
                    encoder.product_tower)
    save_bi_encoder(directory, towers, encoder.meta, None)
    save_vocabulary(encoder.query_preprocessor.vocabulary, directory / VOCABULARY)
    copy_run_files(encoder.run_dir, directory, (LABELS, *RUN_FACTS))


def is_bi_encoder_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / BI_ENCODER_META).is_file()


def load_bi_encoder(run_dir: str | Path, compute: str = "float32"):
    """A finished bi-encoder run as a :class:`~semmatch_tf.models.bi_encoder.TwoTowerEncoder`
    (``compute="bfloat16"``: embeddings through oneDNN's bf16 rewrite, :mod:`semmatch_tf.compute`)."""
    run_dir = Path(run_dir)
    if not (run_dir / BI_ENCODER_META).is_file() and (run_dir / MODEL).is_file():
        raise ValueError(f"{run_dir}: a cross-encoder run (scores query-product pairs): load it with "
                         "semmatch_tf.CrossEncoder (from_preset or load)")
    for name in (BI_ENCODER_META, QUERY_TOWER, QUERY_PREPROCESSOR, PRODUCT_PREPROCESSOR):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: not a finished bi-encoder run ({name} is missing)")
    meta = read_json_object(run_dir / BI_ENCODER_META, remedy="the run is damaged: retrain it")
    register_keras_classes()
    query_tower = load_model(run_dir / QUERY_TOWER)
    product_tower = query_tower if meta.get("shared_towers") else load_model(run_dir / PRODUCT_TOWER)
    return TwoTowerEncoder(keras.saving.load_model(run_dir / QUERY_PREPROCESSOR), query_tower,
                           keras.saving.load_model(run_dir / PRODUCT_PREPROCESSOR), product_tower, meta, run_dir,
                           compute)

