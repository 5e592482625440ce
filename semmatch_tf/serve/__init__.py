"""A local search page and JSON API: ``semmatch-tf serve``.

Loads an index, an optional re-ranker and stage weight once (:func:`load_service`) and serves a
page with each result's stage scores and ranks, judged grades, per-query nDCG@10, token
highlights from the attributions (:mod:`semmatch_tf.explain`) and the query understanding when the
searcher has one; ``/search`` and ``/explain`` are the JSON API beside it (see
:mod:`semmatch_tf.serve.app` for the fields).

Examples:
    >>> from semmatch_tf.serve import BackgroundServer, load_service          # doctest: +SKIP
    >>> service = load_service("runs/demo/index", rerank_run_dir="runs/demo/run")  # doctest: +SKIP
    >>> with BackgroundServer(service) as server:                            # doctest: +SKIP
    ...     print(server.url)                                                 # doctest: +SKIP
"""

from semmatch_tf.serve.service import (STAGES, SearchService, ServiceConfig, demo_judgements, load_service,
                                       read_qrels, stage_ranks)

__all__ = ["STAGES", "BackgroundServer", "SearchService", "ServiceConfig", "create_app", "demo_judgements",
           "load_service", "read_qrels", "serve", "stage_ranks"]


def __getattr__(name: str):
    # The HTTP pieces import FastAPI and uvicorn; the service alone does not need them.
    if name in ("BackgroundServer", "serve"):
        from semmatch_tf.serve import server

        return getattr(server, name)
    if name == "create_app":
        from semmatch_tf.serve.app import create_app

        return create_app
    raise AttributeError(name)
