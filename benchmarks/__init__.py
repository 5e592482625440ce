"""The benchmarks: each ``run_*.py`` measures one thing on real data and records it.

Run them as modules from the repository root, e.g.::

    .venv/bin/python -m benchmarks.run_quality home_depot qbqtc lcqmc
    .venv/bin/python -m benchmarks.run_faults --quick

Every benchmark appends its records to ``benchmarks/results.json`` and regenerates
``benchmarks/RESULTS.md`` through :mod:`benchmarks.common`. They use only the toolkit's public face:
names from ``semmatch_tf`` itself and from its subpackages' ``__all__`` (checked by
``tests/test_benchmarks_public.py``). Importing a benchmark module runs nothing.
"""
