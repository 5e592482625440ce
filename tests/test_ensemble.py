"""Ensembles of cross-encoders: two identical members score as one, stacking finds the member that
explains held-out grades, and a mixed ensemble exports as ONE SavedModel that passes check-export."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest

from semmatch_tf.training.config import RunConfig

TEXT = {"vocab_size": 400, "min_frequency": 1, "query_length": 8, "product_length": 16}


@functools.lru_cache(maxsize=None)
def _demo():
    from semmatch_tf.data.demo import load_demo

    return load_demo().head(400)


@functools.lru_cache(maxsize=None)
def _vocabulary() -> tuple[str, ...]:
    from semmatch_tf.text import learn_vocabulary

    frame = _demo().frame
    return tuple(learn_vocabulary(frame["query"].tolist() + frame["product"].tolist(), vocab_size=400, min_frequency=1))


def _member(head: str, seed: int):
    """An (untrained, seeded) BiLSTM cross-encoder as a TrainedMatcher: the ensemble only combines outputs."""
    from semmatch_tf.models.cross_encoders import build_cross_encoder
    from semmatch_tf.runs import TrainedMatcher

    config = RunConfig.from_dict({"text": TEXT, "model": {"family": "bilstm", "head": head, "embedding_dim": 8,
                                                          "lstm_units": 8, "hidden_units": 8}})
    keras.utils.set_random_seed(seed)
    preprocessor, model = build_cross_encoder(config.model, config.text, vocabulary=list(_vocabulary()),
                                              num_classes=_demo().labels.num_classes)
    return TrainedMatcher(preprocessor, model, _demo().labels, head, None)


def test_an_ensemble_of_two_identical_models_scores_as_one():
    from semmatch_tf.ensemble import build_ensemble

    frame = _demo().frame
    for head in ("classification", "regression"):
        member = _member(head, seed=1)
        single = member.score(frame["query"].tolist(), frame["product"].tolist())
        pair = build_ensemble([member, member], "average")
        assert pair.head == head
        np.testing.assert_allclose(pair.score(frame["query"].tolist(), frame["product"].tolist()), single, atol=1e-6)
        assert np.std(single) > 0  # the members do tell pairs apart: the equality is not of constants


def test_stacking_puts_the_weight_on_the_member_that_explains_held_out_grades():
    from semmatch_tf.data.schema import PairDataset
    from semmatch_tf.ensemble import build_ensemble

    good, other = _member("regression", seed=2), _member("classification", seed=3)
    held = _demo().frame.copy()
    held["grade"] = good.score(held["query"].tolist(), held["product"].tolist())  # what "good" predicts
    validation = PairDataset(held, _demo().labels, "held")
    stacked = build_ensemble([good, other], "stacked", validation=validation, l2=1e-6)
    assert stacked.head == "regression"
    assert stacked.weights[0] > 0.95 and abs(stacked.weights[1]) < 0.05, stacked.describe()
    rmse = lambda m: float(np.sqrt(np.mean((m.score(held["query"].tolist(), held["product"].tolist())  # noqa: E731
                                            - held["grade"]) ** 2)))
    assert rmse(stacked) < rmse(build_ensemble([good, other], "average"))
    with pytest.raises(ValueError, match="needs validation pairs"):
        build_ensemble([good, other], "stacked")


def test_a_mixed_ensemble_exports_as_one_savedmodel_that_passes_check_export(tmp_path):
    from semmatch_tf.ensemble import build_ensemble
    from semmatch_tf.export import export_model
    from semmatch_tf.export.check import check_export

    ensemble = build_ensemble([_member("classification", seed=4), _member("regression", seed=5)], "average")
    version = export_model(ensemble, tmp_path / "serving", name="ensemble")
    report = check_export(version, matcher=ensemble)
    assert report["ok"], report["problems"]
    assert report["signatures"] == ["serving_default"] and report["max_abs_diff"]["serving_default"] < 1e-5
    assert not report["child_imported_semmatch_tf"]


def _cli(*args: str):
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "semmatch_tf.cli", *args], capture_output=True, text=True,
                          timeout=900, env=env, cwd=REPO)


def test_cli_ensemble_refuses_bad_input_in_one_line(tmp_path):
    one = _cli("ensemble", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "out"))
    assert one.returncode == 2 and "at least two members" in one.stderr and "Traceback" not in one.stderr
    assert len(one.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    missing = _cli("ensemble", "--model", str(tmp_path / "a"), "--model", str(tmp_path / "b"),
                   "--output", str(tmp_path / "out"))
    assert missing.returncode == 2 and "not a finished run directory" in missing.stderr


@pytest.mark.slow
def test_cli_ensemble_of_two_trained_runs_exports_and_passes_check_export(tmp_path):
    import json

    import yaml

    config = {"data": {"format": "demo", "limit": 600, "split": [0.7, 0.15, 0.15]}, "text": TEXT,
              "model": {"family": "bilstm", "embedding_dim": 8, "lstm_units": 8, "hidden_units": 8},
              "training": {"compare_baseline": False,  # test_training.py tests it; it costs seconds
                           "epochs": 1, "batch_size": 32, "early_stopping_patience": None}}
    for name, head in (("a", "classification"), ("b", "regression")):
        config["model"]["head"] = head
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config))
        assert _cli("train", "--config", str(tmp_path / f"{name}.yaml"), "--output", str(tmp_path / name)).returncode == 0
    made = _cli("ensemble", "--model", str(tmp_path / "a"), "--model", str(tmp_path / "b"), "--method", "stacked",
                "--output", str(tmp_path / "serving"))
    assert made.returncode == 0, made.stderr
    described = json.loads(made.stdout)
    assert described["method"] == "stacked" and described["head"] == "regression" and len(described["weights"]) == 2
    checked = _cli("check-export", described["exported"])
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"], checked.stdout
