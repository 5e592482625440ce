"""Contrastive training of bi-encoders: positives, hard negatives, duplicate-free batches, run dir.

**Positives.** A judged pair is a positive when ``grade >= positive_grade``. Unset, the threshold
is the top class's grade when the split's grades are all class grades (demo: "exact" = 2), and
for continuous mean-of-raters grades (Home Depot 1.0-3.0) the upper part: the midpoint between the
two best class grades (Home Depot: 2.5, so "mostly relevant" and better).

**Batches.** With the in-batch softmax every other product of a batch is a negative of a query, so
a query that appears twice in a batch, or a product that appears twice (or that is one row's hard
negative and another row's positive), makes a false negative. Batches are therefore packed in
Python by a greedy first-fit packer (rows in a seeded random order, each into the first open batch
with no clash), one packing per epoch (seed + epoch), deterministic for a seed; rows left in
unfilled batches at the end are dropped for that epoch. Queries and products are compared by
normalised text (two ids with one title are one product). Texts are tokenised once; tf.data then
gathers the id rows of each packed batch.

**Hard negatives** (``bi_encoder.hard_negatives = H`` per positive; shared by the whole batch):
``judged``: judged products of the same query graded below the threshold, the lowest grades first;
``bm25``: the query's top BM25 results over the split's products that are not judged positive
for it (unjudged products may be relevant: BM25 negatives trade some label noise for hardness);
``model``: in-batch negatives only for the first half of the epochs, then the top results of
that model that are not judged positive, for the rest. A query with fewer than ``H`` candidates is
topped up with random products of the split that are not judged positive for it.

**Cosine regression** (``bi_encoder.loss: cosine_regression``) uses every judged pair, shuffled
per epoch, with the grade mapped onto [-1, 1] as the cosine target; hard negatives do not apply.

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
    logs/projector/             TensorBoard projector: product embeddings labelled by title
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.data.schema import LabelScheme, PairDataset

log = logging.getLogger(__name__)

BI_ENCODER_META = "bi_encoder.json"
QUERY_TOWER, PRODUCT_TOWER = "query_tower.keras", "product_tower.keras"
QUERY_PREPROCESSOR, PRODUCT_PREPROCESSOR = "query_preprocessor.keras", "product_preprocessor.keras"
FAMILY = "bi_encoder"
REPORT_KS = (1, 5, 10)
RETRIEVAL_KS = (10, 100)


# -- positives ------------------------------------------------------------------------------------
def text_key(text: str) -> str:
    """Identity of a query or title for duplicate checks: case-folded, whitespace collapsed."""
    return " ".join(str(text).casefold().split())


def positive_threshold(dataset: PairDataset, positive_grade: float | None = None) -> float:
    """The grade from which a pair is a positive (see the module docstring)."""
    if positive_grade is not None:
        return float(positive_grade)
    grades = sorted(set(float(g) for g in dataset.labels.grades))
    observed = dataset.frame["grade"].to_numpy(np.float64)
    discrete = np.isclose(observed[:, None], np.asarray(grades)[None, :]).any(axis=1).all()
    if discrete or len(grades) < 2:
        return grades[-1]
    return (grades[-1] + grades[-2]) / 2


@dataclasses.dataclass
class Examples:
    """Contrastive rows: aligned query/product texts and keys, hard-negative product keys per row.

    ``product_texts`` maps every product key (positives, negatives) to its title.
    """

    queries: list[str]
    products: list[str]
    query_keys: list[str]
    product_keys: list[str]
    negatives: list[list[str]]
    product_texts: dict[str, str]

    def __len__(self) -> int:
        return len(self.queries)


def positive_examples(dataset: PairDataset, threshold: float) -> Examples:
    """One row per distinct (query, product) pair graded at or above ``threshold``."""
    frame = dataset.frame
    keys = frame.assign(_q=frame["query"].map(text_key), _p=frame["product"].map(text_key))
    positives = keys[keys["grade"] >= threshold].drop_duplicates(["_q", "_p"])
    texts = dict(zip(keys["_p"], keys["product"]))
    return Examples(positives["query"].tolist(), positives["product"].tolist(), positives["_q"].tolist(),
                    positives["_p"].tolist(), [[] for _ in range(len(positives))], texts)


def judged_by_query(dataset: PairDataset) -> dict[str, dict[str, float]]:
    """``{query key: {product key: best grade}}`` of every judged pair."""
    judged: dict[str, dict[str, float]] = {}
    for query, product, grade in zip(dataset.frame["query"], dataset.frame["product"], dataset.frame["grade"]):
        row = judged.setdefault(text_key(query), {})
        key = text_key(product)
        row[key] = max(float(grade), row.get(key, -math.inf))
    return judged


# -- hard negatives -------------------------------------------------------------------------------
def _assign(examples: Examples, candidates: dict[str, list[str]], count: int, positives: dict[str, set],
            pool: list[str], rng: np.random.Generator) -> None:
    """Give each row ``count`` negatives: its query's candidates in rotation (so that the positives
    of one query get different negatives when there are enough), topped up at random from ``pool``.
    Nothing judged positive for the query is ever chosen."""
    seen: dict[str, int] = {}
    for row, query in enumerate(examples.query_keys):
        banned = positives.get(query, set()) | {examples.product_keys[row]}
        ranked = [c for c in dict.fromkeys(candidates.get(query, [])) if c not in banned]
        turn = seen.get(query, 0)
        seen[query] = turn + 1
        start = (turn * count) % len(ranked) if ranked else 0
        chosen = (ranked[start:] + ranked[:start])[:count]
        for _ in range(50 * count):
            if len(chosen) >= count:
                break
            extra = pool[int(rng.integers(len(pool)))]
            if extra not in banned and extra not in chosen:
                chosen.append(extra)
        if not chosen:
            raise ValueError(f"no product can serve as a hard negative for query {query!r}: the split's "
                             f"catalogue is too small for {count} hard negatives")
        while len(chosen) < count:  # a tiny catalogue: repeat rather than invent
            chosen.append(chosen[len(chosen) % len(chosen)])
        examples.negatives[row] = chosen


def judged_candidates(dataset: PairDataset, threshold: float, seed: int) -> dict[str, list[str]]:
    """Per query key: its judged products below ``threshold``, lowest grade first (seeded ties)."""
    rng = np.random.default_rng(seed)
    ranked = {}
    for query, products in judged_by_query(dataset).items():
        below = [(grade, rng.random(), key) for key, grade in products.items() if grade < threshold]
        ranked[query] = [key for _, _, key in sorted(below)]
    return ranked


def bm25_candidates(dataset: PairDataset, depth: int) -> dict[str, list[str]]:
    """Per query key: its top-``depth`` BM25 results over the split's distinct products."""
    from semmatch_tf.retrieval.bm25 import BM25Index

    catalogue = _catalogue_of(dataset)
    index = BM25Index.build(catalogue)
    queries = _distinct_queries(dataset)
    rankings = index.search(list(queries.values()), k=depth)
    keys = catalogue["product_id"].to_numpy(dtype=object)
    return {query: [keys[i] for i in ranking.indices] for query, ranking in zip(queries, rankings)}


