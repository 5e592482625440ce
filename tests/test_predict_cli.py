"""``semmatch-tf predict``: one pass over the model, JSON lines on stdout or a JSONL / CSV / Parquet
file written atomically, and a bad ``--output`` refused before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semmatch_tf.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
RUN, PAIRS = FIXTURES / "bilstm_v0_1", FIXTURES / "pairs.tsv"


@pytest.fixture(scope="module")
def stdout_records() -> list[dict]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["predict", "--model", str(RUN), "--input", str(PAIRS), "--no-progress"]) == 0
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_stdout_is_one_json_line_per_pair(stdout_records):
    lines = PAIRS.read_text(encoding="utf-8").splitlines()
    assert [(r["query"], r["product"]) for r in stdout_records] == [tuple(line.split("\t")) for line in lines]
    names = ["irrelevant", "partial", "exact"]  # the run's labels.json
    for record in stdout_records:
        assert record["label"] == names[int(np.argmax(record["probabilities"]))]
        assert abs(sum(record["probabilities"]) - 1) < 1e-4
        expected_grade = float(np.dot(record["probabilities"], [0.0, 1.0, 2.0]))
        assert record["score"] == pytest.approx(expected_grade, abs=1e-4)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_output_files_hold_the_same_predictions(tmp_path, capsys, stdout_records, suffix):
    path = tmp_path / f"scores{suffix}"
    assert main(["predict", "--model", str(RUN), "--input", str(PAIRS), "--output", str(path), "--progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"{len(stdout_records)} predictions written to {path}" in captured.err
    if suffix == ".jsonl":
        assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == stdout_records
        return
    table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert table["query"].tolist() == [r["query"] for r in stdout_records]
    np.testing.assert_allclose(table["score"], [r["score"] for r in stdout_records], atol=1e-6)
    probability_columns = [c for c in table.columns if c.startswith("p_")]
    assert len(probability_columns) == len(stdout_records[0]["probabilities"])
    np.testing.assert_allclose(table[probability_columns].to_numpy(),
                               [r["probabilities"] for r in stdout_records], atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind


@pytest.mark.parametrize("output, message", [
    ("scores.xlsx", "unknown format '.xlsx'; use one of .jsonl, .csv, .parquet"),
    ("missing/scores.csv", "does not exist"),
])
def test_bad_output_is_one_line_before_the_model_loads(tmp_path, capsys, output, message):
    code = main(["predict", "--model", str(tmp_path / "no-such-run"), "--input", str(PAIRS),
                 "--output", str(tmp_path / output)])
    error = capsys.readouterr().err.strip()
    assert code != 0 and message in error and len(error.splitlines()) == 1
    assert not any(tmp_path.iterdir())
