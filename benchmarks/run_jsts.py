"""Japanese STS (JGLUE JSTS v1.3): Spearman between bi-encoder cosines and human similarity scores.

    python -m benchmarks.run_jsts [--limit N] [--dry]

Scored on the official valid split (1,457 pairs), the split JGLUE reports scores on; the BiLSTM
selects its epoch on 10% of train (by sentence-1), never on the scored split. Systems:
  * minilm-zero-shot: all-MiniLM-L6-v2 as published (an English model: most kana map to [UNK]);
  * bilstm-bi-encoder: a BiLSTM bi-encoder trained here with the cosine-regression loss on train;
  * char-tfidf-cosine (cheap baseline): cosine of character 1-3-gram TF-IDF vectors fitted on train.
Anchor: Tohoku BERT-base 0.865 (JGLUE paper, fine-tuned cross-encoder trained in Japanese) — a
model pretrained on Japanese text; we have no Japanese weights offline and are far below it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

# `python benchmarks/run_jsts.py` re-runs itself as `python -m benchmarks.run_jsts`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_jsts", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

ANCHOR = "Tohoku BERT-base Spearman 0.865 (JGLUE; Japanese-pretrained cross-encoder)"


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def char_tfidf_cosine(train, valid):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    vectorizer.fit(train.frame["query"].tolist() + train.frame["product"].tolist())
    left = vectorizer.transform(valid.frame["query"])
    right = vectorizer.transform(valid.frame["product"])
    return np.asarray(left.multiply(right).sum(axis=1)).ravel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    from .run_retrieval import minilm_zero_shot
    from semmatch_tf import RunConfig, load_dataset, train as train_run
    from semmatch_tf.training import load_bi_encoder, pair_cosines

    root = data_dir() / "jglue-jsts"
    train = load_dataset("jsts", str(root / "train-v1.3.json"), limit=args.limit)
    valid = load_dataset("jsts", str(root / "valid-v1.3.json"), limit=args.limit)
    gold = valid.frame["grade"].to_numpy()
    split = "valid"
    records = [record("jsts", "jsts", split, "char-tfidf-cosine", "spearman",
                      spearman(char_tfidf_cosine(train, valid), gold), ANCHOR)]
    zero_shot = minilm_zero_shot()
    records.append(record("jsts", "jsts", split, "minilm-zero-shot", "spearman",
                          spearman(pair_cosines(zero_shot, valid.frame["query"].tolist(),
                                                valid.frame["product"].tolist()), gold), ANCHOR))
    config = RunConfig.from_dict({
        "data": {"format": "jsts", "path": str(root / "train-v1.3.json"), "split": [0.9, 0.1, 0.0],
                 "test_path": str(root / "valid-v1.3.json"), "limit": args.limit},
        "text": {"vocab_size": 6000, "min_frequency": 1, "query_length": 48, "product_length": 48},
        "model": {"family": "bilstm_bi_encoder", "embedding_dim": 128, "lstm_units": 128, "pooling": "max",
                  "dropout": 0.1, "bi_encoder": {"loss": "cosine_regression", "embedding_size": 128}},
        "training": {"epochs": args.epochs, "batch_size": 64, "optimizer": "adamw", "learning_rate": 2e-3,
                     "schedule": "cosine", "warmup_fraction": 0.05, "weight_decay": 1e-4,
                     "early_stopping_patience": 3}})
    run_dir = REPO / "runs" / "benchmarks" / "jsts_bilstm_bi_encoder"
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    train_run(config, run_dir, verbose=2)
    seconds = time.perf_counter() - started
    encoder = load_bi_encoder(run_dir)
    records += [record("jsts", "jsts", split, "bilstm-bi-encoder(cosine-regression)", "spearman",
                       spearman(pair_cosines(encoder, valid.frame["query"].tolist(),
                                             valid.frame["product"].tolist()), gold), ANCHOR),
                record("jsts", "jsts", "train", "bilstm-bi-encoder(cosine-regression)", "train_seconds", seconds)]
    for r in records:
        print(r["model"], r["metric"], round(r["value"], 4))
    publish(records, args.dry or bool(args.limit))


if __name__ == "__main__":
    main()