def model_candidates(dataset: PairDataset, encoder, depth: int) -> dict[str, list[str]]:
    """Per query key: its top-``depth`` products by cosine under ``encoder`` (a TwoTowerEncoder)."""
    from semmatch_tf.retrieval.index import EmbeddingIndex

    catalogue = _catalogue_of(dataset)
    index = EmbeddingIndex(encoder.embed_products(catalogue["title"].tolist()), catalogue)
    queries = _distinct_queries(dataset)
    rankings = index.search(encoder.embed_queries(list(queries.values())), k=depth)
    keys = catalogue["product_id"].to_numpy(dtype=object)
    return {query: [keys[i] for i in ranking.indices] for query, ranking in zip(queries, rankings)}


def _catalogue_of(dataset: PairDataset) -> pd.DataFrame:
    """The split's distinct products, keyed by normalised title (``product_id`` = the key)."""
    frame = dataset.frame.assign(product_id=dataset.frame["product"].map(text_key))
    return frame.drop_duplicates("product_id").rename(columns={"product": "title"})[["product_id", "title"]]


def _distinct_queries(dataset: PairDataset) -> dict[str, str]:
    return dict(zip(dataset.frame["query"].map(text_key), dataset.frame["query"]))


def add_hard_negatives(examples: Examples, dataset: PairDataset, *, count: int, source: str, threshold: float,
                       seed: int, encoder=None) -> Examples:
    """Fill ``examples.negatives`` with ``count`` product keys per row from ``source``."""
    if count <= 0:
        return examples
    judged = judged_by_query(dataset)
    positives = {q: {p for p, g in products.items() if g >= threshold} for q, products in judged.items()}
    depth = count + max((len(p) for p in positives.values()), default=0) + 10
    if source == "judged":
        candidates = judged_candidates(dataset, threshold, seed)
    elif source == "bm25":
        candidates = bm25_candidates(dataset, depth)
    elif source == "model":
        if encoder is None:
            raise ValueError("hard_negative_source 'model' needs an encoder to mine with")
        candidates = model_candidates(dataset, encoder, depth)
    else:
        raise ValueError(f"unknown hard negative source {source!r}")
    catalogue = _catalogue_of(dataset)
    examples.product_texts.update(zip(catalogue["product_id"], catalogue["title"]))
    _assign(examples, candidates, count, positives, sorted(catalogue["product_id"]), np.random.default_rng(seed))
    return examples


