"""Distilling multilingual-e5-small into the BiLSTM on LCQMC (issue 18): does the shipped recipe
beat the strongest cheap baseline, and what does distillation add?

    python -m benchmarks.run_distill [--teacher-file runs/benchmarks/distill/lcqmc_teacher.jsonl] [--dry]

Steps, as a user runs them: ``semmatch-tf teacher-label`` (the ``lcqmc_bilstm`` config's header
command: e5 zero-shot cosines of ATEC, BQ and mined near pairs, calibrated by Platt scaling (a sigmoid)
on the judged training pairs; skipped when ``--teacher-file`` exists), then the recipe trained
with that file (``bilstm-distilled``) and without it (``bilstm-judged-only``, the same config and
seed). Beside them, on the same official test pairs (12,500; LCQMC's 238k training pairs are not
available here, so every model learns from the 8.8k dev pairs): the strongest cheap baseline
(char + word n-gram TF-IDF + logistic regression, settings chosen on validation) fitted on the
judged training pairs, the same baseline fitted on the judged + teacher-graded pairs (does the
cheap model gain as much from the teacher's data?), and the teacher itself (calibrated cosine
>= 0.5). Gains: macro-F1 and accuracy with 95% paired-bootstrap intervals (1000 resamples).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_distill", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

BENCHMARK = "distill"
ANCHOR = "LSTM acc 77.3 (Liu et al. 2018, trained on 238k pairs); e5-small zero-shot is the teacher"
DATASET, SPLIT = "lcqmc", "test"


def teacher_file(path: Path) -> float:
    """Write the teacher-graded pairs with the CLI as the config's header says; seconds taken."""
    data = data_dir()
    command = [sys.executable, "-m", "semmatch_tf.cli", "teacher-label", "--config", str(REPO / "configs/lcqmc_bilstm.yaml"),
               "--teacher", "multilingual-e5-small", "--pairs", f"atec:{data}/atec/atec_nlp_sim_train.csv",
               "--pairs", f"bq_corpus:{data}/bq-corpus/dev.csv", "--pairs", f"bq_corpus:{data}/bq-corpus/test.csv",
               "--mine", "2", "--output", str(path)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def trained_grades(name: str, overrides: dict, run_root: Path, test) -> tuple[np.ndarray, float]:
    from semmatch_tf import load_config, load_run, train

    config = load_config(REPO / "configs/lcqmc_bilstm.yaml", overrides)
    shutil.rmtree(run_root / name, ignore_errors=True)
    started = time.perf_counter()
    train(config, run_root / name, verbose=2)
    seconds = time.perf_counter() - started
    return load_run(run_root / name).score(test.frame["query"].tolist(), test.frame["product"].tolist()), seconds


def teacher_grades(train, test) -> np.ndarray:
    from semmatch_tf.models import pretrained_encoder
    from semmatch_tf.training import pair_cosines, teacher_calibration

    encoder = pretrained_encoder("multilingual-e5-small", query_length=64, product_length=64, symmetric=True)
    score = lambda q, p: pair_cosines(encoder, q, p, batch_size=128)  # noqa: E731
    calibration = teacher_calibration(score, train)
    return calibration.predict(score(test.frame["query"].tolist(), test.frame["product"].tolist()))


def baseline_classes(train, validation, test) -> np.ndarray:
    from semmatch_tf.models.tfidf import fit_strong_baseline

    model = fit_strong_baseline(train, validation, "classification")
    return model.predict_proba(test.frame["query"].tolist(), test.frame["product"].tolist()).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-file", type=Path, default=REPO / "runs/benchmarks/distill/lcqmc_teacher.jsonl")
    parser.add_argument("--runs", type=Path, default=REPO / "runs/benchmarks/distill")
    parser.add_argument("--dry", action="store_true", help="print the records, do not publish them")
    args = parser.parse_args()
    from semmatch_tf import load_config
    from semmatch_tf.evaluation import accuracy, confusion_matrix, gain_over_baseline, precision_recall_f1
    from semmatch_tf.training import load_splits

    records = []
    if not args.teacher_file.exists():
        seconds = teacher_file(args.teacher_file)
        records.append(record(BENCHMARK, DATASET, "unjudged", "teacher-label (e5 zero-shot)", "seconds", seconds,
                              anchor="ATEC + BQ + 2 mined neighbours per training text; same machine"))
    extra = {"data.extra_train": [str(args.teacher_file)]}
    config = load_config(REPO / "configs/lcqmc_bilstm.yaml", extra)
    train, validation, test = load_splits(config.data, extra=False)
    distilled_train = load_splits(config.data)[0]
    gold = test.frame["label"].to_numpy()
    classes = {}
    for name, overrides in (("bilstm-distilled", extra), ("bilstm-judged-only", {"data.extra_train": []})):
        grades, seconds = trained_grades(name, overrides, args.runs, test)
        classes[name] = test.labels.class_of_grade(grades)
        records.append(record(BENCHMARK, DATASET, "train", name, "train_seconds", seconds, anchor=None))
    classes["teacher: e5 zero-shot, calibrated"] = test.labels.class_of_grade(teacher_grades(train, test))
    classes["strong-baseline(judged)"] = baseline_classes(train, validation, test)
    classes["strong-baseline(judged+teacher)"] = baseline_classes(distilled_train, validation, test)
    macro_f1 = lambda g, p: precision_recall_f1(confusion_matrix(g, p, 2))["macro"]["f1"]  # noqa: E731
    for name, predicted in classes.items():
        records += [record(BENCHMARK, DATASET, SPLIT, name, "accuracy", accuracy(gold, predicted), anchor=ANCHOR),
                    record(BENCHMARK, DATASET, SPLIT, name, "macro_f1", macro_f1(gold, predicted), anchor=ANCHOR)]
        print(f"{name}: accuracy {accuracy(gold, predicted):.4f}, macro-F1 {macro_f1(gold, predicted):.4f}", flush=True)
    comparisons = [("bilstm-distilled", "strong-baseline(judged)"), ("bilstm-distilled", "strong-baseline(judged+teacher)"),
                   ("bilstm-distilled", "bilstm-judged-only"), ("strong-baseline(judged+teacher)", "strong-baseline(judged)")]
    for system, baseline in comparisons:
        for metric in ("macro_f1", "accuracy"):
            gain = gain_over_baseline(metric, gold, classes[system], classes[baseline], classes=2)
            print(f"{system} - {baseline}: {metric} {gain['gain']:+.4f} [{gain['low']:+.4f}, {gain['high']:+.4f}]")
            records += [record(BENCHMARK, DATASET, SPLIT, f"{system} - {baseline}", f"{metric}_gain{suffix}",
                               gain[key], anchor="paired bootstrap over test pairs, 1000 resamples, 95%")
                        for key, suffix in (("gain", ""), ("low", "_low95"), ("high", "_high95"))]
    publish(records, dry=args.dry)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
