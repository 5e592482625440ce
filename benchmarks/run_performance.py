"""Performance side by side, one run: machine limit, tokenisation, input pipeline, training FLOPs.

    python -m benchmarks.run_performance [--titles 100000] [--quick]

1. Machine limit: achieved GFLOP/s of a large float32 matmul in TensorFlow (the practical peak),
   and of the same in bfloat16 (what mixed precision reaches on CPUs with bf16 matrix units).
2. Tokenisation: our in-graph tokenizer in tf.data vs Hugging Face ``tokenizers`` (Rust
   BertWordPieceTokenizer with the same vocabulary), same real titles and queries, strings/s.
3. Input pipeline: BiLSTM training step time reading through the real pipeline (tokenising from
   strings, then cache) vs from an in-memory cached dataset: the pipeline must not be the bottleneck.
4. BiLSTM training FLOPs per example (analytic count of the matmuls) and the fraction of the matmul
   peak a training step reaches.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# `python benchmarks/run_performance.py` re-runs itself as `python -m benchmarks.run_performance`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_performance", *sys.argv[1:]])

from .common import data_dir, publish, record  # noqa: E402


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: str = "float32") -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    matmul = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    matmul(a, b).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a, b)
    result.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def texts_for_tokenisation(limit: int) -> list[str]:
    from semmatch_tf import load_dataset

    root = data_dir()
    frames = [load_dataset("home_depot", str(root / "home-depot-search-relevance" / "train.csv")).frame,
              load_dataset("qbqtc", str(root / "qbqtc" / "dev.json")).frame]
    texts = []
    for frame in frames:
        texts += frame["product"].tolist() + frame["query"].tolist()
    return (texts * (limit // len(texts) + 1))[:limit]


def tokenisation(texts: list[str], vocabulary: list[str], batch_size: int = 1024) -> tuple[float, float]:
    """strings/s for ours (tf.data, batched, in-graph) and HF tokenizers (encode_batch, Rust threads)."""
    import tempfile

    import tensorflow as tf
    from tokenizers import BertWordPieceTokenizer

    from semmatch_tf.text import WordPieceTokenizer, save_vocabulary

    ours = WordPieceTokenizer(vocabulary, sequence_length=48)
    data = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size).map(ours, num_parallel_calls=tf.data.AUTOTUNE)
    for _ in data.take(2):
        pass
    started = time.perf_counter()
    for _ in data:
        pass
    ours_rate = len(texts) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as folder:
        path = save_vocabulary(vocabulary, os.path.join(folder, "vocab.txt"))
        hf = BertWordPieceTokenizer(str(path), lowercase=True, strip_accents=True, handle_chinese_chars=True)
    hf.enable_truncation(48)
    hf.enable_padding(length=48)
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        hf.encode_batch(texts[start:start + batch_size])
    hf_rate = len(texts) / (time.perf_counter() - started)
    return ours_rate, hf_rate


def bilstm_flops_per_example(q_len: int, p_len: int, emb: int, units: int, hidden: int, classes: int) -> float:
    """Multiply-adds x2 of the forward pass, x3 for forward + backward (the usual estimate)."""
    lstm_step = 2 * 4 * (emb + units) * units          # four gates, input and recurrent matmuls
    per_side = lambda steps: 2 * steps * lstm_step      # two directions
    features = 4 * 2 * units
    dense = 2 * features * hidden + 2 * hidden * classes
    return 3 * (per_side(q_len) + per_side(p_len) + dense)


def pipeline_vs_cached(texts_pairs, vocabulary, steps: int = 60, batch_size: int = 128) -> tuple[float, float]:
    """Seconds per training step: real pipeline (from strings, cold first pass) vs in-memory cache."""
    import keras
    import tensorflow as tf

    from semmatch_tf.data import PipelineOptions, make_dataset
    from semmatch_tf.models import BiLSTMMatcher
    from semmatch_tf.text import PairPreprocessor, WordPieceTokenizer

    dataset = texts_pairs
    preprocessor = PairPreprocessor(WordPieceTokenizer(vocabulary), query_length=12, product_length=32)
    model = BiLSTMMatcher(len(vocabulary), num_classes=3, embedding_dim=96, lstm_units=96, hidden_units=128,
                          query_length=12, product_length=32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    real = make_dataset(dataset, preprocessor, PipelineOptions(batch_size=batch_size, shuffle=True,
                                                               drop_remainder=True, cache=False)).repeat()
    model.fit(real, steps_per_epoch=5, epochs=1, verbose=0)  # trace once
    started = time.perf_counter()
    model.fit(real, steps_per_epoch=steps, epochs=1, verbose=0)
    real_step = (time.perf_counter() - started) / steps
    cached = real.take(steps).cache()
    for _ in cached:
        pass
    started = time.perf_counter()
    model.fit(cached, epochs=1, verbose=0)
    cached_step = (time.perf_counter() - started) / steps
    return real_step, cached_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from semmatch_tf import load_dataset
    from semmatch_tf.text import learn_vocabulary

    records = []
    peak = matmul_gflops()
    records.append(record("performance", "-", "-", "tf.linalg.matmul 2048^2 float32", "gflops", peak))
    # bf16 matrix units (AVX-512 BF16 / AMX), where the CPU has them, are what mixed_bfloat16 uses.
    records.append(record("performance", "-", "-", "tf.linalg.matmul 2048^2 bfloat16", "gflops",
                          matmul_gflops(dtype="bfloat16")))

    texts = texts_for_tokenisation(args.titles)
    vocabulary = learn_vocabulary(sorted(set(texts)), vocab_size=8000)
    ours, hf = tokenisation(texts, vocabulary)
    split = f"{len(texts)} titles+queries (HD+QBQTC)"
    records += [record("performance", "hd+qbqtc", split, "semmatch in-graph tokenizer (tf.data)", "strings_per_s", ours),
                record("performance", "hd+qbqtc", split, "HF tokenizers BertWordPiece (Rust)", "strings_per_s", hf),
                record("performance", "hd+qbqtc", split, "ours / HF tokenizers", "ratio", ours / hf)]

    hd = load_dataset("home_depot", str(data_dir() / "home-depot-search-relevance" / "train.csv"), limit=20000)
    real_step, cached_step = pipeline_vs_cached(hd, vocabulary)
    records += [record("performance", "home_depot", "train[:20000]", "bilstm step, real pipeline", "seconds_per_step", real_step),
                record("performance", "home_depot", "train[:20000]", "bilstm step, cached in memory", "seconds_per_step", cached_step),
                record("performance", "home_depot", "train[:20000]", "real / cached step time", "ratio", real_step / cached_step)]
    flops = bilstm_flops_per_example(12, 32, 96, 96, 128, 3)
    achieved = flops * 128 / cached_step / 1e9
    records += [record("performance", "home_depot", "-", "bilstm 96/96 q12 p32 train", "gflop_per_example", flops / 1e9),
                record("performance", "home_depot", "-", "bilstm 96/96 q12 p32 train", "fraction_of_matmul_peak", achieved / peak)]
    publish(records, args.dry)


if __name__ == "__main__":
    main()
