"""What a finished run shows in TensorBoard beyond Keras' per-epoch scalars (``logs/train``,
``logs/validation``): the HParams session and the embedding projector.

- **HParams** (:func:`write_hparams_session`): one session in ``logs/`` itself, written once the
  run is evaluated, holding the hyper-parameters and, as its metrics, the *best* epoch's values
  (``best/<metric>``, chosen by ``training.monitor`` as the best checkpoint is) and the test
  set's headline metrics (``test/<metric>``). The stock ``hparams.api.KerasCallback`` reports the
  last epoch instead, and a per-epoch logger copied every scalar into an extra run; a killed and
  re-run finish rewrites the session instead of adding a second one.
- **Projector** (:func:`write_projector`): what the model makes of real data, labelled with the
  text: scored pairs for cross-encoders (the pooled representation the head reads, labelled
  ``query → title`` with grade and score), products and queries in one space for bi-encoders. The
  vectors are TSV beside the config (no checkpoint paths: a copied run directory still shows
  them), and the folder gets an event file so that TensorBoard lists it as a run whether
  ``--logdir`` is the run's ``logs/`` or a folder of many runs.

Example:
    >>> import tempfile, numpy as np, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> pairs = ProjectedSet("pairs", np.eye(3, 4), pd.DataFrame({"text": ["a", "b", "c"], "grade": [1, 2, 3]}))
    >>> sorted(p.name for p in write_projector(folder, [pairs]).iterdir() if not p.name.startswith("events"))
    ['pairs_metadata.tsv', 'pairs_vectors.tsv', 'projector_config.pbtxt']
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from semmatch_tf.atomic import atomic_write_text
from semmatch_tf.data.schema import PairDataset
from semmatch_tf.training.hparams import session_metrics

PROJECTOR_DIR = "projector"
EVENT_GLOB = "events.out.tfevents.*"


@dataclasses.dataclass(frozen=True)
class ProjectedSet:
    """Vectors ``[N, D]`` and one metadata row per vector (every column shows in the projector).

    Args:
        name: the tensor's name in the projector's drop-down (a file-name-safe word).
        vectors: the embeddings, float.
        metadata: ``N`` rows; with one column the TSV has no header, as the projector expects.
    """

    name: str
    vectors: np.ndarray
    metadata: pd.DataFrame

    def __post_init__(self) -> None:
        if np.ndim(self.vectors) != 2 or len(self.vectors) != len(self.metadata):
            raise ValueError(f"projector set {self.name!r}: vectors {np.shape(self.vectors)} for "
                             f"{len(self.metadata)} metadata rows")


def write_projector(log_dir: str | Path, sets: Sequence[ProjectedSet], note: str = "") -> Path:
    """Write ``sets`` for TensorBoard's projector into ``log_dir`` (replacing what an earlier
    attempt wrote there); returns the folder."""
    from tensorboard.plugins import projector

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = projector.ProjectorConfig()
    for item in sets:
        vectors, metadata = log_dir / f"{item.name}_vectors.tsv", log_dir / f"{item.name}_metadata.tsv"
        atomic_write_text(vectors, "".join("\t".join(f"{v:.4g}" for v in row) + "\n"
                                           for row in np.asarray(item.vectors, np.float32)))
        atomic_write_text(metadata, _metadata_tsv(item.metadata))
        embedding = config.embeddings.add()
        embedding.tensor_name = item.name
        embedding.tensor_path = vectors.name
        embedding.metadata_path = metadata.name
        embedding.tensor_shape.extend(np.shape(item.vectors))
    atomic_write_text(log_dir / "projector_config.pbtxt", str(config))
    summary = note or ", ".join(f"{item.name}: {len(item.vectors)} vectors" for item in sets)
    _rewrite_events(log_dir, lambda: tf.summary.text("projector", summary, step=0))
    return log_dir


def write_hparams_session(log_dir: str | Path, hparams: Mapping[str, object], metrics: Mapping[str, float]) -> Path:
    """One HParams session in ``log_dir`` with ``metrics`` (e.g. ``best/val_loss``, ``test/rmse``)
    as scalars at step 0; values that are not plain scalars are dropped (HParams cannot show them)."""
    from tensorboard.plugins.hparams import api as hp

    plain = {key: value for key, value in hparams.items() if isinstance(value, (bool, int, float, str))}

    def write() -> None:
        hp.hparams(plain, trial_id=Path(log_dir).resolve().parent.name)
        for name, value in metrics.items():
            tf.summary.scalar(name, float(value), step=0)

    _rewrite_events(Path(log_dir), write)
    return Path(log_dir)


def write_run_board(run_dir: Path, hparams: Mapping[str, object], history: dict, monitor: str, report: dict,
                    projected: Sequence[ProjectedSet]) -> None:
    """A finished run's TensorBoard extras: the HParams session in ``logs/`` (best epoch by
    ``monitor``, test metrics from ``report``) and ``projected`` in ``logs/projector``."""
    logs = Path(run_dir) / "logs"
    write_hparams_session(logs, hparams, session_metrics(history, monitor, report))
    if projected:
        write_projector(logs / PROJECTOR_DIR, projected)


def cross_encoder_projection(matcher, dataset: PairDataset, limit: int = 1000) -> list[ProjectedSet]:
    """The first ``limit`` pairs of ``dataset`` as the model represents them (the pooled vector its
    head reads), labelled ``query → product`` with the judged grade, the predicted grade and the
    language: in the projector, colour by grade and look for pairs the model places among the
    wrong grade."""
    frame = dataset.frame.head(limit)
    if not len(frame):
        return []
    queries, products = frame["query"].tolist(), frame["product"].tolist()
    metadata = pd.DataFrame({"pair": [f"{q} → {p}" for q, p in zip(queries, products)],
                             "query": queries, "product": products, "grade": frame["grade"].round(3),
                             "predicted": np.round(matcher.score(queries, products), 3),
                             "language": frame["language"]})
    return [ProjectedSet("pairs", matcher.pair_representations(queries, products), metadata)]


def bi_encoder_projection(encoder, dataset: PairDataset, products: int = 1000, queries: int = 300) -> list[ProjectedSet]:
    """Products and queries of ``dataset`` in the one space the bi-encoder searches, labelled by
    their text, with ``kind`` (product / query) and language: a query should sit among the
    products judged relevant to it."""
    frame = dataset.frame
    if not len(frame):
        return []
    items = frame.drop_duplicates("product_id").head(products)
    asked = frame.drop_duplicates("query_id").head(queries)
    vectors = np.concatenate([encoder.embed_products(items["product"].tolist()),
                              encoder.embed_queries(asked["query"].tolist())])
    metadata = pd.DataFrame({"text": items["product"].tolist() + asked["query"].tolist(),
                             "kind": ["product"] * len(items) + ["query"] * len(asked),
                             "language": items["language"].tolist() + asked["language"].tolist()})
    return [ProjectedSet("products_and_queries", vectors, metadata)]


def _rewrite_events(folder: Path, write) -> None:
    """Replace the event files directly in ``folder`` (not its sub-runs) by what ``write`` logs."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(EVENT_GLOB):
        old.unlink()
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        write()
    writer.close()


def _metadata_tsv(frame: pd.DataFrame) -> str:
    cells = frame.astype(str).map(_tsv_safe)
    rows = ["\t".join(row) for row in cells.itertuples(index=False, name=None)]
    if len(frame.columns) > 1:
        rows.insert(0, "\t".join(_tsv_safe(str(c)) for c in frame.columns))
    return "".join(row + "\n" for row in rows)


def _tsv_safe(label: str) -> str:
    return (label or "<empty>").replace("\t", " ").replace("\n", " ")
