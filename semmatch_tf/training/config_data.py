"""The ``data`` section of a run config: where the judged pairs come from and how they are split."""

from __future__ import annotations

import dataclasses
import os

from semmatch_tf.training.config_schema import MAX_SEED, ConfigError, check, one_of, short


@dataclasses.dataclass
class DataConfig:
    """Where the judged pairs come from and how they are split (always grouped by query).

    ``subsample`` caps a split's size after splitting, e.g. ``{train: 8000}`` to fine-tune a BERT
    on a CPU while validating and testing on the same held-out queries as a full run.
    ``extra_train`` names files of graded pairs (JSON lines with ``query``, ``product``, ``grade``
    and optionally ``language``, on this dataset's grade scale), e.g. a teacher's grades
    from ``semmatch-tf teacher-label`` (:mod:`semmatch_tf.training.distill`); they join the training
    split only, after it is split, and are never capped by ``subsample``.
    """

    format: str = "demo"
    path: str | None = None
    options: dict = dataclasses.field(default_factory=dict)
    limit: int | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 13
    validation_path: str | None = None
    test_path: str | None = None
    subsample: dict = dataclasses.field(default_factory=dict)
    extra_train: list[str] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        from semmatch_tf.data.loaders import FORMATS

        one_of(self.format, "data.format", (*FORMATS, "demo"))
        check(self.format == "demo" or self.path is not None, "data.path",
               f"is required for format {short(self.format)}")
        check(len(self.split) == 3 and all(f >= 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6,
               "data.split", f"must be three non-negative fractions summing to 1, got {list(self.split)}")
        check(self.split[0] > 0, "data.split", "needs a non-empty training fraction")
        check(self.limit is None or self.limit > 0, "data.limit", "must be positive")
        check_seed(self.seed, "data.seed")
        for split, pairs in self.subsample.items():
            one_of(split, "data.subsample", ("train", "validation", "test"))
            check(isinstance(pairs, int) and pairs > 0, f"data.subsample.{split}",
                   "must be a positive number of pairs (whole queries are kept)")
        for number, path in enumerate(self.extra_train):
            check(isinstance(path, str) and path.strip().endswith((".jsonl", ".json", ".ndjson")),
                  f"data.extra_train[{number}]", f"must be a JSON lines file (.jsonl), got {short(path)}")
        self._validate_options()

    def _validate_options(self) -> None:
        """``options`` must be keyword options the format's loader accepts (checked before any
        data is read; a typo would otherwise surface as a TypeError from inside the loader)."""
        from semmatch_tf.data.loaders import loader_options, option_problems

        accepted = [name for name in loader_options(self.format) if name != "limit"]
        for name in self.options:
            check(name != "limit", "data.options.limit", "use data.limit")
            check(name in accepted, f"data.options.{name}", f"unknown option for format {short(self.format)}; "
                   + (f"it accepts {accepted}" if accepted else "it takes none"))
        for name, problem in option_problems(self.format, self.options).items():
            raise ConfigError(f"data.options.{name}: {problem}")


def check_seed(seed: int, key: str) -> None:
    check(0 <= seed <= MAX_SEED, key, f"must be in [0, {MAX_SEED}] (a NumPy seed), got {seed}")


def resolve_data_path(path: str) -> str:
    """Expand ``$SEMMATCH_DATA_DIR`` (default ``../shared/data``) and other variables in a path."""
    default = os.environ.get("SEMMATCH_DATA_DIR", "../shared/data")
    return os.path.expandvars(path.replace("$SEMMATCH_DATA_DIR", default).replace("${SEMMATCH_DATA_DIR}", default))
