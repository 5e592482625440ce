"""bfloat16 inference through oneDNN's graph rewrite: opt-in, close to float32, and it leaves no trace.

The float32 outputs must stay bit-identical after a bf16 call (TensorFlow keeps one instantiation of
the traced function per configuration), the process-wide switch must be back where it was, and the
bf16 outputs must agree with float32 to the documented tolerance (cosine >= 0.999).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from semmatch_tf.compute import REWRITE, check_compute, compute_scope
from semmatch_tf.models.bi_encoder import TextEmbedder, TwoTowerEncoder, build_towers
from semmatch_tf.text import learn_vocabulary
from semmatch_tf.training.config import RunConfig
from semmatch_tf.training.runtime import cpu_has_bf16_units

TEXTS = ["red running shoes size 10", "blue cotton hat", "green canvas bag with zipper", "cordless drill 18v"]


def rewrite_setting() -> bool:
    return bool(tf.config.optimizer.get_experimental_options().get(REWRITE, False))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_unknown_mode_is_refused_with_the_choices():
    assert check_compute("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match=r"compute must be one of \['float32', 'bfloat16'\], got 'bf16'"):
        check_compute("bf16")
    with pytest.raises(ValueError, match="compute must be one of"):
        TextEmbedder(None, None, compute="half")


def test_scope_restores_the_switch_even_on_error():
    assert not rewrite_setting()
    with pytest.raises(RuntimeError):
        with compute_scope("bfloat16"):
            assert rewrite_setting()
            assert os.environ["TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE"] == "AddV2"
            raise RuntimeError("boom")
    assert not rewrite_setting()
    assert "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE" not in os.environ
    with compute_scope("float32"):
        assert not rewrite_setting()


def test_scope_adds_to_a_users_list_and_puts_it_back(monkeypatch):
    name = "TF_AUTO_MIXED_PRECISION_GRAPH_REWRITE_INFERLIST_REMOVE"
    monkeypatch.setenv(name, "Mul")
    with compute_scope("bfloat16"):
        assert os.environ[name] == "Mul,AddV2"
    assert os.environ[name] == "Mul"
    with compute_scope("bfloat16", float32_adds=False):
        assert os.environ[name] == "Mul" and rewrite_setting()


def test_bf16_embeddings_are_close_and_float32_stays_bit_identical():
    config = RunConfig.from_dict({
        "model": {"family": "bilstm_bi_encoder", "embedding_dim": 64, "lstm_units": 64, "pooling": "max",
                  "dropout": 0.0, "bi_encoder": {"embedding_size": 64}},
        "text": {"vocab_size": 200, "min_frequency": 1, "query_length": 8, "product_length": 8}})
    tf.keras.utils.set_random_seed(0)
    towers = build_towers(config.model, config.text, vocabulary=learn_vocabulary(TEXTS, vocab_size=200, min_frequency=1))
    float32 = TwoTowerEncoder.from_towers(towers)
    bf16 = TwoTowerEncoder(towers.query_preprocessor, towers.query_tower, towers.product_preprocessor,
                           towers.product_tower, compute="bfloat16")
    before = float32.embed_products(TEXTS)
    fast = bf16.embed_products(TEXTS)
    after = float32.embed_products(TEXTS)
    np.testing.assert_array_equal(before, after)
    assert not rewrite_setting()
    assert cosines(before, fast).min() >= 0.999
    if cpu_has_bf16_units():  # elsewhere oneDNN skips the rewrite and the numbers are float32's
        assert not np.array_equal(before, fast)


def test_cli_predict_in_bfloat16_scores_like_float32(capsys):
    """``semmatch-tf predict --compute bfloat16`` on a saved run: the same pairs, grades within 0.05."""
    from semmatch_tf.cli import main

    run = Path(__file__).parent / "fixtures" / "runs" / "bilstm_v0_1"
    pairs = Path(__file__).parent / "fixtures" / "runs" / "pairs.tsv"
    scores = {}
    for mode in ("float32", "bfloat16"):
        assert main(["predict", "--model", str(run), "--input", str(pairs), "--compute", mode]) == 0
        scores[mode] = [json.loads(line)["score"] for line in capsys.readouterr().out.splitlines()]
    assert len(scores["float32"]) == len(pairs.read_text(encoding="utf-8").splitlines()) >= 3
    np.testing.assert_allclose(scores["bfloat16"], scores["float32"], atol=0.05)
    with pytest.raises(SystemExit) as refused:
        main(["predict", "--model", str(run), "--input", str(pairs), "--compute", "half"])
    assert refused.value.code == 2
    assert "invalid choice: 'half'" in capsys.readouterr().err
