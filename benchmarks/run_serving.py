"""Reloaded-SavedModel latency and throughput: re-rank 1 query x 100 products, and batch 1000.

    python -m benchmarks.run_serving --run runs/benchmarks/home_depot [--run OTHER_RUN ...]

Each run directory is exported (raw-string signature), reloaded with ``tf.saved_model.load`` and
called the way TF Serving would: p50/p99 over repeated 1x100 re-ranking requests (real Home Depot
titles) and pairs/s at batch 1000. Absolute times are for the machine named in each record.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# `python benchmarks/run_serving.py` re-runs itself as `python -m benchmarks.run_serving`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_serving", *sys.argv[1:]])

from .common import data_dir, publish, record  # noqa: E402


def measure(run_dir: Path, queries: list[str], titles: list[str], repeats: int) -> dict:
    import tensorflow as tf

    from semmatch_tf import load_run
    from semmatch_tf.export import export_model

    with tempfile.TemporaryDirectory() as folder:
        version = export_model(load_run(run_dir), folder, name="bench")
        serve = tf.saved_model.load(str(version)).signatures["serving_default"]
        rng = np.random.default_rng(0)
        latencies = []
        for i in range(repeats + 3):
            products = rng.choice(titles, 100).tolist()
            started = time.perf_counter()
            serve(query=tf.constant([queries[i % len(queries)]] * 100), product=tf.constant(products))["scores"].numpy()
            if i >= 3:  # the first calls trace and warm caches (TF Serving replays its warm-up file for this)
                latencies.append(time.perf_counter() - started)
        batch_q = tf.constant(rng.choice(queries, 1000).tolist())
        batch_p = tf.constant(rng.choice(titles, 1000).tolist())
        serve(query=batch_q, product=batch_p)["scores"].numpy()
        started = time.perf_counter()
        rounds = 5
        for _ in range(rounds):
            serve(query=batch_q, product=batch_p)["scores"].numpy()
        throughput = 1000 * rounds / (time.perf_counter() - started)
    return {"p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            "pairs_per_s": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", action="append", type=Path, required=True, help="cross-encoder run directory")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import yaml

    from semmatch_tf import load_dataset

    frame = load_dataset("home_depot", str(data_dir() / "home-depot-search-relevance" / "train.csv")).frame
    queries, titles = frame["query"].unique().tolist(), frame["product"].unique().tolist()
    records = []
    for run_dir in args.run:
        family = yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["family"]
        name = f"{family} ({run_dir.name})"
        result = measure(run_dir, queries, titles, args.repeats)
        records += [record("serving", "home_depot", "1 query x 100 products", name, "p50_ms", result["p50_ms"]),
                    record("serving", "home_depot", "1 query x 100 products", name, "p99_ms", result["p99_ms"]),
                    record("serving", "home_depot", "batch 1000", name, "pairs_per_s", result["pairs_per_s"])]
    publish(records, args.dry)


if __name__ == "__main__":
    main()
