"""Runs written by an earlier version still load and score as they did (tests/fixtures/runs/)."""

from __future__ import annotations

import json

import numpy as np

from conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "runs"


def test_old_runs_load_and_score_as_they_did():
    from semmatch_tf import BiEncoder, CrossEncoder

    expected = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
    queries, products = zip(*expected["pairs"])
    cross = CrossEncoder.load(FIXTURES / "bilstm_v0_1")
    np.testing.assert_allclose(cross.predict(expected["pairs"]), expected["cross_encoder_grades"], atol=1e-5)
    bi = BiEncoder.load(FIXTURES / "bilstm_bi_encoder_v0_1")
    np.testing.assert_allclose(bi.similarity(queries, products), expected["bi_encoder_cosines"], atol=1e-5)
    assert len(set(np.round(expected["cross_encoder_grades"], 4))) > 1, "a fixture that scores all pairs alike proves nothing"
