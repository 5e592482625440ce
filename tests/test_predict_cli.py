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


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_chunked_stream_writes_what_one_chunk_writes(tmp_path, capsys, monkeypatch, stdout_records, suffix):
    from semmatch_tf.cli import predictions

    monkeypatch.setattr(predictions, "CHUNK_PAIRS", 2)  # the fixture's pairs in several chunks
    scored = []
    real_stream = predictions._scored_chunks

    def counting(pairs, score, **kwargs):
        for records in real_stream(pairs, score, **kwargs):
            scored.append(len(records))
            yield records

    monkeypatch.setattr(predictions, "_scored_chunks", counting)
    path = tmp_path / f"chunked{suffix}"
    assert main(["predict", "--model", str(RUN), "--input", str(PAIRS), "--output", str(path), "--no-progress"]) == 0
    assert len(scored) > 1 and max(scored) <= 2 and sum(scored) == len(stdout_records)
    if suffix == ".jsonl":
        assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == stdout_records
        return
    table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(table.columns).count("query") == 1 and len(table) == len(stdout_records)  # one header
    np.testing.assert_allclose(table["score"], [r["score"] for r in stdout_records], atol=1e-6)


def test_a_bad_last_line_is_refused_before_any_pair_is_scored(tmp_path, capsys):
    lines = PAIRS.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "pairs.tsv"
    bad.write_text("\n".join(lines + ["query without a product"]) + "\n", encoding="utf-8")
    output = tmp_path / "scores.csv"
    code = main(["predict", "--model", str(RUN), "--input", str(bad), "--output", str(output)])
    captured = capsys.readouterr()
    assert code != 0 and f"line {len(lines) + 1}" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["pairs.tsv"]
    code = main(["predict", "--model", str(RUN), "--input", str(bad)])  # stdout: nothing half-printed
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_no_pairs_on_stdin_writes_an_empty_table_with_its_columns(tmp_path, capsys, monkeypatch, suffix):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = tmp_path / f"empty{suffix}"
    assert main(["predict", "--model", str(RUN), "--output", str(path), "--no-progress"]) == 0
    assert "0 predictions written" in capsys.readouterr().err
    if suffix == ".jsonl":
        assert path.read_text(encoding="utf-8") == ""
        return
    table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(table.columns) == ["query", "product", "score"] and len(table) == 0
    if suffix == ".parquet":
        assert str(table["score"].dtype) == "float64"


def test_evaluate_without_a_dataset_scores_the_runs_own_test_split(tmp_path, capsys):
    from semmatch_tf.tasks import CrossEncoder
    from semmatch_tf.training.config_files import load_config
    from semmatch_tf.training.trainer import load_splits

    report_file = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(RUN), "--output", str(report_file)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    test = load_splits(load_config(RUN / "config.yaml").data)[2]
    assert first == f"{test.name} (the run's held-out split, by query, seed 3): {len(test)} pairs, " \
                    f"{test.frame['query_id'].nunique()} queries"
    expected = CrossEncoder.load(RUN).evaluate(test)
    written = json.loads(report_file.read_text(encoding="utf-8"))
    assert written["counts"] == expected["counts"]
    assert written["classification"]["accuracy"] == pytest.approx(expected["classification"]["accuracy"])
    assert main(["evaluate", "--model", str(RUN), "--path", str(PAIRS)]) == 2  # a file needs its format
    assert "--path and --option need --dataset" in capsys.readouterr().err