# -- batch packing --------------------------------------------------------------------------------
def pack_batches(query_keys: Sequence[str], product_keys: Sequence[str], batch_size: int, *, seed: int,
                 negatives: Sequence[Sequence[str]] | None = None, max_open: int = 256) -> np.ndarray:
    """Row numbers ``int64 [num_batches, batch_size]`` of batches without false negatives.

    Row ``(q, p)`` joins a batch only if ``q`` is not there yet, and no product of the batch
    (positive or hard negative) is a positive of ``q``, and neither ``p`` nor the row's hard
    negatives are a positive of a query already there. "Positive of ``q``" means any row's product
    for ``q``, so this covers duplicate products, duplicate queries and products relevant to two
    queries. Greedy first-fit over a seeded permutation, so deterministic for a seed; at most
    ``max_open`` batches are open at once (the oldest is dropped, with its rows, when a new one is
    needed beyond that), which keeps the cost linear.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    negatives = negatives if negatives is not None else [()] * len(query_keys)
    positives_of: dict[str, set] = {}
    for query, product in zip(query_keys, product_keys):
        positives_of.setdefault(query, set()).add(product)
    order = np.random.default_rng(seed).permutation(len(query_keys))
    open_batches: list[tuple[list[int], set, set, set]] = []  # rows, queries, products, blocked
    full: list[list[int]] = []
    for row in order:
        query, own = query_keys[row], positives_of[query_keys[row]]
        brought = {product_keys[row], *negatives[row]}
        for index, (rows, queries, products, blocked) in enumerate(open_batches):
            if query in queries or not own.isdisjoint(products) or not blocked.isdisjoint(brought):
                continue
            rows.append(int(row))
            queries.add(query)
            products.update(brought)
            blocked.update(own)
            if len(rows) == batch_size:
                full.append(rows)
                del open_batches[index]
            break
        else:
            if batch_size == 1:
                full.append([int(row)])
                continue
            open_batches.append(([int(row)], {query}, set(brought), set(own)))
            if len(open_batches) > max_open:
                open_batches.pop(0)
    return np.asarray(full, dtype=np.int64).reshape(-1, batch_size)


def epoch_packings(examples: Examples, batch_size: int, epochs: int, seed: int) -> tuple[np.ndarray, int]:
    """One packing per epoch (seed + epoch), each cut to the shortest: ``([epochs*steps, B], steps)``."""
    packings = [pack_batches(examples.query_keys, examples.product_keys, batch_size, seed=seed + epoch,
                             negatives=examples.negatives) for epoch in range(epochs)]
    steps = min(len(p) for p in packings)
    if steps == 0:
        return np.zeros((0, batch_size), np.int64), 0
    return np.concatenate([p[:steps] for p in packings]), steps


# -- tf.data --------------------------------------------------------------------------------------
def encode_texts(preprocessor, texts: Sequence[str], batch_size: int = 2048):
    """Run a text preprocessor over ``texts`` once: numpy arrays (or a dict of them) ``[N, ...]``."""
    import keras
    import tensorflow as tf

    fn = tf.function(lambda strings: preprocessor(strings), input_signature=[tf.TensorSpec([None], tf.string)])
    parts = [keras.tree.map_structure(lambda t: t.numpy(), fn(tf.constant(list(texts[s:s + batch_size]), tf.string)))
             for s in range(0, len(texts), batch_size)]
    return keras.tree.map_structure(lambda *arrays: np.concatenate(arrays), *parts)


def _gatherer(table):
    import keras
    import tensorflow as tf

    constants = keras.tree.map_structure(tf.constant, table)
    return lambda rows: keras.tree.map_structure(lambda t: tf.gather(t, rows), constants)


def softmax_dataset(examples: Examples, towers, batches: np.ndarray):
    """``({"query", "product"[, "negatives"]}, zeros[B])`` per packed batch (labels are implicit)."""
    import tensorflow as tf

    queries = list(dict.fromkeys(examples.queries))
    products = list(dict.fromkeys(list(examples.product_keys) + [k for row in examples.negatives for k in row]))
    query_row = {q: i for i, q in enumerate(queries)}
    product_row = {p: i for i, p in enumerate(products)}
    gather_queries = _gatherer(encode_texts(towers.query_preprocessor, queries))
    gather_products = _gatherer(encode_texts(towers.product_preprocessor,
                                             [examples.product_texts[p] for p in products]))
    q_rows = np.asarray([query_row[q] for q in examples.queries], np.int32)[batches]
    p_rows = np.asarray([product_row[p] for p in examples.product_keys], np.int32)[batches]
    hard = len(examples.negatives[0]) if len(examples) and examples.negatives[0] else 0
    columns = {"query": q_rows, "product": p_rows}
    if hard:
        n_rows = np.asarray([[product_row[p] for p in row] for row in examples.negatives], np.int32)
        columns["negatives"] = n_rows[batches]
    zeros = np.zeros(batches.shape[1], np.float32)

    def assemble(rows):
        features = {"query": gather_queries(rows["query"]), "product": gather_products(rows["product"])}
        if "negatives" in rows:
            features["negatives"] = gather_products(rows["negatives"])
        return features, tf.constant(zeros)

    return tf.data.Dataset.from_tensor_slices(columns).map(assemble).prefetch(tf.data.AUTOTUNE)


def regression_dataset(dataset: PairDataset, towers, batch_size: int, epochs: int, seed: int,
                       shuffle: bool = True):
    """``({"query", "product"}, unit grade)`` batches over every judged pair; ``(data, steps)``."""
    import tensorflow as tf

    frame = dataset.frame
    queries, q_index = np.unique(frame["query"].to_numpy(dtype=str), return_inverse=True)
    products, p_index = np.unique(frame["product"].to_numpy(dtype=str), return_inverse=True)
    targets = dataset.labels.normalise(frame["grade"].to_numpy()).astype(np.float32)
    steps = len(frame) // batch_size
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(frame)) if shuffle else np.arange(len(frame)) for _ in range(epochs)]
    batches = np.concatenate([order[:steps * batch_size].reshape(steps, batch_size) for order in orders])
    gather_queries = _gatherer(encode_texts(towers.query_preprocessor, queries.tolist()))
    gather_products = _gatherer(encode_texts(towers.product_preprocessor, products.tolist()))
    target_table = tf.constant(targets)
    columns = {"query": q_index.astype(np.int32)[batches], "product": p_index.astype(np.int32)[batches],
               "row": batches.astype(np.int32)}

    def assemble(rows):
        return ({"query": gather_queries(rows["query"]), "product": gather_products(rows["product"])},
                tf.gather(target_table, rows["row"]))

    return tf.data.Dataset.from_tensor_slices(columns).map(assemble).prefetch(tf.data.AUTOTUNE), steps


# -- training -------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Phase:
    data: object
    steps: int
    validation: object | None


def _softmax_phase(config, towers, train_set: PairDataset, validation_set: PairDataset, threshold: float,
                   *, hard: int, source: str, encoder=None, epochs: int, skip_epochs: int = 0) -> _Phase:
    seed, batch = config.training.seed, config.training.batch_size
    examples = add_hard_negatives(positive_examples(train_set, threshold), train_set, count=hard, source=source,
                                  threshold=threshold, seed=seed, encoder=encoder)
    batches, steps = epoch_packings(examples, batch, epochs, seed)
    if steps == 0:
        raise ValueError(f"{len(examples)} positive pairs (grade >= {threshold:g}) cannot fill one batch of "
                         f"{batch} distinct queries and products: lower training.batch_size or "
                         f"model.bi_encoder.positive_grade, or add data")
    log.info("%d positives, %d batches of %d per epoch (%d rows dropped by the packer)", len(examples), steps,
             batch, len(examples) - steps * batch)
    data = softmax_dataset(examples, towers, batches[skip_epochs * steps:])
    return _Phase(data, steps, _softmax_validation(towers, validation_set, threshold, hard=hard, source=source,
                                                   encoder=encoder, batch=batch, seed=seed))


def _softmax_validation(towers, validation_set: PairDataset, threshold: float, *, hard: int, source: str, encoder,
                        batch: int, seed: int):
    """One packing of the validation positives, or None when they cannot fill a batch."""
    examples = positive_examples(validation_set, threshold)
    if len(examples) < batch:
        return None
    try:
        add_hard_negatives(examples, validation_set, count=hard, source=source, threshold=threshold, seed=seed,
                           encoder=encoder)
    except ValueError as error:
        log.warning("no validation batches: %s", error)
        return None
    batches = pack_batches(examples.query_keys, examples.product_keys, batch, seed=seed, negatives=examples.negatives)
    return softmax_dataset(examples, towers, batches) if len(batches) else None


def _regression_phase(config, towers, train_set, validation_set, *, epochs: int, skip_epochs: int = 0) -> _Phase:
    seed, batch = config.training.seed, config.training.batch_size
    data, steps = regression_dataset(train_set, towers, batch, epochs, seed)
    data = data.skip(skip_epochs * steps)
    validation = None
    if len(validation_set) >= batch:
        validation = regression_dataset(validation_set, towers, batch, 1, seed, shuffle=False)[0]
    return _Phase(data, steps, validation)


def _compile(model, config, total_steps: int) -> None:
    from semmatch_tf.training.losses import CosineRegressionLoss, InBatchSoftmaxLoss, in_batch_metrics
    from semmatch_tf.training.optimizers import build_optimizer
    from semmatch_tf.training.runtime import resolve_jit

    softmax = config.model.bi_encoder.loss == "in_batch_softmax"
    model.compile(optimizer=build_optimizer(config.training, total_steps),
                  loss=InBatchSoftmaxLoss() if softmax else CosineRegressionLoss(),
                  metrics=in_batch_metrics() if softmax else [],
                  steps_per_execution=config.training.steps_per_execution,
                  jit_compile=resolve_jit(config.training.jit_compile))


def _completed_epochs(directory: Path) -> int:
    """Epochs a killed run already finished (from the backup's metadata), to skip their batches."""
    from semmatch_tf.training.callbacks import completed_epochs

    return completed_epochs(directory)


def _fit(model, phase: _Phase, directory: Path, config, epochs: int, hparams: dict, verbose: int) -> dict:
    from semmatch_tf.training.callbacks import HISTORY_CSV, build_callbacks, fit_once, read_history_csv, start_fresh

    directory.mkdir(parents=True, exist_ok=True)
    history_csv = directory / HISTORY_CSV
    start_fresh(directory)  # not a resume: an earlier run's history and best checkpoint must not be read
    monitor = config.training.monitor
    if phase.validation is None:  # too few validation positives for one batch: watch the training value
        monitor = monitor.removeprefix("val_")
    callbacks = build_callbacks(directory, monitor=monitor, patience=config.training.early_stopping_patience,
                                hparams=hparams)
    fitted: dict = {}
    fit_once(model, directory, lambda: fitted.update(model.fit(
        phase.data, validation_data=phase.validation, epochs=epochs, steps_per_epoch=phase.steps,
        callbacks=callbacks, verbose=verbose, shuffle=False).history))  # batches are packed already
    try:  # the CSV spans resumed processes; this process's History does not
        return read_history_csv(history_csv)
    except (OSError, ValueError) as error:
        log.warning("could not read %s (%s): keeping this process's history only", history_csv, error)
        return fitted


def train_bi_encoder(config, run_dir: str | Path, splits: tuple[PairDataset, PairDataset, PairDataset], *,
                     verbose: int = 1) -> dict:
    """Train a ``*_bi_encoder`` family, write its run directory (module docstring); return the report.

    As for cross-encoders (``trainer.train``): one process per run directory (``run.lock``), the
    vocabulary written once and checked on a resume (``trainer.settle_vocabulary``), and
    ``backup/`` removed only after every file of the run is written.
    """
    from semmatch_tf.training.run_lock import run_lock

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        return _train_bi_encoder(config, run_dir, splits, verbose=verbose)


def _train_bi_encoder(config, run_dir: Path, splits: tuple[PairDataset, PairDataset, PairDataset], *,
                      verbose: int = 1) -> dict:
    """The body of :func:`train_bi_encoder`; the caller holds the run directory's lock."""
    from semmatch_tf import runs
    from semmatch_tf.evaluation.report import save_report
    from semmatch_tf.models import uses_own_vocabulary
    from semmatch_tf.models.bi_encoder import BiEncoder, TwoTowerEncoder, build_towers
    from semmatch_tf.training.callbacks import remove_backup
    from semmatch_tf.training.vocab import settle_vocabulary, training_texts
    from semmatch_tf.text import learn_vocabulary
    from semmatch_tf.training.runtime import distribution_strategy, seed_everything

    train_set, validation_set, test_set = splits
    bi, training = config.model.bi_encoder, config.training
    seed_everything(training.seed, training.deterministic)
    threshold = positive_threshold(train_set, bi.positive_grade)
    vocabulary = None
    if uses_own_vocabulary(config.model):  # pretrained BERT towers bring their checkpoint's vocabulary
        vocabulary = learn_vocabulary(training_texts(train_set),
                                      vocab_size=config.text.vocab_size, min_frequency=config.text.min_frequency,
                                      lowercase=config.text.lowercase, strip_accents=config.text.strip_accents)

    softmax = bi.loss == "in_batch_softmax"
    strategy = distribution_strategy(training.distribution)
    with strategy.scope():
        towers = build_towers(config.model, config.text, vocabulary=vocabulary)
        model = BiEncoder(towers.query_tower, None if towers.shared else towers.product_tower,
                          temperature=bi.temperature, output="similarities" if softmax else "cosine",
                          name="bi_encoder")
    resuming = (run_dir / "backup").exists() or (run_dir / "warmup" / "backup").exists()
    settle_vocabulary(run_dir, towers.query_preprocessor.vocabulary, resuming=resuming)  # written, or checked
    hparams = {"threshold": threshold, **_flat_hparams(config)}
    started = time.perf_counter()
    if softmax:
        history, steps = _train_softmax(model, towers, config, train_set, validation_set, threshold, run_dir,
                                        hparams, verbose, strategy)
    else:
        phase = _regression_phase(config, towers, train_set, validation_set, epochs=training.epochs,
                                  skip_epochs=_completed_epochs(run_dir))
        with strategy.scope():
            _compile(model, config, phase.steps * training.epochs)
        history, steps = _fit(model, phase, run_dir, config, training.epochs, hparams, verbose), phase.steps
    train_seconds = time.perf_counter() - started

    meta = {"family": FAMILY, "model_family": config.model.family, "shared_towers": towers.shared,
            "embedding_size": bi.embedding_size, "temperature": bi.temperature, "loss": bi.loss,
            "positive_grade": threshold, "hard_negatives": bi.hard_negatives,
            "hard_negative_source": bi.hard_negative_source, "normaliser": "l2",
            "query_length": config.text.query_length, "product_length": config.text.product_length}
    save_bi_encoder(run_dir, towers, meta, train_set.labels)
    runs.atomic_write_text(run_dir / runs.HISTORY, json.dumps(_plain_history(history), indent=2))
    encoder = TwoTowerEncoder.from_towers(towers, meta, run_dir)
    evaluation_set = test_set if len(test_set) else validation_set
    report = evaluate_bi_encoder(encoder, evaluation_set, catalogue=_all_products(splits))
    report["training"] = {"seconds": round(train_seconds, 1), "steps_per_epoch": steps,
                          "positive_grade": threshold, "epochs_run": len(next(iter(history.values()), []))}
    save_report(report, run_dir / runs.REPORT)
    _write_projector(encoder, _all_products(splits), run_dir)
    remove_backup(run_dir / "warmup")  # last: everything above exists now, a kill before this resumes instead
    remove_backup(run_dir)
    return report


def _train_softmax(model, towers, config, train_set, validation_set, threshold, run_dir, hparams, verbose, strategy):
    """In-batch softmax training; with ``model``-mined negatives, a warm-up phase first."""
    from semmatch_tf.models.bi_encoder import TwoTowerEncoder

    bi, epochs = config.model.bi_encoder, config.training.epochs
    if not (bi.hard_negatives and bi.hard_negative_source == "model"):
        phase = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=bi.hard_negatives,
                               source=bi.hard_negative_source, epochs=epochs, skip_epochs=_completed_epochs(run_dir))
        with strategy.scope():
            _compile(model, config, phase.steps * epochs)
        return _fit(model, phase, run_dir, config, epochs, hparams, verbose), phase.steps
    warm_epochs = max(1, epochs // 2)
    rest = max(1, epochs - warm_epochs)
    warm_dir, warm_weights = run_dir / "warmup", run_dir / "warmup" / "final.weights.h5"
    warm = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=0, source="judged",
                          epochs=warm_epochs, skip_epochs=_completed_epochs(warm_dir))
    with strategy.scope():
        _compile(model, config, warm.steps * (warm_epochs + rest))
    if warm_weights.is_file() and (warm_dir / "backup").exists():
        model.load_weights(warm_weights)  # resuming: the warm-up of this run finished before the kill
        first = _plain_history(_read_csv(warm_dir))
    else:
        first = _fit(model, warm, warm_dir, config, warm_epochs, hparams, verbose)
        model.save_weights(warm_weights.with_name(f".tmp-{warm_weights.name}"))
        os.replace(warm_weights.with_name(f".tmp-{warm_weights.name}"), warm_weights)
    encoder = TwoTowerEncoder.from_towers(towers)
    phase = _softmax_phase(config, towers, train_set, validation_set, threshold, hard=bi.hard_negatives,
                           source="model", encoder=encoder, epochs=rest, skip_epochs=_completed_epochs(run_dir))
    second = _fit(model, phase, run_dir, config, rest, hparams, verbose)
    return {k: list(first.get(k, [])) + list(second.get(k, [])) for k in {*first, *second}}, phase.steps


