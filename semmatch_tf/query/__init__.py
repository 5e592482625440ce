"""Query understanding: spelling correction, unit normalisation, attributes, ambiguous queries.

* ``spelling.py``: :class:`SpellingCorrector`, symspellpy over the catalogue's own vocabulary,
  with protected terms, word splitting and a confidence.
* units: :func:`normalize_units` (Python) and :func:`normalize_units_graph` (the same rules as
  TensorFlow ops, for ``tf.data`` and exported models), from :mod:`semmatch_tf.text.units`, where
  the pair preprocessor reaches them without climbing a floor.
* ``attributes.py``: :class:`AttributeExtractor` (brand, type, colour, material, size, quantity)
  with a :class:`Gazetteer` learned from the titles, and :func:`agreement` features; :func:`key` is
  the matching form of a phrase those attributes compare (folded, punctuation as single spaces).
* ``senses.py``: :func:`find_senses` and :func:`diversify` for queries whose results split.
* ``understanding.py``: :class:`QueryUnderstanding`, all of it built from one catalogue and saved
  beside a search index; :class:`semmatch_tf.retrieval.Searcher` applies it.
"""

from semmatch_tf.query.attributes import ATTRIBUTES, AttributeExtractor, Gazetteer, agreement, key
from semmatch_tf.query.senses import diversify, find_senses, rank_senses
from semmatch_tf.query.spelling import Correction, SpellingConfig, SpellingCorrector
from semmatch_tf.query.understanding import QueryConfig, QueryUnderstanding, Understood, check_query
from semmatch_tf.text.units import UNIT_RULES, normalize_units, normalize_units_graph

__all__ = ["ATTRIBUTES", "AttributeExtractor", "Correction", "Gazetteer", "QueryConfig", "QueryUnderstanding",
           "SpellingConfig", "SpellingCorrector", "UNIT_RULES", "Understood", "agreement", "check_query", "diversify",
           "find_senses", "key", "normalize_units", "normalize_units_graph", "rank_senses"]
