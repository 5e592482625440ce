"""Bi-encoder training data: positives, hard negatives, duplicate-free batches, tf.data.

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

Used by the bi-encoder trainer (:mod:`semmatch_tf.training.contrastive`, which re-exports these
names) and by the cross-encoders' mined negatives (:mod:`semmatch_tf.training.negatives`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import pandas as pd

from semmatch_tf.data.schema import PairDataset, text_key  # noqa: F401 (text_key re-exported)
from semmatch_tf.retrieval.bm25 import BM25Index
from semmatch_tf.retrieval.index import EmbeddingIndex


# -- positives ------------------------------------------------------------------------------------
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
    catalogue = _catalogue_of(dataset)
    index = BM25Index.build(catalogue)
    queries = _distinct_queries(dataset)
    rankings = index.search(list(queries.values()), k=depth)
    keys = catalogue["product_id"].to_numpy(dtype=object)
    return {query: [keys[i] for i in ranking.indices] for query, ranking in zip(queries, rankings)}


def model_candidates(dataset: PairDataset, encoder, depth: int) -> dict[str, list[str]]:
    """Per query key: its top-``depth`` products by cosine under ``encoder`` (a TwoTowerEncoder)."""
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

    from semmatch_tf.compute import per_object_function

    fn = per_object_function(lambda strings: preprocessor(strings), [tf.TensorSpec([None], tf.string)])
    parts = [keras.tree.map_structure(lambda t: t.numpy(), fn(tf.constant(list(texts[s:s + batch_size]), tf.string)))
             for s in range(0, len(texts), batch_size)]
    return keras.tree.map_structure(lambda *arrays: np.concatenate(arrays), *parts)


def _gatherer(table):
    import keras
    import tensorflow as tf

    constants = keras.tree.map_structure(tf.constant, table)
    return lambda rows: keras.tree.map_structure(lambda t: tf.gather(t, rows), constants)


def softmax_dataset(examples: Examples, towers, batches: np.ndarray):
    """``{"query", "product"[, "negatives"]}`` per packed batch, with no labels: the positive of each
    query is its own row's product (:meth:`~semmatch_tf.models.two_tower.TwoTowerModel.compute_loss`)."""
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

    def assemble(rows):
        features = {"query": gather_queries(rows["query"]), "product": gather_products(rows["product"])}
        if "negatives" in rows:
            features["negatives"] = gather_products(rows["negatives"])
        return features

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
