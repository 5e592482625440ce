"""The boosted stack that ships as one SavedModel, on Home Depot (issue 18).

    python -m benchmarks.run_boosted_export [--run runs/benchmarks/e5_home_depot] [--no-export] [--dry]

Same by-query split and titles as ``run_robust.py`` (configs/home_depot_bilstm.yaml, the whole
training split). ``semmatch_tf.ensemble.fit_boosted_member`` fits the strongest cheap baseline
(char + word n-gram TF-IDF ridge, alpha chosen on validation), its out-of-fold scores over 5 query
folds of the training pairs, the in-graph match features (``semmatch_tf.models.tfidf.MatchFeatures``)
and gradient-boosted trees over them (tree count chosen on validation), all evaluated in TF ops.
Reported: its test RMSE against the baseline's (paired bootstrap, 1000 resamples of test pairs)
and its fitting time. With ``--run`` (a finished cross-encoder run on the same split, e.g. the
e5-small fine-tuned by ``run_multilingual_finetune.py --recipes home_depot``), exactly what
``semmatch-tf ensemble --model RUN --boosted --method stacked`` builds (``ensemble_from_runs``:
the boosted member fitted on the run's whole training split, its tree count and the stacking
weights chosen on the run's validation split) against the baseline, the boosted member and the
run alone; then exported as ONE SavedModel and checked with check-export (outputs equal to the
in-memory ensemble, no semmatch_tf in the serving process).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# `python benchmarks/run_boosted_export.py` re-runs itself as `python -m benchmarks.run_boosted_export`.
if __name__ == "__main__" and not __package__:
    os.execv(sys.executable, [sys.executable, "-m", "benchmarks.run_boosted_export", *sys.argv[1:]])

from .common import REPO, data_dir, machine, publish, record  # noqa: E402

BENCHMARK = "robust"


def _compare(gold, system, reference, split, names) -> list[dict]:
    from semmatch_tf.evaluation import gain_over_baseline

    result = gain_over_baseline("rmse", gold, system, reference)
    name = f"{names[0]} vs {names[1]}"
    print(f"{name}: {result['run']:.4f} vs {result['baseline']:.4f}, gain {result['gain']:+.4f} "
          f"[{result['low']:+.4f}, {result['high']:+.4f}]", flush=True)
    return [record(BENCHMARK, "home_depot", split, name, f"rmse_gain{suffix}", result[key])
            for suffix, key in (("", "gain"), ("_low95", "low"), ("_high95", "high"))]


def _exported(ensemble, name: str) -> list[dict]:
    """Export the ensemble as one SavedModel, check it, and record size and agreement."""
    from semmatch_tf.export import check_export, export_model

    with tempfile.TemporaryDirectory() as directory:
        version = export_model(ensemble, Path(directory), name="ensemble")
        report = check_export(version, matcher=ensemble)
        size = sum(f.stat().st_size for f in version.rglob("*") if f.is_file()) / 2 ** 20
    print(f"exported {size:.0f} MiB, check-export ok={report['ok']} max diff {report['max_abs_diff']}", flush=True)
    return [record(BENCHMARK, "home_depot", "export", name, "check_export_ok", float(report["ok"])),
            record(BENCHMARK, "home_depot", "export", name, "check_export_max_abs_diff",
                   max(report["max_abs_diff"].values())),
            record(BENCHMARK, "home_depot", "export", name, "savedmodel_mib", size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="a finished cross-encoder run on the same split to stack with")
    parser.add_argument("--no-export", action="store_true", help="skip exporting and checking the ensemble")
    parser.add_argument("--dry", action="store_true", help="print, do not append to results.json")
    args = parser.parse_args()
    os.environ.setdefault("SEMMATCH_DATA_DIR", str(data_dir()))
    from semmatch_tf import load_config, load_run
    from semmatch_tf.ensemble import ensemble_from_runs, fit_boosted_member
    from semmatch_tf.evaluation import rmse
    from semmatch_tf.models.tfidf import fit_strong_baseline
    from semmatch_tf.training import load_splits

    train_set, validation_set, test_set = load_splits(load_config(REPO / "configs" / "home_depot_bilstm.yaml").data)
    split = f"test(by-query; full train split {len(train_set)} pairs)"
    pairs = test_set.frame["query"].tolist(), test_set.frame["product"].tolist()
    gold = test_set.frame["grade"].to_numpy(np.float64)
    low, high = train_set.labels.grade_range
    baseline = np.clip(fit_strong_baseline(train_set, validation_set, "regression").predict(*pairs), low, high)
    started = time.perf_counter()
    if args.run:
        ensemble = ensemble_from_runs([args.run], "stacked", boosted=True)
        run, member = ensemble.members
    else:
        member = fit_boosted_member(train_set, validation_set, train_set.labels)
    seconds = time.perf_counter() - started
    boosted = member.score(*pairs)
    facts = member.preprocessor.facts()
    name = "boosted-stack(baseline-oof+match-features, in-graph)"
    print(f"{name}: {facts['trees']} trees, rmse {rmse(gold, boosted):.4f}", flush=True)
    records = [record(BENCHMARK, "home_depot", split, "strong-baseline", "rmse", rmse(gold, baseline)),
               record(BENCHMARK, "home_depot", split, name, "rmse", rmse(gold, boosted),
                      f"{facts['trees']} trees; {len(facts['columns'])} columns; runs in TF ops")]
    records += _compare(gold, boosted, baseline, split, (name, "strong-baseline"))
    if not args.run:
        records.append(record(BENCHMARK, "home_depot", "train", name, "train_seconds", seconds,
                              f"{machine()}; {len(train_set)} pairs"))
    else:
        alone, combined = run.score(*pairs), ensemble.score(*pairs)
        run_name = f"run({args.run.name})"
        stacked = f"ensemble-stacked({args.run.name}+boosted-stack)"
        weights = np.round(ensemble.weights, 3).tolist()
        print(f"{stacked}: weights {weights} bias {ensemble.bias:.3f}, rmse {rmse(gold, combined):.4f}", flush=True)
        records += [record(BENCHMARK, "home_depot", split, run_name, "rmse", rmse(gold, alone)),
                    record(BENCHMARK, "home_depot", split, stacked, "rmse", rmse(gold, combined),
                           f"validation weights {weights}; one SavedModel; goal <= 0.46"),
                    record(BENCHMARK, "home_depot", "train", stacked, "build_seconds", seconds,
                           f"{machine()}; boosted member fitted and stacking weights chosen")]
        for reference, values in (("strong-baseline", baseline), (name, boosted), (run_name, alone)):
            records += _compare(gold, combined, values, split, (stacked, reference))
        if not args.no_export:
            records += _exported(ensemble, stacked)
    publish(records, args.dry)


if __name__ == "__main__":
    main()
