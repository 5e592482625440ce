"""Beyond one machine, measured on one: Beam embedding throughput and the sharded index at scale.

Part 1, Beam vs in-process (issue 19 goal: >= 0.8x the in-process throughput, identical vectors):
a BiLSTM bi-encoder is trained briefly on Home Depot pairs (the model is the same for both sides;
its quality is not measured here) and exported; the first ``--titles`` (50k) distinct Home Depot
product titles are written to a JSONL file. Both sides go from that file to an index on disk:
in-process = ``read_catalogue`` + ``EmbeddingIndex.build`` (the Keras towers, what ``semmatch-tf
index`` runs) + ``save``; Beam = ``embed_batch`` on the DirectRunner (RunInference over the
SavedModel, 8 index shards). Vectors are compared row by row (max |difference|). Home Depot has
45,818 distinct products: the 50k are those plus 4,182 synthetic titles (made as in part 2).

Part 2, the index curve at 10k / 100k / 1M products: the same bi-encoder embeds the real titles
and, past them, synthetic titles made from the real catalogue's vocabulary (each a real title whose
words are replaced, with probability 0.5, by words drawn from the catalogue's word frequencies;
lengths follow the real titles). Queries: 1,000 real Home Depot search terms (embed_query). For
each size: exact sharded search (the baseline: recall 1 by definition) and faiss IVF-flat (merged)
and HNSW (per shard, up to ``--hnsw-max``); build seconds, the index's memory (vectors + faiss
structures, serialised bytes) and the process's RSS growth, one-query-at-a-time p50/p99 latency,
recall@10 against exact (latency: per query the median of 3 timings, then p50/p99 over 500
queries). The machine is shared with other agents' jobs: absolute times are loaded.

    .venv/bin/python -m benchmarks.run_scale               # full (about 15-25 min on 2 shared cores)
    .venv/bin/python -m benchmarks.run_scale --quick --dry # smoke run, prints records only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# `python benchmarks/run_scale.py` re-runs itself as `python -m benchmarks.run_scale`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_scale", *sys.argv[1:]])

from .common import data_dir, publish, record  # noqa: E402

BENCH = "scale"
# embed_batch's default on the DirectRunner (no flags: one in-memory worker), and two threads.
BEAM_MODES = {"default (bundle-based direct runner)": (),  # semmatch_tf.batch's default without a --runner flag
              "FnApiRunner, 1 worker": ("--runner=DirectRunner",),  # Beam's own DirectRunner default
              "FnApiRunner, 2 threads": ("--direct_running_mode=multi_threading", "--direct_num_workers=2")}
PARQUET = "default, parquet input"  # the default mode on the same titles as one Parquet file
LOADED = f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores when the run started"
LATENCY = LOADED + "; one query at a time, median of 3 timings per query, 500 queries"


def home_depot() -> pd.DataFrame:
    return pd.read_csv(data_dir() / "home-depot-search-relevance" / "train.csv", encoding="latin-1")


def train_bi_encoder(work: Path, pairs: int):
    from semmatch_tf import RunConfig, train
    from semmatch_tf.export import export_bi_encoder
    from semmatch_tf.training import load_bi_encoder

    config = RunConfig.from_dict({
        "data": {"format": "home_depot", "path": str(data_dir() / "home-depot-search-relevance" / "train.csv"),
                 "split": [0.9, 0.05, 0.05], "seed": 13, "limit": pairs},
        "text": {"vocab_size": 8000, "min_frequency": 2, "query_length": 8, "product_length": 24},
        "model": {"family": "bilstm_bi_encoder", "embedding_dim": 64, "lstm_units": 64, "pooling": "max",
                  "dropout": 0.1, "bi_encoder": {"embedding_size": 64, "positive_grade": 2.5}},
        "training": {"epochs": 1, "batch_size": 64, "learning_rate": 0.002, "early_stopping_patience": None}})
    started = time.perf_counter()
    train(config, work / "bi_run", verbose=0)
    encoder = load_bi_encoder(work / "bi_run")
    export = export_bi_encoder(encoder, work / "serving", name="bi")
    print(f"bi-encoder trained and exported in {time.perf_counter() - started:.0f} s: {export}", flush=True)
    return encoder, export


def catalogue_titles(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    products = frame.drop_duplicates("product_uid")[["product_uid", "product_title"]].head(count)
    return pd.DataFrame({"product_id": products["product_uid"].astype(str), "title": products["product_title"]})


def synthetic_titles(real: pd.Series, count: int, seed: int = 0) -> list[str]:
    """Titles shaped like the real ones (a real title as template, half its words replaced by words
    drawn from the catalogue's word frequencies)."""
    rng = np.random.default_rng(seed)
    words = pd.Series(" ".join(real).split()).value_counts()
    vocabulary, weights = words.index.to_numpy(), (words / words.sum()).to_numpy()
    templates = real.to_numpy()[rng.integers(0, len(real), count)]
    draws = iter(rng.choice(vocabulary, size=count * 40, p=weights))
    titles = []
    for template in templates:
        titles.append(" ".join(next(draws) if rng.random() < 0.5 else word for word in template.split()[:40]))
    return titles


# -- part 1: Beam vs in-process ------------------------------------------------------------------------
def write_titles(products: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        products[["product_id", "title"]].to_parquet(path, index=False)
        return path
    with open(path, "w", encoding="utf-8") as handle:
        for row in products.itertuples(index=False):
            handle.write(json.dumps({"product_id": row.product_id, "title": row.title}, ensure_ascii=False) + "\n")
    return path


def time_in_process(encoder, source: Path, work: Path):
    """Seconds for ``EmbeddingIndex.build`` + ``save`` from the file (model loaded), and the index."""
    from semmatch_tf.retrieval import EmbeddingIndex, read_catalogue

    shutil.rmtree(work / "in_process_index", ignore_errors=True)
    started = time.perf_counter()
    index = EmbeddingIndex.build(encoder, read_catalogue(source), 256, progress=False)
    index.save(work / "in_process_index")
    return time.perf_counter() - started, index


def time_beam(export: Path, source: Path, flags: tuple, index_dir: Path) -> tuple[float, int]:
    """Seconds for ``embed_batch`` to an 8-shard index, and the records indexed (0: the run stopped
    on embed_batch's completeness check, a lost chunk)."""
    from semmatch_tf.batch import BatchJob, embed_batch
    from semmatch_tf.retrieval import ShardedIndex

    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    try:
        embed_batch(BatchJob(str(export), str(source), None, batch_size=256, pipeline_args=flags),
                    index_dir=str(index_dir), shards=8)
    except RuntimeError as error:
        print(f"beam {flags}: {error}", flush=True)
        return time.perf_counter() - started, 0
    return time.perf_counter() - started, len(ShardedIndex.load(index_dir / "dense"))


def beam_vs_in_process(encoder, export: Path, products: pd.DataFrame, work: Path, reps: int) -> list[dict]:
    """In-process and each Beam mode measured in turn, ``reps`` rounds; medians compared."""
    from semmatch_tf.retrieval import ExportedEncoder, ShardedIndex
    from semmatch_tf.training import load_bi_encoder

    source, n = write_titles(products, work / "titles.jsonl"), len(products)
    parquet = write_titles(products, work / "titles.parquet")
    # cold: what `semmatch-tf index --model RUN` does, loading the model included (Beam loads its SavedModel too)
    started = time.perf_counter()
    time_in_process(load_bi_encoder(work / "bi_run"), source, work)
    in_process_cold = time.perf_counter() - started
    encoder.embed_products(products["title"].head(512).tolist(), batch_size=256, progress=False)  # warm-up
    times, indexed = {"in-process": []}, {}
    for rep in range(reps):
        seconds, index = time_in_process(encoder, source, work)
        times["in-process"].append(seconds)
        for number, (name, flags) in enumerate(BEAM_MODES.items()):
            seconds, count = time_beam(export, source, flags, work / f"beam_index_{number}")
            times.setdefault(name, []).append(seconds)
            indexed.setdefault(name, []).append(count)
            print(f"round {rep}: in-process {times['in-process'][-1]:.1f} s, beam {name} {seconds:.1f} s, "
                  f"{count} indexed", flush=True)
        times.setdefault("in-process, parquet input", []).append(time_in_process(encoder, parquet, work)[0])
        seconds, count = time_beam(export, parquet, (), work / "beam_index_parquet")
        times.setdefault(PARQUET, []).append(seconds)
        indexed.setdefault(PARQUET, []).append(count)
        print(f"round {rep}: in-process {times['in-process, parquet input'][-1]:.1f} s, beam {PARQUET} {seconds:.1f} s, "
              f"{count} indexed", flush=True)
    median = {name: float(np.median(values)) for name, values in times.items()}
    in_process = median.pop("in-process")
    in_process_parquet = median.pop("in-process, parquet input")
    print(f"in-process: {n} titles in {in_process:.1f} s warm ({n / in_process:.0f}/s), "
          f"{in_process_cold:.1f} s with the model load", flush=True)

    beam_index = ShardedIndex.load(work / "beam_index_0" / "dense")  # the default mode's last index
    rows = pd.Series(np.arange(len(beam_index)), index=beam_index.ids).loc[index.ids].to_numpy()
    beam_vectors = beam_index.embeddings[rows]
    keras_diff = float(np.abs(beam_vectors - index.embeddings).max())
    saved = ExportedEncoder(export).embed_products(products["title"].tolist())
    saved_diff = float(np.abs(beam_vectors - saved).max())
    identical_rows = float(np.mean((beam_vectors == saved).all(axis=1)))
    print(f"max |beam - keras| {keras_diff:.2e}, max |beam - savedmodel in-process| {saved_diff:.2e}, "
          f"bit-identical rows {identical_rows:.3f}", flush=True)
    dataset, split = "home_depot_titles", f"{n // 1000}k"
    timing = f"{LOADED}; median of {reps} rounds, in-process and Beam in turn"
    records = [record(BENCH, dataset, split, "in-process EmbeddingIndex.build (Keras), model loaded", "titles_per_s",
                      n / in_process, anchor=timing),
               record(BENCH, dataset, split, "in-process EmbeddingIndex.build (Keras), model loaded, parquet input",
                      "titles_per_s", n / in_process_parquet, anchor=timing),
               record(BENCH, dataset, split, "in-process load_bi_encoder + build + save", "titles_per_s",
                      n / in_process_cold, anchor=LOADED)]
    for name, seconds in median.items():
        baseline = in_process_parquet if name == PARQUET else in_process
        complete = sum(count == n for count in indexed[name])
        records += [record(BENCH, dataset, split, f"beam DirectRunner {name} embed_batch (SavedModel, 8 shards)",
                           "titles_per_s", n / seconds, anchor=timing + "; includes pipeline start and model load"),
                    record(BENCH, dataset, split, f"beam {name} / in-process (model loaded)", "throughput_ratio",
                           baseline / seconds, anchor=f"same run, same machine, medians of {reps}, the same input "
                                                      "file on both sides; goal >= 0.8"),
                    record(BENCH, dataset, split, f"beam DirectRunner {name} embed_batch (SavedModel, 8 shards)",
                           "records_indexed", min(indexed[name]), anchor=f"of {n}; fewest over {reps} runs"),
                    record(BENCH, dataset, split, f"beam DirectRunner {name} embed_batch (SavedModel, 8 shards)",
                           "complete_runs", complete, anchor=f"of {reps}; an incomplete run stops on embed_batch's check")]
        if name != PARQUET:  # the cold in-process run reads the JSON lines
            records.append(record(BENCH, dataset, split, f"beam {name} / in-process (both load the model)",
                                  "throughput_ratio", in_process_cold / seconds,
                                  anchor=f"same run, same machine; Beam median of {reps}"))
    return records + [
        record(BENCH, dataset, split, "beam vs in-process Keras", "max_abs_diff", keras_diff),
        record(BENCH, dataset, split, "beam vs in-process SavedModel", "max_abs_diff", saved_diff),
        record(BENCH, dataset, split, "beam vs in-process SavedModel", "bit_identical_rows", identical_rows),
    ]


# -- part 2: the index curve ----------------------------------------------------------------------------
def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def latencies(search, queries: np.ndarray, repeats: int = 3) -> tuple[float, float]:
    """p50 / p99 in ms over queries searched one at a time. Each query is timed ``repeats`` times
    and its median kept: on this shared machine another job's burst otherwise lands in the p99; a
    query's own cost (its IVF cells, its graph walk) is kept."""
    for query in queries[:5]:
        search(query[None, :])  # the first calls trace / warm up
    times = []
    for query in queries:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            search(query[None, :])
            runs.append(time.perf_counter() - started)
        times.append(np.median(runs))
    times = np.asarray(times) * 1000
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)]))


