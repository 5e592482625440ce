"""Models that have learned something, trained once per pytest session and shared by
test_explain.py, test_serve.py and test_search_page_browser.py (kept under pytest's base temp)."""

from __future__ import annotations

import fcntl
from pathlib import Path

#: A small BiLSTM cross-encoder on the embedded demo: ~30 s on 2 loaded cores, accuracy well above
#: chance (it learns literal overlap through its exact-match flags and embeddings).
DEMO_BILSTM = {
    "data": {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 3},
    "text": {"vocab_size": 2000, "min_frequency": 1, "query_length": 12, "product_length": 32},
    "model": {"family": "bilstm", "embedding_dim": 32, "lstm_units": 32, "hidden_units": 32, "dropout": 0.1},
    "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                 "epochs": 6, "batch_size": 32, "optimizer": "adamw", "learning_rate": 0.003, "schedule": "cosine",
                 "warmup_fraction": 0.05, "weight_decay": 0.0001, "class_weights": "balanced",
                 "early_stopping_patience": None, "seed": 5},
}


def shared_run(tmp_path_factory, name: str, settings: dict) -> Path:
    """Train ``settings`` into ``<basetemp>/<name>`` unless a finished run is already there."""
    from semmatch_tf.training.config import RunConfig
    from semmatch_tf.training.trainer import train

    root = tmp_path_factory.getbasetemp()
    run_dir = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run_dir / "report.json").is_file():
            train(RunConfig.from_dict(settings), run_dir, verbose=0)
    return run_dir


def demo_bilstm_run(tmp_path_factory) -> Path:
    return shared_run(tmp_path_factory, "demo_bilstm", DEMO_BILSTM)


def bm25_demo_index(tmp_path_factory) -> Path:
    """The demo catalogue indexed with BM25 alone (a second, no model needed)."""
    from semmatch_tf.retrieval.search import build_index

    root = tmp_path_factory.getbasetemp()
    index_dir = root / "demo_bm25_index"
    with open(root / "demo_bm25_index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (index_dir / "index.json").is_file():
            build_index(None, "demo", index_dir, progress=False)
    return index_dir


def understood_demo_index(tmp_path_factory) -> Path:
    """The demo catalogue with BM25 and the query understanding of issue 17 (spelling, attributes)."""
    from semmatch_tf.retrieval.search import build_index

    root = tmp_path_factory.getbasetemp()
    index_dir = root / "demo_understood_index"
    with open(root / "demo_understood_index.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (index_dir / "index.json").is_file():
            build_index(None, "demo", index_dir, progress=False, query_understanding=True)
    return index_dir
