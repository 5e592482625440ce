"""Ensembles of run directories: what ``semmatch-tf ensemble`` builds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from semmatch_tf.ensemble.baseline import fit_baseline_member
from semmatch_tf.ensemble.boosted import fit_boosted_member
from semmatch_tf.ensemble.matcher import EnsembleMatcher, build_ensemble
from semmatch_tf.runs import CONFIG, load_run
from semmatch_tf.training.config_files import load_config
from semmatch_tf.training.trainer import load_splits


def ensemble_from_runs(run_dirs: Sequence[str | Path], method: str = "average", *,
                       baseline: bool = False, boosted: bool = False) -> EnsembleMatcher:
    """Load finished cross-encoder runs and combine them. ``"stacked"`` fits its weights on the
    validation split of the runs' data (their ``data`` sections must agree: the split must be
    held out from every member).

    ``baseline=True`` adds the strongest cheap baseline as one more member
    (:func:`~semmatch_tf.ensemble.baseline.fit_baseline_member`), fitted on the training split of the
    first run's data (all of it: a ``subsample.train`` cap bounds a network's training time, and
    the cheap members train in seconds) with its regularisation chosen on the validation split; it
    runs in the ensemble's graph like the networks, so the export is still one SavedModel. ``boosted=True``
    adds the boosted stack of that baseline and match features
    (:func:`~semmatch_tf.ensemble.boosted.fit_boosted_member`, graded labels), fitted the same way."""
    run_dirs = [Path(r) for r in run_dirs]
    count = len(run_dirs) + int(baseline) + int(boosted)
    if count < 2:
        raise ValueError(f"an ensemble needs at least two members (--model twice or more, or --model and "
                         f"--baseline or --boosted), got {count}")
    members = [load_run(r) for r in run_dirs]
    configs = [load_config(r / CONFIG) for r in run_dirs]
    if method == "stacked":
        for run_dir, config in zip(run_dirs[1:], configs[1:]):
            if config.data != configs[0].data:
                raise ValueError(f"{run_dir}: its data section differs from {run_dirs[0]}'s; stacking needs "
                                 "one validation split held out from every member")
    # Only the cheap members read the training split, and they read all of it: without the train
    # cap, the same queries' split; the validation split (and its cap) is unchanged.
    data = configs[0].data
    data = dataclasses.replace(data, subsample={k: v for k, v in data.subsample.items() if k != "train"})
    train, validation = load_splits(data)[:2] if method == "stacked" or baseline or boosted else (None, None)
    if baseline:
        members.append(fit_baseline_member(train, validation, members[0].labels, members[0].head))
    if boosted:
        members.append(fit_boosted_member(train, validation, members[0].labels))
    return build_ensemble(members, method, validation=validation if method == "stacked" else None)
