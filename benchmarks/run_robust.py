"""Robust-training techniques, each measured against the same model without it (issue 18).

    python -m benchmarks.run_robust [--train-pairs 10000] [--epochs 3] [--techniques fgm pgd augment]
    python -m benchmarks.run_robust --train-pairs 0 --techniques fgm --stack [--semantic all-minilm-l6-v2] [--reuse-runs]

On the by-query test split of Home Depot (titles only), a BiLSTM with a graded head (the
``home_depot_bilstm`` recipe's; its head reads the pair's match features since 2026-12-07, and its
rows are then named ``bilstm+match-features-*``) is trained
plain and with each technique on the same (subsampled, see the split name) training queries; the
strongest cheap baseline (char + word n-gram TF-IDF + ridge on pair features, alpha chosen on
validation, ``baselines.StrongPairRidge``) is trained on the same pairs in the same run. Reported:
test RMSE of every model; each technique's RMSE gain over plain training and every model's gain
over the baseline, with a 95% paired-bootstrap interval over test pairs (1000 resamples). The
ensembles: the average of the trained BiLSTMs, and a stacking (ridge on validation predictions)
of the BiLSTMs and the baseline. Each run here is small on purpose (a loaded 2-core machine):
the split names say how many training pairs were used.

``--stack`` adds gradient-boosted stacks (``semmatch_tf.ensemble.BoostedStacker``), fitted on the
training pairs: the baseline's out-of-fold predictions (5 folds by query) alone; with the title-only
match features of ``PairFeatures``; with the product prior (``ProductPrior``: the smoothed mean
grade of the same product among training pairs and its count, out of fold on the training pairs;
a product's history is known when a shop serves it, so this is a serving-time feature, reported
apart); with ``--semantic PRESET``, also with the cosine of a pretrained sentence encoder used
zero-shot (never trained on these grades, so honest on the training pairs too). The tree count is
chosen on validation. The BiLSTMs enter through the validation split:
a linear stack (``fit_stacking_weights``) of the boosted stack and the BiLSTMs fitted on the
validation predictions. Every stack is compared with the baseline and with the stack without its
last addition (paired bootstrap over test pairs). ``--reuse-runs``: load a finished BiLSTM run of
the same config from ``--runs`` instead of training it again (no train_seconds row then).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

# `python benchmarks/run_robust.py` re-runs itself as `python -m benchmarks.run_robust`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_robust", *sys.argv[1:]])

from .common import REPO, data_dir, machine, publish, record  # noqa: E402

BENCHMARK = "robust"
#: Every model here starts from the recipe without adversarial steps (the recipe itself trains with
#: FGM since 2026-12-07), then adds its one technique.
PLAIN = {"training.adversarial": {"method": "none"}}
TECHNIQUES = {
    "fgm": {"training.adversarial": {"method": "fgm", "epsilon": 1.0}},
    "pgd": {"training.adversarial": {"method": "pgd", "epsilon": 1.0, "steps": 3}},
    "augment": {"training.augmentation": {"copies": 1, "swap": 0.15, "drop": 0.1, "typo": 0.05,
                                          "neighbour": 0.1}},
}


def rmse(gold, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(gold) - np.asarray(predicted)) ** 2)))


def home_depot(train_pairs: int, epochs: int, techniques: list[str], run_root: Path, stack: bool = False,
               reuse_runs: bool = False, semantic: str | None = None) -> list[dict]:
    from .baselines import StrongPairRidge
    from semmatch_tf import load_config, load_run, train
    from semmatch_tf.ensemble import fit_stacking_weights
    from semmatch_tf.training import load_splits

    base = {"data.subsample": {"train": train_pairs}} if train_pairs > 0 else {}
    if epochs:
        base["training.epochs"] = epochs
    config = load_config(REPO / "configs" / "home_depot_bilstm.yaml", base)
    # The recipe's BiLSTM reads match features since 2026-12-07: its rows say so, and older runs differ.
    model = "bilstm+match-features" if config.model.match_features else "bilstm"
    train_set, validation_set, test_set = load_splits(config.data)
    split = (f"test(by-query; train subsample {len(train_set)} pairs)" if train_pairs > 0
             else f"test(by-query; full train split {len(train_set)} pairs)")
    gold, held = test_set.frame["grade"].to_numpy(), validation_set.frame["grade"].to_numpy()
    low, high = train_set.labels.grade_range
    texts = lambda d: (d.frame["query"].tolist(), d.frame["product"].tolist())  # noqa: E731

    started = time.perf_counter()
    baseline = StrongPairRidge().fit(*texts(train_set), train_set.frame["grade"], validation=(*texts(validation_set), held))
    predictions = {"strong-baseline": np.clip(baseline.predict(*texts(test_set)), low, high)}
    validation_predictions = {"strong-baseline": np.clip(baseline.predict(*texts(validation_set)), low, high)}
    seconds = {"strong-baseline": time.perf_counter() - started}
    print(f"baseline {baseline.chosen} rmse {rmse(gold, predictions['strong-baseline']):.4f}", flush=True)

    for name in ["plain", *techniques]:
        overrides = {**base, **PLAIN, **TECHNIQUES.get(name, {})}
        run_config = load_config(REPO / "configs" / "home_depot_bilstm.yaml", overrides)
        run_dir = run_root / f"{model.replace('+', '_')}_{name}"
        if reuse_runs and _finished_run_of(run_dir, run_config):
            print(f"{model}-{name}: reusing the finished run {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            started = time.perf_counter()
            train(run_config, run_dir, verbose=2)
            seconds[f"{model}-{name}"] = time.perf_counter() - started
        matcher = load_run(run_dir)
        predictions[f"{model}-{name}"] = matcher.score(*texts(test_set))
        validation_predictions[f"{model}-{name}"] = matcher.score(*texts(validation_set))
        print(f"{model}-{name}: rmse {rmse(gold, predictions[f'{model}-{name}']):.4f}", flush=True)

    neural = [k for k in predictions if k.startswith(f"{model}-")]
    predictions["ensemble-average(bilstms)"] = np.mean([predictions[k] for k in neural], axis=0)
    members = [*neural, "strong-baseline"]
    unit = lambda values: (np.asarray(values) - low) / (high - low)  # noqa: E731
    weights, bias = fit_stacking_weights(np.column_stack([unit(validation_predictions[k]) for k in members]),
                                         unit(held))
    stacked = np.column_stack([unit(predictions[k]) for k in members]) @ weights + bias
    predictions["ensemble-stacked(bilstms+baseline)"] = np.clip(stacked, 0, 1) * (high - low) + low
    print("stacking weights", dict(zip(members, np.round(weights, 3))), flush=True)
    comparisons = []
    if stack:
        comparisons = boosted_stacks(train_set, validation_set, test_set, baseline.chosen["alpha"], predictions,
                                     validation_predictions, seconds, semantic, neural)
    return _records(gold, predictions, seconds, split, len(train_set), comparisons, f"{model}-plain")


def _finished_run_of(run_dir: Path, run_config) -> bool:
    """Whether ``run_dir`` holds a finished run (its report written) of exactly this config."""
    import json

    import yaml

    if not (run_dir / "report.json").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    return saved == json.loads(json.dumps(run_config.to_dict()))


def boosted_stacks(train_set, validation_set, test_set, alpha: float, predictions: dict, validation_predictions: dict,
                   seconds: dict, semantic: str | None = None, neural: list[str] = ()) -> list[tuple[str, str]]:
    """Gradient-boosted stacks over the baseline's out-of-fold predictions, the pair features, the
    zero-shot ``semantic`` encoder's cosine and the product prior, then with the BiLSTMs (module
    docstring). Adds to ``predictions`` (test) and returns the (system, stack without its last
    addition) pairs to compare."""
    import pandas as pd

    from .baselines import StrongPairRidge
    from semmatch_tf import BiEncoder
    from semmatch_tf.ensemble import (BoostedStacker, PairFeatures, ProductPrior, fit_stacking_weights,
                                      out_of_fold_predictions, query_folds)

    texts = lambda d: (d.frame["query"].tolist(), d.frame["product"].tolist())  # noqa: E731
    grades, held = train_set.frame["grade"].to_numpy(np.float64), validation_set.frame["grade"].to_numpy(np.float64)
    low, high = train_set.labels.grade_range
    started = time.perf_counter()
    folds = query_folds(train_set.frame["query_id"], folds=5)
    oof = out_of_fold_predictions(lambda: StrongPairRidge(alphas=(alpha,)), *texts(train_set), grades, folds)
    features = PairFeatures(encoder=BiEncoder.from_preset(semantic) if semantic else None).fit(*texts(train_set))
    prior = ProductPrior()
    columns = {
        "train": pd.concat([features.transform(*texts(train_set)).assign(ridge=oof),
                            prior.out_of_fold(train_set.frame["product_id"], grades, folds)], axis=1)}
    prior.fit(train_set.frame["product_id"], grades)
    for name, split, ridge in (("validation", validation_set, validation_predictions["strong-baseline"]),
                               ("test", test_set, predictions["strong-baseline"])):
        columns[name] = pd.concat([features.transform(*texts(split)).assign(ridge=ridge),
                                   prior.transform(split.frame["product_id"])], axis=1)
    print(f"stack inputs (oof ridge, features{', ' + semantic if semantic else ''}, prior) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)

    extra = ("ridge", "product_prior", "product_count", "semantic_cosine")
    base = ["ridge", *(c for c in columns["train"].columns if c not in extra)]
    prior_columns = ["product_prior", "product_count"]
    variants = [("stack-gbm(ridge)", ["ridge"], None),
                ("stack-gbm(ridge+features)", base, "stack-gbm(ridge)"),
                ("stack-gbm(ridge+features+product-prior)", [*base, *prior_columns], "stack-gbm(ridge+features)")]
    if semantic:
        cosine = f"ridge+features+zero-shot-{semantic}"
        variants += [(f"stack-gbm({cosine})", [*base, "semantic_cosine"], "stack-gbm(ridge+features)"),
                     (f"stack-gbm({cosine}+product-prior)", [*base, "semantic_cosine", *prior_columns],
                      f"stack-gbm({cosine})")]
    comparisons = []
    unit = lambda values: (np.asarray(values, np.float64) - low) / (high - low)  # noqa: E731
    for name, chosen, reference in variants:
        started = time.perf_counter()
        stacker = BoostedStacker((low, high)).fit(columns["train"][chosen], grades,
                                                  validation=(columns["validation"][chosen], held))
        seconds[name] = time.perf_counter() - started
        predictions[name] = stacker.predict(columns["test"][chosen])
        on_validation = stacker.predict(columns["validation"][chosen])
        print(f"{name}: {stacker.chosen} in {seconds[name]:.0f} s", flush=True)
        if reference:
            comparisons.append((name, reference))
        if name == "stack-gbm(ridge)" or not neural:
            continue
        members = [on_validation, *(validation_predictions[k] for k in neural)]
        weights, bias = fit_stacking_weights(np.column_stack([unit(m) for m in members]), unit(held))
        tested = np.column_stack([unit(predictions[k]) for k in (name, *neural)]) @ weights + bias
        predictions[f"{name}+bilstms"] = np.clip(tested, 0, 1) * (high - low) + low
        comparisons.append((f"{name}+bilstms", name))
        print(f"{name}+bilstms: validation weights", dict(zip(["stack", *neural], np.round(weights, 3))), flush=True)
    if semantic:
        comparisons.append((f"stack-gbm({cosine}+product-prior)", "stack-gbm(ridge+features+product-prior)"))
    return comparisons


BASELINE_SETS = {"home_depot": "home_depot_bilstm.yaml", "qbqtc": "qbqtc_bilstm.yaml", "lcqmc": "lcqmc_bilstm.yaml"}


def baselines(name: str) -> list[dict]:
    """The earlier cheap baseline vs the strongest one, same split, paired bootstrap: grades (Home
    Depot) by RMSE, classes (QBQTC, LCQMC) by macro-F1."""
    from .baselines import CharNgramLogReg, CharNgramRidge, StrongPairLogReg, StrongPairRidge
    from semmatch_tf import load_config
    from semmatch_tf.evaluation import macro_f1, paired_bootstrap_statistic
    from semmatch_tf.training import load_splits

    config = load_config(REPO / "configs" / BASELINE_SETS[name])
    train_set, validation_set, test_set = load_splits(config.data, extra=False)  # judged pairs only
    if not len(validation_set):  # LCQMC's config holds no validation split out: carve one by query
        from semmatch_tf import split_by_query

        train_set, validation_set, _ = split_by_query(train_set, fractions=(0.9, 0.1, 0.0), seed=config.data.seed)
    texts = lambda d: (d.frame["query"].tolist(), d.frame["product"].tolist())  # noqa: E731
    split = "test(by-query)" if name != "lcqmc" else "test"
    if name == "home_depot":
        column, metric, higher = "grade", "rmse", False
        low, high = train_set.labels.grade_range
        old = CharNgramRidge().fit(*texts(train_set), train_set.frame[column])
        strong = StrongPairRidge().fit(*texts(train_set), train_set.frame[column],
                                       validation=(*texts(validation_set), validation_set.frame[column]))
        system, reference = (np.clip(m.predict(*texts(test_set)), low, high) for m in (strong, old))
        statistic = rmse
    else:
        column, metric, higher = "label", "macro_f1", True
        k = train_set.labels.num_classes
        old = CharNgramLogReg().fit(*texts(train_set), train_set.frame[column])
        strong = StrongPairLogReg().fit(*texts(train_set), train_set.frame[column],
                                        validation=(*texts(validation_set), validation_set.frame[column]))
        system, reference = (m.predict_proba(*texts(test_set))[:, :k].argmax(axis=1) for m in (strong, old))
        statistic = lambda gold, predicted: macro_f1(gold, predicted, k)  # noqa: E731
    gold = test_set.frame[column].to_numpy()
    result = paired_bootstrap_statistic(statistic, gold, system, reference, samples=1000, higher_is_better=higher)
    print(f"{name}: {metric} strong {result['system']:.4f} ({strong.chosen}) old {result['baseline']:.4f} gain "
          f"{result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]", flush=True)
    pair = "strong-baseline vs char-tfidf-baseline"
    return [record(BENCHMARK, name, split, "char-tfidf-baseline(earlier)", metric, result["baseline"]),
            record(BENCHMARK, name, split, "strong-baseline", metric, result["system"]),
            record(BENCHMARK, name, split, pair, f"{metric}_gain", result["difference"]),
            record(BENCHMARK, name, split, pair, f"{metric}_gain_low95", result["low"]),
            record(BENCHMARK, name, split, pair, f"{metric}_gain_high95", result["high"])]


def _records(gold, predictions: dict, seconds: dict, split: str, train_pairs: int,
             comparisons: list[tuple[str, str]] = (), plain: str = "bilstm-plain") -> list[dict]:
    from semmatch_tf.evaluation import paired_bootstrap_statistic

    records = []
    for model, predicted in predictions.items():
        records.append(record(BENCHMARK, "home_depot", split, model, "rmse", rmse(gold, predicted)))
        if model in seconds:
            records.append(record(BENCHMARK, "home_depot", "train", model, "train_seconds", seconds[model],
                                  anchor=f"{machine()}; shared, loaded machine; {train_pairs} pairs"))
    extra = list(comparisons)
    comparisons = [(m, "strong-baseline") for m in predictions if m != "strong-baseline"]
    comparisons += [(m, plain) for m in predictions
                    if m not in ("strong-baseline", plain) and not m.startswith("stack-gbm")]
    comparisons += [c for c in extra if c not in comparisons]
    for system, reference in comparisons:
        result = paired_bootstrap_statistic(rmse, gold, predictions[system], predictions[reference], samples=1000,
                                            higher_is_better=False)
        name = f"{system} vs {reference}"
        print(f"{name}: rmse gain {result['difference']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]")
        records += [record(BENCHMARK, "home_depot", split, name, "rmse_gain", result["difference"]),
                    record(BENCHMARK, "home_depot", split, name, "rmse_gain_low95", result["low"]),
                    record(BENCHMARK, "home_depot", split, name, "rmse_gain_high95", result["high"])]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-pairs", type=int, default=10000,
                        help="training subsample (whole queries); 0: the whole training split")
    parser.add_argument("--epochs", type=int, default=3, help="0: the config's (6, early stopping)")
    parser.add_argument("--techniques", nargs="*", default=["fgm", "augment"], choices=sorted(TECHNIQUES))
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "benchmarks" / "robust")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    parser.add_argument("--stack", action="store_true",
                        help="add the gradient-boosted stacks (baseline OOF, pair features, product prior, BiLSTMs)")
    parser.add_argument("--semantic", metavar="PRESET",
                        help="with --stack, also stack the cosine of this pretrained encoder used zero-shot "
                             "(BiEncoder.from_preset name, e.g. all-minilm-l6-v2)")
    parser.add_argument("--reuse-runs", action="store_true",
                        help="load a finished BiLSTM run of the same config from --runs instead of training it")
    parser.add_argument("--baselines", nargs="*", choices=sorted(BASELINE_SETS),
                        help="only compare the earlier cheap baseline with the strongest one on these sets")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    if args.baselines:
        publish([r for name in args.baselines for r in baselines(name)], args.dry)
        return
    publish(home_depot(args.train_pairs, args.epochs, args.techniques, args.runs, args.stack, args.reuse_runs,
                       args.semantic), args.dry)


if __name__ == "__main__":
    main()
