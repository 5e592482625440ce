"""Catalogue search: a dense embedding index, BM25, rank fusion and two-stage search with re-ranking.

* :class:`EmbeddingIndex` (``index.py``): product embeddings from a bi-encoder; exact top-k in
  TensorFlow, optional HNSW (faiss-cpu) for approximate search.
* :class:`BM25Index` (``bm25.py``): bm25s over the toolkit's own word split (CJK per character).
* ``fusion.py``: reciprocal rank fusion and weighted min-max score fusion.
* :class:`Searcher` (``search.py``): dense, BM25 or hybrid retrieval, then optional cross-encoder
  re-ranking; optional query understanding (:mod:`semmatch_tf.query`: spelling, units, attribute
  boosts, senses) before stage 1.
* ``index_directory.py``: ``build_index`` (a catalogue -> an index directory), ``load_searcher`` /
  ``search_index``, and :class:`SearcherCache` to load each searcher once when searching repeatedly.
* ``sharded.py``: :class:`ShardedIndex` (a catalogue index in shards, built in batch or from
  arrays) and :class:`ExportedEncoder` (an exported bi-encoder SavedModel that embeds texts).
* ``format.py``: ``format_results``, the terminal table.

Building blocks for evaluating search: :func:`rankings_to_ids` (rankings to product ids, the
input of ``retrieval_metrics``) and :func:`rerank_candidates` (stage 2 for one query's candidates).
"""

from semmatch_tf.retrieval.bm25 import BM25Index, tokenize_words
from semmatch_tf.retrieval.fusion import reciprocal_rank_fusion, weighted_score_fusion
from semmatch_tf.retrieval.index import EmbeddingIndex, Ranking, rankings_to_ids, read_catalogue, top_k
from semmatch_tf.query.understanding import format_understanding
from semmatch_tf.retrieval.format import format_results
from semmatch_tf.retrieval.index_directory import SearcherCache, build_index, load_searcher, search_index
from semmatch_tf.retrieval.search import Searcher, rerank_candidates
from semmatch_tf.retrieval.sharded import ExportedEncoder, ShardedIndex

__all__ = ["EmbeddingIndex", "BM25Index", "ExportedEncoder", "Ranking", "Searcher", "SearcherCache", "ShardedIndex",
           "build_index", "search_index", "load_searcher", "format_results", "format_understanding",
           "rankings_to_ids", "reciprocal_rank_fusion", "read_catalogue", "rerank_candidates", "tokenize_words",
           "top_k", "weighted_score_fusion"]