def _read_csv(directory: Path) -> dict:
    from semmatch_tf.training.callbacks import HISTORY_CSV, read_history_csv

    path = directory / HISTORY_CSV
    return read_history_csv(path) if path.exists() else {}


# -- saving and loading ---------------------------------------------------------------------------
def save_bi_encoder(run_dir: Path, towers, meta: dict, labels: LabelScheme) -> None:
    """Write towers, preprocessors and metadata (atomically, file by file)."""
    from semmatch_tf import runs
    from semmatch_tf.models.bi_encoder import save_layer

    runs.atomic_save_model(towers.query_tower, run_dir / QUERY_TOWER)
    if not towers.shared:
        runs.atomic_save_model(towers.product_tower, run_dir / PRODUCT_TOWER)
    save_layer(towers.query_preprocessor, run_dir / QUERY_PREPROCESSOR)
    save_layer(towers.product_preprocessor, run_dir / PRODUCT_PREPROCESSOR)
    runs.atomic_write_text(run_dir / BI_ENCODER_META, json.dumps(meta, indent=2))
    runs.atomic_write_text(run_dir / runs.LABELS, json.dumps({"family": FAMILY, "head": "similarity",
                                                              **labels.to_dict()}, indent=2, ensure_ascii=False))


def is_bi_encoder_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / BI_ENCODER_META).is_file()


