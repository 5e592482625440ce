"""Issue 14, "nothing lost, nothing silent": the quick cases of the fault-injection suite
(python -m benchmarks.run_faults --quick) that need no trained model, export or subprocess all pass:
malformed data files for every loader and command that reads them, fuzzed configs and --set
values, hostile downloads and archives, and bad search queries are refused at once with one
stderr line (exit 2) naming the file, row, field or key, and leave nothing behind. The full suite,
with kill -9 and resume, exports, serving and a tiny file system, is the benchmark itself."""

from __future__ import annotations

import pytest

from benchmarks import run_faults

CASES = run_faults.select(run_faults.all_cases(), quick=True, cheap=True)


def test_the_quick_cheap_subset_covers_every_kind_of_input():
    assert len(CASES) >= 12
    assert {case.category for case in CASES} >= {"malformed_inputs", "config_fuzz", "download", "search"}


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return run_faults.Context(tmp_path_factory.mktemp("faults"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}/{c.name}" for c in CASES])
def test_fault_case(case, context):
    context.selected = CASES
    undo = run_faults.install_logging()
    try:
        result = run_faults.run_case(case, context)
    finally:
        undo()
    assert result.outcome.status == "pass", result.outcome.reason
