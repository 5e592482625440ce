"""The embedded demo catalogue: documented counts, label sanity, ambiguity, regeneration, learnability.

No TensorFlow here: these checks read the shipped JSON Lines files and the generator only.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from importlib import resources

import numpy as np
import pytest

from semmatch_tf.data.demo import (DEMO_LABELS, load_demo, load_demo_catalogue, load_demo_queries)
from semmatch_tf.data.schema import COLUMNS

# The counts documented in semmatch_tf/data/demo/README.md.
PRODUCTS = {"en": 145, "zh": 81, "ja": 81, "es": 81}
QUERIES = {"en": 80, "zh": 40, "ja": 40, "es": 40}
PAIRS = 2440
PAIRS_BY_GRADE = {0: 1692, 1: 479, 2: 269}


def _shipped(name: str) -> bytes:
    return resources.files("semmatch_tf.data").joinpath("demo", name).read_bytes()


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in _shipped(name).decode("utf-8").splitlines()]


@pytest.fixture(scope="module")
def data():
    products = {p["product_id"]: p for p in _jsonl("products.jsonl")}
    queries = {q["query_id"]: q for q in _jsonl("queries.jsonl")}
    judgements = _jsonl("judgements.jsonl")
    by_query = defaultdict(list)
    for row in judgements:
        by_query[row["query_id"]].append(row)
    return products, queries, judgements, by_query


def _query_id(queries: dict, text: str) -> str:
    (qid,) = [qid for qid, q in queries.items() if q["query"] == text]
    return qid


def test_counts_are_as_documented(data):
    products, queries, judgements, _ = data
    assert Counter(p["language"] for p in products.values()) == PRODUCTS
    assert Counter(q["language"] for q in queries.values()) == QUERIES
    assert len(judgements) == PAIRS
    assert Counter(j["grade"] for j in judgements) == PAIRS_BY_GRADE
    readme = _shipped("README.md").decode("utf-8")
    assert "made up" in readme
    total_row = (f"| all | {sum(PRODUCTS.values())} | {sum(QUERIES.values())} | {PAIRS} | "
                 + " | ".join(str(PAIRS_BY_GRADE[g]) for g in range(3)) + " |")
    assert total_row in readme
    language_of = {qid: q["language"] for qid, q in queries.items()}
    for lang in PRODUCTS:
        grades = Counter(j["grade"] for j in judgements if language_of[j["query_id"]] == lang)
        row = (f"| {lang} | {PRODUCTS[lang]} | {QUERIES[lang]} | {sum(grades.values())} | "
               + " | ".join(str(grades[g]) for g in range(3)) + " |")
        assert row in readme


def test_language_mix(data):
    products, queries, _, _ = data
    for records in (products.values(), queries.values()):
        share = Counter(r["language"] for r in records)
        total = sum(share.values())
        assert 0.35 <= share["en"] / total <= 0.45
        for lang in ("zh", "ja", "es"):
            assert 0.15 <= share[lang] / total <= 0.25


def test_every_language_has_all_grades(data):
    _, queries, judgements, _ = data
    grades = defaultdict(set)
    for j in judgements:
        grades[queries[j["query_id"]]["language"]].add(j["grade"])
    assert dict(grades) == {lang: {0, 1, 2} for lang in PRODUCTS}


def test_no_empty_text(data):
    products, queries, _, _ = data
    for p in products.values():
        for field in ("title", "category", "brand"):
            assert p[field].strip() == p[field] and p[field], p
    for q in queries.values():
        for field in ("query", "intent"):
            assert q[field].strip() == q[field] and q[field], q
    assert len({(p["language"], p["title"]) for p in products.values()}) == len(products)
    assert len({(q["language"], q["query"]) for q in queries.values()}) == len(queries)


def test_ids_resolve_and_pairs_are_unique(data):
    products, queries, judgements, by_query = data
    assert len(products) == len(_jsonl("products.jsonl")) and len(queries) == len(_jsonl("queries.jsonl"))
    for j in judgements:
        assert j["query_id"] in queries and j["product_id"] in products
        assert j["grade"] in (0, 1, 2)
        # A query is judged only against products in its own language.
        assert products[j["product_id"]]["language"] == queries[j["query_id"]]["language"]
    assert len({(j["query_id"], j["product_id"]) for j in judgements}) == len(judgements)
    assert set(by_query) == set(queries)
    for qid, rows in by_query.items():
        assert any(r["grade"] == 2 for r in rows), queries[qid]
        assert any(r["grade"] == 0 for r in rows), queries[qid]


def _grades_of(data, text: str) -> list[tuple[int, dict]]:
    products, queries, _, by_query = data
    return [(r["grade"], products[r["product_id"]]) for r in by_query[_query_id(queries, text)]]


@pytest.mark.parametrize("brand_query, fruit_query", [
    ("apple iphone charger", "fresh apples"),
    ("苹果充电器", "新鲜苹果"),
    ("アップル 充電器", "りんご ふじ"),
    ("cargador apple iphone", "manzanas frescas"),
])
def test_apple_brand_and_fruit_get_opposite_grades(data, brand_query, fruit_query):
    brand_judged = _grades_of(data, brand_query)
    fruit_judged = _grades_of(data, fruit_query)
    # The brand query: an Apple product is exact; judged fruit (the other sense) is irrelevant.
    assert any(g == 2 and p["brand"] == "Apple" for g, p in brand_judged)
    judged_fruit = [g for g, p in brand_judged if p["category"] == "groceries"]
    assert judged_fruit and set(judged_fruit) == {0}
    # The fruit query: fruit is exact; judged Apple-brand products are irrelevant.
    assert any(g == 2 and p["category"] == "groceries" for g, p in fruit_judged)
    judged_brand = [g for g, p in fruit_judged if p["brand"] == "Apple"]
    assert judged_brand and set(judged_brand) == {0}


@pytest.mark.parametrize("query, wanted, other", [
    ("wireless mouse", "electronics", "home"),       # computer mouse vs mouse trap
    ("mouse trap", "home", "electronics"),
    ("jaguar plush toy", "toys", "automotive"),      # the animal vs the car make
    ("jaguar car floor mats", "automotive", "toys"),
    ("ジャガー ぬいぐるみ", "toys", "automotive"),
])
def test_other_ambiguous_senses(data, query, wanted, other):
    judged = _grades_of(data, query)
    assert any(g == 2 and p["category"] == wanted for g, p in judged)
    assert all(g == 0 for g, p in judged if p["category"] == other)


def _demo_build():
    """``tools/demo_build.py``, the build-time generator (not in the installed package)."""
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("demo_build", REPO / "tools" / "demo_build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_build"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_regeneration_is_byte_identical(tmp_path):
    demo_build = _demo_build()
    assert demo_build.main(["--out", str(tmp_path)]) == 0
    for name in demo_build.FILES:
        assert (tmp_path / name).read_bytes() == _shipped(name), f"{name} differs: rerun demo_build"


def test_load_demo_is_canonical():
    dataset = load_demo()
    assert dataset.name == "demo"
    assert tuple(dataset.frame.columns) == COLUMNS
    assert len(dataset) == PAIRS
    assert dataset.labels == DEMO_LABELS
    assert dataset.labels.names == ("irrelevant", "partial", "exact")
    assert dataset.labels.grades == (0, 1, 2) and dataset.labels.grade_range == (0, 2)
    frame = dataset.frame
    assert frame["label"].dtype == np.int64 and frame["grade"].dtype == np.float64
    np.testing.assert_array_equal(frame["label"].to_numpy(), frame["grade"].to_numpy())
    assert dataset.languages == ["en", "es", "ja", "zh"]
    assert frame["query"].str.len().min() > 0 and frame["product"].str.len().min() > 0
    row = frame[(frame["query"] == "fresh apples") & (frame["label"] == 2)].iloc[0]
    assert "Apples" in row["product"] and row["language"] == "en"


def test_catalogue_and_query_frames():
    catalogue = load_demo_catalogue()
    assert list(catalogue.columns) == ["product_id", "title", "language", "category", "brand"]
    assert len(catalogue) == sum(PRODUCTS.values()) and catalogue["product_id"].is_unique
    assert {"phones", "groceries", "clothing", "kitchen", "tools", "electronics", "toys", "home"} <= set(catalogue["category"])
    queries = load_demo_queries()
    assert list(queries.columns) == ["query_id", "query", "language", "intent"]
    assert len(queries) == sum(QUERIES.values()) and queries["query_id"].is_unique


def test_demo_modules_do_not_import_tensorflow():
    code = ("import sys, semmatch_tf.data.demo; "
            "semmatch_tf.data.demo.load_demo(); assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ learnability sanity check


def _bigrams(text: str) -> set[str]:
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    words = "".join(c for c in folded if not unicodedata.combining(c)).split()
    return {w[i:i + 2] for w in words for i in range(max(1, len(w) - 1))}


def _jaccard(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


def _ndcg(grades: list[int], k: int = 5) -> float:
    def dcg(values):
        return sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(values[:k]))
    ideal = dcg(sorted(grades, reverse=True))
    return dcg(grades) / ideal if ideal else 0.0


def test_character_overlap_beats_random_ranking(data):
    """Words carry the labels: a bigram-Jaccard scorer ranks clearly better than chance."""
    products, queries, _, by_query = data
    rng = random.Random(0)
    overlap_ndcg, random_ndcg, top1, mean_grade = defaultdict(list), defaultdict(list), [], []
    for qid, rows in by_query.items():
        query = queries[qid]
        scored = sorted(rows, key=lambda r: (-_jaccard(query["query"], products[r["product_id"]]["title"]),
                                             r["product_id"]))
        grades = [r["grade"] for r in scored]
        overlap_ndcg[query["language"]].append(_ndcg(grades))
        random_ndcg[query["language"]].append(np.mean([_ndcg(rng.sample(grades, len(grades))) for _ in range(20)]))
        top1.append(grades[0])
        mean_grade.append(np.mean(grades))
    for lang in PRODUCTS:
        assert np.mean(overlap_ndcg[lang]) > np.mean(random_ndcg[lang]) + 0.3, lang
    assert np.mean(top1) > np.mean(mean_grade) + 0.8
