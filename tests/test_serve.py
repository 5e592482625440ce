"""The search service and its HTTP API (semmatch_tf.serve), on a real uvicorn server on 127.0.0.1.

The demo catalogue is indexed with BM25 (no model needed) and re-ranked by a BiLSTM cross-encoder
trained for a few epochs on the demo; the demo's judgements give grades and nDCG@10.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

from explain_helpers import bm25_demo_index, demo_bilstm_run
from semmatch_tf.serve import BackgroundServer, ServiceConfig, load_service, read_qrels, stage_ranks


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return load_service(bm25_demo_index(tmp_path_factory), rerank_run_dir=demo_bilstm_run(tmp_path_factory),
                        stage_weight=0.3)


@pytest.fixture(scope="module")
def server(service):
    with BackgroundServer(service) as running:
        yield running


def get(server, path: str, **params) -> tuple[int, dict]:
    url = f"{server.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_search_returns_every_stage_with_its_rank(server, service):
    status, body = get(server, "/search", q="苹果手机壳")
    assert status == 200 and body["query"] == "苹果手机壳" and len(body["results"]) == 10
    assert body["stages"] == ["bm25", "rerank", "final"] and body["reranked"] and body["stage_weight"] == 0.3
    # the same numbers as the searcher itself
    frame = service.searcher.search("苹果手机壳", k=100, candidates=100)
    ranks = stage_ranks(frame)
    for result, (_, row) in zip(body["results"], frame.head(10).iterrows()):
        assert result["product_id"] == row["product_id"] and result["title"] == row["title"]
        assert result["stages"]["bm25"]["score"] == pytest.approx(row["bm25_score"], abs=1e-6)
        assert result["stages"]["rerank"]["score"] == pytest.approx(row["rerank_score"], abs=1e-6)
        assert result["stages"]["final"]["rank"] == result["rank"]
        assert result["stages"]["bm25"]["rank"] == int(ranks.loc[row.name, "bm25_score"])
        assert result["language"] == "zh"
    finals = [r["score"] for r in body["results"]]
    assert finals == sorted(finals, reverse=True)


def test_judged_grades_and_ndcg_come_from_the_demo_judgements(server, service):
    from semmatch_tf.evaluation.ranking import per_query_retrieval

    _, body = get(server, "/search", q="nike hoodie")
    judged = service.qrels["nike hoodie"]
    assert body["judged"] is True
    for result in body["results"]:
        assert result["grade"] == judged.get(result["product_id"])
    ranking = [r["product_id"] for r in body["results"]]
    expected = per_query_retrieval({"q": ranking}, {"q": judged}, ks=(10,))["ndcg@10"].iloc[0]
    assert body["ndcg@10"] == pytest.approx(expected, abs=1e-6) and 0 < body["ndcg@10"] <= 1
    _, unjudged = get(server, "/search", q="qzxv blorft")
    assert unjudged["judged"] is False and unjudged["ndcg@10"] is None


def test_explain_route_highlights_the_product(server):
    status, body = get(server, "/explain", q="nike hoodie", product_id="P0001")
    assert status == 200 and body["product_id"] == "P0001" and body["model"] == "bilstm_cross_encoder"
    assert "".join(s["text"] for s in body["product"]["segments"]) == body["product"]["text"]
    assert body["completeness"]["pair"]["relative_gap"] <= 0.05
    status, by_title = get(server, "/explain", q="nike hoodie", product=body["product"]["text"])
    assert status == 200 and by_title["score"] == pytest.approx(body["score"], abs=1e-9)


def test_bad_requests_are_one_line_400s(server):
    for path, params, message in [("/search", {"q": "  "}, "empty query"),
                                  ("/search", {"q": "hoodie", "k": 0}, "k must be"),
                                  ("/explain", {"q": "hoodie", "product_id": "NOPE"}, "not in the index"),
                                  ("/explain", {"q": "hoodie"}, "give product")]:
        status, body = get(server, path, **params)
        assert status == 400 and message in body["detail"] and "\n" not in body["detail"]


def test_page_and_openapi_are_served(server):
    with urllib.request.urlopen(server.url + "/", timeout=30) as response:
        page = response.read().decode("utf-8")
    assert "<title>semmatch-tf search</title>" in page and "/explain" in page
    _, schema = get(server, "/openapi.json")
    assert {"/search", "/explain", "/info"} <= set(schema["paths"])
    _, info = get(server, "/info")
    assert info["products"] == 388 and info["explainer"] == "bilstm_cross_encoder"
    assert len(info["example_queries"]) >= 4


def test_understanding_comes_with_the_results(service):
    body = service.search("nike hoodie")
    frame = service.searcher.search("nike hoodie", k=100, candidates=100)
    assert body["understanding"] == json.loads(json.dumps(frame.attrs["query_understanding"]))
    assert body["understanding"]["original"] == "nike hoodie"

    class Understood:  # a searcher whose frames carry nothing but that has understand()
        def __init__(self, searcher):
            self._searcher = searcher

        def __getattr__(self, name):
            return getattr(self._searcher, name)

        def search(self, query, k, candidates):
            frame = self._searcher.search(query, k=k, candidates=candidates)
            frame.attrs.clear()
            return frame

        def understand(self, query):
            return {"original": query, "corrected": "nike hoodie", "did_you_mean": "nike hoodie",
                    "attributes": {"brand": "nike"}, "senses": []}

    from semmatch_tf.serve import SearchService

    wrapped = SearchService(Understood(service.searcher), None, config=ServiceConfig(k=3, candidates=20))
    body = wrapped.search("nikee hoodie")
    assert body["understanding"]["did_you_mean"] == "nike hoodie" and len(body["results"]) == 3


def test_qrels_file_and_bad_files(tmp_path):
    good = tmp_path / "qrels.tsv"
    good.write_text("query\tproduct_id\tgrade\nnike hoodie\tP0001\t2\nnike hoodie\tP0002\t0\n", encoding="utf-8")
    assert read_qrels(good) == {"nike hoodie": {"P0001": 2.0, "P0002": 0.0}}
    bad = tmp_path / "bad.csv"
    bad.write_text("query,product_id,grade\nnike hoodie,P0001,high\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv, row 1: grade 'high' is not a number"):
        read_qrels(bad)
    with pytest.raises(ValueError, match="missing column"):
        (tmp_path / "cols.csv").write_text("q,id\na,b\n", encoding="utf-8")
        read_qrels(tmp_path / "cols.csv")


def test_service_config_is_validated():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ServiceConfig(k=0)
    with pytest.raises(ValueError, match="more than max_k"):
        ServiceConfig(k=50, max_k=10)
    assert np.isnan(stage_ranks(__import__("pandas").DataFrame({"bm25_score": [np.nan]}))["bm25_score"][0])


def test_cli_serve_runs_a_real_server_and_refuses_bad_arguments(tmp_path_factory, tmp_path):
    import os
    import subprocess
    import sys
    import time

    from conftest import REPO
    from semmatch_tf.serve.server import free_port

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    base = [sys.executable, "-m", "semmatch_tf.cli", "serve"]
    missing = subprocess.run([*base, "--index", str(tmp_path / "none")], capture_output=True, text=True, env=env,
                             cwd=REPO, timeout=120)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not an index directory" in missing.stderr
    port = subprocess.run([*base, "--index", str(tmp_path), "--port", "70000"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert port.returncode == 2 and "--port must be in [0, 65535]" in port.stderr
    index_dir, number = bm25_demo_index(tmp_path_factory), free_port()
    process = subprocess.Popen([*base, "--index", str(index_dir), "--port", str(number)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        deadline, body = time.monotonic() + 120, None
        while body is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{number}/search?q=nike+hoodie", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, process.stderr.read() if process.poll() is not None else "no answer in 120 s"
        assert body["mode"] == "bm25" and body["results"][0]["stages"]["bm25"]["rank"] == 1
        assert body["explainable"] is False  # BM25 only, no re-ranker: nothing to explain with
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_several_rerankers_rerank_with_their_average(tmp_path_factory, service, capsys):
    """Issue 18's re-ranker ensembles: two runs given to the searcher re-rank with the average of
    their scores (same-class probabilities averaged), and the page explains with the encoder instead."""
    from conftest import REPO

    other = REPO / "tests" / "fixtures" / "runs" / "bilstm_v0_1"
    index = bm25_demo_index(tmp_path_factory)
    pair = load_service(index, rerank_run_dir=[demo_bilstm_run(tmp_path_factory), other], stage_weight=0.3)
    alone = load_service(index, rerank_run_dir=other, stage_weight=0.3, explain_with=None)
    assert pair.description["reranker"] == [str(demo_bilstm_run(tmp_path_factory).resolve()), str(other.resolve())]
    assert len(pair.searcher.reranker.members) == 2 and pair.explainer is None  # BM25 index: no encoder either
    query = "wireless mouse"
    frames = [s.searcher.search(query, k=100, candidates=100).set_index("product_id")["rerank_score"]
              for s in (pair, service, alone)]
    both, first, second = frames[0], frames[1].reindex(frames[0].index), frames[2].reindex(frames[0].index)
    np.testing.assert_allclose(both.to_numpy(), (first.to_numpy() + second.to_numpy()) / 2, atol=1e-5)
    assert np.abs(first.to_numpy() - second.to_numpy()).max() > 0.01  # two different re-rankers
    with pytest.raises(ValueError, match="explains one re-ranker"):
        load_service(index, rerank_run_dir=[other, other], explain_with="reranker")
    from semmatch_tf import cli

    capsys.readouterr()
    assert cli.main(["search", query, "--index", str(index), "--rerank", str(demo_bilstm_run(tmp_path_factory)),
                     "--rerank", str(other), "-k", "3", "--stage-weight", "0.3"]) == 0
    printed = capsys.readouterr().out
    top = pair.searcher.search(query, k=3, candidates=100)["title"].tolist()
    assert all(title[:30] in printed for title in top), printed
