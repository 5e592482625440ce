"""The HTTP side: a FastAPI app over a :class:`~semmatch_tf.serve.service.SearchService`.

Routes (all GET, JSON unless noted):

``/``
    the search page (one static HTML file; it calls the two routes below).
``/search?q=QUERY[&k=10]``
    results with ``rank``, ``product_id``, ``title``, ``language``, ``score``, ``grade`` (judged
    grade or null) and ``stages`` (``{"bm25" | "dense" | "fused" | "rerank" | "final":
    {"score", "rank"}}``; ranks are counted among the first-stage candidates), plus ``ndcg@10``
    (null without judgements), ``understanding`` (the query-understanding output, or null) and
    ``seconds``.
``/explain?q=QUERY&product_id=ID`` (or ``&product=TITLE``)
    token attributions (:meth:`semmatch_tf.explain.Explanation.to_dict`): per side ``words``,
    ``pieces`` and ``segments`` (the text cut into highlighted words and plain gaps), ``score``,
    ``completeness``.
``/info``
    what was loaded (index, encoder, re-ranker, mode, example queries).
``/openapi.json``
    the machine-readable description of all of this.

Bad input (an empty query, ``k`` out of range, an unknown product id) is a 400 with
``{"detail": "one line"}``; nothing is served that the server did not load at start.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from semmatch_tf.serve.service import SearchService


def page_html() -> str:
    """The search page, shipped in the package (``semmatch_tf/serve/static/index.html``)."""
    return resources.files("semmatch_tf.serve").joinpath("static", "index.html").read_text(encoding="utf-8")


def create_app(service: SearchService) -> FastAPI:
    """A FastAPI app serving ``service``; run it with uvicorn (see :func:`semmatch_tf.serve.serve`).

    Examples:
        >>> from fastapi.testclient import TestClient                          # doctest: +SKIP
        >>> client = TestClient(create_app(service))                           # doctest: +SKIP
        >>> client.get("/search", params={"q": "scented candle"}).json()["results"][0]["title"]  # doctest: +SKIP
    """
    app = FastAPI(title="semmatch-tf search", version="1",
                  description="Search a catalogue with every stage's score and rank; token attributions.")
    page = page_html()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/info")
    def info() -> dict:
        """What the server loaded."""
        return service.info()

    @app.get("/search")
    def search(q: str = Query(..., description="the query"),
               k: int = Query(service.config.k, description="results to return")) -> dict:
        """Search: results with each stage's score and rank, grades, nDCG@10, query understanding."""
        return _answer(service.search, q, k)

    @app.get("/explain")
    def explain(q: str = Query(..., description="the query"),
                product_id: str | None = Query(None, description="a product of the index"),
                product: str | None = Query(None, description="or any product title")) -> dict:
        """Token attributions of the model's score for (query, product)."""
        return _answer(service.explain, q, product, product_id)

    return app


def _answer(function, *args) -> dict:
    try:
        return function(*args)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error).splitlines()[0]) from None
