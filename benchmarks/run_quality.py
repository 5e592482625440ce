"""Quality of the BiLSTM matcher on real data, beside a cheap baseline trained on the same split.

    python -m benchmarks.run_quality home_depot qbqtc lcqmc   [--epochs N] [--limit N]

Home Depot: graded head; RMSE, nDCG@10 over each held-out query's judged products, accuracy of the
rounded grade; anchor: predicting the training mean. QBQTC: accuracy and macro-F1 on a by-query
re-split of dev (anchor: published BERT-base 71.8 / 64.1 trained on 180k pairs). LCQMC: trained on
dev, accuracy on the official test (anchor: published LSTM 77.3 trained on 238k pairs).
Baseline everywhere: character n-gram TF-IDF + logistic regression (benchmarks/baselines.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# `python benchmarks/run_quality.py` re-runs itself as `python -m benchmarks.run_quality`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_quality", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

ANCHORS = {
    "home_depot": "predicting the training mean (row 'mean-predictor')",
    "qbqtc": "BERT-base acc 71.8 / macro-F1 64.1 (CLUE, trained on 180k pairs; test_public)",
    "lcqmc": "LSTM acc 77.3 (Liu et al. 2018, trained on 238k pairs)",
}
CONFIGS = {"home_depot": "home_depot_bilstm.yaml", "qbqtc": "qbqtc_bilstm.yaml", "lcqmc": "lcqmc_bilstm.yaml"}


def run(name: str, epochs: int | None, limit: int | None, run_root: Path) -> list[dict]:
    import numpy as np

    from .baselines import CharNgramLogReg
    from semmatch_tf import load_config, train
    from semmatch_tf.evaluation import evaluate_predictions
    from semmatch_tf.training import load_splits

    overrides = {}
    if epochs:
        overrides["training.epochs"] = epochs
    if limit:
        overrides["data.limit"] = limit
    config = load_config(REPO / "configs" / CONFIGS[name], overrides)
    train_set, _, test_set = load_splits(config.data, extra=False)  # the baseline learns from judged pairs only
    split = "test" if name == "lcqmc" else "test(by-query)"
    anchor = ANCHORS[name]

    shutil.rmtree(run_root / name, ignore_errors=True)  # a benchmark always trains from scratch
    started = time.perf_counter()
    report = train(config, run_root / name, verbose=2)
    train_seconds = time.perf_counter() - started
    records = _records(name, split, "bilstm", report, anchor)
    records.append(record("quality", name, "train", "bilstm", "train_seconds", train_seconds, anchor=None))

    frame = train_set.frame
    baseline = CharNgramLogReg().fit(frame["query"], frame["product"], frame["label"])
    probabilities = baseline.predict_proba(test_set.frame["query"], test_set.frame["product"])
    probabilities = _pad_classes(probabilities, train_set.labels.num_classes)
    records += _records(name, split, "char-tfidf+logreg", evaluate_predictions(test_set, probabilities=probabilities), anchor)
    if name == "home_depot":
        mean = np.full(len(test_set), frame["grade"].mean())
        records += _records(name, split, "mean-predictor", evaluate_predictions(test_set, scores=mean), anchor)
    return records


def _pad_classes(probabilities, num_classes: int):
    import numpy as np

    if probabilities.shape[1] >= num_classes:
        return probabilities[:, :num_classes]
    return np.pad(probabilities, [(0, 0), (0, num_classes - probabilities.shape[1])])


def _records(dataset: str, split: str, model: str, report: dict, anchor: str) -> list[dict]:
    metrics = []
    if dataset == "home_depot":
        metrics = [("rmse", report["regression"]["rmse"]), ("ndcg@10", report["ranking"]["ndcg@10"]),
                   ("accuracy_rounded", report["classification"]["accuracy"]),
                   ("spearman", report["regression"]["spearman"])]
    else:
        metrics = [("accuracy", report["classification"]["accuracy"]),
                   ("macro_f1", report["classification"]["macro"]["f1"])]
        if dataset == "qbqtc":
            metrics.append(("ndcg@10", report["ranking"]["ndcg@10"]))
    return [record("quality", dataset, split, model, metric, value, anchor) for metric, value in metrics]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("datasets", nargs="+", choices=sorted(CONFIGS))
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--limit", type=int, help="read only the first N pairs (smoke runs; not for RESULTS)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "benchmarks")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    for name in args.datasets:
        records = run(name, args.epochs, args.limit, args.runs)
        publish(records, args.dry or bool(args.limit))


if __name__ == "__main__":
    main()
