"""Label-preserving augmentation of judged pairs (issue 18).

Every augmented pair is a copy of a training pair that keeps its label, grade, query id and
product id, and changes only surface form: query words swapped or dropped, keyboard typos,
query words replaced by catalogue co-occurrence neighbours, product title fields reordered.
Neighbours come from the catalogue itself (:class:`CooccurrenceNeighbours`); no external
thesaurus is reachable offline, and back-translation is not available (no translation model is
installable from the package index here).

Examples:

>>> from semmatch_tf.augment import swap_words
>>> import random
>>> sorted(swap_words("cordless drill 18v", 1.0, random.Random(0)).split())
['18v', 'cordless', 'drill']
"""

from semmatch_tf.augment.neighbours import CooccurrenceNeighbours
from semmatch_tf.augment.ops import drop_words, keyboard_typo, reorder_fields, replace_neighbours, swap_words
from semmatch_tf.augment.pairs import augment_pairs

__all__ = ["CooccurrenceNeighbours", "augment_pairs", "drop_words", "keyboard_typo", "reorder_fields",
           "replace_neighbours", "swap_words"]