def faiss_bytes(index) -> int:
    import faiss

    if getattr(index, "_ivf", None) is not None:
        return int(faiss.serialize_index(index._ivf).nbytes)
    return int(sum(faiss.serialize_index(s._ann).nbytes for s in index.shards if s._ann is not None))


def index_curve(vectors: np.ndarray, queries: np.ndarray, sizes: list[int], shard_rows: int, hnsw_max: int,
                latency_queries: int) -> list[dict]:
    from semmatch_tf.retrieval import ShardedIndex

    records = []
    for size in sizes:
        label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        catalogue = pd.DataFrame({"product_id": [f"p{i}" for i in range(size)], "title": ""})
        shards = max(1, size // shard_rows)
        before = rss_bytes()
        started = time.perf_counter()
        index = ShardedIndex.from_arrays(vectors[:size], catalogue, shards=shards)
        exact_build = time.perf_counter() - started
        vector_bytes = index.embeddings.nbytes
        _, exact = index.search_arrays(queries, 10)
        p50, p99 = latencies(lambda q: index.search_arrays(q, 10), queries[:latency_queries])
        model = f"exact, {shards} shard(s)"
        records += [record(BENCH, "index_curve", label, model, "build_s", exact_build, anchor=LOADED),
                    record(BENCH, "index_curve", label, model, "memory_mb", vector_bytes / 2**20),
                    record(BENCH, "index_curve", label, model, "p50_ms", p50, anchor=LATENCY),
                    record(BENCH, "index_curve", label, model, "p99_ms", p99, anchor=LATENCY),
                    record(BENCH, "index_curve", label, model, "recall@10", 1.0)]
        print(f"{label}: exact p50 {p50:.2f} ms p99 {p99:.2f} ms", flush=True)
        kinds = [("ivf", {"nprobe": n}) for n in (16, 48, 128)] + ([("hnsw", {})] if size <= hnsw_max else [])
        built = {}
        for kind, settings in kinds:
            if kind not in built:
                index._ivf = None  # one approximate structure at a time (search prefers the IVF)
                started = time.perf_counter()
                index.build_ann(kind, nprobe=settings.get("nprobe", 32), ef_search=128)
                built[kind] = time.perf_counter() - started
                ann_bytes = faiss_bytes(index)
            if kind == "ivf":
                index.set_search_depth(nprobe=settings["nprobe"])
            _, found = index.search_arrays(queries, 10, exact=False)
            recall = recall_at_10(found, exact)
            p50, p99 = latencies(lambda q: index.search_arrays(q, 10, exact=False), queries[:latency_queries])
            name = (f"faiss IVF-flat merged, nlist {index.meta['ann']['nlist']}, nprobe {settings['nprobe']}"
                    if kind == "ivf" else f"faiss HNSW per shard, M 32, efSearch 128, {shards} shard(s)")
            records += [record(BENCH, "index_curve", label, name, "build_s", built[kind], anchor=LOADED),
                        record(BENCH, "index_curve", label, name, "memory_mb", (vector_bytes + ann_bytes) / 2**20,
                               anchor="vectors + faiss structures (serialised size)"),
                        record(BENCH, "index_curve", label, name, "p50_ms", p50, anchor=LATENCY),
                        record(BENCH, "index_curve", label, name, "p99_ms", p99, anchor=LATENCY),
                        record(BENCH, "index_curve", label, name, "recall@10", recall, anchor="vs exact, 1000 queries")]
            print(f"{label}: {name}: build {built[kind]:.1f} s recall@10 {recall:.3f} p50 {p50:.2f} ms p99 {p99:.2f} ms "
                  f"memory {(vector_bytes + ann_bytes) / 2**20:.0f} MB", flush=True)
            if kind == "hnsw":  # free the graphs before the next size
                for shard in index.shards:
                    shard._ann = None
        index._ivf = None
        records.append(record(BENCH, "index_curve", label, "process RSS growth (all indexes of this size)",
                              "memory_mb", (rss_bytes() - before) / 2**20, anchor="psutil RSS, includes allocator slack"))
        del index
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=50_000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--pairs", type=int, default=20_000, help="Home Depot pairs to train the bi-encoder on")
    parser.add_argument("--shard-rows", type=int, default=125_000)
    parser.add_argument("--hnsw-max", type=int, default=1_000_000)
    parser.add_argument("--latency-queries", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: 2k titles, 5k/20k index")
    parser.add_argument("--dry", action="store_true", help="print the records, do not publish them")
    parser.add_argument("--skip-beam", action="store_true")
    parser.add_argument("--beam-only", action="store_true", help="part 1 only (Beam vs in-process)")
    parser.add_argument("--beam-rounds", type=int, default=3, help="rounds of in-process and each Beam mode in turn")
    args = parser.parse_args()
    if args.quick:
        args.titles, args.sizes, args.pairs, args.latency_queries = 2000, "5000,20000", 3000, 100
    sizes = [int(s) for s in args.sizes.split(",")]
    frame = home_depot()
    work = Path(tempfile.mkdtemp(prefix="semmatch-scale-"))
    try:
        encoder, export = train_bi_encoder(work, args.pairs)
        real = catalogue_titles(frame, 10**9)["title"]
        products = catalogue_titles(frame, args.titles)
        if len(products) < args.titles:  # Home Depot has fewer distinct products: pad with synthetic titles
            extra = args.titles - len(products)
            products = pd.concat([products, pd.DataFrame({"product_id": [f"synthetic-{i}" for i in range(extra)],
                                                          "title": synthetic_titles(real, extra, seed=1)})],
                                 ignore_index=True)
        records = [] if args.skip_beam else beam_vs_in_process(encoder, export, products, work, args.beam_rounds)
        if args.beam_only:
            publish(records, dry=args.dry)
            return
        largest = max(sizes)
        titles = real.tolist()[:largest] + synthetic_titles(real, max(0, largest - len(real)))
        started = time.perf_counter()
        vectors = encoder.embed_products(titles, batch_size=512, progress=False)
        print(f"embedded {len(titles)} titles ({len(real)} real) in {time.perf_counter() - started:.0f} s", flush=True)
        queries = encoder.embed_queries(frame["search_term"].drop_duplicates().head(1000).tolist())
        records += index_curve(vectors, queries, sizes, args.shard_rows, args.hnsw_max, args.latency_queries)
        records.append(record(BENCH, "index_curve", "all", f"titles: {len(real)} real Home Depot + synthetic",
                              "real_titles", len(real), anchor="synthetic = real-title templates, half the words "
                              "redrawn from the catalogue's word frequencies; BiLSTM bi-encoder, 64 dims"))
        publish(records, dry=args.dry)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