def load_bi_encoder(run_dir: str | Path):
    """A finished bi-encoder run as a :class:`~semmatch_tf.models.bi_encoder.TwoTowerEncoder`."""
    import keras

    import semmatch_tf.models.bi_encoder  # noqa: F401  (registers the custom objects)
    import semmatch_tf.text  # noqa: F401
    from semmatch_tf.models.bi_encoder import TwoTowerEncoder

    run_dir = Path(run_dir)
    for name in (BI_ENCODER_META, QUERY_TOWER, QUERY_PREPROCESSOR, PRODUCT_PREPROCESSOR):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir}: not a finished bi-encoder run ({name} is missing)")
    meta = json.loads((run_dir / BI_ENCODER_META).read_text(encoding="utf-8"))
    query_tower = keras.saving.load_model(run_dir / QUERY_TOWER, compile=False)
    product_tower = (query_tower if meta.get("shared_towers")
                     else keras.saving.load_model(run_dir / PRODUCT_TOWER, compile=False))
    return TwoTowerEncoder(keras.saving.load_model(run_dir / QUERY_PREPROCESSOR), query_tower,
                           keras.saving.load_model(run_dir / PRODUCT_PREPROCESSOR), product_tower, meta, run_dir)


# -- evaluation -----------------------------------------------------------------------------------
def _all_products(splits) -> pd.DataFrame:
    """Every distinct product of the dataset (all splits): the retrieval catalogue of the report."""
    frame = pd.concat([s.frame for s in splits], ignore_index=True)
    frame = frame.drop_duplicates("product_id")
    return pd.DataFrame({"product_id": frame["product_id"].astype(str).to_numpy(),
                         "title": frame["product"].astype(str).to_numpy()})


