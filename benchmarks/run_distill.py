"""Distilling multilingual-e5-small into the BiLSTM (issue 18): does the shipped recipe beat the
strongest cheap baseline, and what does distillation add?

    python -m benchmarks.run_distill [--dataset lcqmc|qbqtc] [--teacher-file F.jsonl] [--student CONFIG] [--dry]

``--student configs/lcqmc_bert.yaml`` trains another student (six of e5's layers, a compact BERT)
on the same teacher file, with the same data split; rows are named by its family (``bert-distilled``).

LCQMC (question pairs, 0/1) is described below. QBQTC (query -> web title, 0/1/2) runs the same
steps with its own teacher and pairs: the e5 cross-encoder fine-tuned on QBQTC's training split
(``runs/benchmarks/e5_qbqtc``, written by ``run_multilingual_finetune``; zero-shot e5 cosines
barely separate QBQTC's three grades), and three near web titles mined per training query
(``--mine-pool products``; no other Chinese query-title corpus is here).

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
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One dataset's distillation, as its config's header tells a user to run it."""

    config: str
    teacher: str  # a known encoder name (zero-shot cosine) or a run directory under REPO
    teacher_name: str  # as the records name it
    pairs: tuple[str, ...]  # FORMAT:PATH under the data directory, graded by the teacher
    mine: int
    mine_pool: str
    classes: int
    anchor: str


RECIPES = {
    "lcqmc": Recipe("configs/lcqmc_bilstm.yaml", "multilingual-e5-small", "e5 zero-shot",
                    ("atec:atec/atec_nlp_sim_train.csv", "bq_corpus:bq-corpus/dev.csv", "bq_corpus:bq-corpus/test.csv"),
                    2, "all", 2, "LSTM acc 77.3 (Liu et al. 2018, trained on 238k pairs); e5-small zero-shot is the teacher"),
    "qbqtc": Recipe("configs/qbqtc_bilstm.yaml", "runs/benchmarks/e5_qbqtc", "e5 fine-tuned", (), 3, "products", 3,
                    "BERT-base macro-F1 64.1 (CLUE, 180k train pairs); e5-small fine-tuned here is the teacher"),
}
SPLIT = "test"


