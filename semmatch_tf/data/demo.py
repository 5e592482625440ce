"""The embedded demo catalogue: made-up multilingual e-commerce products, queries and judgements.

The files ship inside the package (``semmatch_tf/data/demo/``, written by
``tools/demo_build.py``), so the demo runs with no download. The data is invented for
demonstrations and tests; see ``semmatch_tf/data/demo/README.md``.
"""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd

from semmatch_tf.data.schema import LabelScheme, PairDataset, build_frame

#: Grades 0/1/2 are the class ids themselves (WANDS-style irrelevant / partial / exact).
DEMO_LABELS = LabelScheme(names=("irrelevant", "partial", "exact"), grades=(0.0, 1.0, 2.0), grade_range=(0.0, 2.0))

CATALOGUE_COLUMNS = ("product_id", "title", "language", "category", "brand")
QUERY_COLUMNS = ("query_id", "query", "language", "intent")


def _read_jsonl(name: str) -> list[dict]:
    text = resources.files("semmatch_tf.data").joinpath("demo", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_demo_catalogue() -> pd.DataFrame:
    """The demo products: ``product_id``, ``title``, ``language``, ``category``, ``brand``."""
    return pd.DataFrame(_read_jsonl("products.jsonl"), columns=list(CATALOGUE_COLUMNS))


def load_demo_queries() -> pd.DataFrame:
    """The demo queries: ``query_id``, ``query``, ``language``, ``intent``."""
    return pd.DataFrame(_read_jsonl("queries.jsonl"), columns=list(QUERY_COLUMNS))


def load_demo() -> PairDataset:
    """The embedded demo set: judged (query, product) pairs, shipped inside the package.

    ``label`` is the grade (0 irrelevant, 1 partial, 2 exact); ``language`` is the query's language
    (every query is judged against products in its own language). Rows keep the file's order.

    Returns:
        A :class:`PairDataset` named ``"demo"``.

    Examples:
        >>> demo = load_demo()
        >>> demo.name, demo.labels.names, "zh" in demo.languages
        ('demo', ('irrelevant', 'partial', 'exact'), True)
    """
    products = {p["product_id"]: p for p in _read_jsonl("products.jsonl")}
    queries = {q["query_id"]: q for q in _read_jsonl("queries.jsonl")}
    judgements = _read_jsonl("judgements.jsonl")
    frame = build_frame(
        query=[queries[j["query_id"]]["query"] for j in judgements],
        product=[products[j["product_id"]]["title"] for j in judgements],
        label=[int(j["grade"]) for j in judgements],
        grade=[float(j["grade"]) for j in judgements],
        language=[queries[j["query_id"]]["language"] for j in judgements],
        query_id=[j["query_id"] for j in judgements],
        product_id=[j["product_id"] for j in judgements],
    )
    return PairDataset(frame, DEMO_LABELS, name="demo")
