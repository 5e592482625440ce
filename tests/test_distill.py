"""Distillation data (issue 18): a teacher's calibrated grades on unjudged pairs, the file
``semmatch-tf teacher-label`` writes, and ``data.extra_train`` adding it to the training split only."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import real_file
from semmatch_tf.cli import main
from semmatch_tf.data.demo import load_demo
from semmatch_tf.data.loaders import load_dataset
from semmatch_tf.data.splits import split_by_query
from semmatch_tf.training import RunConfig, load_splits
from semmatch_tf.training.config_schema import ConfigError
from semmatch_tf.training.distill import (load_graded_pairs, near_pairs, save_graded_pairs, teacher_calibration,
                                          teacher_labelled)

TEACHER_RUN = Path(__file__).parent / "fixtures" / "runs" / "bilstm_v0_1"  # a demo BiLSTM run


def character_overlap(queries, products) -> np.ndarray:
    """A deterministic stand-in teacher: Jaccard similarity of the two texts' character sets."""
    return np.array([len(set(q) & set(p)) / max(1, len(set(q) | set(p))) for q, p in zip(queries, products)])


@pytest.fixture(scope="module")
def demo_splits():
    return split_by_query(load_demo(), fractions=(0.8, 0.1, 0.1), seed=13)


def test_mined_pairs_are_lexically_near_on_real_questions():
    frame = load_dataset("lcqmc", real_file("lcqmc/dev.txt")).frame.head(1500)
    anchors, pool = frame["query"].head(200).tolist(), frame["query"].tolist() + frame["product"].tolist()
    mined = near_pairs(anchors, pool, per_anchor=2)
    assert set(mined["query"]) <= set(anchors) and (mined.groupby("query").size() <= 2).all()
    assert len(mined) >= 390 and not (mined["query"] == mined["product"]).any()
    rng = np.random.default_rng(0)
    random_partners = rng.choice(pool, size=len(mined))
    near = character_overlap(mined["query"], mined["product"]).mean()
    assert near > 2 * character_overlap(mined["query"], random_partners).mean()
    assert near_pairs(["abc"], ["abc"], per_anchor=3).empty  # only the anchor itself: nothing to pair


def test_calibration_maps_scores_onto_the_grade_scale_monotonically(demo_splits):
    train = demo_splits[0]
    calibration = teacher_calibration(character_overlap, train)
    scores = np.linspace(-1, 2, 301)
    grades = calibration.predict(scores)
    low, high = train.labels.grade_range
    assert np.all(np.diff(grades) >= 0) and grades.min() >= low and grades.max() <= high
    fitted = calibration.predict(character_overlap(train.frame["query"], train.frame["product"]))
    gold = train.frame["grade"].to_numpy()
    # the teacher's score says something about the grade: the map beats the best constant
    assert np.sqrt(np.mean((fitted - gold) ** 2)) < np.sqrt(np.mean((gold.mean() - gold) ** 2)) - 0.02


def test_teacher_labelled_pairs_keep_out_held_texts_and_judged_pairs(demo_splits):
    train, validation, test = demo_splits
    calibration = teacher_calibration(character_overlap, train)
    held = {t for split in (validation, test) for side in ("query", "product") for t in split.frame[side]}
    other = load_demo().subset(np.arange(0, 2440, 7))  # "another corpus": its labels must be ignored
    pairs = teacher_labelled(character_overlap, calibration, train, [other], mine=2, exclude=held)
    frame = pairs.frame
    assert len(frame) > 100
    assert not (frame["query"].isin(held) | frame["product"].isin(held)).any()
    judged = set(zip(train.frame["query"], train.frame["product"]))
    assert not any(pair in judged for pair in zip(frame["query"], frame["product"]))
    assert not (frame["query"] == frame["product"]).any()
    np.testing.assert_allclose(frame["grade"], calibration.predict(character_overlap(frame["query"], frame["product"])))
    assert (frame["label"].to_numpy() == train.labels.class_of_grade(frame["grade"].to_numpy())).all()
    mined = ~pd.Series(list(zip(frame["query"], frame["product"]))).isin(set(zip(other.frame["query"], other.frame["product"])))
    assert mined.sum() > 0 and frame["query"][mined.to_numpy()].isin(set(train.frame["query"]) | set(train.frame["product"])).all()


def test_products_pool_pairs_training_queries_with_product_texts_only(demo_splits):
    train = demo_splits[0]
    calibration = teacher_calibration(character_overlap, train)
    pairs = teacher_labelled(character_overlap, calibration, train, mine=2, mine_pool="products").frame
    queries, products = set(train.frame["query"]), set(train.frame["product"])
    assert len(pairs) >= 1.8 * len(queries)  # two new partners per query: judged pairs are passed over
    assert pairs["query"].isin(queries).all() and pairs["product"].isin(products).all()
    everything = teacher_labelled(character_overlap, calibration, train, mine=2).frame
    assert (~everything["product"].isin(products)).any()  # the symmetric pool does pair query with query
    with pytest.raises(ValueError, match="mine_pool"):
        teacher_labelled(character_overlap, calibration, train, mine=2, mine_pool="queries")


