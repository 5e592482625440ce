"""Ensembles of run directories: what ``semmatch-tf ensemble`` builds."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from semmatch_tf.data.schema import PairDataset
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
    the cheap members train in seconds) with its regularisation chosen on the validation split; it runs in the
    ensemble's graph like the networks, so the export is still one SavedModel. ``boosted=True``
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
    splits = load_splits(configs[0].data) if method == "stacked" or baseline or boosted else None
    cheap_train = whole_training_split(configs[0].data, splits[0]) if baseline or boosted else None
    if baseline:
        members.append(fit_baseline_member(cheap_train, splits[1], members[0].labels, members[0].head))
    if boosted:
        members.append(fit_boosted_member(cheap_train, splits[1], members[0].labels))
    return build_ensemble(members, method, validation=splits[1] if method == "stacked" else None)


def whole_training_split(data, training: PairDataset) -> PairDataset:
    """``training`` without the ``data.subsample.train`` cap (the same queries' split, every pair)."""
    if "train" not in data.subsample:
        return training
    caps = {split: pairs for split, pairs in data.subsample.items() if split != "train"}
    return load_splits(dataclasses.replace(data, subsample=caps))[0]