def evaluate_bi_encoder(encoder, dataset: PairDataset, *, catalogue: pd.DataFrame | None = None,
                        ks: Sequence[int] = REPORT_KS, retrieval_ks: Sequence[int] = RETRIEVAL_KS,
                        batch_size: int = 256) -> dict:
    """Ranking metrics of ordering each query's judged products by cosine, overall and per language;
    with a catalogue, also retrieval metrics of each query's top results among all of it.

    Conventions are those of the cross-encoders' reports (``evaluation.report``): gain = grade -
    lowest grade, and a product is relevant (MRR, MAP, Recall) when its gain is at least half the
    largest gain, so ``format_report`` prints both kinds of run alike.
    """
    frame = dataset.frame
    report: dict = {"family": FAMILY, "dataset": {"name": dataset.name, "pairs": len(dataset)},
                    "counts": {"pairs": len(dataset), "queries": int(frame["query_id"].nunique())}}
    if not len(dataset):
        return report
    scores = pair_cosines(encoder, frame["query"].tolist(), frame["product"].tolist(), batch_size)
    report["ranking"] = _ranking_block(dataset, scores, ks)
    languages = frame["language"].to_numpy()
    report["by_language"] = {}
    for language in sorted(set(languages)):
        rows = np.flatnonzero(languages == language)
        part = dataset.subset(rows)
        report["by_language"][str(language)] = {
            "counts": {"pairs": int(len(rows)), "queries": int(part.frame["query_id"].nunique())},
            "ranking": _ranking_block(part, scores[rows], ks)}
    if catalogue is not None and len(catalogue):
        report["retrieval"] = retrieval_report(encoder, dataset, catalogue, retrieval_ks, batch_size)
    return report