def test_graded_pairs_round_trip_and_out_of_range_grades_name_the_row(demo_splits, tmp_path):
    train = demo_splits[0]
    pairs = teacher_labelled(character_overlap, teacher_calibration(character_overlap, train), train, mine=1)
    path = save_graded_pairs(pairs, tmp_path / "teacher.jsonl")
    back = load_graded_pairs(path, train.labels)
    np.testing.assert_allclose(back.frame["grade"], pairs.frame["grade"], atol=1e-9)
    assert back.frame["language"].tolist() == pairs.frame["language"].tolist() and back.labels == train.labels
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "product": "b", "grade": 0.5, "language": "en"}\n'
                   '{"query": "c", "product": "d", "grade": 7, "language": "en"}\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_graded_pairs(bad, train.labels)
    message = str(error.value)
    assert "bad.jsonl" in message and "7" in message and "\n" not in message and ("row 2" in message or "line 2" in message)
    bad.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl, row 1: malformed JSON"):
        load_graded_pairs(bad, train.labels)


def test_extra_train_joins_the_training_split_only(demo_splits, tmp_path):
    train = demo_splits[0]
    pairs = teacher_labelled(character_overlap, teacher_calibration(character_overlap, train), train, mine=1)
    path = save_graded_pairs(pairs, tmp_path / "teacher.jsonl")
    base = {"data": {"format": "demo", "split": [0.8, 0.1, 0.1], "seed": 13, "subsample": {"train": 500}}}
    plain = load_splits(RunConfig.from_dict(base).data)
    with_extra = load_splits(RunConfig.from_dict({"data": {**base["data"], "extra_train": [str(path)]}}).data)
    assert len(with_extra[0]) == len(plain[0]) + len(pairs)  # the subsample cap leaves the extra pairs alone
    for before, after in zip(plain[1:], with_extra[1:]):
        pd.testing.assert_frame_equal(before.frame, after.frame)
    assert len(load_splits(RunConfig.from_dict({"data": {**base["data"], "extra_train": [str(path)]}}).data,
                           extra=False)[0]) == len(plain[0])
    with pytest.raises(ConfigError, match=r"data\.extra_train\[0\].*JSON lines"):
        RunConfig.from_dict({"data": {"format": "demo", "extra_train": ["teacher.csv"]}})


def test_teacher_label_command_with_a_run_as_teacher(tmp_path):
    output = tmp_path / "teacher.jsonl"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["teacher-label", "--config", "configs/demo_bilstm.yaml", "--teacher", str(TEACHER_RUN),
                     "--mine", "2", "--output", str(output)]) == 0
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert records and all(0.0 <= r["grade"] <= 2.0 and r["language"] for r in records)
    printed = buffer.getvalue()
    assert f"{len(records)} teacher-graded pairs written" in printed and "validation pairs: accuracy" in printed
    from semmatch_tf import load_config

    _, validation, test = load_splits(load_config("configs/demo_bilstm.yaml").data)
    held = {t for split in (validation, test) for side in ("query", "product") for t in split.frame[side]}
    assert not any(r["query"] in held or r["product"] in held for r in records)


def test_teacher_label_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    for extra in (["--pairs", "nonsense"], ["--pairs", "lcqmc:"], ["--output", str(tmp_path / "t.csv")],
                  ["--teacher", "no-such-model"]):
        arguments = ["teacher-label", "--config", "configs/demo_bilstm.yaml", "--teacher", str(TEACHER_RUN),
                     "--output", str(tmp_path / "t.jsonl"), *extra]
        assert main(arguments) != 0
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and any(flag in error for flag in ("--pairs", "--output", "--teacher"))
    assert not (tmp_path / "t.jsonl").exists()


def test_readme_flow_teacher_label_then_train_on_its_pairs(tmp_path):
    """The README's distillation block on the demo: teacher-label, then train with data.extra_train."""
    teacher_file = tmp_path / "teacher.jsonl"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["teacher-label", "--config", "configs/demo_bilstm.yaml", "--teacher", str(TEACHER_RUN),
                     "--output", str(teacher_file)]) == 0
        assert main(["train", "--config", "configs/demo_bilstm.yaml", "--output", str(tmp_path / "run"),
                     "--set", f"data.extra_train=[{teacher_file}]", "--set", "training.epochs=1"]) == 0
    from semmatch_tf import load_config

    judged = len(load_splits(load_config("configs/demo_bilstm.yaml").data)[0])
    extra = len(teacher_file.read_text(encoding="utf-8").splitlines())
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"train {judged + extra:,}," in card and str(teacher_file) in card and "teacher-label" in card
