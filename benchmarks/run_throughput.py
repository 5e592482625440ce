"""Training throughput: our tf.data + Model.fit pipeline vs the seeds' loop, same model, one run.

    python -m benchmarks.run_throughput [--pairs 20000] [--epochs 2]

The seeds' loop re-compiles the model every epoch and feeds numpy batches to ``train_on_batch``.
To be generous to it, its inputs are tokenised ahead of time and that time is not counted; our
pipeline tokenises inside the graph during the first epoch (then reads the cache). We report
examples/s over all epochs (first-epoch tracing and tokenisation included for ours) and the ratio,
for variants of ours on the same model, batch size and optimizer (Adam; ours is ``FusedAdam``, what
``training.optimizer: adam`` builds, the seeds' Keras' own):

* ``fixed``: every batch padded to the full 12 / 32 tokens, as the seeds pad;
* ``buckets``: products batched with others of similar length (``text.length_buckets``) and padded
  only to their bucket's bound, queries to the batch's longest; the BiLSTM masks padding, so the
  outputs are those of the fixed-length model and only dead time steps are skipped;
* ``buckets+spe8``: the same running 8 steps per call into the graph (``training.steps_per_execution``),
  which removes most of the per-step Python and dispatch time;
* ``buckets+xla``: buckets compiled with XLA (``training.jit_compile``), compile time included;
* ``buckets+spe8+bf16``: ``buckets+spe8`` under ``mixed_bfloat16`` (float32 weights, bf16 compute;
  only faster on CPUs with bf16 matrix units, and not the same arithmetic: reported apart).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# `python benchmarks/run_throughput.py` re-runs itself as `python -m benchmarks.run_throughput`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_throughput", *sys.argv[1:]])

from .common import data_dir, publish, record  # noqa: E402

BUCKETS = (8, 12, 16, 24)  # product bounds in tokens; the cap is the fixed 32
# name: (length buckets, XLA, steps_per_execution, Keras dtype policy) -- all training config fields
VARIANTS = {
    "fixed": (None, False, 1, "float32"),
    "buckets": (BUCKETS, False, 1, "float32"),
    "buckets+spe8": (BUCKETS, False, 8, "float32"),
    "buckets+xla": (BUCKETS, True, 1, "float32"),
    "buckets+spe8+bf16": (BUCKETS, False, 8, "mixed_bfloat16"),
}


def bilstm_setup(pairs: int):
    """(dataset, preprocessor, fresh_model) of the benchmark BiLSTM on the first ``pairs`` Home Depot
    pairs: 8k-token vocabulary, 12 / 32 tokens, 96-wide embeddings and LSTM (profile_steps.py too).
    ``fresh_model(fixed=False)`` takes any lengths (length buckets)."""
    import keras

    from semmatch_tf import load_dataset
    from semmatch_tf.models import BiLSTMMatcher
    from semmatch_tf.text import PairPreprocessor, WordPieceTokenizer, learn_vocabulary

    dataset = load_dataset("home_depot", str(data_dir() / "home-depot-search-relevance" / "train.csv"), limit=pairs)
    frame = dataset.frame
    vocabulary = learn_vocabulary(frame["query"].unique().tolist() + frame["product"].unique().tolist(),
                                  vocab_size=8000)
    preprocessor = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=12, product_length=32)

    def fresh_model(fixed: bool = True) -> keras.Model:
        keras.utils.set_random_seed(0)
        return BiLSTMMatcher(len(vocabulary), num_classes=3, embedding_dim=96, lstm_units=96, hidden_units=128,
                             query_length=12 if fixed else None, product_length=32 if fixed else None)

    return dataset, preprocessor, fresh_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from semmatch_tf.data import PipelineOptions, make_dataset
    from semmatch_tf.training import FusedAdam

    dataset, preprocessor, fresh_model = bilstm_setup(args.pairs)
    frame = dataset.frame
    n = (len(dataset) // args.batch_size) * args.batch_size

    ours = {}
    for name, (buckets, xla, per_execution, policy) in VARIANTS.items():
        keras.mixed_precision.set_global_policy(policy)
        model = fresh_model(fixed=buckets is None)
        model.compile(optimizer=FusedAdam(1e-3), loss="sparse_categorical_crossentropy",  # what `adam` builds
                      jit_compile=xla, steps_per_execution=per_execution)
        data = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=args.batch_size, shuffle=True,
                                                                   drop_remainder=True, length_buckets=buckets))
        started = time.perf_counter()
        model.fit(data, epochs=args.epochs, verbose=0)
        ours[name] = n * args.epochs / (time.perf_counter() - started)
        print(f"ours ({name}): {ours[name]:.0f} examples/s", flush=True)
    keras.mixed_precision.set_global_policy("float32")

    # The seeds' loop: compile per epoch, train_on_batch over pre-tokenised numpy arrays.
    ids = next(iter(make_dataset(dataset, preprocessor, PipelineOptions(batch_size=len(dataset)), with_targets=False)))
    queries, products = ids["query"].numpy(), ids["product"].numpy()
    labels = frame["label"].to_numpy()
    model = fresh_model()
    started = time.perf_counter()
    for _ in range(args.epochs):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        order = np.random.permutation(len(labels))
        for start in range(0, n, args.batch_size):
            batch = order[start:start + args.batch_size]
            model.train_on_batch({"query": queries[batch], "product": products[batch]}, labels[batch])
    seeds = n * args.epochs / (time.perf_counter() - started)

    print(f"seeds' loop: {seeds:.0f} examples/s", flush=True)
    split = f"train[:{args.pairs}]"
    records = [record("throughput", "home_depot", split, "bilstm seeds train_on_batch loop", "train_examples_per_s", seeds)]
    for name, rate in ours.items():
        records += [record("throughput", "home_depot", split, f"bilstm fit+tf.data (ours, {name})", "train_examples_per_s", rate),
                    record("throughput", "home_depot", split, f"ours ({name}) / seeds", "speedup", rate / seeds)]
    publish(records, args.dry)


if __name__ == "__main__":
    main()