def teacher_file(recipe: Recipe, path: Path) -> float:
    """Write the teacher-graded pairs with the CLI as the config's header says; seconds taken."""
    data = data_dir()
    command = [sys.executable, "-m", "semmatch_tf.cli", "teacher-label", "--config", str(REPO / recipe.config),
               "--teacher", teacher_spec(recipe), "--mine", str(recipe.mine), "--mine-pool", recipe.mine_pool,
               "--output", str(path)]
    for pairs in recipe.pairs:
        fmt, _, relative = pairs.partition(":")
        command += ["--pairs", f"{fmt}:{data}/{relative}"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def teacher_spec(recipe: Recipe) -> str:
    """The teacher as ``--teacher`` takes it; a run that is missing stops the benchmark with the fix."""
    if "/" not in recipe.teacher:
        return recipe.teacher
    run = REPO / recipe.teacher
    if not (run / "config.yaml").is_file():
        raise SystemExit(f"{run}: the teacher run is missing; make it with python -m benchmarks.run_multilingual_finetune")
    return str(run)


def trained_classes(student: Path, name: str, overrides: dict, run_root: Path, test) -> tuple[np.ndarray, float]:
    """The recipe trained (with ``overrides``): its test classes (by its own cuts when it tuned
    some, ``training.class_cuts``) and the seconds training took."""
    from semmatch_tf import load_config, load_run, train

    config = load_config(student, overrides)
    shutil.rmtree(run_root / name, ignore_errors=True)
    started = time.perf_counter()
    train(config, run_root / name, verbose=2)
    seconds = time.perf_counter() - started
    run = load_run(run_root / name)
    grades = run.score(test.frame["query"].tolist(), test.frame["product"].tolist())
    return run.labels.class_of_grade(grades), seconds


def teacher_grades(recipe: Recipe, train, test) -> np.ndarray:
    """The calibrated teacher's grades on the test pairs (the teacher-label command's calibration)."""
    from semmatch_tf.training import teacher_calibration, teacher_scorer

    score = teacher_scorer(teacher_spec(recipe), 64)
    calibration = teacher_calibration(score, train)
    return calibration.predict(score(test.frame["query"].tolist(), test.frame["product"].tolist()))


def baseline_classes(train, validation, test) -> tuple[np.ndarray, np.ndarray]:
    """The strong baseline's test classes: its argmax, and with per-class offsets tuned for macro-F1
    on validation (the counterpart of the student's tuned class cuts)."""
    from semmatch_tf.models.tfidf import fit_strong_baseline

    from .baselines import statistic, tuned_offsets, with_offsets

    model = fit_strong_baseline(train, validation, "classification")
    held, scored = (model.predict_proba(s.frame["query"].tolist(), s.frame["product"].tolist()) for s in (validation, test))
    offsets = tuned_offsets(held, validation.frame["label"].to_numpy(), statistic("macro_f1"))
    return scored.argmax(axis=1), with_offsets(scored, offsets).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(RECIPES), default="lcqmc")
    parser.add_argument("--teacher-file", type=Path, help="default: runs/benchmarks/distill/DATASET_teacher.jsonl")
    parser.add_argument("--student", type=Path, help="the student's config (default: the recipe's BiLSTM); its data "
                        "section must split as the recipe's does, so that the teacher file holds no held-out text")
    parser.add_argument("--runs", type=Path, default=REPO / "runs/benchmarks/distill")
    parser.add_argument("--dry", action="store_true", help="print the records, do not publish them")
    args = parser.parse_args()
    recipe, dataset = RECIPES[args.dataset], args.dataset
    teacher_path = args.teacher_file or args.runs / f"{dataset}_teacher.jsonl"
    from semmatch_tf import load_config
    from semmatch_tf.evaluation import accuracy, gain_over_baseline, macro_f1
    from semmatch_tf.training import load_splits

    records = []
    if not teacher_path.exists():
        seconds = teacher_file(recipe, teacher_path)
        records.append(record(BENCHMARK, dataset, "unjudged", f"teacher-label ({recipe.teacher_name})", "seconds", seconds,
                              anchor=f"{len(recipe.pairs)} unjudged corpora + {recipe.mine} mined ({recipe.mine_pool}) "
                                     "per training text; same machine"))
    extra = {"data.extra_train": [str(teacher_path)]}
    config = load_config(REPO / recipe.config, extra)
    student = args.student or REPO / recipe.config
    student_config = load_config(student, extra)
    if student_config.data != config.data:
        raise SystemExit(f"{student}: its data section differs from {recipe.config}'s; the teacher file is that split's")
    family = student_config.model.family
    train, validation, test = load_splits(config.data, extra=False)
    distilled_train = load_splits(config.data)[0]
    gold = test.frame["label"].to_numpy()
    classes = {}
    distilled, judged_only = f"{family}-distilled", f"{family}-judged-only"
    for name, overrides in ((distilled, extra), (judged_only, {"data.extra_train": []})):
        classes[name], seconds = trained_classes(student, name, overrides, args.runs / dataset, test)
        records.append(record(BENCHMARK, dataset, "train", name, "train_seconds", seconds, anchor=None))
    classes[f"teacher: {recipe.teacher_name}, calibrated"] = test.labels.class_of_grade(
        teacher_grades(recipe, train, test))
    tuned = "+class-offsets(validation)"
    classes["strong-baseline(judged)"], classes[f"strong-baseline(judged){tuned}"] = baseline_classes(
        train, validation, test)
    classes["strong-baseline(judged+teacher)"], _ = baseline_classes(distilled_train, validation, test)
    f1 = lambda g, p: macro_f1(g, p, recipe.classes)  # noqa: E731
    for name, predicted in classes.items():
        records += [record(BENCHMARK, dataset, SPLIT, name, "accuracy", accuracy(gold, predicted), anchor=recipe.anchor),
                    record(BENCHMARK, dataset, SPLIT, name, "macro_f1", f1(gold, predicted), anchor=recipe.anchor)]
        print(f"{name}: accuracy {accuracy(gold, predicted):.4f}, macro-F1 {f1(gold, predicted):.4f}", flush=True)
    comparisons = [(distilled, "strong-baseline(judged)"), (distilled, f"strong-baseline(judged){tuned}"),
                   (distilled, "strong-baseline(judged+teacher)"),
                   (distilled, judged_only), ("strong-baseline(judged+teacher)", "strong-baseline(judged)")]
    for system, baseline in comparisons:
        for metric in ("macro_f1", "accuracy"):
            gain = gain_over_baseline(metric, gold, classes[system], classes[baseline], classes=recipe.classes)
            print(f"{system} - {baseline}: {metric} {gain['gain']:+.4f} [{gain['low']:+.4f}, {gain['high']:+.4f}]")
            records += [record(BENCHMARK, dataset, SPLIT, f"{system} - {baseline}", f"{metric}_gain{suffix}",
                               gain[key], anchor="paired bootstrap over test pairs, 1000 resamples, 95%")
                        for key, suffix in (("gain", ""), ("low", "_low95"), ("high", "_high95"))]
    publish(records, dry=args.dry)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