def _relevance_threshold(labels: LabelScheme) -> float:
    return (labels.grade_range[1] - labels.grade_range[0]) / 2


def _ranking_block(dataset: PairDataset, scores: np.ndarray, ks: Sequence[int]) -> dict:
    from semmatch_tf.evaluation.ranking import ranking_metrics

    gains = dataset.frame["grade"].to_numpy(np.float64) - dataset.labels.grade_range[0]
    return ranking_metrics(dataset.frame["query_id"].to_numpy(), scores, gains, ks=tuple(ks),
                           relevance_threshold=_relevance_threshold(dataset.labels))


def pair_cosines(encoder, queries: Sequence[str], products: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """Cosine of each aligned (query, product) pair, each distinct text embedded once.

    The texts reach the encoder as given (not cast to ``str`` here), so it is the encoder that
    checks them: a missing text is an error there, not the embedded text "nan".
    """
    if len(queries) != len(products):
        raise ValueError(f"{len(queries)} queries but {len(products)} products: pairs must be aligned")
    unique_q, q_index = _distinct(queries)
    unique_p, p_index = _distinct(products)
    q = encoder.embed_queries(unique_q, batch_size=batch_size)
    p = encoder.embed_products(unique_p, batch_size=batch_size)
    return np.einsum("nd,nd->n", q[q_index], p[p_index]).astype(np.float64)


def _distinct(texts: Sequence[str]) -> tuple[list, np.ndarray]:
    """The distinct texts in first-seen order, and each text's position among them."""
    codes, uniques = pd.factorize(pd.Series(list(texts), dtype=object), use_na_sentinel=False)
    return uniques.tolist(), codes


def qrels_of(dataset: PairDataset) -> dict[str, dict[str, float]]:
    """``{query_id: {product_id: gain}}`` with gain = grade - lowest possible grade (0 = irrelevant)."""
    low = dataset.labels.grade_range[0]
    qrels: dict[str, dict[str, float]] = {}
    for qid, pid, grade in zip(dataset.frame["query_id"], dataset.frame["product_id"], dataset.frame["grade"]):
        qrels.setdefault(str(qid), {})[str(pid)] = max(float(grade) - low, qrels.get(str(qid), {}).get(str(pid), 0.0))
    return qrels


def retrieval_report(encoder, dataset: PairDataset, catalogue: pd.DataFrame, ks: Sequence[int],
                     batch_size: int = 256) -> dict:
    from semmatch_tf.evaluation.ranking import retrieval_metrics
    from semmatch_tf.retrieval.index import EmbeddingIndex, rankings_to_ids

    index = EmbeddingIndex.build(encoder, catalogue, batch_size, progress=False)
    queries = dataset.frame.drop_duplicates("query_id")
    rankings = index.search(encoder.embed_queries(queries["query"].tolist(), batch_size=batch_size), k=max(ks))
    ranked = dict(zip(queries["query_id"].astype(str), rankings_to_ids(rankings, index.ids)))
    metrics = retrieval_metrics(ranked, qrels_of(dataset), ks=tuple(ks),
                                relevance_threshold=_relevance_threshold(dataset.labels))
    return {"catalogue_size": len(catalogue), **metrics}


def _write_projector(encoder, catalogue: pd.DataFrame, run_dir: Path, limit: int = 2000) -> None:
    """Some product embeddings, labelled by title, for TensorBoard's projector."""
    from semmatch_tf.training.callbacks import write_embedding_projector

    sample = catalogue.head(limit)
    vectors = encoder.embed_products(sample["title"].tolist())
    write_embedding_projector(run_dir / "logs" / "projector", vectors, sample["title"].tolist(),
                              name="product_embeddings")


def _flat_hparams(config) -> dict:
    flat = {}
    for section in ("text", "model", "training"):
        for key, value in getattr(config, section).__dict__.items():
            if dataclasses.is_dataclass(value):
                flat.update({f"{section}.{key}.{k}": v for k, v in value.__dict__.items()})
            else:
                flat[f"{section}.{key}"] = value
    return flat


def _plain_history(history: dict) -> dict:
    return {k: [float(v) if v is not None and math.isfinite(float(v)) else None for v in values]
            for k, values in history.items()}


# Public names used by the CLI, the retrieval package and tests.
__all__ = ["train_bi_encoder", "load_bi_encoder", "is_bi_encoder_run", "evaluate_bi_encoder", "positive_threshold",
           "positive_examples", "add_hard_negatives", "pack_batches", "epoch_packings", "softmax_dataset",
           "regression_dataset", "pair_cosines", "qrels_of", "Examples"]
