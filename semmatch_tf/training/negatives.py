"""Mined negatives for pointwise cross-encoders: unjudged BM25 neighbours added as irrelevant pairs.

A cross-encoder trained only on judged pairs has seen just what the shop's old engine showed the
raters: mostly plausible products. Re-ranking a retriever's top-N over the whole catalogue, most
of its candidates were never judged, and it has never been taught to push them down.
:func:`with_mined_negatives` adds, for every training query, ``count`` products drawn from its
top-``depth`` BM25 results over the training split's products that were not judged for it,
labelled with the lowest grade (class). Unjudged products can be relevant, so this trades some
label noise for hardness, as the bi-encoders' BM25 hard negatives do
(:mod:`semmatch_tf.training.bi_encoder_examples`). Only the training split is touched: validation and
test stay as judged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from semmatch_tf.data.schema import PairDataset
from semmatch_tf.training.bi_encoder_examples import bm25_candidates, judged_by_query, text_key


def with_mined_negatives(dataset: PairDataset, *, count: int, depth: int, seed: int) -> PairDataset:
    """``dataset`` plus up to ``count`` mined irrelevant pairs per distinct query (see module doc)."""
    if count <= 0:
        return dataset
    if depth < count:
        raise ValueError(f"mined negatives: depth {depth} must be at least count {count}")
    frame = dataset.frame
    candidates = bm25_candidates(dataset, depth)
    judged = judged_by_query(dataset)
    products = frame.assign(key=frame["product"].map(text_key)).drop_duplicates("key").set_index("key")
    lowest_grade = float(dataset.labels.grade_range[0])
    lowest_class = int(dataset.labels.class_of_grade(lowest_grade)[0])
    rng = np.random.default_rng(seed)
    rows = []
    for query in frame.drop_duplicates("query_id").itertuples(index=False):
        key = text_key(query.query)
        pool = [c for c in candidates.get(key, []) if c not in judged.get(key, {})]
        for choice in rng.permutation(len(pool))[:count]:
            product = products.loc[pool[choice]]
            rows.append({"query_id": query.query_id, "query": query.query, "product_id": product["product_id"],
                         "product": product["product"], "label": lowest_class, "grade": lowest_grade,
                         "language": query.language})
    if not rows:
        return dataset
    mined = pd.DataFrame(rows).astype(frame.dtypes.to_dict())
    return PairDataset(pd.concat([frame, mined], ignore_index=True), dataset.labels, dataset.name)
