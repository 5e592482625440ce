"""Ensembles of run directories: what ``semmatch-tf ensemble`` builds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from semmatch_tf.ensemble.matcher import EnsembleMatcher, build_ensemble
from semmatch_tf.runs import CONFIG, load_run
from semmatch_tf.training.config_files import load_config
from semmatch_tf.training.trainer import load_splits


def ensemble_from_runs(run_dirs: Sequence[str | Path], method: str = "average") -> EnsembleMatcher:
    """Load finished cross-encoder runs and combine them. ``"stacked"`` fits its weights on the
    validation split of the runs' data (their ``data`` sections must agree: the split must be
    held out from every member)."""
    run_dirs = [Path(r) for r in run_dirs]
    if len(run_dirs) < 2:
        raise ValueError(f"an ensemble needs at least two runs (--model twice or more), got {len(run_dirs)}")
    members = [load_run(r) for r in run_dirs]
    validation = None
    if method == "stacked":
        configs = [load_config(r / CONFIG) for r in run_dirs]
        for run_dir, config in zip(run_dirs[1:], configs[1:]):
            if config.data != configs[0].data:
                raise ValueError(f"{run_dir}: its data section differs from {run_dirs[0]}'s; stacking needs "
                                 "one validation split held out from every member")
        validation = load_splits(configs[0].data)[1]
    return build_ensemble(members, method, validation=validation)
