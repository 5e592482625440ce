"""Query understanding (issue 17), each piece measured by what it does to search.

    python -m benchmarks.run_query [--dense minilm-contrastive|minilm-zero-shot|none] [--dry]

Data: Home Depot, split by query exactly as benchmarks/run_retrieval.py (0.8/0.1/0.1, seed 13):
the catalogue is every distinct title (45,818), qrels are the held-out queries' judged grades minus 1.
:class:`semmatch_tf.query.QueryUnderstanding` is learned from the catalogue titles and the
*training* queries only. Rows (benchmark ``query_understanding``):

* ``corrector`` on ``tests/fixtures/query/spelling_home_depot.jsonl`` (hand-labelled test queries,
  see its README): precision (changed queries that became the intended text), recall (misspelled
  queries that became the intended text), the share of correctly spelled queries it changed, and the
  latency of one query's correction (p50/p99 over every test query, after a warm-up).
* ``extractor`` on ``tests/fixtures/query/attributes_home_depot.jsonl``: micro precision/recall/F1 of
  the attribute values, overall and per attribute (types compared by their head word, singular).
* BM25 nDCG@10 over the full catalogue: raw vs each piece (correction only; unit normalisation of
  queries and titles only; both; both + attribute boosts), each with a paired bootstrap (10k
  resamples of the 944 test queries) against raw BM25. The boost weights (agree / contradict) are
  chosen on the validation queries' nDCG@10, never on the test queries.
* The strongest pipeline this run can afford (hybrid BM25 + MiniLM fine-tuned contrastively on 6k
  training pairs, RRF, as in run_retrieval.py; ``--dense none``: BM25 alone) with vs without query
  understanding, paired bootstrap. The re-ranked system of run_retrieval.py is not re-run here: its
  re-ranker run is not on this machine, and re-ranking 2 x 944 x 100 pairs costs ~20 min on 2 cores.
* Match features: the char n-gram TF-IDF ridge baseline (benchmarks/baselines.py) trained on the
  training pairs, its score stacked with the 12 attribute-agreement features (query attribute agrees /
  contradicts the title's) into a gradient-boosted regressor fit on the validation pairs, vs the same
  stack without the attribute features: test RMSE of each and the paired-bootstrap RMSE gain.
* Ambiguous queries on the demo catalogue (apple, 苹果, mouse, jaguar, ...): per-sense recall in the
  top 10 (a sense = a catalogue category holding at least 2 products whose title contains the query;
  recall = share of (query, sense) pairs with a product of the sense in the top 10), with and without
  diversification, for BM25 and, when multilingual-e5-small is installed, hybrid BM25 + e5.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

# `python benchmarks/run_query.py` re-runs itself as `python -m benchmarks.run_query`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_query", *sys.argv[1:]])

from .common import REPO, data_dir, machine, publish, record  # noqa: E402

BENCH, DATASET = "query_understanding", "home_depot"
TEST, VALIDATION = "test(by-query)", "validation(by-query)"
FIXTURES = REPO / "tests" / "fixtures" / "query"
GRID = (0.0, 0.05, 0.1, 0.2, 0.3)
AMBIGUOUS = ("apple", "苹果", "mouse", "jaguar", "ratón", "マウス", "manzana")


def rec(split: str, model: str, metric: str, value: float, anchor: str | None = None, dataset: str = DATASET) -> dict:
    return record(BENCH, dataset, split, model, metric, value, anchor)


# -- data -----------------------------------------------------------------------------------------------
def load_home_depot():
    import pandas as pd

    from semmatch_tf.data import load_dataset, split_by_query

    pairs = load_dataset("home_depot", data_dir() / "home-depot-search-relevance" / "train.csv")
    train, validation, test = split_by_query(pairs, (0.8, 0.1, 0.1), seed=13)
    frame = pairs.frame.drop_duplicates("product_id")
    catalogue = pd.DataFrame({"product_id": frame["product_id"].astype(str).to_numpy(),
                              "title": frame["product"].astype(str).to_numpy()})
    return train, validation, test, catalogue


def qrels_of(split) -> dict:
    low = split.labels.grade_range[0]
    qrels: dict = {}
    for qid, pid, grade in zip(split.frame["query_id"], split.frame["product_id"], split.frame["grade"]):
        qrels.setdefault(str(qid), {})[str(pid)] = float(grade) - low
    return qrels


def queries_of(split) -> tuple[list[str], list[str]]:
    unique = split.frame.drop_duplicates("query_id")
    return unique["query_id"].astype(str).tolist(), unique["query"].astype(str).tolist()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- 1. the corrector ------------------------------------------------------------------------------------
def comparable(text: str) -> str:
    from semmatch_tf.query import key

    return key(text)


def corrector_records(qu, test_queries: list[str]) -> list[dict]:
    import numpy as np

    labelled = [r for r in read_jsonl(FIXTURES / "spelling_home_depot.jsonl") if r["intended"] is not None]
    changed = right_changed = misspelled = fixed = correct = correct_changed = 0
    random_correct = random_changed = 0
    for row in labelled:
        output = qu.analyse(row["query"]).corrected
        was_changed = comparable(output) != comparable(row["query"])
        accepted = {comparable(row["intended"]), *map(comparable, row["also_accepted"])}
        is_misspelled = comparable(row["intended"]) != comparable(row["query"])
        good = comparable(output) in accepted
        changed += was_changed
        right_changed += was_changed and good
        if is_misspelled:
            misspelled += 1
            fixed += good
        else:
            correct += 1
            correct_changed += was_changed
            if row["sample"] == "random":
                random_correct += 1
                random_changed += was_changed
    split = "test(spelling-sample)"
    records = [rec(split, "corrector", "precision", right_changed / max(1, changed)),
               rec(split, "corrector", "recall", fixed / max(1, misspelled)),
               rec(split, "corrector", "changed_share_of_correct", correct_changed / max(1, correct)),
               rec(split, "corrector", "changed_share_of_correct_random_sample", random_changed / max(1, random_correct)),
               rec(split, "corrector", "misspelled_queries", misspelled), rec(split, "corrector", "correct_queries", correct),
               rec(split, "corrector", "changed_queries", changed)]
    for query in test_queries[:50]:  # warm-up
        qu.corrector.correct(query)
    timings, full = [], []
    for query in test_queries:
        started = time.perf_counter()
        qu.corrector.correct(query)
        middle = time.perf_counter()
        qu.analyse(query)
        full.append(time.perf_counter() - middle)
        timings.append(middle - started)
    ms, full_ms = np.asarray(timings) * 1000, np.asarray(full) * 1000
    cost = "catalogue"
    records += [rec(cost, "corrector", "latency_p50_ms", float(np.percentile(ms, 50))),
                rec(cost, "corrector", "latency_p99_ms", float(np.percentile(ms, 99))),
                rec(cost, "query_understanding(all)", "latency_p50_ms", float(np.percentile(full_ms, 50))),
                rec(cost, "query_understanding(all)", "latency_p99_ms", float(np.percentile(full_ms, 99)))]
    return records


# -- 2. attributes ---------------------------------------------------------------------------------------
def attribute_values(attributes: dict) -> set[tuple[str, str]]:
    """(attribute, comparable value) pairs; a type is compared by its head word, singular."""
    values = set()
    for name, value in attributes.items():
        if value in (None, [], ""):
            continue
        for item in (value if isinstance(value, list) else [value]):
            text = comparable(str(item))
            if name == "type":
                text = text.split()[-1]
                text = text[:-2] if text.endswith("es") and text[:-2] + "e" != text[:-1] and len(text) > 4 \
                    and text[:-2].endswith(("sh", "ch", "x", "ss")) else text[:-1] if text.endswith("s") \
                    and not text.endswith("ss") else text
            values.add((name, text))
    return values


def extractor_records(qu) -> list[dict]:
    rows = read_jsonl(FIXTURES / "attributes_home_depot.jsonl")
    records = []
    for model, use_corrected in (("extractor(raw query)", False), ("extractor(corrected query)", True)):
        counts: dict[str, list[int]] = {}
        for row in rows:
            text = qu.analyse(row["query"]).corrected if use_corrected else row["query"]
            predicted = attribute_values(qu.extractor.extract(text))
            gold = attribute_values(row["attributes"])
            for name in {n for n, _ in predicted | gold} | {"all"}:
                p = {v for v in predicted if name in ("all", v[0])}
                g = {v for v in gold if name in ("all", v[0])}
                tally = counts.setdefault(name, [0, 0, 0])
                tally[0] += len(p & g)
                tally[1] += len(p)
                tally[2] += len(g)
        for name, (hits, predicted, gold) in sorted(counts.items()):
            precision, recall = hits / max(1, predicted), hits / max(1, gold)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            suffix = "" if name == "all" else f"_{name}"
            records += [rec("test(attribute-sample)", model, f"precision{suffix}", precision),
                        rec("test(attribute-sample)", model, f"recall{suffix}", recall),
                        rec("test(attribute-sample)", model, f"f1{suffix}", f1),
                        rec("test(attribute-sample)", model, f"gold_values{suffix}", gold)]
    return records


# -- 3. BM25 and the best pipeline -----------------------------------------------------------------------
def ranked_ids(searcher, query_ids, queries, k: int = 100) -> dict:
    return {qid: frame["product_id"].tolist() for qid, frame in zip(query_ids, searcher.search_many(queries, k=k))}


def gain_records(model: str, ranked: dict, baseline: dict, baseline_name: str, qrels: dict) -> list[dict]:
    from semmatch_tf.evaluation import paired_bootstrap, per_query_retrieval, retrieval_metrics

    metrics = retrieval_metrics(ranked, qrels, ks=(10, 100))
    result = paired_bootstrap(per_query_retrieval(ranked, qrels, ks=(10, 100)),
                              per_query_retrieval(baseline, qrels, ks=(10, 100)), "ndcg@10", samples=10_000, seed=0)
    metric = f"ndcg@10_gain_vs_{baseline_name}"
    anchor = f"{baseline_name} over the same catalogue"
    return [rec(TEST, model, "ndcg@10", metrics["ndcg@10"], anchor), rec(TEST, model, "recall@100", metrics["recall@100"], anchor),
            rec(TEST, model, "mrr", metrics["mrr"], anchor), rec(TEST, model, metric, result["difference"]),
            rec(TEST, model, f"{metric}_ci95_low", result["low"]), rec(TEST, model, f"{metric}_ci95_high", result["high"]),
            rec(TEST, model, f"{metric}_p_not_better", result["p_not_better"])]


def choose_boosts(searcher, qu, split) -> tuple[float, float, float]:
    """(agree, contradict, validation nDCG@10): the boost weights that rank the validation queries best.

    Stage-1 candidates and attribute agreements are computed once per query; each grid point then
    only re-sorts ``minmax(stage score) + a * agreements - c * contradictions``."""
    import numpy as np

    from semmatch_tf.evaluation import retrieval_metrics

    qrels = qrels_of(split)
    query_ids, queries = queries_of(split)
    understood = [qu.analyse(q) for q in queries]
    frames = searcher.candidates([u.search_text for u in understood], 100,
                                 dense_queries=[u.corrected for u in understood])
    column = searcher.stage_column
    prepared = []
    attributes = list(qu.config.boost_attributes)
    for frame, u in zip(frames, understood):
        ids = frame["product_id"].to_numpy()
        stage = frame[column].to_numpy(np.float64)
        span = stage.max() - stage.min() if len(stage) else 0.0
        base = (stage - stage.min()) / span if span > 0 else np.ones(len(stage))
        features = qu.agreement_features(u.attributes, [searcher._titles.get(p, "") for p in ids])
        agree = features[[f"{a}_agree" for a in attributes]].sum(axis=1).to_numpy(np.float64)
        contradict = features[[f"{a}_contradict" for a in attributes]].sum(axis=1).to_numpy(np.float64)
        prepared.append((ids, base, agree, contradict))
    grid = {}
    for a in GRID:
        for c in GRID:
            ranked = {}
            for qid, (ids, base, agree, contradict) in zip(query_ids, prepared):
                order = np.argsort(-(base + a * agree - c * contradict), kind="stable")
                ranked[qid] = ids[order].tolist()
            grid[a, c] = retrieval_metrics(ranked, qrels, ks=(10,))["ndcg@10"]
    best = max(sorted(grid), key=lambda key: grid[key])  # ties: the smaller weights
    print("validation nDCG@10 by (agree, contradict):", {f"{a},{c}": round(v, 4) for (a, c), v in sorted(grid.items())})
    return best[0], best[1], grid[best]


def with_config(qu, **changes):
    from semmatch_tf.query import QueryUnderstanding

    clone = QueryUnderstanding(qu.corrector, qu.extractor, dataclasses.replace(qu.config, **changes))
    clone._title_cache = qu._title_cache  # the same titles: share their extracted attributes
    return clone


def bm25_records(qu, catalogue, validation, test) -> tuple[list[dict], dict]:
    from semmatch_tf.retrieval import BM25Index, Searcher

    qrels = qrels_of(test)
    query_ids, queries = queries_of(test)
    started = time.perf_counter()
    raw_index = BM25Index.build(catalogue)
    normalised = catalogue.assign(title=[qu.normalise_title(t) or t for t in catalogue["title"]],
                                  original_title=catalogue["title"])
    norm_index = BM25Index.build(normalised)
    print(f"two BM25 indexes in {time.perf_counter() - started:.1f} s")
    no_boost = dict(agree_boost=0.0, contradict_penalty=0.0)
    raw = ranked_ids(Searcher(bm25=raw_index, mode="bm25"), query_ids, queries)
    systems = {
        "bm25+correction": Searcher(bm25=raw_index, mode="bm25",
                                    understander=with_config(qu, normalise_units=False, **no_boost)),
        "bm25+units": Searcher(bm25=norm_index, mode="bm25", understander=with_config(qu, correct=False, **no_boost)),
        "bm25+correction+units": Searcher(bm25=norm_index, mode="bm25", understander=with_config(qu, **no_boost)),
    }
    records = gain_records("bm25", raw, raw, "bm25", qrels)[:3]
    for name, searcher in systems.items():
        records += gain_records(name, ranked_ids(searcher, query_ids, queries), raw, "bm25", qrels)
    agree, contradict, val = choose_boosts(Searcher(bm25=norm_index, mode="bm25", understander=qu), qu, validation)
    records += [rec(VALIDATION, "bm25+query-understanding", "chosen_agree_boost", agree),
                rec(VALIDATION, "bm25+query-understanding", "chosen_contradict_penalty", contradict),
                rec(VALIDATION, "bm25+query-understanding", "ndcg@10", val)]
    full = Searcher(bm25=norm_index, mode="bm25", understander=with_config(qu, agree_boost=agree, contradict_penalty=contradict))
    records += gain_records("bm25+query-understanding", ranked_ids(full, query_ids, queries), raw, "bm25", qrels)
    return records, {"raw": raw_index, "normalised": norm_index, "boosts": (agree, contradict)}


def dense_encoder(kind: str, train, run_root: Path):
    """(name, encoder) of the dense half of the best pipeline, trained here when it needs training."""
    from semmatch_tf import load_config

    from . import run_retrieval

    if kind == "minilm-zero-shot":
        return "minilm-zero-shot", run_retrieval.minilm_zero_shot()
    config = load_config(REPO / "configs" / "home_depot_bilstm.yaml")
    encoder, _ = run_retrieval.minilm_fine_tuned(config, 6000, run_root)
    return "minilm-contrastive", encoder


def pipeline_records(args, qu, catalogue, train, validation, test, indexes) -> list[dict]:
    from semmatch_tf.retrieval import EmbeddingIndex, Searcher

    qrels = qrels_of(test)
    query_ids, queries = queries_of(test)
    if args.dense == "none":
        return []
    started = time.perf_counter()
    name, encoder = dense_encoder(args.dense, train, args.runs)
    dense = EmbeddingIndex.build(encoder, catalogue, batch_size=512, progress=False)
    print(f"{name}: trained and indexed in {time.perf_counter() - started:.0f} s")
    plain = Searcher(dense, encoder, bm25=indexes["raw"], mode="hybrid")
    system = f"hybrid(bm25+{name})"
    baseline = ranked_ids(plain, query_ids, queries)
    tuned = Searcher(dense, encoder, bm25=indexes["normalised"], mode="hybrid", understander=qu)
    agree, contradict, val = choose_boosts(tuned, qu, validation)
    records = [rec(VALIDATION, f"{system}+query-understanding", "chosen_agree_boost", agree),
               rec(VALIDATION, f"{system}+query-understanding", "chosen_contradict_penalty", contradict),
               rec(VALIDATION, f"{system}+query-understanding", "ndcg@10", val)]
    records += gain_records(system, baseline, baseline, system, qrels)[:3]
    final = Searcher(dense, encoder, bm25=indexes["normalised"], mode="hybrid",
                     understander=with_config(qu, agree_boost=agree, contradict_penalty=contradict))
    records += gain_records(f"{system}+query-understanding", ranked_ids(final, query_ids, queries), baseline, system, qrels)
    return records


# -- 4. attribute-agreement match features ---------------------------------------------------------------
def stacking_records(qu, train, validation, test) -> list[dict]:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from .baselines import CharNgramRidge
    from semmatch_tf.evaluation import paired_bootstrap_statistic, rmse

    started = time.perf_counter()
    base = CharNgramRidge().fit(train.frame["query"].tolist(), train.frame["product"].tolist(), train.frame["grade"].to_numpy())
    print(f"char TF-IDF ridge fitted in {time.perf_counter() - started:.0f} s")

    def features(split) -> tuple[pd.DataFrame, pd.DataFrame]:
        score = base.predict(split.frame["query"].tolist(), split.frame["product"].tolist())
        rows = []
        cache: dict[str, dict] = {}
        for query, title in zip(split.frame["query"], split.frame["product"]):
            if query not in cache:
                cache[query] = qu.analyse(query).attributes
            rows.append(qu.agreement_features(cache[query], [title]).iloc[0].to_dict())
        agreement = pd.DataFrame(rows).astype(np.float64)
        plain = pd.DataFrame({"ridge": score})
        return plain, pd.concat([plain, agreement], axis=1)

    (val_plain, val_full), (test_plain, test_full) = features(validation), features(test)
    gold = test.frame["grade"].to_numpy(np.float64)
    predictions = {}
    for name, (fit_x, test_x) in {"stack(ridge)": (val_plain, test_plain),
                                  "stack(ridge+attribute-agreement)": (val_full, test_full)}.items():
        model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0)
        model.fit(fit_x, validation.frame["grade"].to_numpy(np.float64))
        predictions[name] = np.clip(model.predict(test_x), 1.0, 3.0)
    split = "test(pairs)"
    anchor = "char-ngram ridge (benchmarks/baselines.py), same run"
    records = [rec(split, "char-ngram-ridge", "rmse", rmse(gold, np.clip(test_plain["ridge"], 1, 3)), anchor)]
    records += [rec(split, name, "rmse", rmse(gold, p), anchor) for name, p in predictions.items()]
    result = paired_bootstrap_statistic(rmse, gold, predictions["stack(ridge+attribute-agreement)"],
                                        predictions["stack(ridge)"], samples=2000, seed=0, higher_is_better=False)
    model = "stack(ridge+attribute-agreement)"
    records += [rec(split, model, "rmse_gain_vs_stack(ridge)", result["difference"]),
                rec(split, model, "rmse_gain_vs_stack(ridge)_ci95_low", result["low"]),
                rec(split, model, "rmse_gain_vs_stack(ridge)_ci95_high", result["high"]),
                rec(split, model, "rmse_gain_vs_stack(ridge)_p_not_better", result["p_not_better"])]
    return records


# -- 5. ambiguous queries on the demo catalogue ----------------------------------------------------------
def ambiguity_records(run_root: Path) -> list[dict]:
    import tempfile

    from semmatch_tf.data import load_demo_catalogue
    from semmatch_tf.retrieval import build_index, load_searcher
    from semmatch_tf.text import fold
    from semmatch_tf.weights import ensure_weights

    catalogue = load_demo_catalogue()
    gold = {}
    for query in AMBIGUOUS:
        matching = catalogue[[fold(query) in fold(t) for t in catalogue["title"]]]
        counts = matching["category"].value_counts()
        gold[query] = set(counts[counts >= 2].index)
    records = [rec("demo(ambiguous)", "gold", "senses", sum(len(s) for s in gold.values()), dataset="demo")]
    builds = [("bm25", None)]
    if ensure_weights("multilingual-e5-small") is not None:
        builds.append(("hybrid(bm25+e5)", "multilingual-e5-small"))
    with tempfile.TemporaryDirectory(dir=run_root) as tmp:
        for name, pretrained in builds:
            index = Path(tmp) / name
            build_index(None, "demo", index, pretrained=pretrained, query_understanding=True, progress=False)
            mode = "hybrid" if pretrained else "bm25"
            searcher = load_searcher(index, mode=mode)
            for label, diversify in (("", False), ("+diversified", True)):
                searcher.understander = with_config(searcher.understander, diversify=diversify)
                hits = total = detected = 0
                for query in AMBIGUOUS:
                    results = searcher.search(query, k=10)
                    shown = set(catalogue.set_index("product_id").loc[results["product_id"], "category"])
                    hits += len(gold[query] & shown)
                    total += len(gold[query])
                    detected += results.attrs["query_understanding"]["ambiguous"]
                records += [rec("demo(ambiguous)", f"{name}{label}", "sense_recall@10", hits / max(1, total), dataset="demo"),
                            rec("demo(ambiguous)", f"{name}{label}", "ambiguous_detected_share",
                                detected / len(AMBIGUOUS), dataset="demo")]
    return records


# -- main -------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dense", choices=("minilm-contrastive", "minilm-zero-shot", "none"), default="minilm-contrastive",
                        help="the dense half of the best pipeline (none: BM25 only)")
    parser.add_argument("--skip", action="append", default=[], choices=("corrector", "attributes", "bm25", "pipeline",
                                                                         "stacking", "ambiguity"))
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "benchmarks")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.runs.mkdir(parents=True, exist_ok=True)
    from semmatch_tf.query import QueryUnderstanding

    print(f"machine: {machine()}")
    train, validation, test, catalogue = load_home_depot()
    started = time.perf_counter()
    qu = QueryUnderstanding.build(catalogue, queries_of(train)[1])
    head = [rec("catalogue", "query_understanding", "build_seconds", time.perf_counter() - started),
            rec("catalogue", "catalogue", "titles", len(catalogue)), rec("catalogue", "test", "queries", len(queries_of(test)[0]))]
    publish(head, dry=args.dry)  # each step publishes its rows as soon as it has them
    state: dict = {}

    def lexical() -> list[dict]:
        records, state["indexes"] = bm25_records(qu, catalogue, validation, test)
        return records

    steps = [("corrector", lambda: corrector_records(qu, queries_of(test)[1])),
             ("attributes", lambda: extractor_records(qu)),
             ("bm25", lexical),
             ("ambiguity", lambda: ambiguity_records(args.runs)),
             ("stacking", lambda: stacking_records(qu, train, validation, test)),
             ("pipeline", lambda: pipeline_records(args, qu, catalogue, train, validation, test, state["indexes"]))]
    for name, step in steps:
        if name in args.skip and not (name == "bm25" and "pipeline" not in args.skip):
            continue
        started = time.perf_counter()
        records = step()
        print(f"[{name}] {time.perf_counter() - started:.0f} s")
        if name not in args.skip:
            publish(records, dry=args.dry)


if __name__ == "__main__":
    main()
