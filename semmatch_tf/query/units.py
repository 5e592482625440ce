"""Units and numbers written one way: the rules live in :mod:`semmatch_tf.text.units` (a leaf, so
that the pair preprocessor can run them in the exported graph); re-exported here for query code."""

from semmatch_tf.text.units import UNIT_RULES, UNITS, fold, normalize_units, normalize_units_graph

__all__ = ["UNIT_RULES", "UNITS", "fold", "normalize_units", "normalize_units_graph"]
