"""`semmatch-tf serve` once warm vs the CLI's cold start: search + re-rank of 100 candidates.

    python -m benchmarks.run_serve --index runs/demo/index --rerank runs/demo/run [--requests 60] [--dry]

(``semmatch-tf demo --output runs/demo`` writes both.) A real uvicorn server on 127.0.0.1 loads the
index and the re-ranker once; the benchmark then sends ``/search?q=...`` requests over HTTP (the
demo's judged queries in turn, hybrid retrieval, the top 100 candidates re-ranked), after three
warm-up requests, and records p50 / p99 wall time per request as the client sees it, beside the
same search in-process (no HTTP) and one ``/explain`` of a top result. The cold start is
``semmatch-tf search QUERY --index ... --rerank ... --candidates 100`` as a fresh process (Python,
TensorFlow and both models loaded each call), median of three. Absolute times are for the machine
named in each record; the anchor says how loaded it was (the development machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import yaml

# `python benchmarks/run_serve.py` re-runs itself as `python -m benchmarks.run_serve`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_serve", *sys.argv[1:]])

from .common import REPO, publish, record  # noqa: E402


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores: shared machine"


def http_latencies(url: str, queries: list[str], requests: int) -> tuple[list[float], dict]:
    def get(path: str, **params) -> dict:
        with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=600) as response:
            return json.loads(response.read())

    for query in queries[:3]:  # the first calls trace the models' functions
        get("/search", q=query)
    latencies, last = [], {}
    for i in range(requests):
        started = time.perf_counter()
        last = get("/search", q=queries[i % len(queries)])
        latencies.append(time.perf_counter() - started)
    explain = []
    for i in range(5):
        top = get("/search", q=queries[i])["results"][0]["product_id"]
        started = time.perf_counter()
        get("/explain", q=queries[i], product_id=top)
        explain.append(time.perf_counter() - started)
    return latencies, {"explain_s": statistics.median(explain), "last": last}


def cold_start(index: Path, rerank: Path, query: str, repeats: int = 3) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "semmatch_tf.cli", "search", query, "--index", str(index), "--rerank",
                        str(rerank), "--mode", "hybrid", "--candidates", "100"], check=True, capture_output=True,
                       env=env, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rerank", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--dry", action="store_true", help="print the records instead of publishing them")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from semmatch_tf.serve import BackgroundServer, ServiceConfig, demo_judgements, load_service

    queries = list(demo_judgements()[0])
    started = time.perf_counter()
    service = load_service(args.index, rerank_run_dir=args.rerank, mode="hybrid",
                           config=ServiceConfig(k=10, candidates=100))
    load_seconds = time.perf_counter() - started
    with BackgroundServer(service) as server:
        latencies, extra = http_latencies(server.url, queries, args.requests)
    assert extra["last"]["reranked"] and len(extra["last"]["results"]) == 10
    direct = []
    for i in range(args.requests):
        started = time.perf_counter()
        service.search(queries[i % len(queries)])
        direct.append(time.perf_counter() - started)
    cold = cold_start(args.index, args.rerank, queries[0])
    family = yaml.safe_load((Path(args.rerank) / "config.yaml").read_text(encoding="utf-8"))["model"]["family"]
    model = f"{service.description.get('encoder') or 'BM25'} {service.searcher.mode} + {family} re-ranker"
    split = "1 query, 100 candidates re-ranked"
    note = load_note()
    ms = lambda values, q: 1000 * float(np.percentile(values, q))  # noqa: E731
    records = [record("serve", "demo", split, model, "http_p50_ms", ms(latencies, 50), note),
               record("serve", "demo", split, model, "http_p99_ms", ms(latencies, 99), note),
               record("serve", "demo", split, model, "in_process_p50_ms", ms(direct, 50), note),
               record("serve", "demo", split, model, "explain_top_result_s", extra["explain_s"], note),
               record("serve", "demo", split, model, "server_load_s", load_seconds, note),
               record("serve", "demo", split, model, "cli_cold_start_s", cold, note)]
    publish(records, args.dry)


if __name__ == "__main__":
    main()
